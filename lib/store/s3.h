/* SPDX-License-Identifier: MIT */
/*
 * s3.h - libckpt's S3 client (internal): the object operations a remote
 * store backend needs, spoken to any S3-compatible service (Ceph RGW,
 * MinIO, AWS, GCS's XML API) over libcurl with SigV4 signing, plus the two
 * small strict parsers it needs (the AWS shared config/credentials INI
 * files and the few XML elements of S3's answers).
 *
 * Self-contained on purpose (only <ckpt.h> and the C library): the test
 * tool and the fuzz harness include it too.
 *
 * The backend seam (issue 10) should need nothing beyond these calls.
 * The shape we want it to have (keys are store-relative, '/'-separated:
 * "runs/R/step-N/model.bin"; the POSIX backend maps them to paths):
 *
 *   struct ckpt_backend_ops {
 *       unsigned version;                       1
 *       const char *name;                       "posix", "s3"
 *       int (*put)(be, key, data, len, flags, info *out, err);
 *           flags CKPT_BE_IF_ABSENT: CKPT_ERR_EXISTS when key exists, and
 *           of two racing creators exactly one wins.  The commit point
 *           (the manifest, written last) and the lock object use it.
 *           POSIX: write temp + link(2) (fails if present) + fsync.
 *       int (*put_file)(be, key, fd, size, observe, arg, info *out, err);
 *           data objects; observe() sees every byte once, in order, so
 *           save hashes in the same read pass.  S3: one PUT or parallel
 *           multipart; POSIX: copy or reflink into staging.
 *       int (*get)(be, key, off, len, sink, arg, info *out, err);
 *           ranged reads (inspect: headers; verify: streams).
 *       int (*stat)(be, key, info *out, err);   CKPT_ERR_NOTFOUND
 *       int (*list)(be, prefix, delimiter, fn, arg, err);
 *           fn(arg, key, info) per object, info NULL for a common
 *           prefix; every error is an error (fail closed), never "empty".
 *       int (*remove)(be, key, err);            absent is success
 *   };
 *   struct ckpt_be_info { uint64_t size; char etag[80]; int64_t mtime; };
 *
 * mtime is the service's clock (S3 Last-Modified): gc thresholds and
 * lock leases compare it with the service's own "now" (the stat of a
 * probe object just written), never with this host's clock alone.  No rename:
 * S3 has none; staging is "objects without a manifest", which list,
 * latest and prune ignore and gc removes after a threshold.  No
 * directories: a run or step is a prefix.
 *
 * Mapping onto this client:
 *
 *   put / put_if_absent         ckpt_s3_put(), CKPT_S3_IF_ABSENT;
 *                               a retried create that finds exactly its
 *                               own bytes counts as its own
 *   put_file                    ckpt_s3_put_fd()
 *   get                         ckpt_s3_get(): resumes after a dropped
 *                               connection, refuses an object that
 *                               changed meanwhile (ETag)
 *   stat                        ckpt_s3_head()
 *   list                        ckpt_s3_list(): every page
 *   remove                      ckpt_s3_delete()
 *
 * Errors: CKPT_ERR_NOTFOUND (404), CKPT_ERR_EXISTS (412 on a conditional
 * create), CKPT_ERR_REFUSED (401/403: credentials, signature, access),
 * CKPT_ERR_IO (everything else once the retries are spent: 5xx, throttling,
 * a dropped or stalled connection); err->path is "s3://BUCKET/KEY" and
 * the message names the method, the HTTP status and the service's error
 * code.  Credentials never appear in an error, a log or a URL.
 *
 * Thread safety: a struct ckpt_s3 may be used by several threads at once
 * (each request takes its own curl handle from a small pool).
 */
#ifndef CKPT_S3_H
#define CKPT_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ckpt.h>

/* Where and how to talk: from the environment and ~/.aws, or by hand. */
struct ckpt_s3_config {
	char *endpoint;		/* "http://127.0.0.1:7480", no trailing '/' */
	char *region;		/* "us-east-1" */
	char *access_key;	/* NULL: none (an error at open) */
	char *secret_key;
	char *session_token;	/* NULL: none */
	bool path_style;	/* http://HOST/BUCKET/KEY, not BUCKET.HOST */
	/* Tunables; 0 means the default in brackets. */
	unsigned max_attempts;	/* [5] tries of one request in all */
	unsigned backoff_ms;	/* [100] first retry delay, doubled, jittered */
	unsigned backoff_max_ms;	/* [5000] */
	unsigned stall_seconds;	/* [30] no byte moved this long: give up */
	unsigned connect_seconds;	/* [10] */
	uint64_t part_size;	/* [16 MiB] multipart part (>= 5 MiB) */
	/* Larger than this, an upload or a server-side copy is multipart
	 * [uploads: part_size; copies: 5 GiB, CopyObject's limit]; at
	 * most 5 GiB (one PUT's limit). */
	uint64_t multipart_threshold;
	uint64_t copy_part_size;	/* [256 MiB] (>= 5 MiB, <= 5 GiB) */
	unsigned parallel;	/* [4] parts in flight */
	unsigned list_page;	/* [1000] keys per ListObjectsV2 answer */
};

/** Zeroes *cfg (all defaults, nothing set). */
void ckpt_s3_config_init(struct ckpt_s3_config *cfg);
/*
 * Fills *cfg as the AWS tools do: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
 * (else endpoint_url in the profile, else AWS's regional endpoint);
 * AWS_REGION or AWS_DEFAULT_REGION (else region in the profile, else
 * us-east-1); AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (else the profile's keys in the shared credentials
 * file, then in the config file); the profile is AWS_PROFILE or
 * "default", the files AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE or
 * ~/.aws/credentials and ~/.aws/config.  Addressing: path-style when
 * CKPT_S3_ADDRESSING_STYLE or the profile's "s3 = addressing_style" says
 * "path", or when the endpoint's host is an IP address or localhost.
 * Transfers: the profile's "s3 = multipart_threshold" and
 * "multipart_chunksize" (bytes, or with KB, MB, GB, TB: the AWS CLI's
 * settings) give multipart_threshold, part_size and copy_part_size.
 * A missing file is no error; a malformed one is (CKPT_ERR_FORMAT, path
 * and byte offset).  Release with ckpt_s3_config_release().
 */
int ckpt_s3_config_load(struct ckpt_s3_config *cfg, struct ckpt_error *err);
/** Frees what *cfg holds, wiping the secrets first. */
void ckpt_s3_config_release(struct ckpt_s3_config *cfg);

/*
 * The strict INI reader of the AWS shared files.  Calls fn for every
 * "key = value" with its section ("default", "profile dev", ...); a
 * nested block ("s3 =" then indented "addressing_style = path") gives key
 * "s3.addressing_style".  Comments start with '#' or ';' at the start of
 * a line.  Anything else (no section yet, no '=', a bad section header,
 * NUL, a key with spaces) is CKPT_ERR_FORMAT naming path and byte offset.
 * fn returns 0 to go on, non-zero to stop with that value.
 */
typedef int (*ckpt_s3_ini_fn)(void *arg, const char *section,
    const char *key, const char *value);
int ckpt_s3_ini_parse(const char *text, size_t len, const char *path,
    ckpt_s3_ini_fn fn, void *arg, struct ckpt_error *err);

/*
 * The strict XML reader of S3's answers: one root element, nested
 * elements, attributes (read and ignored), text, the five predefined
 * entities and character references, comments, CDATA and an XML
 * declaration.  No DOCTYPE (no entity expansion), no mixed content, depth
 * at most 16, names at most 64 bytes.  fn gets every element with no
 * child elements when it closes, as its path from the root joined by '/'
 * ("ListBucketResult/Contents/Key") and its decoded text; and every other
 * element when it closes with text NULL (so a caller can end a record).
 * A malformed document is CKPT_ERR_FORMAT with the byte offset; what is
 * named in err->path is `name`.
 */
typedef int (*ckpt_s3_xml_fn)(void *arg, const char *path, const char *text,
    size_t len);
int ckpt_s3_xml_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_xml_fn fn, void *arg, struct ckpt_error *err);

/*
 * For a listing's fn: the rest of path below the root element root
 * ("/Contents/Key" of "ListBucketResult/Contents/Key", "" for the root
 * itself), or NULL when the document's root is another element.
 */
const char *ckpt_s3_xml_below(const char *path, const char *root);
/* A listing's IsTruncated: "true" or "false"; false when it is neither. */
bool ckpt_s3_xml_bool(const char *text, size_t len, bool *out);
/*
 * A listing's time (LastModified, Initiated) in seconds since the epoch:
 * -2 when the text is too long to be one, -1 when it is not an ISO 8601
 * UTC time.
 */
int64_t ckpt_s3_xml_time(const char *text, size_t len);
/*
 * Replaces the string *field with a copy of the element's text: 0,
 * CKPT_ERR_NOMEM, or -1 (and *field NULL) for text with a NUL in it.
 */
int ckpt_s3_xml_take(char **field, const char *text, size_t len);

struct ckpt_s3;

/*
 * A client for one bucket.  The configuration is copied.  Fails with
 * CKPT_ERR_INVALID for a bad bucket name or endpoint, CKPT_ERR_REFUSED
 * when there are no credentials.  No request is sent.
 */
int ckpt_s3_open(const struct ckpt_s3_config *cfg, const char *bucket,
    struct ckpt_s3 **out, struct ckpt_error *err);
void ckpt_s3_free(struct ckpt_s3 *s3);
/** The bucket the client talks to. */
const char *ckpt_s3_bucket(const struct ckpt_s3 *s3);

#define CKPT_S3_ETAG_MAX 80

struct ckpt_s3_object {
	uint64_t size;
	char etag[CKPT_S3_ETAG_MAX];	/* without the quotes */
	int64_t mtime;			/* the service's clock, s; 0: unknown */
};

/* Counters, for tests and benchmarks (since open). */
struct ckpt_s3_stats {
	uint64_t requests;	/* attempts sent, retries included */
	uint64_t retries;
	uint64_t bytes_up;
	uint64_t bytes_down;
};
void ckpt_s3_get_stats(struct ckpt_s3 *s3, struct ckpt_s3_stats *out);

#define CKPT_S3_IF_ABSENT 1u	/* create only: If-None-Match: * */

/*
 * Uploads len bytes as key in one PUT, with the body's SHA-256 sent as
 * the signed payload hash (x-amz-content-sha256), which the service
 * checks: a body that does not match is refused (HTTP 400).
 * CKPT_S3_IF_ABSENT: fails with CKPT_ERR_EXISTS when key exists, so of
 * two concurrent creators exactly one wins; when a retry is refused
 * because the lost answer of an earlier attempt had created the object,
 * an object with exactly our bytes (at most 1 MiB) counts as ours.
 * *out (may be NULL) gets the size, ETag and modification time.
 */
int ckpt_s3_put(struct ckpt_s3 *s3, const char *key, const void *data,
    size_t len, unsigned flags, struct ckpt_s3_object *out,
    struct ckpt_error *err);

/* Sees the bytes of an upload once each, in order; non-zero aborts. */
typedef int (*ckpt_s3_observe_fn)(void *arg, const void *data, size_t len);

/*
 * Uploads size bytes read from fd (from its current offset, with read(2))
 * as key: one PUT up to the multipart threshold, else a multipart upload
 * with cfg.parallel parts in flight, each part's SHA-256 sent and
 * checked; the upload is aborted on any failure, so nothing is left
 * behind but what an interrupted process leaves (see ckpt_s3_mpu_abort).
 * observe (may be NULL) sees the bytes in order as they are read.  flags
 * as for ckpt_s3_put (CKPT_S3_IF_ABSENT: one PUT up to the part size,
 * CKPT_ERR_UNSUPPORTED above it).
 */
int ckpt_s3_put_fd(struct ckpt_s3 *s3, const char *key, int fd,
    uint64_t size, unsigned flags, ckpt_s3_observe_fn observe, void *arg,
    struct ckpt_s3_object *out, struct ckpt_error *err);

/* Receives downloaded bytes in order; non-zero aborts. */
typedef int (*ckpt_s3_sink_fn)(void *arg, const void *data, size_t len);

#define CKPT_S3_TO_END UINT64_MAX

/*
 * Downloads len bytes of key from offset (len CKPT_S3_TO_END: to the end)
 * into sink.  A dropped connection resumes where it stopped, refusing an
 * object whose ETag changed meanwhile.  A range past the end is
 * CKPT_ERR_LIMIT.  *out (may be NULL) gets the object's whole size and
 * ETag.
 */
int ckpt_s3_get(struct ckpt_s3 *s3, const char *key, uint64_t offset,
    uint64_t len, ckpt_s3_sink_fn sink, void *arg,
    struct ckpt_s3_object *out, struct ckpt_error *err);

/*
 * The same into memory: *data (NUL-terminated, the caller frees) and
 * *n; CKPT_ERR_LIMIT when more than max bytes would come.
 */
int ckpt_s3_get_mem(struct ckpt_s3 *s3, const char *key, uint64_t offset,
    uint64_t len, size_t max, char **data, size_t *n,
    struct ckpt_s3_object *out, struct ckpt_error *err);

/** Size and ETag of key; CKPT_ERR_NOTFOUND when there is none. */
int ckpt_s3_head(struct ckpt_s3 *s3, const char *key,
    struct ckpt_s3_object *out, struct ckpt_error *err);

/** Removes key; a key that is not there is no error (S3 says 204). */
int ckpt_s3_delete(struct ckpt_s3 *s3, const char *key,
    struct ckpt_error *err);

/*
 * Calls fn for every key under prefix in key order, page after page
 * (ListObjectsV2).  With a delimiter (may be NULL), keys that contain it
 * after the prefix are rolled up into common prefixes, given to fn with
 * obj NULL, in the order of the service's answer (RGW gives a page's
 * prefixes before its keys: a caller that needs one sequence sorts).
 * fn returns 0 to go on, non-zero to stop with that value.
 */
typedef int (*ckpt_s3_list_fn)(void *arg, const char *key,
    const struct ckpt_s3_object *obj);
int ckpt_s3_list(struct ckpt_s3 *s3, const char *prefix,
    const char *delimiter, ckpt_s3_list_fn fn, void *arg,
    struct ckpt_error *err);
/*
 * The first key under prefix, if any (one ListObjectsV2 with max-keys
 * 1): whether a prefix exists costs one short answer, not a page of a
 * thousand keys.
 */
int ckpt_s3_list_first(struct ckpt_s3 *s3, const char *prefix,
    ckpt_s3_list_fn fn, void *arg, struct ckpt_error *err);

/*
 * Multipart primitives (ckpt_s3_put_fd drives them).  Parts are numbered
 * from 1; each but the last at least 5 MiB.  complete takes the parts'
 * ETags in order and checks that the service answered success (S3 can
 * answer 200 with an error in the body).
 */
int ckpt_s3_mpu_begin(struct ckpt_s3 *s3, const char *key,
    char **upload_id, struct ckpt_error *err);
int ckpt_s3_mpu_part(struct ckpt_s3 *s3, const char *key,
    const char *upload_id, unsigned part, const void *data, size_t len,
    char etag[CKPT_S3_ETAG_MAX], struct ckpt_error *err);
int ckpt_s3_mpu_complete(struct ckpt_s3 *s3, const char *key,
    const char *upload_id, char (*etags)[CKPT_S3_ETAG_MAX], unsigned n,
    struct ckpt_s3_object *out, struct ckpt_error *err);
int ckpt_s3_mpu_abort(struct ckpt_s3 *s3, const char *key,
    const char *upload_id, struct ckpt_error *err);

/*
 * The service's clock minus this host's, in seconds, as of the last
 * answer that carried a Date header: false before any.  Ages of objects
 * (Last-Modified) are measured against it, so that a lease or a
 * threshold never rests on this host's clock alone.
 */
bool ckpt_s3_clock_skew(struct ckpt_s3 *s3, int64_t *skew);

/*
 * Replaces key only while it is still the object with etag (If-Match):
 * CKPT_ERR_EXISTS when it changed or is gone.  The store lock's lease
 * is renewed with it.
 */
int ckpt_s3_put_if_match(struct ckpt_s3 *s3, const char *key,
    const void *data, size_t len, const char *etag,
    struct ckpt_s3_object *out, struct ckpt_error *err);

/*
 * Server-side copy of src (size bytes; CKPT_S3_TO_END: unknown, asked
 * with a HEAD) to dst in the bucket; no bytes travel through this host.
 * Up to the copy threshold (cfg.multipart_threshold, else 5 GiB) one
 * CopyObject; above it a multipart upload of dst whose parts are
 * UploadPartCopy of ranges of src, each conditional on src's ETag (a
 * source replaced meanwhile fails the copy), cfg.parallel at a time,
 * aborted on any failure.  Those requests are signed by s3sign.c:
 * libcurl 7.88 orders x-amz-copy-source-range before x-amz-copy-source
 * in its canonical request and the service refuses the signature.  A
 * 200 answer without a CopyObjectResult / CopyPartResult is an error, as
 * S3 may report one that way.
 */
int ckpt_s3_copy(struct ckpt_s3 *s3, const char *src, const char *dst,
    struct ckpt_error *err);
int ckpt_s3_copy_sized(struct ckpt_s3 *s3, const char *src, uint64_t size,
    const char *dst, struct ckpt_error *err);

/* An unfinished multipart upload (ListMultipartUploads). */
struct ckpt_s3_upload {
	const char *key;
	const char *upload_id;
	int64_t initiated;	/* the service's clock, s; 0: unknown */
};
typedef int (*ckpt_s3_upload_fn)(void *arg, const struct ckpt_s3_upload *u);
/*
 * Calls fn for every unfinished multipart upload under prefix, page
 * after page; fn returns non-zero to stop with that value.  What a
 * killed upload leaves behind (its parts are stored, never listed as an
 * object): ckpt_s3_mpu_abort frees it.
 */
int ckpt_s3_list_uploads(struct ckpt_s3 *s3, const char *prefix,
    ckpt_s3_upload_fn fn, void *arg, struct ckpt_error *err);

#endif /* CKPT_S3_H */
