/* SPDX-License-Identifier: MIT */
/*
 * check_hashing.c - the hashing engine (hashing.c) against one-shot
 * digests: files with and without a whole-file pass, ranges that touch,
 * overlap, repeat or are empty, many tiny ones, every thread count from 1
 * to 5, both SHA-256 kernels, and a failing job among good ones; copies
 * (ckpt_hash_copy_files) byte-exact whether a pass or the ranges write.
 */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define NFILES 4

static unsigned char *content[NFILES];
static size_t content_len[NFILES] = { 3 * 1024 * 1024 + 17, 1000, 0,
    2 * 1024 * 1024 + 64 * 7 + 3 };

static void
make_files(struct ckpt_hash_job *jobs)
{
	for (size_t f = 0; f < NFILES; f++) {
		char name[16];
		uint32_t x = 0x9e3779b9u * (uint32_t)(f + 1);

		content[f] = malloc(content_len[f] + 1);
		ck_assert_ptr_nonnull(content[f]);
		for (size_t i = 0; i < content_len[f]; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			content[f][i] = (unsigned char)x;
		}
		snprintf(name, sizeof(name), "f%zu", f);
		memset(&jobs[f], 0, sizeof(jobs[f]));
		jobs[f].path = strdup(unit_write_file(name, content[f],
		    content_len[f]));
	}
}

static void
free_files(struct ckpt_hash_job *jobs)
{
	for (size_t f = 0; f < NFILES; f++) {
		free(content[f]);
		free((char *)jobs[f].path);
		free(jobs[f].ranges);
	}
}

static void
add_range(struct ckpt_hash_job *j, uint64_t off, uint64_t end)
{
	j->ranges = reallocarray(j->ranges, j->nranges + 1,
	    sizeof(*j->ranges));
	ck_assert_ptr_nonnull(j->ranges);
	memset(&j->ranges[j->nranges], 0, sizeof(*j->ranges));
	j->ranges[j->nranges].offset = off;
	j->ranges[j->nranges].end = end;
	j->nranges++;
}

/* Ranges of every shape a manifest can give, on each file. */
static void
plan_ranges(struct ckpt_hash_job *jobs)
{
	struct ckpt_hash_job *a = &jobs[0], *b = &jobs[1], *d = &jobs[3];

	a->whole = true;
	add_range(a, 2 * 1024 * 1024, 3 * 1024 * 1024 + 17);	/* to EOF */
	add_range(a, 0, 1024 * 1024);				/* at 0 */
	add_range(a, 1024 * 1024, 2 * 1024 * 1024);		/* touching */
	add_range(a, 1024 * 1024, 2 * 1024 * 1024);		/* twin */
	add_range(a, 1000, 1000);				/* empty */
	add_range(a, 500, 1024 * 1024 + 500);			/* overlapping */
	for (uint64_t o = 77; o < 200000; o += 4099)		/* tiny */
		add_range(a, o, o + 33);
	b->whole = true;		/* a small file, passes only */
	jobs[2].whole = true;		/* an empty file */
	/* Ranges only, as verify asks: chunks and an odd tail. */
	for (uint64_t o = 0; o + 65536 <= content_len[3]; o += 65536)
		add_range(d, o, o + 65536);
	add_range(d, content_len[3] - 1000, content_len[3]);
}

static void
check_digests(const struct ckpt_hash_job *jobs)
{
	unsigned char want[32];

	for (size_t f = 0; f < NFILES; f++) {
		const struct ckpt_hash_job *j = &jobs[f];

		ck_assert_int_eq(j->status, 0);
		ck_assert_uint_eq(j->size, content_len[f]);
		if (j->whole) {
			ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256,
			    content[f], content_len[f], want, NULL), 0);
			ck_assert_msg(!memcmp(j->sha256, want, 32),
			    "file %zu", f);
		}
		for (size_t r = 0; r < j->nranges; r++) {
			const struct ckpt_range_digest *rg = &j->ranges[r];

			ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256,
			    content[f] + rg->offset, rg->end - rg->offset,
			    want, NULL), 0);
			ck_assert_msg(!memcmp(rg->sha256, want, 32),
			    "file %zu range %zu [%llu, %llu)", f, r,
			    (unsigned long long)rg->offset,
			    (unsigned long long)rg->end);
		}
	}
}

struct progress_seen {
	uint64_t last, total;
	unsigned int calls;
};

static void
note_progress(uint64_t done, uint64_t total, void *data)
{
	struct progress_seen *p = data;

	ck_assert_uint_ge(done, p->last);
	ck_assert_uint_le(done, total);
	p->last = done;
	p->total = total;
	p->calls++;
}

static void
run_all_thread_counts(void)
{
	struct ckpt_hash_job jobs[NFILES];

	make_files(jobs);
	plan_ranges(jobs);
	for (unsigned int t = 1; t <= 5; t++) {
		struct progress_seen p = { 0, 0, 0 };
		struct ckpt_error err;

		for (size_t f = 0; f < NFILES; f++)
			for (size_t r = 0; r < jobs[f].nranges; r++)
				memset(jobs[f].ranges[r].sha256, 0, 32);
		ck_assert_int_eq(ckpt_hash_files(jobs, NFILES, t,
		    note_progress, &p, &err), 0);
		check_digests(jobs);
		/* Progress ends at its total: every byte was accounted. */
		ck_assert_uint_gt(p.calls, 0);
		ck_assert_uint_eq(p.last, p.total);
	}
	free_files(jobs);
}

START_TEST(test_hashing_engine_matches_oneshot)
{
	run_all_thread_counts();
}
END_TEST

START_TEST(test_hashing_engine_portable_kernel)
{
	setenv("CKPT_SHA256_KERNEL", "portable", 1);
	ckpt_sha256_reset_kernel();
	run_all_thread_counts();
	unsetenv("CKPT_SHA256_KERNEL");
	ckpt_sha256_reset_kernel();
}
END_TEST

START_TEST(test_hashing_engine_failing_job)
{
	struct ckpt_hash_job jobs[NFILES];
	struct ckpt_error err;
	char *gone;

	make_files(jobs);
	plan_ranges(jobs);
	/* File 1 is replaced by a directory; the others still hash. */
	gone = (char *)jobs[1].path;
	ck_assert_int_eq(unlink(gone), 0);
	ck_assert_int_eq(mkdir(gone, 0755), 0);
	ck_assert_int_eq(ckpt_hash_files(jobs, NFILES, 2, NULL, NULL, &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(jobs[1].status, CKPT_ERR_INVALID);
	ck_assert_str_eq(err.path, gone);
	jobs[1].status = 0;
	jobs[1].whole = false;
	jobs[1].size = content_len[1];
	check_digests(jobs);
	rmdir(gone);
	/* A range past the end fails its job with a format error. */
	jobs[3].ranges[0].end = content_len[3] + 1;
	ck_assert_int_eq(ckpt_hash_files(jobs, NFILES, 2, NULL, NULL, &err),
	    CKPT_ERR_IO);	/* job 1 (gone) comes first */
	ck_assert_int_eq(jobs[3].status, CKPT_ERR_FORMAT);
	ck_assert_int_eq(err.offset, -1);
	free_files(jobs);
}
END_TEST

/* The file at path holds exactly len bytes of want. */
static void
assert_file_is(const char *path, const unsigned char *want, size_t len)
{
	unsigned char *got = malloc(len + 1);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_ptr_nonnull(got);
	ck_assert_int_ge(fd, 0);
	n = pread(fd, got, len + 1, 0);
	close(fd);
	ck_assert_int_eq(n, (ssize_t)len);
	ck_assert_msg(!len || !memcmp(got, want, len), "%s differs", path);
	free(got);
}

/*
 * Copies: file 0 has a pass (which writes) and overlapping ranges, 1 and
 * 2 passes only, 3 ranges that overlap at the tail (not a tiling: the
 * engine gives it a pass), 3 again as a tiling (its ranges write).
 */
START_TEST(test_hashing_engine_copies)
{
	struct ckpt_hash_job jobs[NFILES];
	struct ckpt_hash_copy copies[NFILES];
	struct ckpt_error err;
	char dst[NFILES][64];

	make_files(jobs);
	plan_ranges(jobs);
	for (unsigned int t = 1; t <= 4; t++) {
		for (size_t f = 0; f < NFILES; f++) {
			snprintf(dst[f], sizeof(dst[f]), "%s/copy%zu",
			    unit_tmpdir, f);
			unlink(dst[f]);
			copies[f].fd = open(dst[f], O_WRONLY | O_CREAT |
			    O_EXCL, 0600);
			copies[f].dfd = -1;
			copies[f].path = dst[f];
			ck_assert_int_ge(copies[f].fd, 0);
		}
		if (t == 4) {	/* file 3 tiled by its ranges */
			jobs[3].ranges[jobs[3].nranges - 1].offset =
			    content_len[3] / 65536 * 65536;
			ck_assert_uint_lt(jobs[3].ranges[jobs[3].nranges -
			    1].offset, content_len[3]);
		}
		ck_assert_int_eq(ckpt_hash_copy_files(jobs, copies, NFILES, t,
		    NULL, NULL, &err), 0);
		check_digests(jobs);
		for (size_t f = 0; f < NFILES; f++) {
			close(copies[f].fd);
			assert_file_is(dst[f], content[f], content_len[f]);
		}
	}
	free_files(jobs);
}
END_TEST

/*
 * Copies written with O_DIRECT (dfd): the whole blocks through it, the
 * partial ones through fd, byte-exact whether the pass writes (cut where
 * it meets its passengers) or ranges that tile the file at offsets off
 * any block (file 3 here).
 */
START_TEST(test_hashing_engine_direct_copies)
{
	struct ckpt_hash_job jobs[NFILES];
	struct ckpt_hash_copy copies[NFILES];
	struct ckpt_error err;
	char dst[NFILES][64];

	make_files(jobs);
	plan_ranges(jobs);
	free(jobs[3].ranges);
	jobs[3].ranges = NULL;
	jobs[3].nranges = 0;
	for (uint64_t o = 0, e; o < content_len[3]; o = e) {
		e = o + 65536 + 13 < content_len[3] ? o + 65536 + 13 :
		    content_len[3];
		add_range(&jobs[3], o, e);
	}
	for (unsigned int t = 1; t <= 4; t++) {
		for (size_t f = 0; f < NFILES; f++) {
			snprintf(dst[f], sizeof(dst[f]), "%s/direct%zu",
			    unit_tmpdir, f);
			unlink(dst[f]);
			copies[f].fd = open(dst[f], O_WRONLY | O_CREAT |
			    O_EXCL, 0600);
			ck_assert_int_ge(copies[f].fd, 0);
			copies[f].dfd = open(dst[f], O_WRONLY | O_DIRECT);
			/* Only a filesystem without O_DIRECT refuses. */
			ck_assert_msg(copies[f].dfd >= 0 || errno == EINVAL,
			    "open O_DIRECT: %s", strerror(errno));
			copies[f].path = dst[f];
		}
		ck_assert_int_eq(ckpt_hash_copy_files(jobs, copies, NFILES, t,
		    NULL, NULL, &err), 0);
		check_digests(jobs);
		for (size_t f = 0; f < NFILES; f++) {
			close(copies[f].fd);
			if (copies[f].dfd >= 0)
				close(copies[f].dfd);
			assert_file_is(dst[f], content[f], content_len[f]);
		}
	}
	free_files(jobs);
}
END_TEST

/* A copy that cannot be written fails its job, naming the copy. */
START_TEST(test_hashing_engine_copy_write_error)
{
	struct ckpt_hash_job jobs[NFILES];
	struct ckpt_hash_copy copies[NFILES];
	struct ckpt_error err;
	char dst[64], *end;
	const char *at;
	unsigned long long byte;

	make_files(jobs);
	plan_ranges(jobs);
	for (size_t f = 0; f < NFILES; f++) {
		copies[f].fd = copies[f].dfd = -1;	/* hash only */
		copies[f].path = NULL;
	}
	snprintf(dst, sizeof(dst), "%s/ro", unit_tmpdir);
	copies[0].fd = open(unit_write_file("ro", "", 0), O_RDONLY);
	copies[0].path = dst;
	ck_assert_int_ge(copies[0].fd, 0);
	ck_assert_int_eq(ckpt_hash_copy_files(jobs, copies, NFILES, 2, NULL,
	    NULL, &err), CKPT_ERR_IO);
	ck_assert_int_eq(jobs[0].status, CKPT_ERR_IO);
	ck_assert_str_eq(err.path, dst);
	/* Writer threads take the steps in any order: the first write to
	 * fail may be any of them, so its byte is any within the file. */
	at = strstr(err.message, "cannot write at byte ");
	ck_assert_ptr_nonnull(at);
	byte = strtoull(at + strlen("cannot write at byte "), &end, 10);
	ck_assert_ptr_ne(end, at + strlen("cannot write at byte "));
	ck_assert_uint_lt(byte, content_len[0]);
	/* The other jobs, hash only, are unaffected. */
	ck_assert_int_eq(jobs[1].status, 0);
	ck_assert_int_eq(jobs[3].status, 0);
	close(copies[0].fd);
	free_files(jobs);
}
END_TEST

Suite *
hashing_suite(void)
{
	Suite *s = suite_create("hashing");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hashing_engine_matches_oneshot);
	tcase_add_test(tc, test_hashing_engine_portable_kernel);
	tcase_add_test(tc, test_hashing_engine_failing_job);
	tcase_add_test(tc, test_hashing_engine_copies);
	tcase_add_test(tc, test_hashing_engine_direct_copies);
	tcase_add_test(tc, test_hashing_engine_copy_write_error);
	suite_add_tcase(s, tc);
	return s;
}
