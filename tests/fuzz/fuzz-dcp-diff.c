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
#include "fuzz.h"

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
		    fuzz_touch(t->error) + fuzz_touch(t->layout_a);
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

	snprintf(a, sizeof(a), "%s", write_dcp("a", data, size, false));
	run(a, a, true);
	run(a, write_dcp("b", data, size, true), false);
	return 0;
}
