/* SPDX-License-Identifier: MIT */
/*
 * manifest.c - reading a checkpoint manifest (ckpt-manifest(5)) strictly.
 *
 * The manifest decides what verify trusts, so it is parsed as hostile
 * input: no duplicate keys, no trailing garbage, a known schema, canonical
 * and sorted file paths (so that "a", "./a" and "a" twice cannot name one
 * file two ways), well-formed digests, ranges inside their file.
 */
#include "util/internal.h"

#include <sys/stat.h>

#include <jansson.h>

#include "store/store.h"

#define MANIFEST_MAX	CKPT_MANIFEST_MAX
#define PATH_LEN_MAX	4096

struct ckpt_manifest {
	json_t *root;
	char *text;
	char *dir;
	char digest[8 + 2 * CKPT_SHA256_BYTES + 1];
	struct ckpt_manifest_file *files;
	size_t nfiles;
	int64_t step;
	int schema;
};

static int
bad(struct ckpt_error *err, const char *path, const char *fmt, ...)
    CKPT_PRINTF(3, 4);

static int
bad(struct ckpt_error *err, const char *path, const char *fmt, ...)
{
	char msg[CKPT_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1, "%s", msg);
}

/* "sha256:" + 64 lower-case hex digits into 32 bytes. */
static bool
parse_digest(json_t *v, unsigned char *out)
{
	const char *s = json_string_value(v);

	if (!s || strncmp(s, "sha256:", 7) || strlen(s) != 7 + 64)
		return false;
	s += 7;
	for (size_t i = 0; i < 32; i++) {
		int hi, lo;
		char a = s[2 * i], b = s[2 * i + 1];

		hi = a >= '0' && a <= '9' ? a - '0' : a >= 'a' && a <= 'f' ?
		    a - 'a' + 10 : -1;
		lo = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ?
		    b - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

static bool
get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Bytes in the UTF-8 sequence starting at p (0: not valid UTF-8, which
 * JSON text cannot hold). */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n;
	uint32_t c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return n;
}

const char *
ckpt_manifest_path_problem(const char *p)
{
	const char *c = p;
	size_t n = strlen(p);

	if (!n)
		return "empty path";
	if (n > PATH_LEN_MAX)
		return "path longer than 4096 bytes";
	if (p[0] == '/' || p[n - 1] == '/')
		return "not a relative path";
	for (size_t i = 0; i < n;) {
		size_t len = utf8_len((const unsigned char *)p + i);

		if (!len)
			return "not valid UTF-8";
		if ((unsigned char)p[i] < 0x20)
			return "a control character (newline, tab...)";
		if (p[i] == '\\')
			return "a backslash";
		i += len;
	}
	while (c) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);

		if (!len || (len == 1 && c[0] == '.') || (len == 2 &&
		    c[0] == '.' && c[1] == '.'))
			return "an empty, '.' or '..' component";
		c = slash ? slash + 1 : NULL;
	}
	return NULL;
}

/* {"offset", "size"} inside a file of fsize bytes; with_digest: "sha256". */
static int
read_span(json_t *o, uint64_t fsize, bool with_digest,
    struct ckpt_range_digest *r)
{
	uint64_t off, size;

	if (!json_is_object(o) || !get_u64(o, "offset", &off) ||
	    !get_u64(o, "size", &size) || (with_digest &&
	    !parse_digest(json_object_get(o, "sha256"), r->sha256)))
		return -1;
	if (!ckpt_add_u64(off, size, &r->end) || r->end > fsize)
		return -2;
	r->offset = off;
	return 0;
}

static int
read_range(json_t *o, uint64_t fsize, struct ckpt_range_digest *r)
{
	return read_span(o, fsize, true, r);
}

/*
 * Schema 2: "ranges" in offset order cover [0, size) exactly once, none
 * empty, so that checking them all checks every byte once.
 */
static int
read_ranges(struct ckpt_manifest_file *f, json_t *v, const char *mpath,
    struct ckpt_error *err)
{
	struct ckpt_range_digest *r;
	json_t *el;
	size_t i;

	if (!json_is_array(v))
		return bad(err, mpath, "%s: no \"ranges\" array", f->path);
	if (!json_array_size(v)) {
		if (f->size)
			return bad(err, mpath, "%s: ranges do not cover the "
			    "file (0 of %llu bytes)", f->path,
			    (unsigned long long)f->size);
		return CKPT_OK;
	}
	if (!(r = calloc(json_array_size(v), sizeof(*r))))
		return ckpt_error_nomem(err);
	f->ranges = r;
	json_array_foreach(v, i, el) {
		uint64_t want = i ? r[i - 1].end : 0;

		if (read_range(el, f->size, &r[i]))
			return bad(err, mpath, "%s: ranges[%zu] is malformed "
			    "or outside the file", f->path, i);
		if (r[i].offset != want || r[i].end == r[i].offset)
			return bad(err, mpath, "%s: ranges[%zu] starts at byte "
			    "%llu%s, not at byte %llu where the ranges before "
			    "it end", f->path, i,
			    (unsigned long long)r[i].offset,
			    r[i].end == r[i].offset ? " and is empty" : "",
			    (unsigned long long)want);
		f->nranges++;
	}
	if (r[f->nranges - 1].end != f->size)
		return bad(err, mpath, "%s: ranges end at byte %llu, the file "
		    "at byte %llu", f->path,
		    (unsigned long long)r[f->nranges - 1].end,
		    (unsigned long long)f->size);
	return CKPT_OK;
}

static int
read_file_entry(struct ckpt_manifest *m, json_t *fo, size_t idx,
    const char *mpath, struct ckpt_error *err)
{
	struct ckpt_manifest_file *f = &m->files[idx];
	json_t *v, *el;
	size_t i;

	if (!json_is_object(fo))
		return bad(err, mpath, "files[%zu] is not an object", idx);
	f->path = json_string_value(json_object_get(fo, "path"));
	if (!f->path || ckpt_manifest_path_problem(f->path))
		return bad(err, mpath, "files[%zu]: path %s%s%s is not a "
		    "canonical relative path", idx, f->path ? "'" : "",
		    f->path ? f->path : "(missing)", f->path ? "'" : "");
	if (!strcmp(f->path, CKPT_MANIFEST_NAME) || !strcmp(f->path,
	    CKPT_STATUS_NAME) || !strcmp(f->path, CKPT_STAGING_NAME))
		return bad(err, mpath, "files[%zu]: '%s' is a reserved name",
		    idx, f->path);
	if (idx && strcmp(m->files[idx - 1].path, f->path) >= 0)
		return bad(err, mpath, "files[%zu]: '%s' is %s", idx, f->path,
		    strcmp(m->files[idx - 1].path, f->path) ? "out of order "
		    "(paths must be sorted byte-wise)" : "listed twice");
	if (!get_u64(fo, "size", &f->size))
		return bad(err, mpath, "%s: missing or negative size",
		    f->path);
	/* Schema 2 records the whole-file digest only when asked to. */
	f->has_sha256 = m->schema == 1 || json_object_get(fo, "sha256");
	if (f->has_sha256 && !parse_digest(json_object_get(fo, "sha256"),
	    f->sha256))
		return bad(err, mpath, "%s: missing or malformed sha256",
		    f->path);
	f->format = json_string_value(json_object_get(fo, "format"));
	if (!f->format)
		f->format = "unknown";
	f->chunk_size = 0;
	if (json_object_get(fo, "chunk_size") && !get_u64(fo, "chunk_size",
	    &f->chunk_size))
		return bad(err, mpath, "%s: bad chunk_size", f->path);
	if (m->schema >= 2) {
		int rc = read_ranges(f, json_object_get(fo, "ranges"), mpath,
		    err);

		if (rc)
			return rc;
	}
	v = m->schema == 1 ? json_object_get(fo, "chunks") : NULL;
	if (v && !json_is_array(v))
		return bad(err, mpath, "%s: chunks is not an array", f->path);
	if (json_array_size(v)) {
		struct ckpt_range_digest *c = calloc(json_array_size(v),
		    sizeof(*c));

		if (!c)
			return ckpt_error_nomem(err);
		f->chunks = c;
		json_array_foreach(v, i, el) {
			if (read_range(el, f->size, &c[i]))
				return bad(err, mpath, "%s: chunks[%zu] is "
				    "malformed or outside the file", f->path,
				    i);
			f->nchunks++;
		}
	}
	v = json_object_get(fo, "tensors");
	if (v && !json_is_array(v))
		return bad(err, mpath, "%s: tensors is not an array", f->path);
	if (json_array_size(v)) {
		struct ckpt_manifest_tensor *t = calloc(json_array_size(v),
		    sizeof(*t));

		if (!t)
			return ckpt_error_nomem(err);
		f->tensors = t;
		json_array_foreach(v, i, el) {
			json_t *shape = json_object_get(el, "shape"), *d;
			uint64_t *sh;
			size_t k;

			t[i].name = json_string_value(json_object_get(el,
			    "name"));
			t[i].dtype = json_string_value(json_object_get(el,
			    "dtype"));
			if (!t[i].name || !t[i].dtype || !json_is_array(shape)
			    || json_array_size(shape) > CKPT_MAX_DIMS)
				return bad(err, mpath, "%s: tensors[%zu] lacks "
				    "name, dtype or shape", f->path, i);
			t[i].has_bytes_sha256 = m->schema == 1;
			if (read_span(el, f->size, m->schema == 1,
			    &t[i].bytes))
				return bad(err, mpath, "%s: tensor '%s': byte "
				    "range malformed or outside the file",
				    f->path, t[i].name);
			d = json_object_get(el, "content_sha256");
			t[i].has_content_sha256 = m->schema >= 2 && d;
			if (t[i].has_content_sha256 && !parse_digest(d,
			    t[i].content_sha256))
				return bad(err, mpath, "%s: tensor '%s': "
				    "malformed content_sha256", f->path,
				    t[i].name);
			sh = calloc(json_array_size(shape) + 1, sizeof(*sh));
			if (!sh)
				return ckpt_error_nomem(err);
			t[i].shape = sh;
			json_array_foreach(shape, k, d) {
				if (!json_is_integer(d) ||
				    json_integer_value(d) < 0)
					return bad(err, mpath, "%s: tensor "
					    "'%s': bad shape", f->path,
					    t[i].name);
				sh[k] = (uint64_t)json_integer_value(d);
			}
			t[i].ndim = (unsigned int)json_array_size(shape);
			f->ntensors++;
		}
	}
	return CKPT_OK;
}

/* Parses m->text (len bytes) read from mpath into m. */
static int
parse_body(struct ckpt_manifest *m, size_t len, const char *mpath,
    struct ckpt_error *err)
{
	json_error_t je;
	json_t *files, *v, *el;
	unsigned char d[CKPT_SHA256_BYTES];
	size_t i;
	int rc;

	if ((rc = ckpt_hash_buffer(CKPT_HASH_SHA256, m->text, len, d, err)))
		return rc;
	memcpy(m->digest, "sha256:", 7);
	ckpt_hex(d, sizeof(d), m->digest + 7);
	m->root = json_loadb(m->text, len, JSON_REJECT_DUPLICATES, &je);
	if (!m->root)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, mpath,
		    (int64_t)je.position, "not valid JSON: %s (line %d, "
		    "column %d)", je.text, je.line, je.column);
	if (!json_is_object(m->root))
		return bad(err, mpath, "not a JSON object");
	v = json_object_get(m->root, "schema");
	if (!json_is_integer(v))
		return bad(err, mpath, "no \"schema\" number");
	if (json_integer_value(v) < 1 || json_integer_value(v) >
	    CKPT_MANIFEST_SCHEMA)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, mpath, -1,
		    "manifest schema %lld is not supported (this ckpt reads "
		    "schemas 1 to %d)", (long long)json_integer_value(v),
		    CKPT_MANIFEST_SCHEMA);
	m->schema = (int)json_integer_value(v);
	v = json_object_get(m->root, "run");
	if (!json_is_string(v) || ckpt_name_check(json_string_value(v), NULL,
	    NULL))
		return bad(err, mpath, "missing or invalid \"run\"");
	v = json_object_get(m->root, "step");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad(err, mpath, "missing or negative \"step\"");
	m->step = json_integer_value(v);
	files = json_object_get(m->root, "files");
	if (!json_is_array(files))
		return bad(err, mpath, "no \"files\" array");
	m->files = calloc(json_array_size(files) + 1, sizeof(*m->files));
	if (!m->files)
		return ckpt_error_nomem(err);
	json_array_foreach(files, i, el) {
		if ((rc = read_file_entry(m, el, i, mpath, err))) {
			m->nfiles = i + 1;
			return rc;
		}
		m->nfiles = i + 1;
	}
	return CKPT_OK;
}

int
ckpt_manifest_parse(char *text, size_t len, const char *mpath,
    const char *dir, struct ckpt_manifest **out, struct ckpt_error *err)
{
	struct ckpt_manifest *m = calloc(1, sizeof(*m));
	int rc;

	if (!m) {
		free(text);
		return ckpt_error_nomem(err);
	}
	m->text = text;
	if (!(m->dir = strdup(dir))) {
		ckpt_manifest_free(m);
		return ckpt_error_nomem(err);
	}
	if ((rc = parse_body(m, len, mpath, err))) {
		ckpt_manifest_free(m);
		return rc;
	}
	*out = m;
	return CKPT_OK;
}

int
ckpt_manifest_read(const char *path, struct ckpt_manifest **out,
    struct ckpt_error *err)
{
	struct ckpt_manifest *m;
	struct stat st;
	char *mpath;
	size_t len;
	int rc;

	if (stat(path, &st))
		return errno == ENOENT ? ckpt_error_set(err,
		    CKPT_ERR_NOTFOUND, path, -1, "no such file or directory") :
		    ckpt_error_errno(err, path, "cannot stat");
	mpath = S_ISDIR(st.st_mode) ? ckpt_join(path, CKPT_MANIFEST_NAME) :
	    strdup(path);
	m = calloc(1, sizeof(*m));
	if (!mpath || !m) {
		free(mpath);
		free(m);
		return ckpt_error_nomem(err);
	}
	rc = ckpt_read_file(mpath, MANIFEST_MAX, &m->text, &len, err);
	if (rc == CKPT_ERR_NOTFOUND)
		ckpt_error_set(err, CKPT_ERR_NOTFOUND, mpath, -1, "no manifest "
		    "(not a committed checkpoint)");
	if (rc)
		goto fail;
	{
		char *dir = ckpt_dirname(mpath), *abs;

		abs = dir ? realpath(dir, NULL) : NULL;
		m->dir = abs ? abs : dir;
		if (abs)
			free(dir);
		if (!m->dir) {
			rc = ckpt_error_nomem(err);
			goto fail;
		}
	}
	if ((rc = parse_body(m, len, mpath, err)))
		goto fail;
	free(mpath);
	*out = m;
	return CKPT_OK;
fail:
	free(mpath);
	ckpt_manifest_free(m);
	return rc;
}

void
ckpt_manifest_free(struct ckpt_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfiles; i++) {
		struct ckpt_manifest_file *f = &m->files[i];

		free((void *)f->chunks);
		free((void *)f->ranges);
		for (size_t k = 0; f->tensors && k < f->ntensors + 1 &&
		    k < json_array_size(json_object_get(json_array_get(
		    json_object_get(m->root, "files"), i), "tensors")); k++)
			free((void *)f->tensors[k].shape);
		free((void *)f->tensors);
	}
	free(m->files);
	json_decref(m->root);
	free(m->text);
	free(m->dir);
	free(m);
}

const char *
ckpt_manifest_dir(const struct ckpt_manifest *m)
{
	return m->dir;
}

int
ckpt_manifest_schema(const struct ckpt_manifest *m)
{
	return m->schema;
}

const char *
ckpt_manifest_run(const struct ckpt_manifest *m)
{
	return json_string_value(json_object_get(m->root, "run"));
}

int64_t
ckpt_manifest_step(const struct ckpt_manifest *m)
{
	return m->step;
}

const char *
ckpt_manifest_digest(const struct ckpt_manifest *m)
{
	return m->digest;
}

const char *
ckpt_manifest_json(const struct ckpt_manifest *m)
{
	return m->text;
}

char *
ckpt_manifest_get_json(const struct ckpt_manifest *m, const char *key)
{
	json_t *v = json_object_get(m->root, key);

	return v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY) : NULL;
}

size_t
ckpt_manifest_file_count(const struct ckpt_manifest *m)
{
	return m->nfiles;
}

const struct ckpt_manifest_file *
ckpt_manifest_file(const struct ckpt_manifest *m, size_t i)
{
	return i < m->nfiles ? &m->files[i] : NULL;
}

const struct ckpt_manifest_file *
ckpt_manifest_find_file(const struct ckpt_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->nfiles;

	/* Paths are sorted byte-wise (checked when reading). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->files[mid].path, path);

		if (!c)
			return &m->files[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
