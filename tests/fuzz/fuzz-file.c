/* SPDX-License-Identifier: MIT */
/*
 * fuzz-file.c - ckpt_file_open() on arbitrary bytes: the sniffer and every
 * reader behind it (safetensors, torch zip and its pickle, legacy pickles,
 * DCP metadata, index JSON, ...), then every accessor of the result and a
 * read of the first elements of each tensor, which exercises the offsets,
 * shapes and strides the reader accepted.  Inputs whose last byte is odd
 * are opened with an allow list (struct ckpt_open_options).
 */
#include "fuzz.h"

static volatile size_t sink;

static void
walk(const struct ckpt_file *f)
{
	unsigned char buf[4096];
	struct ckpt_error err;
	size_t n;

	sink += fuzz_touch(ckpt_format_name(ckpt_file_format(f)));
	sink += fuzz_touch(ckpt_file_path(f));
	sink += ckpt_file_size(f);
	sink += fuzz_touch(ckpt_file_metadata_json(f));
	n = ckpt_file_global_count(f);
	for (size_t i = 0; i < n; i++) {
		bool allowed;

		sink += fuzz_touch(ckpt_file_global(f, i, &allowed));
	}
	n = ckpt_file_finding_count(f);
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_finding *fd = ckpt_file_finding(f, i);

		sink += fuzz_touch(fd->id) + fuzz_touch(fd->path) +
		    fuzz_touch(fd->subject) + fuzz_touch(fd->message);
	}
	n = ckpt_file_tensor_count(f);
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);
		uint64_t want;

		sink += fuzz_touch(t->name) + fuzz_touch(t->storage) +
		    fuzz_touch(t->kind) + fuzz_touch(ckpt_dtype_name(t->dtype));
		for (unsigned int d = 0; d < t->ndim; d++)
			sink += t->shape[d] + (t->strides ?
			    (uint64_t)t->strides[d] : 0);
		/* At most 16 elements of at most 128 bits each. */
		want = t->numel < 16 ? t->numel : 16;
		if (want && !ckpt_tensor_read(f, t, 0, want, buf, &err))
			sink += buf[0];
		if (t->numel > want &&
		    !ckpt_tensor_read(f, t, t->numel - want, want, buf, &err))
			sink += buf[0];
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Half the inputs with an allow list, so that the readers' paths
	 * for admitted classes and enum members (getattr) are fuzzed too. */
	static const char *const allow[] = { "__main__.*", "a.B",
		"transformers.training_args.*", "collections.*" };
	struct ckpt_open_options o = {
	    .version = CKPT_OPEN_OPTIONS_VERSION, .flags = CKPT_OPEN_CHECK_CRC };
	const char *path = fuzz_write("input", data, size);
	struct ckpt_error err;
	struct ckpt_file *f;

	if (size && (data[size - 1] & 1)) {
		o.allow_globals = allow;
		o.nallow_globals = sizeof(allow) / sizeof(allow[0]);
	}
	if (!ckpt_file_open_ex(path, &o, &f, &err)) {
		walk(f);
		ckpt_file_free(f);
	} else {
		sink += fuzz_touch(err.message);
	}
	return 0;
}
