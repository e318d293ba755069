/* SPDX-License-Identifier: MIT */
/*
 * hashbench.c - hashes files through libckpt's hash interface
 * (ckpt_hash_new/update/final), single-threaded, and prints the digests the
 * way sha256sum and b2sum do, so the benchmark can check that ckpt and its
 * peers agree before it trusts their timings.  Reads with read(2) into one
 * 1 MiB buffer: the figure is the hash's throughput, not an I/O strategy.
 *
 *   hashbench [-a sha256|blake2b] [-b] FILE...
 *   -b prints the SHA-256 backend ("openssl" or "libsodium") and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt.h>

#define BUFSZ (1u << 20)

static int
hash_file(enum ckpt_hash_algo algo, const char *path, unsigned char *buf)
{
	unsigned char digest[CKPT_HASH_MAX_BYTES];
	char hex[CKPT_HASH_HEX_MAX];
	struct ckpt_error err;
	struct ckpt_hash *h;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1) {
		fprintf(stderr, "hashbench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (ckpt_hash_new(algo, &h, &err)) {
		fprintf(stderr, "hashbench: %s\n", err.message);
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, BUFSZ)) > 0)
		ckpt_hash_update(h, buf, (size_t)n);
	if (n < 0) {
		fprintf(stderr, "hashbench: %s: %s\n", path, strerror(errno));
		ckpt_hash_free(h);
		close(fd);
		return -1;
	}
	close(fd);
	if (ckpt_hash_final(h, digest, &err)) {
		fprintf(stderr, "hashbench: %s\n", err.message);
		ckpt_hash_free(h);
		return -1;
	}
	ckpt_hash_free(h);
	ckpt_hex(digest, ckpt_hash_size(algo), hex);
	printf("%s  %s\n", hex, path);
	return 0;
}

int
main(int argc, char **argv)
{
	enum ckpt_hash_algo algo = CKPT_HASH_SHA256;
	unsigned char *buf;
	int c, status = 0;

	while ((c = getopt(argc, argv, "a:b")) != -1) {
		switch (c) {
		case 'a':
			if (!strcmp(optarg, "sha256"))
				algo = CKPT_HASH_SHA256;
			else if (!strcmp(optarg, "blake2b"))
				algo = CKPT_HASH_BLAKE2B;
			else
				goto usage;
			break;
		case 'b':
			printf("%s\n", ckpt_hash_backend());
			return 0;
		default:
			goto usage;
		}
	}
	if (optind >= argc)
		goto usage;
	if (!(buf = malloc(BUFSZ))) {
		fprintf(stderr, "hashbench: out of memory\n");
		return 3;
	}
	for (int i = optind; i < argc; i++)
		if (hash_file(algo, argv[i], buf))
			status = 3;
	free(buf);
	return status;
usage:
	fprintf(stderr, "usage: hashbench [-a sha256|blake2b] [-b] FILE...\n");
	return 2;
}
