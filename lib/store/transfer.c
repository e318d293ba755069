/* SPDX-License-Identifier: MIT */
/*
 * transfer.c - ckpt_copy_checkpoint(), behind ckpt push and ckpt pull: a
 * committed checkpoint copied between two stores, local or in an object
 * store (s3://BUCKET/PREFIX, the layout of a local store under PREFIX),
 * or into a plain directory.
 *
 * Every byte is checked against the source's manifest as it streams
 * past (the stream check of import, bundle.c), so a source that does not
 * match its manifest is never committed anywhere.  A store, local or
 * remote, gets the checkpoint through save's commit protocol (a STAGED
 * save: the files written into its staging area, the manifest committed
 * as it came, so its digest is the source's): on S3 the backend uploads
 * the staging area (each part's SHA-256 checked by the service), then
 * under the store lock copies it into place and puts the manifest last
 * with If-None-Match: *, so a push cut short is never visible and two
 * pushers of one RUN@STEP cannot both win, nor overwrite each other.
 *
 * A destination that has the same manifest (digest) has the checkpoint:
 * nothing is sent.
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

void
ckpt_loc_close(struct ckpt_loc *e)
{
	free(e->dir);
	ckpt_s3_free(e->s3);
	free(e->prefix);
	memset(e, 0, sizeof(*e));
}

int
ckpt_loc_open(const char *location, struct ckpt_loc *e,
    struct ckpt_error *err)
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
			ckpt_loc_close(e);
			return ckpt_error_nomem(err);
		}
		free(e->prefix);
		e->prefix = p;
	}
	return CKPT_OK;
}

/* A small object or file of e (rel below it); CKPT_ERR_NOTFOUND. */
int
ckpt_loc_read(const struct ckpt_loc *e, const char *rel, size_t max,
    char **text, size_t *len, struct ckpt_error *err)
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

/* Streams the file rel of e into sink; a sink's non-zero stops it. */
int
ckpt_loc_stream(const struct ckpt_loc *e, const char *rel,
    ckpt_loc_sink_fn sink, void *arg, struct ckpt_error *err)
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

/* A store on S3 whose staging area takes the files straight from a
 * local source (no spool copy). */
struct direct {
	struct ckpt_store *store;
	const char *stage;	/* the staging area's key */
};

/* The local file of mf uploaded into the staging area of d, its bytes
 * through the check as they are read for the upload. */
static int
upload_checked(const struct ckpt_loc *src, const struct direct *d,
    const struct ckpt_manifest_file *mf, struct checked *c,
    struct ckpt_error *err)
{
	char *p = ckpt_join(src->dir, mf->path);
	int rc;

	if (!p)
		return ckpt_error_nomem(err);
	rc = ckpt_store_stage_upload(d->store, d->stage, mf->path, p, NULL,
	    checked_sink, c, err);
	free(p);
	return rc;
}

/*
 * Streams the source file of mf through the check, and into fd when not
 * -1, or into the staging area of d when not NULL; CKPT_ERR_FORMAT when
 * its bytes are not those of the manifest.
 */
static int
copy_checked(const struct ckpt_loc *src, const struct ckpt_manifest_file *mf,
    int fd, const char *out, const struct direct *d, struct ckpt_error *err)
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
	rc = d ? upload_checked(src, d, mf, &c, err) :
	    ckpt_loc_stream(src, mf->path, checked_sink, &c, err);
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
	const struct ckpt_copy_options *o;
	struct ckpt_loc src;
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

/*
 * Writes the checkpoint's files into dir (staging, or a new directory);
 * with d, its data files go straight into d's staging area instead and
 * dir gets only the manifest and its signature.
 */
static int
fill_dir(struct job *j, const char *dir, const struct direct *d,
    struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (size_t i = 0; i < ckpt_manifest_file_count(j->m) && !rc; i++) {
		const struct ckpt_manifest_file *mf = ckpt_manifest_file(j->m,
		    i);
		char *path;
		int fd;

		if (d) {
			rc = copy_checked(&j->src, mf, -1, NULL, d, err);
			j->res->files++;
			if (!rc)
				j->res->bytes += mf->size;
			continue;
		}
		if ((rc = ckpt_make_parents(dir, mf->path, err)))
			break;
		if (!(path = ckpt_join(dir, mf->path)))
			return ckpt_error_nomem(err);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = ckpt_error_errno(err, path, "cannot create");
		} else {
			rc = copy_checked(&j->src, mf, fd, path, NULL, err);
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

/* The manifest of RUN@STEP in the store s, when it holds one. */
static int
existing_manifest(struct job *j, struct ckpt_store *s, char **where,
    char **text, size_t *len, struct ckpt_error *err)
{
	struct ckpt_ref r;
	struct ckpt_loc e;
	char *ref = NULL;
	int rc;

	*where = *text = NULL;
	if (asprintf(&ref, "%s@%lld", j->res->run, (long long)j->res->step) <
	    0)
		return ckpt_error_nomem(err);
	rc = ckpt_store_resolve(s, ref, NULL, CKPT_METRIC_MIN, &r, err);
	free(ref);
	if (rc)
		return rc;
	if (!(rc = ckpt_loc_open(r.path, &e, err))) {
		rc = ckpt_loc_read(&e, CKPT_MANIFEST_NAME, CKPT_MANIFEST_MAX,
		    text, len, err);
		ckpt_loc_close(&e);
	}
	if (!rc && !(*where = strdup(r.path)))
		rc = ckpt_error_nomem(err);
	ckpt_ref_release(&r);
	return rc;
}

/*
 * Into a store, local or remote, through save's commit protocol: the
 * files go into its staging area (a directory; for a store on S3, from a
 * local source straight into its staging prefix, else through the
 * backend's local spool, uploaded and committed under the store lock by
 * the backend), the manifest committed as it came.
 */
static int
to_store(struct job *j, const char *dest, struct ckpt_error *err)
{
	struct ckpt_save_options so;
	struct direct direct;
	struct ckpt_store *s = NULL;
	struct ckpt_save *sv = NULL;
	char *text = NULL;
	size_t len;
	int rc;

	if ((rc = ckpt_store_open(dest, 0, &s, err)))
		return rc;
	rc = existing_manifest(j, s, &j->res->dest_path, &text, &len, err);
	if (!rc) {
		rc = compare_existing(j, text, len, j->res->dest_path, err);
		goto out;
	}
	if (rc != CKPT_ERR_NOTFOUND)
		goto out;
	ckpt_error_clear(err);
	so = (struct ckpt_save_options)CKPT_SAVE_OPTIONS_INIT;
	/* A copy: its manifest says where it came from */
	so.capture = 0;
	so.run = j->res->run;
	so.step = j->res->step;
	so.transfer = CKPT_TRANSFER_STAGED;
	so.lock_timeout_ms = j->o->lock_timeout_ms;
	if ((rc = ckpt_save_begin(s, &so, &sv, err)))
		goto out;
	/* A local source goes to S3 straight from its files. */
	direct.store = s;
	direct.stage = ckpt_save_stage_key(sv);
	rc = fill_dir(j, ckpt_save_path(sv), j->src.dir && ckpt_store_s3(s,
	    NULL) ? &direct : NULL, err);
	if (!rc)
		rc = ckpt_save_finish(sv, NULL, err);
	if (!rc && !(j->res->dest_path = strdup(ckpt_save_path(sv))))
		rc = ckpt_error_nomem(err);
	if (rc)
		ckpt_save_abort(sv);
	ckpt_save_free(sv);
out:
	free(text);
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
	rc = fill_dir(j, tmp, NULL, err);
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
ckpt_copy_checkpoint(const struct ckpt_copy_options *o,
    struct ckpt_copy_result *res, struct ckpt_error *err)
{
	struct job j = { .o = o, .res = res };
	char *mpath = NULL, *copy;
	struct ckpt_error e;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = ckpt_options_check(o->version, CKPT_COPY_OPTIONS_VERSION,
	    "ckpt_copy_options", err)))
		return rc;
	if ((rc = ckpt_loc_open(o->source, &j.src, err)))
		return rc;
	rc = ckpt_loc_read(&j.src, CKPT_MANIFEST_NAME, CKPT_MANIFEST_MAX,
	    &j.text, &j.len, err);
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
	rc = ckpt_loc_read(&j.src, CKPT_MANIFEST_NAME SIG_SUFFIX, SIG_MAX,
	    &j.sig, &j.sig_len, &e);
	if (rc && rc != CKPT_ERR_NOTFOUND) {
		*err = e;
		goto out;
	}
	if (o->to_dir)
		rc = to_dir(&j, o->dest, err);
	else
		rc = to_store(&j, o->dest, err);
out:
	free(mpath);
	free(j.text);
	free(j.sig);
	ckpt_manifest_free(j.m);
	ckpt_loc_close(&j.src);
	if (rc)
		ckpt_copy_result_release(res);
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
