/* SPDX-License-Identifier: MIT */
/*
 * fuzz-diff.c - ckpt_diff() on arbitrary bytes: the input against itself,
 * which must find every readable common tensor identical (an invariant
 * checked here: abort() otherwise), and against a copy with one byte
 * changed, which runs the comparison kernels on whatever offsets, shapes,
 * strides and dtypes the readers accepted.
 */
#include "fuzz.h"

static volatile size_t sink;

static void
run(const char *a, const char *b, bool same)
{
	struct ckpt_diff_options o = CKPT_DIFF_OPTIONS_INIT;
	struct ckpt_error err;
	struct ckpt_diff *d;

	o.cmp.equal_nan = true;
	o.threads = 2;
	if (ckpt_diff(a, b, &o, &d, &err)) {
		sink += fuzz_touch(err.message);
		return;
	}
	for (size_t i = 0; i < d->ntensors; i++) {
		const struct ckpt_diff_tensor *t = &d->tensors[i];

		sink += t->st.count + fuzz_touch(t->note) +
		    fuzz_touch(t->error);
		if (same && (t->where != CKPT_DIFF_COMMON ||
		    (t->compared && !t->identical)))
			abort();
	}
	for (size_t i = 0; i < d->nmeta; i++)
		sink += fuzz_touch(d->meta[i].path) + fuzz_touch(d->meta[i].a) +
		    fuzz_touch(d->meta[i].b);
	if (same && d->nmeta)
		abort();
	ckpt_diff_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[PATH_MAX + 64];
	uint8_t *copy;

	snprintf(a, sizeof(a), "%s", fuzz_write("a", data, size));
	run(a, a, true);
	if (!size || !(copy = malloc(size)))
		return 0;
	memcpy(copy, data, size);
	copy[size - 1 - data[0] % size] ^= 0x5a;
	run(a, fuzz_write("b", copy, size), false);
	free(copy);
	return 0;
}
