/* SPDX-License-Identifier: MIT */
/*
 * fuzz-s3listix.c - the reader of a run's listing index in a store on S3
 * (lib/store/s3listix.c): an object anyone with write access to the
 * bucket can change, which ls must reject when it is truncated, damaged
 * or of another version, and believe entry by entry only when each
 * summary matches its recorded SHA-256.
 */
#include "fuzz.h"

#include "store/s3listix.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)ckpt_s3_listix_check(data, size);
	return 0;
}
