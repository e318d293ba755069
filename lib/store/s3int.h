/* SPDX-License-Identifier: MIT */
/*
 * s3int.h - what the S3 client's own files share (s3.c, s3mpu.c): one
 * request and the engine that sends it with retries.  Not for callers:
 * they use store/s3.h.
 */
#ifndef CKPT_S3INT_H
#define CKPT_S3INT_H

#include "store/s3.h"

struct s3_req {
	/* What to send. */
	const char *method;		/* GET HEAD PUT POST DELETE */
	const char *key;		/* NULL: the bucket itself */
	const char *query;		/* canonical (sorted, encoded), NULL */
	const char *headers[4];		/* extra "Name: value", signed */
	bool self_sign;			/* s3sign.c signs, not curl */
	const unsigned char *body;
	size_t body_len;
	bool has_body;
	char payload_sha256[65];	/* hex; computed when empty */
	bool ranged;
	uint64_t range_off, range_len;	/* range_len CKPT_S3_TO_END: open */
	ckpt_s3_sink_fn sink;		/* a 2xx body, else into resp */
	void *sink_arg;
	size_t resp_max;		/* 0: error documents only */

	/* What came back (the last attempt). */
	long status;
	unsigned tries;
	char etag[CKPT_S3_ETAG_MAX];
	char error_code[64];		/* x-amz-error-code or <Code> */
	char error_message[160];
	uint64_t content_length, total_size, range_start_got;
	bool have_length, have_range;
	int64_t mtime;			/* Last-Modified, 0: none */
	int64_t date;			/* Date (the service's clock), 0 */
	char *resp;			/* NUL-terminated */
	size_t resp_len;
	uint64_t delivered;		/* bytes to the sink, all attempts */

	/* Per attempt. */
	void *curl;
	const struct ckpt_curl *cu;	/* its functions */
	size_t up_off;
	uint64_t attempt_off;
	char resume_etag[CKPT_S3_ETAG_MAX];
	bool body_started, changed, resp_too_big;
	int sink_rc;
};

/*
 * SigV4 by hand (s3sign.c), for the requests curl 7.88 signs wrongly
 * (UploadPartCopy).  headers are every signed "Name: value" (host,
 * x-amz-date and x-amz-content-sha256 among them); uri and query are
 * canonical already.  *authorization gets the Authorization value.
 * CKPT_ERR_INVALID or CKPT_ERR_NOMEM, no error struct (nothing secret may
 * reach a message).
 */
struct ckpt_s3_sig {
	const char *method, *uri, *query;
	const char *const *headers;
	size_t nheaders;
	const char *payload_sha256;
	const char *amz_date;		/* YYYYMMDDTHHMMSSZ */
	const char *region, *access_key, *secret_key;
};
int ckpt_s3_sigv4(const struct ckpt_s3_sig *in, char **authorization);

int ckpt_s3_request(struct ckpt_s3 *s3, struct s3_req *r,
    struct ckpt_error *err);
void ckpt_s3_req_release(struct s3_req *r);
/* Reads <Code>/<Message> of an error body into r. */
void ckpt_s3_error_doc(struct s3_req *r);
/* The error for an answer the caller did not expect. */
int ckpt_s3_status_error(struct ckpt_s3 *s3, struct s3_req *r,
    unsigned tries, struct ckpt_error *err);
/* An ETag as a header or a listing gives it ("..." or bare), without its
 * quotes, into dst (CKPT_S3_ETAG_MAX bytes, truncated to fit). */
void ckpt_s3_etag_copy(char *dst, const char *v, size_t n);
/* Percent-encodes a query value (newly allocated, NULL on ENOMEM). */
char *ckpt_s3_query_value(const char *s);
const struct ckpt_s3_config *ckpt_s3_config_of(const struct ckpt_s3 *s3);
/* The x-amz-copy-source header naming src (NULL on ENOMEM). */
char *ckpt_s3_copy_source(struct ckpt_s3 *s3, const char *src);
/* A multipart copy of src (src->size bytes, ETag src->etag) to dst. */
int ckpt_s3_copy_multipart(struct ckpt_s3 *s3, const char *src,
    const struct ckpt_s3_object *obj, const char *dst,
    struct ckpt_error *err);
/* Parses one ListMultipartUploads page (also for the fuzz harness). */
int ckpt_s3_uploads_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_upload_fn fn, void *arg, bool *truncated, char **key_marker,
    char **id_marker, struct ckpt_error *err);
/* Parses one ListObjectsV2 page (also for the fuzz harness). */
int ckpt_s3_list_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_list_fn fn, void *arg, bool *truncated, char **token,
    struct ckpt_error *err);

#endif /* CKPT_S3INT_H */
