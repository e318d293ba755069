/* SPDX-License-Identifier: MIT */
/*
 * fuzz-diff.c - ckpt_diff() on arbitrary bytes: the input against itself,
 * which must find every readable common tensor identical (an invariant
 * fuzz_diff_check() holds it to: abort() otherwise), and against a copy
 * with one byte changed, which runs the comparison kernels on whatever
 * offsets, shapes, strides and dtypes the readers accepted.
 */
#include "diffcheck.h"

static volatile size_t sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[PATH_MAX + 64];
	uint8_t *copy;

	snprintf(a, sizeof(a), "%s", fuzz_write("a", data, size));
	sink += fuzz_diff_check(a, a, true);
	if (!size || !(copy = malloc(size)))
		return 0;
	memcpy(copy, data, size);
	copy[size - 1 - data[0] % size] ^= 0x5a;
	sink += fuzz_diff_check(a, fuzz_write("b", copy, size), false);
	free(copy);
	return 0;
}
