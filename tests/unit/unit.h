/* SPDX-License-Identifier: MIT */
/*
 * unit.h - shared by the Check unit tests: the suite table, fixtures for a
 * scratch directory, and helpers to write small files and compare results.
 */
#ifndef CKPT_UNIT_H
#define CKPT_UNIT_H

#include "util/internal.h"

#include <check.h>

/* Every tests/unit/check_<module>.c defines "Suite *<module>_suite(void)",
 * with the return type on its own line; the Makefile lists them. */

/* A fresh scratch directory per test (checked fixture); its path. */
extern char unit_tmpdir[];
void tmpdir_setup(void);
void tmpdir_teardown(void);
/* Writes len bytes to <unit_tmpdir>/name and returns the full path
 * (static buffer, valid until the next call). */
const char *unit_write_file(const char *name, const void *data, size_t len);
/* Asserts two statistics equal to the bit: every count, and min, max,
 * mean and m2 with -0 apart from +0 and NaN from NaN by payload. */
void unit_assert_stats_same(const struct ckpt_tensor_stats *a,
    const struct ckpt_tensor_stats *b);

#define TCASE(s, name, setup, teardown, ...)				\
	do {								\
		TCase *tc_ = tcase_create(name);			\
		const TTest *fns_[] = { __VA_ARGS__ };			\
		if (setup || teardown)					\
			tcase_add_checked_fixture(tc_, setup, teardown); \
		for (size_t i_ = 0; i_ < sizeof(fns_) / sizeof(fns_[0]); i_++) \
			tcase_add_test(tc_, fns_[i_]);			\
		suite_add_tcase(s, tc_);				\
	} while (0)

#endif /* CKPT_UNIT_H */
