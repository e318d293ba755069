/* SPDX-License-Identifier: MIT */
/*
 * tensor.c - reading a tensor's elements in logical order: the one place
 * that applies strides, storage offsets and byte order, so that --stats,
 * --numerics and diff see the same values torch would.
 */
#include "util/internal.h"

#include "format/file.h"
#include "format/kernels.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/*
 * Strided views (transposes, slices, expands): walk the logical order with
 * an odometer and read through a window of the span, so that a view whose
 * span fits the window costs one pread however it is strided.  A larger
 * span is mapped instead (read-only, shared with the page cache, so memory
 * stays bounded): through a window, a transpose would read the whole span
 * once per row of the result.
 */
#define WINDOW ((uint64_t)4 << 20)

struct view_map {
	void *addr;
	size_t len;
	const unsigned char *base;	/* byte 0 of the span */
};

static bool
map_span(const struct ckpt_file *f, const struct ckpt_tensor *t,
    struct view_map *m)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = t->offset - t->offset % page;
	struct stat st;

	m->addr = NULL;
	/* A file shorter now than when it was opened would fault (SIGBUS)
	 * where pread reports an error: map only what is there. */
	if (t->span <= WINDOW || t->offset + t->span > f->size ||
	    t->offset + t->span - start > SIZE_MAX || fstat(f->fd, &st) ||
	    (uint64_t)st.st_size < t->offset + t->span)
		return false;
	m->len = (size_t)(t->offset + t->span - start);
	m->addr = mmap(NULL, m->len, PROT_READ, MAP_SHARED, f->fd,
	    (off_t)start);
	if (m->addr == MAP_FAILED) {
		m->addr = NULL;
		return false;
	}
	m->base = (const unsigned char *)m->addr + (t->offset - start);
	return true;
}

/*
 * How many elements of the innermost row, from index j (at element
 * position pos of the storage) and at most left of them, lie inside the
 * storage: all of them or 0 (then the caller goes element by element
 * and names the first one outside).  Strides are non-negative, so the
 * row's last element is its furthest.
 */
static uint64_t
row_inside(const struct ckpt_tensor *t, uint64_t j, uint64_t pos,
    uint64_t left, size_t esize)
{
	uint64_t run = t->shape[t->ndim - 1] - j, last, end;

	if (run > left)
		run = left;
	if (!ckpt_mul_u64(run - 1, (uint64_t)t->strides[t->ndim - 1], &last) ||
	    !ckpt_add_u64(pos, last, &last) ||
	    !ckpt_mul_u64(last, esize, &end) ||
	    !ckpt_add_u64(end, esize, &end) || end > t->span)
		return 0;
	return run;
}

/* run elements of esize bytes, stride elements apart from element pos of
 * base, to out; fixed-size copies, so a transpose is not a call of
 * memcpy per element. */
static void
gather_row(unsigned char *out, const unsigned char *base, uint64_t pos,
    uint64_t stride, uint64_t run, size_t esize)
{
	const unsigned char *p = base + pos * esize;
	const size_t step = (size_t)stride * esize;

	/* p + r * step, never a pointer past the row's last element. */
	switch (esize) {
	case 1:
		for (uint64_t r = 0; r < run; r++)
			out[r] = p[r * step];
		break;
	case 2:
		for (uint64_t r = 0; r < run; r++)
			memcpy(out + 2 * r, p + r * step, 2);
		break;
	case 4:
		for (uint64_t r = 0; r < run; r++)
			memcpy(out + 4 * r, p + r * step, 4);
		break;
	case 8:
		for (uint64_t r = 0; r < run; r++)
			memcpy(out + 8 * r, p + r * step, 8);
		break;
	default:
		for (uint64_t r = 0; r < run; r++)
			memcpy(out + esize * r, p + r * step, esize);
	}
}

static int
read_strided(const struct ckpt_file *f, const struct ckpt_tensor *t,
    uint64_t first, uint64_t nelem, size_t esize, unsigned char *out,
    struct ckpt_error *err)
{
	uint64_t idx[CKPT_MAX_DIMS], rest = first, wstart = 0, wlen = 0;
	uint64_t cap = t->span < WINDOW ? t->span : WINDOW;
	unsigned char *win;
	struct view_map map;
	int64_t pos = 0;
	unsigned nd = t->ndim;
	int rc = CKPT_OK;

	if (nd > CKPT_MAX_DIMS)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path, -1,
		    "tensor '%s' has too many dimensions", t->name);
	for (unsigned d = nd; d-- > 0;) {
		idx[d] = t->shape[d] ? rest % t->shape[d] : 0;
		rest = t->shape[d] ? rest / t->shape[d] : 0;
		if (t->strides[d] < 0)
			return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED,
			    f->path, -1, "tensor '%s' has a negative stride",
			    t->name);
		pos += (int64_t)idx[d] * t->strides[d];
	}
	if (map_span(f, t, &map)) {
		for (uint64_t i = 0; i < nelem; i++) {
			uint64_t off = (uint64_t)pos * esize;
			uint64_t run;

			if (off + esize > t->span || off + esize < off) {
				rc = ckpt_error_set(err, CKPT_ERR_FORMAT,
				    f->path, (int64_t)t->offset, "element %llu "
				    "of tensor '%s' lies outside its storage",
				    (unsigned long long)(first + i), t->name);
				break;
			}
			/* The rest of the innermost row in one go where all
			 * of it lies inside the storage (the common case). */
			run = nd ? row_inside(t, idx[nd - 1], (uint64_t)pos,
			    nelem - i, esize) : 0;
			if (run > 1) {
				gather_row(out + i * esize, map.base,
				    (uint64_t)pos, (uint64_t)t->strides[nd - 1],
				    run, esize);
				idx[nd - 1] += run - 1;
				pos += (int64_t)(run - 1) * t->strides[nd - 1];
				i += run - 1;
			} else {
				memcpy(out + i * esize, map.base + off, esize);
			}
			for (unsigned d = nd; d-- > 0;) {
				if (++idx[d] < t->shape[d]) {
					pos += t->strides[d];
					break;
				}
				pos -= (int64_t)(idx[d] - 1) * t->strides[d];
				idx[d] = 0;
			}
		}
		munmap(map.addr, map.len);
		return rc;
	}
	win = malloc(cap ? (size_t)cap : 1);
	if (!win)
		return ckpt_error_nomem(err);
	for (uint64_t i = 0; i < nelem; i++) {
		uint64_t off = (uint64_t)pos * esize;

		if (off + esize > t->span || off + esize < off) {
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)t->offset, "element %llu of tensor '%s' "
			    "lies outside its storage",
			    (unsigned long long)(first + i), t->name);
			break;
		}
		if (off < wstart || off + esize > wstart + wlen) {
			wstart = t->span > cap ? off : 0;
			wlen = t->span - wstart < cap ? t->span - wstart : cap;
			if ((rc = ckpt_file_pread(f, win, (size_t)wlen,
			    t->offset + wstart, err)))
				break;
		}
		memcpy(out + i * esize, win + (off - wstart), esize);
		/* next logical index */
		for (unsigned d = nd; d-- > 0;) {
			if (++idx[d] < t->shape[d]) {
				pos += t->strides[d];
				break;
			}
			pos -= (int64_t)(idx[d] - 1) * t->strides[d];
			idx[d] = 0;
		}
	}
	free(win);
	return rc;
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
		if ((first + nelem) * bits / 8 > t->span)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)t->offset, "tensor '%s' has no readable "
			    "data (%llu bytes located)", t->name ? t->name : "",
			    (unsigned long long)t->span);
		return ckpt_file_pread(f, buf, nelem * bits / 8, t->offset +
		    first * bits / 8, err);
	}
	if (!t->strides || t->contiguous) {
		if (!ckpt_mul_u64(first, esize, &off) ||
		    !ckpt_mul_u64(nelem, esize, &len) || len > SIZE_MAX)
			return ckpt_error_set(err, CKPT_ERR_LIMIT, f->path, -1,
			    "tensor range too large");
		/* never beyond the bytes the reader located and checked */
		if (off + len > t->span)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)t->offset, "tensor '%s' has no readable "
			    "data (%llu bytes located)", t->name ? t->name : "",
			    (unsigned long long)t->span);
		rc = ckpt_file_pread(f, buf, (size_t)len, t->offset + off,
		    err);
	} else {
		rc = read_strided(f, t, first, nelem, esize, buf, err);
	}
	if (!rc && t->big_endian && swap_unit(t->dtype) > 1)
		swap_elements(buf, nelem * (esize / swap_unit(t->dtype)),
		    swap_unit(t->dtype));
	return rc;
}

/*
 * Content digests (manifest schema 2): the SHA-256 of what safetensors
 * would store for the tensor.  Sparse and quantized tensors have no such
 * form, meta tensors no data, and a DCP metadata entry's data lies in
 * other files: none of them gets one.
 */
static bool
has_content(const struct ckpt_tensor *t)
{
	return !t->kind || !strcmp(t->kind, "numpy");
}

bool
ckpt_tensor_content_is_bytes(const struct ckpt_tensor *t)
{
	return has_content(t) && (!t->strides || t->contiguous) &&
	    t->span == t->nbytes && (!t->big_endian ||
	    swap_unit(t->dtype) <= 1);
}

#define CONTENT_BATCH	((uint64_t)1 << 20)	/* bytes per read */

int
ckpt_tensor_content_sha256(const struct ckpt_file *f,
    const struct ckpt_tensor *t, unsigned char *out, struct ckpt_error *err)
{
	unsigned int bits = ckpt_dtype_bits(t->dtype);
	uint64_t per, done = 0;
	struct ckpt_sha256 s;
	unsigned char *buf;
	int rc;

	if (!has_content(t) || !bits)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, f->path, -1,
		    "tensor '%s' (%s) has no content digest",
		    t->name ? t->name : "", t->kind ? t->kind : "no dtype");
	/* Whole bytes per batch: a multiple of 8 elements of any width. */
	per = CONTENT_BATCH * 8 / bits / 8 * 8;
	if (!(buf = malloc((size_t)CONTENT_BATCH)))
		return ckpt_error_nomem(err);
	if ((rc = ckpt_sha256_init(&s, err))) {
		free(buf);
		return rc;
	}
	while (done < t->numel) {
		uint64_t n = t->numel - done < per ? t->numel - done : per;

		if ((rc = ckpt_tensor_read(f, t, done, n, buf, err)))
			break;
		ckpt_sha256_update(&s, buf, (size_t)(n * bits / 8 +
		    (n * bits % 8 ? 1 : 0)));
		done += n;
	}
	if (!rc)
		rc = ckpt_sha256_final(&s, out, err);
	else
		ckpt_sha256_release(&s);
	free(buf);
	return rc;
}

struct content_job {
	const struct ckpt_file *f;
	const struct ckpt_tensor *const *t;
	unsigned char (*out)[CKPT_SHA256_BYTES];
	int *rcs;
	struct ckpt_error *errs;
};

static void
content_one(void *arg, size_t i)
{
	struct content_job *j = arg;

	ckpt_error_clear(&j->errs[i]);
	j->rcs[i] = ckpt_tensor_content_sha256(j->f, j->t[i], j->out[i],
	    &j->errs[i]);
}

void
ckpt_tensor_content_sha256_many(const struct ckpt_file *f,
    const struct ckpt_tensor *const *t, size_t n,
    unsigned char (*out)[CKPT_SHA256_BYTES], int *rcs,
    struct ckpt_error *errs, unsigned int nthreads)
{
	struct content_job j = { f, t, out, rcs, errs };

	ckpt_parallel_for(n, nthreads, content_one, &j);
}
