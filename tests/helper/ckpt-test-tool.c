/* SPDX-License-Identifier: MIT */
/*
 * ckpt-test-tool.c - fixture generator and corrupter for the shell tests,
 * after git's t/helper/test-tool: one binary with a table of subcommands.
 * It writes deterministic files at test time so that the repository holds
 * no large binaries.
 *
 *   ckpt-test-tool flip FILE OFFSET [MASK]   xor one byte (default 0x01)
 *   ckpt-test-tool truncate FILE SIZE        cut a file to SIZE bytes
 *   ckpt-test-tool fill FILE SIZE [SEED]     SIZE pseudo-random bytes
 *   ckpt-test-tool sha256 FILE               digest through libckpt
 *   ckpt-test-tool tensors [--crc] FILE      per tensor: name, dtype,
 *                                            shape, sha256 of the bytes
 *                                            ckpt_tensor_read() returns
 *   ckpt-test-tool findings [--crc] FILE     format, then one finding a
 *                                            line: id severity offset
 *                                            subject; exit 1 if open fails
 *   ckpt-test-tool metadata FILE             the metadata JSON
 *   ckpt-test-tool globals FILE              pickle globals, allowed or not
 *   ckpt-test-tool mkstore STORE RUN FIRST N  N committed checkpoints
 *                                            RUN@FIRST.. (as mk-store.py
 *                                            writes them, loss 1/(s+1)),
 *                                            fast: 100,000 in seconds
 *   ckpt-test-tool s3 ...                    libckpt's S3 client (test-s3.c)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt.h>

/* ckpt_store_s3_set_lease(): libckpt.a's internal, for hold-lock --lease */
void ckpt_store_s3_set_lease(struct ckpt_store *s, unsigned seconds);

int cmd_s3(int argc, char **argv);	/* test-s3.c */

static int
fail(const char *msg, const char *arg)
{
	fprintf(stderr, "ckpt-test-tool: %s%s%s\n", msg, arg ? ": " : "",
	    arg ? arg : "");
	return 1;
}

static int
parse_num(const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || !*s || *end ? -1 : 0;
}

static int
cmd_flip(int argc, char **argv)
{
	unsigned long long off, mask = 1;
	unsigned char b;
	int fd;

	if (argc < 3 || parse_num(argv[2], &off) ||
	    (argc > 3 && parse_num(argv[3], &mask)))
		return fail("usage: flip FILE OFFSET [MASK]", NULL);
	if ((fd = open(argv[1], O_RDWR)) < 0)
		return fail(strerror(errno), argv[1]);
	if (pread(fd, &b, 1, (off_t)off) != 1)
		return fail("offset beyond end of file", argv[2]);
	b ^= (unsigned char)mask;
	if (pwrite(fd, &b, 1, (off_t)off) != 1 || close(fd))
		return fail(strerror(errno), argv[1]);
	return 0;
}

static int
cmd_truncate(int argc, char **argv)
{
	unsigned long long size;

	if (argc != 3 || parse_num(argv[2], &size))
		return fail("usage: truncate FILE SIZE", NULL);
	if (truncate(argv[1], (off_t)size))
		return fail(strerror(errno), argv[1]);
	return 0;
}

static int
cmd_fill(int argc, char **argv)
{
	unsigned long long size, seed = 1;
	unsigned char buf[65536];
	uint64_t x;
	FILE *fp;

	if (argc < 3 || parse_num(argv[2], &size) ||
	    (argc > 3 && parse_num(argv[3], &seed)))
		return fail("usage: fill FILE SIZE [SEED]", NULL);
	if (!(fp = fopen(argv[1], "wb")))
		return fail(strerror(errno), argv[1]);
	x = seed * 0x9E3779B97F4A7C15ull + 1;
	while (size) {
		size_t n = size < sizeof(buf) ? (size_t)size : sizeof(buf);

		for (size_t i = 0; i < n; i++) {
			/* xorshift64: fast, deterministic, seedable */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (unsigned char)x;
		}
		if (fwrite(buf, 1, n, fp) != n)
			return fail(strerror(errno), argv[1]);
		size -= n;
	}
	return fclose(fp) ? fail(strerror(errno), argv[1]) : 0;
}

static int
cmd_sha256(int argc, char **argv)
{
	unsigned char buf[1 << 16], d[CKPT_SHA256_BYTES];
	char hex[CKPT_HASH_HEX_MAX];
	struct ckpt_hash *h;
	ssize_t n;
	int fd;

	if (argc != 2)
		return fail("usage: sha256 FILE", NULL);
	if ((fd = open(argv[1], O_RDONLY)) < 0)
		return fail(strerror(errno), argv[1]);
	if (ckpt_hash_new(CKPT_HASH_SHA256, &h, NULL))
		return fail("cannot start hash", NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		ckpt_hash_update(h, buf, (size_t)n);
	if (n < 0 || ckpt_hash_final(h, d, NULL))
		return fail("read failed", argv[1]);
	ckpt_hash_free(h);
	close(fd);
	ckpt_hex(d, sizeof(d), hex);
	printf("%s  %s\n", hex, argv[1]);
	return 0;
}

/*
 * hold-lock STORE SECONDS: takes the store lock, says "locked" on stdout,
 * holds it for SECONDS (or until killed: kill -9 leaves a stale lock).
 */
static int
cmd_hold_lock(int argc, char **argv)
{
	struct ckpt_store *s;
	struct ckpt_error err;
	long secs, lease = 0;
	char *end;

	/* --lease N: an s3:// store's lock with a lease of N seconds. */
	if (argc == 5 && !strcmp(argv[1], "--lease")) {
		lease = strtol(argv[2], &end, 10);
		if (*end || lease <= 0)
			return fail("bad lease", argv[2]);
		argc -= 2;
		argv += 2;
	}
	if (argc != 3)
		return fail("usage: hold-lock [--lease N] STORE SECONDS",
		    NULL);
	secs = strtol(argv[2], &end, 10);
	if (*end || secs < 0)
		return fail("bad seconds", argv[2]);
	if (ckpt_store_open(argv[1], 0, &s, &err))
		return fail(err.message, argv[1]);
	if (lease)
		ckpt_store_s3_set_lease(s, (unsigned)lease);
	if (ckpt_store_lock(s, "test hold-lock", 0, NULL, &err))
		return fail(err.message, argv[1]);
	printf("locked\n");
	fflush(stdout);
	sleep((unsigned int)secs);
	ckpt_store_unlock(s);
	ckpt_store_free(s);
	return 0;
}

static int
open_file(int argc, char **argv, struct ckpt_file **f)
{
	struct ckpt_error err;
	unsigned flags = 0;
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--crc")) {
		flags |= CKPT_OPEN_CHECK_CRC;
		i++;
	}
	if (i != argc - 1)
		return fail("usage: <command> [--crc] FILE", NULL);
	if (ckpt_file_open(argv[i], flags, f, &err)) {
		printf("error %s offset %lld: %s\n", ckpt_strerror(err.code),
		    (long long)err.offset, err.message);
		return 1;
	}
	return 0;
}

static int
cmd_tensors(int argc, char **argv)
{
	struct ckpt_file *f;
	unsigned char *buf = NULL;
	int rc = 0;

	if (open_file(argc, argv, &f))
		return 1;
	for (size_t i = 0; i < ckpt_file_tensor_count(f) && !rc; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);
		unsigned char d[CKPT_SHA256_BYTES];
		char hex[CKPT_HASH_HEX_MAX];
		uint64_t esize = ckpt_dtype_bits(t->dtype) / 8, chunk;
		struct ckpt_error err;
		struct ckpt_hash *h;

		printf("%s\t%s\t[", t->name, ckpt_dtype_name(t->dtype));
		for (unsigned k = 0; k < t->ndim; k++)
			printf("%s%llu", k ? "," : "",
			    (unsigned long long)t->shape[k]);
		printf("]\t");
		if (!esize || ckpt_hash_new(CKPT_HASH_SHA256, &h, NULL)) {
			printf("-\n");
			continue;
		}
		chunk = (1 << 20) / esize;
		free(buf);
		buf = malloc((size_t)(chunk * esize));
		for (uint64_t e = 0; e < t->numel && buf;) {
			uint64_t n = t->numel - e < chunk ? t->numel - e :
			    chunk;

			if (ckpt_tensor_read(f, t, e, n, buf, &err)) {
				printf("error: %s", err.message);
				rc = 1;
				break;
			}
			ckpt_hash_update(h, buf, (size_t)(n * esize));
			e += n;
		}
		if (ckpt_hash_final(h, d, NULL)) {
			printf("error: hash");
			rc = 1;
		}
		ckpt_hash_free(h);
		ckpt_hex(d, sizeof(d), hex);
		printf("%s\n", rc ? "" : hex);
	}
	free(buf);
	ckpt_file_free(f);
	return rc;
}

static int
cmd_findings(int argc, char **argv)
{
	static const char *const sev[] = { "info", "warning", "error" };
	struct ckpt_file *f;

	if (open_file(argc, argv, &f))
		return 1;
	printf("format %s\n", ckpt_format_name(ckpt_file_format(f)));
	for (size_t i = 0; i < ckpt_file_finding_count(f); i++) {
		const struct ckpt_finding *x = ckpt_file_finding(f, i);

		printf("%s %s %lld %s: %s\n", x->id, sev[x->severity],
		    (long long)x->offset, x->subject ? x->subject : "-",
		    x->message);
	}
	ckpt_file_free(f);
	return 0;
}

static int
cmd_metadata(int argc, char **argv)
{
	struct ckpt_file *f;
	const char *j;

	if (open_file(argc, argv, &f))
		return 1;
	j = ckpt_file_metadata_json(f);
	printf("%s\n", j ? j : "null");
	ckpt_file_free(f);
	return 0;
}

static int
cmd_globals(int argc, char **argv)
{
	struct ckpt_file *f;

	if (open_file(argc, argv, &f))
		return 1;
	for (size_t i = 0; i < ckpt_file_global_count(f); i++) {
		bool ok;
		const char *g = ckpt_file_global(f, i, &ok);

		printf("%s %s\n", g, ok ? "allowed" : "not-allowed");
	}
	ckpt_file_free(f);
	return 0;
}

static int
put(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		if (fd >= 0)
			close(fd);
		return fail(strerror(errno), path);
	}
	return close(fd) ? fail(strerror(errno), path) : 0;
}

static void
sha256_hex(const void *data, size_t len, char *hex)
{
	unsigned char d[CKPT_SHA256_BYTES];
	struct ckpt_hash *h;

	if (ckpt_hash_new(CKPT_HASH_SHA256, &h, NULL)) {
		fprintf(stderr, "ckpt-test-tool: out of memory\n");
		exit(3);
	}
	ckpt_hash_update(h, data, len);
	if (ckpt_hash_final(h, d, NULL)) {
		fprintf(stderr, "ckpt-test-tool: SHA-256 failed\n");
		exit(3);
	}
	ckpt_hash_free(h);
	ckpt_hex(d, sizeof(d), hex);
}

/* One checkpoint laid out as tests/helper/mk-store.py writes it. */
static int
mk_checkpoint(const char *store, const char *run, unsigned long long step)
{
	char dir[4096], path[4200], data[512], summary[1024], manifest[4096];
	char hd[CKPT_HASH_HEX_MAX], hs[CKPT_HASH_HEX_MAX];
	size_t dlen = 0;
	int n, ns;

	snprintf(dir, sizeof(dir), "%s/runs/%s/step-%llu", store, run, step);
	if (mkdir(dir, 0777) && errno != EEXIST)
		return fail(strerror(errno), dir);
	for (int i = 0; i < 8; i++)
		dlen += (size_t)snprintf(data + dlen, sizeof(data) - dlen,
		    "%s@%llu\n", run, step);
	snprintf(path, sizeof(path), "%s/weights.bin", dir);
	if (put(path, data, dlen))
		return 1;
	ns = snprintf(summary, sizeof(summary), "{\n"
	    "  \"created\": \"2026-01-01T00:00:00Z\",\n"
	    "  \"epoch\": null,\n"
	    "  \"metrics\": {\n    \"loss\": %.17g\n  },\n"
	    "  \"nfiles\": 1,\n  \"run\": \"%s\",\n  \"schema\": 1,\n"
	    "  \"scope\": \"full\",\n  \"size\": %zu,\n"
	    "  \"step\": %llu,\n  \"tags\": [],\n"
	    "  \"validation\": {\n    \"result\": \"ok\"\n  }\n}\n",
	    1.0 / (double)(step + 1), run, dlen, step);
	snprintf(path, sizeof(path), "%s/ckpt-summary.json", dir);
	if (put(path, summary, (size_t)ns))
		return 1;
	sha256_hex(data, dlen, hd);
	sha256_hex(summary, (size_t)ns, hs);
	n = snprintf(manifest, sizeof(manifest), "{\n"
	    "  \"ckpt_version\": \"0.1.0\",\n"
	    "  \"created\": \"2026-01-01T00:00:00Z\",\n"
	    "  \"epoch\": null,\n  \"files\": [\n"
	    "    {\"format\": \"json\", \"path\": \"ckpt-summary.json\", "
	    "\"sha256\": \"sha256:%s\", \"size\": %d},\n"
	    "    {\"chunk_size\": 67108864, \"chunks\": [{\"offset\": 0, "
	    "\"sha256\": \"sha256:%s\", \"size\": %zu}], \"format\": "
	    "\"unknown\", \"path\": \"weights.bin\", \"sha256\": "
	    "\"sha256:%s\", \"size\": %zu}\n  ],\n"
	    "  \"host\": \"test\",\n"
	    "  \"metrics\": {\n    \"loss\": %.17g\n  },\n"
	    "  \"run\": \"%s\",\n  \"schema\": 1,\n"
	    "  \"scope\": \"full\",\n  \"step\": %llu,\n"
	    "  \"tags\": [],\n  \"user\": \"test\",\n"
	    "  \"validation\": {\n    \"result\": \"ok\"\n  }\n}\n",
	    hs, ns, hd, dlen, hd, dlen, 1.0 / (double)(step + 1), run, step);
	snprintf(path, sizeof(path), "%s/ckpt-manifest.json", dir);
	return put(path, manifest, (size_t)n);
}

/*
 * mkstore STORE RUN FIRST N: a store (created when missing) with N more
 * committed checkpoints of RUN, steps FIRST to FIRST + N - 1, written
 * directly (no commit protocol) for the listing tests and benchmarks at
 * 100,000 checkpoints.
 */
static int
cmd_mkstore(int argc, char **argv)
{
	static const char *const dirs[] = { "", "/.ckpt", "/.ckpt/pins",
		"/.ckpt/trash", "/runs" };
	unsigned long long first, count;
	char path[4096];
	struct stat st;

	if (argc != 5 || parse_num(argv[3], &first) ||
	    parse_num(argv[4], &count))
		return fail("usage: mkstore STORE RUN FIRST N", NULL);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", argv[1], dirs[i]);
		if (mkdir(path, 0777) && errno != EEXIST)
			return fail(strerror(errno), path);
	}
	snprintf(path, sizeof(path), "%s/.ckpt/store.json", argv[1]);
	if (stat(path, &st) && put(path, "{\n  \"schema\": 1\n}\n", 18))
		return 1;
	snprintf(path, sizeof(path), "%s/runs/%s", argv[1], argv[2]);
	if (mkdir(path, 0777) && errno != EEXIST)
		return fail(strerror(errno), path);
	for (unsigned long long i = 0; i < count; i++)
		if (mk_checkpoint(argv[1], argv[2], first + i))
			return 1;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} cmds[] = {
	{ "mkstore", cmd_mkstore },
	{ "findings", cmd_findings },
	{ "globals", cmd_globals },
	{ "metadata", cmd_metadata },
	{ "tensors", cmd_tensors },
	{ "fill", cmd_fill },
	{ "flip", cmd_flip },
	{ "hold-lock", cmd_hold_lock },
	{ "s3", cmd_s3 },
	{ "sha256", cmd_sha256 },
	{ "truncate", cmd_truncate },
};

int
main(int argc, char **argv)
{
	if (argc < 2)
		return fail("usage: ckpt-test-tool <command> [<args>]", NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	return fail("unknown command", argv[1]);
}
