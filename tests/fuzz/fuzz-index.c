/* SPDX-License-Identifier: MIT */
/*
 * fuzz-index.c - the reader of the listing cache (lib/store/index.c): a
 * file in the user's cache that ls, latest and prune --dry-run read and
 * must never trust when it is damaged.  The input's last 32 bytes are
 * replaced by the SHA-256 of the rest first, so that the fuzzer gets past
 * the digest into the records; the reader must then reject or decode
 * every record without reading out of bounds, and find each by name.
 */
#include "fuzz.h"

/* Internal to libckpt (lib/store/store.h), linked from libckpt.a. */
int ckpt_index_check(const void *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf = malloc(size ? size : 1);
	struct ckpt_hash *h;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (size >= CKPT_SHA256_BYTES &&
	    !ckpt_hash_new(CKPT_HASH_SHA256, &h, NULL)) {
		ckpt_hash_update(h, buf, size - CKPT_SHA256_BYTES);
		if (ckpt_hash_final(h, buf + size - CKPT_SHA256_BYTES, NULL))
			abort();
		ckpt_hash_free(h);
	}
	(void)ckpt_index_check(buf, size);
	free(buf);
	return 0;
}
