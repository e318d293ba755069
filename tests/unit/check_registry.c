/* SPDX-License-Identifier: MIT */
/*
 * check_registry.c - the registry history (registry.c): records appended
 * through ckpt_reg_append() replay into versions and aliases; the rollback
 * stack; the chain and every field checked on reading, strictly (an
 * error with the byte offset) or leniently (findings).
 */
#include "unit.h"

#include <jansson.h>

#include "store/store.h"
#include "store/registry.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111" \
    "111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222" \
    "222222222222"

static int
append(struct ckpt_registry *r, const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	ck_assert_ptr_nonnull(j);
	rc = ckpt_reg_append(r, j, NULL);
	json_decref(j);
	return rc;
}

static int
promote(struct ckpt_registry *r, int v, const char *digest)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "{\"action\":\"promote\",\"model\":\"m\","
	    "\"version\":%d,\"run\":\"r\",\"step\":%d,\"manifest\":\"%s\","
	    "\"path\":\"registry/m/v%d\",\"storage\":\"link\",\"size\":1,"
	    "\"nfiles\":1}", v, 10 * v, digest, v);
	return append(r, buf);
}

static int
move(struct ckpt_registry *r, const char *action, const char *from,
    const char *to)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "{\"action\":\"%s\",\"model\":\"m\","
	    "\"alias\":\"prod\",\"from\":%s,\"to\":%s}", action, from, to);
	return append(r, buf);
}

/* A registry built through ckpt_reg_append, and its text. */
static struct ckpt_registry *
sample(void)
{
	struct ckpt_registry *r;

	ck_assert_int_eq(ckpt_registry_parse("", 0, "h", 0, &r, NULL), 0);
	ck_assert_int_eq(promote(r, 1, D1), 0);
	ck_assert_int_eq(move(r, "alias", "null", "1"), 0);
	ck_assert_int_eq(promote(r, 2, D2), 0);
	ck_assert_int_eq(move(r, "alias", "1", "2"), 0);
	return r;
}

START_TEST(test_registry_replay)
{
	struct ckpt_registry *r = sample();
	const struct ckpt_reg_alias *a;
	const struct ckpt_reg_version *v;

	ck_assert_uint_eq(ckpt_registry_record_count(r), 4);
	ck_assert_uint_eq(ckpt_registry_version_count(r), 2);
	v = ckpt_registry_find_version(r, "m", 2);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v->manifest, D2);
	ck_assert_int_eq(v->step, 20);
	ck_assert_str_eq(v->record, ckpt_registry_record(r, 2)->digest);
	ck_assert_ptr_eq(ckpt_reg_find_manifest(r, "m", D1),
	    ckpt_registry_find_version(r, "m", 1));
	a = ckpt_registry_find_alias(r, "m", "prod");
	ck_assert_int_eq(a->version, 2);
	ck_assert_uint_eq(a->nprevious, 1);
	ck_assert_int_eq(a->previous[0], 1);
	/* the chain: each prev is the digest of the record before */
	ck_assert_ptr_null(ckpt_registry_record(r, 0)->prev);
	ck_assert_str_eq(ckpt_registry_record(r, 3)->prev,
	    ckpt_registry_record(r, 2)->digest);
	ck_assert_str_eq(ckpt_registry_head(r),
	    ckpt_registry_record(r, 3)->digest);
	/* rollback pops; a rollback to anything else does not replay */
	ck_assert_int_ne(move(r, "rollback", "2", "2"), 0);
	ck_assert_int_eq(move(r, "rollback", "2", "1"), 0);
	a = ckpt_registry_find_alias(r, "m", "prod");
	ck_assert_int_eq(a->version, 1);
	ck_assert_uint_eq(a->nprevious, 0);
	ck_assert_int_ne(move(r, "rollback", "1", "1"), 0);
	ck_assert_uint_eq(ckpt_registry_record_count(r), 5);
	ckpt_registry_free(r);
}
END_TEST

START_TEST(test_registry_append_refuses)
{
	struct ckpt_registry *r = sample();

	/* out of sequence, unknown target, wrong "from", bad path */
	ck_assert_int_ne(promote(r, 4, D1), 0);
	ck_assert_int_ne(move(r, "alias", "2", "7"), 0);
	ck_assert_int_ne(move(r, "alias", "1", "1"), 0);
	ck_assert_int_ne(append(r, "{\"action\":\"promote\",\"model\":\"m\","
	    "\"version\":3,\"run\":\"r\",\"step\":1,\"manifest\":\"" D1 "\","
	    "\"path\":\"../../etc\",\"storage\":\"link\",\"size\":1,"
	    "\"nfiles\":1}"), 0);
	ck_assert_int_ne(append(r, "{\"action\":\"drop\",\"model\":\"m\"}"),
	    0);
	/* nothing of that was kept: the next record still chains */
	ck_assert_uint_eq(ckpt_registry_record_count(r), 4);
	ck_assert_int_eq(promote(r, 3, D1), 0);
	ck_assert_int_eq(move(r, "alias-delete", "2", "null"), 0);
	ck_assert_ptr_null(ckpt_registry_find_alias(r, "m", "prod"));
	ckpt_registry_free(r);
}
END_TEST

/* The history text of a sample registry (ckpt_reg_commit writes it).  Not
 * inlined: gcc 12 then sees a dangling pointer that is not there. */
static __attribute__((noinline)) char *
sample_text(size_t *len)
{
	struct ckpt_registry *r = sample();
	struct ckpt_store *s;
	char *path, *out = NULL;

	ck_assert_int_eq(ckpt_store_init(unit_tmpdir, NULL, NULL, &s, NULL),
	    0);
	ck_assert_int_eq(ckpt_reg_commit(s, r, NULL), 0);
	ckpt_registry_free(r);
	path = ckpt_store_path(s, REG_HISTORY);
	ck_assert_int_eq(ckpt_read_file(path, 1 << 20, &out, len, NULL), 0);
	free(path);
	ckpt_store_free(s);
	return out;
}

START_TEST(test_registry_tamper)
{
	struct ckpt_registry *r;
	struct ckpt_error err;
	size_t len, off;
	char *text = sample_text(&len), *p;

	ck_assert_int_eq(ckpt_registry_parse(text, len, "h", 0, &r, NULL), 0);
	ck_assert_uint_eq(ckpt_registry_record_count(r), 4);
	ckpt_registry_free(r);

	/* one byte of record 3 changed: record 4 no longer chains */
	p = strstr(text, "\"step\":20");
	ck_assert_ptr_nonnull(p);
	p[8] = '1';
	off = (size_t)(strchr(p, '\n') - text) + 1;
	ck_assert_int_eq(ckpt_registry_parse(text, len, "h", 0, &r, &err),
	    CKPT_ERR_FORMAT);
	ck_assert_int_eq(err.offset, (int64_t)off);
	ck_assert_ptr_nonnull(strstr(err.message, "record 4 does not chain"));
	/* lenient: a finding, and the records before it */
	ck_assert_int_eq(ckpt_registry_parse(text, len, "h",
	    CKPT_REGISTRY_LENIENT, &r, &err), 0);
	ck_assert_uint_eq(ckpt_registry_problem_count(r), 1);
	ck_assert_str_eq(ckpt_registry_problem(r, 0)->id,
	    "history-chain-broken");
	ck_assert_uint_eq(ckpt_registry_record_count(r), 3);
	ckpt_registry_free(r);

	/* cut short: the last line has no newline */
	p[8] = '0';
	ck_assert_int_eq(ckpt_registry_parse(text, len - 1, "h", 0, &r,
	    &err), CKPT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err.message, "not terminated"));
	free(text);
}
END_TEST

START_TEST(test_registry_alias_names)
{
	static const char *const bad[] = { "v1", "v23", "12", "latest",
	    "best", "a/b", ".x", "" };
	static const char *const good[] = { "prod", "v", "vx", "v1a",
	    "staging-2", "a.b" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(ckpt_reg_alias_name_check(bad[i], NULL),
		    CKPT_ERR_INVALID);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_int_eq(ckpt_reg_alias_name_check(good[i], NULL), 0);
}
END_TEST

Suite *
registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("history");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_registry_replay);
	tcase_add_test(tc, test_registry_append_refuses);
	tcase_add_test(tc, test_registry_tamper);
	tcase_add_test(tc, test_registry_alias_names);
	suite_add_tcase(s, tc);
	return s;
}
