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
 * numpy's default; torch.std defaults to ddof = 1).  Chunks are reduced
 * with a two-pass mean and sum of squared deviations and merged with
 * Chan's formula, which is as stable as Welford's update and much faster.
 */
#include "util/internal.h"

#include <math.h>

#include "format/file.h"

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

static uint64_t
le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static double
f32_bits(uint32_t b)
{
	float f;

	memcpy(&f, &b, sizeof(f));
	return (double)f;
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
			dst[i] = (int16_t)le(p + 2 * i, 2);
		return CKPT_OK;
	case CKPT_DTYPE_U16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (double)le(p + 2 * i, 2);
		return CKPT_OK;
	case CKPT_DTYPE_I32:
	case CKPT_DTYPE_QI32:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (int32_t)le(p + 4 * i, 4);
		return CKPT_OK;
	case CKPT_DTYPE_U32:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (double)le(p + 4 * i, 4);
		return CKPT_OK;
	case CKPT_DTYPE_I64:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (double)(int64_t)le(p + 8 * i, 8);
		return CKPT_OK;
	case CKPT_DTYPE_U64:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (double)le(p + 8 * i, 8);
		return CKPT_OK;
	case CKPT_DTYPE_F16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = minifloat((unsigned)le(p + 2 * i, 2), 5, 10,
			    15, MF_IEEE);
		return CKPT_OK;
	case CKPT_DTYPE_C32:
		for (uint64_t i = 0; i < 2 * n; i++)
			dst[i] = minifloat((unsigned)le(p + 2 * i, 2), 5, 10,
			    15, MF_IEEE);
		return CKPT_OK;
	case CKPT_DTYPE_BF16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = f32_bits((uint32_t)le(p + 2 * i, 2) << 16);
		return CKPT_OK;
	case CKPT_DTYPE_F32:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = f32_bits((uint32_t)le(p + 4 * i, 4));
		return CKPT_OK;
	case CKPT_DTYPE_C64:
		for (uint64_t i = 0; i < 2 * n; i++)
			dst[i] = f32_bits((uint32_t)le(p + 4 * i, 4));
		return CKPT_OK;
	case CKPT_DTYPE_F64:
	case CKPT_DTYPE_C128:
		for (uint64_t i = 0; i < n * ckpt_dtype_components(dt); i++) {
			uint64_t b = le(p + 8 * i, 8);

			memcpy(&dst[i], &b, sizeof(b));
		}
		return CKPT_OK;
	case CKPT_DTYPE_F8_E5M2:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = minifloat(p[i], 5, 2, 15, MF_IEEE);
		return CKPT_OK;
	case CKPT_DTYPE_F8_E4M3:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = minifloat(p[i], 4, 3, 7, MF_FN);
		return CKPT_OK;
	case CKPT_DTYPE_F8_E4M3FNUZ:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = minifloat(p[i], 4, 3, 8, MF_FNUZ);
		return CKPT_OK;
	case CKPT_DTYPE_F8_E5M2FNUZ:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = minifloat(p[i], 5, 2, 16, MF_FNUZ);
		return CKPT_OK;
	case CKPT_DTYPE_F8_E8M0:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = p[i] == 0xff ? NAN : ldexp(1.0, p[i] - 127);
		return CKPT_OK;
	case CKPT_DTYPE_F4:
		for (uint64_t i = 0; i < n; i++) {
			unsigned v = (p[i / 2] >> (4 * (i % 2))) & 0xf;

			dst[i] = minifloat(v, 2, 1, 1, MF_FINITE);
		}
		return CKPT_OK;
	case CKPT_DTYPE_F6_E2M3:
	case CKPT_DTYPE_F6_E3M2:
		for (uint64_t i = 0; i < n; i++) {
			uint32_t w = (uint32_t)le(p + 3 * (i / 4), 3);
			unsigned v = (w >> (6 * (i % 4))) & 0x3f;

			dst[i] = dt == CKPT_DTYPE_F6_E2M3 ?
			    minifloat(v, 2, 3, 1, MF_FINITE) :
			    minifloat(v, 3, 2, 3, MF_FINITE);
		}
		return CKPT_OK;
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
	struct ckpt_tensor_stats c;
	double sum = 0, m2 = 0;

	ckpt_tensor_stats_init(&c);
	c.count = n;
	for (size_t i = 0; i < n; i++) {
		double x = v[i];

		if (isnan(x)) {
			c.nan++;
		} else if (isinf(x)) {
			if (x > 0)
				c.pos_inf++;
			else
				c.neg_inf++;
		} else {
			if (x == 0)
				c.zeros++;
			if (!c.finite || x < c.min)
				c.min = x;
			if (!c.finite || x > c.max)
				c.max = x;
			sum += x;
			c.finite++;
		}
	}
	if (c.finite) {
		c.mean = sum / (double)c.finite;
		/* Large finite values can overflow sum to Inf: fall back
		 * to a running mean, which cannot. */
		if (!isfinite(c.mean)) {
			uint64_t k = 0;

			c.mean = 0;
			for (size_t i = 0; i < n; i++)
				if (isfinite(v[i]))
					c.mean += (v[i] - c.mean) /
					    (double)++k;
		}
		for (size_t i = 0; i < n; i++)
			if (isfinite(v[i])) {
				double d = v[i] - c.mean;

				m2 += d * d;
			}
		c.m2 = m2;
	}
	ckpt_tensor_stats_merge(st, &c);
}

/* Elements per read: a multiple of 8 so that sub-byte runs stay whole. */
#define STATS_CHUNK 65536

int
ckpt_tensor_stats_range(const struct ckpt_file *f,
    const struct ckpt_tensor *t, uint64_t first, uint64_t nelem,
    struct ckpt_tensor_stats *st, struct ckpt_error *err)
{
	unsigned int bits = ckpt_dtype_bits(t->dtype);
	unsigned int comp = ckpt_dtype_components(t->dtype);
	unsigned char *raw;
	double *vals;
	uint64_t end;
	int rc = CKPT_OK;

	if (!ckpt_add_u64(first, nelem, &end) || end > t->numel)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path, -1,
		    "elements %llu+%llu out of range for tensor '%s'",
		    (unsigned long long)first, (unsigned long long)nelem,
		    t->name ? t->name : "");
	if (!bits || t->dtype == CKPT_DTYPE_QU4X2 ||
	    t->dtype == CKPT_DTYPE_QU2X4)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, f->path, -1,
		    "tensor '%s': statistics of %s elements are not "
		    "supported", t->name ? t->name : "",
		    ckpt_dtype_name(t->dtype));
	raw = malloc((size_t)STATS_CHUNK * bits / 8 + 8);
	vals = calloc((size_t)STATS_CHUNK * comp, sizeof(*vals));
	if (!raw || !vals) {
		free(raw);
		free(vals);
		return ckpt_error_nomem(err);
	}
	while (first < end && !rc) {
		uint64_t n = end - first < STATS_CHUNK ? end - first :
		    STATS_CHUNK;

		rc = ckpt_tensor_read(f, t, first, n, raw, err);
		if (!rc)
			rc = ckpt_dtype_to_f64(t->dtype, raw, n, vals);
		if (!rc)
			ckpt_tensor_stats_add(st, vals, (size_t)(n * comp));
		first += n;
	}
	free(raw);
	free(vals);
	return rc;
}

int
ckpt_tensor_stats(const struct ckpt_file *f, const struct ckpt_tensor *t,
    struct ckpt_tensor_stats *st, struct ckpt_error *err)
{
	ckpt_tensor_stats_init(st);
	return ckpt_tensor_stats_range(f, t, 0, t->numel, st, err);
}
