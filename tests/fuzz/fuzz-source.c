/* SPDX-License-Identifier: MIT */
/*
 * fuzz-source.c - the readers through a byte source (struct ckpt_source,
 * lib/format/file.c), as for an object in S3: arbitrary bytes behind a
 * memory pread, with a read-ahead and a prefetched head both taken from
 * the input's last two bytes (1 to 256 bytes, 0 to 255 bytes), so that
 * the block cache's boundaries, its misses, read-ahead growth and reads
 * straight past it meet every reader's access pattern.  Then every
 * tensor's first and last elements.
 */
#include "fuzz.h"

#include "format/file.h"

static volatile size_t sink;

struct mem {
	const uint8_t *data;
	size_t size;
};

static int
mem_pread(void *arg, void *buf, size_t len, uint64_t off,
    struct ckpt_error *err)
{
	const struct mem *m = arg;

	/* The file asks only for what lies inside the object. */
	if (off > m->size || len > m->size - off)
		abort();
	(void)err;
	memcpy(buf, m->data + off, len);
	return CKPT_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { data, size };
	struct ckpt_source src = { .pread = mem_pread, .arg = &m,
	    .size = size };
	struct ckpt_open_options o = { .flags = CKPT_OPEN_CHECK_CRC };
	unsigned char buf[4096];
	struct ckpt_error err;
	struct ckpt_file *f;
	size_t head = 0;

	if (size >= 2) {
		src.readahead = (size_t)data[size - 1] + 1;
		head = data[size - 2] < size ? data[size - 2] : size;
	}
	if (head) {
		src.head = malloc(head);
		if (!src.head)
			return 0;
		memcpy(src.head, data, head);
		src.head_len = head;
	}
	if (ckpt_file_open_source("s3://fuzz/input", &src, &o, &f, &err)) {
		sink += err.message[0];
		return 0;
	}
	for (size_t i = 0; i < ckpt_file_tensor_count(f); i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);
		uint64_t want = t->numel < 16 ? t->numel : 16;

		if (want && !ckpt_tensor_read(f, t, 0, want, buf, &err))
			sink += buf[0];
		if (t->numel > want && !ckpt_tensor_read(f, t,
		    t->numel - want, want, buf, &err))
			sink += buf[0];
	}
	sink += ckpt_file_finding_count(f) + ckpt_file_global_count(f);
	ckpt_file_free(f);
	return 0;
}
