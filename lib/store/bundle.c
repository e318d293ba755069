/* SPDX-License-Identifier: MIT */
/*
 * bundle.c - ckpt_export() and ckpt_import(): committed checkpoints carried
 * between stores as one tar stream (libarchive; plain, gzip or zstd).
 *
 * A bundle is, in this order (import insists on it, so that it can check
 * everything while streaming, with no lookups and no second pass):
 *   ckpt-bundle.json                   {"schema":1, "checkpoints":[{"dir":
 *                                      "RUN@STEP", "run", "step",
 *                                      "manifest": "sha256:..."}, ...]}
 *   RUN@STEP/ckpt-manifest.json        the manifest, byte for byte
 *   RUN@STEP/ckpt-manifest.json.sig    its signature, when there is one
 *   RUN@STEP/FILE ...                  every file of the manifest, in its
 *                                      order (the summary among them)
 * and the same for each further checkpoint.
 *
 * Import never writes outside the store and changes nothing unless
 * everything checks: each entry's name is checked first (absolute paths,
 * "..", ".", empty components, symbolic and hard links, device nodes and
 * other special files, duplicates: refused, each with its own message),
 * then against what comes next; a file's size in its header must equal
 * the manifest's before a byte is written (so no archive can fill the
 * disk beyond what its manifests declare, and the declared total must
 * fit the disk); every file is hashed while it is written and must have
 * the manifest's SHA-256; the manifest must have the digest the bundle's
 * list gives and the list must be complete at the end.  Files go into
 * staging directories made by the commit protocol of save.c (a STAGED
 * save), committed only once the whole stream has checked; on failure
 * they are removed.  The manifest is committed as it came, so its digest
 * (and any signature over it) is the same in the new store.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>

#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"
#include "util/libarchive.h"
#include "util/util.h"

#define BUNDLE_LIST "ckpt-bundle.json"
/* the list carries the lineage of model versions: histories */
#define LIST_MAX ((size_t)16 << 20)
#define MANIFEST_MAX ((size_t)1 << 30)
#define SIG_MAX ((size_t)64 << 10)
#define IO_BUF ((size_t)1 << 20)
/* import starts the disk on what it wrote every KICK_STEP bytes */
#define KICK_STEP ((uint64_t)8 << 20)
#define SIG_SUFFIX ".sig"

/* ------------------------------------------------------------------ */
/* Export                                                              */
/* ------------------------------------------------------------------ */

struct out {
	int fd;
	const char *path;
	struct ckpt_error err;
	bool failed;
	const struct ckpt_la *la;
};

static la_ssize_t
out_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct out *o = arg;

	if (ckpt_write_all(o->fd, buf, len, o->path, &o->err)) {
		o->failed = true;
		o->la->set_error(a, EIO, "%s", o->err.message);
		return -1;
	}
	return (la_ssize_t)len;
}

static int
la_error(struct archive *a, const struct out *o, const char *path,
    struct ckpt_error *err)
{
	if (o && o->failed) {
		if (err)
			*err = o->err;
		return o->err.code;
	}
	return ckpt_error_set(err, CKPT_ERR_IO, path, -1, "%s",
	    o->la->error_string(a) ? o->la->error_string(a) :
	    "archive error");
}

static int
put_header(struct archive *a, const struct out *o, const char *name,
    uint64_t size, int64_t mtime, struct ckpt_error *err)
{
	struct archive_entry *e = o->la->entry_new();
	int rc = CKPT_OK;

	if (!e)
		return ckpt_error_nomem(err);
	o->la->entry_set_pathname(e, name);
	o->la->entry_set_filetype(e, AE_IFREG);
	o->la->entry_set_perm(e, 0644);
	o->la->entry_set_size(e, (la_int64_t)size);
	o->la->entry_set_mtime(e, (time_t)mtime, 0);
	if (o->la->write_header(a, e) != ARCHIVE_OK)
		rc = la_error(a, o, name, err);
	o->la->entry_free(e);
	return rc;
}

static int
put_data(struct archive *a, const struct out *o, const void *buf,
    size_t len, const char *name, struct ckpt_error *err)
{
	if (len && o->la->write_data(a, buf, len) != (la_ssize_t)len)
		return la_error(a, o, name, err);
	return CKPT_OK;
}

static int
put_buffer(struct archive *a, const struct out *o, const char *name,
    const void *buf, size_t len, struct ckpt_error *err)
{
	int rc = put_header(a, o, name, len, 0, err);

	return rc ? rc : put_data(a, o, buf, len, name, err);
}

struct exp_ckpt {
	const char *dir;
	struct ckpt_loc loc;		/* dir opened: local or s3:// */
	struct ckpt_manifest *m;
	char *manifest;			/* its bytes */
	size_t manifest_len;
	char digest[8 + 2 * CKPT_SHA256_BYTES];
	char *name;			/* RUN@STEP, or MODEL@vN (weights) */
	bool weights;			/* a weights-only model version */
	uint64_t bytes;
};

/*
 * Whether a manifest is a weights-only model version's (promote
 * --weights-only): scope "weights-only" and a "source" naming the
 * checkpoint's manifest (a checkpoint's own manifest may say
 * "weights-only" too: no optimizer state in it).
 */
static bool
manifest_is_weights(const struct ckpt_manifest *m)
{
	json_t *j = json_loads(ckpt_manifest_json(m), 0, NULL);
	const char *scope = json_string_value(json_object_get(j, "scope"));
	bool w = scope && !strcmp(scope, "weights-only") &&
	    json_is_string(json_object_get(json_object_get(j, "source"),
	    "manifest"));

	json_decref(j);
	return w;
}

/* Streams one file of a checkpoint, which must still have its size. */
static int
put_file(struct archive *a, const struct out *o, const char *dir,
    const struct ckpt_manifest_file *mf, const char *name,
    unsigned char *buf, uint64_t *done, const struct ckpt_export_options *eo,
    uint64_t total, struct ckpt_error *err)
{
	char *path = ckpt_join(dir, mf->path);
	struct stat st;
	uint64_t left;
	int fd, rc;

	if (!path)
		return ckpt_error_nomem(err);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rc = fd < 0 ? ckpt_error_errno(err, path, "cannot open") :
		    ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1, "not a "
		    "regular file");
		goto out;
	}
	if ((uint64_t)st.st_size != mf->size) {
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1, "has %llu "
		    "bytes, the manifest says %llu; run ckpt verify",
		    (unsigned long long)st.st_size,
		    (unsigned long long)mf->size);
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((rc = put_header(a, o, name, mf->size, (int64_t)st.st_mtime,
	    err)))
		goto out;
	for (left = mf->size; left && !rc;) {
		ssize_t n = read(fd, buf, left < IO_BUF ? (size_t)left :
		    IO_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n ? ckpt_error_errno(err, path, "cannot read") :
			    ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
			    "shrank while being exported");
			break;
		}
		rc = put_data(a, o, buf, (size_t)n, name, err);
		left -= (uint64_t)n;
		*done += (uint64_t)n;
		if (eo && eo->progress)
			eo->progress(*done, total, eo->progress_data);
	}
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* A remote file's bytes on their way into the archive. */
struct remote_put {
	struct archive *a;
	const struct out *o;
	const char *name, *shown;
	uint64_t size, got, *done, total;
	const struct ckpt_export_options *eo;
	struct ckpt_error err;
	int rc;
};

static int
remote_put_sink(void *arg, const void *data, size_t n)
{
	struct remote_put *rp = arg;

	if (n > rp->size - rp->got)
		return rp->rc = ckpt_error_set(&rp->err, CKPT_ERR_FORMAT,
		    rp->shown, (int64_t)rp->size, "has more bytes than the "
		    "manifest's %llu; run ckpt verify",
		    (unsigned long long)rp->size);
	if ((rp->rc = put_data(rp->a, rp->o, data, n, rp->name, &rp->err)))
		return rp->rc;
	rp->got += n;
	*rp->done += n;
	if (rp->eo && rp->eo->progress)
		rp->eo->progress(*rp->done, rp->total, rp->eo->progress_data);
	return 0;
}

/*
 * put_file() of a checkpoint in an object store: the object streamed
 * into the entry whose header already gave the manifest's size, so an
 * object of another size fails the export (as a local file whose size
 * is not the manifest's does) rather than leave a short entry.
 */
static int
put_remote_file(struct archive *a, const struct out *o,
    const struct exp_ckpt *c, const struct ckpt_manifest_file *mf,
    const char *name, uint64_t *done, const struct ckpt_export_options *eo,
    uint64_t total, struct ckpt_error *err)
{
	char shown[CKPT_ERROR_PATH_MAX];
	struct remote_put rp = { .a = a, .o = o, .name = name, .shown = shown,
	    .size = mf->size, .done = done, .total = total, .eo = eo };
	int rc;

	snprintf(shown, sizeof(shown), "%s/%s", c->dir, mf->path);
	ckpt_error_clear(&rp.err);
	if ((rc = put_header(a, o, name, mf->size, 0, err)))
		return rc;
	rc = ckpt_loc_stream(&c->loc, mf->path, remote_put_sink, &rp, err);
	if (rp.rc) {
		if (err)
			*err = rp.err;
		return rp.rc;
	}
	if (!rc && rp.got != mf->size)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, shown, -1, "has "
		    "%llu bytes, the manifest says %llu; run ckpt verify",
		    (unsigned long long)rp.got, (unsigned long long)mf->size);
	return rc;
}

/* The manifest of a checkpoint: its bytes (c->manifest) and parsed. */
static int
read_manifest(struct exp_ckpt *c, struct ckpt_error *err)
{
	char *mpath, *copy;
	int rc;

	if ((rc = ckpt_loc_open(c->dir, &c->loc, err)))
		return rc;
	if (!c->loc.s3) {
		if ((rc = ckpt_manifest_read(c->dir, &c->m, err)))
			return rc;
		if (!(mpath = ckpt_join(c->dir, CKPT_MANIFEST_NAME)))
			return ckpt_error_nomem(err);
		rc = ckpt_read_file(mpath, MANIFEST_MAX, &c->manifest,
		    &c->manifest_len, err);
		free(mpath);
		return rc;
	}
	rc = ckpt_loc_read(&c->loc, CKPT_MANIFEST_NAME, MANIFEST_MAX,
	    &c->manifest, &c->manifest_len, err);
	if (rc == CKPT_ERR_NOTFOUND)
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, c->dir, -1,
		    "no %s: not a committed checkpoint", CKPT_MANIFEST_NAME);
	if (rc)
		return rc;
	if (asprintf(&mpath, "%s/%s", c->dir, CKPT_MANIFEST_NAME) < 0)
		return ckpt_error_nomem(err);
	/* the parser takes its text over: it gets a copy */
	if (!(copy = malloc(c->manifest_len + 1))) {
		free(mpath);
		return ckpt_error_nomem(err);
	}
	memcpy(copy, c->manifest, c->manifest_len + 1);
	rc = ckpt_manifest_parse(copy, c->manifest_len, mpath, c->dir, &c->m,
	    err);
	free(mpath);
	return rc;
}

static int
load_ckpt(struct exp_ckpt *c, struct ckpt_error *err)
{
	unsigned char d[CKPT_SHA256_BYTES];
	int rc;

	if ((rc = read_manifest(c, err)))
		return rc;
	if (!ckpt_manifest_run(c->m) || ckpt_name_check(ckpt_manifest_run(
	    c->m), "run name", NULL) || ckpt_manifest_step(c->m) < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, c->dir, -1,
		    "not a committed store checkpoint (no run or step in its "
		    "manifest)");
	if ((rc = ckpt_hash_buffer(CKPT_HASH_SHA256, c->manifest,
	    c->manifest_len, d, err)))
		return rc;
	memcpy(c->digest, "sha256:", 7);
	ckpt_hex(d, sizeof(d), c->digest + 7);
	c->weights = manifest_is_weights(c->m);
	/* a weights version is named by its model entry (below) */
	if (!c->weights && asprintf(&c->name, "%s@%lld",
	    ckpt_manifest_run(c->m), (long long)ckpt_manifest_step(c->m)) < 0)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < ckpt_manifest_file_count(c->m); i++)
		c->bytes += ckpt_manifest_file(c->m, i)->size;
	return CKPT_OK;
}

static int
put_ckpt(struct archive *a, const struct out *o, struct exp_ckpt *c,
    unsigned char *buf, uint64_t *done, const struct ckpt_export_options *eo,
    uint64_t total, struct ckpt_error *err)
{
	char *name, *sig;
	int rc;

	if (asprintf(&name, "%s/%s", c->name, CKPT_MANIFEST_NAME) < 0)
		return ckpt_error_nomem(err);
	rc = put_buffer(a, o, name, c->manifest, c->manifest_len, err);
	free(name);
	if (rc)
		return rc;
	{
		struct ckpt_error e;
		char *text = NULL;
		size_t len;

		ckpt_error_clear(&e);
		rc = ckpt_loc_read(&c->loc, CKPT_MANIFEST_NAME SIG_SUFFIX,
		    SIG_MAX, &text, &len, &e);
		if (rc == CKPT_ERR_NOTFOUND) {
			rc = CKPT_OK;	/* not signed */
		} else if (rc) {
			if (err)
				*err = e;
		} else if (asprintf(&sig, "%s/%s%s", c->name,
		    CKPT_MANIFEST_NAME, SIG_SUFFIX) < 0) {
			rc = ckpt_error_nomem(err);
		} else {
			rc = put_buffer(a, o, sig, text, len, err);
			free(sig);
		}
		free(text);
	}
	for (size_t i = 0; i < ckpt_manifest_file_count(c->m) && !rc; i++) {
		const struct ckpt_manifest_file *mf =
		    ckpt_manifest_file(c->m, i);

		if (asprintf(&name, "%s/%s", c->name, mf->path) < 0)
			return ckpt_error_nomem(err);
		rc = c->loc.s3 ? put_remote_file(a, o, c, mf, name, done, eo,
		    total, err) : put_file(a, o, c->dir, mf, name, buf, done,
		    eo, total, err);
		free(name);
	}
	return rc;
}

/* The model entry's "aliases": the names that pointed at it. */
static int
aliases_json(json_t *e, const struct ckpt_export_aliases *ea,
    struct ckpt_error *err)
{
	json_t *a;

	if (!ea->n)
		return CKPT_OK;
	if (!(a = json_array()) || json_object_set_new(e, "aliases", a))
		return ckpt_error_nomem(err);
	for (size_t k = 0; k < ea->n; k++) {
		if (ckpt_reg_alias_name_check(ea->names[k], err))
			return CKPT_ERR_INVALID;
		if (json_array_append_new(a, json_string(ea->names[k])))
			return ckpt_error_nomem(err);
	}
	return CKPT_OK;
}

/* The list's "models": each version with its checkpoint, lineage and
 * aliases. */
static int
models_json(json_t *list, const struct exp_ckpt *c, size_t n,
    const struct ckpt_export_options *eo, struct ckpt_error *err)
{
	json_t *ms = json_array();

	if (!ms || json_object_set_new(list, "models", ms))
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < eo->nmodels; i++) {
		const struct ckpt_export_model *em = &eo->models[i];
		json_t *lin, *e;
		int rc;

		if (em->index >= n || ckpt_name_check(em->model, "model name",
		    err) || em->version < 1)
			return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "model version %zu is malformed", i);
		lin = json_stringn(em->lineage, em->lineage_len);
		if (!lin || !(e = json_pack("{s:s, s:I, s:s, s:s, s:o}",
		    "model", em->model, "version", (json_int_t)em->version,
		    "checkpoint", c[em->index].name, "manifest",
		    c[em->index].digest, "lineage", lin)) ||
		    json_array_append_new(ms, e))
			return ckpt_error_nomem(err);
		if (eo->version >= 2 && eo->aliases &&
		    (rc = aliases_json(e, &eo->aliases[i], err)))
			return rc;
	}
	return CKPT_OK;
}

static int
export_to(int fd, const char *shown, struct exp_ckpt *c, size_t n,
    const struct ckpt_export_options *eo, struct ckpt_error *err)
{
	const struct ckpt_la *la;
	struct archive *a;
	struct out o = { fd, shown, { 0 }, false, NULL };
	json_t *list;
	unsigned char *buf;
	uint64_t done = 0, total = 0;
	char *text = NULL;
	int rc, frc;

	if ((rc = ckpt_la_load(&la, err)))
		return rc;
	o.la = la;
	a = la->write_new();
	list = json_pack("{s:i, s:s, s:[]}", "schema", 1, "ckpt_version",
	    ckpt_version(), "checkpoints");
	buf = malloc(IO_BUF);
	if (!a || !list || !buf) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_pack("{s:s, s:s, s:I, s:s}", "dir",
		    c[i].name, "run", ckpt_manifest_run(c[i].m), "step",
		    (json_int_t)ckpt_manifest_step(c[i].m), "manifest",
		    c[i].digest);

		/* a weights-only version: its run and step are its
		 * source checkpoint's */
		if (e && c[i].weights)
			json_object_set_new(e, "scope",
			    json_string("weights-only"));
		json_array_append_new(json_object_get(list, "checkpoints"), e);
		total += c[i].bytes;
	}
	if (eo && eo->nmodels && (rc = models_json(list, c, n, eo, err)))
		goto out;
	la->write_set_format_pax_restricted(a);
	switch (eo ? eo->compression : CKPT_COMPRESS_NONE) {
	case CKPT_COMPRESS_GZIP:
		frc = la->write_add_filter_gzip(a);
		break;
	case CKPT_COMPRESS_ZSTD:
		frc = la->write_add_filter_zstd(a);
		/*
		 * Compressed in this thread, as "zstd --single-thread": zstd's
		 * worker threads (one per CPU, or one, as "tar --zstd" gets)
		 * made a 256 MiB export 1.3 to 1.6 times slower on a loaded
		 * 2-core machine, waiting on each other.
		 */
		if (frc == ARCHIVE_OK)
			(void)la->write_set_filter_option(a, "zstd",
			    "threads", "0");
		break;
	default:
		frc = la->write_add_filter_none(a);
	}
	if (frc != ARCHIVE_OK) {
		rc = ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
		    "this libarchive cannot compress so: %s",
		    la->error_string(a));
		goto out;
	}
	la->write_set_bytes_per_block(a, 64 << 10);
	la->write_set_bytes_in_last_block(a, 1);
	if (la->write_open(a, &o, NULL, out_write, NULL) != ARCHIVE_OK) {
		rc = la_error(a, &o, shown, err);
		goto out;
	}
	text = json_dumps(list, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = put_buffer(a, &o, BUNDLE_LIST, text, strlen(text), err);
	for (size_t i = 0; i < n && !rc; i++)
		rc = put_ckpt(a, &o, &c[i], buf, &done, eo, total, err);
	if (!rc && la->write_close(a) != ARCHIVE_OK)
		rc = la_error(a, &o, shown, err);
out:
	if (a)
		la->write_free(a);
	json_decref(list);
	free(text);
	free(buf);
	return rc;
}

/*
 * A weights-only version travels as MODEL@vN, named by the model entry
 * that gives its lineage: without one it would arrive as a checkpoint
 * that is not one.
 */
static int
name_weights(struct exp_ckpt *c, size_t i,
    const struct ckpt_export_options *eo, struct ckpt_error *err)
{
	for (size_t k = 0; eo && k < eo->nmodels; k++) {
		const struct ckpt_export_model *em = &eo->models[k];

		if (em->index != i)
			continue;
		if (ckpt_name_check(em->model, "model name", err))
			return CKPT_ERR_INVALID;
		if (asprintf(&c->name, "%s@v%lld", em->model,
		    (long long)em->version) < 0) {
			c->name = NULL;
			return ckpt_error_nomem(err);
		}
		return CKPT_OK;
	}
	return ckpt_error_set(err, CKPT_ERR_INVALID, c->dir, -1, "a "
	    "weights-only model version: export it as MODEL@vN, with its "
	    "lineage");
}

int
ckpt_export(const char *const *dirs, size_t n,
    const struct ckpt_export_options *eo, const char *path, int fd,
    char **report, struct ckpt_error *err)
{
	struct exp_ckpt *c = calloc(n ? n : 1, sizeof(*c));
	char *tmp = NULL;
	int rc = CKPT_OK;

	if (report)
		*report = NULL;
	if (!c)
		return ckpt_error_nomem(err);
	if (eo)
		rc = ckpt_options_check(eo->version,
		    CKPT_EXPORT_OPTIONS_VERSION, "ckpt_export_options", err);
	if (!n && !rc)
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "nothing to export");
	for (size_t i = 0; i < n && !rc; i++) {
		c[i].dir = dirs[i];
		rc = load_ckpt(&c[i], err);
		if (!rc && c[i].weights)
			rc = name_weights(&c[i], i, eo, err);
		for (size_t k = 0; k < i && !rc; k++)
			if (!strcmp(c[k].name, c[i].name))
				rc = ckpt_error_set(err, CKPT_ERR_INVALID,
				    dirs[i], -1, "%s is given twice",
				    c[i].name);
	}
	if (!rc && path) {
		struct stat st;

		if (!(eo && eo->force) && !lstat(path, &st))
			rc = ckpt_error_set(err, CKPT_ERR_EXISTS, path, -1,
			    "exists already (use --force to replace it)");
		else if ((fd = ckpt_tempfile(path, 0644, &tmp, err)) < 0)
			rc = fd;
	}
	if (!rc)
		rc = export_to(fd, path ? path : "-", c, n, eo, err);
	if (path && tmp && fd >= 0) {
		if (!rc && fsync(fd))
			rc = ckpt_error_errno(err, tmp, "cannot fsync");
		if (close(fd) && !rc)
			rc = ckpt_error_errno(err, tmp, "cannot close");
		if (!rc)
			rc = ckpt_commit_file(tmp, path, eo && eo->force, err);
		if (rc)
			unlink(tmp);
	}
	if (!rc && report) {
		json_t *r = json_pack("{s:s, s:[]}", "output", path ? path :
		    "-", "checkpoints");

		for (size_t i = 0; i < n; i++)
			json_array_append_new(json_object_get(r,
			    "checkpoints"), json_pack("{s:s, s:I, s:s, s:s, "
			    "s:s, s:s, s:I, s:I}", "run", ckpt_manifest_run(
			    c[i].m), "step", (json_int_t)ckpt_manifest_step(
			    c[i].m), "path", c[i].dir, "manifest",
			    c[i].digest, "name", c[i].name, "scope",
			    c[i].weights ? "weights-only" : "full", "files",
			    (json_int_t)ckpt_manifest_file_count(c[i].m),
			    "bytes", (json_int_t)c[i].bytes));
		*report = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(r);
	}
	for (size_t i = 0; i < n; i++) {
		ckpt_loc_close(&c[i].loc);
		ckpt_manifest_free(c[i].m);
		free(c[i].manifest);
		free(c[i].name);
	}
	free(c);
	free(tmp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Import                                                              */
/* ------------------------------------------------------------------ */

struct imp_ckpt {
	char *dir;			/* RUN@STEP in the bundle */
	char *run;			/* in the bundle */
	char *target_run;		/* where it goes (--run) */
	int64_t step;
	char *digest;			/* "sha256:..." from the list */
	bool identical;			/* already in the store: no-op */
	struct ckpt_save *sv;		/* staging, when not identical */
	bool weights;			/* weights only: MODEL@vN */
	bool claimed;			/* named by a model entry */
	char *stage;			/* in registry/.staging */
	struct ckpt_manifest *m;
	size_t next;			/* next manifest file expected */
	bool have_manifest, have_sig;
	char *committed;		/* path after commit */
};

struct imp {
	struct ckpt_store *s;
	const struct ckpt_import_options *o;
	const char *shown;
	const struct ckpt_la *la;
	struct archive *a;
	struct imp_ckpt *c;
	size_t n, cur;
	bool have_list;
	json_t *seen;			/* entry names so far (a set) */
	json_t *models;			/* the list's model versions */
	bool made[2];			/* registry/, registry/.staging */
	struct ckpt_error *err;
	int64_t at;			/* header position of the entry */
};

static int
bad_entry(struct imp *im, int code, const char *name, const char *fmt, ...)
	CKPT_PRINTF(4, 5);

static int
bad_entry(struct imp *im, int code, const char *name, const char *fmt, ...)
{
	char msg[CKPT_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ckpt_error_set(im->err, code, im->shown,
	    im->at, "entry '%s': %s", name, msg);
}

/* The name alone: canonical, relative, nothing that climbs out. */
static int
check_name(struct imp *im, const char *name)
{
	const char *p = name;

	if (!*name)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "empty name");
	if (name[0] == '/')
		return bad_entry(im, CKPT_ERR_FORMAT, name, "an absolute path "
		    "(refused: import writes only inside the store)");
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == 2 && !strncmp(p, "..", 2))
			return bad_entry(im, CKPT_ERR_FORMAT, name, "a '..' "
			    "component (refused: import writes only inside "
			    "the store)");
		if (!len || (len == 1 && *p == '.'))
			return bad_entry(im, CKPT_ERR_FORMAT, name, "not a "
			    "canonical path (empty or '.' component)");
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return bad_entry(im, CKPT_ERR_FORMAT, name, "not a "
			    "canonical path (trailing '/')");
	}
	if (json_object_get(im->seen, name))
		return bad_entry(im, CKPT_ERR_FORMAT, name,
		    "a duplicate entry");
	json_object_set_new(im->seen, name, json_true());
	return CKPT_OK;
}

static int
check_type(struct imp *im, struct archive_entry *e, const char *name)
{
	mode_t t = im->la->entry_filetype(e);

	if (im->la->entry_hardlink(e))
		return bad_entry(im, CKPT_ERR_FORMAT, name, "a hard link to "
		    "'%s' (refused: a bundle holds regular files only)",
		    im->la->entry_hardlink(e));
	if (t == AE_IFLNK || im->la->entry_symlink(e))
		return bad_entry(im, CKPT_ERR_FORMAT, name, "a symbolic link "
		    "(refused: a bundle holds regular files only)");
	if (t == AE_IFCHR || t == AE_IFBLK)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "a device node "
		    "(refused: a bundle holds regular files only)");
	if (t != AE_IFREG)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "not a regular "
		    "file (type %o)", (unsigned)t);
	if (!im->la->entry_size_is_set(e) || im->la->entry_size(e) < 0)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "no size");
	return CKPT_OK;
}

/* Reads an entry of at most max bytes into memory. */
static int
read_small(struct imp *im, struct archive_entry *e, const char *name,
    size_t max, char **out, size_t *len)
{
	la_int64_t size = im->la->entry_size(e);
	char *buf;
	size_t got = 0;

	if ((uint64_t)size > max)
		return bad_entry(im, CKPT_ERR_LIMIT, name, "%lld bytes, more "
		    "than the %zu allowed", (long long)size, max);
	if (!(buf = malloc((size_t)size + 1)))
		return ckpt_error_nomem(im->err);
	while (got < (size_t)size) {
		la_ssize_t n = im->la->read_data(im->a, buf + got,
		    (size_t)size - got);

		if (n <= 0) {
			free(buf);
			return bad_entry(im, CKPT_ERR_FORMAT, name, "%s",
			    n ? im->la->error_string(im->a) : "truncated");
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return CKPT_OK;
}

static bool
digest_ok(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) || strlen(s) != 7 + 64)
		return false;
	for (s += 7; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/*
 * The manifest digest of RUN@STEP in the store, read through its backend
 * (a local directory or S3); *out NULL when there is none.  A local
 * directory there without a readable manifest is in the way all the
 * same ("?"); on S3 a prefix without its manifest is not committed
 * (invisible, and cleared by the commit), and an error of the service
 * is an error, never taken for "absent".
 */
static int
existing_digest(struct ckpt_store *s, const char *run, int64_t step,
    char **out, struct ckpt_error *err)
{
	unsigned char d[CKPT_SHA256_BYTES];
	struct ckpt_be_info info;
	bool remote = ckpt_store_s3(s, NULL) != NULL;
	char *key, *text = NULL;
	size_t len, kl;
	int rc;

	*out = NULL;
	if (asprintf(&key, "%s/%s/step-%lld/%s", CKPT_STORE_RUNS, run,
	    (long long)step, CKPT_MANIFEST_NAME) < 0)
		return ckpt_error_nomem(err);
	rc = s->ops->read(s->be, key, MANIFEST_MAX, &text, &len, err);
	if (!rc && !(rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text, len, d,
	    err))) {
		if (!(*out = malloc(8 + 2 * CKPT_SHA256_BYTES)))
			rc = ckpt_error_nomem(err);
		else {
			memcpy(*out, "sha256:", 7);
			ckpt_hex(d, sizeof(d), *out + 7);
		}
	} else if (rc && (rc == CKPT_ERR_NOTFOUND || !remote)) {
		rc = CKPT_OK;
		ckpt_error_clear(err);
		kl = strlen(key) - strlen(CKPT_MANIFEST_NAME) - 1;
		key[kl] = '\0';
		if (!remote && !s->ops->stat(s->be, key, &info, NULL) &&
		    !(*out = strdup("?")))
			rc = ckpt_error_nomem(err);
	}
	free(text);
	free(key);
	return rc;
}

/* A model entry's "aliases": absent, or distinct alias names. */
static bool
aliases_ok(json_t *a)
{
	json_t *x;
	size_t i;

	if (!a)
		return true;
	if (!json_is_array(a))
		return false;
	json_array_foreach(a, i, x) {
		if (!json_is_string(x) || ckpt_reg_alias_name_check(
		    json_string_value(x), NULL))
			return false;
		for (size_t k = 0; k < i; k++)
			if (json_equal(json_array_get(a, k), x))
				return false;
	}
	return true;
}

/* Whether dir is "MODEL@vVERSION". */
static bool
weights_dir_is(const char *dir, const char *model, int64_t version)
{
	char *want;
	bool same;

	if (asprintf(&want, "%s@v%lld", model, (long long)version) < 0)
		return false;
	same = !strcmp(want, dir);
	free(want);
	return same;
}

/* A weights-only version's name in a bundle: MODEL@vN. */
static bool
weights_dir_ok(const char *dir)
{
	const char *at = strrchr(dir, '@');
	char model[256], *end;
	long long v;

	if (!at || at == dir || (size_t)(at - dir) >= sizeof(model) ||
	    at[1] != 'v' || at[2] < '1' || at[2] > '9')
		return false;
	errno = 0;
	v = strtoll(at + 2, &end, 10);
	if (*end || errno || v < 1)
		return false;
	memcpy(model, dir, (size_t)(at - dir));
	model[at - dir] = '\0';
	return !ckpt_name_check(model, NULL, NULL);
}

/*
 * The list's "models" (absent in bundles of checkpoints alone): each a
 * model version whose checkpoint is in the bundle and whose lineage (the
 * exporting store's history up to its promotion) verifies as a chain
 * ending in the promotion of that checkpoint's manifest.  Checked before
 * anything is staged; kept for the report, which the caller promotes
 * from (ckpt_promote() with the lineage).
 */
static int
read_models(struct imp *im, json_t *ms)
{
	json_t *v;
	size_t i;

	if (!ms)
		return CKPT_OK;
	if (!json_is_array(ms))
		return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST, "\"models\" "
		    "is not a list");
	if (json_array_size(ms) && im->o && im->o->run)
		return ckpt_error_set(im->err, CKPT_ERR_INVALID, im->shown, -1,
		    "the bundle holds model versions, whose lineage names "
		    "their runs: --run cannot rename them");
	json_array_foreach(ms, i, v) {
		const char *model = json_string_value(json_object_get(v,
		    "model"));
		const char *ck = json_string_value(json_object_get(v,
		    "checkpoint"));
		const char *dg = json_string_value(json_object_get(v,
		    "manifest"));
		json_t *lin = json_object_get(v, "lineage");
		json_t *ver = json_object_get(v, "version");
		const char *why = NULL;
		size_t k;

		for (k = 0; ck && k < im->n; k++)
			if (!strcmp(im->c[k].dir, ck))
				break;
		if (!model || ckpt_name_check(model, NULL, NULL) ||
		    !json_is_integer(ver) || json_integer_value(ver) < 1 ||
		    !json_is_string(lin) || !digest_ok(dg) || !ck ||
		    k == im->n || strcmp(im->c[k].digest, dg))
			return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST,
			    "model version %zu is malformed or names no "
			    "checkpoint of the bundle", i);
		if (im->c[k].weights && (im->c[k].claimed ||
		    !weights_dir_is(ck, model, json_integer_value(ver))))
			return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST,
			    "model version %zu is not the weights-only "
			    "version %s", i, ck);
		im->c[k].claimed = true;
		if (!aliases_ok(json_object_get(v, "aliases")))
			return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST,
			    "model version %zu: \"aliases\" is not a list of "
			    "distinct alias names", i);
		if (ckpt_reg_check_lineage(json_string_value(lin),
		    json_string_length(lin), BUNDLE_LIST, model, dg, &why))
			return why && strcmp(why, "out of memory") ?
			    bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST,
			    "%s v%lld: the lineage %s (tampered or damaged)",
			    model, (long long)json_integer_value(ver), why) :
			    ckpt_error_nomem(im->err);
		for (size_t x = 0; x < i; x++)
			if (!strcmp(json_string_value(json_object_get(
			    json_array_get(ms, x), "model")), model) &&
			    !strcmp(json_string_value(json_object_get(
			    json_array_get(ms, x), "manifest")), dg))
				return bad_entry(im, CKPT_ERR_FORMAT,
				    BUNDLE_LIST, "%s: one checkpoint listed "
				    "twice as a version", model);
	}
	im->models = json_incref(ms);
	return CKPT_OK;
}

/* Every weights-only version must come with its model entry. */
static int
check_weights_claimed(struct imp *im)
{
	for (size_t k = 0; k < im->n; k++)
		if (im->c[k].weights && !im->c[k].claimed)
			return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST,
			    "%s is a weights-only version without its model "
			    "entry and lineage", im->c[k].dir);
	return CKPT_OK;
}

static int
read_list(struct imp *im, struct archive_entry *e)
{
	struct ckpt_error *err = im->err;
	json_t *j, *cs, *v;
	json_error_t je;
	char *text;
	size_t len, i;
	int rc;

	if ((rc = read_small(im, e, BUNDLE_LIST, LIST_MAX, &text, &len)))
		return rc;
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	cs = json_object_get(j, "checkpoints");
	if (!json_is_object(j) || json_integer_value(json_object_get(j,
	    "schema")) != 1 || !json_is_array(cs) || !json_array_size(cs)) {
		json_decref(j);
		return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST, "not a "
		    "bundle list (%s)", j ? "schema 1 with checkpoints" :
		    je.text);
	}
	im->c = calloc(json_array_size(cs), sizeof(*im->c));
	if (!im->c) {
		json_decref(j);
		return ckpt_error_nomem(err);
	}
	json_array_foreach(cs, i, v) {
		struct imp_ckpt *c = &im->c[im->n];
		const char *run = json_string_value(json_object_get(v, "run"));
		const char *dir = json_string_value(json_object_get(v, "dir"));
		const char *dg = json_string_value(json_object_get(v,
		    "manifest"));
		json_t *st = json_object_get(v, "step");
		json_t *scope = json_object_get(v, "scope");
		bool weights = json_is_string(scope) &&
		    !strcmp(json_string_value(scope), "weights-only");
		char *want = NULL;

		if (!run || ckpt_name_check(run, "run name", NULL) ||
		    !json_is_integer(st) || json_integer_value(st) < 0 ||
		    !digest_ok(dg) || !dir || (scope && !weights) ||
		    (weights ? !weights_dir_ok(dir) : asprintf(&want,
		    "%s@%lld", run, (long long)json_integer_value(st)) < 0 ||
		    strcmp(want, dir))) {
			free(want);
			json_decref(j);
			return bad_entry(im, CKPT_ERR_FORMAT, BUNDLE_LIST,
			    "checkpoint %zu is malformed", i);
		}
		free(want);
		c->dir = strdup(dir);
		c->run = strdup(run);
		c->target_run = strdup(im->o && im->o->run ? im->o->run :
		    run);
		c->digest = strdup(dg);
		c->step = json_integer_value(st);
		c->weights = weights;
		im->n++;
		if (!c->dir || !c->run || !c->target_run || !c->digest) {
			json_decref(j);
			return ckpt_error_nomem(err);
		}
		for (size_t k = 0; k + 1 < im->n; k++)
			if (c->weights ? !strcmp(im->c[k].dir, c->dir) :
			    !im->c[k].weights && !strcmp(im->c[k].target_run,
			    c->target_run) && im->c[k].step == c->step) {
				json_decref(j);
				return c->weights ? bad_entry(im,
				    CKPT_ERR_FORMAT, BUNDLE_LIST, "%s is "
				    "listed twice", c->dir) : ckpt_error_set(
				    err, CKPT_ERR_INVALID, im->shown, -1, "two "
				    "checkpoints of the bundle would both be "
				    "%s@%lld", c->target_run,
				    (long long)c->step);
			}
	}
	if ((rc = read_models(im, json_object_get(j, "models"))) ||
	    (rc = check_weights_claimed(im))) {
		json_decref(j);
		return rc;
	}
	json_decref(j);
	/* recreated by promote --weights-only's commit, local only yet */
	for (size_t k = 0; k < im->n; k++)
		if (im->c[k].weights && ckpt_store_s3(im->s, NULL))
			return ckpt_error_set(err, CKPT_ERR_REFUSED, im->shown,
			    -1, "%s is a weights-only model version: those "
			    "import into a local store only (promote "
			    "--weights-only works on a local store only); "
			    "nothing imported", im->c[k].dir);
	/* Refuse conflicts before anything is staged. */
	for (size_t k = 0; k < im->n; k++) {
		struct imp_ckpt *c = &im->c[k];
		char *have;

		if (c->weights)
			continue;	/* the promotion decides */
		if ((rc = existing_digest(im->s, c->target_run, c->step,
		    &have, err)))
			return rc;
		if (have && strcmp(have, c->digest)) {
			free(have);
			return ckpt_error_set(err, CKPT_ERR_EXISTS, im->shown,
			    -1, "%s@%lld exists already with another manifest"
			    " (%s in the bundle); nothing imported",
			    c->target_run, (long long)c->step, c->digest);
		}
		c->identical = have != NULL;
		free(have);
	}
	im->have_list = true;
	return CKPT_OK;
}

/*
 * A weights-only version is staged where promotions stage theirs
 * (registry/.staging/HOSTTAG.PID.START.RANDOM, which a registry repair
 * removes once this process is gone): the importer promotes it from
 * there (ckpt_promote() with its lineage) and then discards it.
 */
static int
stage_weights_dir(struct imp *im, struct imp_ckpt *c)
{
	static const char *const rel[] = { REG_DIR, REG_STAGING };
	char *id = ckpt_reg_staging_name(), *path;
	int rc = CKPT_OK;

	/* what is made here goes again if the import fails */
	for (size_t i = 0; i < 2 && !rc; i++) {
		if (!(path = ckpt_store_path(im->s, rel[i])))
			rc = ckpt_error_nomem(im->err);
		else if (!mkdir(path, 0755))
			im->made[i] = true;
		else if (errno != EEXIST)
			rc = ckpt_error_errno(im->err, path, "cannot create");
		free(path);
	}
	path = rc ? NULL : ckpt_store_path(im->s, REG_STAGING);
	if (!rc && (!id || !path || !(c->stage = ckpt_join(path, id))))
		rc = ckpt_error_nomem(im->err);
	free(path);
	if (!rc && mkdir(c->stage, 0755))
		rc = ckpt_error_errno(im->err, c->stage, "cannot create");
	free(id);
	return rc;
}

/* Checks the manifest entry, stages it (unless identical) and reads it. */
static int
take_manifest(struct imp *im, struct imp_ckpt *c, struct archive_entry *e,
    const char *name)
{
	struct ckpt_error *err = im->err;
	unsigned char d[CKPT_SHA256_BYTES];
	char hex[8 + 2 * CKPT_SHA256_BYTES], *text, *path = NULL;
	struct ckpt_save_options so;
	struct statvfs vfs;
	uint64_t total = 0;
	size_t len;
	int rc;

	if ((rc = read_small(im, e, name, MANIFEST_MAX, &text, &len)))
		return rc;
	if ((rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text, len, d, err))) {
		free(text);
		return rc;
	}
	memcpy(hex, "sha256:", 7);
	ckpt_hex(d, sizeof(d), hex + 7);
	if (strcmp(hex, c->digest)) {
		free(text);
		return bad_entry(im, CKPT_ERR_FORMAT, name, "its digest is %s, "
		    "the bundle's list says %s (tampered or damaged)", hex,
		    c->digest);
	}
	if (c->weights) {
		if ((rc = stage_weights_dir(im, c)) ||
		    !(path = ckpt_join(c->stage, CKPT_MANIFEST_NAME))) {
			free(text);
			return rc ? rc : ckpt_error_nomem(err);
		}
		rc = ckpt_write_file_replace(path, text, len, false, err);
	} else if (!c->identical) {
		so = (struct ckpt_save_options)CKPT_SAVE_OPTIONS_INIT;
		/* An import: its manifest says where it came from */
		so.capture = 0;
		so.run = c->target_run;
		so.step = c->step;
		so.transfer = CKPT_TRANSFER_STAGED;
		so.lock_timeout_ms = im->o ? im->o->lock_timeout_ms : 0;
		if ((rc = ckpt_save_begin(im->s, &so, &c->sv, err))) {
			free(text);
			return rc;
		}
		path = ckpt_join(ckpt_save_path(c->sv), CKPT_MANIFEST_NAME);
		if (!path) {
			free(text);
			return ckpt_error_nomem(err);
		}
		rc = ckpt_write_file_replace(path, text, len, false, err);
	} else {
		/* nothing to write: parsed where it is (text taken over) */
		rc = ckpt_manifest_parse(text, len, name, c->dir, &c->m, err);
		text = NULL;
	}
	free(text);
	if (!rc && path)
		rc = ckpt_manifest_read(path, &c->m, err);
	free(path);
	if (rc)
		return rc;
	if (!ckpt_manifest_run(c->m) || strcmp(ckpt_manifest_run(c->m),
	    c->run) || ckpt_manifest_step(c->m) != c->step)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "its run and step "
		    "are not %s", c->dir);
	if (c->weights && !manifest_is_weights(c->m))
		return bad_entry(im, CKPT_ERR_FORMAT, name, "not the manifest "
		    "of a weights-only version, as the bundle's list says");
	for (size_t i = 0; i < ckpt_manifest_file_count(c->m); i++) {
		const struct ckpt_manifest_file *mf = ckpt_manifest_file(c->m,
		    i);

		if (!ckpt_add_u64(total, mf->size, &total))
			return bad_entry(im, CKPT_ERR_LIMIT, name, "sizes "
			    "overflow");
		if (!strcmp(mf->path, CKPT_MANIFEST_NAME) ||
		    !strcmp(mf->path, CKPT_STAGING_NAME) ||
		    !strcmp(mf->path, CKPT_STATUS_NAME))
			return bad_entry(im, CKPT_ERR_FORMAT, name, "lists "
			    "'%s', a name ckpt reserves", mf->path);
	}
	/* An honest bundle fits the disk; a dishonest one stops here.  (A
	 * store on S3 gets the files straight from the stream: only the
	 * manifest and signature pass through this host's disk.) */
	if (!c->identical && !ckpt_store_s3(im->s, NULL) &&
	    !statvfs(ckpt_store_root(im->s), &vfs) &&
	    total > (uint64_t)vfs.f_bavail * vfs.f_frsize)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, im->shown, im->at,
		    "%s needs %llu bytes, the store's filesystem has %llu "
		    "free", c->dir, (unsigned long long)total,
		    (unsigned long long)vfs.f_bavail * vfs.f_frsize);
	c->have_manifest = true;
	return CKPT_OK;
}

/* mkdir -p of the parents of rel under root (names already checked). */
int
ckpt_make_parents(const char *root, const char *rel,
    struct ckpt_error *err)
{
	char *p;
	int rc = CKPT_OK;

	if (asprintf(&p, "%s/%s", root, rel) < 0)
		return ckpt_error_nomem(err);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			rc = ckpt_error_errno(err, p, "cannot create");
		*s = '/';
		if (rc)
			break;
	}
	free(p);
	return rc;
}

/*
 * Checks a file's bytes as they stream past against what its manifest
 * entry records: the whole-file SHA-256 when there is one (schema 1
 * always, schema 2 when the store asked for it), and the digests of the
 * ranges that cover every byte once (schema 2), so that every byte is
 * checked whichever digests the manifest holds.
 */

int
ckpt_stream_check_init(struct ckpt_stream_check *sc,
    const struct ckpt_manifest_file *mf, struct ckpt_error *err)
{
	int rc;

	memset(sc, 0, sizeof(*sc));
	sc->mf = mf;
	/*
	 * A file within one chunk has one range over all of it, whose digest
	 * is the whole file's: checking that range checks the whole digest
	 * too, and hashing every byte twice would double import's CPU.
	 */
	if (mf->has_sha256 && !(mf->nranges == 1 && !mf->ranges[0].offset &&
	    mf->ranges[0].end == mf->size && !memcmp(mf->ranges[0].sha256,
	    mf->sha256, CKPT_SHA256_BYTES))) {
		if ((rc = ckpt_sha256_init(&sc->whole, err)))
			return rc;
		sc->whole_on = true;
	}
	if (mf->nranges) {
		if ((rc = ckpt_sha256_init(&sc->range, err))) {
			if (sc->whole_on)
				ckpt_sha256_release(&sc->whole);
			return rc;
		}
		sc->range_on = true;
	}
	return CKPT_OK;
}

void
ckpt_stream_check_release(struct ckpt_stream_check *sc)
{
	if (sc->whole_on)
		ckpt_sha256_release(&sc->whole);
	if (sc->range_on)
		ckpt_sha256_release(&sc->range);
	sc->whole_on = sc->range_on = false;
}

/* Closes the current range: compares its digest and starts the next. */
static int
stream_close_range(struct ckpt_stream_check *sc, struct ckpt_error *err)
{
	const struct ckpt_range_digest *r = &sc->mf->ranges[sc->next];
	unsigned char d[CKPT_SHA256_BYTES];
	int rc;

	sc->range_on = false;
	if ((rc = ckpt_sha256_final(&sc->range, d, err)))
		return rc;
	if (memcmp(d, r->sha256, sizeof(d)) && !sc->bad) {
		sc->bad = true;
		sc->bad_offset = r->offset;
	}
	sc->next++;
	if (sc->next < sc->mf->nranges) {
		if ((rc = ckpt_sha256_init(&sc->range, err)))
			return rc;
		sc->range_on = true;
	}
	return CKPT_OK;
}

int
ckpt_stream_check_update(struct ckpt_stream_check *sc,
    const unsigned char *p, size_t n, struct ckpt_error *err)
{
	int rc;

	if (sc->whole_on)
		ckpt_sha256_update(&sc->whole, p, n);
	while (n && sc->range_on) {
		const struct ckpt_range_digest *r = &sc->mf->ranges[sc->next];
		uint64_t left = r->end - sc->pos;
		size_t k = n < left ? n : (size_t)left;

		ckpt_sha256_update(&sc->range, p, k);
		p += k;
		n -= k;
		sc->pos += k;
		if (sc->pos == r->end &&
		    (rc = stream_close_range(sc, err)))
			return rc;
	}
	sc->pos += n;
	return CKPT_OK;
}

/* After the last byte: true when every recorded digest matched. */
int
ckpt_stream_check_final(struct ckpt_stream_check *sc, bool *ok,
    uint64_t *offset, struct ckpt_error *err)
{
	unsigned char d[CKPT_SHA256_BYTES];
	int rc;

	*ok = !sc->bad && sc->next == sc->mf->nranges;
	*offset = sc->bad ? sc->bad_offset : 0;
	if (sc->whole_on) {
		sc->whole_on = false;
		if ((rc = ckpt_sha256_final(&sc->whole, d, err)))
			return rc;
		if (memcmp(d, sc->mf->sha256, sizeof(d)))
			*ok = false;
	}
	return CKPT_OK;
}

/* n zero bytes of a sparse entry's hole: hashed, and written at fd. */
static int
take_hole(struct ckpt_stream_check *sc, int fd, const char *path,
    uint64_t n, uint64_t *got, struct ckpt_error *err)
{
	static const unsigned char zeros[64 << 10];
	int rc = CKPT_OK;

	while (n && !rc) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);

		if (!(rc = ckpt_stream_check_update(sc, zeros, k, err)) &&
		    fd >= 0)
			rc = ckpt_write_all(fd, zeros, k, path, err);
		n -= k;
		*got += k;
	}
	return rc;
}

/*
 * A file of the bundle on its way into the staging area of a store on
 * S3: the bytes checked here are written into a pipe that an upload
 * thread reads (ckpt_store_stage_upload_fd, the upload path of save and
 * push: parallel parts, each part's SHA-256 checked by the service).
 * The file never touches this host's disk.  A stream cut short (a bad
 * entry) ends the upload with an error, which aborts it.
 */
struct pipe_upload {
	struct ckpt_store *s;
	const char *stage, *rel;
	uint64_t size;
	int rfd;
	pthread_t thread;
	bool started;
	int rc;
	struct ckpt_error err;
};

static void *
pipe_upload_main(void *arg)
{
	struct pipe_upload *pu = arg;
	char drain[16 << 10];
	ssize_t n;

	pu->rc = ckpt_store_stage_upload_fd(pu->s, pu->stage, pu->rel, pu->rfd,
	    pu->size, NULL, NULL, &pu->err);
	/* what a failed upload left unread: the writer must never block */
	while ((n = read(pu->rfd, drain, sizeof(drain))) > 0 ||
	    (n < 0 && errno == EINTR))
		;
	close(pu->rfd);
	return NULL;
}

/* Starts the upload of mf into c's staging area; *wfd gets the bytes. */
static int
pipe_upload_start(struct imp *im, struct imp_ckpt *c,
    const struct ckpt_manifest_file *mf, struct pipe_upload *pu, int *wfd)
{
	int fds[2];

	memset(pu, 0, sizeof(*pu));
	ckpt_error_clear(&pu->err);
	if (pipe2(fds, O_CLOEXEC))
		return ckpt_error_errno(im->err, "pipe", "cannot create a");
	pu->s = im->s;
	pu->stage = ckpt_save_stage_key(c->sv);
	pu->rel = mf->path;
	pu->size = mf->size;
	pu->rfd = fds[0];
	if (pthread_create(&pu->thread, NULL, pipe_upload_main, pu)) {
		close(fds[0]);
		close(fds[1]);
		return ckpt_error_set(im->err, CKPT_ERR_IO, mf->path, -1,
		    "cannot start an upload thread");
	}
	pu->started = true;
	*wfd = fds[1];
	return CKPT_OK;
}

/* After the writer closed its end: the upload's outcome, unless rc
 * already says what went wrong. */
static int
pipe_upload_finish(struct imp *im, struct pipe_upload *pu, int rc)
{
	if (!pu->started)
		return rc;
	pthread_join(pu->thread, NULL);
	pu->started = false;
	if (!rc && pu->rc) {
		if (im->err)
			*im->err = pu->err;
		rc = pu->rc;
	}
	return rc;
}

/* Streams one file into staging (or nowhere), checking size and digest. */
static int
take_file(struct imp *im, struct imp_ckpt *c,
    const struct ckpt_manifest_file *mf, struct archive_entry *e,
    const char *name, uint64_t *done)
{
	struct ckpt_error *err = im->err;
	struct ckpt_stream_check sc;
	struct pipe_upload pu = { .started = false };
	uint64_t got = 0, kicked = 0, bad_at;
	bool ok, remote = c->sv && ckpt_store_s3(im->s, NULL);
	char *path = NULL;
	int fd = -1, rc;

	if ((uint64_t)im->la->entry_size(e) != mf->size)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "%lld bytes, the "
		    "manifest says %llu (refused before writing)",
		    (long long)im->la->entry_size(e),
		    (unsigned long long)mf->size);
	if ((rc = ckpt_stream_check_init(&sc, mf, err)))
		return rc;
	if (remote) {
		if (!(path = strdup(name)))
			rc = ckpt_error_nomem(err);
		else
			rc = pipe_upload_start(im, c, mf, &pu, &fd);
		if (rc)
			goto out;
	} else if (c->sv || c->stage) {
		const char *root = c->sv ? ckpt_save_path(c->sv) : c->stage;

		if ((rc = ckpt_make_parents(root, mf->path, err)) ||
		    !(path = ckpt_join(root, mf->path))) {
			ckpt_stream_check_release(&sc);
			return rc ? rc : ckpt_error_nomem(err);
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = ckpt_error_errno(err, path, "cannot create");
			goto out;
		}
	}
	for (;;) {
		const void *block;
		size_t n;
		la_int64_t off;
		int r = im->la->read_data_block(im->a, &block, &n, &off);

		if (r == ARCHIVE_EOF) {
			/* a sparse entry may end in a hole */
			if (im->la->entry_sparse_count(e) > 0 && got < mf->size)
				rc = take_hole(&sc, fd, path, mf->size - got,
				    &got, err);
			break;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = bad_entry(im, CKPT_ERR_FORMAT, name, "%s",
			    im->la->error_string(im->a));
			break;
		}
		/* A sparse entry's holes are zeros, hashed and written as
		 * such (as archive_read_data gives them); data never goes
		 * back. */
		if (off < 0 || (uint64_t)off < got ||
		    (uint64_t)off > mf->size) {
			rc = bad_entry(im, CKPT_ERR_FORMAT, name, "data at "
			    "byte %lld out of order (after %llu of %llu)",
			    (long long)off, (unsigned long long)got,
			    (unsigned long long)mf->size);
			break;
		}
		if ((uint64_t)off > got && (rc = take_hole(&sc, fd, path,
		    (uint64_t)off - got, &got, err)))
			break;
		if (got + n > mf->size) {
			rc = bad_entry(im, CKPT_ERR_FORMAT, name, "more data "
			    "than its size");
			break;
		}
		if ((rc = ckpt_stream_check_update(&sc, block, n, err)))
			break;
		if (fd >= 0 && (rc = ckpt_write_all(fd, block, n, path, err)))
			break;
		got += n;
		*done += n;
		/* The disk starts on the file as it comes, so that the
		 * commit's fsync finds little left (a hint: the fsync
		 * reports any error). */
		if (fd >= 0 && !remote && got >= kicked + KICK_STEP) {
			(void)sync_file_range(fd, (off64_t)kicked,
			    (off64_t)(got - kicked), SYNC_FILE_RANGE_WRITE);
			kicked = got;
		}
		/* Progress in bytes of the (compressed) input, whose size
		 * the caller may know. */
		if (im->o && im->o->progress)
			im->o->progress((uint64_t)im->la->filter_bytes(im->a,
			    -1), im->o->progress_total, im->o->progress_data);
	}
	if (fd >= 0 && !remote && got > kicked)
		(void)sync_file_range(fd, (off64_t)kicked,
		    (off64_t)(got - kicked), SYNC_FILE_RANGE_WRITE);
	if (!rc && got != mf->size)
		rc = bad_entry(im, CKPT_ERR_FORMAT, name, "truncated: %llu of "
		    "%llu bytes", (unsigned long long)got,
		    (unsigned long long)mf->size);
	if (!rc) {
		rc = ckpt_stream_check_final(&sc, &ok, &bad_at, err);
		if (!rc && !ok && sc.bad)
			rc = bad_entry(im, CKPT_ERR_FORMAT, name, "the SHA-256 "
			    "of its bytes from offset %llu differs from the "
			    "manifest's (tampered or damaged)",
			    (unsigned long long)bad_at);
		else if (!rc && !ok)
			rc = bad_entry(im, CKPT_ERR_FORMAT, name, "its SHA-256 "
			    "differs from the manifest's (tampered or "
			    "damaged)");
	}
out:
	ckpt_stream_check_release(&sc);
	if (fd >= 0 && close(fd) && !rc)
		rc = ckpt_error_errno(err, path, "cannot close");
	rc = pipe_upload_finish(im, &pu, rc);
	free(path);
	return rc;
}

static int
take_sig(struct imp *im, struct imp_ckpt *c, struct archive_entry *e,
    const char *name)
{
	char *text, *path;
	size_t len;
	int rc;

	if ((rc = read_small(im, e, name, SIG_MAX, &text, &len)))
		return rc;
	c->have_sig = true;
	if (!c->sv && !c->stage) {
		free(text);
		return CKPT_OK;
	}
	if (asprintf(&path, "%s/%s%s", c->sv ? ckpt_save_path(c->sv) :
	    c->stage,
	    CKPT_MANIFEST_NAME, SIG_SUFFIX) < 0) {
		free(text);
		return ckpt_error_nomem(im->err);
	}
	rc = ckpt_write_file_replace(path, text, len, false,
	    im->err);
	free(path);
	free(text);
	return rc;
}

/* Sets "staged" on the model entry of the weights-only version c. */
static void
mark_staged(json_t *models, const struct imp_ckpt *c)
{
	json_t *v;
	size_t i;

	json_array_foreach(models, i, v)
		if (!strcmp(json_string_value(json_object_get(v,
		    "checkpoint")), c->dir))
			json_object_set_new(v, "staged", json_string(
			    c->stage));
}

/* One entry: its name and type, then whatever it must be next. */
static int
take_entry(struct imp *im, struct archive_entry *e, uint64_t *done)
{
	const char *name = im->la->entry_pathname(e);
	struct imp_ckpt *c;
	const char *rest;
	size_t dl;
	int rc;

	if (!name)
		return bad_entry(im, CKPT_ERR_FORMAT, "", "no name");
	if ((rc = check_name(im, name)))
		return rc;
	if (im->la->entry_filetype(e) == AE_IFDIR && !im->la->entry_hardlink(e))
		return CKPT_OK;		/* other tars list directories */
	if ((rc = check_type(im, e, name)))
		return rc;
	if (!im->have_list) {
		if (strcmp(name, BUNDLE_LIST))
			return bad_entry(im, CKPT_ERR_FORMAT, name, "a bundle "
			    "starts with %s", BUNDLE_LIST);
		return read_list(im, e);
	}
	/* Finished checkpoints move the cursor on. */
	while (im->cur < im->n && im->c[im->cur].have_manifest &&
	    im->c[im->cur].next == ckpt_manifest_file_count(im->c[im->cur].m))
		im->cur++;
	if (im->cur == im->n)
		return bad_entry(im, CKPT_ERR_FORMAT, name, "more than the "
		    "bundle's list holds");
	c = &im->c[im->cur];
	dl = strlen(c->dir);
	if (strncmp(name, c->dir, dl) || name[dl] != '/')
		return bad_entry(im, CKPT_ERR_FORMAT, name, "expected a file "
		    "of %s", c->dir);
	rest = name + dl + 1;
	if (!c->have_manifest) {
		if (strcmp(rest, CKPT_MANIFEST_NAME))
			return bad_entry(im, CKPT_ERR_FORMAT, name, "expected "
			    "%s/%s first", c->dir, CKPT_MANIFEST_NAME);
		return take_manifest(im, c, e, name);
	}
	if (!c->next && !c->have_sig && !strcmp(rest, CKPT_MANIFEST_NAME
	    SIG_SUFFIX))
		return take_sig(im, c, e, name);
	if (strcmp(rest, ckpt_manifest_file(c->m, c->next)->path))
		return bad_entry(im, CKPT_ERR_FORMAT, name, "expected %s/%s "
		    "(files come in manifest order)", c->dir,
		    ckpt_manifest_file(c->m, c->next)->path);
	rc = take_file(im, c, ckpt_manifest_file(c->m, c->next), e, name,
	    done);
	c->next++;
	return rc;
}

static void
imp_release(struct imp *im, bool abort_staged)
{
	/* Last staged first: a run directory made by the first is empty
	 * only once the later stagings in it are gone. */
	for (size_t i = im->n; abort_staged && i-- > 0;)
		ckpt_save_abort(im->c[i].sv);
	for (size_t i = 0; i < im->n; i++) {
		if (abort_staged && im->c[i].stage)
			(void)ckpt_rm_rf(im->c[i].stage);
		free(im->c[i].stage);
		ckpt_save_free(im->c[i].sv);
		ckpt_manifest_free(im->c[i].m);
		free(im->c[i].dir);
		free(im->c[i].run);
		free(im->c[i].target_run);
		free(im->c[i].digest);
		free(im->c[i].committed);
	}
	free(im->c);
	/* a failed import of weights leaves the store as it found it */
	for (int i = 1; abort_staged && i >= 0; i--) {
		char *p = im->made[i] ? ckpt_store_path(im->s, i ? REG_STAGING :
		    REG_DIR) : NULL;

		if (p)
			(void)rmdir(p);
		free(p);
	}
	json_decref(im->seen);
	json_decref(im->models);
	if (im->a)
		im->la->read_free(im->a);
}

static int
read_all(struct imp *im, int fd)
{
	struct ckpt_error *err = im->err;
	struct archive_entry *e;
	uint64_t done = 0;
	int r, rc = CKPT_OK;

	im->la->read_support_filter_gzip(im->a);
	im->la->read_support_filter_zstd(im->a);
	im->la->read_support_format_tar(im->a);
	if (im->la->read_open_fd(im->a, fd, 1 << 20) != ARCHIVE_OK)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, im->shown, 0,
		    "not a bundle: %s", im->la->error_string(im->a));
	while (!rc) {
		im->at = 0;
		r = im->la->read_next_header(im->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		im->at = (int64_t)im->la->read_header_position(im->a);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, im->shown,
			    im->at, "%s", im->la->error_string(im->a) ?
			    im->la->error_string(im->a) : "bad archive");
		rc = take_entry(im, e, &done);
	}
	if (rc)
		return rc;
	if (!im->have_list)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, im->shown, 0,
		    "an empty archive, not a bundle");
	for (size_t i = 0; i < im->n; i++)
		if (!im->c[i].have_manifest || im->c[i].next !=
		    ckpt_manifest_file_count(im->c[i].m))
			return ckpt_error_set(err, CKPT_ERR_FORMAT, im->shown,
			    -1, "truncated: %s is incomplete (%zu of its "
			    "files)", im->c[i].dir, im->c[i].next);
	return CKPT_OK;
}

int
ckpt_import(struct ckpt_store *s, int fd, const struct ckpt_import_options *o,
    char **report, struct ckpt_error *err)
{
	struct ckpt_import_options local;
	struct imp im;
	json_t *r;
	int rc;

	if (report)
		*report = NULL;
	if (!o) {
		local = (struct ckpt_import_options)CKPT_IMPORT_OPTIONS_INIT;
		o = &local;
	}
	if ((rc = ckpt_options_check(o->version,
	    CKPT_IMPORT_OPTIONS_VERSION, "ckpt_import_options", err)))
		return rc;
	if (o->run && (rc = ckpt_name_check(o->run, "run name", err)))
		return rc;
	memset(&im, 0, sizeof(im));
	im.s = s;
	im.o = o;
	im.err = err;
	im.shown = o->name ? o->name : "-";
	if ((rc = ckpt_la_load(&im.la, err)))
		return rc;
	im.a = im.la->read_new();
	im.seen = json_object();
	if (!im.a || !im.seen) {
		imp_release(&im, true);
		return ckpt_error_nomem(err);
	}
	if ((rc = read_all(&im, fd))) {
		imp_release(&im, true);
		return rc;
	}
	for (size_t i = 0; i < im.n && !rc; i++) {
		struct imp_ckpt *c = &im.c[i];

		if (!c->sv)
			continue;
		if ((rc = ckpt_save_finish(c->sv, NULL, err)))
			break;
		c->committed = strdup(ckpt_save_path(c->sv));
	}
	r = json_pack("{s:s, s:[]}", "input", im.shown, "checkpoints");
	for (size_t i = 0; i < im.n && r; i++) {
		struct imp_ckpt *c = &im.c[i];

		if (c->weights) {
			/* promoted by the caller, from where it is staged */
			if (!rc && report)
				mark_staged(im.models, c);
			continue;
		}
		json_array_append_new(json_object_get(r, "checkpoints"),
		    json_pack("{s:s, s:I, s:s, s:s, s:s, s:b}", "run",
		    c->target_run, "step", (json_int_t)c->step, "bundle_run",
		    c->run, "manifest", c->digest, "status", c->identical ?
		    "identical" : c->committed ? "imported" : "not imported",
		    "signature", c->have_sig));
	}
	/* the model versions, for the caller to promote (with lineage) */
	if (r && !rc && im.models)
		json_object_set(r, "models", im.models);
	if (report && r)
		*report = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(r);
	/* staged weights stay for the caller, who has their paths */
	for (size_t i = 0; !rc && report && *report && i < im.n; i++)
		if (im.c[i].weights) {
			free(im.c[i].stage);
			im.c[i].stage = NULL;
		}
	imp_release(&im, true);
	return rc;
}

int
ckpt_import_discard(struct ckpt_store *s, const char *staged,
    struct ckpt_error *err)
{
	char *stg = ckpt_store_path(s, REG_STAGING);
	size_t n = stg ? strlen(stg) : 0;
	int rc = CKPT_OK;

	if (!stg)
		return ckpt_error_nomem(err);
	/* only what ckpt_import staged: one level under registry/.staging */
	if (strncmp(staged, stg, n) || staged[n] != '/' || !staged[n + 1] ||
	    strchr(staged + n + 1, '/') || staged[n + 1] == '.')
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, staged, -1, "not a "
		    "directory ckpt import staged");
	else if (ckpt_rm_rf(staged))
		rc = ckpt_error_errno(err, staged, "cannot remove");
	free(stg);
	return rc;
}
