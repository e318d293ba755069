/* SPDX-License-Identifier: MIT */
/*
 * kernels.h - the numeric kernels behind inspect --stats, verify
 * --numerics and diff (kernels.c): block decoding and one-block
 * reductions, with a portable path and an AVX2 path chosen at run time.
 */
#ifndef CKPT_KERNELS_H
#define CKPT_KERNELS_H

#include "util/internal.h"

/* Values per block: a block of doubles (8 KiB) stays in L1. */
#define CKPT_KBLOCK 1024

/*
 * Statistics of n <= CKPT_KBLOCK values into *out (initialised here):
 * counts, min, max, mean and m2 of the finite values.
 */
void ckpt_kstats_block(const double *v, size_t n,
    struct ckpt_tensor_stats *out);

/*
 * The same for n <= CKPT_KBLOCK F32 values read straight from their
 * little-endian bytes, without decoding them to a block of doubles: the
 * numbers equal ckpt_kstats_block's on the decoded values, to the bit.
 * False (out untouched) where the host cannot load them directly (big-
 * endian): the caller decodes.
 */
bool ckpt_kstats_f32_block(const void *src, size_t n,
    struct ckpt_tensor_stats *out);

/*
 * A pairwise merge tree of block results: partial results of equal
 * weight are merged first (as pairwise summation adds), so that the
 * rounding error grows with log2(blocks), not with their number.
 */
struct ckpt_kstats_tree {
	struct ckpt_tensor_stats s[64];
	unsigned int level[64];
	unsigned int depth;
};
void ckpt_kstats_tree_init(struct ckpt_kstats_tree *tr);
void ckpt_kstats_tree_push(struct ckpt_kstats_tree *tr,
    const struct ckpt_tensor_stats *blk);
/* Merges the tree into *st. */
void ckpt_kstats_tree_fold(struct ckpt_kstats_tree *tr,
    struct ckpt_tensor_stats *st);

/* Comparison of n <= CKPT_KBLOCK value pairs, added into *acc (whose
 * sums carry Neumaier compensation in comp[]). */
struct ckpt_kcmp_acc {
	struct ckpt_compare_stats st;
	double comp[5];		/* sum_abs, sum_sq, sum_a2, sum_b2, sum_ab */
};
void ckpt_kcmp_acc_init(struct ckpt_kcmp_acc *acc);
void ckpt_kcmp_block(const double *a, const double *b, size_t n,
    const struct ckpt_compare_options *o, struct ckpt_kcmp_acc *acc);
/* The compensated sums folded into acc->st. */
void ckpt_kcmp_acc_finish(struct ckpt_kcmp_acc *acc);

/*
 * Decodes n elements with the SIMD path when it is chosen and has one for
 * dt (F32, C64, BF16, F16, C32); false when the caller must decode.
 */
bool ckpt_kdecode_simd(enum ckpt_dtype dt, const void *src, size_t n,
    double *dst);
/* F16 (n halves, little-endian) by bit operations: exact, vectorisable. */
void ckpt_decode_f16_portable(const unsigned char *p, size_t n, double *d);

/*
 * Counts the values of n elements whose exponent bits are all ones (NaN
 * or infinite) for F32, F64, F16, BF16 and their complex forms; false
 * for other dtypes.
 */
bool ckpt_knonfinite_count(enum ckpt_dtype dt, const void *src, size_t n,
    size_t *count);
/*
 * Adds the NaN, +Inf and -Inf values of n elements to st's counts, from
 * their bits (any host byte order), for the dtypes ckpt_knonfinite_count
 * takes; false for others.  For the few blocks that count found values
 * in.
 */
bool ckpt_knonfinite_classify(enum ckpt_dtype dt, const void *src, size_t n,
    struct ckpt_tensor_stats *st);

/* "avx2" or "portable"; CKPT_NUMERIC_KERNEL=portable forces the latter. */
const char *ckpt_numeric_kernel(void);
/* Forgets the choice so that the environment is read again (tests). */
void ckpt_numeric_reset_kernel(void);

/*
 * Runs fn(ctx, i) for i in [0, n) on up to threads threads (0: online
 * CPUs), items taken in order from a shared counter, and returns when
 * every item is done.  The caller's thread works only with one thread,
 * or when fewer than two could be started (then with them, or alone).
 */
void ckpt_parallel_for(size_t n, unsigned int threads,
    void (*fn)(void *ctx, size_t i), void *ctx);
unsigned int ckpt_online_cpus(void);

#endif
