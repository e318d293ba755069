/* SPDX-License-Identifier: MIT */
/*
 * tensor.c - reading a tensor's elements in logical order: the one place
 * that applies strides, storage offsets and byte order, so that --stats,
 * --numerics and diff see the same values torch would.
 */
#include "internal.h"

#include "file.h"

static void
swap_elements(unsigned char *p, uint64_t n, size_t size)
{
	for (uint64_t i = 0; i < n; i++, p += size)
		for (size_t a = 0, b = size - 1; a < b; a++, b--) {
			unsigned char t = p[a];

			p[a] = p[b];
			p[b] = t;
		}
}

/* Element size for byte swapping: complex numbers swap per component. */
static size_t
swap_unit(enum ckpt_dtype dt)
{
	switch (dt) {
	case CKPT_DTYPE_C32:
		return 2;
	case CKPT_DTYPE_C64:
		return 4;
	case CKPT_DTYPE_C128:
		return 8;
	default:
		return ckpt_dtype_bits(dt) / 8;
	}
}

/* Byte offset, relative to t->offset, of logical element idx. */
static bool
strided_offset(const struct ckpt_tensor *t, uint64_t idx, size_t esize,
    uint64_t *out)
{
	int64_t pos = 0;

	for (unsigned d = t->ndim; d-- > 0;) {
		uint64_t dim = t->shape[d];
		uint64_t i = dim ? idx % dim : 0;

		idx = dim ? idx / dim : 0;
		pos += (int64_t)i * t->strides[d];
	}
	/* t->offset is the first byte any element touches (the reader
	 * folded negative strides and the storage offset into it). */
	if (pos < 0)
		return false;
	*out = (uint64_t)pos * esize;
	return *out + esize <= t->span;
}

int
ckpt_tensor_read(const struct ckpt_file *f, const struct ckpt_tensor *t,
    uint64_t first, uint64_t nelem, void *buf, struct ckpt_error *err)
{
	unsigned int bits = ckpt_dtype_bits(t->dtype);
	size_t esize = bits / 8;
	uint64_t off, len, end;
	int rc;

	if (!bits || !ckpt_add_u64(first, nelem, &end) || end > t->numel)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path, -1,
		    "elements %llu+%llu out of range for tensor '%s'",
		    (unsigned long long)first, (unsigned long long)nelem,
		    t->name ? t->name : "");
	if (!nelem)
		return CKPT_OK;
	if (bits % 8) {
		if (t->strides && !t->contiguous)
			return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED,
			    f->path, -1, "strided %s tensor '%s'",
			    ckpt_dtype_name(t->dtype), t->name);
		if ((first * bits) % 8 || (nelem * bits) % 8)
			return ckpt_error_set(err, CKPT_ERR_INVALID, f->path,
			    -1, "range of %s elements not byte-aligned",
			    ckpt_dtype_name(t->dtype));
		return ckpt_file_pread(f, buf, nelem * bits / 8, t->offset +
		    first * bits / 8, err);
	}
	if (!t->strides || t->contiguous) {
		if (!ckpt_mul_u64(first, esize, &off) ||
		    !ckpt_mul_u64(nelem, esize, &len) || len > SIZE_MAX)
			return ckpt_error_set(err, CKPT_ERR_LIMIT, f->path, -1,
			    "tensor range too large");
		rc = ckpt_file_pread(f, buf, (size_t)len, t->offset + off,
		    err);
	} else {
		rc = CKPT_OK;
		for (uint64_t i = 0; i < nelem && !rc; i++) {
			if (!strided_offset(t, first + i, esize, &off))
				return ckpt_error_set(err, CKPT_ERR_FORMAT,
				    f->path, (int64_t)t->offset, "element %llu "
				    "of tensor '%s' lies outside its storage",
				    (unsigned long long)(first + i), t->name);
			rc = ckpt_file_pread(f, (unsigned char *)buf +
			    i * esize, esize, t->offset + off, err);
		}
	}
	if (!rc && t->big_endian && swap_unit(t->dtype) > 1)
		swap_elements(buf, nelem * (esize / swap_unit(t->dtype)),
		    swap_unit(t->dtype));
	return rc;
}
