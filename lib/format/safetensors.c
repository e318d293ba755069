/* SPDX-License-Identifier: MIT */
/*
 * safetensors.c - the safetensors reader: every rule of the reference
 * reader (safetensors' SafeTensors::read_metadata + Metadata::validate, in
 * its order), plus the rules the reference leaves implicit (duplicate keys
 * rejected explicitly, no NUL in names).
 *
 * The header is parsed by a small recursive-descent JSON parser written
 * for this schema instead of a generic one, for three reasons: integers
 * must be exact unsigned 64-bit values (jansson stops at INT64_MAX and
 * cannot tell "-0" from "0"), every error should carry the byte offset of
 * the offending token, and duplicate keys must be refused at every level.
 * jansson is used only to serialise __metadata__ for ckpt_file_metadata_json.
 */
#include "util/internal.h"

#include <jansson.h>

#include "format/file.h"

/* The reference's MAX_HEADER_SIZE (decimal). */
#define ST_MAX_HEADER 100000000ull
/* Nesting allowed inside unknown tensor-entry fields (skipped values). */
#define ST_MAX_DEPTH 64

struct st_tensor {
	char *name;
	enum ckpt_dtype dtype;
	uint64_t *shape;
	size_t ndim;
	uint64_t begin, end;
	size_t key_pos;		/* header position of the name, for errors */
};

struct st_parser {
	const char *path;
	const unsigned char *p;
	size_t n, pos;
	struct ckpt_error *err;
	struct st_tensor *t;
	size_t nt, cap;
	json_t *metadata;	/* NULL: none */
	bool seen_metadata;
};

/* Absolute file offset of header position pos. */
static int64_t
at(size_t pos)
{
	return (int64_t)(8 + pos);
}

static int
jerr(struct st_parser *ps, size_t pos, const char *fmt, ...)
	CKPT_PRINTF(3, 4);

static int
jerr(struct st_parser *ps, size_t pos, const char *fmt, ...)
{
	char msg[CKPT_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->path, at(pos),
	    "invalid JSON in header: %s", msg);
}

static void
skip_ws(struct st_parser *ps)
{
	while (ps->pos < ps->n) {
		unsigned char c = ps->p[ps->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		ps->pos++;
	}
}

/* Skips whitespace and returns the position of the next token. */
static size_t
here(struct st_parser *ps)
{
	skip_ws(ps);
	return ps->pos;
}

static int
peek(struct st_parser *ps)
{
	skip_ws(ps);
	return ps->pos < ps->n ? ps->p[ps->pos] : -1;
}

static int
expect(struct st_parser *ps, char c, const char *what)
{
	if (peek(ps) != c) {
		if (ps->pos >= ps->n)
			return jerr(ps, ps->pos, "unexpected end of header, "
			    "expected %s", what);
		return jerr(ps, ps->pos, "expected %s", what);
	}
	ps->pos++;
	return CKPT_OK;
}

/*
 * Strict UTF-8 (what Rust's str::from_utf8 accepts): no overlongs, no
 * surrogates, nothing above U+10FFFF.  Returns the length of the valid
 * prefix.
 */
static size_t
utf8_valid_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (n - i < len)
			return i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return n;
}

static int
hex4(struct st_parser *ps, uint32_t *out)
{
	uint32_t v = 0;

	if (ps->n - ps->pos < 4)
		return jerr(ps, ps->pos, "truncated \\u escape");
	for (int k = 0; k < 4; k++) {
		unsigned char c = ps->p[ps->pos + k];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return jerr(ps, ps->pos + k, "invalid \\u escape");
	}
	ps->pos += 4;
	*out = v;
	return CKPT_OK;
}

static size_t
put_utf8(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	} else if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	} else if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Parses a JSON string at the current position.  With out, the decoded
 * value is returned malloc'd; without, the string is only checked.  A
 * decoded NUL is refused: names and metadata become C strings.
 */
static int
parse_string(struct st_parser *ps, char **out)
{
	unsigned char *buf = NULL, *o;
	size_t start;
	int rc;

	if ((rc = expect(ps, '"', "a string")))
		return rc;
	start = ps->pos;
	/* The decoded form is never longer than the encoded one. */
	if (out) {
		size_t end = start;

		while (end < ps->n && ps->p[end] != '"')
			end += ps->p[end] == '\\' ? 2 : 1;
		buf = malloc((end > ps->n ? ps->n : end) - start + 1);
		if (!buf)
			return ckpt_error_nomem(ps->err);
	}
	o = buf;
	for (;;) {
		unsigned char c;

		if (ps->pos >= ps->n) {
			rc = jerr(ps, start - 1, "unterminated string");
			goto fail;
		}
		c = ps->p[ps->pos];
		if (c == '"') {
			ps->pos++;
			break;
		}
		if (c < 0x20) {
			rc = jerr(ps, ps->pos, "control character in string");
			goto fail;
		}
		if (c != '\\') {
			if (o)
				*o++ = c;
			ps->pos++;
			continue;
		}
		if (++ps->pos >= ps->n) {
			rc = jerr(ps, start - 1, "unterminated string");
			goto fail;
		}
		c = ps->p[ps->pos++];
		switch (c) {
		case '"': case '\\': case '/':
			break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u': {
			size_t epos = ps->pos - 2;
			uint32_t cp, lo;

			if ((rc = hex4(ps, &cp)))
				goto fail;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				rc = jerr(ps, epos, "lone surrogate in "
				    "\\u escape");
				goto fail;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->n - ps->pos < 2 ||
				    ps->p[ps->pos] != '\\' ||
				    ps->p[ps->pos + 1] != 'u') {
					rc = jerr(ps, epos, "lone surrogate "
					    "in \\u escape");
					goto fail;
				}
				ps->pos += 2;
				if ((rc = hex4(ps, &lo)))
					goto fail;
				if (lo < 0xdc00 || lo > 0xdfff) {
					rc = jerr(ps, epos, "lone surrogate "
					    "in \\u escape");
					goto fail;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			if (cp == 0) {
				rc = jerr(ps, epos, "\\u0000 in a string is "
				    "not supported");
				goto fail;
			}
			if (o)
				o += put_utf8(o, cp);
			continue;
		}
		default:
			rc = jerr(ps, ps->pos - 2, "invalid escape '\\%c'",
			    c >= 0x20 && c < 0x7f ? c : '?');
			goto fail;
		}
		if (o)
			*o++ = c;
	}
	if (out) {
		*o = '\0';
		*out = (char *)buf;
	}
	return CKPT_OK;
fail:
	free(buf);
	return rc;
}

/*
 * An unsigned 64-bit integer, as serde reads a u64: digits only, no sign,
 * no fraction or exponent, no leading zeros, at most 2^64-1.
 */
static int
parse_u64(struct st_parser *ps, const char *name, const char *field,
    uint64_t *out)
{
	size_t start;
	uint64_t v = 0;

	if (peek(ps) < 0)
		return jerr(ps, ps->pos, "unexpected end of header in "
		    "tensor '%s'", name);
	start = ps->pos;
	if (ps->p[start] == '-')
		return jerr(ps, start, "tensor '%s': %s holds a negative "
		    "number", name, field);
	if (ps->p[start] < '0' || ps->p[start] > '9')
		return jerr(ps, start, "tensor '%s': %s must hold "
		    "non-negative integers", name, field);
	while (ps->pos < ps->n && ps->p[ps->pos] >= '0' &&
	    ps->p[ps->pos] <= '9') {
		unsigned d = ps->p[ps->pos] - '0';

		if (ps->pos > start && v == 0)
			return jerr(ps, start, "tensor '%s': number with a "
			    "leading zero in %s", name, field);
		if (!ckpt_mul_u64(v, 10, &v) || !ckpt_add_u64(v, d, &v))
			return jerr(ps, start, "tensor '%s': number in %s "
			    "does not fit 64 bits", name, field);
		ps->pos++;
	}
	if (ps->pos < ps->n && (ps->p[ps->pos] == '.' ||
	    ps->p[ps->pos] == 'e' || ps->p[ps->pos] == 'E'))
		return jerr(ps, start, "tensor '%s': %s must hold integers, "
		    "not floating-point numbers", name, field);
	*out = v;
	return CKPT_OK;
}

static int skip_value(struct st_parser *ps, int depth);

static int
skip_number(struct st_parser *ps)
{
	size_t start = ps->pos, d;

	if (ps->p[ps->pos] == '-')
		ps->pos++;
	d = ps->pos;
	while (ps->pos < ps->n && ps->p[ps->pos] >= '0' &&
	    ps->p[ps->pos] <= '9')
		ps->pos++;
	if (ps->pos == d || (ps->p[d] == '0' && ps->pos - d > 1))
		return jerr(ps, start, "invalid number");
	if (ps->pos < ps->n && ps->p[ps->pos] == '.') {
		d = ++ps->pos;
		while (ps->pos < ps->n && ps->p[ps->pos] >= '0' &&
		    ps->p[ps->pos] <= '9')
			ps->pos++;
		if (ps->pos == d)
			return jerr(ps, start, "invalid number");
	}
	if (ps->pos < ps->n && (ps->p[ps->pos] == 'e' ||
	    ps->p[ps->pos] == 'E')) {
		ps->pos++;
		if (ps->pos < ps->n && (ps->p[ps->pos] == '+' ||
		    ps->p[ps->pos] == '-'))
			ps->pos++;
		d = ps->pos;
		while (ps->pos < ps->n && ps->p[ps->pos] >= '0' &&
		    ps->p[ps->pos] <= '9')
			ps->pos++;
		if (ps->pos == d)
			return jerr(ps, start, "invalid number");
	}
	return CKPT_OK;
}

static int
skip_literal(struct st_parser *ps, const char *lit)
{
	size_t len = strlen(lit);

	if (ps->n - ps->pos < len || memcmp(ps->p + ps->pos, lit, len))
		return jerr(ps, ps->pos, "invalid literal");
	ps->pos += len;
	return CKPT_OK;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Skips any JSON value (an unknown tensor-entry field), keys checked for
 * duplicates like everywhere else. */
static int
skip_value(struct st_parser *ps, int depth)
{
	int c = peek(ps), rc = CKPT_OK;

	if (depth > ST_MAX_DEPTH)
		return jerr(ps, ps->pos, "nesting deeper than %d levels",
		    ST_MAX_DEPTH);
	switch (c) {
	case '"':
		return parse_string(ps, NULL);
	case '{': {
		char **keys = NULL;
		size_t nk = 0;

		ps->pos++;
		if (peek(ps) == '}') {
			ps->pos++;
			return CKPT_OK;
		}
		for (;;) {
			char *k, **p;

			if ((rc = parse_string(ps, &k)))
				break;
			p = reallocarray(keys, nk + 1, sizeof(*keys));
			if (!p) {
				free(k);
				rc = ckpt_error_nomem(ps->err);
				break;
			}
			keys = p;
			keys[nk++] = k;
			if ((rc = expect(ps, ':', "':' after an object key")) ||
			    (rc = skip_value(ps, depth + 1)))
				break;
			if (peek(ps) == ',') {
				ps->pos++;
				continue;
			}
			rc = expect(ps, '}', "',' or '}' in an object");
			break;
		}
		if (!rc && nk > 1) {
			qsort(keys, nk, sizeof(*keys), cmp_str);
			for (size_t i = 1; i < nk && !rc; i++)
				if (!strcmp(keys[i - 1], keys[i]))
					rc = jerr(ps, ps->pos, "duplicate key "
					    "\"%s\" in an object", keys[i]);
		}
		for (size_t i = 0; i < nk; i++)
			free(keys[i]);
		free(keys);
		return rc;
	}
	case '[':
		ps->pos++;
		if (peek(ps) == ']') {
			ps->pos++;
			return CKPT_OK;
		}
		for (;;) {
			if ((rc = skip_value(ps, depth + 1)))
				return rc;
			if (peek(ps) == ',') {
				ps->pos++;
				continue;
			}
			return expect(ps, ']', "',' or ']' in an array");
		}
	case 't':
		return skip_literal(ps, "true");
	case 'f':
		return skip_literal(ps, "false");
	case 'n':
		return skip_literal(ps, "null");
	case -1:
		return jerr(ps, ps->pos, "unexpected end of header");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return skip_number(ps);
		return jerr(ps, ps->pos, "unexpected character");
	}
}

static int
parse_u64_array(struct st_parser *ps, const char *name, const char *field,
    uint64_t **out, size_t *count)
{
	uint64_t *a = NULL, v = 0;
	size_t n = 0;
	int rc;

	if (peek(ps) != '[')
		return jerr(ps, ps->pos, "tensor '%s': %s must be an array",
		    name, field);
	ps->pos++;
	if (peek(ps) == ']') {
		ps->pos++;
		*out = NULL;
		*count = 0;
		return CKPT_OK;
	}
	for (;;) {
		uint64_t *p;

		if ((rc = parse_u64(ps, name, field, &v)))
			break;
		if (n == CKPT_MAX_DIMS) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_LIMIT, ps->path,
			    at(ps->pos), "tensor '%s': %s has more than %d "
			    "entries", name, field, CKPT_MAX_DIMS);
			break;
		}
		p = reallocarray(a, n + 1, sizeof(*a));
		if (!p) {
			rc = ckpt_error_nomem(ps->err);
			break;
		}
		a = p;
		a[n++] = v;
		if (peek(ps) == ',') {
			ps->pos++;
			continue;
		}
		rc = expect(ps, ']', "',' or ']' in an array");
		break;
	}
	if (rc) {
		free(a);
		return rc;
	}
	*out = a;
	*count = n;
	return CKPT_OK;
}

static int
parse_tensor(struct st_parser *ps, struct st_tensor *t)
{
	const char *name = t->name;
	size_t entry = ps->pos;
	bool have_dtype = false, have_shape = false, have_off = false;
	int rc;

	if (peek(ps) != '{')
		return jerr(ps, ps->pos, "tensor '%s': entry must be an "
		    "object", name);
	ps->pos++;
	if (peek(ps) != '}') {
		for (;;) {
			size_t kpos = here(ps);
			char *k;

			if ((rc = parse_string(ps, &k)))
				return rc;
			if ((rc = expect(ps, ':', "':' after an object key"))) {
				free(k);
				return rc;
			}
			if (!strcmp(k, "dtype") || !strcmp(k, "shape") ||
			    !strcmp(k, "data_offsets")) {
				bool *seen = k[0] == 'd' && k[1] == 't' ?
				    &have_dtype : k[0] == 's' ? &have_shape :
				    &have_off;

				if (*seen) {
					rc = jerr(ps, kpos, "tensor '%s': "
					    "duplicate field \"%s\"", name, k);
					free(k);
					return rc;
				}
				*seen = true;
			}
			if (!strcmp(k, "dtype")) {
				size_t vpos = here(ps);
				char *d;

				free(k);
				if (peek(ps) != '"')
					return jerr(ps, vpos, "tensor '%s': "
					    "dtype must be a string", name);
				if ((rc = parse_string(ps, &d)))
					return rc;
				if (ckpt_dtype_from_name(d, &t->dtype)) {
					rc = jerr(ps, vpos, "tensor '%s': "
					    "unknown dtype \"%s\"", name, d);
					free(d);
					return rc;
				}
				free(d);
			} else if (!strcmp(k, "shape")) {
				free(k);
				if ((rc = parse_u64_array(ps, name, "shape",
				    &t->shape, &t->ndim)))
					return rc;
			} else if (!strcmp(k, "data_offsets")) {
				uint64_t *o;
				size_t no;
				size_t vpos = here(ps);

				free(k);
				if ((rc = parse_u64_array(ps, name,
				    "data_offsets", &o, &no)))
					return rc;
				if (no != 2) {
					free(o);
					return jerr(ps, vpos, "tensor '%s': "
					    "data_offsets must hold exactly 2 "
					    "integers, not %zu", name, no);
				}
				t->begin = o[0];
				t->end = o[1];
				free(o);
			} else {
				/* The reference ignores unknown fields. */
				free(k);
				if ((rc = skip_value(ps, 1)))
					return rc;
			}
			if (peek(ps) == ',') {
				ps->pos++;
				continue;
			}
			if ((rc = expect(ps, '}', "',' or '}' in a tensor "
			    "entry")))
				return rc;
			break;
		}
	} else {
		ps->pos++;
	}
	if (!have_dtype || !have_shape || !have_off)
		return jerr(ps, entry, "tensor '%s': missing field \"%s\"",
		    name, !have_dtype ? "dtype" : !have_shape ? "shape" :
		    "data_offsets");
	return CKPT_OK;
}

static int
parse_metadata(struct st_parser *ps)
{
	size_t vpos = here(ps);
	int rc;

	if (ps->seen_metadata)
		return jerr(ps, vpos, "duplicate key \"__metadata__\"");
	ps->seen_metadata = true;
	if (peek(ps) == 'n')
		return skip_literal(ps, "null");	/* no metadata */
	if (peek(ps) != '{')
		return jerr(ps, vpos, "__metadata__ must be an object of "
		    "strings");
	ps->pos++;
	ps->metadata = json_object();
	if (!ps->metadata)
		return ckpt_error_nomem(ps->err);
	if (peek(ps) == '}') {
		ps->pos++;
		return CKPT_OK;
	}
	for (;;) {
		size_t kpos = here(ps), spos;
		char *k, *v;
		json_t *js;

		if ((rc = parse_string(ps, &k)))
			return rc;
		if ((rc = expect(ps, ':', "':' after an object key"))) {
			free(k);
			return rc;
		}
		spos = here(ps);
		if (peek(ps) != '"') {
			rc = jerr(ps, spos, "__metadata__ value of \"%s\" is "
			    "not a string", k);
			free(k);
			return rc;
		}
		if ((rc = parse_string(ps, &v))) {
			free(k);
			return rc;
		}
		if (json_object_get(ps->metadata, k)) {
			rc = jerr(ps, kpos, "duplicate key \"%s\" in "
			    "__metadata__", k);
			free(k);
			free(v);
			return rc;
		}
		js = json_string(v);
		free(v);
		if (!js || json_object_set_new(ps->metadata, k, js)) {
			free(k);
			return ckpt_error_nomem(ps->err);
		}
		free(k);
		if (peek(ps) == ',') {
			ps->pos++;
			continue;
		}
		return expect(ps, '}', "',' or '}' in __metadata__");
	}
}

static int
parse_header(struct st_parser *ps)
{
	int rc;

	if (peek(ps) != '{')
		return jerr(ps, ps->pos, ps->pos >= ps->n ? "empty header" :
		    "the header is not a JSON object");
	ps->pos++;
	if (peek(ps) == '}') {
		ps->pos++;
	} else {
		for (;;) {
			size_t kpos = here(ps);
			struct st_tensor *t;
			char *k;

			if ((rc = parse_string(ps, &k)))
				return rc;
			if ((rc = expect(ps, ':', "':' after a tensor name"))) {
				free(k);
				return rc;
			}
			if (!strcmp(k, "__metadata__")) {
				free(k);
				if ((rc = parse_metadata(ps)))
					return rc;
			} else {
				if (ps->nt == ps->cap) {
					size_t cap = ps->cap ? 2 * ps->cap : 16;
					struct st_tensor *p = reallocarray(
					    ps->t, cap, sizeof(*p));

					if (!p) {
						free(k);
						return
						    ckpt_error_nomem(ps->err);
					}
					ps->t = p;
					ps->cap = cap;
				}
				t = &ps->t[ps->nt++];
				memset(t, 0, sizeof(*t));
				t->name = k;
				t->key_pos = kpos;
				if ((rc = parse_tensor(ps, t)))
					return rc;
			}
			if (peek(ps) == ',') {
				ps->pos++;
				continue;
			}
			if ((rc = expect(ps, '}', "',' or '}' after a tensor "
			    "entry")))
				return rc;
			break;
		}
	}
	if (peek(ps) != -1)
		return jerr(ps, ps->pos, "unexpected data after the header "
		    "object");
	return CKPT_OK;
}

static int
cmp_tensor_name(const void *a, const void *b)
{
	const struct st_tensor *x = *(struct st_tensor *const *)a;
	const struct st_tensor *y = *(struct st_tensor *const *)b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->key_pos < y->key_pos ? -1 : x->key_pos > y->key_pos;
}

static int
cmp_tensor_offsets(const void *a, const void *b)
{
	const struct st_tensor *x = *(struct st_tensor *const *)a;
	const struct st_tensor *y = *(struct st_tensor *const *)b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void
format_shape(const struct st_tensor *t, char *buf, size_t len)
{
	size_t o = 0;

	o += (size_t)snprintf(buf, len, "[");
	for (size_t i = 0; i < t->ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? ", " :
		    "", (unsigned long long)t->shape[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

/* Absolute offset of data byte rel, or -1 when it does not fit int64. */
static int64_t
data_at(uint64_t hlen, uint64_t rel)
{
	uint64_t abs;

	if (!ckpt_add_u64(8 + hlen, rel, &abs) || abs > INT64_MAX)
		return -1;
	return (int64_t)abs;
}

static int
validate(struct st_parser *ps, uint64_t hlen, uint64_t size,
    struct st_tensor ***sorted_out)
{
	struct st_tensor **s;
	uint64_t expected = 0;
	char shape[256];
	int rc = CKPT_OK;

	s = calloc(ps->nt ? ps->nt : 1, sizeof(*s));
	if (!s)
		return ckpt_error_nomem(ps->err);
	for (size_t i = 0; i < ps->nt; i++)
		s[i] = &ps->t[i];

	/* Duplicate names: the reference lets the last one win and then
	 * reports a confusing InvalidOffset; refuse them plainly. */
	qsort(s, ps->nt, sizeof(*s), cmp_tensor_name);
	for (size_t i = 1; i < ps->nt; i++)
		if (!strcmp(s[i - 1]->name, s[i]->name)) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT,
			    ps->path, at(s[i]->key_pos), "duplicate tensor "
			    "name '%s' in header", s[i]->name);
			goto out;
		}

	qsort(s, ps->nt, sizeof(*s), cmp_tensor_offsets);
	for (size_t i = 0; i < ps->nt; i++) {
		struct st_tensor *t = s[i];
		unsigned int bits = ckpt_dtype_bits(t->dtype);
		uint64_t numel = 1, nbits;

		if (t->begin != expected || t->end < t->begin) {
			const char *what = t->end < t->begin ?
			    "ends before it begins" : t->begin > expected ?
			    "leaves a hole before it" : i ?
			    "overlaps the previous tensor" :
			    "does not start at 0";

			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT,
			    ps->path, data_at(hlen, t->begin),
			    "invalid offset for tensor '%s': data_offsets "
			    "[%llu, %llu] %s (expected begin %llu%s%s%s)",
			    t->name, (unsigned long long)t->begin,
			    (unsigned long long)t->end, what,
			    (unsigned long long)expected, i ? ", after '" : "",
			    i ? s[i - 1]->name : "", i ? "'" : "");
			goto out;
		}
		format_shape(t, shape, sizeof(shape));
		for (size_t d = 0; d < t->ndim; d++)
			if (!ckpt_mul_u64(numel, t->shape[d], &numel)) {
				rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT,
				    ps->path, at(t->key_pos), "tensor '%s': "
				    "element count of shape %s overflows 64 "
				    "bits", t->name, shape);
				goto out;
			}
		if (!ckpt_mul_u64(numel, bits, &nbits)) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->path,
			    at(t->key_pos), "tensor '%s': size of %llu %s "
			    "elements overflows 64 bits", t->name,
			    (unsigned long long)numel,
			    ckpt_dtype_name(t->dtype));
			goto out;
		}
		if (nbits % 8) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->path,
			    at(t->key_pos), "tensor '%s': %llu %s elements "
			    "(%llu bits) do not end on a byte boundary",
			    t->name, (unsigned long long)numel,
			    ckpt_dtype_name(t->dtype),
			    (unsigned long long)nbits);
			goto out;
		}
		if (t->end - t->begin != nbits / 8) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->path,
			    data_at(hlen, t->begin), "tensor '%s': dtype %s "
			    "and shape %s need %llu bytes, data_offsets "
			    "[%llu, %llu] hold %llu", t->name,
			    ckpt_dtype_name(t->dtype), shape,
			    (unsigned long long)(nbits / 8),
			    (unsigned long long)t->begin,
			    (unsigned long long)t->end,
			    (unsigned long long)(t->end - t->begin));
			goto out;
		}
		expected = t->end;
	}

	/* 8 + N + last END must be the file size exactly: neither trailing
	 * bytes (polyglots) nor truncation. */
	{
		uint64_t data = size - 8 - hlen;

		if (expected > data) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->path,
			    (int64_t)size, "file truncated: tensor data ends "
			    "at byte %llu%s%s%s but the file has %llu bytes",
			    (unsigned long long)(8 + hlen + expected),
			    ps->nt ? " (tensor '" : "",
			    ps->nt ? s[ps->nt - 1]->name : "",
			    ps->nt ? "')" : "", (unsigned long long)size);
			goto out;
		}
		if (expected < data) {
			rc = ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->path,
			    data_at(hlen, expected), "%llu unexpected bytes "
			    "after the last tensor's data (the file is not "
			    "fully covered by the header)",
			    (unsigned long long)(data - expected));
			goto out;
		}
	}
out:
	if (rc)
		free(s);
	else
		*sorted_out = s;
	return rc;
}

int
ckpt_safetensors_read(struct ckpt_file *f, struct ckpt_error *err)
{
	struct st_parser ps = { .path = f->path, .err = err };
	struct st_tensor **sorted = NULL;
	unsigned char lenbuf[8];
	unsigned char *hdr = NULL;
	uint64_t hlen = 0;
	size_t valid;
	int rc;

	if (f->size < 8)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path, 0,
		    "file of %llu bytes is too small for a safetensors header",
		    (unsigned long long)f->size);
	if ((rc = ckpt_file_pread(f, lenbuf, 8, 0, err)))
		return rc;
	for (int i = 0; i < 8; i++)
		hlen |= (uint64_t)lenbuf[i] << (8 * i);
	/* The reference checks the 100,000,000-byte cap first; a length
	 * beyond the file is the more useful message when both hold. */
	if (hlen > ST_MAX_HEADER && hlen <= f->size - 8)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path, 0,
		    "header length %llu exceeds the limit of %llu bytes",
		    (unsigned long long)hlen,
		    (unsigned long long)ST_MAX_HEADER);
	if (hlen > f->size - 8)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path, 0,
		    "header length %llu exceeds file size %llu",
		    (unsigned long long)hlen, (unsigned long long)f->size);

	hdr = malloc(hlen ? hlen : 1);
	if (!hdr)
		return ckpt_error_nomem(err);
	if ((rc = ckpt_file_pread(f, hdr, hlen, 8, err)))
		goto out;
	valid = utf8_valid_prefix(hdr, hlen);
	if (valid != hlen) {
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    at(valid), "invalid UTF-8 in header");
		goto out;
	}
	ps.p = hdr;
	ps.n = hlen;
	if ((rc = parse_header(&ps)))
		goto out;
	if ((rc = validate(&ps, hlen, f->size, &sorted)))
		goto out;

	for (size_t i = 0; i < ps.nt && !rc; i++) {
		const struct st_tensor *st = sorted[i];
		struct ckpt_tensor t = {
			.name = st->name,
			.dtype = st->dtype,
			.ndim = (unsigned)st->ndim,
			.shape = st->shape,
			.nbytes = st->end - st->begin,
			.offset = 8 + hlen + st->begin,
			.span = st->end - st->begin,
			.contiguous = true,
		};

		t.numel = 1;
		for (size_t d = 0; d < st->ndim; d++)
			t.numel *= st->shape[d];
		rc = ckpt_file_add_tensor(f, &t, err);
	}
	if (!rc && ps.metadata) {
		/* In the order the file has it. */
		char *json = json_dumps(ps.metadata, JSON_COMPACT);

		if (!json)
			rc = ckpt_error_nomem(err);
		else
			ckpt_file_set_metadata(f, json);
	}
	if (!rc && hlen && (hdr[0] == ' ' || hdr[0] == '\t' ||
	    hdr[0] == '\n' || hdr[0] == '\r'))
		rc = ckpt_file_add_finding(f, "header-leading-whitespace",
		    CKPT_SEV_WARNING, NULL, 8, "the header starts with "
		    "whitespace (accepted by the reference reader since "
		    "2026; older readers refuse it)");
out:
	free(sorted);
	for (size_t i = 0; i < ps.nt; i++) {
		free(ps.t[i].name);
		free(ps.t[i].shape);
	}
	free(ps.t);
	json_decref(ps.metadata);
	free(hdr);
	return rc;
}
