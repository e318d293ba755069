/* SPDX-License-Identifier: MIT */
/*
 * s3sign.c - AWS Signature Version 4 for the requests that libcurl 7.88
 * cannot sign.  CURLOPT_AWS_SIGV4 orders the canonical headers by the
 * whole "name:value" line, so "x-amz-copy-source-range" comes before
 * "x-amz-copy-source" (':' sorts after '-'), while the service sorts by
 * name alone: every UploadPartCopy is refused (403
 * SignatureDoesNotMatch).  The engine signs those requests here instead
 * (s3_req.self_sign), as AWS documents it:
 *
 *   canonical request = METHOD \n URI \n QUERY \n
 *                       name:value \n ... (lower-case names, sorted by
 *                       name, values trimmed) \n
 *                       name;name;... \n PAYLOAD-SHA256
 *   string to sign    = "AWS4-HMAC-SHA256" \n DATE \n SCOPE \n
 *                       hex(SHA-256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" SECRET, YYYYMMDD),
 *                       REGION), "s3"), "aws4_request")
 *
 * URI and QUERY come already encoded and canonical (the engine builds
 * them so for curl too).
 */
#include "util/internal.h"

#include <sodium.h>

#include "store/s3int.h"

#define SIG_HEADERS_MAX 16

struct sig_header {
	char *name;		/* lower case */
	const char *value;	/* trimmed: [value, value + vlen) */
	size_t vlen;
};

static int
cmp_header(const void *a, const void *b)
{
	const struct sig_header *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void
hmac(const unsigned char *key, size_t klen, const char *msg, size_t mlen,
    unsigned char out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, klen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, mlen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

static void
sha256_hex(const char *s, size_t n, char hex[65])
{
	unsigned char md[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(md, (const unsigned char *)s, n);
	ckpt_hex(md, sizeof(md), hex);
}

/* Splits "Name: value" into *h (name lower-cased, value trimmed). */
static int
split_header(const char *line, struct sig_header *h)
{
	const char *colon = strchr(line, ':'), *v, *e;

	if (!colon || colon == line)
		return -1;
	if (!(h->name = strndup(line, (size_t)(colon - line))))
		return -1;
	for (char *p = h->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	h->value = v;
	h->vlen = (size_t)(e - v);
	return 0;
}

/* Appends to a growing string; false on ENOMEM (then *buf is freed). */
static bool
append(char **buf, size_t *len, const char *s, size_t n)
{
	char *p = realloc(*buf, *len + n + 1);

	if (!p) {
		free(*buf);
		*buf = NULL;
		return false;
	}
	memcpy(p + *len, s, n);
	*len += n;
	p[*len] = '\0';
	*buf = p;
	return true;
}

int
ckpt_s3_sigv4(const struct ckpt_s3_sig *in, char **authorization)
{
	struct sig_header h[SIG_HEADERS_MAX];
	unsigned char k[crypto_auth_hmacsha256_BYTES];
	char *canon = NULL, *signed_names = NULL, *key0 = NULL, *sts = NULL;
	char date[9], hash[65], sig[2 * sizeof(k) + 1];
	size_t n = 0, clen = 0, slen = 0;
	int rc = CKPT_ERR_NOMEM;

	*authorization = NULL;
	if (in->nheaders > SIG_HEADERS_MAX || strlen(in->amz_date) != 16)
		return CKPT_ERR_INVALID;
	for (; n < in->nheaders; n++)
		if (split_header(in->headers[n], &h[n])) {
			rc = CKPT_ERR_INVALID;
			goto out;
		}
	qsort(h, n, sizeof(h[0]), cmp_header);
	if (!append(&canon, &clen, in->method, strlen(in->method)) ||
	    !append(&canon, &clen, "\n", 1) ||
	    !append(&canon, &clen, in->uri, strlen(in->uri)) ||
	    !append(&canon, &clen, "\n", 1) ||
	    !append(&canon, &clen, in->query, strlen(in->query)) ||
	    !append(&canon, &clen, "\n", 1))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!append(&canon, &clen, h[i].name, strlen(h[i].name)) ||
		    !append(&canon, &clen, ":", 1) ||
		    !append(&canon, &clen, h[i].value, h[i].vlen) ||
		    !append(&canon, &clen, "\n", 1) ||
		    (i && !append(&signed_names, &slen, ";", 1)) ||
		    !append(&signed_names, &slen, h[i].name, strlen(h[i].name)))
			goto out;
	if (!signed_names || !append(&canon, &clen, "\n", 1) ||
	    !append(&canon, &clen, signed_names, slen) ||
	    !append(&canon, &clen, "\n", 1) ||
	    !append(&canon, &clen, in->payload_sha256,
	    strlen(in->payload_sha256)))
		goto out;
	sha256_hex(canon, clen, hash);
	memcpy(date, in->amz_date, 8);
	date[8] = '\0';
	if (asprintf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s",
	    in->amz_date, date, in->region, hash) < 0) {
		sts = NULL;
		goto out;
	}
	if (asprintf(&key0, "AWS4%s", in->secret_key) < 0) {
		key0 = NULL;
		goto out;
	}
	hmac((const unsigned char *)key0, strlen(key0), date, 8, k);
	hmac(k, sizeof(k), in->region, strlen(in->region), k);
	hmac(k, sizeof(k), "s3", 2, k);
	hmac(k, sizeof(k), "aws4_request", 12, k);
	hmac(k, sizeof(k), sts, strlen(sts), k);
	ckpt_hex(k, sizeof(k), sig);
	if (asprintf(authorization, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/"
	    "aws4_request, SignedHeaders=%s, Signature=%s", in->access_key,
	    date, in->region, signed_names, sig) < 0)
		*authorization = NULL;
	else
		rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(h[i].name);
	if (key0) {
		sodium_memzero(key0, strlen(key0));
		free(key0);
	}
	sodium_memzero(k, sizeof(k));
	free(canon);
	free(signed_names);
	free(sts);
	return rc;
}
