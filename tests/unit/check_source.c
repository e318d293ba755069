/* SPDX-License-Identifier: MIT */
/*
 * check_source.c - ckpt_file over a byte source (file.c): a safetensors
 * file in memory behind a counting pread, as the S3 source is behind
 * ranged GETs.  What is read, how often the source is asked, that reads
 * past the cache come right, and that a failing source is an error.
 */
#include "unit.h"

#include <pthread.h>
#include <unistd.h>

#include "format/file.h"

struct mem {
	unsigned char *data;
	uint64_t size;
	unsigned calls;
	uint64_t bytes;
	size_t max_len;		/* the largest single fetch */
	uint64_t fail_from;	/* reads at or after this offset fail */
	unsigned delay_us;	/* each fetch takes this long (a GET) */
	bool closed;
};

/* The file fetches without its lock held: threads count here at once. */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;

static int
mem_pread(void *arg, void *buf, size_t len, uint64_t off,
    struct ckpt_error *err)
{
	struct mem *m = arg;

	pthread_mutex_lock(&mem_lock);
	m->calls++;
	m->bytes += len;
	if (len > m->max_len)
		m->max_len = len;
	pthread_mutex_unlock(&mem_lock);
	if (m->delay_us)
		usleep(m->delay_us);
	ck_assert_uint_le(off + len, m->size);
	if (off + len > m->fail_from)
		return ckpt_error_set(err, CKPT_ERR_IO, "mem", (int64_t)off,
		    "injected failure");
	memcpy(buf, m->data + off, len);
	return CKPT_OK;
}

static void
mem_close(void *arg)
{
	((struct mem *)arg)->closed = true;
}

/* A safetensors file of n U8 tensors of each bytes, t_i all byte i. */
static void
build(struct mem *m, unsigned n, size_t each)
{
	size_t hcap = 64 + 80 * (size_t)n, hl, pad;
	char *hdr = malloc(hcap);
	size_t p = 0;

	ck_assert_ptr_nonnull(hdr);
	p += (size_t)snprintf(hdr + p, hcap - p, "{");
	for (unsigned i = 0; i < n; i++)
		p += (size_t)snprintf(hdr + p, hcap - p, "%s\"t%u\":{\"dtype\":"
		    "\"U8\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
		    i ? "," : "", i, each, i * each, (i + 1) * each);
	p += (size_t)snprintf(hdr + p, hcap - p, "}");
	pad = (8 - p % 8) % 8;
	hl = p + pad;
	memset(m, 0, sizeof(*m));
	m->size = 8 + hl + (uint64_t)n * each;
	m->data = malloc((size_t)m->size);
	ck_assert_ptr_nonnull(m->data);
	for (int i = 0; i < 8; i++)
		m->data[i] = (unsigned char)((uint64_t)hl >> (8 * i));
	memcpy(m->data + 8, hdr, p);
	memset(m->data + 8 + p, ' ', pad);
	for (unsigned i = 0; i < n; i++)
		memset(m->data + 8 + hl + i * each, (int)(i & 0xff), each);
	m->fail_from = UINT64_MAX;
	free(hdr);
}

static int
open_mem(struct mem *m, size_t head, size_t readahead, struct ckpt_file **f,
    struct ckpt_error *err)
{
	struct ckpt_source src = { .pread = mem_pread, .close = mem_close,
	    .arg = m, .size = m->size, .readahead = readahead };

	if (head) {
		src.head = malloc(head);
		ck_assert_ptr_nonnull(src.head);
		memcpy(src.head, m->data, head);
		src.head_len = head;
	}
	return ckpt_file_open_source("mem://model.safetensors", &src, NULL, f,
	    err);
}

START_TEST(test_header_from_head_costs_nothing)
{
	struct ckpt_file *f;
	struct ckpt_error err;
	struct mem m;

	build(&m, 200, 4096);
	/* The source's first answer holds the whole header. */
	ck_assert_int_eq(open_mem(&m, 64 << 10, 64 << 10, &f, &err), 0);
	ck_assert_int_eq(ckpt_file_format(f), CKPT_FORMAT_SAFETENSORS);
	ck_assert_uint_eq(ckpt_file_tensor_count(f), 200);
	ck_assert_uint_eq(ckpt_file_size(f), m.size);
	ck_assert_uint_eq(m.calls, 0);
	ckpt_file_free(f);
	ck_assert(m.closed);
	free(m.data);
}
END_TEST

START_TEST(test_header_past_head_one_fetch)
{
	struct ckpt_file *f;
	struct ckpt_error err;
	struct mem m;

	/* A header of about 90 KB: the 4 KiB head has the length only. */
	build(&m, 1500, 16);
	ck_assert_uint_gt(m.size, 80000);
	ck_assert_int_eq(open_mem(&m, 4096, 4096, &f, &err), 0);
	ck_assert_uint_eq(ckpt_file_tensor_count(f), 1500);
	/* One read straight into the parser's buffer: no data fetched. */
	ck_assert_uint_eq(m.calls, 1);
	ck_assert_uint_lt(m.bytes, 8 + 1500 * 80);
	ckpt_file_free(f);
	free(m.data);
}
END_TEST

START_TEST(test_tensor_data_through_cache)
{
	struct ckpt_file *f;
	struct ckpt_error err;
	unsigned char buf[4096];
	struct mem m;

	build(&m, 64, 4096);
	ck_assert_int_eq(open_mem(&m, 1024, 8192, &f, &err), 0);
	m.calls = 0;
	for (size_t i = 0; i < 64; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);

		ck_assert_int_eq(ckpt_tensor_read(f, t, 0, 4096, buf, &err), 0);
		for (size_t k = 0; k < sizeof(buf); k++)
			ck_assert_uint_eq(buf[k], i);
	}
	/* Sequential: the read-ahead doubles, far fewer fetches than
	 * tensors; never more than the cap at once. */
	ck_assert_uint_lt(m.calls, 16);
	ck_assert_uint_le(m.max_len, (size_t)16 << 20);
	/* Reads that straddle block ends come right too. */
	ck_assert_int_eq(ckpt_file_pread(f, buf, 100, m.size - 100, &err), 0);
	ck_assert_int_eq(memcmp(buf, m.data + m.size - 100, 100), 0);
	ck_assert_int_eq(ckpt_file_pread(f, buf, 3000, 5000, &err), 0);
	ck_assert_int_eq(memcmp(buf, m.data + 5000, 3000), 0);
	ck_assert_int_ne(ckpt_file_pread(f, buf, 2, m.size - 1, &err), 0);
	ckpt_file_free(f);
	free(m.data);
}
END_TEST

START_TEST(test_failing_source)
{
	struct ckpt_file *f = NULL;
	struct ckpt_error err;
	unsigned char b[16];
	struct mem m;

	build(&m, 1500, 16);
	/* The header cannot be read: the open fails with the source's
	 * error, and the source is closed. */
	m.fail_from = 5000;
	ck_assert_int_eq(open_mem(&m, 4096, 4096, &f, &err), CKPT_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message, "injected"));
	ck_assert(m.closed);
	/* Data that cannot be read: an error, not zeros. */
	m.closed = false;
	m.fail_from = m.size - 16;
	ck_assert_int_eq(open_mem(&m, 4096, 4096, &f, &err), 0);
	ck_assert_int_eq(ckpt_file_pread(f, b, 16, m.size - 16, &err),
	    CKPT_ERR_IO);
	ckpt_file_free(f);
	free(m.data);
}
END_TEST

START_TEST(test_empty_and_tiny)
{
	struct ckpt_file *f;
	struct ckpt_error err;
	struct mem m = { .fail_from = UINT64_MAX };
	unsigned char one = 'x';

	m.data = &one;
	m.size = 0;
	ck_assert_int_eq(open_mem(&m, 0, 0, &f, &err), 0);
	ck_assert_int_eq(ckpt_file_format(f), CKPT_FORMAT_UNKNOWN);
	ckpt_file_free(f);
	m.size = 1;
	ck_assert_int_eq(open_mem(&m, 1, 0, &f, &err), 0);
	ck_assert_int_eq(ckpt_file_format(f), CKPT_FORMAT_TEXT);
	ckpt_file_free(f);
}
END_TEST

struct reader {
	struct ckpt_file *f;
	const struct mem *m;
	int bad;
};

static void *
read_all(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[777];
	struct ckpt_error err;

	for (uint64_t off = 0; off + sizeof(buf) <= r->m->size; off += 333) {
		if (ckpt_file_pread(r->f, buf, sizeof(buf), off, &err) ||
		    memcmp(buf, r->m->data + off, sizeof(buf)))
			r->bad++;
	}
	return NULL;
}

/* Tensor statistics read from several threads at once. */
START_TEST(test_threads)
{
	struct reader r[4];
	pthread_t tid[4];
	struct ckpt_file *f;
	struct ckpt_error err;
	struct mem m;

	build(&m, 32, 8192);
	ck_assert_int_eq(open_mem(&m, 0, 4096, &f, &err), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){ f, &m, 0 };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, read_all, &r[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		ck_assert_int_eq(r[i].bad, 0);
	}
	ckpt_file_free(f);
	free(m.data);
}
END_TEST

/* The zip directory search: reads near the end, each shorter than the
 * read-ahead but reaching the end, are cached by the first one's fetch. */
START_TEST(test_tail_reads_cached)
{
	struct ckpt_file *f;
	struct ckpt_error err;
	unsigned char buf[5000];
	struct mem m;

	build(&m, 64, 4096);
	ck_assert_int_eq(open_mem(&m, 1024, 8192, &f, &err), 0);
	m.calls = 0;
	ck_assert_int_eq(ckpt_file_pread(f, buf, 5000, m.size - 5000, &err),
	    0);
	ck_assert_int_eq(ckpt_file_pread(f, buf, 20, m.size - 30, &err), 0);
	ck_assert_int_eq(ckpt_file_pread(f, buf, 56, m.size - 400, &err), 0);
	ck_assert_int_eq(memcmp(buf, m.data + m.size - 400, 56), 0);
	ck_assert_uint_eq(m.calls, 1);
	ckpt_file_free(f);
	free(m.data);
}
END_TEST

struct half {
	struct ckpt_file *f;
	const struct mem *m;
	uint64_t from, to;
	int bad;
};

static void *
read_half(void *arg)
{
	struct half *h = arg;
	unsigned char buf[4096];
	struct ckpt_error err;

	for (uint64_t off = h->from; off < h->to; off += sizeof(buf))
		if (ckpt_file_pread(h->f, buf, sizeof(buf), off, &err) ||
		    memcmp(buf, h->m->data + off, sizeof(buf)))
			h->bad++;
	return NULL;
}

/* Two threads passing over two halves at once (diff -j over one file):
 * each pass grows its own read-ahead, interleaved as they are. */
START_TEST(test_parallel_passes)
{
	struct half h[2];
	pthread_t tid[2];
	struct ckpt_file *f;
	struct ckpt_error err;
	struct mem m;
	uint64_t start, half;

	build(&m, 64, 65536);
	ck_assert_int_eq(open_mem(&m, 0, 4096, &f, &err), 0);
	start = ckpt_file_tensor(f, 0)->offset;
	half = 32 * 65536;
	m.calls = 0;
	m.delay_us = 2000;
	for (int i = 0; i < 2; i++) {
		h[i] = (struct half){ f, &m, start + i * half,
		    start + (i + 1) * half, 0 };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, read_half,
		    &h[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(tid[i], NULL);
		ck_assert_int_eq(h[i].bad, 0);
	}
	/* 2 MiB each from 4 KiB doubling: about 10 fetches a pass, where
	 * one shared read-ahead, reset by every switch, makes hundreds. */
	ck_assert_uint_le(m.calls, 30);
	ckpt_file_free(f);
	free(m.data);
}
END_TEST

Suite *
source_suite(void)
{
	Suite *s = suite_create("source");
	TCase *tc = tcase_create("cache");

	tcase_add_test(tc, test_header_from_head_costs_nothing);
	tcase_add_test(tc, test_header_past_head_one_fetch);
	tcase_add_test(tc, test_tensor_data_through_cache);
	tcase_add_test(tc, test_failing_source);
	tcase_add_test(tc, test_empty_and_tiny);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_parallel_passes);
	tcase_add_test(tc, test_tail_reads_cached);
	suite_add_tcase(s, tc);
	return s;
}
