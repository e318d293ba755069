/* SPDX-License-Identifier: MIT */
/*
 * check_api.c - the conventions of the public header: the version number,
 * versioned options structs and their _INIT macros, one progress callback.
 */
#include "unit.h"

#include <stdio.h>

START_TEST(test_api_version_number)
{
	char want[32];

	ck_assert_int_eq(ckpt_version_number(), CKPT_VERSION_NUMBER);
	ck_assert_int_eq(CKPT_VERSION_NUMBER, CKPT_VERSION_MAJOR * 1000000 +
	    CKPT_VERSION_MINOR * 1000 + CKPT_VERSION_PATCH);
	snprintf(want, sizeof(want), "%d.%d.%d", CKPT_VERSION_MAJOR,
	    CKPT_VERSION_MINOR, CKPT_VERSION_PATCH);
	ck_assert_str_eq(ckpt_version(), want);
}
END_TEST

START_TEST(test_api_init_macros)
{
	struct ckpt_gc_options gc = CKPT_GC_OPTIONS_INIT;
	struct ckpt_diff_options d = CKPT_DIFF_OPTIONS_INIT;
	struct ckpt_verify_options v = CKPT_VERIFY_OPTIONS_INIT;

	ck_assert_uint_eq(gc.version, CKPT_GC_OPTIONS_VERSION);
	/* Zero would mean "remove everything at once": the INIT default
	 * is ckpt.yaml's threshold. */
	ck_assert_int_eq(gc.older_than, -1);
	ck_assert_uint_eq(d.version, CKPT_DIFF_OPTIONS_VERSION);
	ck_assert_uint_eq(d.cmp.version, CKPT_COMPARE_OPTIONS_VERSION);
	ck_assert(d.cmp.atol == 1e-8 && d.cmp.rtol == 1e-5);
	ck_assert_uint_eq(v.version, CKPT_VERIFY_OPTIONS_VERSION);
	ck_assert_ptr_null(v.progress);
}
END_TEST

/* A version from a newer header is refused, naming the struct; 0 (a
 * zeroed struct) reads as 1 and gets as far as the file system. */
START_TEST(test_api_options_version_checked)
{
	struct ckpt_open_options o = CKPT_OPEN_OPTIONS_INIT;
	struct ckpt_verify_options v = CKPT_VERIFY_OPTIONS_INIT;
	struct ckpt_report *r = NULL;
	struct ckpt_file *f = NULL;
	struct ckpt_error err;

	o.version = CKPT_OPEN_OPTIONS_VERSION + 1;
	ckpt_error_clear(&err);
	ck_assert_int_eq(ckpt_file_open_ex("/nonexistent", &o, &f, &err),
	    CKPT_ERR_UNSUPPORTED);
	ck_assert_ptr_null(f);
	ck_assert_ptr_nonnull(strstr(err.message, "ckpt_open_options"));
	o.version = 0;
	ck_assert_int_eq(ckpt_file_open_ex("/nonexistent", &o, &f, &err),
	    CKPT_ERR_IO);
	v.version = 99;
	ck_assert_int_eq(ckpt_verify("/nonexistent", &v, &r, &err),
	    CKPT_ERR_UNSUPPORTED);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err.message, "ckpt_verify_options"));
}
END_TEST

struct seen {
	uint64_t calls, last_done, total;
	bool backwards;
};

static void
record(uint64_t done, uint64_t total, void *data)
{
	struct seen *s = data;

	if (done < s->last_done)
		s->backwards = true;
	s->calls++;
	s->last_done = done;
	s->total = total;
}

/* Three F32 tensors of 1000 values: 12,000 bytes of tensor data. */
static const char *
write_f32_file(void)
{
	static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000],"
	    "\"data_offsets\":[0,4000]},\"b\":{\"dtype\":\"F32\",\"shape\":"
	    "[1000],\"data_offsets\":[4000,8000]},\"c\":{\"dtype\":\"F32\","
	    "\"shape\":[1000],\"data_offsets\":[8000,12000]}}";
	static unsigned char buf[8 + sizeof(hdr) + 8 + 12000];
	size_t hlen = (sizeof(hdr) - 1 + 7) / 8 * 8;

	memset(buf, ' ', sizeof(buf));
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	memcpy(buf + 8, hdr, sizeof(hdr) - 1);
	memset(buf + 8 + hlen, 0, 12000);
	return unit_write_file("f32.safetensors", buf, 8 + hlen + 12000);
}

START_TEST(test_api_stats_progress)
{
	struct ckpt_stats_item items[3];
	struct seen s = { 0 };
	struct ckpt_file *f;
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_file_open(write_f32_file(), 0, &f, &err), 0);
	ck_assert_uint_eq(ckpt_file_tensor_count(f), 3);
	memset(items, 0, sizeof(items));
	for (size_t i = 0; i < 3; i++) {
		items[i].f = f;
		items[i].t = ckpt_file_tensor(f, i);
	}
	ck_assert_int_eq(ckpt_tensor_stats_many(items, 3, 2, record, &s,
	    &err), 0);
	ck_assert_uint_eq(s.calls, 3);
	ck_assert_uint_eq(s.last_done, 12000);
	ck_assert_uint_eq(s.total, 12000);
	ck_assert(!s.backwards);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(ckpt_tensor_nonfinite_many(items, 3, 1, record, &s,
	    &err), 0);
	ck_assert_uint_eq(s.last_done, 12000);
	ck_assert_uint_eq(items[2].st.count, 1000);
	ckpt_file_free(f);
}
END_TEST

/* verify --numerics: one progress for hashing and scanning, ending at
 * its total. */
START_TEST(test_api_verify_numerics_progress)
{
	struct ckpt_verify_options v = CKPT_VERIFY_OPTIONS_INIT;
	struct ckpt_report *r = NULL;
	struct seen s = { 0 };
	struct ckpt_error err;

	v.flags = CKPT_VERIFY_NUMERICS;
	v.threads = 1;
	v.progress = record;
	v.progress_data = &s;
	ck_assert_int_eq(ckpt_verify(write_f32_file(), &v, &r, &err), 0);
	ck_assert(ckpt_report_ok(r));
	ck_assert_uint_ge(s.calls, 1);
	ck_assert_uint_eq(s.last_done, 12000);
	ck_assert_uint_eq(s.total, 12000);
	ck_assert(!s.backwards);
	ckpt_report_free(r);
}
END_TEST

/* The same for a committed checkpoint, whose tensors are counted on the
 * hashing engine's read: the scan's share shrinks by their bytes, so the
 * progress still ends at its total. */
START_TEST(test_api_verify_numerics_progress_committed)
{
	struct ckpt_verify_options v = CKPT_VERIFY_OPTIONS_INIT;
	struct ckpt_save_options so = CKPT_SAVE_OPTIONS_INIT;
	const char *src = write_f32_file();
	struct ckpt_report *r = NULL;
	struct ckpt_store *st;
	struct ckpt_save *sv;
	struct seen s = { 0 };
	struct ckpt_error err;
	char dir[4096];
	bool created;

	snprintf(dir, sizeof(dir), "%s/store", unit_tmpdir);
	ck_assert_int_eq(ckpt_store_init(dir, NULL, &created, &st, &err), 0);
	so.run = "r";
	so.step = 1;
	so.sources = &src;
	so.nsources = 1;
	so.transfer = CKPT_TRANSFER_COPY;
	so.capture = 0;
	ck_assert_int_eq(ckpt_save_begin(st, &so, &sv, &err), 0);
	ck_assert_int_eq(ckpt_save_finish(sv, NULL, &err), 0);
	v.flags = CKPT_VERIFY_NUMERICS | CKPT_VERIFY_NO_CACHE;
	v.progress = record;
	v.progress_data = &s;
	for (unsigned int j = 1; j <= 2; j++) {
		memset(&s, 0, sizeof(s));
		v.threads = j;
		ck_assert_int_eq(ckpt_verify(ckpt_save_path(sv), &v, &r, &err),
		    0);
		ck_assert(ckpt_report_ok(r));
		ck_assert_uint_ge(s.calls, 1);
		ck_assert_uint_eq(s.last_done, s.total);
		ck_assert_uint_ge(s.total, 12000);
		ck_assert(!s.backwards);
		ckpt_report_free(r);
	}
	ckpt_save_free(sv);
	ckpt_store_free(st);
}
END_TEST

Suite *
api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("conventions");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_api_version_number);
	tcase_add_test(tc, test_api_init_macros);
	tcase_add_test(tc, test_api_options_version_checked);
	tcase_add_test(tc, test_api_stats_progress);
	tcase_add_test(tc, test_api_verify_numerics_progress);
	tcase_add_test(tc, test_api_verify_numerics_progress_committed);
	suite_add_tcase(s, tc);
	return s;
}
