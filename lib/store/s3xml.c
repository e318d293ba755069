/* SPDX-License-Identifier: MIT */
/*
 * s3xml.c - a strict reader for the small XML documents S3 answers with
 * (ListBucketResult, InitiateMultipartUploadResult, Error, ...).  We need
 * a few leaf elements by path, so this is a pull over the document that
 * hands each closed element to a callback; it refuses what S3 never sends
 * (DOCTYPE and so entity expansion, mixed content, deep nesting) rather
 * than guess.  No new dependency for a few hundred bytes of answers.
 */
#include "util/internal.h"

#include "store/s3.h"
#include "util/util.h"

#define XML_DEPTH_MAX 16
#define XML_NAME_MAX 64

struct xml {
	const char *doc, *p, *end;
	const char *name;
	struct ckpt_error *err;
	ckpt_s3_xml_fn fn;
	void *arg;
	char path[XML_DEPTH_MAX * (XML_NAME_MAX + 1) + 1];
	size_t plen[XML_DEPTH_MAX + 1];	/* path length at each depth */
	bool has_child[XML_DEPTH_MAX + 1];
	int depth;
	char *text;			/* the current element's decoded text */
	size_t tlen;
	bool text_solid;		/* it has a non-space character */
};

static int
xml_fail(struct xml *x, const char *at, const char *what)
{
	return ckpt_error_set(x->err, CKPT_ERR_FORMAT, x->name,
	    (int64_t)(at - x->doc), "XML: %s", what);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	    c == ':';
}

static bool
name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool
starts(const struct xml *x, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(x->end - x->p) >= n && !memcmp(x->p, s, n);
}

static void
skip_space(struct xml *x)
{
	while (x->p < x->end && is_space(*x->p))
		x->p++;
}

/* Moves past the next `term`; fails when the document ends first. */
static int
skip_past(struct xml *x, const char *term, const char *what)
{
	const char *start = x->p;
	size_t n = strlen(term);

	while ((size_t)(x->end - x->p) >= n) {
		if (!memcmp(x->p, term, n)) {
			x->p += n;
			return 0;
		}
		if (!*x->p)
			return xml_fail(x, x->p, "NUL byte");
		x->p++;
	}
	return xml_fail(x, start, what);
}

/* A name at x->p: its length, 0 when there is none or it is too long. */
static size_t
read_name(struct xml *x)
{
	size_t n = 0;

	if (x->p >= x->end || !name_start(*x->p))
		return 0;
	while (x->p + n < x->end && name_char(x->p[n]))
		n++;
	return n <= XML_NAME_MAX ? n : 0;
}

static void
put_utf8(char *out, size_t *n, uint32_t c)
{
	if (c < 0x80) {
		out[(*n)++] = (char)c;
	} else if (c < 0x800) {
		out[(*n)++] = (char)(0xc0 | (c >> 6));
		out[(*n)++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		out[(*n)++] = (char)(0xe0 | (c >> 12));
		out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (c & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | (c >> 18));
		out[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3f));
		out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (c & 0x3f));
	}
}

/*
 * Decodes the reference at x->p ('&') into out (at most 4 bytes) and moves
 * past it.  Only the five predefined entities and character references.
 */
static int
read_reference(struct xml *x, char *out, size_t *n)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	const char *at = x->p;
	uint32_t c = 0;
	int digits = 0, base = 10;

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(named); i++) {
		if (starts(x, named[i].name)) {
			out[(*n)++] = named[i].c;
			x->p += strlen(named[i].name);
			return 0;
		}
	}
	if (!starts(x, "&#"))
		return xml_fail(x, at, "unknown entity (only &lt; &gt; &amp; "
		    "&quot; &apos; and &#N; are allowed)");
	x->p += 2;
	if (x->p < x->end && *x->p == 'x') {
		base = 16;
		x->p++;
	}
	for (; x->p < x->end && *x->p != ';'; x->p++, digits++) {
		char d = *x->p;
		int v;

		if (d >= '0' && d <= '9')
			v = d - '0';
		else if (base == 16 && d >= 'a' && d <= 'f')
			v = d - 'a' + 10;
		else if (base == 16 && d >= 'A' && d <= 'F')
			v = d - 'A' + 10;
		else
			return xml_fail(x, x->p, "bad character reference");
		if (digits >= 8)
			return xml_fail(x, at, "character reference too long");
		c = c * (uint32_t)base + (uint32_t)v;
	}
	if (x->p >= x->end || !digits)
		return xml_fail(x, at, "bad character reference");
	x->p++;
	/* The XML Char production: no NUL, controls, surrogates, FFFE/FFFF. */
	if ((c < 0x20 && c != 0x9 && c != 0xa && c != 0xd) ||
	    (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff ||
	    c > 0x10ffff)
		return xml_fail(x, at, "character reference to a "
		    "non-character");
	put_utf8(out, n, c);
	return 0;
}

/* Adds one raw or decoded byte run to the current text. */
static int
text_char(struct xml *x, const char *at, char c)
{
	if ((unsigned char)c < 0x20 && c != '\t' && c != '\n' && c != '\r')
		return xml_fail(x, at, "control character in text");
	if (!is_space(c))
		x->text_solid = true;
	x->text[x->tlen++] = c;
	return 0;
}

static int
read_attributes(struct xml *x, bool *empty)
{
	for (;;) {
		const char *before = x->p;
		size_t n;
		char q;

		skip_space(x);
		if (x->p >= x->end)
			return xml_fail(x, x->p, "unterminated start tag");
		if (*x->p == '>') {
			x->p++;
			*empty = false;
			return 0;
		}
		if (starts(x, "/>")) {
			x->p += 2;
			*empty = true;
			return 0;
		}
		if (x->p == before)
			return xml_fail(x, x->p, "space expected before an "
			    "attribute");
		if (!(n = read_name(x)))
			return xml_fail(x, x->p, "bad attribute name");
		x->p += n;
		skip_space(x);
		if (x->p >= x->end || *x->p != '=')
			return xml_fail(x, x->p, "'=' expected after an "
			    "attribute name");
		x->p++;
		skip_space(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xml_fail(x, x->p, "quoted attribute value "
			    "expected");
		q = *x->p++;
		while (x->p < x->end && *x->p != q) {
			char tmp[4];
			size_t tn = 0;
			int rc;

			if (*x->p == '<' || !*x->p)
				return xml_fail(x, x->p, "'<' or NUL in an "
				    "attribute value");
			if (*x->p == '&') {
				if ((rc = read_reference(x, tmp, &tn)))
					return rc;
				continue;
			}
			x->p++;
		}
		if (x->p >= x->end)
			return xml_fail(x, x->p, "unterminated attribute "
			    "value");
		x->p++;
	}
}

static int
open_element(struct xml *x)
{
	const char *at = x->p;
	size_t n, pl;
	bool empty = false;
	int rc;

	x->p++;			/* '<' */
	if (!(n = read_name(x)))
		return xml_fail(x, x->p, "bad element name");
	if (x->depth >= XML_DEPTH_MAX)
		return xml_fail(x, at, "elements nested too deeply");
	if (x->depth > 0) {
		if (x->text_solid)
			return xml_fail(x, at, "text mixed with elements");
		x->has_child[x->depth] = true;
	}
	pl = x->plen[x->depth];
	if (x->depth > 0)
		x->path[pl++] = '/';
	memcpy(x->path + pl, x->p, n);
	pl += n;
	x->path[pl] = '\0';
	x->p += n;
	x->depth++;
	x->plen[x->depth] = pl;
	x->has_child[x->depth] = false;
	x->tlen = 0;
	x->text_solid = false;
	if ((rc = read_attributes(x, &empty)))
		return rc;
	if (!empty)
		return 0;
	x->text[0] = '\0';
	rc = x->fn(x->arg, x->path, x->text, 0);
	x->depth--;
	x->path[x->plen[x->depth]] = '\0';
	return rc;
}

static int
close_element(struct xml *x)
{
	const char *at = x->p;
	size_t n, start;
	int rc;

	x->p += 2;		/* "</" */
	if (!(n = read_name(x)))
		return xml_fail(x, x->p, "bad end tag");
	start = x->depth > 1 ? x->plen[x->depth - 1] + 1 : 0;
	if (x->plen[x->depth] - start != n ||
	    memcmp(x->path + start, x->p, n))
		return xml_fail(x, at, "end tag does not match its start tag");
	x->p += n;
	skip_space(x);
	if (x->p >= x->end || *x->p != '>')
		return xml_fail(x, x->p, "'>' expected");
	x->p++;
	if (x->has_child[x->depth] && x->text_solid)
		return xml_fail(x, at, "text mixed with elements");
	x->text[x->tlen] = '\0';
	rc = x->fn(x->arg, x->path, x->has_child[x->depth] ? NULL : x->text,
	    x->has_child[x->depth] ? 0 : x->tlen);
	x->depth--;
	x->path[x->plen[x->depth]] = '\0';
	x->tlen = 0;
	x->text_solid = false;
	return rc;
}

/* Comments, processing instructions and space between elements. */
static int
skip_misc(struct xml *x, bool *more)
{
	*more = true;
	skip_space(x);
	if (starts(x, "<!--")) {
		x->p += 4;
		return skip_past(x, "-->", "unterminated comment");
	}
	if (starts(x, "<?")) {
		x->p += 2;
		return skip_past(x, "?>", "unterminated processing "
		    "instruction");
	}
	if (starts(x, "<!"))
		return xml_fail(x, x->p, "DOCTYPE and declarations are not "
		    "allowed");
	*more = false;
	return 0;
}

static int
read_content(struct xml *x)
{
	int rc;

	while (x->depth > 0) {
		const char *at = x->p;

		if (x->p >= x->end)
			return xml_fail(x, x->p, "document ends inside an "
			    "element");
		if (starts(x, "</")) {
			rc = close_element(x);
		} else if (starts(x, "<!--")) {
			x->p += 4;
			rc = skip_past(x, "-->", "unterminated comment");
		} else if (starts(x, "<![CDATA[")) {
			const char *s;

			x->p += 9;
			s = x->p;
			if ((rc = skip_past(x, "]]>", "unterminated CDATA")))
				return rc;
			for (; s < x->p - 3 && !rc; s++)
				rc = text_char(x, s, *s);
		} else if (starts(x, "<?")) {
			x->p += 2;
			rc = skip_past(x, "?>", "unterminated processing "
			    "instruction");
		} else if (starts(x, "<!")) {
			rc = xml_fail(x, x->p, "declaration inside an element");
		} else if (*x->p == '<') {
			rc = open_element(x);
		} else if (*x->p == '&') {
			char tmp[4];
			size_t tn = 0;

			rc = read_reference(x, tmp, &tn);
			for (size_t i = 0; i < tn && !rc; i++)
				rc = text_char(x, at, tmp[i]);
		} else if (!*x->p) {
			rc = xml_fail(x, x->p, "NUL byte");
		} else {
			rc = text_char(x, x->p, *x->p);
			x->p++;
		}
		if (rc)
			return rc;
	}
	return 0;
}

int
ckpt_s3_xml_parse(const char *doc, size_t len, const char *name,
    ckpt_s3_xml_fn fn, void *arg, struct ckpt_error *err)
{
	struct xml x = {
		.doc = doc, .p = doc, .end = doc + len, .name = name,
		.err = err, .fn = fn, .arg = arg,
	};
	bool more;
	int rc;

	/* Decoded text is never longer than the document. */
	if (!(x.text = malloc(len + 1)))
		return ckpt_error_nomem(err);
	if (starts(&x, "\xef\xbb\xbf"))
		x.p += 3;
	do {
		if ((rc = skip_misc(&x, &more)))
			goto out;
	} while (more);
	if (x.p >= x.end || *x.p != '<') {
		rc = xml_fail(&x, x.p, "no root element");
		goto out;
	}
	if ((rc = open_element(&x)) || (rc = read_content(&x)))
		goto out;
	do {
		if ((rc = skip_misc(&x, &more)))
			goto out;
	} while (more);
	if (x.p < x.end)
		rc = xml_fail(&x, x.p, "content after the root element");
out:
	free(x.text);
	return rc;
}

const char *
ckpt_s3_xml_below(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (strncmp(path, root, n) || (path[n] && path[n] != '/'))
		return NULL;
	return path + n;
}

bool
ckpt_s3_xml_bool(const char *text, size_t len, bool *out)
{
	if (len == 4 && !memcmp(text, "true", 4))
		*out = true;
	else if (len == 5 && !memcmp(text, "false", 5))
		*out = false;
	else
		return false;
	return true;
}

int64_t
ckpt_s3_xml_time(const char *text, size_t len)
{
	char buf[40];
	int64_t t;

	if (len >= sizeof(buf) || strlen(text) != len)
		return -2;
	memcpy(buf, text, len + 1);
	t = ckpt_parse_iso_time(buf);
	return t < 0 ? -1 : t;
}

int
ckpt_s3_xml_take(char **field, const char *text, size_t len)
{
	free(*field);
	*field = NULL;
	if (strlen(text) != len)
		return -1;
	if (!(*field = strndup(text, len)))
		return CKPT_ERR_NOMEM;
	return 0;
}
