/* SPDX-License-Identifier: MIT */
/*
 * sha256.c - SHA-256 streams for the hashing engine, two at a time.
 *
 * A manifest needs two SHA-256 digests of most bytes: the file's, which
 * sha256sum can check, and the tensor's (or chunk's) that holds them.  One
 * SHA-NI stream is bound by the latency of the round instruction, so a core
 * has room for a second stream: compressing the blocks of two streams
 * interleaved costs about 1.35 times one stream, not 2 (bench/README.md).
 * libcrypto offers no such call, hence this file: the same instructions
 * OpenSSL uses, two streams per loop.
 *
 * Where the CPU lacks SHA-NI (or this is not x86-64), a stream is a
 * ckpt_hash, that is libcrypto, and update2 is two updates: the digests are
 * the same either way, and the unit tests compare the two paths on every
 * length and phase.  CKPT_SHA256_KERNEL=portable in the environment forces
 * the libcrypto path (tests, and a way out should a kernel ever misbehave);
 * CPPFLAGS=-DCKPT_NO_SHANI leaves the kernel out of the build.
 */
#include "util/internal.h"

#include "util/util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(CKPT_NO_SHANI)
#define HAVE_SHANI_KERNEL 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define BLOCK	64

#ifdef HAVE_SHANI_KERNEL
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

/* SHA-NI keeps the state as ABEF and CDGH; the spec's order is A..H. */
SHANI static inline void
state_load(const uint32_t h[8], __m128i *abef, __m128i *cdgh)
{
	__m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h),
	    0xB1);
	__m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)),
	    0x1B);

	*abef = _mm_alignr_epi8(t, u, 8);
	*cdgh = _mm_blend_epi16(u, t, 0xF0);
}

SHANI static inline void
state_store(uint32_t h[8], __m128i abef, __m128i cdgh)
{
	__m128i t = _mm_shuffle_epi32(abef, 0x1B);

	cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
	_mm_storeu_si128((__m128i *)h, _mm_blend_epi16(t, cdgh, 0xF0));
	_mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(cdgh, t, 8));
}

/*
 * Message words 4g..4g+3 of a block: loaded (big-endian) for g < 4, else
 * the schedule W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at
 * a time.
 */
#define SCHEDULE(W, p, g, bswap) ((g) < 4 ?				\
	_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (g))), \
	    bswap) :							\
	_mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(W[(g) - 4], \
	    W[(g) - 3]), _mm_alignr_epi8(W[(g) - 1], W[(g) - 2], 4)),	\
	    W[(g) - 1]))

/* Four rounds: the two halves of the state take turns. */
#define ROUNDS4(abef, cdgh, wk) do {					\
	(cdgh) = _mm_sha256rnds2_epu32((cdgh), (abef), (wk));		\
	(abef) = _mm_sha256rnds2_epu32((abef), (cdgh),			\
	    _mm_shuffle_epi32((wk), 0x0E));				\
} while (0)

SHANI static void
blocks1(uint32_t h[8], const unsigned char *p, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
	    0x0405060700010203ULL);
	__m128i abef, cdgh;

	state_load(h, &abef, &cdgh);
	for (; n; n--, p += BLOCK) {
		__m128i abef0 = abef, cdgh0 = cdgh, W[16];

#pragma GCC unroll 16
		for (int g = 0; g < 16; g++) {
			W[g] = SCHEDULE(W, p, g, bswap);
			ROUNDS4(abef, cdgh, _mm_add_epi32(W[g],
			    _mm_loadu_si128((const __m128i *)&K[4 * g])));
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}
	state_store(h, abef, cdgh);
}

/* Two streams, n blocks each, interleaved round by round. */
SHANI static void
blocks2(uint32_t ha[8], const unsigned char *pa, uint32_t hb[8],
    const unsigned char *pb, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
	    0x0405060700010203ULL);
	__m128i a_abef, a_cdgh, b_abef, b_cdgh;

	state_load(ha, &a_abef, &a_cdgh);
	state_load(hb, &b_abef, &b_cdgh);
	for (; n; n--, pa += BLOCK, pb += BLOCK) {
		__m128i a_abef0 = a_abef, a_cdgh0 = a_cdgh;
		__m128i b_abef0 = b_abef, b_cdgh0 = b_cdgh;
		__m128i WA[16], WB[16];

#pragma GCC unroll 16
		for (int g = 0; g < 16; g++) {
			__m128i k = _mm_loadu_si128((const __m128i *)&K[4 * g]);

			WA[g] = SCHEDULE(WA, pa, g, bswap);
			WB[g] = SCHEDULE(WB, pb, g, bswap);
			ROUNDS4(a_abef, a_cdgh, _mm_add_epi32(WA[g], k));
			ROUNDS4(b_abef, b_cdgh, _mm_add_epi32(WB[g], k));
		}
		a_abef = _mm_add_epi32(a_abef, a_abef0);
		a_cdgh = _mm_add_epi32(a_cdgh, a_cdgh0);
		b_abef = _mm_add_epi32(b_abef, b_abef0);
		b_cdgh = _mm_add_epi32(b_cdgh, b_cdgh0);
	}
	state_store(ha, a_abef, a_cdgh);
	state_store(hb, b_abef, b_cdgh);
}

static bool
cpu_has_shani(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) ||
	    !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b & bit_SHA) != 0;
}
#endif /* HAVE_SHANI_KERNEL */

static const uint32_t IV[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static int kernel_state;	/* 0: not decided; 1: SHA-NI; 2: portable */

#ifndef HAVE_SHANI_KERNEL
#define cpu_has_shani NULL
#endif

static bool
use_kernel(void)
{
	return ckpt_cpu_kernel_pick(&kernel_state, "CKPT_SHA256_KERNEL",
	    cpu_has_shani);
}

const char *
ckpt_sha256_kernel(void)
{
	return use_kernel() ? "sha-ni x2" : ckpt_hash_backend();
}

void
ckpt_sha256_reset_kernel(void)
{
	__atomic_store_n(&kernel_state, 0, __ATOMIC_RELAXED);
}

int
ckpt_sha256_init(struct ckpt_sha256 *s, struct ckpt_error *err)
{
	memset(s, 0, sizeof(*s));
	if (use_kernel()) {
		memcpy(s->h, IV, sizeof(IV));
		return CKPT_OK;
	}
	return ckpt_hash_new(CKPT_HASH_SHA256, &s->lib, err);
}

void
ckpt_sha256_release(struct ckpt_sha256 *s)
{
	ckpt_hash_free(s->lib);
	s->lib = NULL;
}

#ifdef HAVE_SHANI_KERNEL
/* Completes a partly filled block from p; returns the bytes it took. */
static size_t
top_up(struct ckpt_sha256 *s, const unsigned char *p, size_t n)
{
	size_t k;

	if (!s->fill)
		return 0;
	k = BLOCK - s->fill < n ? BLOCK - s->fill : n;
	memcpy(s->block + s->fill, p, k);
	s->fill += k;
	if (s->fill == BLOCK) {
		blocks1(s->h, s->block, 1);
		s->fill = 0;
	}
	return k;
}

/* Whole blocks, then the tail into the block buffer (which is empty). */
static void
absorb(struct ckpt_sha256 *s, const unsigned char *p, size_t n)
{
	size_t nb = n / BLOCK;

	if (nb)
		blocks1(s->h, p, nb);
	memcpy(s->block, p + nb * BLOCK, n - nb * BLOCK);
	s->fill = n - nb * BLOCK;
}
#endif

void
ckpt_sha256_update(struct ckpt_sha256 *s, const void *data, size_t n)
{
	if (s->lib) {
		ckpt_hash_update(s->lib, data, n);
		return;
	}
#ifdef HAVE_SHANI_KERNEL
	const unsigned char *p = data;
	size_t k = top_up(s, p, n);

	if (k < n)
		absorb(s, p + k, n - k);
	s->len += n;
#endif
}

void
ckpt_sha256_update2(struct ckpt_sha256 *a, const void *da,
    struct ckpt_sha256 *b, const void *db, size_t n)
{
#ifdef HAVE_SHANI_KERNEL
	const unsigned char *pa = da, *pb = db;
	size_t ia, ib, m;

	if (a->lib || b->lib || a == b) {
		ckpt_sha256_update(a, da, n);
		if (a != b)
			ckpt_sha256_update(b, db, n);
		return;
	}
	/* The two streams may sit at different offsets within a block. */
	ia = top_up(a, pa, n);
	ib = top_up(b, pb, n);
	m = (n - ia) / BLOCK < (n - ib) / BLOCK ? (n - ia) / BLOCK :
	    (n - ib) / BLOCK;
	if (m) {
		blocks2(a->h, pa + ia, b->h, pb + ib, m);
		ia += m * BLOCK;
		ib += m * BLOCK;
	}
	if (ia < n)
		absorb(a, pa + ia, n - ia);
	if (ib < n)
		absorb(b, pb + ib, n - ib);
	a->len += n;
	b->len += n;
#else
	ckpt_sha256_update(a, da, n);
	if (a != b)
		ckpt_sha256_update(b, db, n);
#endif
}

int
ckpt_sha256_final(struct ckpt_sha256 *s, unsigned char out[CKPT_SHA256_BYTES],
    struct ckpt_error *err)
{
	if (s->lib) {
		int rc = ckpt_hash_final(s->lib, out, err);

		ckpt_sha256_release(s);
		return rc;
	}
#ifdef HAVE_SHANI_KERNEL
	unsigned char pad[2 * BLOCK];
	uint64_t bits = s->len * 8;
	size_t npad = (s->fill < 56 ? 56 : 120) - s->fill;

	memset(pad, 0, sizeof(pad));
	pad[0] = 0x80;
	for (int i = 0; i < 8; i++)
		pad[npad + i] = (unsigned char)(bits >> (56 - 8 * i));
	ckpt_sha256_update(s, pad, npad + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(s->h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
		out[4 * i + 3] = (unsigned char)s->h[i];
	}
	return CKPT_OK;
#else
	return ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL, -1,
	    "SHA-256 stream without a backend");
#endif
}
