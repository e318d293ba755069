/* SPDX-License-Identifier: MIT */
/*
 * file.c - ckpt_file_open(): open, sniff the format by content (never by
 * extension), dispatch to one reader; the accessors of struct ckpt_file and
 * the builders the readers fill it with.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/file.h"
#include "format/pickle.h"

/*
 * The tensor table's names, storage keys, kinds, shapes and strides live
 * in blocks freed with the file: a torch state dict of 40,000 small
 * tensors made 200,000 mallocs of a few bytes each (16 bytes of overhead,
 * 32 at least, and as many frees at exit).
 */
#define TENSOR_BLOCK_SIZE ((size_t)64 << 10)

struct ckpt_file_block {
	struct ckpt_file_block *next;
	size_t used, size;
	max_align_t data[];
};

static void *
tensor_mem(struct ckpt_file *f, const void *src, size_t n)
{
	struct ckpt_file_block *b = f->blocks;
	size_t size = (n + 7) & ~(size_t)7;
	void *m;

	if (!b || b->size - b->used < size) {
		bool own = size > TENSOR_BLOCK_SIZE / 4;
		size_t cap = own ? size : TENSOR_BLOCK_SIZE;

		if (!(b = malloc(sizeof(*b) + cap)))
			return NULL;
		b->used = 0;
		b->size = cap;
		/* a large one behind the current block, which keeps
		 * serving small ones */
		if (own && f->blocks) {
			b->next = f->blocks->next;
			f->blocks->next = b;
		} else {
			b->next = f->blocks;
			f->blocks = b;
		}
	}
	m = (char *)b->data + b->used;
	b->used += size;
	return memcpy(m, src, n);
}

static const char *
tensor_str(struct ckpt_file *f, const char *s, bool *nomem)
{
	const char *d;

	if (!s)
		return NULL;
	if (!(d = tensor_mem(f, s, strlen(s) + 1)))
		*nomem = true;
	return d;
}

void
ckpt_file_clear_tensors(struct ckpt_file *f)
{
	while (f->blocks) {
		struct ckpt_file_block *b = f->blocks;

		f->blocks = b->next;
		free(b);
	}
	f->ntensors = 0;
}

int
ckpt_file_reserve_tensors(struct ckpt_file *f, size_t n,
    struct ckpt_error *err)
{
	struct ckpt_tensor *p;

	if (n <= f->tensors_cap - f->ntensors)
		return CKPT_OK;
	if (n > SIZE_MAX / sizeof(*p) - f->ntensors ||
	    !(p = reallocarray(f->tensors, f->ntensors + n, sizeof(*p))))
		return ckpt_error_nomem(err);
	f->tensors = p;
	f->tensors_cap = f->ntensors + n;
	return CKPT_OK;
}

int
ckpt_file_add_tensor(struct ckpt_file *f, const struct ckpt_tensor *t,
    struct ckpt_error *err)
{
	struct ckpt_tensor *n;
	bool nomem = false;
	int rc;

	if (f->ntensors == f->tensors_cap && (rc =
	    ckpt_file_reserve_tensors(f, f->tensors_cap ? f->tensors_cap :
	    16, err)))
		return rc;
	n = &f->tensors[f->ntensors];
	*n = *t;
	n->shape = NULL;
	n->strides = NULL;
	if (t->ndim) {
		n->shape = tensor_mem(f, t->shape, t->ndim * sizeof(*n->shape));
		if (t->strides)
			n->strides = tensor_mem(f, t->strides, t->ndim *
			    sizeof(*n->strides));
		nomem = !n->shape || (t->strides && !n->strides);
	}
	n->name = tensor_str(f, t->name, &nomem);
	n->storage = tensor_str(f, t->storage, &nomem);
	n->kind = tensor_str(f, t->kind, &nomem);
	if (nomem)
		return ckpt_error_nomem(err);
	f->ntensors++;
	return CKPT_OK;
}

int
ckpt_file_add_finding(struct ckpt_file *f, const char *id,
    enum ckpt_severity sev, const char *subject, int64_t offset,
    const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ckpt_findings_vappend(&f->findings, &f->nfindings, id, sev,
	    f->path, subject, offset, fmt, ap);
	va_end(ap);
	return rc;
}

int
ckpt_file_add_global(struct ckpt_file *f, const char *name, bool allowed)
{
	struct ckpt_global_ref *p;

	for (size_t i = 0; i < f->nglobals; i++)
		if (!strcmp(f->globals[i].name, name))
			return CKPT_OK;
	p = reallocarray(f->globals, f->nglobals + 1, sizeof(*p));
	if (!p)
		return CKPT_ERR_NOMEM;
	f->globals = p;
	p[f->nglobals].name = strdup(name);
	if (!p[f->nglobals].name)
		return CKPT_ERR_NOMEM;
	p[f->nglobals].allowed = allowed;
	f->nglobals++;
	return CKPT_OK;
}

void
ckpt_file_set_metadata(struct ckpt_file *f, char *json)
{
	free(f->metadata_json);
	f->metadata_json = json;
}

static bool
starts_with(const unsigned char *head, size_t n, const char *magic)
{
	size_t m = strlen(magic);

	return n >= m && !memcmp(head, magic, m);
}

static bool
looks_like_text(const unsigned char *head, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (head[i] < 0x09 || (head[i] > 0x0d && head[i] < 0x20))
			return false;
	return n > 0;
}

static bool
is_json_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Printable ASCII and the whitespace controls only. */
static bool
printable(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x09 || p[i] > 0x0d) &&
		    (p[i] < 0x20 || p[i] > 0x7e))
			return false;
	return true;
}

/*
 * The names weights are saved under.  Used only to word a diagnosis (a
 * text or JSON body where weights should be), never to pick a reader.
 */
static bool
is_weights_name(const char *path)
{
	static const char *const exts[] = { ".safetensors", ".bin", ".pt",
		".pth", ".ckpt", ".distcp", ".gguf", ".npy", ".npz" };
	size_t pl = strlen(path);

	for (size_t k = 0; k < CKPT_ARRAY_SIZE(exts); k++) {
		size_t el = strlen(exts[k]);

		if (pl > el && !strcmp(path + pl - el, exts[k]))
			return true;
	}
	return false;
}

/* The diagnoses of a binary file that is simply of no format ckpt reads
 * (a tokenizer model, a data file), as opposed to a broken stand-in. */
#define OPAQUE_SHORT	"too short for any checkpoint format"
#define OPAQUE_BINARY	"no known format starts with these bytes"

/*
 * An opaque binary under a name weights are not saved under cannot be
 * checked for structure, but nothing says it is broken: its digest in
 * the manifest is its check.  That is an info finding; a file named like
 * weights that is not (an LFS pointer, an error page) is a warning.
 */
static enum ckpt_severity
unrecognised_severity(const char *path, const char *reason)
{
	bool opaque = !strncmp(reason, OPAQUE_SHORT, strlen(OPAQUE_SHORT)) ||
	    !strcmp(reason, OPAQUE_BINARY);

	return opaque && !is_weights_name(path) ? CKPT_SEV_INFO :
	    CKPT_SEV_WARNING;
}

/* {"error": ...} or {"message": ...}, as hubs and proxies answer. */
static bool
json_error_body(const unsigned char *p, size_t n)
{
	static const char *const keys[] = { "\"error", "\"message",
		"\"detail", "\"errors" };
	size_t i = 1;

	if (n < 2 || p[0] != '{')
		return false;
	while (i < n && is_json_space(p[i]))
		i++;
	for (size_t k = 0; k < CKPT_ARRAY_SIZE(keys); k++) {
		size_t kl = strlen(keys[k]);

		if (n - i >= kl && !memcmp(p + i, keys[k], kl))
			return true;
	}
	return false;
}

enum ckpt_format
ckpt_sniff(const unsigned char *head, size_t n, uint64_t size,
    const char *path, char *reason, size_t len)
{
	uint64_t hlen = 0;
	size_t i;

	reason[0] = '\0';
	if (starts_with(head, n, "PK\003\004"))
		return CKPT_FORMAT_TORCH_ZIP;	/* refined by the zip reader */
	if (starts_with(head, n, "PYTORCH1")) {
		snprintf(reason, len, "a PyTorch preview-release archive, "
		    "which torch itself refuses");
		return CKPT_FORMAT_UNKNOWN;
	}
	if (starts_with(head, n, "GGUF"))
		return CKPT_FORMAT_GGUF;
	if (starts_with(head, n, "\x93NUMPY"))
		return CKPT_FORMAT_NPY;
	if (n > 262 && !memcmp(head + 257, "ustar", 5))
		return CKPT_FORMAT_TORCH_TAR;
	if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) {
		/* torch's legacy magic number pickled as LONG1 */
		if (n >= 15 && !memcmp(head + 2,
		    "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12))
			return CKPT_FORMAT_TORCH_LEGACY;
		/* DCP .metadata: a pickle of torch.distributed.checkpoint
		 * dataclasses (the reader then admits exactly those) */
		if (memmem(head, n, "torch.distributed.checkpoint.metadata",
		    37) || memmem(head, n,
		    "torch.distributed._shard.checkpoint.metadata", 44))
			return CKPT_FORMAT_DCP_METADATA;
		return CKPT_FORMAT_PICKLE;
	}
	if (starts_with(head, n, "version https://git-lfs")) {
		snprintf(reason, len, "a Git LFS pointer, not the file it "
		    "points to (run 'git lfs pull')");
		return CKPT_FORMAT_UNKNOWN;
	}
	/*
	 * safetensors has no magic: a little-endian length, then the JSON
	 * header.  A length that does not fit the file still makes it a
	 * (broken) safetensors file when the length bytes are binary, so
	 * that the reader can say what is wrong, if the header starts with
	 * '{' as every writer's does, or, for whitespace there, if the name
	 * is one weights are saved under: whitespace is common in binary
	 * files of other kinds (a tokenizer model).  Eight printable bytes
	 * before a '{' are text.
	 */
	if (n >= 9 && (head[8] == '{' || is_json_space(head[8]))) {
		for (i = 0; i < 8; i++)
			hlen |= (uint64_t)head[i] << (8 * i);
		if ((size >= 8 && hlen <= size - 8) || (!printable(head, 8) &&
		    (head[8] == '{' || is_weights_name(path))))
			return CKPT_FORMAT_SAFETENSORS;
	}
	for (i = 0; i < n && is_json_space(head[i]); i++)
		;
	if (i < n && head[i] == '<') {
		snprintf(reason, len, "an HTML or XML document, perhaps an "
		    "error page saved in place of the file");
		return CKPT_FORMAT_UNKNOWN;
	}
	if (i < n && (head[i] == '{' || head[i] == '[')) {
		size_t pl = strlen(path);

		/* A JSON error body from a hub or proxy saved as weights. */
		if (is_weights_name(path) && json_error_body(head + i, n - i)) {
			snprintf(reason, len, "a JSON error message, perhaps "
			    "a failed download saved in place of the file");
			return CKPT_FORMAT_UNKNOWN;
		}
		if (pl > 11 && !strcmp(path + pl - 11, ".index.json"))
			return CKPT_FORMAT_HF_INDEX;
		return CKPT_FORMAT_JSON;
	}
	if (!size) {
		snprintf(reason, len, "an empty file");
		return CKPT_FORMAT_UNKNOWN;
	}
	if (looks_like_text(head, n))
		return CKPT_FORMAT_TEXT;
	if (size < 9)
		snprintf(reason, len, OPAQUE_SHORT " (%llu bytes)",
		    (unsigned long long)size);
	else
		snprintf(reason, len, OPAQUE_BINARY);
	return CKPT_FORMAT_UNKNOWN;
}

/*
 * A zip ends with its end-of-central-directory record, within the last
 * 65,557 bytes (22 + the longest comment).  Without one the archive was
 * cut short, which is worth saying before any zip parsing.
 */
static bool
has_zip_end(const struct ckpt_file *f)
{
	size_t len = f->size < 65557 ? (size_t)f->size : 65557;
	unsigned char *tail = malloc(len ? len : 1);
	bool found = false;

	if (!tail)
		return true;	/* let the zip reader decide */
	if (len >= 22 && !ckpt_file_pread(f, tail, len, f->size - len,
	    NULL)) {
		for (size_t i = len - 22 + 1; i-- > 0;)
			if (!memcmp(tail + i, "PK\005\006", 4)) {
				found = true;
				break;
			}
	}
	free(tail);
	return found;
}

static int
dispatch(struct ckpt_file *f, const char *reason, struct ckpt_error *err)
{
	switch (f->format) {
	case CKPT_FORMAT_SAFETENSORS:
		return ckpt_safetensors_read(f, err);
	case CKPT_FORMAT_TORCH_ZIP:
		return ckpt_torchzip_read(f, err);
	case CKPT_FORMAT_TORCH_LEGACY:
		return ckpt_torch_legacy_read(f, err);
	case CKPT_FORMAT_PICKLE:
		return ckpt_pickle_file_read(f, err);
	case CKPT_FORMAT_DCP_METADATA:
		return ckpt_dcp_metadata_read(f, err);
	case CKPT_FORMAT_TORCH_TAR:
		/* CVE-2025-32434 was this path: detected, named, never read */
		return ckpt_file_add_finding(f, "torch-tar", CKPT_SEV_WARNING,
		    NULL, 257, "a legacy tar torch checkpoint (torch 0.1.x); "
		    "not read, and never safe to load");
	case CKPT_FORMAT_HF_INDEX:
		return ckpt_hfindex_read(f, err);
	case CKPT_FORMAT_JSON:
		return ckpt_json_file_read(f, err);
	case CKPT_FORMAT_UNKNOWN:
		return ckpt_file_add_finding(f, "unrecognised-format",
		    unrecognised_severity(f->path, reason), NULL, 0,
		    "unrecognised format: %s", reason);
	default:
		return CKPT_OK;
	}
}

int
ckpt_allow_global_check(const char *pattern, struct ckpt_error *err)
{
	size_t n = strlen(pattern), dots = 0;
	bool star = n > 2 && !strcmp(pattern + n - 2, ".*");
	char probe[600];

	for (size_t i = 0; i < (star ? n - 2 : n); i++) {
		char c = pattern[i];
		bool first = !i || pattern[i - 1] == '.';

		if (c == '.' && !first && i + 1 < n) {
			dots++;
			continue;
		}
		if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' &&
		    c <= 'Z') || (!first && c >= '0' && c <= '9'))
			continue;
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s' is not module.name or module.*", pattern);
	}
	if (!n || n > 512 || (!star && !dots))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s' is not module.name or module.*", pattern);
	/* __builtins__, __globals__, __import__: ways out, never names
	 * (a module may be __main__, where a script's classes live) */
	if (!strncmp(strrchr(pattern, '.') + 1, "__", 2))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s' names a dunder attribute; it cannot be allowed",
		    pattern);
	/* module.* may not open a denylisted module (a name of it stands
	 * for them all); builtins has its harmless names on the default
	 * list already. */
	snprintf(probe, sizeof(probe), "%.*s.system", star ? (int)(n - 2) :
	    (int)n, pattern);
	if (!strcmp(pattern, "builtins.getattr"))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "builtins.getattr cannot be allowed; an enum member "
		    "pickled as getattr(Class, \"NAME\") passes once Class "
		    "is allowed");
	if ((star && (ckpt_pickle_denylisted(probe) ||
	    !strncmp(pattern, "builtins.", 9) ||
	    !strncmp(pattern, "__builtin__.", 12))) ||
	    (!star && ckpt_pickle_denylisted(pattern)))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s' names code-execution callables; it cannot be "
		    "allowed", pattern);
	return CKPT_OK;
}

int
ckpt_file_open(const char *path, unsigned int flags, struct ckpt_file **out,
    struct ckpt_error *err)
{
	struct ckpt_open_options o = {
	    .version = CKPT_OPEN_OPTIONS_VERSION, .flags = flags };

	return ckpt_file_open_ex(path, &o, out, err);
}

/* Sniffs the open handle f (path, fd or src, size set) and reads it. */
static int
sniff_and_read(struct ckpt_file *f, const struct ckpt_open_options *o,
    struct ckpt_error *err)
{
	unsigned char head[512];
	size_t n = f->size < sizeof(head) ? (size_t)f->size : sizeof(head);
	char reason[256];
	int rc;

	if ((rc = ckpt_file_pread(f, head, n, 0, err)))
		return rc;
	f->format = ckpt_sniff(head, n, f->size, f->path, reason,
	    sizeof(reason));
	if (f->format == CKPT_FORMAT_TORCH_ZIP && !has_zip_end(f)) {
		f->format = CKPT_FORMAT_UNKNOWN;
		snprintf(reason, sizeof(reason), "a truncated zip archive: "
		    "no end-of-central-directory record (an interrupted "
		    "download or copy?)");
	}
	if (o) {
		f->allow_globals = o->allow_globals;
		f->nallow_globals = o->nallow_globals;
	}
	rc = dispatch(f, reason, err);
	/* The caller's strings are borrowed for the open only. */
	f->allow_globals = NULL;
	f->nallow_globals = 0;
	return rc;
}

/*
 * A handle on the local regular file at path, size known, nothing read
 * yet; o's version is checked here for every opener.
 */
static int
file_open_local(const char *path, const struct ckpt_open_options *o,
    struct ckpt_file **out, struct ckpt_error *err)
{
	struct ckpt_file *f;
	struct stat st;
	int rc;

	if (o && (rc = ckpt_options_check(o->version,
	    CKPT_OPEN_OPTIONS_VERSION, "ckpt_open_options", err)))
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f)
		return ckpt_error_nomem(err);
	f->flags = o ? o->flags : 0;
	f->fd = -1;
	f->path = strdup(path);
	if (!f->path) {
		free(f);
		return ckpt_error_nomem(err);
	}
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st)) {
		rc = ckpt_error_errno(err, path, "cannot open");
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, path, -1,
		    "not a regular file");
		goto fail;
	}
	f->size = (uint64_t)st.st_size;
	*out = f;
	return CKPT_OK;
fail:
	ckpt_file_free(f);
	return rc;
}

int
ckpt_file_open_ex(const char *path, const struct ckpt_open_options *o,
    struct ckpt_file **out, struct ckpt_error *err)
{
	struct ckpt_file *f;
	int rc;

	if ((rc = file_open_local(path, o, &f, err)))
		return rc;
	if ((rc = sniff_and_read(f, o, err))) {
		ckpt_file_free(f);
		return rc;
	}
	*out = f;
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Reading through a byte source, with a block cache                   */
/* ------------------------------------------------------------------ */

#define CACHE_BLOCKS 4
#define READAHEAD_DEFAULT ((size_t)1 << 20)
#define READAHEAD_MAX ((size_t)16 << 20)
/* Bytes held by the caches of every open source file together: a diff or
 * a conversion of a checkpoint of many shards holds all of them open. */
#define CACHE_BUDGET ((uint64_t)256 << 20)

/*
 * A block of bytes [off, off + len).  A block whose buf is NULL but len
 * is not is a stream marker: its bytes were read to the end and dropped,
 * and a miss at off + len continues that stream.
 */
struct cache_block {
	unsigned char *buf;
	uint64_t off;
	size_t len;
	uint64_t used;			/* LRU tick */
};

struct ckpt_file_cache {
	pthread_mutex_t lock;
	struct cache_block b[CACHE_BLOCKS];
	uint64_t tick;
};

static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t budget_used;

/* Reserves n bytes of the budget (force: even beyond it). */
static bool
budget_take(size_t n, bool force)
{
	bool ok;

	pthread_mutex_lock(&budget_lock);
	ok = force || budget_used + n <= CACHE_BUDGET;
	if (ok)
		budget_used += n;
	pthread_mutex_unlock(&budget_lock);
	return ok;
}

static void
budget_give(size_t n)
{
	pthread_mutex_lock(&budget_lock);
	budget_used -= n;
	pthread_mutex_unlock(&budget_lock);
}

static void
block_drop(struct cache_block *b)
{
	if (b->buf)
		budget_give(b->len);
	free(b->buf);
	b->buf = NULL;
}

static void
cache_free(struct ckpt_file_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_BLOCKS; i++)
		block_drop(&c->b[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct cache_block *
cache_lookup(struct ckpt_file_cache *c, uint64_t off, size_t len)
{
	for (size_t i = 0; i < CACHE_BLOCKS; i++) {
		struct cache_block *b = &c->b[i];

		if (b->buf && off >= b->off && off - b->off <= b->len &&
		    len <= b->len - (off - b->off))
			return b;
	}
	return NULL;
}

/* The block (cached or a marker) whose bytes end where off starts. */
static struct cache_block *
cache_stream(struct ckpt_file_cache *c, uint64_t off)
{
	for (size_t i = 0; i < CACHE_BLOCKS; i++)
		if (c->b[i].len && c->b[i].off + c->b[i].len == off)
			return &c->b[i];
	return NULL;
}

/* Where a fetch at off goes: its stream's block, else an empty slot or
 * a marker, else the least recently used block. */
static struct cache_block *
cache_victim(struct ckpt_file_cache *c, uint64_t off)
{
	struct cache_block *v = cache_stream(c, off);

	if (v)
		return v;
	v = &c->b[0];
	for (size_t i = 0; i < CACHE_BLOCKS; i++) {
		struct cache_block *b = &c->b[i];

		if (!!b->buf != !!v->buf ? !b->buf : b->used < v->used)
			v = b;
	}
	return v;
}

/* A forward pass that read a large block to its end will not come back:
 * its bytes go, its end stays as the stream's marker. */
static void
cache_consumed(struct cache_block *b, uint64_t end, size_t base)
{
	if (b->len > base && b->off + b->len == end)
		block_drop(b);
}

/*
 * A miss fetches at least the read-ahead from off; the read-ahead doubles
 * while a miss follows on from where a block ended (a sequential pass;
 * several passes of several threads are followed apart) and is the
 * source's base after a jump (header parsing).  The fetch runs without
 * the lock, so threads reading one file fetch in parallel; when the
 * budget of every cache is spent, a read goes to the source as it is.
 */
static int
source_read(const struct ckpt_file *f, void *buf, size_t len,
    uint64_t offset, struct ckpt_error *err)
{
	struct ckpt_file_cache *c = f->cache;
	size_t base = f->src->readahead ? f->src->readahead :
	    READAHEAD_DEFAULT, ra;
	struct cache_block *b;
	unsigned char *nb = NULL;
	uint64_t want;
	int rc;

	if (!len)
		return CKPT_OK;
	pthread_mutex_lock(&c->lock);
	if ((b = cache_lookup(c, offset, len))) {
		memcpy(buf, b->buf + (offset - b->off), len);
		b->used = ++c->tick;
		cache_consumed(b, offset + len, base);
		pthread_mutex_unlock(&c->lock);
		return CKPT_OK;
	}
	b = cache_stream(c, offset);
	ra = b && b->len >= base ? (b->len < READAHEAD_MAX / 2 ? 2 * b->len :
	    READAHEAD_MAX) : base;
	pthread_mutex_unlock(&c->lock);
	want = f->size - offset < ra ? f->size - offset : ra;
	/* A large read goes straight to the caller's buffer. */
	if (len >= ra || !budget_take((size_t)want, false)) {
		if ((rc = f->src->pread(f->src->arg, buf, len, offset, err)))
			return rc;
		/* Its end is where a sequential pass goes on. */
		pthread_mutex_lock(&c->lock);
		b = cache_victim(c, offset);
		if (b == cache_stream(c, offset) || !b->buf) {
			block_drop(b);
			b->off = offset;
			b->len = len;
			b->used = ++c->tick;
		}
		pthread_mutex_unlock(&c->lock);
		return CKPT_OK;
	}
	if (!(nb = malloc((size_t)want))) {
		budget_give((size_t)want);
		return ckpt_error_nomem(err);
	}
	if ((rc = f->src->pread(f->src->arg, nb, (size_t)want, offset, err))) {
		budget_give((size_t)want);
		free(nb);
		return rc;
	}
	memcpy(buf, nb, len);
	pthread_mutex_lock(&c->lock);
	b = cache_victim(c, offset);
	block_drop(b);
	b->buf = nb;
	b->off = offset;
	b->len = (size_t)want;
	b->used = ++c->tick;
	cache_consumed(b, offset + len, base);
	pthread_mutex_unlock(&c->lock);
	return CKPT_OK;
}

int
ckpt_file_open_source(const char *name, struct ckpt_source *src,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err)
{
	struct ckpt_file *f;
	int rc;

	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(name)) ||
	    !(f->cache = calloc(1, sizeof(*f->cache))) ||
	    !(f->src = malloc(sizeof(*f->src)))) {
		if (src->close)
			src->close(src->arg);
		free(src->head);
		src->head = NULL;
		if (f) {
			free(f->path);
			free(f->cache);
		}
		free(f);
		return ckpt_error_nomem(err);
	}
	pthread_mutex_init(&f->cache->lock, NULL);
	f->fd = -1;
	f->flags = o ? o->flags : 0;
	*f->src = *src;
	f->size = src->size;
	/* What the source fetched to learn the size is the first block. */
	if (src->head) {
		f->cache->b[0].buf = src->head;
		f->cache->b[0].len = src->head_len;
		f->cache->b[0].used = ++f->cache->tick;
		(void)budget_take(src->head_len, true);
		f->src->head = NULL;
		src->head = NULL;
	}
	if ((rc = sniff_and_read(f, o, err))) {
		ckpt_file_free(f);
		return rc;
	}
	*out = f;
	return CKPT_OK;
}

bool
ckpt_file_scanned_archive(const struct ckpt_file *f, uint64_t base,
    uint64_t len)
{
	for (size_t i = 0; i < f->narchives; i++)
		if (f->archives[2 * i] == base &&
		    f->archives[2 * i + 1] - base == len)
			return true;
	return false;
}

void
ckpt_file_free(struct ckpt_file *f)
{
	if (!f)
		return;
	if (f->priv_free)
		f->priv_free(f->priv);
	while (f->blocks) {
		struct ckpt_file_block *b = f->blocks;

		f->blocks = b->next;
		free(b);
	}
	free(f->tensors);
	ckpt_findings_free(f->findings, f->nfindings);
	for (size_t i = 0; i < f->nglobals; i++)
		free(f->globals[i].name);
	free(f->globals);
	free(f->metadata_json);
	free(f->archives);
	if (f->fd >= 0)
		close(f->fd);
	cache_free(f->cache);
	if (f->src && f->src->close)
		f->src->close(f->src->arg);
	free(f->src);
	free(f->path);
	free(f);
}

const char *
ckpt_file_path(const struct ckpt_file *f)
{
	return f->path;
}

enum ckpt_format
ckpt_file_format(const struct ckpt_file *f)
{
	return f->format;
}

uint64_t
ckpt_file_size(const struct ckpt_file *f)
{
	return f->size;
}

size_t
ckpt_file_tensor_count(const struct ckpt_file *f)
{
	return f->ntensors;
}

const struct ckpt_tensor *
ckpt_file_tensor(const struct ckpt_file *f, size_t i)
{
	return i < f->ntensors ? &f->tensors[i] : NULL;
}

const char *
ckpt_file_metadata_json(const struct ckpt_file *f)
{
	return f->metadata_json;
}

size_t
ckpt_file_global_count(const struct ckpt_file *f)
{
	return f->nglobals;
}

const char *
ckpt_file_global(const struct ckpt_file *f, size_t i, bool *allowed)
{
	if (i >= f->nglobals)
		return NULL;
	if (allowed)
		*allowed = f->globals[i].allowed;
	return f->globals[i].name;
}

size_t
ckpt_file_finding_count(const struct ckpt_file *f)
{
	return f->nfindings;
}

const struct ckpt_finding *
ckpt_file_finding(const struct ckpt_file *f, size_t i)
{
	return i < f->nfindings ? &f->findings[i] : NULL;
}

int
ckpt_file_pread(const struct ckpt_file *f, void *buf, size_t len,
    uint64_t offset, struct ckpt_error *err)
{
	size_t done = 0;

	if (offset > f->size || len > f->size - offset)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)offset, "read of %zu bytes beyond end of file",
		    len);
	if (f->src)
		return source_read(f, buf, len, offset, err);
	while (done < len) {
		ssize_t n = pread(f->fd, (char *)buf + done, len - done,
		    (off_t)(offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ckpt_error_errno(err, f->path, "cannot read");
		if (n == 0)
			return ckpt_error_set(err, CKPT_ERR_IO, f->path,
			    (int64_t)(offset + done), "file shrank while "
			    "being read");
		done += (size_t)n;
	}
	return CKPT_OK;
}

int
ckpt_file_open_slice(const char *path, uint64_t base, uint64_t len,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err)
{
	struct ckpt_file *f;
	int rc;

	if ((rc = file_open_local(path, o, &f, err)))
		return rc;
	f->format = CKPT_FORMAT_TORCH_ZIP;
	if (o) {
		f->allow_globals = o->allow_globals;
		f->nallow_globals = o->nallow_globals;
	}
	rc = ckpt_torchzip_read_slice(f, base, len, err);
	f->allow_globals = NULL;
	f->nallow_globals = 0;
	if (rc)
		goto fail;
	*out = f;
	return CKPT_OK;
fail:
	ckpt_file_free(f);
	return rc;
}
