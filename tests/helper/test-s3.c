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
#include <unistd.h>

#include "store/s3.h"

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

static const struct {
	const char *name;
	int (*fn)(struct ckpt_s3 *, int, char **, struct ckpt_error *);
} s3_ops[] = {
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
