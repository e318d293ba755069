/* SPDX-License-Identifier: MIT */
/*
 * diffcheck.h - what fuzz-diff and fuzz-dcp-diff check of one ckpt_diff()
 * run: a checkpoint against itself must find every readable common
 * tensor identical and no metadata different (abort() otherwise); every
 * string of the result is read, so that ASan sees a bad one.
 */
#ifndef CKPT_FUZZ_DIFFCHECK_H
#define CKPT_FUZZ_DIFFCHECK_H

#include "fuzz.h"

/* Diffs a against b (same: they are one checkpoint); returns a sum of
 * what it read, for the caller's sink. */
static inline size_t
fuzz_diff_check(const char *a, const char *b, bool same)
{
	struct ckpt_diff_options o = CKPT_DIFF_OPTIONS_INIT;
	struct ckpt_error err;
	struct ckpt_diff *d;
	size_t sum = 0;

	o.cmp.equal_nan = true;
	o.threads = 2;
	if (ckpt_diff(a, b, &o, &d, &err))
		return fuzz_touch(err.message);
	for (size_t i = 0; i < d->ntensors; i++) {
		const struct ckpt_diff_tensor *t = &d->tensors[i];

		sum += t->st.count + fuzz_touch(t->note) +
		    fuzz_touch(t->error) + fuzz_touch(t->layout_a);
		if (same && (t->where != CKPT_DIFF_COMMON ||
		    (t->compared && !t->identical)))
			abort();
	}
	for (size_t i = 0; i < d->nmeta; i++)
		sum += fuzz_touch(d->meta[i].path) + fuzz_touch(d->meta[i].a) +
		    fuzz_touch(d->meta[i].b);
	if (same && d->nmeta)
		abort();
	ckpt_diff_free(d);
	return sum;
}

#endif /* CKPT_FUZZ_DIFFCHECK_H */
