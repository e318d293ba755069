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
	size_t up_off;
	uint64_t attempt_off;
	char resume_etag[CKPT_S3_ETAG_MAX];
	bool body_started, changed, resp_too_big;
	int sink_rc;
};

int ckpt_s3_request(struct ckpt_s3 *s3, struct s3_req *r,
    struct ckpt_error *err);
void ckpt_s3_req_release(struct s3_req *r);
/* Reads <Code>/<Message> of an error body into r. */
void ckpt_s3_error_doc(struct s3_req *r);
/* The error for an answer the caller did not expect. */
int ckpt_s3_status_error(struct ckpt_s3 *s3, struct s3_req *r,
    unsigned tries, struct ckpt_error *err);
/* Percent-encodes a query value (newly allocated, NULL on ENOMEM). */
char *ckpt_s3_query_value(const char *s);
const struct ckpt_s3_config *ckpt_s3_config_of(const struct ckpt_s3 *s3);
/* Parses one ListObjectsV2 page (also for the fuzz harness). */
int ckpt_s3_list_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_list_fn fn, void *arg, bool *truncated, char **token,
    struct ckpt_error *err);

#endif /* CKPT_S3INT_H */
