/* SPDX-License-Identifier: MIT */
/*
 * s3.c - the S3 client's request engine and single-request operations
 * (PUT, conditional create, GET and ranged GET, HEAD, DELETE,
 * ListObjectsV2, the multipart primitives).  libcurl does HTTP and the
 * SigV4 signature (CURLOPT_AWS_SIGV4); what curl 7.88 leaves to us, and
 * what RGW insists on, is done here once: the payload hash header on
 * every request, canonical query strings, strict key encoding, uploads of
 * known length.  Every request retries with jittered exponential backoff
 * on 5xx, throttling (429, 503 SlowDown) and dropped or stalled
 * connections; a GET resumes where it stopped.
 */
#include "util/internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <time.h>

#include "store/s3.h"
#include "store/s3curl.h"
#include "store/s3int.h"
#include "store/store.h"

#define S3_POOL_MAX 16
#define S3_ERRBODY_MAX (64 * 1024)
#define S3_LIST_MAX (16 * 1024 * 1024)
#define S3_PUT_MAX ((uint64_t)5 << 30)	/* one PUT, one CopyObject */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct ckpt_s3 {
	struct ckpt_s3_config cfg;	/* own copies, defaults filled in */
	char *bucket;
	char *base;			/* URL of the bucket, no trailing '/' */
	char *sigv4;			/* "aws:amz:REGION:s3" */
	char *userpwd;			/* "ACCESS:SECRET": a secret */
	char *token_header;		/* "x-amz-security-token: ...": too */
	char *access_key, *secret_key;	/* for s3sign.c: secrets too */
	pthread_mutex_t lock;
	CURL *pool[S3_POOL_MAX];
	unsigned npool;
	struct ckpt_s3_stats stats;
	int64_t skew;			/* the service's clock minus ours */
	bool have_skew;
	uint64_t copy_max;		/* larger: a multipart copy */
	const struct ckpt_curl *cu;	/* libcurl, loaded on first open */
};

static void
wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

static bool
bucket_name_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-'))
			return false;
	}
	return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' &&
	    b[n - 1] != '-';
}

static char *
dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*oom = true;
	return d;
}

/* The bucket's URL: http://HOST/BUCKET or http://BUCKET.HOST. */
static char *
bucket_url(const char *endpoint, const char *bucket, bool path_style)
{
	const char *host = strstr(endpoint, "://");
	char *url;
	int n;

	if (path_style)
		n = asprintf(&url, "%s/%s", endpoint, bucket);
	else
		n = asprintf(&url, "%.*s%s.%s", (int)(host + 3 - endpoint),
		    endpoint, bucket, host + 3);
	return n < 0 ? NULL : url;
}

static int
check_config(const struct ckpt_s3_config *cfg, const char *bucket,
    struct ckpt_error *err)
{
	const char *ep = cfg->endpoint, *slash;
	size_t n;

	if (!bucket || !bucket_name_ok(bucket))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "S3 bucket name '%s' is not 3 to 63 of a-z, 0-9, '.', "
		    "'-'", bucket ? bucket : "");
	if (!ep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "S3 endpoint '%s' is not an http:// or https:// URL",
		    ep ? ep : "");
	n = strlen(ep);
	slash = strchr(strstr(ep, "://") + 3, '/');
	/* One trailing '/' is fine (the AWS tools accept it). */
	if ((slash && slash[1]) || strchr(ep, '?') || strchr(ep, '@') ||
	    strchr(ep, '#') || n < 9 || (slash && slash == ep + n - 1 &&
	    slash[-1] == '/'))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "S3 endpoint '%s' must be scheme://host[:port] alone", ep);
	if (!cfg->region || !*cfg->region || strchr(cfg->region, ':'))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "S3 region is missing or malformed");
	if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key ||
	    !*cfg->secret_key)
		return ckpt_error_set(err, CKPT_ERR_REFUSED, NULL, -1,
		    "no S3 credentials: set AWS_ACCESS_KEY_ID and "
		    "AWS_SECRET_ACCESS_KEY, or a profile in "
		    "~/.aws/credentials");
	if (strchr(cfg->access_key, ':'))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "the S3 access key id contains ':'");
	if (cfg->session_token && strpbrk(cfg->session_token, "\r\n"))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "the S3 session token contains a line break");
	if (cfg->part_size && cfg->part_size < 5 * 1024 * 1024)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "S3 part size below 5 MiB");
	if (cfg->copy_part_size && (cfg->copy_part_size < 5 * 1024 * 1024 ||
	    cfg->copy_part_size > S3_PUT_MAX))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "S3 copy part size not between 5 MiB and 5 GiB");
	return 0;
}

int
ckpt_s3_open(const struct ckpt_s3_config *cfg, const char *bucket,
    struct ckpt_s3 **out, struct ckpt_error *err)
{
	const struct ckpt_curl *cu;
	struct ckpt_s3 *s3;
	bool oom = false;
	int rc;

	if ((rc = check_config(cfg, bucket, err)) ||
	    (rc = ckpt_curl_load(&cu, err)))
		return rc;
	if (!(s3 = calloc(1, sizeof(*s3))))
		return ckpt_error_nomem(err);
	s3->cu = cu;
	s3->cfg = *cfg;
	s3->cfg.endpoint = dup_or_null(cfg->endpoint, &oom);
	if (s3->cfg.endpoint && s3->cfg.endpoint[strlen(s3->cfg.endpoint) - 1]
	    == '/')
		s3->cfg.endpoint[strlen(s3->cfg.endpoint) - 1] = '\0';
	s3->cfg.region = dup_or_null(cfg->region, &oom);
	s3->cfg.access_key = NULL;
	s3->cfg.secret_key = NULL;
	s3->cfg.session_token = NULL;
	s3->bucket = dup_or_null(bucket, &oom);
	if (!s3->cfg.max_attempts)
		s3->cfg.max_attempts = 5;
	if (!s3->cfg.backoff_ms)
		s3->cfg.backoff_ms = 100;
	if (!s3->cfg.backoff_max_ms)
		s3->cfg.backoff_max_ms = 5000;
	if (!s3->cfg.stall_seconds)
		s3->cfg.stall_seconds = 30;
	if (!s3->cfg.connect_seconds)
		s3->cfg.connect_seconds = 10;
	if (!s3->cfg.part_size)
		s3->cfg.part_size = 16 * 1024 * 1024;
	if (!s3->cfg.parallel)
		s3->cfg.parallel = 4;
	/* Copies: one CopyObject up to 5 GiB unless told otherwise. */
	s3->copy_max = s3->cfg.multipart_threshold &&
	    s3->cfg.multipart_threshold < S3_PUT_MAX ?
	    s3->cfg.multipart_threshold : S3_PUT_MAX;
	if (!s3->cfg.multipart_threshold)
		s3->cfg.multipart_threshold = s3->cfg.part_size;
	if (s3->cfg.multipart_threshold > S3_PUT_MAX)
		s3->cfg.multipart_threshold = S3_PUT_MAX;
	if (!s3->cfg.copy_part_size)
		s3->cfg.copy_part_size = (uint64_t)256 << 20;
	if (!s3->cfg.list_page || s3->cfg.list_page > 1000)
		s3->cfg.list_page = 1000;
	if (s3->cfg.parallel > S3_POOL_MAX)
		s3->cfg.parallel = S3_POOL_MAX;
	if (!oom && (asprintf(&s3->sigv4, "aws:amz:%s:s3", cfg->region) < 0 ||
	    asprintf(&s3->userpwd, "%s:%s", cfg->access_key,
	    cfg->secret_key) < 0))
		oom = true;
	if (!oom && (!(s3->access_key = strdup(cfg->access_key)) ||
	    !(s3->secret_key = strdup(cfg->secret_key))))
		oom = true;
	if (!oom && cfg->session_token && *cfg->session_token &&
	    asprintf(&s3->token_header, "x-amz-security-token: %s",
	    cfg->session_token) < 0)
		oom = true;
	if (!oom && !(s3->base = bucket_url(s3->cfg.endpoint, bucket,
	    cfg->path_style)))
		oom = true;
	if (oom || pthread_mutex_init(&s3->lock, NULL)) {
		s3->npool = 0;
		ckpt_s3_free(s3);
		return ckpt_error_nomem(err);
	}
	*out = s3;
	return 0;
}

void
ckpt_s3_free(struct ckpt_s3 *s3)
{
	if (!s3)
		return;
	for (unsigned i = 0; i < s3->npool; i++)
		s3->cu->easy_cleanup(s3->pool[i]);
	if (s3->base)
		pthread_mutex_destroy(&s3->lock);
	free(s3->cfg.endpoint);
	free(s3->cfg.region);
	free(s3->bucket);
	free(s3->base);
	free(s3->sigv4);
	wipe_free(s3->userpwd);
	wipe_free(s3->token_header);
	wipe_free(s3->access_key);
	wipe_free(s3->secret_key);
	free(s3);
}

void
ckpt_s3_get_stats(struct ckpt_s3 *s3, struct ckpt_s3_stats *out)
{
	pthread_mutex_lock(&s3->lock);
	*out = s3->stats;
	pthread_mutex_unlock(&s3->lock);
}

const struct ckpt_s3_config *
ckpt_s3_config_of(const struct ckpt_s3 *s3)
{
	return &s3->cfg;
}

static CURL *
handle_get(struct ckpt_s3 *s3)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s3->lock);
	if (s3->npool)
		h = s3->pool[--s3->npool];
	pthread_mutex_unlock(&s3->lock);
	return h ? h : s3->cu->easy_init();
}

/* Keeps the handle, and so its open connection, for the next request. */
static void
handle_put(struct ckpt_s3 *s3, CURL *h)
{
	pthread_mutex_lock(&s3->lock);
	if (s3->npool < S3_POOL_MAX) {
		s3->pool[s3->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s3->lock);
	if (h)
		s3->cu->easy_cleanup(h);
}

/* Percent-encodes s (RFC 3986 unreserved stay; '/' too when keep_slash). */
static char *
uri_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

char *
ckpt_s3_query_value(const char *s)
{
	return uri_encode(s, false);
}

static void
req_error_path(const struct ckpt_s3 *s3, const struct s3_req *r,
    char *buf, size_t len)
{
	int n = snprintf(buf, len, "s3://%s/%s", s3->bucket,
	    r->key ? r->key : "");

	if (n < 0 || (size_t)n >= len)
		buf[len - 1] = '\0';
}

/* ---- callbacks ---------------------------------------------------- */

static size_t
read_body(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_req *r = arg;
	size_t n = size * nitems, left = r->body_len - r->up_off;

	if (n > left)
		n = left;
	if (!n)
		return 0;
	memcpy(buf, r->body + r->up_off, n);
	r->up_off += n;
	return n;
}

static int
seek_body(void *arg, curl_off_t offset, int origin)
{
	struct s3_req *r = arg;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > r->body_len)
		return CURL_SEEKFUNC_FAIL;
	r->up_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static bool
header_is(const char *line, size_t n, const char *name, const char **val,
    size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return false;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
	    line[n - 1] == ' '))
		n--;
	*val = line;
	*vlen = n;
	return true;
}

static void
copy_header(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

void
ckpt_s3_etag_copy(char *dst, const char *v, size_t n)
{
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	copy_header(dst, CKPT_S3_ETAG_MAX, v, n);
}

static bool
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || !ckpt_mul_u64(v, 10, &v) ||
		    !ckpt_add_u64(v, (uint64_t)(s[i] - '0'), &v))
			return false;
	}
	*out = v;
	return true;
}

/* "bytes A-B/TOTAL" */
static void
parse_content_range(struct s3_req *r, const char *v, size_t n)
{
	const char *dash, *slash;

	if (n < 6 || strncmp(v, "bytes ", 6))
		return;
	v += 6;
	n -= 6;
	dash = memchr(v, '-', n);
	slash = memchr(v, '/', n);
	if (!dash || !slash || slash < dash)
		return;
	if (parse_u64(v, (size_t)(dash - v), &r->range_start_got) &&
	    parse_u64(slash + 1, n - (size_t)(slash + 1 - v), &r->total_size))
		r->have_range = true;
}

static size_t
on_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct s3_req *r = arg;
	const struct ckpt_curl *cu = r->cu;
	size_t n = size * nitems, vlen;
	const char *v;

	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* A new answer (after "100 Continue"): forget the last one. */
		r->etag[0] = '\0';
		r->have_length = r->have_range = false;
		r->error_code[0] = '\0';
	} else if (header_is(line, n, "ETag", &v, &vlen)) {
		ckpt_s3_etag_copy(r->etag, v, vlen);
	} else if (header_is(line, n, "Content-Length", &v, &vlen)) {
		r->have_length = parse_u64(v, vlen, &r->content_length);
	} else if (header_is(line, n, "Content-Range", &v, &vlen)) {
		parse_content_range(r, v, vlen);
	} else if (header_is(line, n, "x-amz-error-code", &v, &vlen)) {
		copy_header(r->error_code, sizeof(r->error_code), v, vlen);
	} else if (header_is(line, n, "Date", &v, &vlen)) {
		char d[64];

		copy_header(d, sizeof(d), v, vlen);
		r->date = (int64_t)cu->getdate(d, NULL);
		if (r->date < 0)
			r->date = 0;
	}
	return n;
}

static int
append_resp(struct s3_req *r, const char *data, size_t n, size_t max)
{
	char *p;

	if (r->resp_len + n > max) {
		r->resp_too_big = true;
		return -1;
	}
	if (!(p = realloc(r->resp, r->resp_len + n + 1)))
		return -1;
	memcpy(p + r->resp_len, data, n);
	r->resp = p;
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return 0;
}

static size_t
on_body(char *data, size_t size, size_t nitems, void *arg)
{
	struct s3_req *r = arg;
	const struct ckpt_curl *cu = r->cu;
	size_t n = size * nitems;
	long status = 0;

	cu->easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (!r->sink || (status != 200 && status != 206))
		return append_resp(r, data, n, r->sink || !r->resp_max ?
		    S3_ERRBODY_MAX : r->resp_max) ? 0 : n;
	if (!r->body_started) {
		r->body_started = true;
		/* A resumed download must continue the same object. */
		if (r->resume_etag[0] && strcmp(r->resume_etag, r->etag)) {
			r->changed = true;
			return 0;
		}
		if (r->attempt_off && (status != 206 || !r->have_range ||
		    r->range_start_got != r->attempt_off)) {
			r->changed = true;
			return 0;
		}
	}
	if ((r->sink_rc = r->sink(r->sink_arg, data, n)))
		return 0;
	r->delivered += n;
	return n;
}

/* ---- one attempt, then the retry loop ----------------------------- */

static struct curl_slist *
build_headers(struct ckpt_s3 *s3, const struct s3_req *r, bool *oom)
{
	const struct ckpt_curl *cu = s3->cu;
	struct curl_slist *l = NULL, *t;
	char sha[96];

	snprintf(sha, sizeof(sha), "x-amz-content-sha256: %s",
	    r->payload_sha256[0] ? r->payload_sha256 : S3_EMPTY_SHA256);
	/* Not "Expect:" to turn 100-continue off: curl 7.88 signs a header
	 * without a value as well, and the service then finds another
	 * signature (403).  CURLOPT_EXPECT_100_TIMEOUT_MS bounds the wait. */
	if (!(t = cu->slist_append(l, sha)))
		goto oom;
	l = t;
	if (s3->token_header) {
		if (!(t = cu->slist_append(l, s3->token_header)))
			goto oom;
		l = t;
	}
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(r->headers) && r->headers[i];
	    i++) {
		if (!(t = cu->slist_append(l, r->headers[i])))
			goto oom;
		l = t;
	}
	return l;
oom:
	cu->slist_free_all(l);
	*oom = true;
	return NULL;
}

/*
 * The headers of a request signed here (s3sign.c), for one attempt: its
 * own date, the Host curl would send, the payload hash, the session
 * token, the request's own, and the Authorization over all of them.
 */
static struct curl_slist *
build_signed_headers(struct ckpt_s3 *s3, const struct s3_req *r,
    const char *uri, bool *oom)
{
	const struct ckpt_curl *cu = s3->cu;
	const char *host = strstr(s3->base, "://") + 3;
	const char *slash = strchr(host, '/');
	const char *v[4 + CKPT_ARRAY_SIZE(r->headers)];
	char hosth[300], date[40], amz[17], sha[96], *auth = NULL, *ah = NULL;
	struct curl_slist *l = NULL, *t;
	struct ckpt_s3_sig sig = { .method = r->method, .uri = uri,
	    .query = r->query ? r->query : "", .headers = v,
	    .region = s3->cfg.region, .access_key = s3->access_key,
	    .secret_key = s3->secret_key, .amz_date = amz };
	size_t n = 0;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(amz, sizeof(amz), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(hosth, sizeof(hosth), "Host: %.*s", (int)(slash ?
	    (size_t)(slash - host) : strlen(host)), host);
	snprintf(date, sizeof(date), "x-amz-date: %s", amz);
	snprintf(sha, sizeof(sha), "x-amz-content-sha256: %s",
	    r->payload_sha256[0] ? r->payload_sha256 : S3_EMPTY_SHA256);
	sig.payload_sha256 = r->payload_sha256[0] ? r->payload_sha256 :
	    S3_EMPTY_SHA256;
	v[n++] = hosth;
	v[n++] = date;
	v[n++] = sha;
	if (s3->token_header)
		v[n++] = s3->token_header;
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(r->headers) && r->headers[i];
	    i++)
		v[n++] = r->headers[i];
	sig.nheaders = n;
	if (ckpt_s3_sigv4(&sig, &auth) ||
	    asprintf(&ah, "Authorization: %s", auth) < 0) {
		wipe_free(auth);
		*oom = true;
		return NULL;
	}
	wipe_free(auth);
	for (size_t i = 0; i <= n; i++) {
		if (!(t = cu->slist_append(l, i < n ? v[i] : ah))) {
			cu->slist_free_all(l);
			free(ah);
			*oom = true;
			return NULL;
		}
		l = t;
	}
	free(ah);
	return l;
}

/* The canonical URI of a request: the URL's path, encoded. */
static char *
request_uri(struct ckpt_s3 *s3, const struct s3_req *r)
{
	const char *host = strstr(s3->base, "://") + 3;
	const char *path = strchr(host, '/');
	char *key = NULL, *uri;
	int n;

	if (r->key && !(key = uri_encode(r->key, true)))
		return NULL;
	n = asprintf(&uri, "%s/%s", path ? path : "", key ? key : "");
	free(key);
	return n < 0 ? NULL : uri;
}

static char *
request_url(struct ckpt_s3 *s3, const struct s3_req *r)
{
	char *key = NULL, *url;
	int n;

	if (r->key && !(key = uri_encode(r->key, true)))
		return NULL;
	n = asprintf(&url, "%s/%s%s%s", s3->base, key ? key : "",
	    r->query ? "?" : "", r->query ? r->query : "");
	free(key);
	return n < 0 ? NULL : url;
}

static CURLcode
attempt(struct ckpt_s3 *s3, CURL *h, struct s3_req *r, const char *url,
    struct curl_slist *hdrs, char *errbuf)
{
	const struct ckpt_curl *cu = s3->cu;
	curl_off_t mtime;
	char range[64];
	CURLcode cc;

	cu->easy_reset(h);
	r->curl = h;
	r->cu = s3->cu;
	cu->easy_setopt(h, CURLOPT_URL, url);
	cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (!r->self_sign) {
		cu->easy_setopt(h, CURLOPT_USERPWD, s3->userpwd);
		cu->easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
	}
	cu->easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	cu->easy_setopt(h, CURLOPT_HEADERDATA, r);
	cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	cu->easy_setopt(h, CURLOPT_WRITEDATA, r);
	cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
	    (long)s3->cfg.connect_seconds);
	/* A stall: less than 1 byte/s for stall_seconds, either way. */
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
	    (long)s3->cfg.stall_seconds);
	cu->easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	cu->easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
	cu->easy_setopt(h, CURLOPT_FILETIME, 1L);
	/* Fewer, larger callbacks and socket writes than the 16/64 KiB
	 * defaults: a 1 GiB transfer is otherwise mostly bookkeeping. */
	cu->easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	cu->easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
	if (r->has_body) {
		r->up_off = 0;
		cu->easy_setopt(h, CURLOPT_UPLOAD, 1L);
		cu->easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)r->body_len);
		cu->easy_setopt(h, CURLOPT_READFUNCTION, read_body);
		cu->easy_setopt(h, CURLOPT_READDATA, r);
		cu->easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_body);
		cu->easy_setopt(h, CURLOPT_SEEKDATA, r);
		if (strcmp(r->method, "PUT"))
			cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (!strcmp(r->method, "HEAD")) {
		cu->easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "GET")) {
		cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (r->ranged || r->attempt_off) {
		uint64_t start = r->range_off + r->delivered;

		if (r->range_len == CKPT_S3_TO_END)
			snprintf(range, sizeof(range), "%llu-",
			    (unsigned long long)start);
		else
			snprintf(range, sizeof(range), "%llu-%llu",
			    (unsigned long long)start,
			    (unsigned long long)(r->range_off + r->range_len -
			    1));
		cu->easy_setopt(h, CURLOPT_RANGE, range);
	}
	errbuf[0] = '\0';
	cc = cu->easy_perform(h);
	cu->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (cu->easy_getinfo(h, CURLINFO_FILETIME_T, &mtime) != CURLE_OK ||
	    mtime < 0)
		mtime = 0;
	r->mtime = (int64_t)mtime;
	return cc;
}

/* The <Code> and <Message> of an S3 error document. */
struct err_doc {
	char code[64];
	char message[160];
};

static int
error_field(void *arg, const char *path, const char *text, size_t len)
{
	struct err_doc *d = arg;

	if (!text)
		return 0;
	if (!strcmp(path, "Error/Code"))
		copy_header(d->code, sizeof(d->code), text, len);
	else if (!strcmp(path, "Error/Message"))
		copy_header(d->message, sizeof(d->message), text, len);
	return 0;
}

/* Replaces anything but printable ASCII: a service's text goes to a tty. */
static void
printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void
ckpt_s3_error_doc(struct s3_req *r)
{
	struct err_doc d = { "", "" };
	struct ckpt_error ignored;

	if (r->resp_len)
		ckpt_s3_xml_parse(r->resp, r->resp_len, "error", error_field,
		    &d, &ignored);
	if (d.code[0])
		memcpy(r->error_code, d.code, sizeof(d.code));
	memcpy(r->error_message, d.message, sizeof(d.message));
	printable(r->error_code);
	printable(r->error_message);
}

static bool
status_retryable(const struct s3_req *r)
{
	return r->status >= 500 || r->status == 429 ||
	    (r->status == 400 && !strcmp(r->error_code, "RequestTimeout"));
}

static bool
curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static void
backoff(const struct ckpt_s3 *s3, unsigned attempt_no, bool throttled)
{
	uint64_t d = (uint64_t)s3->cfg.backoff_ms << (attempt_no - 1);
	struct timespec ts;

	if (throttled)
		d *= 4;
	if (d > s3->cfg.backoff_max_ms)
		d = s3->cfg.backoff_max_ms;
	/* Equal jitter: half fixed, half random, so that clients that
	 * failed together do not retry together. */
	d = d / 2 + randombytes_uniform((uint32_t)(d / 2 + 1));
	ts.tv_sec = (time_t)(d / 1000);
	ts.tv_nsec = (long)(d % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int
transport_error(struct ckpt_s3 *s3, struct s3_req *r, CURLcode cc,
    const char *errbuf, unsigned tries, struct ckpt_error *err)
{
	const struct ckpt_curl *cu = s3->cu;
	char path[CKPT_ERROR_PATH_MAX];

	req_error_path(s3, r, path, sizeof(path));
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return ckpt_error_set(err, CKPT_ERR_IO, path, -1,
		    "%s: transfer stalled (no data for %u s) after %u "
		    "attempt%s", r->method, s3->cfg.stall_seconds, tries,
		    tries == 1 ? "" : "s");
	return ckpt_error_set(err, CKPT_ERR_IO, path, -1,
	    "%s: %s%s%s after %u attempt%s", r->method, cu->easy_strerror(cc),
	    errbuf[0] ? ": " : "", errbuf, tries, tries == 1 ? "" : "s");
}

/*
 * The error for an answered request: 404 NOTFOUND, 401/403 REFUSED, 416
 * LIMIT, else IO; the caller maps what it expects (412) first.
 */
int
ckpt_s3_status_error(struct ckpt_s3 *s3, struct s3_req *r, unsigned tries,
    struct ckpt_error *err)
{
	char path[CKPT_ERROR_PATH_MAX];
	int code = CKPT_ERR_IO;
	const char *hint = "";

	ckpt_s3_error_doc(r);
	req_error_path(s3, r, path, sizeof(path));
	if (r->status == 404)
		code = CKPT_ERR_NOTFOUND;
	else if (r->status == 401 || r->status == 403)
		code = CKPT_ERR_REFUSED;
	else if (r->status == 416)
		code = CKPT_ERR_LIMIT;
	if (!strcmp(r->error_code, "SignatureDoesNotMatch"))
		hint = " (wrong secret key?)";
	else if (!strcmp(r->error_code, "InvalidAccessKeyId"))
		hint = " (unknown access key id)";
	else if (r->status == 404 && !r->error_code[0] && r->key)
		hint = " (no such key)";
	else if (r->status == 403 && !r->error_code[0])
		hint = " (access denied: wrong credentials or no permission)";
	return ckpt_error_set(err, code, path, -1,
	    "%s: HTTP %ld%s%s%s%s%s%s%s", r->method, r->status,
	    r->error_code[0] ? " " : "", r->error_code, hint,
	    r->error_message[0] ? ": " : "", r->error_message,
	    tries > 1 ? " after " : "", tries > 1 ? "retries" : "");
}

static void
count(struct ckpt_s3 *s3, const struct s3_req *r, uint64_t down, bool retry)
{
	pthread_mutex_lock(&s3->lock);
	/* The service's clock as of this answer (Date: seconds). */
	if (r->date > 0) {
		s3->skew = r->date - (int64_t)time(NULL);
		s3->have_skew = true;
	}
	s3->stats.requests++;
	s3->stats.retries += retry;
	s3->stats.bytes_up += r->has_body ? r->body_len : 0;
	s3->stats.bytes_down += down;
	pthread_mutex_unlock(&s3->lock);
}

/*
 * Sends r with retries.  Returns 0 with r->status set for any answer the
 * caller must judge (2xx, 3xx, 4xx but 429), or an error when the
 * retries are spent on 5xx, throttling or transport failures, when the
 * sink failed (its code) or when a resumed download changed.
 */
int
ckpt_s3_request(struct ckpt_s3 *s3, struct s3_req *r, struct ckpt_error *err)
{
	const struct ckpt_curl *cu = s3->cu;
	char errbuf[CURL_ERROR_SIZE], path[CKPT_ERROR_PATH_MAX];
	struct curl_slist *hdrs;
	bool oom = false;
	unsigned tries;
	CURLcode cc = CURLE_OK;
	char *url, *uri;
	CURL *h;
	int rc = 0;

	if (r->has_body && !r->payload_sha256[0]) {
		unsigned char md[CKPT_SHA256_BYTES];
		struct ckpt_sha256 sh;

		if ((rc = ckpt_sha256_init(&sh, err)))
			return rc;
		ckpt_sha256_update(&sh, r->body, r->body_len);
		if ((rc = ckpt_sha256_final(&sh, md, err)))
			return rc;
		ckpt_hex(md, sizeof(md), r->payload_sha256);
	}
	hdrs = r->self_sign ? NULL : build_headers(s3, r, &oom);
	uri = r->self_sign ? request_uri(s3, r) : NULL;
	url = oom || (r->self_sign && !uri) ? NULL : request_url(s3, r);
	h = url ? handle_get(s3) : NULL;
	if (!h) {
		cu->slist_free_all(hdrs);
		free(url);
		free(uri);
		return ckpt_error_nomem(err);
	}
	for (tries = 1;; tries++) {
		uint64_t before = r->delivered;

		/* A signature of our own holds the time: one per attempt. */
		if (r->self_sign) {
			cu->slist_free_all(hdrs);
			if (!(hdrs = build_signed_headers(s3, r, uri, &oom))) {
				rc = ckpt_error_nomem(err);
				break;
			}
		}

		free(r->resp);
		r->resp = NULL;
		r->resp_len = 0;
		r->resp_too_big = r->changed = r->body_started = false;
		r->sink_rc = 0;
		r->status = 0;
		r->date = 0;
		r->error_code[0] = r->error_message[0] = '\0';
		r->attempt_off = r->delivered ? r->range_off + r->delivered : 0;
		if (r->delivered && !r->resume_etag[0])
			memcpy(r->resume_etag, r->etag, sizeof(r->etag));
		cc = attempt(s3, h, r, url, hdrs, errbuf);
		count(s3, r, r->delivered - before + r->resp_len, tries > 1);
		if (r->sink_rc) {
			req_error_path(s3, r, path, sizeof(path));
			rc = ckpt_error_set(err, r->sink_rc, path, (int64_t)(
			    r->range_off + r->delivered), "%s: the receiver of "
			    "the data stopped (%s)", r->method,
			    ckpt_strerror(r->sink_rc));
			break;
		}
		if (r->changed) {
			req_error_path(s3, r, path, sizeof(path));
			rc = ckpt_error_set(err, CKPT_ERR_IO, path, -1,
			    "%s: the object changed while it was read "
			    "(resumed at byte %llu)", r->method,
			    (unsigned long long)(r->range_off + r->delivered));
			break;
		}
		if (r->resp_too_big) {
			req_error_path(s3, r, path, sizeof(path));
			rc = ckpt_error_set(err, CKPT_ERR_LIMIT, path, -1,
			    "%s: answer larger than %zu bytes", r->method,
			    r->resp_max ? r->resp_max : (size_t)S3_ERRBODY_MAX);
			break;
		}
		if (cc == CURLE_OK) {
			if (r->status >= 400)
				ckpt_s3_error_doc(r);
			if (!status_retryable(r))
				break;
		} else if (!curl_retryable(cc)) {
			rc = transport_error(s3, r, cc, errbuf, tries, err);
			break;
		}
		if (tries >= s3->cfg.max_attempts) {
			rc = cc == CURLE_OK ?
			    ckpt_s3_status_error(s3, r, tries, err) :
			    transport_error(s3, r, cc, errbuf, tries, err);
			break;
		}
		backoff(s3, tries, r->status == 503 || r->status == 429);
	}
	r->tries = tries;
	handle_put(s3, h);
	cu->slist_free_all(hdrs);
	free(url);
	free(uri);
	return rc;
}

void
ckpt_s3_req_release(struct s3_req *r)
{
	free(r->resp);
	r->resp = NULL;
	r->resp_len = 0;
}

static void
fill_object(const struct s3_req *r, struct ckpt_s3_object *out)
{
	if (!out)
		return;
	out->size = r->have_range ? r->total_size : r->content_length;
	memcpy(out->etag, r->etag, sizeof(out->etag));
	out->mtime = r->mtime;
}

/* What a PUT of len bytes made: its ETag and time from the answer. */
static void
fill_put(const struct s3_req *r, uint64_t len, struct ckpt_s3_object *out)
{
	if (!out)
		return;
	out->size = len;
	memcpy(out->etag, r->etag, sizeof(out->etag));
	out->mtime = r->mtime;
}

/* A conditional PUT the service refused: why, and its HTTP answer. */
static int
put_refused(struct ckpt_s3 *s3, const struct s3_req *r, const char *why,
    struct ckpt_error *err)
{
	char path[CKPT_ERROR_PATH_MAX];

	req_error_path(s3, r, path, sizeof(path));
	return ckpt_error_set(err, CKPT_ERR_EXISTS, path, -1,
	    "PUT: %s (HTTP %ld%s%s)", why, r->status,
	    r->error_code[0] ? " " : "", r->error_code);
}

/* ---- the operations ----------------------------------------------- */

static int
check_key(struct ckpt_s3 *s3, const char *key, struct ckpt_error *err)
{
	size_t n = key ? strlen(key) : 0;

	if (!n || n > 1024)
		return ckpt_error_set(err, CKPT_ERR_INVALID, s3->bucket, -1,
		    "S3 key must be 1 to 1024 bytes");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return ckpt_error_set(err, CKPT_ERR_INVALID, s3->bucket,
			    (int64_t)i, "control character in S3 key");
	return 0;
}

/*
 * A conditional create refused on a retry may have been refused because
 * the attempt before succeeded and only its answer was lost.  When the
 * object holds exactly our bytes, the create was ours (or someone's with
 * identical content, which comes to the same: commit records and lock
 * owner records are unique).  Small objects only: these are records.
 */
static bool
ours_after_retry(struct ckpt_s3 *s3, const char *key, const void *data,
    size_t len)
{
	struct ckpt_error ignored;
	size_t n;
	char *got;
	bool same;

	if (len > 1024 * 1024 ||
	    ckpt_s3_get_mem(s3, key, 0, CKPT_S3_TO_END, len, &got, &n, NULL,
	    &ignored))
		return false;
	same = n == len && !memcmp(got, data, len);
	free(got);
	return same;
}

int
ckpt_s3_put(struct ckpt_s3 *s3, const char *key, const void *data,
    size_t len, unsigned flags, struct ckpt_s3_object *out,
    struct ckpt_error *err)
{
	struct s3_req r = { .method = "PUT", .key = key, .body = data,
	    .body_len = len, .has_body = true };
	int rc;

	if ((rc = check_key(s3, key, err)))
		return rc;
	/* The engine sends the body's SHA-256 as the signed payload hash,
	 * which the service checks (400 on a mismatch): the checksum.  Not
	 * x-amz-checksum-sha256 as well: redundant with it on AWS, and RGW
	 * 16 ignores it (a wrong value is accepted). */
	if (flags & CKPT_S3_IF_ABSENT)
		r.headers[0] = "If-None-Match: *";
	rc = ckpt_s3_request(s3, &r, err);
	/* Not only after our own retries: libcurl itself sends a request
	 * again when a reused connection dies before the answer. */
	if (!rc && r.status == 412 && (flags & CKPT_S3_IF_ABSENT) &&
	    ours_after_retry(s3, key, data, len))
		r.status = 200;
	if (!rc && (r.status == 412 || (r.status == 409 &&
	    (flags & CKPT_S3_IF_ABSENT))))
		rc = put_refused(s3, &r, "the key exists already", err);
	else if (!rc && r.status / 100 != 2)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	if (!rc)
		fill_put(&r, len, out);
	ckpt_s3_req_release(&r);
	return rc;
}

int
ckpt_s3_get(struct ckpt_s3 *s3, const char *key, uint64_t offset,
    uint64_t len, ckpt_s3_sink_fn sink, void *arg,
    struct ckpt_s3_object *out, struct ckpt_error *err)
{
	struct s3_req r = { .method = "GET", .key = key, .sink = sink,
	    .sink_arg = arg, .range_off = offset, .range_len = len,
	    .ranged = offset || len != CKPT_S3_TO_END };
	char path[CKPT_ERROR_PATH_MAX];
	uint64_t want;
	int rc;

	if ((rc = check_key(s3, key, err)))
		return rc;
	if (!len)
		return ckpt_s3_head(s3, key, out, err);
	if (len != CKPT_S3_TO_END && offset > UINT64_MAX - len)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "range overflows");
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status != 200 && r.status != 206)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	if (!rc) {
		fill_object(&r, out);
		/* What was asked must have come, no more and no less. */
		want = len;
		if (len == CKPT_S3_TO_END)
			want = (r.have_range ? r.total_size :
			    r.content_length + r.range_off) - offset;
		else if (r.have_range && offset + len > r.total_size)
			want = r.total_size > offset ?
			    r.total_size - offset : 0;
		/* Without Content-Length or Content-Range (chunked), the
		 * transfer's own end is all there is to go by. */
		if (!r.have_range && !r.have_length)
			want = r.delivered;
		if (r.delivered != want) {
			req_error_path(s3, &r, path, sizeof(path));
			rc = ckpt_error_set(err, CKPT_ERR_IO, path, -1,
			    "GET: %llu bytes came of %llu expected",
			    (unsigned long long)r.delivered,
			    (unsigned long long)want);
		}
	}
	ckpt_s3_req_release(&r);
	return rc;
}

struct membuf {
	char *data;
	size_t len, max;
};

static int
mem_sink(void *arg, const void *data, size_t n)
{
	struct membuf *m = arg;
	char *p;

	if (n > m->max - m->len)
		return CKPT_ERR_LIMIT;
	if (!(p = realloc(m->data, m->len + n + 1)))
		return CKPT_ERR_NOMEM;
	memcpy(p + m->len, data, n);
	m->data = p;
	m->len += n;
	m->data[m->len] = '\0';
	return 0;
}

int
ckpt_s3_get_mem(struct ckpt_s3 *s3, const char *key, uint64_t offset,
    uint64_t len, size_t max, char **data, size_t *n,
    struct ckpt_s3_object *out, struct ckpt_error *err)
{
	struct membuf m = { NULL, 0, max };
	int rc;

	rc = ckpt_s3_get(s3, key, offset, len, mem_sink, &m, out, err);
	if (rc == CKPT_ERR_LIMIT && !m.data)
		rc = ckpt_error_set(err, CKPT_ERR_LIMIT, key, -1,
		    "object larger than %zu bytes", max);
	else if (rc == CKPT_ERR_LIMIT || rc == CKPT_ERR_NOMEM)
		rc = rc == CKPT_ERR_NOMEM ? ckpt_error_nomem(err) :
		    ckpt_error_set(err, CKPT_ERR_LIMIT, key, -1,
		    "object larger than %zu bytes", max);
	if (rc) {
		free(m.data);
		return rc;
	}
	if (!m.data && !(m.data = calloc(1, 1)))
		return ckpt_error_nomem(err);
	*data = m.data;
	*n = m.len;
	return 0;
}

int
ckpt_s3_head(struct ckpt_s3 *s3, const char *key, struct ckpt_s3_object *out,
    struct ckpt_error *err)
{
	struct s3_req r = { .method = "HEAD", .key = key };
	int rc;

	if ((rc = check_key(s3, key, err)))
		return rc;
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status != 200)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	if (!rc)
		fill_object(&r, out);
	ckpt_s3_req_release(&r);
	return rc;
}

int
ckpt_s3_delete(struct ckpt_s3 *s3, const char *key, struct ckpt_error *err)
{
	struct s3_req r = { .method = "DELETE", .key = key };
	int rc;

	if ((rc = check_key(s3, key, err)))
		return rc;
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status / 100 != 2 &&
	    !(r.status == 404 && !strcmp(r.error_code, "NoSuchKey")))
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	ckpt_s3_req_release(&r);
	return rc;
}

/* ---- ListObjectsV2 ------------------------------------------------ */

struct list_page {
	ckpt_s3_list_fn fn;
	void *arg;
	char *key;			/* of the current <Contents> */
	struct ckpt_s3_object obj;
	bool have_size;
	bool truncated;
	char *token;
	struct ckpt_error *err;
	const char *name;
	int user_rc;			/* fn's non-zero answer */
};

static int
list_fail(struct list_page *pg, const char *what)
{
	return ckpt_error_set(pg->err, CKPT_ERR_FORMAT, pg->name, -1,
	    "ListObjectsV2 answer: %s", what);
}

static int
list_field(void *arg, const char *path, const char *text, size_t len)
{
	struct list_page *pg = arg;
	int rc;

	if (!(path = ckpt_s3_xml_below(path, "ListBucketResult")))
		return list_fail(pg, "not a ListBucketResult");
	if (!strcmp(path, "/Contents/Key") && text) {
		if ((rc = ckpt_s3_xml_take(&pg->key, text, len)) < 0)
			return list_fail(pg, "NUL in a key");
		return rc;
	}
	if (!strcmp(path, "/Contents/Size") && text) {
		if (!parse_u64(text, len, &pg->obj.size))
			return list_fail(pg, "Size is not a number");
		pg->have_size = true;
		return 0;
	}
	if (!strcmp(path, "/Contents/LastModified") && text) {
		if ((pg->obj.mtime = ckpt_s3_xml_time(text, len)) == -2)
			return list_fail(pg, "LastModified too long");
		if (pg->obj.mtime < 0)
			return list_fail(pg, "LastModified is not an ISO 8601 "
			    "UTC time");
		return 0;
	}
	if (!strcmp(path, "/Contents/ETag") && text) {
		ckpt_s3_etag_copy(pg->obj.etag, text, len);
		return 0;
	}
	if (!strcmp(path, "/Contents") && !text) {
		if (!pg->key || !pg->have_size)
			return list_fail(pg, "Contents without Key or Size");
		rc = pg->fn(pg->arg, pg->key, &pg->obj);
		free(pg->key);
		pg->key = NULL;
		pg->have_size = false;
		memset(&pg->obj, 0, sizeof(pg->obj));
		if (rc)
			pg->user_rc = rc;
		return rc;
	}
	if (!strcmp(path, "/CommonPrefixes/Prefix") && text) {
		if (strlen(text) != len)
			return list_fail(pg, "NUL in a prefix");
		rc = pg->fn(pg->arg, text, NULL);
		if (rc)
			pg->user_rc = rc;
		return rc;
	}
	if (!strcmp(path, "/IsTruncated") && text) {
		if (!ckpt_s3_xml_bool(text, len, &pg->truncated))
			return list_fail(pg, "IsTruncated is not true/false");
		return 0;
	}
	if (!strcmp(path, "/NextContinuationToken") && text) {
		if ((rc = ckpt_s3_xml_take(&pg->token, text, len)) < 0)
			return list_fail(pg, "NUL in a continuation token");
		return rc;
	}
	return 0;
}

int
ckpt_s3_list_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_list_fn fn, void *arg, bool *truncated, char **token,
    struct ckpt_error *err)
{
	struct list_page pg = { .fn = fn, .arg = arg, .err = err,
	    .name = name };
	int rc;

	rc = ckpt_s3_xml_parse(doc, len, name, list_field, &pg, err);
	if (rc == CKPT_ERR_NOMEM && !pg.user_rc)
		rc = ckpt_error_nomem(err);
	free(pg.key);
	if (!rc && pg.truncated && (!pg.token || !*pg.token))
		rc = list_fail(&pg, "truncated without NextContinuationToken");
	if (rc) {
		free(pg.token);
		return rc;
	}
	*truncated = pg.truncated;
	*token = pg.token;
	return 0;
}

static char *
list_query(const char *prefix, const char *delimiter, const char *token,
    unsigned page)
{
	char *p = NULL, *d = NULL, *t = NULL, *q = NULL;
	int n = -1;

	/* Parameters in name order: curl 7.88 signs the query as given. */
	if ((!prefix || (p = uri_encode(prefix, false))) &&
	    (!delimiter || (d = uri_encode(delimiter, false))) &&
	    (!token || (t = uri_encode(token, false))))
		n = asprintf(&q, "%s%s%s%s%s%slist-type=2&max-keys=%u%s%s",
		    t ? "continuation-token=" : "", t ? t : "", t ? "&" : "",
		    d ? "delimiter=" : "", d ? d : "", d ? "&" : "", page,
		    p ? "&prefix=" : "", p ? p : "");
	free(p);
	free(d);
	free(t);
	return n < 0 ? NULL : q;
}

/* ckpt_s3_list, page pages at a time; one_page: the first one only. */
static int
list_pages(struct ckpt_s3 *s3, const char *prefix, const char *delimiter,
    unsigned page, bool one_page, ckpt_s3_list_fn fn, void *arg,
    struct ckpt_error *err)
{
	char *token = NULL, *next, *query, path[CKPT_ERROR_PATH_MAX];
	bool truncated = true;
	int rc = 0;

	if (prefix && !*prefix)
		prefix = NULL;
	if (delimiter && !*delimiter)
		delimiter = NULL;
	while (truncated && !rc) {
		struct s3_req r = { .method = "GET", .resp_max = S3_LIST_MAX };

		if (!(query = list_query(prefix, delimiter, token, page))) {
			rc = ckpt_error_nomem(err);
			break;
		}
		r.query = query;
		rc = ckpt_s3_request(s3, &r, err);
		if (!rc && r.status != 200)
			rc = ckpt_s3_status_error(s3, &r, r.tries, err);
		snprintf(path, sizeof(path), "s3://%s/?prefix=%s", s3->bucket,
		    prefix ? prefix : "");
		next = NULL;
		if (!rc)
			rc = ckpt_s3_list_parse(r.resp ? r.resp : "",
			    r.resp_len, path, fn, arg, &truncated, &next, err);
		/* A service that repeats its token would loop for ever. */
		if (!rc && truncated && token && !strcmp(token, next))
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
			    "ListObjectsV2 answer repeats its continuation "
			    "token");
		free(token);
		token = next;
		free(query);
		ckpt_s3_req_release(&r);
		if (one_page)
			break;
	}
	free(token);
	return rc;
}

int
ckpt_s3_list(struct ckpt_s3 *s3, const char *prefix, const char *delimiter,
    ckpt_s3_list_fn fn, void *arg, struct ckpt_error *err)
{
	return list_pages(s3, prefix, delimiter, s3->cfg.list_page, false, fn,
	    arg, err);
}

int
ckpt_s3_list_first(struct ckpt_s3 *s3, const char *prefix,
    ckpt_s3_list_fn fn, void *arg, struct ckpt_error *err)
{
	return list_pages(s3, prefix, NULL, 1, true, fn, arg, err);
}

const char *
ckpt_s3_bucket(const struct ckpt_s3 *s3)
{
	return s3->bucket;
}

bool
ckpt_s3_clock_skew(struct ckpt_s3 *s3, int64_t *skew)
{
	bool have;

	pthread_mutex_lock(&s3->lock);
	have = s3->have_skew;
	*skew = s3->skew;
	pthread_mutex_unlock(&s3->lock);
	return have;
}

int
ckpt_s3_put_if_match(struct ckpt_s3 *s3, const char *key, const void *data,
    size_t len, const char *etag, struct ckpt_s3_object *out,
    struct ckpt_error *err)
{
	struct s3_req r = { .method = "PUT", .key = key, .body = data,
	    .body_len = len, .has_body = true };
	char hdr[CKPT_S3_ETAG_MAX + 16];
	int rc;

	if ((rc = check_key(s3, key, err)))
		return rc;
	/* RGW takes the ETag of If-Match without quotes (quoted: 412). */
	snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
	r.headers[0] = hdr;
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status == 412 && ours_after_retry(s3, key, data, len))
		r.status = 200;
	if (!rc && (r.status == 412 || r.status == 404))
		rc = put_refused(s3, &r, "the object changed or is gone", err);
	else if (!rc && r.status / 100 != 2)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	if (!rc)
		fill_put(&r, len, out);
	ckpt_s3_req_release(&r);
	return rc;
}

/* A CopyObject answer is a success only with a CopyObjectResult in it. */
static int
copy_result(void *arg, const char *path, const char *text, size_t len)
{
	bool *ok = arg;

	(void)text;
	(void)len;
	if (!strncmp(path, "CopyObjectResult", 16))
		*ok = true;
	return 0;
}

static int copy_object(struct ckpt_s3 *s3, const char *src, const char *dst,
    struct ckpt_error *err);

int
ckpt_s3_copy_sized(struct ckpt_s3 *s3, const char *src, uint64_t size,
    const char *dst, struct ckpt_error *err)
{
	struct ckpt_s3_object o;
	int rc;

	if (size == CKPT_S3_TO_END || size > s3->copy_max) {
		/* The multipart copy needs the source's ETag anyway. */
		if ((rc = ckpt_s3_head(s3, src, &o, err)))
			return rc;
		if (o.size > s3->copy_max)
			return ckpt_s3_copy_multipart(s3, src, &o, dst, err);
	}
	return copy_object(s3, src, dst, err);
}

int
ckpt_s3_copy(struct ckpt_s3 *s3, const char *src, const char *dst,
    struct ckpt_error *err)
{
	return ckpt_s3_copy_sized(s3, src, CKPT_S3_TO_END, dst, err);
}

/* The x-amz-copy-source header of src (newly allocated, NULL: ENOMEM). */
char *
ckpt_s3_copy_source(struct ckpt_s3 *s3, const char *src)
{
	char *enc = uri_encode(src, true), *hdr = NULL;

	if (enc && asprintf(&hdr, "x-amz-copy-source: /%s/%s", s3->bucket,
	    enc) < 0)
		hdr = NULL;
	free(enc);
	return hdr;
}

static int
copy_object(struct ckpt_s3 *s3, const char *src, const char *dst,
    struct ckpt_error *err)
{
	struct s3_req r = { .method = "PUT", .key = dst, .resp_max = 64 * 1024,
	    .has_body = true, .body = (const unsigned char *)"",
	    .body_len = 0 };
	char *hdr, path[CKPT_ERROR_PATH_MAX];
	struct ckpt_error ignored;
	bool ok = false;
	int rc;

	if ((rc = check_key(s3, src, err)) || (rc = check_key(s3, dst, err)))
		return rc;
	if (!(hdr = ckpt_s3_copy_source(s3, src)))
		return ckpt_error_nomem(err);
	r.headers[0] = hdr;
	rc = ckpt_s3_request(s3, &r, err);
	if (!rc && r.status / 100 != 2)
		rc = ckpt_s3_status_error(s3, &r, r.tries, err);
	/* S3 may answer 200 and put the error in the body. */
	if (!rc && (ckpt_s3_xml_parse(r.resp ? r.resp : "", r.resp_len,
	    "copy", copy_result, &ok, &ignored) || !ok)) {
		ckpt_s3_error_doc(&r);
		req_error_path(s3, &r, path, sizeof(path));
		rc = ckpt_error_set(err, CKPT_ERR_IO, path, -1,
		    "PUT (copy from %s): the service answered %ld without "
		    "a copy result%s%s", src, r.status,
		    r.error_code[0] ? ": " : "", r.error_code);
	}
	ckpt_s3_req_release(&r);
	free(hdr);
	return rc;
}
