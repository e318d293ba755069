/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c - ckpt_checkpoint_open(): a file, or a directory read as one
 * checkpoint.  A directory is every regular file under it, recursively,
 * sorted by relative path in byte order; symbolic links are not followed
 * (a finding says which were skipped), so that a checkpoint never reaches
 * outside its directory.  Each file is opened with ckpt_file_open(); one
 * that cannot be read keeps its error and the others are still read.
 *
 * The kind names what the directory is ("hf-checkpoint", "hf-sharded",
 * "dcp", ...) and decides which whole-checkpoint checks run: an index's
 * weight_map against its shards (here) and DCP chunk coverage (dcpcheck.c).
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "checkpoint/checkpoint.h"
#include "format/file.h"

/* Directory nesting we follow; deeper trees are refused, not truncated. */
#define CP_MAX_DEPTH 64
/* Files in one checkpoint. */
#define CP_MAX_FILES 1000000

int
ckpt_checkpoint_add_finding(struct ckpt_checkpoint *c, const char *id,
    enum ckpt_severity sev, const char *path, const char *subject,
    int64_t offset, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ckpt_findings_vappend(&c->findings, &c->nfindings, id, sev, path,
	    subject, offset, fmt, ap);
	va_end(ap);
	return rc;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct ckpt_cp_file *)a)->name,
	    ((const struct ckpt_cp_file *)b)->name);
}

ssize_t
ckpt_checkpoint_find(const struct ckpt_checkpoint *c, const char *name)
{
	size_t lo = 0, hi = c->nfiles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->files[mid].name);

		if (!r)
			return (ssize_t)mid;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static int
add_file(struct ckpt_checkpoint *c, const char *name, const char *path,
    size_t *cap, struct ckpt_error *err)
{
	struct ckpt_cp_file *cf;

	if (c->nfiles == CP_MAX_FILES)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, c->path, -1,
		    "more than %d files", CP_MAX_FILES);
	if (c->nfiles == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct ckpt_cp_file *p = reallocarray(c->files, ncap,
		    sizeof(*p));

		if (!p)
			return ckpt_error_nomem(err);
		c->files = p;
		*cap = ncap;
	}
	cf = &c->files[c->nfiles];
	memset(cf, 0, sizeof(*cf));
	cf->name = strdup(name);
	cf->path = strdup(path);
	if (!cf->name || !cf->path) {
		free(cf->name);
		free(cf->path);
		return ckpt_error_nomem(err);
	}
	ckpt_error_clear(&cf->err);
	c->nfiles++;
	return CKPT_OK;
}

static char *
join(const char *a, const char *b)
{
	char *s;

	if (!*a)
		return strdup(b);
	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

static int
walk(struct ckpt_checkpoint *c, const char *rel, int depth, size_t *cap,
    struct ckpt_error *err)
{
	char *dirpath = join(c->path, rel);
	struct dirent *de;
	DIR *d;
	int rc = CKPT_OK;

	if (!dirpath)
		return ckpt_error_nomem(err);
	if (depth > CP_MAX_DEPTH) {
		rc = ckpt_error_set(err, CKPT_ERR_LIMIT, dirpath, -1,
		    "directories nested deeper than %d levels", CP_MAX_DEPTH);
		free(dirpath);
		return rc;
	}
	d = opendir(dirpath);
	if (!d) {
		rc = ckpt_error_errno(err, dirpath, "cannot open directory");
		free(dirpath);
		return rc;
	}
	while (!rc && (errno = 0, de = readdir(d))) {
		char *name, *path;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		name = join(rel, de->d_name);
		path = name ? join(c->path, name) : NULL;
		if (!path) {
			free(name);
			rc = ckpt_error_nomem(err);
			break;
		}
		if (lstat(path, &st)) {
			rc = ckpt_error_errno(err, path, "cannot stat");
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(c, name, depth + 1, cap, err);
		} else if (S_ISREG(st.st_mode)) {
			rc = add_file(c, name, path, cap, err);
		} else {
			rc = ckpt_checkpoint_add_finding(c,
			    S_ISLNK(st.st_mode) ? "symlink-not-followed" :
			    "special-file-skipped", CKPT_SEV_WARNING, path,
			    name, -1, "%s '%s' is not "
			    "part of the checkpoint", S_ISLNK(st.st_mode) ?
			    "symbolic link" : "special file", name);
			if (rc)
				rc = ckpt_error_nomem(err);
		}
		free(name);
		free(path);
	}
	if (!rc && errno)
		rc = ckpt_error_errno(err, dirpath, "cannot read directory");
	closedir(d);
	free(dirpath);
	return rc;
}

static const char *
base_name(const char *name)
{
	const char *s = strrchr(name, '/');

	return s ? s + 1 : name;
}

static bool
has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static bool
has_suffix(const char *s, const char *x)
{
	size_t n = strlen(s), m = strlen(x);

	return n >= m && !strcmp(s + n - m, x);
}

static bool
is_dcp_metadata_name(const char *b)
{
	/* ".metadata", or "__<rank>.metadata" without collectives */
	return !strcmp(b, ".metadata") || (has_prefix(b, "__") &&
	    has_suffix(b, ".metadata"));
}

static enum ckpt_format
file_format(const struct ckpt_cp_file *cf)
{
	return cf->file ? ckpt_file_format(cf->file) : CKPT_FORMAT_UNKNOWN;
}

/* What a directory holds, from its file names and formats. */
static const char *
detect_kind(const struct ckpt_checkpoint *c)
{
	bool index = false, trainer = false, hfmodel = false, dcp = false;
	enum ckpt_format common = CKPT_FORMAT_COUNT;
	size_t nweights = 0;

	for (size_t i = 0; i < c->nfiles; i++) {
		const struct ckpt_cp_file *cf = &c->files[i];
		const char *b = base_name(cf->name);
		enum ckpt_format fmt = file_format(cf);

		if (fmt == CKPT_FORMAT_HF_INDEX)
			index = true;
		if (fmt == CKPT_FORMAT_DCP_METADATA ||
		    is_dcp_metadata_name(b))
			dcp = true;
		if (!strcmp(b, "trainer_state.json") ||
		    !strcmp(b, "optimizer.pt") ||
		    !strcmp(b, "scheduler.pt") ||
		    !strcmp(b, "training_args.bin") ||
		    (has_prefix(b, "rng_state") && has_suffix(b, ".pth")))
			trainer = true;
		if (!strcmp(b, "config.json") ||
		    (has_prefix(b, "model") && has_suffix(b, ".safetensors")) ||
		    (has_prefix(b, "pytorch_model") && has_suffix(b, ".bin")))
			hfmodel = true;
		if (fmt == CKPT_FORMAT_SAFETENSORS ||
		    fmt == CKPT_FORMAT_TORCH_ZIP ||
		    fmt == CKPT_FORMAT_TORCH_LEGACY) {
			nweights++;
			common = common == CKPT_FORMAT_COUNT || common == fmt ?
			    fmt : CKPT_FORMAT_UNKNOWN;
		}
	}
	if (dcp)
		return "dcp";
	if (trainer)
		return "hf-checkpoint";
	if (index)
		return "hf-sharded";
	if (hfmodel)
		return "hf-checkpoint";
	if (nweights && common != CKPT_FORMAT_UNKNOWN)
		return ckpt_format_name(common);
	return "directory";
}

static int
open_files(struct ckpt_checkpoint *c)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		struct ckpt_cp_file *cf = &c->files[i];

		if ((c->opener ? c->opener(c->opener_arg, cf->path, &c->open,
		    &cf->file, &cf->err) : ckpt_file_open_ex(cf->path,
		    &c->open, &cf->file, &cf->err))) {
			cf->file = NULL;
			if (cf->err.code == CKPT_ERR_NOMEM)
				return CKPT_ERR_NOMEM;
		}
	}
	return CKPT_OK;
}

bool
ckpt_checkpoint_whole_check_file(const char *name, enum ckpt_format fmt,
    const char *metadata_json)
{
	return fmt == CKPT_FORMAT_HF_INDEX || fmt == CKPT_FORMAT_DCP_METADATA ||
	    (is_dcp_metadata_name(base_name(name)) && metadata_json);
}

static int
run_checks(struct ckpt_checkpoint *c, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (size_t i = 0; i < c->nfiles && !rc; i++) {
		const struct ckpt_cp_file *cf = &c->files[i];
		enum ckpt_format fmt = file_format(cf);

		if (!cf->file || !ckpt_checkpoint_whole_check_file(cf->name,
		    fmt, ckpt_file_metadata_json(cf->file)))
			continue;
		rc = fmt == CKPT_FORMAT_HF_INDEX ? ckpt_check_hf_index(c, i,
		    err) : ckpt_check_dcp(c, i, err);
	}
	return rc;
}

/* Opens the listed files and runs the whole-checkpoint checks. */
static int
finish_open(struct ckpt_checkpoint *c, struct ckpt_error *err)
{
	int rc;

	rc = open_files(c);
	/* The opener and the caller's lists are the open's only. */
	c->opener = NULL;
	c->opener_arg = NULL;
	if (rc)
		return ckpt_error_nomem(err);
	if (c->is_dir) {
		c->kind = detect_kind(c);
		return run_checks(c, err);
	}
	c->kind = c->nfiles && c->files[0].file ?
	    ckpt_format_name(file_format(&c->files[0])) : "unknown";
	return CKPT_OK;
}

int
ckpt_checkpoint_open(const char *path, unsigned int flags,
    struct ckpt_checkpoint **out, struct ckpt_error *err)
{
	struct ckpt_open_options o = {
	    .version = CKPT_OPEN_OPTIONS_VERSION, .flags = flags };

	return ckpt_checkpoint_open_ex(path, &o, out, err);
}

int
ckpt_checkpoint_open_ex(const char *path, const struct ckpt_open_options *o,
    struct ckpt_checkpoint **out, struct ckpt_error *err)
{
	struct ckpt_checkpoint *c;
	struct stat st;
	size_t cap = 0;
	int rc;

	if (o && (rc = ckpt_options_check(o->version,
	    CKPT_OPEN_OPTIONS_VERSION, "ckpt_open_options", err)))
		return rc;
	if (!path || !*path)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "empty checkpoint path");
	/* The root itself may be a symbolic link: the user named it. */
	if (stat(path, &st))
		return ckpt_error_errno(err, path, "cannot open");
	c = calloc(1, sizeof(*c));
	if (!c)
		return ckpt_error_nomem(err);
	if (o)
		c->open = *o;
	c->path = strdup(path);
	if (!c->path) {
		free(c);
		return ckpt_error_nomem(err);
	}
	/* "dir/" and "dir" are the same checkpoint. */
	for (size_t n = strlen(c->path); n > 1 && c->path[n - 1] == '/'; n--)
		c->path[n - 1] = '\0';
	if (S_ISDIR(st.st_mode)) {
		c->is_dir = true;
		if ((rc = walk(c, "", 0, &cap, err)))
			goto fail;
		if (c->nfiles)
			qsort(c->files, c->nfiles, sizeof(*c->files),
			    cmp_name);
	} else if (S_ISREG(st.st_mode)) {
		if ((rc = add_file(c, base_name(c->path), c->path, &cap, err)))
			goto fail;
	} else {
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, path, -1,
		    "not a regular file or directory");
		goto fail;
	}
	if ((rc = finish_open(c, err)))
		goto fail;
	*out = c;
	return CKPT_OK;
fail:
	ckpt_checkpoint_free(c);
	return rc;
}

int
ckpt_checkpoint_open_with(const char *path, bool is_dir,
    const char *const *names, const char *const *paths, size_t n,
    ckpt_cp_open_fn opener, void *arg, const struct ckpt_open_options *o,
    struct ckpt_checkpoint **out, struct ckpt_error *err)
{
	struct ckpt_checkpoint *c = calloc(1, sizeof(*c));
	size_t cap = 0;
	int rc = CKPT_OK;

	if (!c || !(c->path = strdup(path))) {
		free(c);
		return ckpt_error_nomem(err);
	}
	if (o)
		c->open = *o;
	c->is_dir = is_dir;
	c->opener = opener;
	c->opener_arg = arg;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_file(c, names[i], paths[i], &cap, err);
	if (rc)
		goto fail;
	if (c->nfiles)
		qsort(c->files, c->nfiles, sizeof(*c->files), cmp_name);
	if ((rc = finish_open(c, err)))
		goto fail;
	*out = c;
	return CKPT_OK;
fail:
	ckpt_checkpoint_free(c);
	return rc;
}

void
ckpt_checkpoint_free(struct ckpt_checkpoint *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++) {
		ckpt_file_free(c->files[i].file);
		free(c->files[i].name);
		free(c->files[i].path);
	}
	free(c->files);
	ckpt_findings_free(c->findings, c->nfindings);
	free(c->path);
	free(c);
}

const char *
ckpt_checkpoint_path(const struct ckpt_checkpoint *c)
{
	return c->path;
}

bool
ckpt_checkpoint_is_directory(const struct ckpt_checkpoint *c)
{
	return c->is_dir;
}

const char *
ckpt_checkpoint_kind(const struct ckpt_checkpoint *c)
{
	return c->kind;
}

size_t
ckpt_checkpoint_file_count(const struct ckpt_checkpoint *c)
{
	return c->nfiles;
}

const char *
ckpt_checkpoint_file_name(const struct ckpt_checkpoint *c, size_t i)
{
	return i < c->nfiles ? c->files[i].name : NULL;
}

const struct ckpt_file *
ckpt_checkpoint_file(const struct ckpt_checkpoint *c, size_t i)
{
	return i < c->nfiles ? c->files[i].file : NULL;
}

const struct ckpt_error *
ckpt_checkpoint_file_error(const struct ckpt_checkpoint *c, size_t i)
{
	if (i >= c->nfiles || c->files[i].file)
		return NULL;
	return &c->files[i].err;
}

size_t
ckpt_checkpoint_finding_count(const struct ckpt_checkpoint *c)
{
	return c->nfindings;
}

const struct ckpt_finding *
ckpt_checkpoint_finding(const struct ckpt_checkpoint *c, size_t i)
{
	return i < c->nfindings ? &c->findings[i] : NULL;
}

/* ---------------------------------------------------------------- */
/* Hugging Face shard index: weight_map against the shards           */
/* ---------------------------------------------------------------- */

struct shard {
	const char *rel;		/* weight_map value */
	ssize_t file;			/* index in c->files, or -1 */
	const struct ckpt_tensor **t;	/* sorted by name */
	bool *mapped;
	size_t nt;
};

static int
cmp_tensor_ptr(const void *a, const void *b)
{
	const struct ckpt_tensor *x = *(const struct ckpt_tensor *const *)a;
	const struct ckpt_tensor *y = *(const struct ckpt_tensor *const *)b;

	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static ssize_t
find_tensor(const struct shard *s, const char *name)
{
	size_t lo = 0, hi = s->nt;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, s->t[mid]->name ? s->t[mid]->name : "");

		if (!r)
			return (ssize_t)mid;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* A shard name must stay inside the index's directory. */
static bool
safe_relative(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/')
		return false;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if ((n == 2 && !strncmp(s, "..", 2)) || n == 0)
			return false;
		s += n + (e ? 1 : 0);
	}
	return true;
}

/*
 * Bytes the mapped tensors of a shard occupy, each storage counted once
 * (huggingface_hub's rule; tied torch weights share one storage): the
 * extent of a storage's mapped tensors.
 */
static int
cmp_by_storage(const void *a, const void *b)
{
	const struct ckpt_tensor *x = *(const struct ckpt_tensor *const *)a;
	const struct ckpt_tensor *y = *(const struct ckpt_tensor *const *)b;

	return strcmp(x->storage, y->storage);
}

static int
shard_bytes(const struct shard *s, uint64_t *out)
{
	const struct ckpt_tensor **st;
	uint64_t total = 0;
	size_t n = 0;

	st = calloc(s->nt ? s->nt : 1, sizeof(*st));
	if (!st)
		return CKPT_ERR_NOMEM;
	for (size_t i = 0; i < s->nt; i++) {
		if (!s->mapped[i])
			continue;
		if (s->t[i]->storage)
			st[n++] = s->t[i];
		else
			total += s->t[i]->nbytes;
	}
	qsort(st, n, sizeof(*st), cmp_by_storage);
	for (size_t i = 0; i < n;) {
		uint64_t lo = st[i]->offset, hi = st[i]->offset + st[i]->span;
		size_t j = i + 1;

		for (; j < n && !strcmp(st[j]->storage, st[i]->storage); j++) {
			if (st[j]->offset < lo)
				lo = st[j]->offset;
			if (st[j]->offset + st[j]->span > hi)
				hi = st[j]->offset + st[j]->span;
		}
		total += hi - lo;
		i = j;
	}
	free(st);
	*out = total;
	return CKPT_OK;
}

int
ckpt_check_hf_index(struct ckpt_checkpoint *c, size_t ix,
    struct ckpt_error *err)
{
	const struct ckpt_cp_file *icf = &c->files[ix];
	const char *ipath = icf->path, *k;
	struct shard *shards = NULL;
	size_t nshards = 0;
	json_t *doc, *wm, *v, *ts;
	char *dir;
	uint64_t sum = 0;
	bool complete = true;
	int rc = CKPT_OK;

#define FINDING(id, sev, path, subj, ...)				\
	do {								\
		if (ckpt_checkpoint_add_finding(c, id, sev, path, subj, -1, \
		    __VA_ARGS__)) {					\
			rc = ckpt_error_nomem(err);			\
			goto out;					\
		}							\
	} while (0)

	doc = json_loads(ckpt_file_metadata_json(icf->file), 0, NULL);
	if (!doc)
		return ckpt_error_nomem(err);	/* we wrote it ourselves */
	wm = json_object_get(doc, "weight_map");
	dir = strdup(icf->name);
	if (!dir) {
		json_decref(doc);
		return ckpt_error_nomem(err);
	}
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	else
		dir[0] = '\0';

	/* The distinct shards, each with its tensors sorted by name. */
	json_object_foreach(wm, k, v) {
		const char *rel = json_string_value(v);
		struct shard *s = NULL, *p;
		char *name;

		for (size_t i = 0; i < nshards; i++)
			if (!strcmp(shards[i].rel, rel))
				s = &shards[i];
		if (s)
			continue;
		p = reallocarray(shards, nshards + 1, sizeof(*p));
		if (!p) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		shards = p;
		s = &shards[nshards++];
		memset(s, 0, sizeof(*s));
		s->rel = rel;
		s->file = -1;
		if (!safe_relative(rel)) {
			complete = false;
			FINDING("index-bad-shard-path", CKPT_SEV_ERROR, ipath,
			    rel, "weight_map names '%s', which is not a plain "
			    "relative path inside the checkpoint", rel);
			continue;
		}
		name = join(dir, rel);
		if (!name) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		s->file = ckpt_checkpoint_find(c, name);
		free(name);
		if (s->file < 0) {
			complete = false;
			FINDING("index-shard-missing", CKPT_SEV_ERROR, ipath,
			    rel, "shard '%s' named by the index is missing",
			    rel);
			continue;
		}
		if (!c->files[s->file].file) {
			complete = false;
			FINDING("index-shard-unreadable", CKPT_SEV_ERROR,
			    c->files[s->file].path, rel, "shard '%s' cannot be "
			    "read: %s", rel, c->files[s->file].err.message);
			s->file = -1;
			continue;
		}
		{
			const struct ckpt_file *f = c->files[s->file].file;

			s->nt = ckpt_file_tensor_count(f);
			s->t = calloc(s->nt ? s->nt : 1, sizeof(*s->t));
			s->mapped = calloc(s->nt ? s->nt : 1,
			    sizeof(*s->mapped));
			if (!s->t || !s->mapped) {
				rc = ckpt_error_nomem(err);
				goto out;
			}
			for (size_t i = 0; i < s->nt; i++)
				s->t[i] = ckpt_file_tensor(f, i);
			qsort(s->t, s->nt, sizeof(*s->t), cmp_tensor_ptr);
		}
	}

	/* Every mapped tensor is in its shard. */
	json_object_foreach(wm, k, v) {
		const char *rel = json_string_value(v);
		struct shard *s = NULL;
		ssize_t t;

		for (size_t i = 0; i < nshards && !s; i++)
			if (!strcmp(shards[i].rel, rel))
				s = &shards[i];
		if (!s || s->file < 0)
			continue;
		t = find_tensor(s, k);
		if (t < 0) {
			complete = false;
			FINDING("index-tensor-missing", CKPT_SEV_ERROR,
			    c->files[s->file].path, k, "tensor '%s' is mapped "
			    "to '%s' but that shard does not hold it", k, rel);
			continue;
		}
		s->mapped[t] = true;
	}

	/* Every shard tensor is mapped. */
	for (size_t i = 0; i < nshards; i++) {
		struct shard *s = &shards[i];

		for (size_t j = 0; j < s->nt; j++)
			if (!s->mapped[j])
				FINDING("index-tensor-unmapped",
				    CKPT_SEV_WARNING, c->files[s->file].path,
				    s->t[j]->name, "tensor '%s' of shard '%s' "
				    "is not in the index's weight_map",
				    s->t[j]->name, s->rel);
		if (s->file >= 0) {
			uint64_t b;

			if (shard_bytes(s, &b)) {
				rc = ckpt_error_nomem(err);
				goto out;
			}
			sum += b;
		}
	}

	/* total_size: the sum of tensor bytes, headers excluded.  Writers
	 * differ on shared storage, hence a warning. */
	ts = json_object_get(json_object_get(doc, "metadata"), "total_size");
	if (complete && json_is_integer(ts) && json_integer_value(ts) >= 0 &&
	    (uint64_t)json_integer_value(ts) != sum)
		FINDING("index-total-size-mismatch", CKPT_SEV_WARNING, ipath,
		    NULL, "metadata.total_size is %lld but the mapped tensors "
		    "hold %llu bytes", (long long)json_integer_value(ts),
		    (unsigned long long)sum);
out:
#undef FINDING
	for (size_t i = 0; i < nshards; i++) {
		free(shards[i].t);
		free(shards[i].mapped);
	}
	free(shards);
	free(dir);
	json_decref(doc);
	return rc;
}
