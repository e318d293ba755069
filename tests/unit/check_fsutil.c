/* SPDX-License-Identifier: MIT */
/*
 * check_fsutil.c - the one temporary-file helper (unique names, never a
 * planted symlink, never an existing file) and the one file-name rule that
 * save and the manifest reader share.
 */
#include "unit.h"

#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

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

Suite *
fsutil_suite(void)
{
	Suite *s = suite_create("fsutil");
	TCase *tc = tcase_create("fsutil");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_tempfile_unique_excl);
	tcase_add_test(tc, test_manifest_path_rule);
	suite_add_tcase(s, tc);
	return s;
}
