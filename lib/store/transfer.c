/* SPDX-License-Identifier: MIT */
/*
 * transfer.c - ckpt_copy_checkpoint(), behind ckpt push and ckpt pull: a
 * committed checkpoint copied between two stores, local or in an object
 * store (s3://BUCKET/PREFIX, the layout of a local store under PREFIX),
 * or into a plain directory.
 *
 * Every byte is checked against the source's manifest as it streams
 * past (the stream check of import, bundle.c), so a source that does not
 * match its manifest is never committed anywhere.  On S3 each upload
 * also carries the SHA-256 of every part, which the service checks: what
 * arrives is what was hashed.  The manifest goes last: on S3 created with
 * If-None-Match: *, so a push cut short leaves objects no listing shows
 * (gc's to remove) and two pushers of one RUN@STEP cannot both win; into a
 * local store through save's commit protocol (a STAGED save: the manifest
 * committed as it came, so its digest is the source's).
 *
 * What the destination has already is not sent again: the same manifest
 * (digest) means the checkpoint is there; on S3, an object left by an
 * earlier push cut short is kept when its size matches and its bytes,
 * read back, match every digest of the manifest.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/s3src.h"
#include "store/store.h"

#define IO_BUF ((size_t)1 << 20)
#define SIG_MAX ((size_t)64 << 10)
#define SIG_SUFFIX ".sig"
#define STORE_MARKER ".ckpt/store.json"

/* One side: a local directory, or a client and a key prefix. */
struct end {
	char *dir;			/* local */
	struct ckpt_s3 *s3;		/* remote */
	char *prefix;			/* remote: "" or ending in '/' */
	const char *shown;		/* the location as the caller wrote it */
};

static void
end_close(struct end *e)
{
	free(e->dir);
	ckpt_s3_free(e->s3);
	free(e->prefix);
	memset(e, 0, sizeof(*e));
}

static int
end_open(const char *location, struct end *e, struct ckpt_error *err)
{
	size_t n;
	int rc;

	memset(e, 0, sizeof(*e));
	e->shown = location;
	if (!ckpt_s3_is_url(location))
		return (e->dir = strdup(location)) ? CKPT_OK :
		    ckpt_error_nomem(err);
	if ((rc = ckpt_s3_url_client(location, &e->s3, &e->prefix, err)))
		return rc;
	n = strlen(e->prefix);
	if (n && e->prefix[n - 1] != '/') {
		char *p = NULL;

		if (asprintf(&p, "%s/", e->prefix) < 0) {
			end_close(e);
			return ckpt_error_nomem(err);
		}
		free(e->prefix);
		e->prefix = p;
	}
	return CKPT_OK;
}

/* A small object or file of e (rel below it); CKPT_ERR_NOTFOUND. */
static int
end_read(const struct end *e, const char *rel, size_t max, char **text,
    size_t *len, struct ckpt_error *err)
{
	char *p;
	int rc;

	if (e->s3) {
		if (asprintf(&p, "%s%s", e->prefix, rel) < 0)
			return ckpt_error_nomem(err);
		rc = ckpt_s3_get_mem(e->s3, p, 0, CKPT_S3_TO_END, max, text,
		    len, NULL, err);
	} else {
		if (!(p = ckpt_join(e->dir, rel)))
			return ckpt_error_nomem(err);
		rc = ckpt_read_file(p, max, text, len, err);
	}
	free(p);
	return rc;
}

typedef int (*sink_fn)(void *arg, const void *data, size_t n);

/* Streams the file rel of e into sink; a sink's non-zero stops it. */
static int
end_stream(const struct end *e, const char *rel, sink_fn sink, void *arg,
    struct ckpt_error *err)
{
	unsigned char *buf;
	char *p;
	int fd, rc = CKPT_OK;

	if (e->s3) {
		if (asprintf(&p, "%s%s", e->prefix, rel) < 0)
			return ckpt_error_nomem(err);
		rc = ckpt_s3_get(e->s3, p, 0, CKPT_S3_TO_END, sink, arg, NULL,
		    err);
		free(p);
		return rc;
	}
	if (!(p = ckpt_join(e->dir, rel)) || !(buf = malloc(IO_BUF))) {
		free(p);
		return ckpt_error_nomem(err);
	}
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		rc = ckpt_error_errno(err, p, "cannot open");
	while (fd >= 0 && !rc) {
		ssize_t n = read(fd, buf, IO_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = ckpt_error_errno(err, p, "cannot read");
		if (n <= 0)
			break;
		rc = sink(arg, buf, (size_t)n);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Bytes checked against the manifest as they pass                     */
/* ------------------------------------------------------------------ */

struct checked {
	struct ckpt_stream_check sc;
	const struct ckpt_manifest_file *mf;
	const char *shown;		/* the source file, for messages */
	uint64_t got;
	int fd;				/* write them here too, or -1 */
	const char *out;		/* its path */
	struct ckpt_error err;
	int rc;
};

static int
checked_sink(void *arg, const void *data, size_t n)
{
	struct checked *c = arg;

	if (n > c->mf->size - c->got) {
		c->rc = ckpt_error_set(&c->err, CKPT_ERR_FORMAT, c->shown,
		    (int64_t)c->mf->size, "more bytes than the manifest's "
		    "%llu", (unsigned long long)c->mf->size);
		return c->rc;
	}
	if ((c->rc = ckpt_stream_check_update(&c->sc, data, n, &c->err)))
		return c->rc;
	if (c->fd >= 0 && (c->rc = ckpt_write_all(c->fd, data, n, c->out,
	    &c->err)))
		return c->rc;
	c->got += n;
	return 0;
}

/*
 * Streams the source file of mf through the check (and into fd when not
 * -1); CKPT_ERR_FORMAT when its bytes are not those of the manifest.
 */
static int
copy_checked(const struct end *src, const struct ckpt_manifest_file *mf,
    int fd, const char *out, struct ckpt_error *err)
{
	struct checked c = { .mf = mf, .fd = fd, .out = out };
	char shown[CKPT_ERROR_PATH_MAX];
	uint64_t bad_at = 0;
	bool ok = false;
	int rc;

	snprintf(shown, sizeof(shown), "%s/%s", src->shown, mf->path);
	c.shown = shown;
	ckpt_error_clear(&c.err);
	if ((rc = ckpt_stream_check_init(&c.sc, mf, err)))
		return rc;
	rc = end_stream(src, mf->path, checked_sink, &c, err);
	if (c.rc) {
		rc = c.rc;
		if (err)
			*err = c.err;
	}
	if (!rc && c.got != mf->size)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, shown, (int64_t)c.got,
		    "%llu bytes, the manifest says %llu",
		    (unsigned long long)c.got, (unsigned long long)mf->size);
	if (!rc)
		rc = ckpt_stream_check_final(&c.sc, &ok, &bad_at, err);
	else
		ckpt_stream_check_release(&c.sc);
	if (!rc && !ok)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, shown,
		    (int64_t)bad_at, "its bytes differ from the manifest's "
		    "digests (from byte %llu): not copied",
		    (unsigned long long)bad_at);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Destinations                                                        */
/* ------------------------------------------------------------------ */

struct job {
	const struct ckpt_copy_opts *o;
	struct end src;
	struct ckpt_manifest *m;
	char *text, *sig;		/* the manifest's bytes; signature */
	size_t len, sig_len;
	struct ckpt_copy_result *res;
};

/* An existing manifest at the destination: the same checkpoint (up to
 * date) or CKPT_ERR_EXISTS. */
static int
compare_existing(struct job *j, const char *text, size_t len,
    const char *where, struct ckpt_error *err)
{
	unsigned char d[CKPT_SHA256_BYTES];
	char hex[8 + 2 * CKPT_SHA256_BYTES];
	int rc;

	if ((rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text, len, d, err)))
		return rc;
	memcpy(hex, "sha256:", 7);
	ckpt_hex(d, sizeof(d), hex + 7);
	if (strcmp(hex, ckpt_manifest_digest(j->m)))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, where, -1,
		    "holds another %s@%lld (manifest %s, not %s); nothing "
		    "copied", j->res->run, (long long)j->res->step, hex,
		    ckpt_manifest_digest(j->m));
	j->res->up_to_date = true;
	return CKPT_OK;
}

/* An object left by an earlier push cut short: kept when it checks. */
static bool
object_matches(struct job *j, const struct end *dst, const char *key,
    const struct ckpt_manifest_file *mf)
{
	struct ckpt_s3_object obj;
	struct ckpt_error e;
	struct end there = { .s3 = dst->s3, .prefix = (char *)"",
	    .shown = "" };

	(void)j;
	ckpt_error_clear(&e);
	if (ckpt_s3_head(dst->s3, key, &obj, &e) || obj.size != mf->size)
		return false;
	/* Read back through the same check: the digests decide. */
	{
		struct ckpt_manifest_file alias = *mf;

		alias.path = (char *)key;
		return !copy_checked(&there, &alias, -1, NULL, &e);
	}
}

/* A file (an unlinked temporary one) to hold what a remote source
 * streams before its upload: put_fd reads a descriptor. */
static int
spool(const struct job *j, const struct ckpt_manifest_file *mf,
    struct ckpt_error *err)
{
	const char *tmp = getenv("TMPDIR");
	int fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR |
	    O_CLOEXEC, 0600);
	int rc;

	if (fd < 0)
		return ckpt_error_errno(err, tmp && *tmp ? tmp : "/tmp",
		    "cannot create a temporary file");
	if ((rc = copy_checked(&j->src, mf, fd, "(temporary file)", err)) ||
	    lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return rc ? rc : ckpt_error_errno(err, "(temporary file)",
		    "cannot seek");
	}
	return fd;
}

static int
upload_file(struct job *j, const struct end *dst, const char *key,
    const struct ckpt_manifest_file *mf, struct ckpt_error *err)
{
	struct checked c = { .mf = mf, .fd = -1 };
	char shown[CKPT_ERROR_PATH_MAX];
	uint64_t bad_at = 0;
	bool ok = false;
	char *path;
	int fd, rc;

	if (j->src.s3) {
		if ((fd = spool(j, mf, err)) < 0)
			return fd;
		rc = ckpt_s3_put_fd(dst->s3, key, fd, mf->size, 0, NULL, NULL,
		    NULL, err);
		close(fd);
		return rc;
	}
	/* A local source: hashed in the read pass of the upload itself. */
	if (!(path = ckpt_join(j->src.dir, mf->path)))
		return ckpt_error_nomem(err);
	snprintf(shown, sizeof(shown), "%s", path);
	c.shown = shown;
	ckpt_error_clear(&c.err);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = ckpt_error_errno(err, path, "cannot open");
		free(path);
		return rc;
	}
	free(path);
	if ((rc = ckpt_stream_check_init(&c.sc, mf, err))) {
		close(fd);
		return rc;
	}
	rc = ckpt_s3_put_fd(dst->s3, key, fd, mf->size, 0, checked_sink, &c,
	    NULL, err);
	close(fd);
	if (c.rc) {
		rc = c.rc;
		if (err)
			*err = c.err;
	}
	if (!rc)
		rc = ckpt_stream_check_final(&c.sc, &ok, &bad_at, err);
	else
		ckpt_stream_check_release(&c.sc);
	if (!rc && !ok)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, shown,
		    (int64_t)bad_at, "its bytes differ from the manifest's "
		    "digests (from byte %llu): not copied",
		    (unsigned long long)bad_at);
	if (rc == CKPT_ERR_FORMAT) {
		struct ckpt_error e;

		/* Invisible without a manifest, but not worth keeping. */
		ckpt_s3_delete(dst->s3, key, &e);
	}
	return rc;
}

static int
to_s3(struct job *j, const char *dest, struct ckpt_error *err)
{
	struct ckpt_s3_object obj;
	struct end dst;
	char *base = NULL, *key = NULL, *text = NULL, **sent = NULL;
	size_t len, nsent = 0;
	int rc;

	if ((rc = end_open(dest, &dst, err)))
		return rc;
	if (asprintf(&key, "%s%s", dst.prefix, STORE_MARKER) < 0) {
		key = NULL;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = ckpt_s3_head(dst.s3, key, &obj, err);
	if (rc == CKPT_ERR_NOTFOUND)
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, dest, -1, "not a "
		    "ckpt store (no %s); create it with 'ckpt init -C %s'",
		    STORE_MARKER, dest);
	free(key);
	key = NULL;
	if (rc)
		goto out;
	if (asprintf(&base, "%sruns/%s/step-%lld/", dst.prefix, j->res->run,
	    (long long)j->res->step) < 0 || asprintf(&j->res->dest_path,
	    "s3://%s/%s", ckpt_s3_bucket(dst.s3), base) < 0) {
		base = NULL;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	j->res->dest_path[strlen(j->res->dest_path) - 1] = '\0';
	if (asprintf(&key, "%s%s", base, CKPT_MANIFEST_NAME) < 0) {
		key = NULL;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = ckpt_s3_get_mem(dst.s3, key, 0, CKPT_S3_TO_END,
	    CKPT_MANIFEST_MAX, &text, &len, NULL, err);
	if (!rc) {
		rc = compare_existing(j, text, len, j->res->dest_path, err);
		goto out;
	}
	if (rc != CKPT_ERR_NOTFOUND)
		goto out;
	ckpt_error_clear(err);
	rc = CKPT_OK;
	sent = calloc(ckpt_manifest_file_count(j->m) + 1, sizeof(*sent));
	if (!sent) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < ckpt_manifest_file_count(j->m) && !rc; i++) {
		const struct ckpt_manifest_file *mf = ckpt_manifest_file(j->m,
		    i);
		char *fk;

		if (asprintf(&fk, "%s%s", base, mf->path) < 0) {
			rc = ckpt_error_nomem(err);
			break;
		}
		j->res->files++;
		if (object_matches(j, &dst, fk, mf)) {
			j->res->files_skipped++;
			j->res->bytes_skipped += mf->size;
			free(fk);
		} else if (!(rc = upload_file(j, &dst, fk, mf, err))) {
			j->res->bytes += mf->size;
			sent[nsent++] = fk;
		} else {
			free(fk);
		}
	}
	if (!rc && j->sig) {
		char *sk = NULL;

		if (asprintf(&sk, "%s%s", key, SIG_SUFFIX) < 0) {
			sk = NULL;
			rc = ckpt_error_nomem(err);
		} else {
			rc = ckpt_s3_put(dst.s3, sk, j->sig, j->sig_len, 0,
			    NULL, err);
		}
		free(sk);
	}
	/* The commit point: the manifest, last, created only if absent. */
	if (!rc)
		rc = ckpt_s3_put(dst.s3, key, j->text, j->len,
		    CKPT_S3_IF_ABSENT, NULL, err);
	if (rc == CKPT_ERR_EXISTS) {
		/* Another pusher won the race: fine if it pushed the same. */
		free(text);
		text = NULL;
		ckpt_error_clear(err);
		rc = ckpt_s3_get_mem(dst.s3, key, 0, CKPT_S3_TO_END,
		    CKPT_MANIFEST_MAX, &text, &len, NULL, err);
		if (!rc)
			rc = compare_existing(j, text, len, j->res->dest_path,
			    err);
	}
out:
	/* Not committed: what this push sent goes again (best effort; it
	 * is invisible anyway, and gc's to remove). */
	for (size_t i = 0; i < nsent; i++) {
		struct ckpt_error e;

		if (rc && rc != CKPT_ERR_EXISTS)
			ckpt_s3_delete(dst.s3, sent[i], &e);
		free(sent[i]);
	}
	free(sent);
	free(text);
	free(key);
	free(base);
	end_close(&dst);
	return rc;
}

/* Writes the checkpoint's files into dir (staging, or a new directory). */
static int
fill_dir(struct job *j, const char *dir, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (size_t i = 0; i < ckpt_manifest_file_count(j->m) && !rc; i++) {
		const struct ckpt_manifest_file *mf = ckpt_manifest_file(j->m,
		    i);
		char *path;
		int fd;

		if ((rc = ckpt_make_parents(dir, mf->path, err)))
			break;
		if (!(path = ckpt_join(dir, mf->path)))
			return ckpt_error_nomem(err);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = ckpt_error_errno(err, path, "cannot create");
		} else {
			rc = copy_checked(&j->src, mf, fd, path, err);
			if (!rc && fsync(fd))
				rc = ckpt_error_errno(err, path, "cannot sync");
			if (close(fd) && !rc)
				rc = ckpt_error_errno(err, path,
				    "cannot close");
		}
		free(path);
		j->res->files++;
		if (!rc)
			j->res->bytes += mf->size;
	}
	if (!rc && j->sig) {
		char *sp = NULL;

		if (asprintf(&sp, "%s/%s%s", dir, CKPT_MANIFEST_NAME,
		    SIG_SUFFIX) < 0)
			return ckpt_error_nomem(err);
		rc = ckpt_write_file_replace(sp, j->sig, j->sig_len, false,
		    err);
		free(sp);
	}
	if (!rc) {
		char *mp = ckpt_join(dir, CKPT_MANIFEST_NAME);

		if (!mp)
			return ckpt_error_nomem(err);
		rc = ckpt_write_file_replace(mp, j->text, j->len, false, err);
		free(mp);
	}
	return rc;
}

static int
to_store(struct job *j, const char *dest, struct ckpt_error *err)
{
	struct ckpt_save_opts so;
	struct ckpt_store *s = NULL;
	struct ckpt_save *sv = NULL;
	char *dir = NULL, *text = NULL;
	size_t len;
	int rc;

	if ((rc = ckpt_store_open(dest, 0, &s, err)))
		return rc;
	if (asprintf(&dir, "%s/runs/%s/step-%lld", ckpt_store_root(s),
	    j->res->run, (long long)j->res->step) < 0) {
		dir = NULL;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (!(j->res->dest_path = strdup(dir))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (!access(dir, F_OK)) {
		char *mp = ckpt_join(dir, CKPT_MANIFEST_NAME);

		rc = mp ? ckpt_read_file(mp, CKPT_MANIFEST_MAX, &text, &len,
		    err) : ckpt_error_nomem(err);
		free(mp);
		if (!rc)
			rc = compare_existing(j, text, len, dir, err);
		else if (rc == CKPT_ERR_NOTFOUND)
			rc = ckpt_error_set(err, CKPT_ERR_EXISTS, dir, -1,
			    "exists without a manifest; nothing copied");
		goto out;
	}
	memset(&so, 0, sizeof(so));
	so.run = j->res->run;
	so.step = j->res->step;
	so.transfer = CKPT_TRANSFER_STAGED;
	so.lock_timeout_ms = j->o->lock_timeout_ms;
	if ((rc = ckpt_save_begin(s, &so, &sv, err)))
		goto out;
	rc = fill_dir(j, ckpt_save_path(sv), err);
	if (!rc)
		rc = ckpt_save_finish(sv, NULL, err);
	if (rc)
		ckpt_save_abort(sv);
	ckpt_save_free(sv);
out:
	free(text);
	free(dir);
	ckpt_store_free(s);
	return rc;
}

/* A new plain directory: filled beside it, then renamed into place. */
static int
to_dir(struct job *j, const char *dest, struct ckpt_error *err)
{
	char *tmp = NULL, *parent;
	int rc;

	if (!access(dest, F_OK))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, dest, -1,
		    "exists already; pull into a new directory or a store");
	if (asprintf(&tmp, "%s.tmp-XXXXXX", dest) < 0)
		return ckpt_error_nomem(err);
	if (!mkdtemp(tmp)) {
		rc = ckpt_error_errno(err, dest, "cannot create");
		free(tmp);
		return rc;
	}
	if (!(j->res->dest_path = strdup(dest))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = fill_dir(j, tmp, err);
	if (!rc && rename(tmp, dest))
		rc = ckpt_error_errno(err, dest, "cannot rename into place");
	if (!rc && (parent = ckpt_dirname(dest))) {
		ckpt_fsync_dir(parent, NULL);
		free(parent);
	}
out:
	if (rc)
		ckpt_rm_rf(tmp);
	free(tmp);
	return rc;
}

void
ckpt_copy_result_release(struct ckpt_copy_result *r)
{
	if (!r)
		return;
	free(r->run);
	free(r->dest_path);
	memset(r, 0, sizeof(*r));
}

int
ckpt_copy_checkpoint(const struct ckpt_copy_opts *o,
    struct ckpt_copy_result *res, struct ckpt_error *err)
{
	struct job j = { .o = o, .res = res };
	char *mpath = NULL, *copy;
	struct ckpt_error e;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = end_open(o->source, &j.src, err)))
		return rc;
	rc = end_read(&j.src, CKPT_MANIFEST_NAME, CKPT_MANIFEST_MAX, &j.text,
	    &j.len, err);
	if (rc == CKPT_ERR_NOTFOUND)
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, o->source, -1,
		    "no manifest: not a committed checkpoint");
	if (rc)
		goto out;
	if (asprintf(&mpath, "%s/%s", o->source, CKPT_MANIFEST_NAME) < 0 ||
	    !(copy = malloc(j.len + 1))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	memcpy(copy, j.text, j.len + 1);
	if ((rc = ckpt_manifest_parse(copy, j.len, mpath, o->source, &j.m,
	    err)))
		goto out;
	if (!(res->run = strdup(ckpt_manifest_run(j.m)))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	res->step = ckpt_manifest_step(j.m);
	snprintf(res->manifest_digest, sizeof(res->manifest_digest), "%s",
	    ckpt_manifest_digest(j.m));
	ckpt_error_clear(&e);
	rc = end_read(&j.src, CKPT_MANIFEST_NAME SIG_SUFFIX, SIG_MAX, &j.sig,
	    &j.sig_len, &e);
	if (rc && rc != CKPT_ERR_NOTFOUND) {
		*err = e;
		goto out;
	}
	if (ckpt_s3_is_url(o->dest))
		rc = to_s3(&j, o->dest, err);
	else if (o->to_dir)
		rc = to_dir(&j, o->dest, err);
	else
		rc = to_store(&j, o->dest, err);
out:
	free(mpath);
	free(j.text);
	free(j.sig);
	ckpt_manifest_free(j.m);
	end_close(&j.src);
	if (rc)
		ckpt_copy_result_release(res);
	return rc;
}

/* ------------------------------------------------------------------ */
/* References in a store that may be remote                            */
/* ------------------------------------------------------------------ */

struct steps {
	int64_t *v;
	size_t n, cap;
	size_t skip;			/* bytes of "PREFIX/runs/RUN/" */
};

static int
collect_step(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct steps *s = arg;
	const char *p = key + s->skip;
	char *end;
	long long v;

	if (obj || strncmp(p, "step-", 5) || p[5] < '0' || p[5] > '9')
		return 0;
	errno = 0;
	v = strtoll(p + 5, &end, 10);
	if (errno || strcmp(end, "/"))
		return 0;
	if (s->n == s->cap) {
		size_t c = s->cap ? 2 * s->cap : 64;
		int64_t *n = reallocarray(s->v, c, sizeof(*n));

		if (!n)
			return CKPT_ERR_NOMEM;
		s->v = n;
		s->cap = c;
	}
	s->v[s->n++] = v;
	return 0;
}

static int
cmp_step_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* RUN@STEP, RUN@latest or RUN in a store in an object store. */
static int
resolve_s3(const char *store, const char *ref, char **out,
    struct ckpt_error *err)
{
	const char *at = strchr(ref, '@');
	char *run = at ? strndup(ref, (size_t)(at - ref)) : strdup(ref);
	struct steps st = { 0 };
	struct ckpt_s3_object obj;
	struct end e;
	char *end, *prefix = NULL, *key = NULL;
	long long step = -1;
	int rc;

	if (!run)
		return ckpt_error_nomem(err);
	if ((rc = ckpt_name_check(run, "run", err)))
		goto done;
	if (at && strcmp(at + 1, "latest")) {
		errno = 0;
		step = strtoll(at + 1, &end, 10);
		if (errno || *end || step < 0 || !at[1] || at[1] == '-' ||
		    at[1] == '+') {
			rc = ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, ref, -1,
			    "in an object store only RUN@STEP and RUN@latest "
			    "resolve for now");
			goto done;
		}
	}
	if ((rc = end_open(store, &e, err)))
		goto done;
	if (step < 0) {
		if (asprintf(&prefix, "%sruns/%s/", e.prefix, run) < 0) {
			rc = ckpt_error_nomem(err);
			goto close;
		}
		st.skip = strlen(prefix);
		rc = ckpt_s3_list(e.s3, prefix, "/", collect_step, &st, err);
		if (rc == CKPT_ERR_NOMEM)
			rc = ckpt_error_nomem(err);
		if (rc)
			goto close;
		if (st.n)
			qsort(st.v, st.n, sizeof(*st.v), cmp_step_desc);
	} else if ((st.v = malloc(sizeof(*st.v)))) {
		st.v[st.n++] = step;
	} else {
		rc = ckpt_error_nomem(err);
		goto close;
	}
	/* The newest step that is committed: its manifest exists. */
	rc = CKPT_ERR_NOTFOUND;
	for (size_t i = 0; i < st.n && rc == CKPT_ERR_NOTFOUND; i++) {
		free(key);
		if (asprintf(&key, "%sruns/%s/step-%lld/%s", e.prefix, run,
		    (long long)st.v[i], CKPT_MANIFEST_NAME) < 0) {
			key = NULL;
			rc = ckpt_error_nomem(err);
			break;
		}
		rc = ckpt_s3_head(e.s3, key, &obj, err);
		if (!rc && asprintf(out, "s3://%s/%.*s",
		    ckpt_s3_bucket(e.s3), (int)(strlen(key) -
		    strlen(CKPT_MANIFEST_NAME) - 1), key) < 0)
			rc = ckpt_error_nomem(err);
	}
	if (rc == CKPT_ERR_NOTFOUND)
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, store, -1,
		    "no committed checkpoint %s", ref);
close:
	free(key);
	free(prefix);
	free(st.v);
	end_close(&e);
done:
	free(run);
	return rc;
}

int
ckpt_location_resolve(const char *store, const char *ref, char **out,
    struct ckpt_error *err)
{
	struct ckpt_store *s;
	struct ckpt_ref r;
	int rc;

	*out = NULL;
	if (ckpt_s3_is_url(store))
		return resolve_s3(store, ref, out, err);
	if ((rc = ckpt_store_open(store, 0, &s, err)))
		return rc;
	rc = ckpt_store_resolve(s, ref, NULL, CKPT_METRIC_MIN, &r, err);
	if (!rc) {
		if (!(*out = strdup(r.path)))
			rc = ckpt_error_nomem(err);
		ckpt_ref_release(&r);
	}
	ckpt_store_free(s);
	return rc;
}
