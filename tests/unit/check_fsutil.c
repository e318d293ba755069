/* SPDX-License-Identifier: MIT */
/*
 * check_fsutil.c - the one temporary-file helper (unique names, never a
 * planted symlink, never an existing file) and the one file-name rule that
 * save and the manifest reader share; the O_DIRECT writer of convert.
 */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/util.h"

START_TEST(test_tempfile_unique_excl)
{
	char path[4200], victim[4300], *t1 = NULL, *t2 = NULL;
	struct stat st;
	int fd1, fd2;

	snprintf(path, sizeof(path), "%s/pin", unit_tmpdir);
	fd1 = ckpt_tempfile(path, 0600, &t1, NULL);
	fd2 = ckpt_tempfile(path, 0600, &t2, NULL);
	ck_assert_int_ge(fd1, 0);
	ck_assert_int_ge(fd2, 0);
	ck_assert_str_ne(t1, t2);
	ck_assert_int_eq(strncmp(t1, path, strlen(path)), 0);
	ck_assert_str_eq(t1 + strlen(path), strstr(t1, ".tmp."));
	ck_assert_uint_eq(strlen(t1), strlen(path) + 11);
	ck_assert_int_eq(fstat(fd1, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	close(fd1);
	close(fd2);
	unlink(t1);
	unlink(t2);
	free(t1);
	free(t2);

	/* The write goes to a fresh file, then renames over: no other
	 * file is ever written. */
	snprintf(victim, sizeof(victim), "%s/victim", unit_tmpdir);
	{
		FILE *fp = fopen(victim, "w");

		ck_assert_ptr_nonnull(fp);
		fputs("precious", fp);
		fclose(fp);
	}
	ck_assert_int_eq(ckpt_write_file_atomic(path, "new", 3, NULL), 0);
	{
		char *text;

		ck_assert_int_eq(ckpt_read_file(victim, 100, &text, NULL,
		    NULL), 0);
		ck_assert_str_eq(text, "precious");
		free(text);
		ck_assert_int_eq(ckpt_read_file(path, 100, &text, NULL, NULL),
		    0);
		ck_assert_str_eq(text, "new");
		free(text);
	}
	/* A symlink at the target itself is replaced, not written through. */
	unlink(path);
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(ckpt_write_file_atomic(path, "new", 3, NULL), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	{
		char *text;

		ck_assert_int_eq(ckpt_read_file(victim, 100, &text, NULL,
		    NULL), 0);
		ck_assert_str_eq(text, "precious");
		free(text);
	}
}
END_TEST

START_TEST(test_manifest_path_rule)
{
	static const char *const good[] = { "a", "model.safetensors",
		"sub/dir/f.bin", "ünïcödé.bin", "a b", ".hidden", "a..b" };
	static const char *const bad[] = { "", "/abs", "trail/", "a//b",
		"./a", "a/../b", "..", "new\nline", "tab\there", "back\\slash",
		"bad\xffname", "\xc0\xaf", "\xed\xa0\x80" };
	char longp[5000];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(!ckpt_manifest_path_problem(good[i]), "%s",
		    good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ckpt_manifest_path_problem(bad[i]) != NULL,
		    "bad[%zu]", i);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_ptr_nonnull(ckpt_manifest_path_problem(longp));
}
END_TEST

/* Writes n bytes of a pattern through ckpt_dwrite in pieces of step
 * bytes and checks the file holds exactly them. */
static void
dwrite_round_trip(const char *name, size_t n, size_t step)
{
	char path[4200];
	struct ckpt_dwrite *w;
	unsigned char *data = malloc(n ? n : 1), *back;
	struct stat st;
	size_t len;
	int fd;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	snprintf(path, sizeof(path), "%s/%s", unit_tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ckpt_dwrite_start(fd, path, &w, NULL), 0);
	for (size_t off = 0; off < n; off += step)
		ck_assert_int_eq(ckpt_dwrite(w, data + off, n - off < step ?
		    n - off : step, NULL), 0);
	ck_assert_int_eq(ckpt_dwrite_finish(w, true, NULL), 0);
	/* O_DIRECT is off again: a buffered write of one byte works. */
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, n);
	close(fd);
	ck_assert_int_eq(ckpt_read_file(path, n + 1, (char **)&back, &len,
	    NULL), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_msg(!memcmp(back, data, n), "%s differs", name);
	free(back);
	free(data);
}

START_TEST(test_dwrite_sizes)
{
	const size_t chunk = (size_t)16 << 20;

	dwrite_round_trip("empty", 0, 1);
	dwrite_round_trip("one", 1, 1);
	dwrite_round_trip("block-less-one", 4095, 1000);
	dwrite_round_trip("one-chunk", chunk, chunk);
	/* More chunks than the ring holds, a tail not a whole block, and
	 * pieces that straddle the chunks. */
	dwrite_round_trip("ring", 4 * chunk + 777, 3 * 1048576 + 5);
}
END_TEST

START_TEST(test_dwrite_refuses)
{
	char path[4200];
	struct ckpt_dwrite *w = (void *)1;
	struct ckpt_error e;
	int fd;

	/* Not empty, or not at its start: no direct writer, no change. */
	snprintf(path, sizeof(path), "%s/full", unit_tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	ck_assert_int_eq(ckpt_dwrite_start(fd, path, &w, &e),
	    CKPT_ERR_UNSUPPORTED);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(ckpt_dwrite_start(fd, path, &w, &e),
	    CKPT_ERR_UNSUPPORTED);
	close(fd);

	/* Stopped after a failure elsewhere: nothing more is asked. */
	snprintf(path, sizeof(path), "%s/stopped", unit_tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ck_assert_int_eq(ckpt_dwrite_start(fd, path, &w, NULL), 0);
	ck_assert_int_eq(ckpt_dwrite(w, "abc", 3, NULL), 0);
	ck_assert_int_eq(ckpt_dwrite_finish(w, false, NULL), 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	close(fd);
}
END_TEST

Suite *
fsutil_suite(void)
{
	Suite *s = suite_create("fsutil");
	TCase *tc = tcase_create("fsutil");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_tempfile_unique_excl);
	tcase_add_test(tc, test_manifest_path_rule);
	tcase_add_test(tc, test_dwrite_sizes);
	tcase_add_test(tc, test_dwrite_refuses);
	suite_add_tcase(s, tc);
	return s;
}
