/* SPDX-License-Identifier: MIT */
/*
 * fuzz-manifest.c - the manifest reader (ckpt_manifest_read) on arbitrary
 * bytes, then every accessor: files, their tensors, chunk and range
 * digests (schema 1 and 2).
 */
#include "fuzz.h"

static volatile size_t sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "metrics", "config", "git",
	    "files", "" };
	const char *path = fuzz_write("ckpt-manifest.json", data, size);
	struct ckpt_manifest *m;
	struct ckpt_error err;
	size_t n;

	if (ckpt_manifest_read(path, &m, &err)) {
		sink += fuzz_touch(err.message);
		return 0;
	}
	sink += fuzz_touch(ckpt_manifest_dir(m)) +
	    fuzz_touch(ckpt_manifest_run(m)) +
	    fuzz_touch(ckpt_manifest_digest(m)) +
	    fuzz_touch(ckpt_manifest_json(m)) +
	    (size_t)ckpt_manifest_schema(m) + (size_t)ckpt_manifest_step(m);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *s = ckpt_manifest_get_json(m, keys[i]);

		sink += fuzz_touch(s);
		free(s);
	}
	n = ckpt_manifest_file_count(m);
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_manifest_file *mf = ckpt_manifest_file(m, i);

		sink += fuzz_touch(mf->path) + fuzz_touch(mf->format) +
		    mf->size + mf->sha256[31];
		for (size_t j = 0; j < mf->nchunks; j++)
			sink += mf->chunks[j].offset;
		/* Schema 2's ranges partition the file: checked on reading. */
		for (size_t j = 0; j < mf->nranges; j++)
			if (mf->ranges[j].offset != (j ? mf->ranges[j - 1].end :
			    0) || mf->ranges[j].end <= mf->ranges[j].offset)
				abort();
		if (mf->nranges && mf->ranges[mf->nranges - 1].end != mf->size)
			abort();
		for (size_t j = 0; j < mf->ntensors; j++) {
			const struct ckpt_manifest_tensor *t = &mf->tensors[j];

			sink += fuzz_touch(t->name) + fuzz_touch(t->dtype) +
			    t->bytes.end + (t->has_content_sha256 ?
			    t->content_sha256[31] : 0);
			for (unsigned int d = 0; d < t->ndim; d++)
				sink += t->shape[d];
		}
		if (!ckpt_manifest_find_file(m, mf->path))
			abort();
	}
	ckpt_manifest_free(m);
	return 0;
}
