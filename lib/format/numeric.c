/* SPDX-License-Identifier: MIT */
/*
 * numeric.c - element decoding to double and tensor statistics.
 *
 * Every dtype libckpt reads decodes exactly to a double (all of them fit,
 * except 64-bit integers above 2^53, which round).  The 8-, 6- and 4-bit
 * float formats go through one minifloat decoder parameterised by exponent
 * and mantissa widths, bias and how the format spends its special values:
 *
 *   F16, F8_E5M2      IEEE: all-ones exponent is Inf (mantissa 0) or NaN
 *   F8_E4M3 (fn)      no Inf; NaN only at S.1111.111; max 448
 *   F8_E4M3FNUZ       bias 8, F8_E5M2FNUZ bias 16: no Inf, no -0, the one
 *                     NaN is 0x80
 *   F8_E8M0           2^(e-127), 0xFF is NaN, no zero and no sign
 *   F4 (E2M1), F6_E2M3, F6_E3M2   no Inf, no NaN (OCP MX formats)
 *
 * Packing of sub-byte types (element i of a run): F4 takes the low nibble
 * of byte i/2 for even i and the high nibble for odd i (torch's
 * float4_e2m1fn_x2 and the OCP MX order); F6 packs four elements into three
 * bytes read as a little-endian 24-bit word, element k in bits 6k..6k+5.
 *
 * Statistics run over values: complex elements contribute their real and
 * imaginary parts as two values.  min, max, mean and std cover the finite
 * values only; std is the population standard deviation (ddof = 0, as
 * numpy's default; torch.std defaults to ddof = 1).  The reductions are
 * the kernels of kernels.c (blocks of 1024 values, SIMD or portable, a
 * pairwise merge tree); this file reads tensors in chunks, decodes them a
 * block at a time (F32 and C64 need no decoding: the kernels read their
 * floats in place), and spreads pieces of tensors over threads.
 */
#include "util/internal.h"

#include <math.h>
#include <pthread.h>

#include "format/file.h"
#include "format/kernels.h"

enum mf_style { MF_IEEE, MF_FN, MF_FNUZ, MF_FINITE };

static double
minifloat(unsigned v, int ebits, int mbits, int bias, enum mf_style style)
{
	unsigned emax = (1u << ebits) - 1, mmax = (1u << mbits) - 1;
	unsigned sign = (v >> (ebits + mbits)) & 1;
	unsigned e = (v >> mbits) & emax, m = v & mmax;
	double x;

	if (style == MF_FNUZ && v == 1u << (ebits + mbits))
		return NAN;
	if (style == MF_IEEE && e == emax)
		return m ? NAN : sign ? -INFINITY : INFINITY;
	if (style == MF_FN && e == emax && m == mmax)
		return NAN;
	if (e == 0)
		x = ldexp((double)m, 1 - bias - mbits);
	else
		x = ldexp((double)((1u << mbits) | m), (int)e - bias - mbits);
	return sign ? -x : x;
}

/* Decoded values of the 8-bit formats, built once. */
enum { T_E5M2, T_E4M3, T_E4M3FNUZ, T_E5M2FNUZ, T_E8M0, T_F4, T_F6_E2M3,
	T_F6_E3M2, T_COUNT };
static double tables[T_COUNT][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void
build_tables(void)
{
	for (unsigned v = 0; v < 256; v++) {
		tables[T_E5M2][v] = minifloat(v, 5, 2, 15, MF_IEEE);
		tables[T_E4M3][v] = minifloat(v, 4, 3, 7, MF_FN);
		tables[T_E4M3FNUZ][v] = minifloat(v, 4, 3, 8, MF_FNUZ);
		tables[T_E5M2FNUZ][v] = minifloat(v, 5, 2, 16, MF_FNUZ);
		tables[T_E8M0][v] = v == 0xff ? NAN : ldexp(1.0, (int)v - 127);
		tables[T_F4][v] = minifloat(v & 0xf, 2, 1, 1, MF_FINITE);
		tables[T_F6_E2M3][v] = minifloat(v & 0x3f, 2, 3, 1, MF_FINITE);
		tables[T_F6_E3M2][v] = minifloat(v & 0x3f, 3, 2, 3, MF_FINITE);
	}
}

static const double *
table(int which)
{
	pthread_once(&tables_once, build_tables);
	return tables[which];
}

/* Little-endian loads; on a little-endian host a memcpy the compiler
 * turns into one move, which keeps the loops below vectorisable. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LOAD(bits) \
	static inline uint##bits##_t \
	ld##bits(const unsigned char *p) \
	{ \
		uint##bits##_t v; \
		memcpy(&v, p, sizeof(v)); \
		return v; \
	}
#else
#define LOAD(bits) \
	static inline uint##bits##_t \
	ld##bits(const unsigned char *p) \
	{ \
		uint##bits##_t v = 0; \
		for (unsigned i = 0; i < bits / 8; i++) \
			v |= (uint##bits##_t)p[i] << (8 * i); \
		return v; \
	}
#endif
LOAD(16)
LOAD(32)
LOAD(64)

static inline double
f32_bits(uint32_t b)
{
	float f;

	memcpy(&f, &b, sizeof(f));
	return (double)f;
}

/*
 * F16 by bit operations, exact: the 15 bits below the sign, moved to a
 * float's exponent and mantissa, are the value times 2^-112 (for normal
 * and subnormal halves alike), and a multiplication by 2^112 is exact;
 * the all-ones exponent becomes the float's (Inf, NaN with its payload).
 */
void
ckpt_decode_f16_portable(const unsigned char *p, size_t n, double *d)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t h = ld16(p + 2 * i);
		uint32_t m = (h & 0x7fff) << 13, b;
		float f;

		if ((h & 0x7c00) == 0x7c00)
			b = m | 0x7f800000;
		else {
			memcpy(&f, &m, 4);
			f *= 0x1p112f;
			memcpy(&b, &f, 4);
		}
		b |= (h & 0x8000) << 16;
		memcpy(&f, &b, 4);
		d[i] = f;
	}
}

static void
by_table(const unsigned char *p, uint64_t n, const double *t, double *d)
{
	for (uint64_t i = 0; i < n; i++)
		d[i] = t[p[i]];
}

/* The decoding table of a one-byte float format, or -1. */
static int
byte_table(enum ckpt_dtype dt)
{
	switch (dt) {
	case CKPT_DTYPE_F8_E5M2: return T_E5M2;
	case CKPT_DTYPE_F8_E4M3: return T_E4M3;
	case CKPT_DTYPE_F8_E4M3FNUZ: return T_E4M3FNUZ;
	case CKPT_DTYPE_F8_E5M2FNUZ: return T_E5M2FNUZ;
	case CKPT_DTYPE_F8_E8M0: return T_E8M0;
	default: return -1;
	}
}

unsigned int
ckpt_dtype_components(enum ckpt_dtype dt)
{
	return dt == CKPT_DTYPE_C32 || dt == CKPT_DTYPE_C64 ||
	    dt == CKPT_DTYPE_C128 ? 2 : 1;
}

int
ckpt_dtype_to_f64(enum ckpt_dtype dt, const void *src, uint64_t n,
    double *dst)
{
	const unsigned char *p = src;
	uint64_t nv = n * ckpt_dtype_components(dt);

	if (n <= SIZE_MAX && ckpt_kdecode_simd(dt, src, (size_t)n, dst))
		return CKPT_OK;
	if (byte_table(dt) >= 0) {
		by_table(p, n, table(byte_table(dt)), dst);
		return CKPT_OK;
	}
	switch (dt) {
	case CKPT_DTYPE_BOOL:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = p[i] ? 1.0 : 0.0;
		return CKPT_OK;
	case CKPT_DTYPE_U8:
	case CKPT_DTYPE_QU8:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = p[i];
		return CKPT_OK;
	case CKPT_DTYPE_I8:
	case CKPT_DTYPE_QI8:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (int8_t)p[i];
		return CKPT_OK;
	case CKPT_DTYPE_I16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (int16_t)ld16(p + 2 * i);
		return CKPT_OK;
	case CKPT_DTYPE_U16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = ld16(p + 2 * i);
		return CKPT_OK;
	case CKPT_DTYPE_I32:
	case CKPT_DTYPE_QI32:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (int32_t)ld32(p + 4 * i);
		return CKPT_OK;
	case CKPT_DTYPE_U32:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = ld32(p + 4 * i);
		return CKPT_OK;
	case CKPT_DTYPE_I64:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (double)(int64_t)ld64(p + 8 * i);
		return CKPT_OK;
	case CKPT_DTYPE_U64:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (double)ld64(p + 8 * i);
		return CKPT_OK;
	case CKPT_DTYPE_F16:
	case CKPT_DTYPE_C32:
		ckpt_decode_f16_portable(p, (size_t)nv, dst);
		return CKPT_OK;
	case CKPT_DTYPE_BF16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = f32_bits((uint32_t)ld16(p + 2 * i) << 16);
		return CKPT_OK;
	case CKPT_DTYPE_F32:
	case CKPT_DTYPE_C64:
		for (uint64_t i = 0; i < nv; i++)
			dst[i] = f32_bits(ld32(p + 4 * i));
		return CKPT_OK;
	case CKPT_DTYPE_F64:
	case CKPT_DTYPE_C128:
		for (uint64_t i = 0; i < nv; i++) {
			uint64_t b = ld64(p + 8 * i);

			memcpy(&dst[i], &b, sizeof(b));
		}
		return CKPT_OK;
	case CKPT_DTYPE_F4: {
		const double *t = table(T_F4);

		for (uint64_t i = 0; i < n; i++)
			dst[i] = t[(p[i / 2] >> (4 * (i % 2))) & 0xf];
		return CKPT_OK;
	}
	case CKPT_DTYPE_F6_E2M3:
	case CKPT_DTYPE_F6_E3M2: {
		const double *t = table(dt == CKPT_DTYPE_F6_E2M3 ?
		    T_F6_E2M3 : T_F6_E3M2);

		for (uint64_t i = 0; i < n; i++) {
			const unsigned char *q = p + 3 * (i / 4);
			uint32_t w = q[0] | (uint32_t)q[1] << 8 |
			    (uint32_t)q[2] << 16;

			dst[i] = t[(w >> (6 * (i % 4))) & 0x3f];
		}
		return CKPT_OK;
	}
	case CKPT_DTYPE_F8_E5M2:	/* byte_table() above */
	case CKPT_DTYPE_F8_E4M3:
	case CKPT_DTYPE_F8_E4M3FNUZ:
	case CKPT_DTYPE_F8_E5M2FNUZ:
	case CKPT_DTYPE_F8_E8M0:
	case CKPT_DTYPE_QU4X2:
	case CKPT_DTYPE_QU2X4:
	case CKPT_DTYPE_COUNT:
		break;
	}
	return CKPT_ERR_UNSUPPORTED;
}

void
ckpt_tensor_stats_init(struct ckpt_tensor_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->min = st->max = st->mean = st->std = NAN;
}

static void
finish(struct ckpt_tensor_stats *st)
{
	if (!st->finite) {
		st->min = st->max = st->mean = st->std = NAN;
		st->m2 = 0;
		return;
	}
	st->std = sqrt(st->m2 / (double)st->finite);
}

void
ckpt_tensor_stats_merge(struct ckpt_tensor_stats *st,
    const struct ckpt_tensor_stats *o)
{
	uint64_t n;
	double delta;

	st->count += o->count;
	st->nan += o->nan;
	st->pos_inf += o->pos_inf;
	st->neg_inf += o->neg_inf;
	st->zeros += o->zeros;
	if (!o->finite)
		return;
	if (!st->finite) {
		st->finite = o->finite;
		st->min = o->min;
		st->max = o->max;
		st->mean = o->mean;
		st->m2 = o->m2;
		finish(st);
		return;
	}
	n = st->finite + o->finite;
	delta = o->mean - st->mean;
	st->mean += delta * ((double)o->finite / (double)n);
	st->m2 += o->m2 + delta * delta * ((double)st->finite *
	    (double)o->finite / (double)n);
	st->finite = n;
	if (o->min < st->min)
		st->min = o->min;
	if (o->max > st->max)
		st->max = o->max;
	finish(st);
}

void
ckpt_tensor_stats_add(struct ckpt_tensor_stats *st, const double *v,
    size_t n)
{
	struct ckpt_kstats_tree tr;

	ckpt_kstats_tree_init(&tr);
	for (size_t i = 0; i < n; i += CKPT_KBLOCK) {
		struct ckpt_tensor_stats b;

		ckpt_kstats_block(v + i, n - i < CKPT_KBLOCK ? n - i :
		    CKPT_KBLOCK, &b);
		ckpt_kstats_tree_push(&tr, &b);
	}
	ckpt_kstats_tree_fold(&tr, st);
}

/*
 * Elements per read: a multiple of 8 so that sub-byte runs stay whole,
 * and of CKPT_KBLOCK so that blocks never straddle two reads (the numbers
 * then depend only on where a range starts, not on the read size).
 * 128 Ki elements (512 KiB of F32): with the kernels reading F32 straight
 * from the buffer, the copy out of the page cache is about a quarter of
 * the CPU time of inspect --stats.  A buffer of half the L2 of a current
 * core (1 MiB on AMD Zen 4) keeps the copy's destination there for the
 * kernels, where 1 MiB reads spilled it to the shared L3: on two cores
 * of an AMD EPYC, -j2 ran 2-3% faster with 512 KiB than with 1 MiB, and
 * -j1 as fast (a 1 GiB F32 file in the page cache; 128 KiB and 256 KiB
 * did no better).  An older Xeon had shown 1 MiB reads 10-15% cheaper
 * than 256 KiB ones.
 */
#define CHUNK 131072

static int
check_range(const struct ckpt_file *f, const struct ckpt_tensor *t,
    uint64_t first, uint64_t nelem, const char *what,
    struct ckpt_error *err)
{
	uint64_t end;

	if (!ckpt_add_u64(first, nelem, &end) || end > t->numel)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path, -1,
		    "elements %llu+%llu out of range for tensor '%s'",
		    (unsigned long long)first, (unsigned long long)nelem,
		    t->name ? t->name : "");
	if (!ckpt_dtype_bits(t->dtype) || t->dtype == CKPT_DTYPE_QU4X2 ||
	    t->dtype == CKPT_DTYPE_QU2X4)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, f->path, -1,
		    "tensor '%s': %s of %s elements are not supported",
		    t->name ? t->name : "", what, ckpt_dtype_name(t->dtype));
	return CKPT_OK;
}

/* A read buffer and a block of doubles, per worker. */
struct kbuf {
	unsigned char *raw;
	double *vals;
};

static int
kbuf_alloc(struct kbuf *b, enum ckpt_dtype dt, struct ckpt_error *err)
{
	b->raw = malloc((size_t)CHUNK * ckpt_dtype_bits(dt) / 8 + 8);
	b->vals = malloc(2 * CKPT_KBLOCK * sizeof(*b->vals));
	if (!b->raw || !b->vals) {
		free(b->raw);
		free(b->vals);
		return ckpt_error_nomem(err);
	}
	return CKPT_OK;
}

static void
kbuf_free(struct kbuf *b)
{
	free(b->raw);
	free(b->vals);
}

/*
 * Statistics of one block: k elements of raw bytes, k times their
 * components values (at most CKPT_KBLOCK).  F32 and C64 are reduced from
 * their bytes; other dtypes decode into vals first.
 */
static int
stats_block(enum ckpt_dtype dt, const unsigned char *raw, size_t k,
    double *vals, struct ckpt_tensor_stats *blk)
{
	size_t nv = k * ckpt_dtype_components(dt);
	int rc;

	if ((dt == CKPT_DTYPE_F32 || dt == CKPT_DTYPE_C64) &&
	    ckpt_kstats_f32_block(raw, nv, blk))
		return CKPT_OK;
	if ((rc = ckpt_dtype_to_f64(dt, raw, k, vals)))
		return rc;
	ckpt_kstats_block(vals, nv, blk);
	return CKPT_OK;
}

int
ckpt_tensor_stats_range(const struct ckpt_file *f,
    const struct ckpt_tensor *t, uint64_t first, uint64_t nelem,
    struct ckpt_tensor_stats *st, struct ckpt_error *err)
{
	unsigned int bits = ckpt_dtype_bits(t->dtype);
	unsigned int comp = ckpt_dtype_components(t->dtype);
	/* elements per block of values */
	size_t bel = CKPT_KBLOCK / comp;
	struct ckpt_kstats_tree tr;
	struct kbuf b;
	uint64_t end = first + nelem;
	int rc;

	if ((rc = check_range(f, t, first, nelem, "statistics", err)) ||
	    (rc = kbuf_alloc(&b, t->dtype, err)))
		return rc;
	ckpt_kstats_tree_init(&tr);
	while (first < end && !rc) {
		uint64_t n = end - first < CHUNK ? end - first : CHUNK;

		rc = ckpt_tensor_read(f, t, first, n, b.raw, err);
		for (uint64_t j = 0; j < n && !rc; j += bel) {
			size_t k = n - j < bel ? (size_t)(n - j) : bel;
			struct ckpt_tensor_stats blk;

			rc = stats_block(t->dtype, b.raw + j * bits / 8, k,
			    b.vals, &blk);
			if (!rc)
				ckpt_kstats_tree_push(&tr, &blk);
		}
		first += n;
	}
	ckpt_kstats_tree_fold(&tr, st);
	kbuf_free(&b);
	return rc;
}

/*
 * NaN and infinity counts only: the raw bits of a chunk are counted
 * first (ckpt_knonfinite_count), and only a chunk that has such values,
 * or a dtype without that shortcut, is decoded and classified.
 */
static int
nonfinite_range(const struct ckpt_file *f, const struct ckpt_tensor *t,
    uint64_t first, uint64_t nelem, struct ckpt_tensor_stats *st,
    struct ckpt_error *err)
{
	unsigned int bits = ckpt_dtype_bits(t->dtype);
	unsigned int comp = ckpt_dtype_components(t->dtype);
	size_t bel = CKPT_KBLOCK / comp;
	struct kbuf b;
	uint64_t end = first + nelem;
	int rc;

	if ((rc = check_range(f, t, first, nelem, "statistics", err)) ||
	    (rc = kbuf_alloc(&b, t->dtype, err)))
		return rc;
	while (first < end && !rc) {
		uint64_t n = end - first < CHUNK ? end - first : CHUNK;
		size_t bad;

		rc = ckpt_tensor_read(f, t, first, n, b.raw, err);
		first += n;
		if (rc || (ckpt_knonfinite_count(t->dtype, b.raw, (size_t)n,
		    &bad) && !bad)) {
			st->count += n * comp;
			continue;
		}
		for (uint64_t j = 0; j < n && !rc; j += bel) {
			size_t k = n - j < bel ? (size_t)(n - j) : bel;
			struct ckpt_tensor_stats blk;

			rc = stats_block(t->dtype, b.raw + j * bits / 8, k,
			    b.vals, &blk);
			if (rc)
				break;
			st->count += blk.count;
			st->nan += blk.nan;
			st->pos_inf += blk.pos_inf;
			st->neg_inf += blk.neg_inf;
		}
	}
	st->finite = st->count - st->nan - st->pos_inf - st->neg_inf;
	kbuf_free(&b);
	return rc;
}

int
ckpt_tensor_stats(const struct ckpt_file *f, const struct ckpt_tensor *t,
    struct ckpt_tensor_stats *st, struct ckpt_error *err)
{
	ckpt_tensor_stats_init(st);
	return ckpt_tensor_stats_range(f, t, 0, t->numel, st, err);
}

/* ------------------------------------------------------------------ */
/* Many tensors, on every core                                         */
/* ------------------------------------------------------------------ */

/*
 * Elements per piece of work: large enough that a piece costs far more
 * than handing it out (a few ms against a microsecond), small enough to
 * spread one tensor over cores and to end together.  Threads take pieces
 * as they finish, so the last one costs the others up to one piece of
 * waiting: with 16M elements (64 MB of F32, about 20 ms on a core) that
 * was a tenth of a 1 GiB pass on two cores, and more whenever another
 * process held one core for a while.  4M elements: a fortieth.
 *
 * The last TAIL_PIECES * PIECE elements of the whole job go out in
 * pieces of PIECE / 8 instead, so that the threads end within a small
 * piece of each other (about 0.3 ms of F32 on a core, against 2 ms): on
 * two cores that waiting was 1-2% of a 1 GiB pass.  The cut depends only
 * on the items' sizes, never on the thread count, so the pieces, and the
 * numbers merged from them, are the same for every -j.
 */
#define PIECE ((uint64_t)4 << 20)
#define SMALL_PIECE (PIECE / 8)
#define TAIL_PIECES 4

struct piece {
	size_t item;
	uint64_t first, n;
	int rc;
	struct ckpt_error err;
	union {
		struct ckpt_tensor_stats st;
		struct ckpt_compare_stats cmp;
	} u;
};

/*
 * Where an item's small pieces begin: its first element inside the job's
 * last TAIL_PIECES * PIECE elements, rounded up to a whole small piece so
 * that every cut stays a multiple of SMALL_PIECE from the item's start
 * (whole blocks, whole bytes of sub-byte dtypes).  start is the item's
 * first element in the job, total the job's elements.
 */
static uint64_t
small_from(uint64_t numel, uint64_t start, uint64_t total)
{
	uint64_t tail = TAIL_PIECES * PIECE;
	uint64_t from = total > tail ? total - tail : 0;

	from = from > start ? from - start : 0;
	from = (from + SMALL_PIECE - 1) / SMALL_PIECE * SMALL_PIECE;
	return from < numel ? from : numel;
}

/* The length of the piece of an item that starts at element first. */
static uint64_t
piece_len(uint64_t numel, uint64_t first, uint64_t small)
{
	uint64_t n = first < small ? small - first : SMALL_PIECE;

	if (n > PIECE)
		n = PIECE;
	return numel - first < n ? numel - first : n;
}

/* Counts the pieces of the items, and fills p with them unless NULL. */
static size_t
cut_pieces(const uint64_t *numel, size_t n, uint64_t total, struct piece *p)
{
	uint64_t start = 0;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t small = small_from(numel[i], start, total), len;

		for (uint64_t first = 0; first < numel[i]; first += len) {
			len = piece_len(numel[i], first, small);
			if (p) {
				p[k].item = i;
				p[k].first = first;
				p[k].n = len;
			}
			k++;
		}
		if (!ckpt_add_u64(start, numel[i], &start))
			start = UINT64_MAX;
	}
	return k;
}

static int
make_pieces(const uint64_t *numel, size_t n, struct piece **out,
    size_t *nout, struct ckpt_error *err)
{
	uint64_t total = 0;
	struct piece *p;
	size_t np;

	for (size_t i = 0; i < n; i++)
		if (!ckpt_add_u64(total, numel[i], &total))
			total = UINT64_MAX;
	np = cut_pieces(numel, n, total, NULL);
	p = calloc(np ? np : 1, sizeof(*p));
	if (!p)
		return ckpt_error_nomem(err);
	cut_pieces(numel, n, total, p);
	*out = p;
	*nout = np;
	return CKPT_OK;
}

/*
 * Cuts the items (numel[i] elements each; 0 for one that failed its
 * checks) into pieces and runs fn on each piece, on up to threads cores.
 * The pieces are the caller's to merge, in order, and to free.
 */
static int
run_pieces(const uint64_t *numel, size_t n, unsigned int threads,
    void (*fn)(void *, size_t), void *ctx, pthread_mutex_t *lock,
    struct piece **pieces, size_t *np, struct ckpt_error *err)
{
	int rc = make_pieces(numel, n, pieces, np, err);

	if (rc)
		return rc;
	pthread_mutex_init(lock, NULL);
	ckpt_parallel_for(*np, threads, fn, ctx);
	pthread_mutex_destroy(lock);
	return CKPT_OK;
}

/*
 * Whether piece p's result can be merged into its item: not when the item
 * failed before (its first error stands) or the piece failed (the item
 * takes the piece's error).
 */
static bool
piece_mergeable(const struct piece *p, int *item_rc,
    struct ckpt_error *item_err)
{
	if (*item_rc)
		return false;
	if (p->rc) {
		*item_rc = p->rc;
		*item_err = p->err;
		return false;
	}
	return true;
}

struct stats_ctx {
	struct ckpt_stats_item *items;
	struct piece *p;
	bool nonfinite_only;
	ckpt_progress_fn progress;
	void *progress_data;
	pthread_mutex_t lock;		/* serialises progress */
	uint64_t done, total;		/* bytes of tensor data */
};

static void
stats_piece(void *arg, size_t i)
{
	struct stats_ctx *c = arg;
	struct piece *p = &c->p[i];
	const struct ckpt_stats_item *it = &c->items[p->item];

	ckpt_tensor_stats_init(&p->u.st);
	ckpt_error_clear(&p->err);
	p->rc = (c->nonfinite_only ? nonfinite_range :
	    ckpt_tensor_stats_range)(it->f, it->t, p->first, p->n, &p->u.st,
	    &p->err);
	if (c->progress) {
		pthread_mutex_lock(&c->lock);
		c->done += p->n * ckpt_dtype_bits(it->t->dtype) / 8;
		c->progress(c->done, c->total, c->progress_data);
		pthread_mutex_unlock(&c->lock);
	}
}

static int
stats_many(struct ckpt_stats_item *items, size_t n, unsigned int threads,
    bool nonfinite_only, ckpt_progress_fn progress, void *progress_data,
    struct ckpt_error *err)
{
	struct stats_ctx c = { .items = items, .nonfinite_only =
	    nonfinite_only, .progress = progress, .progress_data =
	    progress_data };
	uint64_t *numel = calloc(n ? n : 1, sizeof(*numel));
	size_t np;
	int rc;

	if (!numel)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < n; i++) {
		ckpt_tensor_stats_init(&items[i].st);
		ckpt_error_clear(&items[i].err);
		items[i].rc = check_range(items[i].f, items[i].t, 0,
		    items[i].t->numel, "statistics", &items[i].err);
		numel[i] = items[i].rc ? 0 : items[i].t->numel;
		c.total += numel[i] * ckpt_dtype_bits(items[i].t->dtype) / 8;
	}
	rc = run_pieces(numel, n, threads, stats_piece, &c, &c.lock, &c.p,
	    &np, err);
	free(numel);
	if (rc)
		return rc;
	/* Merge in piece order: the same numbers for any thread count. */
	for (size_t i = 0; i < np; i++) {
		struct ckpt_stats_item *it = &items[c.p[i].item];

		if (!piece_mergeable(&c.p[i], &it->rc, &it->err))
			continue;
		if (nonfinite_only) {
			it->st.count += c.p[i].u.st.count;
			it->st.finite += c.p[i].u.st.finite;
			it->st.nan += c.p[i].u.st.nan;
			it->st.pos_inf += c.p[i].u.st.pos_inf;
			it->st.neg_inf += c.p[i].u.st.neg_inf;
		} else {
			ckpt_tensor_stats_merge(&it->st, &c.p[i].u.st);
		}
	}
	free(c.p);
	return CKPT_OK;
}

int
ckpt_tensor_stats_many(struct ckpt_stats_item *items, size_t n,
    unsigned int threads, ckpt_progress_fn progress, void *progress_data,
    struct ckpt_error *err)
{
	return stats_many(items, n, threads, false, progress, progress_data,
	    err);
}

int
ckpt_tensor_nonfinite_many(struct ckpt_stats_item *items, size_t n,
    unsigned int threads, ckpt_progress_fn progress, void *progress_data,
    struct ckpt_error *err)
{
	return stats_many(items, n, threads, true, progress, progress_data,
	    err);
}

/* ------------------------------------------------------------------ */
/* Comparison                                                          */
/* ------------------------------------------------------------------ */

static bool
decodable(enum ckpt_dtype dt)
{
	return ckpt_dtype_bits(dt) && dt != CKPT_DTYPE_QU4X2 &&
	    dt != CKPT_DTYPE_QU2X4;
}

int
ckpt_compare_values(enum ckpt_dtype da, const void *a, enum ckpt_dtype db,
    const void *b, uint64_t n, const struct ckpt_compare_options *o,
    struct ckpt_compare_stats *st)
{
	unsigned int comp = ckpt_dtype_components(da);
	size_t bel = CKPT_KBLOCK / comp;
	double *va, *vb;
	struct ckpt_kcmp_acc acc;
	int rc = CKPT_OK;

	if (!decodable(da) || !decodable(db) ||
	    comp != ckpt_dtype_components(db))
		return CKPT_ERR_UNSUPPORTED;
	va = malloc(2 * CKPT_KBLOCK * sizeof(*va));
	vb = malloc(2 * CKPT_KBLOCK * sizeof(*vb));
	if (!va || !vb) {
		free(va);
		free(vb);
		return CKPT_ERR_NOMEM;
	}
	ckpt_kcmp_acc_init(&acc);
	for (uint64_t j = 0; j < n && !rc; j += bel) {
		size_t k = n - j < bel ? (size_t)(n - j) : bel;

		rc = ckpt_dtype_to_f64(da, (const unsigned char *)a +
		    j * ckpt_dtype_bits(da) / 8, k, va);
		if (!rc)
			rc = ckpt_dtype_to_f64(db, (const unsigned char *)b +
			    j * ckpt_dtype_bits(db) / 8, k, vb);
		if (!rc)
			ckpt_kcmp_block(va, vb, k * comp, o, &acc);
	}
	ckpt_kcmp_acc_finish(&acc);
	ckpt_compare_stats_merge(st, &acc.st);
	free(va);
	free(vb);
	return rc;
}

struct cmp_ctx {
	struct ckpt_compare_item *items;
	struct piece *p;
	const struct ckpt_compare_options *o;
	ckpt_progress_fn progress;
	void *progress_data;
	uint64_t done, total;
	pthread_mutex_t lock;
};

static int
compare_range(const struct ckpt_compare_item *it, uint64_t first,
    uint64_t nelem, struct cmp_ctx *c, struct ckpt_compare_stats *st,
    struct ckpt_error *err)
{
	unsigned int comp = ckpt_dtype_components(it->ta->dtype);
	unsigned int ba = ckpt_dtype_bits(it->ta->dtype);
	unsigned int bb = ckpt_dtype_bits(it->tb->dtype);
	size_t bel = CKPT_KBLOCK / comp;
	struct kbuf xa, xb;
	struct ckpt_kcmp_acc acc;
	uint64_t end = first + nelem;
	int rc;

	if ((rc = kbuf_alloc(&xa, it->ta->dtype, err)))
		return rc;
	if ((rc = kbuf_alloc(&xb, it->tb->dtype, err))) {
		kbuf_free(&xa);
		return rc;
	}
	ckpt_kcmp_acc_init(&acc);
	while (first < end && !rc) {
		uint64_t n = end - first < CHUNK ? end - first : CHUNK;

		rc = it->read_a ? it->read_a(it->arg_a, first, n, xa.raw, err) :
		    ckpt_tensor_read(it->fa, it->ta, first, n, xa.raw, err);
		if (!rc)
			rc = it->read_b ? it->read_b(it->arg_b, first, n,
			    xb.raw, err) : ckpt_tensor_read(it->fb, it->tb,
			    first, n, xb.raw, err);
		for (uint64_t j = 0; j < n && !rc; j += bel) {
			size_t k = n - j < bel ? (size_t)(n - j) : bel;

			if (ckpt_dtype_to_f64(it->ta->dtype,
			    xa.raw + j * ba / 8, k, xa.vals) ||
			    ckpt_dtype_to_f64(it->tb->dtype,
			    xb.raw + j * bb / 8, k, xb.vals)) {
				rc = ckpt_error_set(err, CKPT_ERR_UNSUPPORTED,
				    NULL, -1,
				    "tensor %s: dtype does not decode",
				    it->ta->name);
				break;
			}
			ckpt_kcmp_block(xa.vals, xb.vals, k * comp, c->o, &acc);
		}
		first += n;
		if (!rc && c->progress) {
			pthread_mutex_lock(&c->lock);
			c->done += n * (ba + bb) / 8;
			c->progress(c->done, c->total, c->progress_data);
			pthread_mutex_unlock(&c->lock);
		}
	}
	ckpt_kcmp_acc_finish(&acc);
	*st = acc.st;
	kbuf_free(&xa);
	kbuf_free(&xb);
	return rc;
}

static void
compare_piece(void *arg, size_t i)
{
	struct cmp_ctx *c = arg;
	struct piece *p = &c->p[i];

	ckpt_error_clear(&p->err);
	p->rc = compare_range(&c->items[p->item], p->first, p->n, c,
	    &p->u.cmp, &p->err);
}

static int
check_pair(const struct ckpt_compare_item *it, struct ckpt_error *err)
{
	int rc;

	if ((rc = check_range(it->fa, it->ta, 0, it->ta->numel, "comparison",
	    err)) || (rc = check_range(it->fb, it->tb, 0, it->tb->numel,
	    "comparison", err)))
		return rc;
	if (it->ta->numel != it->tb->numel ||
	    ckpt_dtype_components(it->ta->dtype) !=
	    ckpt_dtype_components(it->tb->dtype))
		return ckpt_error_set(err, CKPT_ERR_INVALID, it->fb->path, -1,
		    "tensors '%s' and '%s' do not have the same number of "
		    "values", it->ta->name, it->tb->name);
	/* Sub-byte ranges must start on a byte: pieces and chunks are
	 * multiples of 8 elements, so only whole tensors are compared. */
	return CKPT_OK;
}

int
ckpt_tensor_compare_many(struct ckpt_compare_item *items, size_t n,
    const struct ckpt_compare_options *o, unsigned int threads,
    ckpt_progress_fn progress, void *progress_data,
    struct ckpt_error *err)
{
	struct cmp_ctx c = { .items = items, .o = o, .progress = progress,
	    .progress_data = progress_data };
	uint64_t *numel = calloc(n ? n : 1, sizeof(*numel));
	size_t np;
	int rc;

	if (!numel)
		return ckpt_error_nomem(err);
	if ((rc = ckpt_options_check(o->version, CKPT_COMPARE_OPTIONS_VERSION,
	    "ckpt_compare_options", err))) {
		free(numel);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		ckpt_compare_stats_init(&items[i].st);
		ckpt_error_clear(&items[i].err);
		items[i].rc = check_pair(&items[i], &items[i].err);
		numel[i] = items[i].rc ? 0 : items[i].ta->numel;
		if (!items[i].rc)
			c.total += items[i].ta->nbytes + items[i].tb->nbytes;
	}
	rc = run_pieces(numel, n, threads, compare_piece, &c, &c.lock, &c.p,
	    &np, err);
	free(numel);
	if (rc)
		return rc;
	for (size_t i = 0; i < np; i++) {
		struct ckpt_compare_item *it = &items[c.p[i].item];

		if (piece_mergeable(&c.p[i], &it->rc, &it->err))
			ckpt_compare_stats_merge(&it->st, &c.p[i].u.cmp);
	}
	free(c.p);
	return CKPT_OK;
}
