/* SPDX-License-Identifier: MIT */
/*
 * fuzz-dcp-diff.c - ckpt_diff() on distributed checkpoints (DCP) made of
 * arbitrary bytes: the .metadata pickle, its chunk boxes and storage
 * entries, and the torch.save archives in the .distcp shards, through
 * the assembly of logical tensors from chunks (checkpoint/dcptensor.c),
 * and the bytes items (non-tensor values), read as object trees for the
 * pickle metadata diff.
 *
 * Input: u16 LE length of .metadata, .metadata, u16 LE length of
 * __0_0.distcp, __0_0.distcp, then __1_0.distcp (the rest).  The
 * directory is compared with itself (every readable common tensor must be
 * identical and no metadata may differ: abort() otherwise) and with a
 * copy whose shard has one byte changed.
 */
#include "diffcheck.h"

#include <sys/stat.h>

static volatile size_t sink;

static size_t
take(const uint8_t **p, size_t *left)
{
	size_t n;

	if (*left < 2) {
		*left = 0;
		return 0;
	}
	n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
	*p += 2;
	*left -= 2;
	return n < *left ? n : *left;
}

/* Writes the three files into <private dir>/name/; returns that path. */
static const char *
write_dcp(const char *name, const uint8_t *data, size_t size, bool flip)
{
	static char dir[PATH_MAX + 64];
	char file[PATH_MAX + 128];
	const uint8_t *p = data;
	size_t left = size, n;
	uint8_t *copy = NULL;

	fuzz_write(".init", NULL, 0);	/* makes fuzz_dir */
	snprintf(dir, sizeof(dir), "%s/%s", fuzz_dir, name);
	mkdir(dir, 0700);
	n = take(&p, &left);
	snprintf(file, sizeof(file), "%s/.metadata", name);
	fuzz_write(file, p, n);
	p += n;
	left -= n;
	n = take(&p, &left);
	if (flip && n) {
		if (!(copy = malloc(n)))
			abort();
		memcpy(copy, p, n);
		copy[size % n] ^= 0x5a;
	}
	snprintf(file, sizeof(file), "%s/__0_0.distcp", name);
	fuzz_write(file, copy ? copy : p, n);
	free(copy);
	p += n;
	left -= n;
	snprintf(file, sizeof(file), "%s/__1_0.distcp", name);
	fuzz_write(file, p, left);
	return dir;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[PATH_MAX + 64];

	snprintf(a, sizeof(a), "%s", write_dcp("a", data, size, false));
	sink += fuzz_diff_check(a, a, true);
	sink += fuzz_diff_check(a, write_dcp("b", data, size, true), false);
	return 0;
}
