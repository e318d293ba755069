/* SPDX-License-Identifier: MIT */
/*
 * output.c - see output.h.  --json is the stable contract: sorted keys,
 * two-space indent, "schema": 1, sizes in bytes, digests as "algo:hex".
 * The human format is for people and may change.
 */
#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

/* The decimal digits of n, at the end of digits[24]; returns the first. */
static char *
u64_digits(uint64_t n, char digits[24])
{
	char *p = digits + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	return p;
}

const char *
human_size(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
		"PiB", "EiB" };
	double v = (double)n;
	size_t u = 0;
	char digits[24];

	if (n < 1024) {
		const char *d = u64_digits(n, digits);
		size_t k = strlen(d);

		if (k + 3 > len) {
			snprintf(buf, len, "%s B", d);
			return buf;
		}
		memcpy(buf, d, k);
		memcpy(buf + k, " B", 3);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" :
	    "%.0f %s", v, units[u]);
	return buf;
}

const char *
human_count(uint64_t n, char *buf, size_t len)
{
	char space[24], *digits = u64_digits(n, space);
	size_t nd = strlen(digits), o = 0;

	for (size_t i = 0; i < nd && o + 2 < len; i++) {
		if (i && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

const char *
human_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%SZ",
	    &tm))
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

json_t *
json_time(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf),
	    "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

/* Display width of UTF-8 text: code points, not bytes. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void
table_init(struct table *t, size_t ncols, const char **headers,
    const enum col_align *align)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->headers = headers;
	t->align = xcalloc(ncols, sizeof(*t->align));
	if (align)
		memcpy(t->align, align, ncols * sizeof(*align));
	t->width = xcalloc(ncols, sizeof(*t->width));
	for (size_t c = 0; headers && c < ncols; c++)
		t->width[c] = text_width(headers[c]);
}

void
table_measure(struct table *t, const char *const *cells)
{
	for (size_t c = 0; c < t->ncols; c++) {
		size_t w = cells[c] ? text_width(cells[c]) : 0;

		if (w > t->width[c])
			t->width[c] = w;
	}
}

void
table_add_row(struct table *t, const char **cells)
{
	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols,
	    sizeof(*t->cells));
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] =
		    xstrdup(cells[i] ? cells[i] : "");
	t->nrows++;
	table_measure(t, cells);
}

void
table_add(struct table *t, ...)
{
	const char **cells = xcalloc(t->ncols, sizeof(*cells));
	va_list ap;

	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++)
		cells[i] = va_arg(ap, const char *);
	va_end(ap);
	table_add_row(t, cells);
	free(cells);
}

/* pad spaces (no printf: a table of 40,000 rows printed 200,000 cells) */
static void
put_pad(FILE *fp, size_t pad)
{
	static const char spaces[] = "                                ";

	for (size_t n; pad; pad -= n) {
		n = pad < sizeof(spaces) - 1 ? pad : sizeof(spaces) - 1;
		fwrite(spaces, 1, n, fp);
	}
}

static void
print_cell(FILE *fp, const char *s, size_t width, enum col_align a,
    bool last)
{
	size_t pad = width - text_width(s);

	if (a == COL_RIGHT)
		put_pad(fp, pad);
	fputs(s, fp);
	if (a != COL_RIGHT && !last)
		put_pad(fp, pad);
}

void
table_print_header(const struct table *t, FILE *fp, const struct ctx *ctx)
{
	if (!t->headers)
		return;
	if (ctx && ctx->color)
		fputs("\033[1m", fp);
	for (size_t c = 0; c < t->ncols; c++) {
		print_cell(fp, t->headers[c], t->width[c], t->align[c],
		    c + 1 == t->ncols);
		if (c + 1 < t->ncols)
			fputs("  ", fp);
	}
	if (ctx && ctx->color)
		fputs("\033[0m", fp);
	fputc('\n', fp);
}

/* A row into line[] as print_cell prints it; false when it does not fit. */
static bool
row_text(const struct table *t, const char *const *cells, size_t end,
    char *line, size_t cap, size_t *len)
{
	size_t o = 0;

	for (size_t c = 0; c < end; c++) {
		const char *s = cells[c] ? cells[c] : "";
		size_t n = strlen(s), w = text_width(s);
		size_t pad = t->width[c] - w;
		bool right = t->align[c] == COL_RIGHT, last = c + 1 == end;
		size_t need = n + (right || !last ? pad : 0) + (last ? 1 : 2);

		if (cap - o < need)
			return false;
		if (right) {
			memset(line + o, ' ', pad);
			o += pad;
		}
		memcpy(line + o, s, n);
		o += n;
		if (!right && !last) {
			memset(line + o, ' ', pad);
			o += pad;
		}
		if (!last) {
			memcpy(line + o, "  ", 2);
			o += 2;
		}
	}
	line[o++] = '\n';
	*len = o;
	return true;
}

void
table_print_row(const struct table *t, FILE *fp, const char *const *cells)
{
	size_t end = t->ncols, len;
	char line[1024];

	/* Trailing empty cells print nothing, not padding: no line ends in
	 * spaces. */
	while (end > 1 && (!cells[end - 1] || !*cells[end - 1]))
		end--;
	/* one write a row: a table of 40,000 rows made 400,000 */
	if (row_text(t, cells, end, line, sizeof(line), &len)) {
		fwrite(line, 1, len, fp);
		return;
	}
	for (size_t c = 0; c < end; c++) {
		print_cell(fp, cells[c] ? cells[c] : "", t->width[c],
		    t->align[c], c + 1 == end);
		if (c + 1 < end)
			fputs("  ", fp);
	}
	fputc('\n', fp);
}

void
table_print(const struct table *t, FILE *fp, const struct ctx *ctx)
{
	table_print_header(t, fp, ctx);
	for (size_t r = 0; r < t->nrows; r++)
		table_print_row(t, fp, (const char *const *)&t->cells[r *
		    t->ncols]);
}

void
table_release(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->align);
	free(t->width);
	memset(t, 0, sizeof(*t));
}

void
fputs_color(const struct ctx *ctx, enum color c, const char *s, FILE *fp)
{
	static const char *const codes[] = {
		[COLOR_NONE] = "", [COLOR_RED] = "\033[31m",
		[COLOR_GREEN] = "\033[32m", [COLOR_YELLOW] = "\033[33m",
		[COLOR_BOLD] = "\033[1m", [COLOR_DIM] = "\033[2m",
	};
	/* Colour only where the stream is the terminal ctx->color was
	 * decided for: stdout; stderr gets its own check. */
	bool on = c != COLOR_NONE && ctx && ctx->color &&
	    (fp == stdout || (fp == stderr && ctx->progress));

	if (on)
		fputs(codes[c], fp);
	fputs(s, fp);
	if (on)
		fputs("\033[0m", fp);
}

json_t *
json_doc_new(void)
{
	json_t *doc = json_object();

	if (!doc)
		die("out of memory");
	json_object_set_new(doc, "schema", json_integer(1));
	return doc;
}

/*
 * A real as the shortest text that reads back as the same double (what
 * Python's repr gives): 0.9, not jansson's 0.90000000000000002.
 */
void
print_real(FILE *fp, double v)
{
	char buf[40];

	/*
	 * The shortest that reads back.  When 15 digits do not, no fewer
	 * do (a shorter decimal that read back would be the 15-digit
	 * rounding too), so long values try 16 and 17 only: ls --json of
	 * 100,000 metrics spent a quarter of its time here.
	 */
	snprintf(buf, sizeof(buf), "%.15g", v);
	for (int prec = strtod(buf, NULL) == v ? 1 : 16; prec <= 17;
	    prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* Still a real when read back: 1 becomes 1.0, as jansson writes. */
	if (!strpbrk(buf, ".eE"))
		strcat(buf, ".0");
	fputs(buf, fp);
}

/* A JSON string as jansson escapes one (its strings are valid UTF-8). */
static void
print_string(FILE *fp, const char *s, size_t n)
{
	size_t run = 0;

	fputc('"', fp);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" :
		    c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" :
		    c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;

		if (!e && c >= 0x20) {
			run++;
			continue;
		}
		fwrite(s + i - run, 1, run, fp);
		run = 0;
		if (e)
			fputs(e, fp);
		else
			fprintf(fp, "\\u%04X", c);
	}
	fwrite(s + n - run, 1, run, fp);
	fputc('"', fp);
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
indent(FILE *fp, int depth)
{
	static const char line[] = "\n                                ";
	int n = 2 * depth;

	/* one write for the usual depths (ls --json: 100,000 entries) */
	if (n >= 0 && (size_t)n < sizeof(line) - 1) {
		fwrite(line, 1, (size_t)n + 1, fp);
		return;
	}
	fputc('\n', fp);
	for (int i = 0; i < n; i++)
		fputc(' ', fp);
}

/* jansson's JSON_SORT_KEYS | JSON_INDENT(2) layout, reals as above. */
static void
print_json(FILE *fp, json_t *v, int depth)
{
	char *text;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char **keys;
		const char *k;
		json_t *x;

		if (!n) {
			fputs("{}", fp);
			break;
		}
		keys = xcalloc(n, sizeof(*keys));
		json_object_foreach(v, k, x)
			keys[i++] = k;
		qsort(keys, n, sizeof(*keys), cmp_key);
		fputc('{', fp);
		for (i = 0; i < n; i++) {
			indent(fp, depth + 1);
			print_string(fp, keys[i], strlen(keys[i]));
			fputs(": ", fp);
			print_json(fp, json_object_get(v, keys[i]), depth + 1);
			if (i + 1 < n)
				fputc(',', fp);
		}
		indent(fp, depth);
		fputc('}', fp);
		free(keys);
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);

		if (!n) {
			fputs("[]", fp);
			break;
		}
		fputc('[', fp);
		for (size_t i = 0; i < n; i++) {
			indent(fp, depth + 1);
			print_json(fp, json_array_get(v, i), depth + 1);
			if (i + 1 < n)
				fputc(',', fp);
		}
		indent(fp, depth);
		fputc(']', fp);
		break;
	}
	case JSON_REAL:
		print_real(fp, json_real_value(v));
		break;
	case JSON_STRING:
		print_string(fp, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		fprintf(fp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	default:
		/* true, false, null */
		text = json_dumps(v, JSON_ENCODE_ANY);
		if (!text)
			die("out of memory");
		fputs(text, fp);
		free(text);
		break;
	}
}

void
json_print_value(json_t *v, int depth)
{
	print_json(stdout, v, depth);
}

void
json_doc_print(json_t *doc)
{
	print_json(stdout, doc, 0);
	fputc('\n', stdout);
	if (fflush(stdout) || ferror(stdout))
		die("cannot write JSON output");
	json_decref(doc);
}

/* ------------------------------------------------------------------ */
/* Streaming: a document written a member at a time                   */
/* ------------------------------------------------------------------ */

void
json_stream_begin(struct json_stream *s, int depth, bool array)
{
	s->depth = depth;
	s->array = array;
	s->any = false;
}

static void
stream_next(struct json_stream *s)
{
	fputc(s->any ? ',' : s->array ? '[' : '{', stdout);
	s->any = true;
	indent(stdout, s->depth + 1);
}

void
json_stream_key(struct json_stream *s, const char *key)
{
	stream_next(s);
	print_string(stdout, key, strlen(key));
	fputs(": ", stdout);
}

void
json_stream_item(struct json_stream *s)
{
	stream_next(s);
}

void
json_stream_put(struct json_stream *s, const char *key, json_t *v)
{
	if (s->array)
		json_stream_item(s);
	else
		json_stream_key(s, key);
	print_json(stdout, v, s->depth + 1);
	json_decref(v);
}

/* The key, or the next item of an array. */
static void
stream_member(struct json_stream *s, const char *key)
{
	if (s->array)
		json_stream_item(s);
	else
		json_stream_key(s, key);
}

void
json_stream_string(struct json_stream *s, const char *key, const char *v)
{
	stream_member(s, key);
	if (v)
		print_string(stdout, v, strlen(v));
	else
		fputs("null", stdout);
}

void
json_stream_strings(struct json_stream *s, const char *key,
    const char *const *v, size_t n)
{
	struct json_stream a;

	json_stream_key(s, key);
	json_stream_begin(&a, s->depth + 1, true);
	for (size_t i = 0; i < n; i++)
		json_stream_string(&a, NULL, v[i]);
	json_stream_end(&a);
}

void
json_stream_int(struct json_stream *s, const char *key, json_int_t v)
{
	stream_member(s, key);
	printf("%" JSON_INTEGER_FORMAT, v);
}

void
json_stream_bool(struct json_stream *s, const char *key, bool v)
{
	stream_member(s, key);
	fputs(v ? "true" : "false", stdout);
}

void
json_stream_real(struct json_stream *s, const char *key, double v)
{
	stream_member(s, key);
	if (isnan(v))
		fputs("null", stdout);
	else
		print_real(stdout, v);
}

void
json_stream_end(struct json_stream *s)
{
	if (!s->any) {
		fputs(s->array ? "[]" : "{}", stdout);
		return;
	}
	indent(stdout, s->depth);
	fputc(s->array ? ']' : '}', stdout);
}

/* ------------------------------------------------------------------ */
/* A JSON text printed as json_doc_print prints its parse              */
/* ------------------------------------------------------------------ */

/*
 * json_print_text() reads the text twice: a check that it is in the form
 * whose parse it can print without building it (every string escaped as
 * print_string escapes, numbers that jansson reads back, no duplicate
 * keys, no deeper nesting than TEXT_MAX_DEPTH, so that skipping members
 * stays cheap), then the printing, objects' members sorted by their
 * decoded keys.  Anything else goes to jansson, as before.
 */
#define TEXT_MAX_DEPTH 64

struct text_member {
	size_t key, value;	/* offsets of the key's quote, the value */
};

struct text_walk {
	const char *s;
	bool print;
	int base;		/* depth of the top-level value */
};

static const char *sort_text;	/* qsort's comparator context */

static size_t
skip_ws(const char *s, size_t i)
{
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	return i;
}

/* The byte a string character at s[*i] stands for (0 at the closing
 * quote); *i moves past it.  Only the escapes text_string admits. */
static unsigned char
text_char(const char *s, size_t *i)
{
	unsigned char c = (unsigned char)s[*i];

	if (c == '"')
		return 0;
	if (c != '\\') {
		(*i)++;
		return c;
	}
	c = (unsigned char)s[*i + 1];
	*i += 2;
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		*i += 4;
		return (unsigned char)strtoul((char[3]){ s[*i - 2], s[*i - 1],
		    '\0' }, NULL, 16);
	default:
		return c;
	}
}

static int
cmp_member(const void *a, const void *b)
{
	size_t i = ((const struct text_member *)a)->key + 1;
	size_t j = ((const struct text_member *)b)->key + 1;

	for (;;) {
		unsigned char x = (unsigned char)sort_text[i];
		unsigned char y = (unsigned char)sort_text[j];

		/* plain bytes stand for themselves */
		if (x != '\\' && x != '"' && y != '\\' && y != '"') {
			if (x != y)
				return (int)x - (int)y;
			i++;
			j++;
			continue;
		}
		x = text_char(sort_text, &i);
		y = text_char(sort_text, &j);
		if (x != y || !x)
			return (int)x - (int)y;
	}
}

/* FNV-1a of a member's key as text_char decodes it (no key holds a NUL:
 * text_string refuses \u0000). */
static uint32_t
member_hash(const char *s, size_t key)
{
	size_t i = key + 1;
	uint32_t h = 2166136261u;
	unsigned char c;

	while ((c = text_char(s, &i)))
		h = (h ^ c) * 16777619u;
	return h;
}

/* No two of m[0, n) have the same key: a hash of them, where sorting a
 * state dict's 40,000 keys took longer than reading its file. */
static bool
members_distinct(const char *s, const struct text_member *m, size_t n)
{
	size_t cap = 16, *slot;
	bool ok = true;

	if (n <= 8) {	/* {"$tensor": ...}: no table for one key */
		sort_text = s;
		for (size_t k = 1; k < n && ok; k++)
			for (size_t j = 0; j < k && ok; j++)
				ok = cmp_member(&m[j], &m[k]) != 0;
		return ok;
	}
	while (cap < 2 * n)
		cap *= 2;
	slot = xcalloc(cap, sizeof(*slot));	/* index + 1 */
	sort_text = s;
	for (size_t k = 0; k < n && ok; k++) {
		size_t h = member_hash(s, m[k].key) & (cap - 1);

		for (; slot[h] && ok; h = (h + 1) & (cap - 1))
			ok = cmp_member(&m[slot[h] - 1], &m[k]) != 0;
		slot[h] = k + 1;
	}
	free(slot);
	return ok;
}

/* Length of a valid UTF-8 sequence at s (jansson's rules), 0 if none. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t k = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 :
	    s[0] >= 0xe0 && s[0] < 0xf0 ? 3 : s[0] >= 0xf0 && s[0] < 0xf5 ?
	    4 : 0;

	for (size_t m = 1; m < k; m++)
		if ((s[m] & 0xc0) != 0x80)
			return 0;
	if ((k == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) ||
	    (s[0] == 0xed && s[1] >= 0xa0))) ||
	    (k == 4 && ((s[0] == 0xf0 && s[1] < 0x90) ||
	    (s[0] == 0xf4 && s[1] >= 0x90))))
		return 0;
	return k;
}

/* A string at s[*i] (its opening quote) escaped exactly as print_string
 * would write its value; *i moves past it. */
static bool
text_string(const char *s, size_t *i)
{
	size_t p = *i + 1;

	for (;;) {
		unsigned char c = (unsigned char)s[p];

		if (c > '"' && c < 0x7f && c != '\\') {
			p++;	/* printable ASCII: most of a key */
			continue;
		}
		if (c == '"')
			break;
		if (c < 0x20)
			return false;	/* raw control character, or the end */
		if (c == '\\') {
			char e = s[p + 1], want[8];
			unsigned long v;

			if (e && strchr("\"\\bfnrt", e)) {
				p += 2;
				continue;
			}
			if (e != 'u' || !isxdigit((unsigned char)s[p + 2]))
				return false;
			v = strtoul((char[5]){ s[p + 2], s[p + 3], s[p + 4],
			    s[p + 5], '\0' }, NULL, 16);
			snprintf(want, sizeof(want), "\\u%04X", (unsigned)v);
			if (!v || v >= 0x20 || strchr("\b\f\n\r\t", (int)v) ||
			    strncmp(s + p, want, 6))
				return false;
			p += 6;
			continue;
		}
		if (!(c = (unsigned char)utf8_len((const unsigned char *)s +
		    p)))
			return false;
		p += c;
	}
	*i = p + 1;
	return true;
}

/* A number as jansson reads one: an integer in range, not "-0" (which
 * it prints as 0), or a finite real. */
static bool
text_number(const struct text_walk *w, size_t *i)
{
	const char *s = w->s;
	size_t p = *i, start = *i;
	bool real = false;
	char *end;

	if (s[p] == '-')
		p++;
	if (s[p] == '0')
		p++;
	else if (isdigit((unsigned char)s[p]))
		while (isdigit((unsigned char)s[p]))
			p++;
	else
		return false;
	if (s[p] == '.') {
		real = true;
		if (!isdigit((unsigned char)s[++p]))
			return false;
		while (isdigit((unsigned char)s[p]))
			p++;
	}
	if (s[p] == 'e' || s[p] == 'E') {
		real = true;
		p++;
		if (s[p] == '+' || s[p] == '-')
			p++;
		if (!isdigit((unsigned char)s[p]))
			return false;
		while (isdigit((unsigned char)s[p]))
			p++;
	}
	errno = 0;
	if (real) {
		double d = strtod(s + start, &end);

		if ((size_t)(end - s) != p || !isfinite(d))
			return false;
		if (w->print)
			print_real(stdout, d);
	} else {
		(void)strtoll(s + start, &end, 10);
		if ((size_t)(end - s) != p || errno || !strncmp(s + start,
		    "-0", p - start))
			return false;
		if (w->print)
			fwrite(s + start, 1, p - start, stdout);
	}
	*i = p;
	return true;
}

static bool text_value(const struct text_walk *w, size_t *i, int depth);

static bool
text_object(const struct text_walk *w, size_t *i, int depth)
{
	const struct text_walk skip = { .s = w->s, .base = w->base };
	struct text_member *m = NULL;
	size_t n = 0, cap = 0, p = skip_ws(w->s, *i + 1);
	bool ok = true;

	while (ok && w->s[p] != '}') {
		if (n && w->s[p++] != ',') {
			ok = false;
			break;
		}
		p = skip_ws(w->s, p);
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			m = xreallocarray(m, cap, sizeof(*m));
		}
		m[n].key = p;
		if (w->s[p] != '"' || !text_string(w->s, &p) ||
		    w->s[p = skip_ws(w->s, p)] != ':') {
			ok = false;
			break;
		}
		m[n++].value = p = skip_ws(w->s, p + 1);
		ok = text_value(&skip, &p, depth + 1);
		p = skip_ws(w->s, p);
	}
	if (ok && n && !w->print) {
		ok = members_distinct(w->s, m, n);
	} else if (ok && n) {
		/* printed in key order */
		sort_text = w->s;
		qsort(m, n, sizeof(*m), cmp_member);
		for (size_t k = 1; k < n && ok; k++)
			ok = cmp_member(&m[k - 1], &m[k]) != 0;
	}
	if (ok && w->print) {
		for (size_t k = 0; k < n; k++) {
			size_t v = m[k].value, e = m[k].key;

			fputc(k ? ',' : '{', stdout);
			indent(stdout, depth + 1);
			text_string(w->s, &e);
			fwrite(w->s + m[k].key, 1, e - m[k].key, stdout);
			fputs(": ", stdout);
			text_value(w, &v, depth + 1);
		}
		if (n)
			indent(stdout, depth);
		fputs(n ? "}" : "{}", stdout);
	}
	free(m);
	*i = p + 1;
	return ok;
}

static bool
text_array(const struct text_walk *w, size_t *i, int depth)
{
	size_t n = 0, p = skip_ws(w->s, *i + 1);

	while (w->s[p] != ']') {
		if (n && w->s[p++] != ',')
			return false;
		p = skip_ws(w->s, p);
		if (w->print) {
			fputc(n ? ',' : '[', stdout);
			indent(stdout, depth + 1);
		}
		if (!text_value(w, &p, depth + 1))
			return false;
		p = skip_ws(w->s, p);
		n++;
	}
	if (w->print) {
		if (n)
			indent(stdout, depth);
		fputs(n ? "]" : "[]", stdout);
	}
	*i = p + 1;
	return true;
}

static bool
text_value(const struct text_walk *w, size_t *i, int depth)
{
	static const char *const lits[] = { "true", "false", "null" };
	const char *s = w->s;
	size_t p = *i;

	if (depth - w->base > TEXT_MAX_DEPTH)
		return false;
	switch (s[p]) {
	case '{':
		return text_object(w, i, depth);
	case '[':
		return text_array(w, i, depth);
	case '"':
		if (!text_string(s, i))
			return false;
		if (w->print)
			fwrite(s + p, 1, *i - p, stdout);
		return true;
	default:
		for (size_t k = 0; k < sizeof(lits) / sizeof(lits[0]); k++) {
			size_t n = strlen(lits[k]);

			if (!strncmp(s + p, lits[k], n)) {
				if (w->print)
					fputs(lits[k], stdout);
				*i = p + n;
				return true;
			}
		}
		return text_number(w, i);
	}
}

bool
json_print_text(const char *text, int depth)
{
	struct text_walk w = { .s = text, .base = depth };
	size_t i = skip_ws(text, 0);

	if (!text_value(&w, &i, depth) || text[skip_ws(text, i)])
		return false;
	w.print = true;
	i = skip_ws(text, 0);
	return text_value(&w, &i, depth);
}

bool
json_text_valid(const char *text)
{
	struct text_walk w = { .s = text };
	size_t i = skip_ws(text, 0);

	return text_value(&w, &i, 0) && !text[skip_ws(text, i)];
}

size_t
json_text_children(const char *text, size_t at, struct json_text_child **out)
{
	/* the text was checked whole (json_text_valid): no value below
	 * is nested deeper than the limit counts from here */
	const struct text_walk skip = { .s = text };
	struct json_text_child *c = NULL;
	char close = text[at] == '{' ? '}' : ']';
	size_t n = 0, cap = 0, p = skip_ws(text, at + 1);

	while (text[p] != close) {
		if (n)
			p = skip_ws(text, p + 1);	/* the comma */
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			c = xreallocarray(c, cap, sizeof(*c));
		}
		c[n].key = SIZE_MAX;
		if (close == '}') {
			c[n].key = p;
			text_string(text, &p);
			p = skip_ws(text, skip_ws(text, p) + 1);
		}
		c[n].value = p;
		text_value(&skip, &p, 0);
		c[n++].end = p;
		p = skip_ws(text, p);
	}
	*out = c;
	return n;
}

char *
json_text_string(const char *text, size_t at)
{
	size_t i = at + 1, n = 0;
	char *d;

	while (text_char(text, &i))
		n++;
	d = xmalloc(n + 1);
	i = at + 1;
	for (size_t k = 0; k < n; k++)
		d[k] = (char)text_char(text, &i);
	d[n] = '\0';
	return d;
}

json_t *
json_digest(const char *algo, const unsigned char *d, size_t len)
{
	char hex[CKPT_HASH_HEX_MAX];
	char *s;
	json_t *j;

	ckpt_hex(d, len, hex);
	s = xasprintf("%s:%s", algo, hex);
	j = json_string(s);
	free(s);
	return j;
}

double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
progress_start(struct progress *p, const struct ctx *ctx, const char *label,
    uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->start = p->last = now_seconds();
	p->enabled = ctx->verbosity >= 1 && ctx->progress;
}

void
progress_update(struct progress *p, uint64_t done)
{
	char a[16], b[16], r[16];
	double t, rate;
	int pct;

	p->done = done;
	if (!p->enabled)
		return;
	t = now_seconds();
	/* Quiet for the first second, then at most ten updates a second. */
	if (t - p->start < 1.0 || t - p->last < 0.1)
		return;
	p->last = t;
	p->shown = true;
	rate = (double)done / (t - p->start);
	pct = p->total ? (int)(100.0 * (double)done / (double)p->total) : 0;
	fprintf(stderr, "\r%s: %3d%% (%s / %s, %s/s)\033[K", p->label, pct,
	    human_size(done, a, sizeof(a)), human_size(p->total, b,
	    sizeof(b)), human_size((uint64_t)rate, r, sizeof(r)));
}

void
progress_callback(uint64_t done, uint64_t total, void *data)
{
	struct progress *p = data;

	if (total)
		p->total = total;
	progress_update(p, done);
}

void
progress_stop(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
	p->shown = false;
}
