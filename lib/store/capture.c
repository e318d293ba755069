/* SPDX-License-Identifier: MIT */
/*
 * capture.c - what "ckpt save" records about where a checkpoint came
 * from, for every caller of ckpt_save_begin(): the git state of a working
 * directory, the GPU models, the fingerprint of the data files, an
 * environment (requirements/lock) file, a config file as JSON and a
 * Hugging Face trainer_state.json.  Each capture fills its manifest key
 * only when the caller's metadata lacks it, so that a caller that knows
 * better (an import carrying a source manifest) is never overridden.
 *
 * Git and GPUs are best effort (no git, no repository, no driver: the key
 * is left out); the files the caller names are not: a missing or
 * unreadable one is an error (CKPT_ERR_INVALID, the caller's request).
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "store/store.h"

#define TRAINER_STATE_MAX	((size_t)64 << 20)
#define ENV_CONTENT_MAX		((size_t)1 << 20)
#define DATA_DEPTH_MAX		64

/* ------------------------------------------------------------------ */
/* Subprocesses                                                        */
/* ------------------------------------------------------------------ */

/*
 * Runs argv (no shell) with stdout captured (at most max bytes; stdin and
 * stderr are /dev/null).  Returns the exit status, or -1 when it could
 * not run; *out is NULL or allocated.  posix_spawnp, not fork: the
 * capture runs on a thread of its own beside the save's copy and hash
 * threads, and a forked child of a threaded process may only call
 * async-signal-safe functions before it executes (execvp is not one).
 */
static int
run_capture(const char *const argv[], char **out, size_t max)
{
	posix_spawn_file_actions_t fa;
	int pfd[2], status, rc;
	size_t len = 0;
	char *buf = malloc(max + 1);
	pid_t pid;

	*out = NULL;
	if (!buf)
		return -1;
	if (pipe2(pfd, O_CLOEXEC)) {
		free(buf);
		return -1;
	}
	rc = posix_spawn_file_actions_init(&fa);
	if (!rc) {
		/* dup2 clears FD_CLOEXEC on the copy; the originals close. */
		rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1) ||
		    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
		    O_RDONLY, 0) ||
		    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null",
		    O_WRONLY, 0);
		if (!rc)
			rc = posix_spawnp(&pid, argv[0], &fa, NULL,
			    (char *const *)argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	close(pfd[1]);
	if (rc) {
		close(pfd[0]);
		free(buf);
		return -1;
	}
	for (;;) {
		char tmp[4096];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len < max) {
			size_t room = max - len;
			size_t k = (size_t)n < room ? (size_t)n : room;

			memcpy(buf + len, tmp, k);
			len += k;
		}
	}
	close(pfd[0]);
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			free(buf);
			return -1;
		}
	*out = buf;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

#define GIT_ARGS_MAX	8

/*
 * Runs git ARGS in dir (NULL: here), as "git -C dir ARGS": the capture
 * thread must not chdir, which would move every thread.  Returns as
 * run_capture does.
 */
static int
run_git(const char *dir, const char *const args[], char **out, size_t max)
{
	const char *argv[GIT_ARGS_MAX + 4];
	size_t n = 0;

	argv[n++] = "git";
	if (dir) {
		argv[n++] = "-C";
		argv[n++] = dir;
	}
	for (size_t i = 0; args[i]; i++) {
		if (i == GIT_ARGS_MAX)
			BUG("git with more than %d arguments", GIT_ARGS_MAX);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return run_capture(argv, out, max);
}

/* The first line of a git command's output, or NULL when it failed. */
static json_t *
git_line(const char *dir, const char *const args[], size_t max)
{
	char *out;
	json_t *j = NULL;

	if (run_git(dir, args, &out, max) == 0) {
		chomp(out);
		j = json_string(out);
	}
	free(out);
	return j;
}

/* git commit, branch and dirty state of dir; NULL: no git or no repo. */
static json_t *
capture_git(const char *dir)
{
	const char *const top_args[] = { "rev-parse", "--show-toplevel",
		NULL };
	const char *const head_args[] = { "rev-parse", "--verify", "-q",
		"HEAD", NULL };
	const char *const branch_args[] = { "symbolic-ref", "--short", "-q",
		"HEAD", NULL };
	const char *const dirty_args[] = { "status", "--porcelain",
		"--untracked-files=no", NULL };
	json_t *g, *top, *v;
	char *out;

	if (!(top = git_line(dir, top_args, 4096)))
		return NULL;
	g = json_object();
	if (!g) {
		json_decref(top);
		return NULL;
	}
	json_object_set_new(g, "toplevel", top);
	v = git_line(dir, head_args, 256);
	json_object_set_new(g, "commit", v ? v : json_null());
	v = git_line(dir, branch_args, 1024);
	json_object_set_new(g, "branch", v ? v : json_null());	/* detached */
	if (run_git(dir, dirty_args, &out, 1 << 20) == 0)
		json_object_set_new(g, "dirty", json_boolean(*out != '\0'));
	free(out);
	return g;
}

/* GPU models from the NVIDIA driver's /proc files, else nvidia-smi. */
static json_t *
capture_gpus(void)
{
	json_t *arr = json_array();
	glob_t g;

	if (!arr)
		return NULL;
	if (!glob("/proc/driver/nvidia/gpus/*/information", 0, NULL, &g)) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			FILE *fp = fopen(g.gl_pathv[i], "re");
			char line[512];

			while (fp && fgets(line, sizeof(line), fp)) {
				char *v;

				if (strncmp(line, "Model:", 6))
					continue;
				v = line + 6;
				while (*v == ' ' || *v == '\t')
					v++;
				chomp(v);
				json_array_append_new(arr, json_string(v));
			}
			if (fp)
				fclose(fp);
		}
		globfree(&g);
	}
	if (!json_array_size(arr)) {
		const char *const argv[] = { "nvidia-smi", "--query-gpu=name",
			"--format=csv,noheader", NULL };
		char *out, *line, *save = NULL;

		if (run_capture(argv, &out, 65536) == 0)
			for (line = strtok_r(out, "\n", &save); line;
			    line = strtok_r(NULL, "\n", &save)) {
				chomp(line);
				if (*line)
					json_array_append_new(arr,
					    json_string(line));
			}
		free(out);
	}
	if (!json_array_size(arr)) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* ------------------------------------------------------------------ */
/* Files the caller names                                              */
/* ------------------------------------------------------------------ */

/*
 * A file the caller named that cannot be read or parsed is a bad request
 * (ckpt save exits 2), unless memory ran out.
 */
static int
as_request_error(int rc, struct ckpt_error *err)
{
	if (rc == CKPT_ERR_NOMEM)
		return rc;
	if (err)
		err->code = CKPT_ERR_INVALID;
	return CKPT_ERR_INVALID;
}

/* "sha256:HEX" of 32 digest bytes, as a JSON string. */
static json_t *
digest_string(const unsigned char *d)
{
	char hex[CKPT_HASH_HEX_MAX], s[CKPT_HASH_HEX_MAX + 8];

	ckpt_hex(d, CKPT_SHA256_BYTES, hex);
	snprintf(s, sizeof(s), "sha256:%s", hex);
	return json_string(s);
}

static int
digest_of_file(const char *path, json_t **out, struct ckpt_error *err)
{
	struct ckpt_hash_job job;
	int rc;

	memset(&job, 0, sizeof(job));
	job.path = path;
	job.whole = true;
	if ((rc = ckpt_hash_files(&job, 1, 1, NULL, NULL, err)))
		return as_request_error(rc, err);
	if (!(*out = digest_string(job.sha256)))
		return ckpt_error_nomem(err);
	return 0;
}

/* The last component of path (the whole path when it has no slash). */
static const char *
base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

struct dfile {
	char *path;	/* as found */
	char *name;	/* for the fingerprint */
};

struct dlist {
	struct dfile *v;
	size_t n, cap;
};

static int
cmp_dfile(const void *a, const void *b)
{
	return strcmp(((const struct dfile *)a)->name,
	    ((const struct dfile *)b)->name);
}

static int
dlist_add(struct dlist *l, const char *path, const char *name,
    struct ckpt_error *err)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct dfile *v = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return ckpt_error_nomem(err);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].path = strdup(path);
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].path || !l->v[l->n].name) {
		free(l->v[l->n].path);
		free(l->v[l->n].name);
		return ckpt_error_nomem(err);
	}
	l->n++;
	return 0;
}

static void
dlist_release(struct dlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].name);
	}
	free(l->v);
}

static int
walk_data(const char *path, const char *name, struct dlist *l, int depth,
    struct ckpt_error *err)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (stat(path, &st))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "--data %s: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode))
		return dlist_add(l, path, name, err);
	if (!S_ISDIR(st.st_mode) || depth >= DATA_DEPTH_MAX)
		return 0;
	if (!(d = opendir(path)))
		return ckpt_error_errno(err, path, "cannot open directory");
	errno = 0;
	while (!rc && (de = readdir(d))) {
		char *p, *nm;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = ckpt_join(path, de->d_name);
		nm = ckpt_join(name, de->d_name);
		rc = p && nm ? walk_data(p, nm, l, depth + 1, err) :
		    ckpt_error_nomem(err);
		free(p);
		free(nm);
		errno = 0;
	}
	/* Fail closed: a listing cut short would fingerprint part of it. */
	if (!rc && errno)
		rc = ckpt_error_errno(err, path, "cannot read directory");
	closedir(d);
	return rc;
}

/*
 * The fingerprint's digest: SHA-256 of the sorted lines
 * "sha256:HEX SIZE NAME\n", NAME relative to each given path's parent
 * (so moving the data set elsewhere keeps its fingerprint).
 */
static int
fingerprint_digest(const struct dlist *l, const struct ckpt_hash_job *jobs,
    unsigned char *d, uint64_t *total, struct ckpt_error *err)
{
	struct ckpt_hash *h;
	char hex[CKPT_HASH_HEX_MAX];
	int rc;

	if ((rc = ckpt_hash_new(CKPT_HASH_SHA256, &h, err)))
		return rc;
	*total = 0;
	for (size_t i = 0; i < l->n; i++) {
		char *line;

		ckpt_hex(jobs[i].sha256, CKPT_SHA256_BYTES, hex);
		if (asprintf(&line, "sha256:%s %llu %s\n", hex,
		    (unsigned long long)jobs[i].size, l->v[i].name) < 0) {
			ckpt_hash_free(h);
			return ckpt_error_nomem(err);
		}
		ckpt_hash_update(h, line, strlen(line));
		free(line);
		*total += jobs[i].size;
	}
	rc = ckpt_hash_final(h, d, err);
	ckpt_hash_free(h);
	return rc;
}

/* Walks and hashes the --data paths into the manifest's "data" object. */
static int
data_fingerprint(const char *const *paths, size_t npaths,
    unsigned int nthreads, json_t *j, struct ckpt_error *err)
{
	struct dlist l = { 0 };
	struct ckpt_hash_job *jobs = NULL;
	unsigned char d[CKPT_SHA256_BYTES];
	json_t *given = json_array();
	uint64_t total;
	int rc = 0;

	if (!given)
		return ckpt_error_nomem(err);
	for (size_t i = 0; !rc && i < npaths; i++) {
		char *trim = strdup(paths[i]);
		size_t n = trim ? strlen(trim) : 0;

		if (!trim) {
			rc = ckpt_error_nomem(err);
			break;
		}
		while (n > 1 && trim[n - 1] == '/')
			trim[--n] = '\0';
		rc = walk_data(trim, base_name(trim), &l, 0, err);
		json_array_append_new(given, json_string(paths[i]));
		free(trim);
	}
	if (!rc && l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_dfile);
	if (!rc && !(jobs = calloc(l.n ? l.n : 1, sizeof(*jobs))))
		rc = ckpt_error_nomem(err);
	for (size_t i = 0; !rc && i < l.n; i++) {
		jobs[i].path = l.v[i].path;
		jobs[i].whole = true;
	}
	if (!rc && (rc = ckpt_hash_files(jobs, l.n, nthreads, NULL, NULL,
	    err)))
		rc = as_request_error(rc, err);
	if (!rc)
		rc = fingerprint_digest(&l, jobs, d, &total, err);
	if (!rc) {
		json_object_set(j, "paths", given);
		json_object_set_new(j, "files", json_integer((json_int_t)l.n));
		json_object_set_new(j, "size", json_integer((json_int_t)total));
		json_object_set_new(j, "digest", digest_string(d));
	}
	json_decref(given);
	dlist_release(&l);
	free(jobs);
	return rc;
}

static bool
is_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x09 || s[i] == 0x7f)
			return false;
	return true;
}

/* The environment file: its name, digest and (small text) content. */
static int
env_file(const char *path, json_t **out, struct ckpt_error *err)
{
	json_t *j, *digest;
	char *buf;
	size_t n;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "--env %s: %s", path, strerror(errno));
	/* A file of ENV_CONTENT_MAX bytes or more is recorded by digest
	 * only. */
	buf = NULL;
	n = 0;
	if (ckpt_read_fd(fd, ENV_CONTENT_MAX - 1, &buf, &n) && errno != EFBIG) {
		rc = errno;
		close(fd);
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "--env %s: %s", path, strerror(rc));
	}
	close(fd);
	if ((rc = digest_of_file(path, &digest, err))) {
		free(buf);
		return rc;
	}
	j = json_object();
	json_object_set_new(j, "file", json_string(base_name(path)));
	json_object_set_new(j, "sha256", digest);
	if (buf && is_text(buf, n)) {
		json_t *c = json_stringn(buf, n);

		if (c)	/* not UTF-8: no content */
			json_object_set_new(j, "content", c);
	}
	free(buf);
	*out = j;
	return 0;
}

/* The config file: name, digest and its content converted to JSON. */
static int
config_file(const char *path, json_t **out, struct ckpt_error *err)
{
	json_t *j, *content, *digest;
	char *text;
	int rc;

	if ((rc = ckpt_config_to_json(path, &text, err)))
		return as_request_error(rc, err);
	content = json_loads(text, JSON_DECODE_ANY, NULL);
	free(text);
	if (!content)
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, path, -1,
		    "cannot re-read the converted config");
	if ((rc = digest_of_file(path, &digest, err))) {
		json_decref(content);
		return rc;
	}
	j = json_object();
	json_object_set_new(j, "file", json_string(base_name(path)));
	json_object_set_new(j, "sha256", digest);
	json_object_set_new(j, "content", content);
	*out = j;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Hugging Face trainer state                                          */
/* ------------------------------------------------------------------ */

/* "checkpoint-N": the step a directory name carries, else -1. */
static int64_t
step_from_name(const char *dir)
{
	const char *b = base_name(dir);
	long long s;
	char *end;

	if (strncmp(b, "checkpoint-", 11) || !b[11])
		return -1;
	errno = 0;
	s = strtoll(b + 11, &end, 10);
	return !errno && !*end && s >= 0 ? s : -1;
}

/* trainer_state.json, with Python's NaN and Infinity read as null. */
static int
load_python_json(const char *path, json_t **out, struct ckpt_error *err)
{
	char *in, *py;
	size_t n, pylen;
	int64_t first;
	json_error_t je;
	int rc;

	/* At most 64 MiB: a trainer state is a few kilobytes. */
	if ((rc = ckpt_read_file(path, TRAINER_STATE_MAX, &in, &n, err)))
		return rc;
	py = ckpt_json_from_python(in, n, &pylen, &first);
	free(in);
	if (!py)
		return ckpt_error_nomem(err);
	*out = json_loadb(py, pylen, JSON_REJECT_DUPLICATES, &je);
	free(py);
	if (!*out)
		return ckpt_error_set(err, CKPT_ERR_INVALID, path, -1,
		    "line %d, column %d: %s", je.line, je.column, je.text);
	return 0;
}

/* The step's entries of log_history: numbers, or null (NaN/Infinity). */
static json_t *
step_metrics(json_t *j, int64_t step)
{
	json_t *metrics = json_object(), *e, *val;
	const char *k;
	size_t i;

	json_array_foreach(json_object_get(j, "log_history"), i, e) {
		json_t *s = json_object_get(e, "step");

		if (!json_is_integer(s) || json_integer_value(s) != step)
			continue;
		json_object_foreach(e, k, val) {
			if (!strcmp(k, "step") || !strcmp(k, "epoch"))
				continue;
			if (json_is_number(val) || json_is_null(val))
				json_object_set(metrics, k, val);
		}
	}
	return metrics;
}

/* best_metric is the run's best so far, not this checkpoint's: it stays
 * in trainer_state, never among the checkpoint's metrics. */
static json_t *
trainer_summary(json_t *j)
{
	static const char *const keys[] = { "best_model_checkpoint",
		"best_metric" };
	json_t *t = json_object();

	json_object_set(t, "global_step", json_object_get(j, "global_step"));
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(keys); i++)
		if (json_object_get(j, keys[i]))
			json_object_set(t, keys[i], json_object_get(j,
			    keys[i]));
	return t;
}

int
ckpt_trainer_state_read(const char *dir, struct ckpt_trainer_state *out,
    struct ckpt_error *err)
{
	json_t *j = NULL, *v, *metrics, *trainer;
	char *path, *abs;
	int rc;

	memset(out, 0, sizeof(*out));
	out->epoch = NAN;
	out->step = -1;
	/* The real name: "checkpoint-500/" or "." still name the step. */
	if (!(abs = realpath(dir, NULL)))
		return ckpt_error_errno(err, dir, "cannot resolve");
	path = ckpt_join(abs, "trainer_state.json");
	if (!path) {
		free(abs);
		return ckpt_error_nomem(err);
	}
	if (access(path, F_OK) && errno == ENOENT) {
		free(path);
		/* No trainer state: the step may be in the name. */
		out->step = step_from_name(abs);
		free(abs);
		out->has_step = out->step >= 0;
		out->metrics_json = strdup("{}");
		return out->metrics_json ? 0 : ckpt_error_nomem(err);
	}
	free(abs);
	rc = load_python_json(path, &j, err);
	free(path);
	if (rc)
		return as_request_error(rc, err);
	out->found = true;
	v = json_object_get(j, "global_step");
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		out->step = json_integer_value(v);
		out->has_step = true;
	}
	v = json_object_get(j, "epoch");
	if (json_is_number(v))
		out->epoch = json_number_value(v);
	metrics = out->has_step ? step_metrics(j, out->step) : json_object();
	trainer = trainer_summary(j);
	json_decref(j);
	out->metrics_json = metrics ? json_dumps(metrics, JSON_COMPACT) : NULL;
	out->trainer_json = trainer ? json_dumps(trainer, JSON_COMPACT) : NULL;
	json_decref(metrics);
	json_decref(trainer);
	if (!out->metrics_json || !out->trainer_json) {
		ckpt_trainer_state_release(out);
		return ckpt_error_nomem(err);
	}
	return 0;
}

void
ckpt_trainer_state_release(struct ckpt_trainer_state *ts)
{
	if (!ts)
		return;
	free(ts->metrics_json);
	free(ts->trainer_json);
	ts->metrics_json = ts->trainer_json = NULL;
}

/* ------------------------------------------------------------------ */
/* Into the manifest's metadata                                        */
/* ------------------------------------------------------------------ */

/* The trainer state of an adopted directory, under the caller's data. */
static int
capture_trainer_state(json_t *meta, const char *dir, struct ckpt_error *err)
{
	struct ckpt_trainer_state ts;
	json_t *metrics, *mine;
	int rc;

	if ((rc = ckpt_trainer_state_read(dir, &ts, err)))
		return rc;
	if (!json_is_number(json_object_get(meta, "epoch")) &&
	    !isnan(ts.epoch))
		json_object_set_new(meta, "epoch", json_real(ts.epoch));
	metrics = json_loads(ts.metrics_json, 0, NULL);
	mine = json_object_get(meta, "metrics");
	if (metrics && json_is_object(mine))
		json_object_update(metrics, mine);	/* the caller's win */
	if (metrics && json_object_size(metrics))
		json_object_set(meta, "metrics", metrics);
	json_decref(metrics);
	if (ts.trainer_json && !json_object_get(meta, "trainer_state"))
		json_object_set_new(meta, "trainer_state",
		    json_loads(ts.trainer_json, 0, NULL));
	ckpt_trainer_state_release(&ts);
	return 0;
}

/* "data": the fingerprint and/or the version the caller gave. */
static int
capture_data(json_t *meta, const struct ckpt_save_options *o,
    struct ckpt_error *err)
{
	json_t *d = json_object();
	int rc = 0;

	if (!d)
		return ckpt_error_nomem(err);
	if (o->ndata_paths)
		rc = data_fingerprint(o->data_paths, o->ndata_paths,
		    o->nthreads, d, err);
	if (!rc && o->data_version)
		json_object_set_new(d, "version", json_string(
		    o->data_version));
	if (!rc)
		json_object_set(meta, "data", d);
	json_decref(d);
	return rc;
}

/* "environment": {"file": ...}, beside the caller's keys. */
static int
capture_env_file(json_t *meta, const char *path, struct ckpt_error *err)
{
	json_t *env = json_object_get(meta, "environment"), *v = NULL;
	int rc;

	if (json_is_object(env) && json_object_get(env, "file"))
		return 0;
	if ((rc = env_file(path, &v, err)))
		return rc;
	if (!json_is_object(env)) {
		if (!(env = json_object())) {
			json_decref(v);
			return ckpt_error_nomem(err);
		}
		json_object_set_new(meta, "environment", env);
	}
	json_object_set_new(env, "file", v);
	return 0;
}

int
ckpt_capture_metadata(json_t *meta, const struct ckpt_save_options *o,
    struct ckpt_error *err)
{
	json_t *v = NULL;
	int rc;

	if (o->version < 2)	/* before the capture fields existed */
		return 0;
	if (o->config_file && !json_object_get(meta, "config")) {
		if ((rc = config_file(o->config_file, &v, err)))
			return rc;
		json_object_set_new(meta, "config", v);
	}
	if ((o->ndata_paths || o->data_version) && !json_object_get(meta,
	    "data") && (rc = capture_data(meta, o, err)))
		return rc;
	if (o->env_file && (rc = capture_env_file(meta, o->env_file, err)))
		return rc;
	if ((o->capture & CKPT_CAPTURE_TRAINER_STATE) && o->transfer ==
	    CKPT_TRANSFER_ADOPT && o->nsources == 1 &&
	    (rc = capture_trainer_state(meta, o->sources[0], err)))
		return rc;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Git and GPUs, beside the copy                                       */
/* ------------------------------------------------------------------ */

static void *
capture_bg_run(void *arg)
{
	struct ckpt_capture_bg *bg = arg;

	if (bg->want_gpus)
		bg->gpus = capture_gpus();
	if (bg->want_git)
		bg->git = capture_git(bg->git_dir);
	return NULL;
}

void
ckpt_capture_bg_start(struct ckpt_capture_bg *bg, json_t *meta,
    const struct ckpt_save_options *o)
{
	json_t *env = json_object_get(meta, "environment");

	memset(bg, 0, sizeof(*bg));
	if (o->version < 2)
		return;
	bg->want_git = (o->capture & CKPT_CAPTURE_GIT) &&
	    !json_object_get(meta, "git");
	bg->want_gpus = (o->capture & CKPT_CAPTURE_GPUS) &&
	    !json_object_get(env, "gpus");
	if (!bg->want_git && !bg->want_gpus)
		return;
	if (o->git_dir && !(bg->git_dir = strdup(o->git_dir))) {
		bg->want_git = false;	/* best effort, as a failed git */
		if (!bg->want_gpus)
			return;
	}
	/* No thread (out of resources): the same work, here and now. */
	bg->started = !pthread_create(&bg->th, NULL, capture_bg_run, bg);
	if (!bg->started)
		capture_bg_run(bg);
}

void
ckpt_capture_bg_join(struct ckpt_capture_bg *bg, json_t *meta)
{
	json_t *env;

	if (bg->started)
		pthread_join(bg->th, NULL);
	bg->started = false;
	free(bg->git_dir);
	bg->git_dir = NULL;
	/* A key already there (the caller's) is left alone, as in begin. */
	if (bg->git && !json_object_get(meta, "git"))
		json_object_set(meta, "git", bg->git);
	if (bg->gpus) {
		env = json_object_get(meta, "environment");
		if (!json_is_object(env)) {
			env = json_object();
			json_object_set_new(meta, "environment", env);
		}
		if (json_is_object(env) && !json_object_get(env, "gpus"))
			json_object_set(env, "gpus", bg->gpus);
	}
	json_decref(bg->git);
	json_decref(bg->gpus);
	bg->git = bg->gpus = NULL;
}
