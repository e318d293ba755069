/* SPDX-License-Identifier: MIT */
/*
 * stwrite.c - the safetensors writer: byte for byte the layout of the
 * reference writer (safetensors' prepare() + Metadata's Serialize impl),
 * streamed through a caller's sink in bounded memory.
 *
 * The reference's choices, kept here:
 *  - tensors are ordered by dtype, largest enum value first (U64, I64,
 *    F64, C64, F32, ... BOOL: "descending alignment"), then by name in
 *    byte order, and their data follows in that order with no holes, so
 *    that each tensor starts at a multiple of its element size;
 *  - the JSON is compact, "__metadata__" first, then the tensors in data
 *    order, each as {"dtype":..,"shape":[..],"data_offsets":[b,e]};
 *  - strings are escaped as serde_json does (\" \\ \b \f \n \r \t, other
 *    control characters as \u00xx in lower-case hex, nothing else);
 *  - the header is padded with spaces to a multiple of 8 bytes.
 * The reference keeps __metadata__ in a HashMap, whose order is random
 * from one run to the next; we sort its keys so that the same input
 * always gives the same bytes.
 *
 * Data comes from a reader's tensor through ckpt_tensor_read() (the one
 * place that applies strides, storage offsets and byte order), so views
 * are written contiguously and big-endian sources little-endian.  To an
 * O_DIRECT writer (util/dwrite.c) the elements are read straight into
 * its buffers, with no copy between.
 */
#include "util/internal.h"

#include "format/file.h"
#include "util/util.h"

#include <unistd.h>

/* The reference's MAX_HEADER_SIZE, enforced at write time too (#669). */
#define ST_MAX_HEADER 100000000ull
#define ST_BUF ((size_t)4 << 20)

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void
sb_add(struct sbuf *b, const void *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_u64(struct sbuf *b, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);

	sb_add(b, num, (size_t)n);
}

/* A JSON string as serde_json writes it. */
static void
sb_json_string(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[7];

		switch (c) {
		case '"': sb_add(b, "\\\"", 2); break;
		case '\\': sb_add(b, "\\\\", 2); break;
		case '\b': sb_add(b, "\\b", 2); break;
		case '\f': sb_add(b, "\\f", 2); break;
		case '\n': sb_add(b, "\\n", 2); break;
		case '\r': sb_add(b, "\\r", 2); break;
		case '\t': sb_add(b, "\\t", 2); break;
		default:
			if (c < 0x20) {
				memcpy(e, "\\u00", 4);
				e[4] = hex[c >> 4];
				e[5] = hex[c & 15];
				sb_add(b, e, 6);
			} else {
				sb_add(b, s, 1);
			}
		}
	}
	sb_add(b, "\"", 1);
}

/* Whether s is valid UTF-8 (JSON text must be, and the reader checks). */
static bool
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned n, c = *p;
		uint32_t cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			n = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += n + 1;
	}
	return true;
}

struct entry {
	const struct ckpt_st_tensor *t;
	uint64_t nbytes, begin;
};

static int
cmp_data_order(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->t->dtype != y->t->dtype)
		return x->t->dtype > y->t->dtype ? -1 : 1;
	return strcmp(x->t->name, y->t->name);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp((*(const struct entry *const *)a)->t->name,
	    (*(const struct entry *const *)b)->t->name);
}

static int
cmp_pair(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks one tensor and computes its byte size. */
static int
check_tensor(const struct ckpt_st_tensor *t, uint64_t *nbytes,
    struct ckpt_error *err)
{
	uint64_t numel = 1, bits;

	if (!t->name || !*t->name || !strcmp(t->name, "__metadata__") ||
	    !utf8_ok(t->name))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "tensor name '%s' cannot be written to safetensors",
		    t->name ? t->name : "");
	if ((unsigned)t->dtype >= CKPT_DTYPE_C32)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
		    "tensor '%s': %s has no safetensors dtype", t->name,
		    ckpt_dtype_name(t->dtype) ? ckpt_dtype_name(t->dtype) :
		    "this element type");
	if (t->ndim > CKPT_MAX_DIMS || (t->ndim && !t->shape))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "tensor '%s': bad shape", t->name);
	for (unsigned d = 0; d < t->ndim; d++)
		if (!ckpt_mul_u64(numel, t->shape[d], &numel))
			return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1,
			    "tensor '%s': element count overflows", t->name);
	bits = ckpt_dtype_bits(t->dtype);
	if (!ckpt_mul_u64(numel, bits, &bits))
		return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1,
		    "tensor '%s': byte size overflows", t->name);
	if (bits % 8)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "tensor '%s': %llu %s elements do not fill whole bytes",
		    t->name, (unsigned long long)numel,
		    ckpt_dtype_name(t->dtype));
	if (t->src && (t->src->numel != numel || t->src->dtype != t->dtype))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "tensor '%s': shape or dtype differs from its source",
		    t->name);
	if (!t->data && !(t->file && t->src) && !t->read && numel)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "tensor '%s' has no data", t->name);
	*nbytes = bits / 8;
	return CKPT_OK;
}

/* Builds the header (padded) of the plan in e[0..n) (data order). */
static int
build_header(struct entry *e, size_t n, const char *const *meta,
    size_t nmeta, struct sbuf *b, struct ckpt_error *err)
{
	const char **pairs = NULL;

	sb_add(b, "{", 1);
	if (nmeta) {
		/* Sort key/value pairs by key: copy them as pairs. */
		pairs = malloc(nmeta * 2 * sizeof(*pairs));
		if (!pairs)
			return ckpt_error_nomem(err);
		memcpy(pairs, meta, nmeta * 2 * sizeof(*pairs));
		qsort(pairs, nmeta, 2 * sizeof(*pairs), cmp_pair);
		sb_str(b, "\"__metadata__\":{");
		for (size_t i = 0; i < nmeta; i++) {
			const char *k = pairs[2 * i], *v = pairs[2 * i + 1];

			if (!k || !v || !utf8_ok(k) || !utf8_ok(v) ||
			    (i && !strcmp(k, pairs[2 * i - 2]))) {
				free(pairs);
				return ckpt_error_set(err, CKPT_ERR_INVALID,
				    NULL, -1, "metadata key '%s' is %s",
				    k ? k : "", k && v && utf8_ok(k) &&
				    utf8_ok(v) ? "given twice" :
				    "not valid UTF-8 text");
			}
			if (i)
				sb_add(b, ",", 1);
			sb_json_string(b, k);
			sb_add(b, ":", 1);
			sb_json_string(b, v);
		}
		sb_add(b, "}", 1);
		free(pairs);
	}
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_st_tensor *t = e[i].t;

		if (nmeta || i)
			sb_add(b, ",", 1);
		sb_json_string(b, t->name);
		sb_str(b, ":{\"dtype\":");
		sb_json_string(b, ckpt_dtype_name(t->dtype));
		sb_str(b, ",\"shape\":[");
		for (unsigned d = 0; d < t->ndim; d++) {
			if (d)
				sb_add(b, ",", 1);
			sb_u64(b, t->shape[d]);
		}
		sb_str(b, "],\"data_offsets\":[");
		sb_u64(b, e[i].begin);
		sb_add(b, ",", 1);
		sb_u64(b, e[i].begin + e[i].nbytes);
		sb_str(b, "]}");
	}
	sb_add(b, "}", 1);
	while (!b->oom && b->n % 8)
		sb_add(b, " ", 1);
	if (b->oom)
		return ckpt_error_nomem(err);
	if (b->n > ST_MAX_HEADER)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1,
		    "header of %zu bytes exceeds the safetensors limit of "
		    "%llu", b->n, ST_MAX_HEADER);
	return CKPT_OK;
}

/* Orders and checks the tensors; e[] gets them in data order. */
static int
plan(const struct ckpt_st_tensor *t, size_t n, struct entry **out,
    uint64_t *data_len, struct ckpt_error *err)
{
	struct entry *e = calloc(n ? n : 1, sizeof(*e));
	struct entry **byname = calloc(n ? n : 1, sizeof(*byname));
	uint64_t off = 0;
	int rc = CKPT_OK;

	if (!e || !byname) {
		free(e);
		free(byname);
		return ckpt_error_nomem(err);
	}
	for (size_t i = 0; i < n && !rc; i++) {
		e[i].t = &t[i];
		rc = check_tensor(&t[i], &e[i].nbytes, err);
	}
	if (!rc) {
		for (size_t i = 0; i < n; i++)
			byname[i] = &e[i];
		qsort(byname, n, sizeof(*byname), cmp_name);
		for (size_t i = 1; i < n && !rc; i++)
			if (!strcmp(byname[i]->t->name, byname[i - 1]->t->name))
				rc = ckpt_error_set(err, CKPT_ERR_INVALID, NULL,
				    -1, "tensor name '%s' is given twice",
				    byname[i]->t->name);
	}
	free(byname);
	if (rc) {
		free(e);
		return rc;
	}
	qsort(e, n, sizeof(*e), cmp_data_order);
	for (size_t i = 0; i < n; i++) {
		e[i].begin = off;
		if (!ckpt_add_u64(off, e[i].nbytes, &off)) {
			free(e);
			return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1,
			    "data size overflows");
		}
	}
	*out = e;
	*data_len = off;
	return CKPT_OK;
}

int
ckpt_safetensors_size(const struct ckpt_st_tensor *t, size_t n,
    const char *const *metadata, size_t nmetadata, uint64_t *size,
    struct ckpt_error *err)
{
	struct sbuf b = { 0 };
	struct entry *e;
	uint64_t data_len;
	int rc;

	if ((rc = plan(t, n, &e, &data_len, err)))
		return rc;
	rc = build_header(e, n, metadata, nmetadata, &b, err);
	if (!rc)
		*size = 8 + b.n + data_len;
	free(b.p);
	free(e);
	return rc;
}

/*
 * Where the next of the k elements left go, and how many (*k): straight
 * into the direct writer's buffer, as many as fit there (sub-byte ones
 * in multiples of 8, as the readers want; whole-byte ones always fit, as
 * each tensor starts at a multiple of its element size), else at most
 * per into buf, to be written through the sink (which spreads them over
 * its buffers).
 */
static unsigned char *
destination(struct ckpt_dwrite *dw, unsigned int bits, uint64_t per,
    uint64_t *k, unsigned char *buf, struct ckpt_error *err)
{
	unsigned char *d;
	uint64_t fit;
	size_t room;

	if (dw) {
		if (!(d = ckpt_dwrite_space(dw, &room, err)))
			return NULL;
		fit = (uint64_t)room * 8 / bits;
		if (fit >= *k)
			return d;
		if (bits % 8)
			fit -= fit % 8;
		if (fit) {
			*k = fit;
			return d;
		}
	}
	if (*k > per)
		*k = per;
	return buf;
}

/* Streams one tensor's bytes through the sink. */
static int
write_tensor(const struct entry *en, unsigned char *buf,
    ckpt_write_fn write, void *arg, struct ckpt_dwrite *dw,
    const struct ckpt_st_write_options *o, uint64_t *done, uint64_t total,
    struct ckpt_error *err)
{
	const struct ckpt_st_tensor *t = en->t;
	unsigned int bits = ckpt_dtype_bits(t->dtype);
	uint64_t numel = en->nbytes * 8 / bits, first = 0, per;
	int rc;

	if (t->data) {
		for (uint64_t off = 0; off < en->nbytes; off += ST_BUF) {
			size_t len = en->nbytes - off < ST_BUF ?
			    (size_t)(en->nbytes - off) : ST_BUF;

			if ((rc = write(arg, (const unsigned char *)t->data +
			    off, len, err)))
				return rc;
			*done += len;
			if (o && o->progress)
				o->progress(*done, total, o->progress_data);
		}
		return CKPT_OK;
	}
	if (!dw && o && o->sink_is_fd && t->file && t->src &&
	    (!t->src->strides || t->src->contiguous) &&
	    (!t->src->big_endian || bits <= 8) && en->nbytes <= t->src->span) {
		loff_t off = (loff_t)t->src->offset;
		uint64_t left = en->nbytes;

		while (left) {
			ssize_t n = copy_file_range(t->file->fd, &off,
			    o->fd, NULL, left < ST_BUF ? (size_t)left : ST_BUF,
			    0);

			if (n <= 0)
				break;	/* not here: the copy below goes on */
			left -= (uint64_t)n;
			*done += (uint64_t)n;
			if (o->progress)
				o->progress(*done, total, o->progress_data);
		}
		first = (en->nbytes - left) * 8 / bits;
	}
	/* Whole elements per chunk; sub-byte dtypes in whole bytes. */
	per = (uint64_t)ST_BUF * 8 / bits;
	per -= per % 8;
	while (first < numel) {
		uint64_t k = numel - first;
		unsigned char *dst = destination(dw, bits, per, &k, buf, err);
		size_t len = (size_t)(k * bits / 8);

		if (!dst)
			return CKPT_ERR_NOMEM;
		if ((rc = t->read ? t->read(t->read_arg, first, k, dst, err) :
		    ckpt_tensor_read(t->file, t->src, first, k, dst, err)))
			return rc;
		if ((rc = dst == buf ? write(arg, buf, len, err) :
		    ckpt_dwrite_commit(dw, len, err)))
			return rc;
		first += k;
		*done += len;
		if (o && o->progress)
			o->progress(*done, total, o->progress_data);
	}
	return CKPT_OK;
}

static int
st_write(const struct ckpt_st_tensor *t, size_t n,
    const struct ckpt_st_write_options *o, ckpt_write_fn write, void *arg,
    struct ckpt_dwrite *dw, uint64_t *size, struct ckpt_error *err)
{
	const char *const *meta = o ? o->metadata : NULL;
	size_t nmeta = o ? o->nmetadata : 0;
	struct sbuf b = { 0 };
	unsigned char len8[8], *buf = NULL;
	struct entry *e;
	uint64_t data_len, done = 0;
	int rc;

	if (o && (rc = ckpt_options_check(o->version,
	    CKPT_ST_WRITE_OPTIONS_VERSION, "ckpt_st_write_options", err)))
		return rc;
	if ((rc = plan(t, n, &e, &data_len, err)))
		return rc;
	if ((rc = build_header(e, n, meta, nmeta, &b, err)))
		goto out;
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)b.n >> (8 * i));
	if ((rc = write(arg, len8, 8, err)) ||
	    (rc = write(arg, b.p, b.n, err)))
		goto out;
	if (!(buf = malloc(ST_BUF))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = write_tensor(&e[i], buf, write, arg, dw, o, &done,
		    data_len, err);
	if (!rc && size)
		*size = 8 + b.n + data_len;
out:
	free(buf);
	free(b.p);
	free(e);
	return rc;
}

int
ckpt_safetensors_write(const struct ckpt_st_tensor *t, size_t n,
    const struct ckpt_st_write_options *o, ckpt_write_fn write, void *arg,
    uint64_t *size, struct ckpt_error *err)
{
	return st_write(t, n, o, write, arg, NULL, size, err);
}

static int
dwrite_sink(void *arg, const void *buf, size_t len, struct ckpt_error *err)
{
	return ckpt_dwrite(arg, buf, len, err);
}

int
ckpt_safetensors_write_direct(const struct ckpt_st_tensor *t, size_t n,
    const struct ckpt_st_write_options *o, struct ckpt_dwrite *dw,
    uint64_t *size, struct ckpt_error *err)
{
	return st_write(t, n, o, dwrite_sink, dw, dw, size, err);
}
