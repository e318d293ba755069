/* SPDX-License-Identifier: MIT */
/*
 * check_zip.c - the strict zip reader, table-driven: each row builds a
 * small archive with one defect and names the finding (or the error) the
 * reader must report.
 */
#include "unit.h"

#include <fcntl.h>
#include <unistd.h>

#include "format/file.h"
#include "format/zip.h"
#include "util/libarchive.h"

struct member {
	const char *name;
	const char *data;
	uint16_t flags;		/* both headers */
	uint16_t cd_flags;	/* central only, when non-zero */
	uint16_t method;
	const char *lname;	/* local name, when it differs */
	bool bad_crc;
};

static unsigned char *
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	return p + 2;
}

static unsigned char *
put32(unsigned char *p, uint32_t v)
{
	p = put16(p, v & 0xffff);
	return put16(p, v >> 16);
}

/* A plain (non-zip64) archive of the members; extra bytes appended. */
static size_t
build(unsigned char *out, const struct member *m, size_t n, const char *tail)
{
	unsigned char *p = out, *cd, cdbuf[4096], *c = cdbuf;
	uint32_t offs[16];

	for (size_t i = 0; i < n; i++) {
		const char *ln = m[i].lname ? m[i].lname : m[i].name;
		size_t dl = strlen(m[i].data);
		uint32_t crc = ckpt_crc32(0, m[i].data, dl) ^
		    (m[i].bad_crc ? 1u : 0u);

		offs[i] = (uint32_t)(p - out);
		p = put32(p, 0x04034b50);
		p = put16(p, 20);
		p = put16(p, m[i].flags);
		p = put16(p, m[i].method);
		p = put32(p, 0);
		p = put32(p, crc);
		p = put32(p, (uint32_t)dl);
		p = put32(p, (uint32_t)dl);
		p = put16(p, (unsigned)strlen(ln));
		p = put16(p, 0);
		memcpy(p, ln, strlen(ln));
		p += strlen(ln);
		memcpy(p, m[i].data, dl);
		p += dl;
		c = put32(c, 0x02014b50);
		c = put16(c, 20);
		c = put16(c, 20);
		c = put16(c, m[i].cd_flags ? m[i].cd_flags : m[i].flags);
		c = put16(c, m[i].method);
		c = put32(c, 0);
		c = put32(c, crc);
		c = put32(c, (uint32_t)dl);
		c = put32(c, (uint32_t)dl);
		c = put16(c, (unsigned)strlen(m[i].name));
		c = put16(c, 0);
		c = put16(c, 0);
		c = put16(c, 0);
		c = put16(c, 0);
		c = put32(c, 0);
		c = put32(c, offs[i]);
		memcpy(c, m[i].name, strlen(m[i].name));
		c += strlen(m[i].name);
	}
	cd = p;
	memcpy(p, cdbuf, (size_t)(c - cdbuf));
	p += c - cdbuf;
	p = put32(p, 0x06054b50);
	p = put16(p, 0);
	p = put16(p, 0);
	p = put16(p, (unsigned)n);
	p = put16(p, (unsigned)n);
	p = put32(p, (uint32_t)(c - cdbuf));
	p = put32(p, (uint32_t)(cd - out));
	p = put16(p, 0);
	memcpy(p, tail, strlen(tail));
	p += strlen(tail);
	return (size_t)(p - out);
}

static struct ckpt_file *
file_of(const unsigned char *buf, size_t len, unsigned flags)
{
	struct ckpt_file *f = calloc(1, sizeof(*f));

	ck_assert_ptr_nonnull(f);
	f->path = strdup(unit_write_file("t.zip", buf, len));
	f->fd = open(f->path, O_RDONLY);
	ck_assert_int_ge(f->fd, 0);
	f->size = len;
	f->flags = flags;
	return f;
}

static bool
has(const struct ckpt_file *f, const char *id, const char *subject)
{
	for (size_t i = 0; i < f->nfindings; i++)
		if (!strcmp(f->findings[i].id, id) && (!subject ||
		    (f->findings[i].subject &&
		    !strcmp(f->findings[i].subject, subject))))
			return true;
	return false;
}

#define PKL { "a/data.pkl", "\x80\x02N.", 0x0800, 0, 0, NULL, false }
#define VER { "a/version", "3\n", 0x0800, 0, 0, NULL, false }

static const struct {
	const char *what;
	struct member m[4];
	size_t n;
	const char *tail;
	unsigned flags;
	int rc;			/* of ckpt_zip_open */
	const char *finding;	/* NULL: none at all */
	const char *subject;
} cases[] = {
	{ "clean", { PKL, VER }, 2, "", CKPT_OPEN_CHECK_CRC, 0, NULL, NULL },
	{ "trailing bytes", { PKL, VER }, 2, "junk", 0, 0, "zip-trailing-data",
	    NULL },
	{ "duplicate", { PKL, PKL, VER }, 3, "", 0, 0, "zip-duplicate-name",
	    "a/data.pkl" },
	{ "local name differs", { { "a/data.pkl", "x", 0x0800, 0, 0,
	    "a/datap.kl", false }, VER }, 2, "", 0, 0, "zip-header-mismatch",
	    "a/data.pkl" },
	{ "encrypted", { { "a/data.pkl", "x", 0x0801, 0, 0, NULL, false },
	    VER }, 2, "", 0, 0, "zip-encrypted", "a/data.pkl" },
	{ "encrypted in CD only", { { "a/data.pkl", "x", 0x0800, 0x0841, 0,
	    NULL, false }, VER }, 2, "", 0, 0, "zip-encrypted", "a/data.pkl" },
	{ "crc checked", { PKL, { "a/version", "3\n", 0x0800, 0, 0, NULL,
	    true } }, 2, "", CKPT_OPEN_CHECK_CRC, 0, "zip-crc-mismatch",
	    "a/version" },
	{ "crc not asked for", { PKL, { "a/version", "3\n", 0x0800, 0, 0,
	    NULL, true } }, 2, "", 0, 0, NULL, NULL },
	{ "dot-dot", { PKL, { "a/../x", "x", 0x0800, 0, 0, NULL, false } }, 2,
	    "", 0, 0, "zip-bad-name", "a/../x" },
	{ "backslash", { PKL, { "a\\x", "x", 0x0800, 0, 0, NULL, false } }, 2,
	    "", 0, 0, "zip-bad-name", "a\\x" },
	{ "bzip2", { PKL, { "a/data/0", "x", 0x0800, 0, 12, NULL, false } },
	    2, "", 0, 0, "zip-compression", "a/data/0" },
	{ "reserved flag", { PKL, { "a/data/0", "x", 0x4800, 0, 0, NULL,
	    false } }, 2, "", 0, 0, "zip-flags", "a/data/0" },
};

START_TEST(test_zip_table)
{
	static unsigned char buf[8192];

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(cases); i++) {
		size_t len = build(buf, cases[i].m, cases[i].n, cases[i].tail);
		struct ckpt_file *f = file_of(buf, len, cases[i].flags);
		struct ckpt_zip *z = NULL;
		struct ckpt_error err;
		int rc = ckpt_zip_open(f, 0, f->size, &z, &err);

		ck_assert_msg(rc == cases[i].rc, "%s: rc %d (%s)",
		    cases[i].what, rc, err.message);
		if (cases[i].finding)
			ck_assert_msg(has(f, cases[i].finding,
			    cases[i].subject), "%s: no %s finding (%zu "
			    "findings)", cases[i].what, cases[i].finding,
			    f->nfindings);
		else
			ck_assert_msg(f->nfindings == 0, "%s: finding %s",
			    cases[i].what, f->findings[0].message);
		if (z) {
			ck_assert_str_eq(z->prefix, "a");
			ck_assert_ptr_nonnull(ckpt_zip_find(z, "data.pkl"));
			ck_assert_ptr_null(ckpt_zip_find(z, "data.pk"));
		}
		ckpt_zip_free(z);
		ckpt_file_free(f);
	}
}
END_TEST

START_TEST(test_zip_errors)
{
	static const struct member ms[] = { PKL, VER };
	static unsigned char buf[8192];
	size_t len = build(buf, ms, 2, "");
	struct ckpt_file *f;
	struct ckpt_zip *z = NULL;
	struct ckpt_error err;

	/* no end of central directory record */
	f = file_of(buf, len - 22, 0);
	ck_assert_int_eq(ckpt_zip_open(f, 0, f->size, &z, &err),
	    CKPT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err.message, "truncated zip archive"));
	ckpt_file_free(f);
	/* central directory offset pointing into nothing */
	buf[len - 6] ^= 0x40;
	f = file_of(buf, len, 0);
	ck_assert_int_eq(ckpt_zip_open(f, 0, f->size, &z, &err),
	    CKPT_ERR_FORMAT);
	ckpt_file_free(f);
	buf[len - 6] ^= 0x40;
	/* too short for any archive */
	f = file_of(buf, 10, 0);
	ck_assert_int_eq(ckpt_zip_open(f, 0, f->size, &z, &err),
	    CKPT_ERR_FORMAT);
	ckpt_file_free(f);
}
END_TEST

START_TEST(test_crc32)
{
	ck_assert_uint_eq(ckpt_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(ckpt_crc32(ckpt_crc32(0, "1234", 4), "56789", 5),
	    0xcbf43926u);
	ck_assert_uint_eq(ckpt_crc32(0, "", 0), 0);
}
END_TEST

/* libarchive, loaded when first needed: its functions work. */
START_TEST(test_libarchive_load)
{
	const struct ckpt_la *la, *again;
	struct ckpt_la api;
	struct ckpt_error err;
	struct archive_entry *e;
	struct archive *a;

	ck_assert_int_eq(ckpt_la_load_from(CKPT_LIBARCHIVE_SONAME, &api,
	    &err), 0);
	/* Every member set: the table of symbols misses none of them. */
	for (size_t i = 0; i < sizeof(api) / sizeof(void (*)(void)); i++) {
		void (*fn)(void);

		memcpy(&fn, (char *)&api + i * sizeof(fn), sizeof(fn));
		ck_assert_msg(fn != NULL, "struct ckpt_la member %zu unset", i);
	}
	ck_assert_ptr_nonnull(e = api.entry_new());
	api.entry_set_pathname(e, "runs/r/step-1/x");
	ck_assert_str_eq(api.entry_pathname(e), "runs/r/step-1/x");
	api.entry_set_size(e, 12345);
	ck_assert_int_eq(api.entry_size(e), 12345);
	api.entry_free(e);
	ck_assert_int_eq(ckpt_la_load(&la, &err), 0);
	ck_assert_int_eq(ckpt_la_load(&again, &err), 0);
	ck_assert_ptr_eq(la, again);
	ck_assert_ptr_nonnull(a = la->read_new());
	ck_assert_int_eq(la->read_support_format_raw(a), ARCHIVE_OK);
	ck_assert_int_eq(la->read_free(a), ARCHIVE_OK);
}
END_TEST

/* A missing library, or one that is not libarchive, is an error naming
 * it. */
START_TEST(test_libarchive_refusals)
{
	struct ckpt_la api;
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_la_load_from("libckpt-no-such-archive.so.13",
	    &api, &err), CKPT_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message, "need libarchive"));
	ck_assert_ptr_nonnull(strstr(err.message,
	    "libckpt-no-such-archive.so.13"));
	ck_assert_ptr_null(api.read_new);
	/* libm loads, and has no archive_read_new. */
	ck_assert_int_eq(ckpt_la_load_from("libm.so.6", &api, &err),
	    CKPT_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message,
	    "libm.so.6 has no archive_read_new, so it is not libarchive"));
}
END_TEST

Suite *
zip_suite(void)
{
	Suite *s = suite_create("zip");
	TCase *tc = tcase_create("reader");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_zip_table);
	tcase_add_test(tc, test_zip_errors);
	tcase_add_test(tc, test_crc32);
	suite_add_tcase(s, tc);
	TCASE(s, "libarchive", NULL, NULL, test_libarchive_load,
	    test_libarchive_refusals);
	return s;
}
