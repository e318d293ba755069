/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - shared by the fuzz harnesses (tests/fuzz/fuzz-*.c).  Each one
 * defines LLVMFuzzerTestOneInput(); it is linked either with libFuzzer
 * (make fuzz: clang -fsanitize=fuzzer) or with replay.c, a main() that
 * feeds it the files of the seed corpus and of tests/fuzz/regress/ so that
 * "make check" replays them under the plain and the ASan builds.
 *
 * libckpt's parsers take paths, so inputs are written to a file first: in
 * one private directory per process, under /dev/shm when it exists.
 */
#ifndef CKPT_FUZZ_H
#define CKPT_FUZZ_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt.h>
#include <ckpt-cli.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[PATH_MAX];

static inline void
fuzz_cleanup(void)
{
	char cmd[PATH_MAX + 16];

	if (!fuzz_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir);
	if (system(cmd))
		fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

/*
 * Writes data to <private dir>/name and returns the path (static buffer).
 * Aborts on failure: a harness that cannot write its input tests nothing.
 */
static inline const char *
fuzz_write(const char *name, const uint8_t *data, size_t size)
{
	static char path[PATH_MAX + 64];
	const char *base = access("/dev/shm", W_OK) ? getenv("TMPDIR") :
	    "/dev/shm";
	size_t off = 0;
	int fd, n;

	if (!fuzz_dir[0]) {
		n = snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/ckpt-fuzz.XXXXXX",
		    base && *base ? base : "/tmp");
		if (n < 0 || (size_t)n >= sizeof(fuzz_dir) || !mkdtemp(fuzz_dir))
			abort();
		atexit(fuzz_cleanup);
	}
	n = snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		abort();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1)
		abort();
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);

		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	if (close(fd))
		abort();
	return path;
}

/* Touches every byte of a string so that ASan sees a bad pointer. */
static inline size_t
fuzz_touch(const char *s)
{
	return s ? strlen(s) : 0;
}

#endif /* CKPT_FUZZ_H */
