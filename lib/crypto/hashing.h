/* SPDX-License-Identifier: MIT */
/*
 * hashing.h - what the hashing engine (hashing.c) offers inside the
 * library beyond ckpt_hash_files(): a look at the bytes it reads, so that
 * a caller with work on the same bytes (verify --numerics) rides on the
 * engine's one read instead of reading the file a second time.
 */
#ifndef CKPT_CRYPTO_HASHING_H
#define CKPT_CRYPTO_HASHING_H

#include "util/internal.h"

/*
 * Shown the n bytes at data of range `range` (an index into
 * jobs[job].ranges) as the engine digests them.  Every byte of a range is
 * shown exactly once and in order, in pieces of any length (a piece ends
 * where the engine's step does, on no element boundary); one range is
 * shown by one thread at a time, different ranges by several at once.
 * Ranges identical to an earlier one of the same job are hashed once and
 * shown under the lowest index only.  Whole-file passes are not shown.
 */
typedef void (*ckpt_hash_observe_fn)(void *arg, size_t job, size_t range,
    const unsigned char *data, size_t n);

/* ckpt_hash_files() calling observe(oarg, ...) for the ranges' bytes. */
int ckpt_hash_files_observed(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    ckpt_hash_observe_fn observe, void *oarg, struct ckpt_error *err);

#endif /* CKPT_CRYPTO_HASHING_H */
