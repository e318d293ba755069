/* SPDX-License-Identifier: MIT */
/*
 * main.c - the Check runner for libckpt's unit tests: one suite per lib
 * module, listed explicitly.  Fork mode stays on so that a crash on hostile
 * input is one failed test, not a lost run.  Under "make check" it prints
 * TAP (CK_TAP_LOG_FILE_NAME=-).
 */
#include "unit.h"

#include <ftw.h>
#include <unistd.h>

#define SUITE(fn) Suite *fn(void);
#include "suites.inc"
#undef SUITE

static Suite *(*const suites[])(void) = {
#define SUITE(fn) fn,
#include "suites.inc"
#undef SUITE
};

char unit_tmpdir[4096];

void
tmpdir_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(unit_tmpdir, sizeof(unit_tmpdir), "%s/ckpt-unit.XXXXXX",
	    base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(unit_tmpdir));
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

void
tmpdir_teardown(void)
{
	nftw(unit_tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
unit_write_file(const char *name, const void *data, size_t len)
{
	static char path[8192];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", unit_tmpdir, name);
	fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

static bool
same_bits(double a, double b)
{
	return !memcmp(&a, &b, sizeof(a));
}

void
unit_assert_stats_same(const struct ckpt_tensor_stats *a,
    const struct ckpt_tensor_stats *b)
{
	ck_assert_uint_eq(a->count, b->count);
	ck_assert_uint_eq(a->finite, b->finite);
	ck_assert_uint_eq(a->nan, b->nan);
	ck_assert_uint_eq(a->pos_inf, b->pos_inf);
	ck_assert_uint_eq(a->neg_inf, b->neg_inf);
	ck_assert_uint_eq(a->zeros, b->zeros);
	ck_assert_msg(same_bits(a->min, b->min), "min %a %a", a->min, b->min);
	ck_assert_msg(same_bits(a->max, b->max), "max %a %a", a->max, b->max);
	ck_assert_msg(same_bits(a->mean, b->mean), "mean %a %a", a->mean,
	    b->mean);
	ck_assert_msg(same_bits(a->m2, b->m2), "m2 %a %a", a->m2, b->m2);
}

int
main(void)
{
	SRunner *sr = srunner_create(NULL);
	int failed;

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(suites); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
