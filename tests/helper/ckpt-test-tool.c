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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt.h>

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
	long secs;
	char *end;

	if (argc != 3)
		return fail("usage: hold-lock STORE SECONDS", NULL);
	secs = strtol(argv[2], &end, 10);
	if (*end || secs < 0)
		return fail("bad seconds", argv[2]);
	if (ckpt_store_open(argv[1], 0, &s, &err) ||
	    ckpt_store_lock(s, "test hold-lock", 0, NULL, &err))
		return fail(err.message, argv[1]);
	printf("locked\n");
	fflush(stdout);
	sleep((unsigned int)secs);
	ckpt_store_unlock(s);
	ckpt_store_free(s);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} cmds[] = {
	{ "fill", cmd_fill },
	{ "flip", cmd_flip },
	{ "hold-lock", cmd_hold_lock },
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
