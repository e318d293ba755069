/* SPDX-License-Identifier: MIT */
/*
 * test-s3.c - "ckpt-test-tool s3": drives libckpt's S3 client from shell
 * tests (tests/t75*-s3-*.sh) against the real RADOS Gateway that
 * scripts/rgw starts.  Endpoint, region and credentials come from the
 * environment and ~/.aws as for any user.
 *
 *   ckpt-test-tool s3 [OPTIONS] BUCKET put KEY FILE [--if-absent]
 *   ckpt-test-tool s3 [OPTIONS] BUCKET put-file KEY FILE
 *       (one PUT or a parallel multipart upload; prints the SHA-256 of
 *        the bytes it read, hashed in the same pass)
 *   ckpt-test-tool s3 [OPTIONS] BUCKET get KEY [OFFSET [LENGTH]]  >OUT
 *   ckpt-test-tool s3 [OPTIONS] BUCKET head KEY        size etag
 *   ckpt-test-tool s3 [OPTIONS] BUCKET delete KEY
 *   ckpt-test-tool s3 [OPTIONS] BUCKET copy SRC DST    (server-side)
 *   ckpt-test-tool s3 [OPTIONS] BUCKET uploads [PREFIX]
 *       one line per unfinished multipart upload: "KEY UPLOAD-ID"
 *   ckpt-test-tool s3 [OPTIONS] BUCKET mpu-begin KEY   prints its id
 *   ckpt-test-tool s3 [OPTIONS] BUCKET mpu-abort KEY UPLOAD-ID
 *   ckpt-test-tool s3 [OPTIONS] BUCKET list [PREFIX [DELIMITER]]
 *       one line per key ("KEY SIZE"), per common prefix ("KEY/")
 *   ckpt-test-tool s3 config         what ckpt_s3_config_load() found
 *                                    (secrets as "set"/"unset")
 *
 *   ckpt-test-tool s3 [OPTIONS] BUCKET put-many PREFIX N
 *       N small objects PREFIX000000 ... (content: their own name)
 *
 *   ckpt-test-tool s3 [OPTIONS] BUCKET clone-steps P/runs/R/step-K FROM TO
 *       [--index]
 *       copies of the (small) committed checkpoint at that prefix as
 *       step-FROM ... step-TO of its run, "step": K in its summary and
 *       manifest made "step": N, the manifest of each put last; 4
 *       threads.  Listing input for benchmarks: the copies' manifests no
 *       longer match their summaries' digests (verify fails them).
 *       --index: each copy then adds itself to the run's listing index
 *       through the store's own code (s3listix.c, as a commit does), the
 *       4 threads racing each other for it.
 *
 * S3_TOOL_MTIME=1 in the environment adds the service's modification
 * time (seconds since the epoch) to what head and list print.
 *
 * OPTIONS: --attempts N --backoff MS --stall S --part-size BYTES
 * --threshold BYTES (multipart above it) --copy-part BYTES
 * --parallel N --page N (keys per list answer) --path-style --stats
 * (requests and retries on stderr).
 * Exit: 0 ok, 3 error, 4 not found, 5 exists, 6 refused, 2 usage; the
 * error is printed as "ckpt-test-tool: PATH: MESSAGE (CODE)".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "store/s3.h"
#include "store/s3listix.h"

int cmd_s3(int argc, char **argv);

static int
s3_usage(void)
{
	fprintf(stderr, "usage: ckpt-test-tool s3 [--attempts N] "
	    "[--backoff MS] [--stall S] [--part-size N] [--parallel N]\n"
	    "       [--page N] [--path-style] [--stats]\n"
	    "       BUCKET put|put-file|put-many|get|head|copy|delete|list|\n"
	    "       uploads|mpu-begin|mpu-abort ...\n"
	    "       ckpt-test-tool s3 config\n");
	return 2;
}

static int
s3_fail(const struct ckpt_error *err)
{
	/* As the ckpt CLI prints errors (cmd/usage.c). */
	fprintf(stderr, "ckpt-test-tool: %s%s%s", err->path,
	    err->path[0] ? ": " : "", err->message);
	if (err->offset >= 0 && err->code == CKPT_ERR_FORMAT)
		fprintf(stderr, " (at byte %lld)", (long long)err->offset);
	fprintf(stderr, " (%s)\n", ckpt_strerror(err->code));
	switch (err->code) {
	case CKPT_ERR_NOTFOUND: return 4;
	case CKPT_ERR_EXISTS: return 5;
	case CKPT_ERR_REFUSED: return 6;
	default: return 3;
	}
}

static int
write_out(void *arg, const void *data, size_t len)
{
	(void)arg;
	return fwrite(data, 1, len, stdout) == len ? 0 : CKPT_ERR_IO;
}

static int
print_entry(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	(void)arg;
	if (obj && getenv("S3_TOOL_MTIME"))
		printf("%s %llu %lld\n", key, (unsigned long long)obj->size,
		    (long long)obj->mtime);
	else if (obj)
		printf("%s %llu\n", key, (unsigned long long)obj->size);
	else
		printf("%s\n", key);
	return 0;
}

static int
hash_bytes(void *arg, const void *data, size_t len)
{
	ckpt_hash_update(arg, data, len);
	return 0;
}

static int
read_whole(const char *path, char **data, size_t *len)
{
	struct stat st;
	size_t done = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) ||
	    !(*data = malloc((size_t)st.st_size + 1))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, *data + done, (size_t)st.st_size - done);

		if (n <= 0) {
			close(fd);
			free(*data);
			return -1;
		}
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return 0;
}

static int
op_put(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	struct ckpt_s3_object obj;
	unsigned flags = 0;
	size_t len;
	char *data;
	int rc;

	if (argc == 4 && !strcmp(argv[3], "--if-absent"))
		flags = CKPT_S3_IF_ABSENT;
	else if (argc != 3)
		return s3_usage();
	if (read_whole(argv[2], &data, &len)) {
		fprintf(stderr, "ckpt-test-tool: %s: %s\n", argv[2],
		    strerror(errno));
		return 3;
	}
	rc = ckpt_s3_put(s3, argv[1], data, len, flags, &obj, err);
	free(data);
	if (rc)
		return s3_fail(err);
	printf("%llu %s\n", (unsigned long long)obj.size, obj.etag);
	return 0;
}

static int
op_put_file(struct ckpt_s3 *s3, int argc, char **argv,
    struct ckpt_error *err)
{
	char hex[CKPT_HASH_HEX_MAX];
	unsigned char md[CKPT_HASH_MAX_BYTES];
	struct ckpt_s3_object obj;
	struct ckpt_hash *h;
	struct stat st;
	int fd, rc;

	if (argc != 3)
		return s3_usage();
	if ((fd = open(argv[2], O_RDONLY)) < 0 || fstat(fd, &st)) {
		fprintf(stderr, "ckpt-test-tool: %s: %s\n", argv[2],
		    strerror(errno));
		return 3;
	}
	if (ckpt_hash_new(CKPT_HASH_SHA256, &h, err)) {
		close(fd);
		return s3_fail(err);
	}
	rc = ckpt_s3_put_fd(s3, argv[1], fd, (uint64_t)st.st_size, 0,
	    hash_bytes, h, &obj, err);
	close(fd);
	if (!rc && !(rc = ckpt_hash_final(h, md, err)))
		ckpt_hex(md, CKPT_SHA256_BYTES, hex);
	ckpt_hash_free(h);
	if (rc)
		return s3_fail(err);
	printf("%llu %s\n", (unsigned long long)obj.size, hex);
	return 0;
}

static int
parse_u64_arg(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || !*s || *end ? -1 : 0;
}

static int
op_get(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	uint64_t off = 0, len = CKPT_S3_TO_END;

	if (argc < 2 || argc > 4 ||
	    (argc > 2 && parse_u64_arg(argv[2], &off)) ||
	    (argc > 3 && parse_u64_arg(argv[3], &len)))
		return s3_usage();
	if (ckpt_s3_get(s3, argv[1], off, len, write_out, NULL, NULL, err))
		return s3_fail(err);
	return fflush(stdout) ? 3 : 0;
}

static int
op_head(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	struct ckpt_s3_object obj;

	if (argc != 2)
		return s3_usage();
	if (ckpt_s3_head(s3, argv[1], &obj, err))
		return s3_fail(err);
	if (getenv("S3_TOOL_MTIME"))
		printf("%llu %s %lld\n", (unsigned long long)obj.size,
		    obj.etag, (long long)obj.mtime);
	else
		printf("%llu %s\n", (unsigned long long)obj.size, obj.etag);
	return 0;
}

static int
op_delete(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	if (argc != 2)
		return s3_usage();
	return ckpt_s3_delete(s3, argv[1], err) ? s3_fail(err) : 0;
}

static int
op_copy(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	if (argc != 3)
		return s3_usage();
	return ckpt_s3_copy(s3, argv[1], argv[2], err) ? s3_fail(err) : 0;
}

static int
print_upload(void *arg, const struct ckpt_s3_upload *u)
{
	(void)arg;
	if (getenv("S3_TOOL_MTIME"))
		printf("%s %s %lld\n", u->key, u->upload_id,
		    (long long)u->initiated);
	else
		printf("%s %s\n", u->key, u->upload_id);
	return 0;
}

static int
op_uploads(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	if (argc > 2)
		return s3_usage();
	if (ckpt_s3_list_uploads(s3, argc > 1 ? argv[1] : NULL, print_upload,
	    NULL, err))
		return s3_fail(err);
	return 0;
}

static int
op_mpu_begin(struct ckpt_s3 *s3, int argc, char **argv,
    struct ckpt_error *err)
{
	char *id;

	if (argc != 2)
		return s3_usage();
	if (ckpt_s3_mpu_begin(s3, argv[1], &id, err))
		return s3_fail(err);
	printf("%s\n", id);
	free(id);
	return 0;
}

static int
op_mpu_abort(struct ckpt_s3 *s3, int argc, char **argv,
    struct ckpt_error *err)
{
	if (argc != 3)
		return s3_usage();
	return ckpt_s3_mpu_abort(s3, argv[1], argv[2], err) ? s3_fail(err) :
	    0;
}

static int
op_list(struct ckpt_s3 *s3, int argc, char **argv, struct ckpt_error *err)
{
	if (argc > 3)
		return s3_usage();
	if (ckpt_s3_list(s3, argc > 1 ? argv[1] : NULL,
	    argc > 2 ? argv[2] : NULL, print_entry, NULL, err))
		return s3_fail(err);
	return 0;
}

static int
op_config(void)
{
	struct ckpt_s3_config cfg;
	struct ckpt_error err;

	ckpt_s3_config_init(&cfg);
	if (ckpt_s3_config_load(&cfg, &err))
		return s3_fail(&err);
	printf("endpoint %s\nregion %s\npath_style %s\naccess_key %s\n"
	    "secret_key %s\nsession_token %s\n", cfg.endpoint, cfg.region,
	    cfg.path_style ? "yes" : "no", cfg.access_key ? "set" : "unset",
	    cfg.secret_key ? "set" : "unset",
	    cfg.session_token ? "set" : "unset");
	ckpt_s3_config_release(&cfg);
	return 0;
}

static int
op_put_many(struct ckpt_s3 *s3, int argc, char **argv,
    struct ckpt_error *err)
{
	uint64_t n;
	char key[1100];

	if (argc != 3 || parse_u64_arg(argv[2], &n) || n > 1000000 ||
	    strlen(argv[1]) > 1000)
		return s3_usage();
	for (uint64_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%06llu", argv[1],
		    (unsigned long long)i);
		if (ckpt_s3_put(s3, key, key, strlen(key), 0, NULL, err))
			return s3_fail(err);
	}
	return 0;
}

struct clone_obj {
	char *rel;
	char *data;
	size_t len;
};

struct clone {
	struct ckpt_s3 *s3;
	const char *run_dir;	/* P/runs/R/ */
	const char *orig;	/* "\"step\": K" */
	struct clone_obj *objs;
	size_t nobjs;
	uint64_t from, to;
	unsigned nthreads;
	bool index;		/* --index */
	const char *store;	/* P/ ("" or with its '/') */
	const char *runkey;	/* runs/R */
	/* per thread */
	unsigned self;
	int rc;
	struct ckpt_error err;
};

static int
clone_list_one(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct clone *c = arg;
	struct clone_obj *v;

	if (!obj)
		return 0;
	if (!(v = realloc(c->objs, (c->nobjs + 1) * sizeof(*v))))
		return CKPT_ERR_NOMEM;
	c->objs = v;
	memset(&v[c->nobjs], 0, sizeof(*v));
	if (!(v[c->nobjs].rel = strdup(key)))
		return CKPT_ERR_NOMEM;
	c->nobjs++;
	return 0;
}

/* data with the first occurrence of orig made "step": n (a new string). */
static char *
clone_text(const char *data, const char *orig, uint64_t n, size_t *len)
{
	const char *at = strstr(data, orig);
	char *out = NULL;
	int k;

	if (!at)
		k = asprintf(&out, "%s", data);
	else
		k = asprintf(&out, "%.*s\"step\": %llu%s", (int)(at - data),
		    data, (unsigned long long)n, at + strlen(orig));
	if (k < 0)
		return NULL;
	*len = (size_t)k;
	return out;
}

/* An error of this tool's own (ckpt_error_set is libckpt's, internal). */
static int
tool_error(struct ckpt_error *err, int code, const char *msg)
{
	ckpt_error_clear(err);
	err->code = code;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return code;
}

static int
clone_put(struct clone *c, uint64_t n, const struct clone_obj *o,
    struct ckpt_s3_object *out)
{
	char key[2200], *text;
	size_t len;
	int rc;

	if (!(text = clone_text(o->data, c->orig, n, &len)))
		return tool_error(&c->err, CKPT_ERR_NOMEM, "out of memory");
	snprintf(key, sizeof(key), "%sstep-%llu/%s", c->run_dir,
	    (unsigned long long)n, o->rel);
	rc = ckpt_s3_put(c->s3, key, text, len, 0, out, &c->err);
	free(text);
	return rc;
}

/* --index: step-n, committed with manifest m, into the run's index. */
static void
clone_index(struct clone *c, uint64_t n, const struct ckpt_s3_object *m,
    const struct clone_obj *summary)
{
	struct s3_ixop *q = NULL;
	char name[64], *text;
	size_t len;

	if (!summary || !(text = clone_text(summary->data, c->orig, n, &len)))
		return;
	snprintf(name, sizeof(name), "step-%llu", (unsigned long long)n);
	ckpt_s3_listix_queue_add(&q, c->runkey, name, m->etag, text, len);
	ckpt_s3_listix_apply(c->s3, c->store, &q);
	free(text);
}

static void *
clone_thread(void *arg)
{
	struct clone *c = arg;
	size_t mi = c->nobjs, si = c->nobjs;
	struct ckpt_s3_object m;

	for (size_t i = 0; i < c->nobjs; i++) {
		if (!strcmp(c->objs[i].rel, "ckpt-manifest.json"))
			mi = i;
		if (!strcmp(c->objs[i].rel, "ckpt-summary.json"))
			si = i;
	}
	for (uint64_t n = c->from + c->self; n <= c->to && !c->rc;
	    n += c->nthreads) {
		for (size_t i = 0; i < c->nobjs && !c->rc; i++)
			if (i != mi)
				c->rc = clone_put(c, n, &c->objs[i], NULL);
		if (!c->rc && mi < c->nobjs)
			c->rc = clone_put(c, n, &c->objs[mi], &m);
		if (!c->rc && mi < c->nobjs && c->index)
			clone_index(c, n, &m, si < c->nobjs ? &c->objs[si] :
			    NULL);
	}
	return NULL;
}

static int
op_clone_steps(struct ckpt_s3 *s3, int argc, char **argv,
    struct ckpt_error *err)
{
	struct clone c = { .s3 = s3, .nthreads = 4 }, t[4];
	pthread_t th[4];
	bool started[4] = { false, false, false, false };
	const char *step, *runs;
	char *dir = NULL, *run_dir = NULL, *store = NULL, *runkey = NULL;
	char orig[64];
	uint64_t k;
	int rc = 0;

	if (argc == 5 && !strcmp(argv[4], "--index")) {
		c.index = true;
		argc--;
	}
	if (argc != 4 || parse_u64_arg(argv[2], &c.from) ||
	    parse_u64_arg(argv[3], &c.to) || c.from > c.to ||
	    !(step = strrchr(argv[1], '/')) || strncmp(step, "/step-", 6) ||
	    parse_u64_arg(step + 6, &k) || strlen(argv[1]) > 1000)
		return s3_usage();
	snprintf(orig, sizeof(orig), "\"step\": %llu", (unsigned long long)k);
	c.orig = orig;
	if (asprintf(&dir, "%s/", argv[1]) < 0 || asprintf(&run_dir, "%.*s",
	    (int)(step + 1 - argv[1]), argv[1]) < 0)
		return s3_fail(err);
	c.run_dir = run_dir;
	/* P/runs/R/step-K: the store P/ ("" for runs/R/...) and runs/R */
	for (runs = step; runs > argv[1] && runs[-1] != '/'; runs--)
		;
	if (runs == step || runs - argv[1] < 5 || strncmp(runs - 5, "runs/",
	    5) || (runs - argv[1] > 5 && runs[-6] != '/')) {
		free(dir);
		free(run_dir);
		return s3_usage();
	}
	if (!(store = strndup(argv[1], (size_t)(runs - 5 - argv[1]))) ||
	    asprintf(&runkey, "runs/%.*s", (int)(step - runs), runs) < 0)
		return s3_fail(err);
	c.store = store;
	c.runkey = runkey;
	if (ckpt_s3_list(s3, dir, NULL, clone_list_one, &c, err))
		rc = s3_fail(err);
	for (size_t i = 0; !rc && i < c.nobjs; i++) {
		char *key = NULL;

		if (asprintf(&key, "%s%s", dir, c.objs[i].rel + strlen(dir))
		    < 0 || ckpt_s3_get_mem(s3, key, 0, CKPT_S3_TO_END,
		    (size_t)16 << 20, &c.objs[i].data, &c.objs[i].len, NULL,
		    err))
			rc = s3_fail(err);
		free(key);
		memmove(c.objs[i].rel, c.objs[i].rel + strlen(dir),
		    strlen(c.objs[i].rel + strlen(dir)) + 1);
	}
	for (unsigned i = 0; !rc && i < c.nthreads; i++) {
		t[i] = c;
		t[i].self = i;
		ckpt_error_clear(&t[i].err);
		started[i] = !pthread_create(&th[i], NULL, clone_thread,
		    &t[i]);
		if (!started[i])
			t[i].rc = tool_error(&t[i].err, CKPT_ERR_IO,
			    "cannot start a thread");
	}
	for (unsigned i = 0; !rc && i < c.nthreads; i++)
		if (started[i])
			pthread_join(th[i], NULL);
	for (unsigned i = 0; !rc && i < c.nthreads; i++)
		if (t[i].rc)
			rc = s3_fail(&t[i].err);
	for (size_t i = 0; i < c.nobjs; i++) {
		free(c.objs[i].rel);
		free(c.objs[i].data);
	}
	free(c.objs);
	free(dir);
	free(run_dir);
	free(store);
	free(runkey);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(struct ckpt_s3 *, int, char **, struct ckpt_error *);
} s3_ops[] = {
	{ "clone-steps", op_clone_steps },
	{ "copy", op_copy },
	{ "delete", op_delete },
	{ "get", op_get },
	{ "head", op_head },
	{ "list", op_list },
	{ "mpu-abort", op_mpu_abort },
	{ "mpu-begin", op_mpu_begin },
	{ "put", op_put },
	{ "put-file", op_put_file },
	{ "put-many", op_put_many },
	{ "uploads", op_uploads },
};

static int
set_tunable(struct ckpt_s3_config *cfg, const char *opt, const char *val)
{
	uint64_t v;

	if (!val || parse_u64_arg(val, &v) || v > UINT32_MAX * 1024ull)
		return -1;
	if (!strcmp(opt, "--attempts"))
		cfg->max_attempts = (unsigned)v;
	else if (!strcmp(opt, "--backoff"))
		cfg->backoff_ms = (unsigned)v;
	else if (!strcmp(opt, "--stall"))
		cfg->stall_seconds = (unsigned)v;
	else if (!strcmp(opt, "--part-size"))
		cfg->part_size = v;
	else if (!strcmp(opt, "--parallel"))
		cfg->parallel = (unsigned)v;
	else if (!strcmp(opt, "--page"))
		cfg->list_page = (unsigned)v;
	else if (!strcmp(opt, "--threshold"))
		cfg->multipart_threshold = v;
	else if (!strcmp(opt, "--copy-part"))
		cfg->copy_part_size = v;

	else
		return -1;
	return 0;
}

int
cmd_s3(int argc, char **argv)
{
	struct ckpt_s3_config cfg;
	struct ckpt_s3_stats st;
	struct ckpt_error err;
	struct ckpt_s3 *s3;
	bool stats = false, path_style = false;
	int i = 1, rc = 2;

	if (argc == 2 && !strcmp(argv[1], "config"))
		return op_config();
	ckpt_s3_config_init(&cfg);
	if (ckpt_s3_config_load(&cfg, &err))
		return s3_fail(&err);
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--stats")) {
			stats = true;
		} else if (!strcmp(argv[i], "--path-style")) {
			path_style = true;
		} else if (set_tunable(&cfg, argv[i], argv[i + 1])) {
			ckpt_s3_config_release(&cfg);
			return s3_usage();
		} else {
			i++;
		}
	}
	if (path_style)
		cfg.path_style = true;
	if (argc - i < 2) {
		ckpt_s3_config_release(&cfg);
		return s3_usage();
	}
	if (ckpt_s3_open(&cfg, argv[i], &s3, &err)) {
		ckpt_s3_config_release(&cfg);
		return s3_fail(&err);
	}
	ckpt_s3_config_release(&cfg);
	for (size_t k = 0; k < sizeof(s3_ops) / sizeof(s3_ops[0]); k++)
		if (!strcmp(argv[i + 1], s3_ops[k].name))
			rc = s3_ops[k].fn(s3, argc - i - 1, argv + i + 1, &err);
	if (stats) {
		ckpt_s3_get_stats(s3, &st);
		fprintf(stderr, "requests %llu retries %llu\n",
		    (unsigned long long)st.requests,
		    (unsigned long long)st.retries);
	}
	ckpt_s3_free(s3);
	return rc;
}
