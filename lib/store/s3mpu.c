/* SPDX-License-Identifier: MIT */
/*
 * s3mpu.c - uploads of files: one PUT for a small file, else an S3
 * multipart upload whose parts travel in parallel.  One thread reads the
 * file in order (so a caller can hash it in the same pass) while up to
 * cfg.parallel parts are in flight, each with its own SHA-256 as the
 * signed payload hash, which the service checks.  Any failure aborts the
 * upload so that the service keeps no orphan parts.  Also the multipart
 * server-side copy (UploadPartCopy, for objects above the copy
 * threshold) and the listing of unfinished uploads that gc aborts.
 */
#include "util/internal.h"

#include <pthread.h>
#include <unistd.h>

#include "store/s3int.h"
#include "store/store.h"

#define S3_MAX_PARTS 10000

static char *
upload_query(const char *upload_id, unsigned part)
{
	char *id = ckpt_s3_query_value(upload_id), *q = NULL;
	int n;

	if (!id)
		return NULL;
	/* Name order: partNumber before uploadId. */
	if (part)
		n = asprintf(&q, "partNumber=%u&uploadId=%s", part, id);
	else
		n = asprintf(&q, "uploadId=%s", id);
	free(id);
	return n < 0 ? NULL : q;
}

static int
answer_fail(struct ckpt_s3 *s3, const struct s3_req *r, const char *what,
    struct ckpt_error *err)
{
	return ckpt_error_set(err, CKPT_ERR_FORMAT, r->key, -1, "%s %s: %s",
	    r->method, r->query ? r->query : "", what);
}

struct upload_id {
	char *id;
	bool root_ok;
};

static int
initiate_field(void *arg, const char *path, const char *text, size_t len)
{
	struct upload_id *u = arg;

	if (!strncmp(path, "InitiateMultipartUploadResult", 29))
		u->root_ok = true;
	if (!strcmp(path, "InitiateMultipartUploadResult/UploadId") && text) {
		free(u->id);
		if (!(u->id = strndup(text, len)))
			return CKPT_ERR_NOMEM;
	}
	return 0;
}

int
ckpt_s3_mpu_begin(struct ckpt_s3 *s3, const char *key, char **upload_id,
    struct ckpt_error *err)
{
	/* "uploads=", not "uploads": curl signs the query as given and the
	 * service canonicalises a bare name with its '=' (else 403). */
	struct s3_req r = { .method = "POST", .key = key, .query = "uploads=",
	    .body = (const unsigned char *)"", .has_body = true,
	    .resp_max = 64 * 1024 };
	struct upload_id u = { NULL, false };
	int rc;

	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status != 200)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	if (!rc)
		rc = ckpt_s3_xml_parse(r.resp ? r.resp : "", r.resp_len, key,
		    initiate_field, &u, err);
	if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	if (!rc && (!u.root_ok || !u.id || !*u.id || strlen(u.id) > 1024))
		rc = answer_fail(s3, &r, "no UploadId in the answer", err);
	ckpt_s3_req_release(&r);
	if (rc) {
		free(u.id);
		return rc;
	}
	*upload_id = u.id;
	return 0;
}

static bool
etag_ok(const char *e)
{
	if (!*e)
		return false;
	for (; *e; e++)
		if (!((*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'f') ||
		    (*e >= 'A' && *e <= 'F') || *e == '-'))
			return false;
	return true;
}

int
ckpt_s3_mpu_part(struct ckpt_s3 *s3, const char *key, const char *upload_id,
    unsigned part, const void *data, size_t len,
    char etag[CKPT_S3_ETAG_MAX], struct ckpt_error *err)
{
	struct s3_req r = { .method = "PUT", .key = key, .body = data,
	    .body_len = len, .has_body = true };
	char *q = upload_query(upload_id, part);
	int rc;

	if (!q)
		return ckpt_error_nomem(err);
	r.query = q;
	/* The payload hash (computed by the engine) is the part's checksum:
	 * the service refuses a part whose bytes do not match it. */
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status != 200)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	if (!rc && !etag_ok(r.etag))
		rc = answer_fail(s3, &r, "part answered without a valid ETag",
		    err);
	if (!rc)
		memcpy(etag, r.etag, CKPT_S3_ETAG_MAX);
	ckpt_s3_req_release(&r);
	free(q);
	return rc;
}

struct complete_doc {
	bool ok;
	char code[64];
	char etag[CKPT_S3_ETAG_MAX];
};

static int
complete_field(void *arg, const char *path, const char *text, size_t len)
{
	struct complete_doc *d = arg;

	if (!strcmp(path, "CompleteMultipartUploadResult"))
		d->ok = true;
	if (!strcmp(path, "CompleteMultipartUploadResult/ETag") && text)
		ckpt_s3_etag_copy(d->etag, text, len);
	if (!strcmp(path, "Error/Code") && text && len < sizeof(d->code)) {
		memcpy(d->code, text, len);
		d->code[len] = '\0';
	}
	return 0;
}

static char *
complete_body(char (*etags)[CKPT_S3_ETAG_MAX], unsigned n)
{
	size_t cap = 64 + (size_t)n * (64 + CKPT_S3_ETAG_MAX), len = 0;
	char *b = malloc(cap);
	int w;

	if (!b)
		return NULL;
	len = (size_t)snprintf(b, cap, "<CompleteMultipartUpload>");
	for (unsigned i = 0; i < n; i++) {
		w = snprintf(b + len, cap - len, "<Part><PartNumber>%u"
		    "</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1, etags[i]);
		if (w < 0 || (size_t)w >= cap - len) {
			free(b);
			return NULL;
		}
		len += (size_t)w;
	}
	w = snprintf(b + len, cap - len, "</CompleteMultipartUpload>");
	if (w < 0 || (size_t)w >= cap - len) {
		free(b);
		return NULL;
	}
	return b;
}

int
ckpt_s3_mpu_complete(struct ckpt_s3 *s3, const char *key,
    const char *upload_id, char (*etags)[CKPT_S3_ETAG_MAX], unsigned n,
    struct ckpt_s3_object *out, struct ckpt_error *err)
{
	struct s3_req r = { .method = "POST", .key = key, .has_body = true,
	    .resp_max = 64 * 1024 };
	struct complete_doc d = { false, "", "" };
	char *q, *body;
	int rc;

	for (unsigned i = 0; i < n; i++)
		if (!etag_ok(etags[i]))
			return ckpt_error_set(err, CKPT_ERR_INVALID, key, -1,
			    "part %u has no valid ETag", i + 1);
	q = upload_query(upload_id, 0);
	body = q ? complete_body(etags, n) : NULL;
	if (!body) {
		free(q);
		return ckpt_error_nomem(err);
	}
	r.query = q;
	r.body = (const unsigned char *)body;
	r.body_len = strlen(body);
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status != 200)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	/* S3 may answer 200 and put an error in the body. */
	if (!rc)
		rc = ckpt_s3_xml_parse(r.resp ? r.resp : "", r.resp_len, key,
		    complete_field, &d, err);
	if (!rc && !d.ok) {
		memcpy(r.error_code, d.code, sizeof(d.code));
		r.status = 200;
		rc = d.code[0] ? ckpt_s3_status_error(s3, &r, r.tries, err) :
		    answer_fail(s3, &r, "not a CompleteMultipartUploadResult",
		    err);
	}
	if (!rc && out)
		memcpy(out->etag, d.etag[0] ? d.etag : r.etag,
		    sizeof(out->etag));
	ckpt_s3_req_release(&r);
	free(body);
	free(q);
	return rc;
}

int
ckpt_s3_mpu_abort(struct ckpt_s3 *s3, const char *key, const char *upload_id,
    struct ckpt_error *err)
{
	struct s3_req r = { .method = "DELETE", .key = key };
	char *q = upload_query(upload_id, 0);
	int rc;

	if (!q)
		return ckpt_error_nomem(err);
	r.query = q;
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status / 100 != 2 &&
	    !(r.status == 404 && !strcmp(r.error_code, "NoSuchUpload")))
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	ckpt_s3_req_release(&r);
	free(q);
	return rc;
}

/* ---- put_fd ------------------------------------------------------- */

static int
read_full(int fd, unsigned char *buf, size_t len, const char *key,
    struct ckpt_error *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ckpt_error_errno(err, key, "read failed");
		if (!n)
			return ckpt_error_set(err, CKPT_ERR_IO, key,
			    -1, "the file ended %zu bytes early (it shrank "
			    "while it was uploaded?)", len - done);
		done += (size_t)n;
	}
	return 0;
}

struct slot {
	pthread_t thread;
	bool busy;
	struct ckpt_s3 *s3;
	const char *key, *upload_id;
	unsigned part;
	unsigned char *buf;
	size_t len;
	char *etag;
	int rc;
	struct ckpt_error err;
};

static void *
slot_upload(void *arg)
{
	struct slot *sl = arg;

	sl->rc = ckpt_s3_mpu_part(sl->s3, sl->key, sl->upload_id, sl->part,
	    sl->buf, sl->len, sl->etag, &sl->err);
	return NULL;
}

/* Waits for a slot's part; its error becomes *err once. */
static int
slot_wait(struct slot *sl, int rc, struct ckpt_error *err)
{
	if (!sl->busy)
		return rc;
	pthread_join(sl->thread, NULL);
	sl->busy = false;
	if (sl->rc && !rc) {
		if (err)
			*err = sl->err;
		return sl->rc;
	}
	return rc;
}

static int
put_multipart(struct ckpt_s3 *s3, const char *key, int fd, uint64_t size,
    ckpt_s3_observe_fn observe, void *arg, struct ckpt_s3_object *out,
    struct ckpt_error *err)
{
	const struct ckpt_s3_config *cfg = ckpt_s3_config_of(s3);
	uint64_t psize = cfg->part_size, nparts = (size + psize - 1) / psize;
	unsigned nslots = cfg->parallel;
	char (*etags)[CKPT_S3_ETAG_MAX] = NULL;
	struct slot *slots = NULL;
	struct ckpt_s3_object got;
	struct ckpt_error ignored;
	char *upload_id = NULL;
	int rc = 0;

	if (nparts > S3_MAX_PARTS) {
		/* Grow the parts rather than fail: S3 allows 10,000. */
		psize = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
		nparts = (size + psize - 1) / psize;
	}
	if (psize > SIZE_MAX / 2)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, key, -1,
		    "part size too large");
	if (!(etags = calloc((size_t)nparts, sizeof(*etags))) ||
	    !(slots = calloc(nslots, sizeof(*slots)))) {
		free(etags);
		return ckpt_error_nomem(err);
	}
	for (unsigned i = 0; i < nslots && !rc; i++)
		if (!(slots[i].buf = malloc((size_t)psize)))
			rc = ckpt_error_nomem(err);
	if (!rc)
		rc = ckpt_s3_mpu_begin(s3, key, &upload_id, err);
	for (uint64_t p = 0; p < nparts && !rc; p++) {
		struct slot *sl = &slots[p % nslots];
		uint64_t off = p * psize;

		if ((rc = slot_wait(sl, rc, err)))
			break;
		sl->len = (size_t)(size - off < psize ? size - off : psize);
		if ((rc = read_full(fd, sl->buf, sl->len, key, err)))
			break;
		if (observe && (rc = observe(arg, sl->buf, sl->len))) {
			rc = ckpt_error_set(err, rc, key, (int64_t)off,
			    "upload stopped by its observer");
			break;
		}
		sl->s3 = s3;
		sl->key = key;
		sl->upload_id = upload_id;
		sl->part = (unsigned)p + 1;
		sl->etag = etags[p];
		ckpt_error_clear(&sl->err);
		if (pthread_create(&sl->thread, NULL, slot_upload, sl)) {
			rc = ckpt_error_set(err, CKPT_ERR_IO, key, -1,
			    "cannot start an upload thread");
			break;
		}
		sl->busy = true;
	}
	for (unsigned i = 0; i < nslots; i++)
		rc = slot_wait(&slots[i], rc, err);
	if (!rc)
		rc = ckpt_s3_mpu_complete(s3, key, upload_id, etags,
		    (unsigned)nparts, out, err);
	/* The service's size must be ours: a cheap end-to-end check. */
	if (!rc && !(rc = ckpt_s3_head(s3, key, &got, err)) &&
	    got.size != size)
		rc = ckpt_error_set(err, CKPT_ERR_IO, key, -1,
		    "uploaded %llu bytes but the service holds %llu",
		    (unsigned long long)size, (unsigned long long)got.size);
	if (rc && upload_id)
		ckpt_s3_mpu_abort(s3, key, upload_id, &ignored);
	if (!rc && out)
		out->size = size;
	for (unsigned i = 0; i < nslots; i++)
		free(slots[i].buf);
	free(slots);
	free(etags);
	free(upload_id);
	return rc;
}

int
ckpt_s3_put_fd(struct ckpt_s3 *s3, const char *key, int fd, uint64_t size,
    unsigned flags, ckpt_s3_observe_fn observe, void *arg,
    struct ckpt_s3_object *out, struct ckpt_error *err)
{
	const struct ckpt_s3_config *cfg = ckpt_s3_config_of(s3);
	unsigned char *buf;
	int rc;

	/* A conditional create keeps to one PUT up to a part (records). */
	if (size > cfg->multipart_threshold && !((flags & CKPT_S3_IF_ABSENT) &&
	    size <= cfg->part_size)) {
		if (flags & CKPT_S3_IF_ABSENT)
			return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, key,
			    -1, "a conditional create of more than one part");
		return put_multipart(s3, key, fd, size, observe, arg, out, err);
	}
	if (!(buf = malloc(size ? (size_t)size : 1)))
		return ckpt_error_nomem(err);
	rc = read_full(fd, buf, (size_t)size, key, err);
	if (!rc && observe && (rc = observe(arg, buf, (size_t)size)))
		rc = ckpt_error_set(err, rc, key, 0,
		    "upload stopped by its observer");
	if (!rc)
		rc = ckpt_s3_put(s3, key, buf, (size_t)size, flags, out, err);
	free(buf);
	return rc;
}

/* ---- multipart copy ---------------------------------------------- */

struct copy_part_doc {
	bool ok;
	char etag[CKPT_S3_ETAG_MAX];
};

static int
copy_part_field(void *arg, const char *path, const char *text, size_t len)
{
	struct copy_part_doc *d = arg;

	if (!strncmp(path, "CopyPartResult", 14))
		d->ok = true;
	if (!strcmp(path, "CopyPartResult/ETag") && text)
		ckpt_s3_etag_copy(d->etag, text, len);
	return 0;
}

/* UploadPartCopy: bytes [off, off + len) of src as part of dst. */
static int
copy_part(struct ckpt_s3 *s3, const char *src, const char *src_etag,
    const char *dst, const char *upload_id, unsigned part, uint64_t off,
    uint64_t len, char etag[CKPT_S3_ETAG_MAX], struct ckpt_error *err)
{
	struct s3_req r = { .method = "PUT", .key = dst, .has_body = true,
	    .body = (const unsigned char *)"", .resp_max = 64 * 1024,
	    .self_sign = true };
	struct copy_part_doc d = { false, "" };
	char range[80], cond[CKPT_S3_ETAG_MAX + 40];
	char *q = upload_query(upload_id, part);
	char *source = ckpt_s3_copy_source(s3, src);
	struct ckpt_error ignored;
	int rc;

	if (!q || !source) {
		free(q);
		free(source);
		return ckpt_error_nomem(err);
	}
	snprintf(range, sizeof(range), "x-amz-copy-source-range: bytes=%llu-"
	    "%llu", (unsigned long long)off,
	    (unsigned long long)(off + len - 1));
	/* The bytes of the source we looked at, or none: a source replaced
	 * during the copy fails it (412) rather than mixing two objects. */
	snprintf(cond, sizeof(cond), "x-amz-copy-source-if-match: \"%s\"",
	    src_etag);
	r.query = q;
	r.headers[0] = source;
	r.headers[1] = range;
	r.headers[2] = cond;
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status != 200)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	/* S3 may answer 200 and put the error in the body. */
	if (!rc && (ckpt_s3_xml_parse(r.resp ? r.resp : "", r.resp_len,
	    dst, copy_part_field, &d, &ignored) || !d.ok || !etag_ok(d.etag))) {
		ckpt_s3_error_doc(&r);
		rc = ckpt_error_set(err, CKPT_ERR_IO, dst, -1, "PUT (part %u "
		    "copied from %s): the service answered %ld without a "
		    "copy result%s%s", part, src, r.status,
		    r.error_code[0] ? ": " : "", r.error_code);
	}
	if (!rc)
		memcpy(etag, d.etag, CKPT_S3_ETAG_MAX);
	ckpt_s3_req_release(&r);
	free(source);
	free(q);
	return rc;
}

struct copy_job {
	struct ckpt_s3 *s3;
	const char *src, *src_etag, *dst, *upload_id;
	uint64_t size, psize, nparts;
	char (*etags)[CKPT_S3_ETAG_MAX];
	pthread_mutex_t mu;
	uint64_t next;		/* the next part to take, from 0 */
	int rc;			/* the first failure */
	struct ckpt_error err;
};

static void *
copy_worker(void *arg)
{
	struct copy_job *j = arg;
	struct ckpt_error e;

	for (;;) {
		uint64_t p, off;
		int rc;

		pthread_mutex_lock(&j->mu);
		p = j->rc ? j->nparts : j->next++;
		pthread_mutex_unlock(&j->mu);
		if (p >= j->nparts)
			return NULL;
		off = p * j->psize;
		ckpt_error_clear(&e);
		rc = copy_part(j->s3, j->src, j->src_etag, j->dst, j->upload_id,
		    (unsigned)p + 1, off, j->size - off < j->psize ?
		    j->size - off : j->psize, j->etags[p], &e);
		if (rc) {
			pthread_mutex_lock(&j->mu);
			if (!j->rc) {
				j->rc = rc;
				j->err = e;
			}
			pthread_mutex_unlock(&j->mu);
		}
	}
}

int
ckpt_s3_copy_multipart(struct ckpt_s3 *s3, const char *src,
    const struct ckpt_s3_object *obj, const char *dst,
    struct ckpt_error *err)
{
	const struct ckpt_s3_config *cfg = ckpt_s3_config_of(s3);
	struct copy_job j = { .s3 = s3, .src = src, .src_etag = obj->etag,
	    .dst = dst, .size = obj->size, .psize = cfg->copy_part_size };
	pthread_t threads[16];
	unsigned nthreads = 0, want;
	struct ckpt_s3_object got;
	struct ckpt_error ignored;
	char *upload_id = NULL;
	int rc;

	if (!obj->size || !etag_ok(obj->etag))
		return ckpt_error_set(err, CKPT_ERR_INVALID, src, -1, "a "
		    "multipart copy needs a non-empty source with an ETag");
	j.nparts = (j.size + j.psize - 1) / j.psize;
	if (j.nparts > S3_MAX_PARTS) {
		j.psize = (j.size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
		j.nparts = (j.size + j.psize - 1) / j.psize;
	}
	if (!(j.etags = calloc((size_t)j.nparts, sizeof(*j.etags))))
		return ckpt_error_nomem(err);
	if (pthread_mutex_init(&j.mu, NULL)) {
		free(j.etags);
		return ckpt_error_nomem(err);
	}
	ckpt_error_clear(&j.err);
	rc = ckpt_s3_mpu_begin(s3, dst, &upload_id, err);
	j.upload_id = upload_id;
	want = cfg->parallel < CKPT_ARRAY_SIZE(threads) ? cfg->parallel :
	    (unsigned)CKPT_ARRAY_SIZE(threads);
	if (want > j.nparts)
		want = (unsigned)j.nparts;
	for (; !rc && nthreads < want; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, copy_worker, &j))
			break;
	if (!rc && !nthreads)
		rc = ckpt_error_set(err, CKPT_ERR_IO, dst, -1, "cannot start a "
		    "copy thread");
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	if (!rc && j.rc) {
		rc = j.rc;
		if (err)
			*err = j.err;
	}
	if (!rc)
		rc = ckpt_s3_mpu_complete(s3, dst, upload_id, j.etags,
		    (unsigned)j.nparts, NULL, err);
	if (!rc && !(rc = ckpt_s3_head(s3, dst, &got, err)) &&
	    got.size != obj->size)
		rc = ckpt_error_set(err, CKPT_ERR_IO, dst, -1, "copied %llu "
		    "bytes but the service holds %llu",
		    (unsigned long long)obj->size,
		    (unsigned long long)got.size);
	if (rc && upload_id)
		ckpt_s3_mpu_abort(s3, dst, upload_id, &ignored);
	pthread_mutex_destroy(&j.mu);
	free(j.etags);
	free(upload_id);
	return rc;
}

/* ---- ListMultipartUploads ----------------------------------------- */

struct uploads_page {
	ckpt_s3_upload_fn fn;
	void *arg;
	char *key, *id;
	int64_t initiated;
	bool truncated;
	char *next_key, *next_id;
	const char *name;
	struct ckpt_error *err;
	int user_rc;
};

static int
uploads_fail(struct uploads_page *pg, const char *what)
{
	return ckpt_error_set(pg->err, CKPT_ERR_FORMAT, pg->name, -1,
	    "ListMultipartUploads answer: %s", what);
}

static int
uploads_field(void *arg, const char *path, const char *text, size_t len)
{
	struct uploads_page *pg = arg;
	int rc;

	if (!(path = ckpt_s3_xml_below(path, "ListMultipartUploadsResult")))
		return uploads_fail(pg, "not a ListMultipartUploadsResult");
	if ((!strcmp(path, "/Upload/Key") && text &&
	    (rc = ckpt_s3_xml_take(&pg->key, text, len))) ||
	    (!strcmp(path, "/Upload/UploadId") && text &&
	    (rc = ckpt_s3_xml_take(&pg->id, text, len))) ||
	    (!strcmp(path, "/NextKeyMarker") && text &&
	    (rc = ckpt_s3_xml_take(&pg->next_key, text, len))) ||
	    (!strcmp(path, "/NextUploadIdMarker") && text &&
	    (rc = ckpt_s3_xml_take(&pg->next_id, text, len))))
		return rc < 0 ? uploads_fail(pg, "NUL in a field") : rc;
	if (!strcmp(path, "/Upload/Initiated") && text) {
		if ((pg->initiated = ckpt_s3_xml_time(text, len)) == -2)
			return uploads_fail(pg, "Initiated too long");
		if (pg->initiated < 0)
			return uploads_fail(pg, "Initiated is not an ISO 8601 "
			    "UTC time");
		return 0;
	}
	if (!strcmp(path, "/Upload") && !text) {
		struct ckpt_s3_upload u;

		if (!pg->key || !pg->id)
			return uploads_fail(pg, "Upload without Key or "
			    "UploadId");
		u.key = pg->key;
		u.upload_id = pg->id;
		u.initiated = pg->initiated;
		rc = pg->fn(pg->arg, &u);
		free(pg->key);
		free(pg->id);
		pg->key = pg->id = NULL;
		pg->initiated = 0;
		if (rc)
			pg->user_rc = rc;
		return rc;
	}
	if (!strcmp(path, "/IsTruncated") && text) {
		if (!ckpt_s3_xml_bool(text, len, &pg->truncated))
			return uploads_fail(pg, "IsTruncated is not "
			    "true/false");
	}
	return 0;
}

int
ckpt_s3_uploads_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_upload_fn fn, void *arg, bool *truncated, char **key_marker,
    char **id_marker, struct ckpt_error *err)
{
	struct uploads_page pg = { .fn = fn, .arg = arg, .name = name,
	    .err = err };
	int rc;

	rc = ckpt_s3_xml_parse(doc, len, name, uploads_field, &pg, err);
	if (rc == CKPT_ERR_NOMEM && !pg.user_rc)
		rc = ckpt_error_nomem(err);
	free(pg.key);
	free(pg.id);
	if (!rc && pg.truncated && (!pg.next_key || !*pg.next_key))
		rc = uploads_fail(&pg, "truncated without NextKeyMarker");
	if (rc) {
		free(pg.next_key);
		free(pg.next_id);
		return rc;
	}
	*truncated = pg.truncated;
	*key_marker = pg.next_key;
	*id_marker = pg.next_id;
	return 0;
}

static char *
uploads_query(const char *prefix, const char *key_marker,
    const char *id_marker)
{
	char *p = NULL, *k = NULL, *i = NULL, *q = NULL;
	int n = -1;

	/* Parameters in name order: curl 7.88 signs the query as given;
	 * "uploads=" with its '=' as the service canonicalises it. */
	if ((!prefix || (p = ckpt_s3_query_value(prefix))) &&
	    (!key_marker || (k = ckpt_s3_query_value(key_marker))) &&
	    (!id_marker || (i = ckpt_s3_query_value(id_marker))))
		n = asprintf(&q, "%s%s%smax-uploads=1000%s%s%s%s%suploads=",
		    k ? "key-marker=" : "", k ? k : "", k ? "&" : "",
		    p ? "&prefix=" : "", p ? p : "",
		    i ? "&upload-id-marker=" : "", i ? i : "", "&");
	free(p);
	free(k);
	free(i);
	return n < 0 ? NULL : q;
}

int
ckpt_s3_list_uploads(struct ckpt_s3 *s3, const char *prefix,
    ckpt_s3_upload_fn fn, void *arg, struct ckpt_error *err)
{
	char *kmark = NULL, *imark = NULL, *nk, *ni, *query, name[1100];
	bool truncated = true;
	int rc = 0;

	if (prefix && !*prefix)
		prefix = NULL;
	snprintf(name, sizeof(name), "s3://%s/?uploads&prefix=%s",
	    ckpt_s3_bucket(s3), prefix ? prefix : "");
	while (truncated && !rc) {
		struct s3_req r = { .method = "GET", .resp_max = 16 << 20 };

		if (!(query = uploads_query(prefix, kmark, imark))) {
			rc = ckpt_error_nomem(err);
			break;
		}
		r.query = query;
		rc = ckpt_s3_request(s3, &r, err);
		if (!rc && r.status != 200)
			rc = ckpt_s3_status_error(s3, &r, r.tries, err);
		nk = ni = NULL;
		if (!rc)
			rc = ckpt_s3_uploads_parse(r.resp ? r.resp : "",
			    r.resp_len, name, fn, arg, &truncated, &nk, &ni,
			    err);
		/* A service that repeats its marker would loop for ever. */
		if (!rc && truncated && kmark && !strcmp(kmark, nk) &&
		    ((!imark && !ni) || (imark && ni && !strcmp(imark, ni))))
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, name, -1,
			    "ListMultipartUploads answer repeats its markers");
		free(kmark);
		free(imark);
		kmark = nk;
		imark = ni;
		free(query);
		ckpt_s3_req_release(&r);
	}
	free(kmark);
	free(imark);
	return rc;
}
