/* SPDX-License-Identifier: MIT */
/*
 * check_checkpoint.c - the DCP coverage checks on hand-written metadata
 * (overlaps, out-of-bounds chunks, gaps, rank mismatches, missing storage
 * entries and files, entries beyond a file's end, unsafe paths), and the
 * directory walk of ckpt_checkpoint_open.
 */
#include "unit.h"

#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "format/file.h"

/* A two-file checkpoint: ".metadata" with the given JSON, and a 100-byte
 * "__0_0.distcp". */
static struct ckpt_checkpoint *
dcp_checkpoint(const char *json)
{
	static const char names[2][16] = { ".metadata", "__0_0.distcp" };
	static unsigned char data[100];
	struct ckpt_checkpoint *c = calloc(1, sizeof(*c));
	struct ckpt_error err;

	ck_assert_ptr_nonnull(c);
	c->path = strdup(unit_tmpdir);
	c->is_dir = true;
	c->kind = "dcp";
	/* the shard is zeros, no archive: these cases are about the boxes
	 * and ranges, not about what torch.load would read there */
	c->open.flags = CKPT_OPEN_NO_PICKLE;
	c->files = calloc(2, sizeof(*c->files));
	c->nfiles = 2;
	for (int i = 0; i < 2; i++) {
		const char *p = unit_write_file(names[i], data, sizeof(data));

		c->files[i].name = strdup(names[i]);
		c->files[i].path = strdup(p);
		ck_assert_int_eq(ckpt_file_open(p, 0, &c->files[i].file, &err),
		    0);
	}
	ckpt_file_set_metadata(c->files[0].file, strdup(json));
	return c;
}

static char *
finding_ids(const struct ckpt_checkpoint *c)
{
	static char buf[1024];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->nfindings; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s:%s",
		    i ? " " : "", c->findings[i].id, c->findings[i].subject ?
		    c->findings[i].subject : "");
	return buf;
}

struct dcp_case {
	const char *what;
	const char *json;
	const char *ids;	/* expected findings "id:subject ..." */
};

#define T(size, chunks) \
	"{\"type\":\"tensor\",\"dtype\":\"F32\",\"size\":" size ",\"chunks\":" \
	chunks "}"
#define S(off, len) \
	"{\"relative_path\":\"__0_0.distcp\",\"offset\":" off ",\"length\":" \
	len "}"

static const struct dcp_case dcp_cases[] = {
	{ "exact cover",
	  "{\"state_dict_metadata\":{\"w\":" T("[4,6]",
	  "[{\"offsets\":[0,0],\"sizes\":[2,6]},"
	  "{\"offsets\":[2,0],\"sizes\":[2,6]}]") ",\"b\":{\"type\":\"bytes\"}},"
	  "\"storage_data\":{\"w|0,0\":" S("0", "10") ",\"w|2,0\":" S("10", "10")
	  ",\"b|\":" S("20", "80") "}}", "" },
	{ "overlap",
	  "{\"state_dict_metadata\":{\"w\":" T("[4,6]",
	  "[{\"offsets\":[0,0],\"sizes\":[3,6]},"
	  "{\"offsets\":[2,0],\"sizes\":[2,6]}]") "},"
	  "\"storage_data\":{\"w|0,0\":" S("0", "10") ",\"w|2,0\":" S("10", "10")
	  "}}", "dcp-chunk-overlap:w" },
	{ "gap",
	  "{\"state_dict_metadata\":{\"w\":" T("[4,6]",
	  "[{\"offsets\":[0,0],\"sizes\":[2,6]},"
	  "{\"offsets\":[2,0],\"sizes\":[2,5]}]") "},"
	  "\"storage_data\":{\"w|0,0\":" S("0", "10") ",\"w|2,0\":" S("10", "10")
	  "}}", "dcp-chunk-gap:w" },
	{ "out of bounds",
	  "{\"state_dict_metadata\":{\"w\":" T("[4,6]",
	  "[{\"offsets\":[0,0],\"sizes\":[2,6]},"
	  "{\"offsets\":[2,1],\"sizes\":[2,6]}]") "},"
	  "\"storage_data\":{\"w|0,0\":" S("0", "10") ",\"w|2,1\":" S("10", "10")
	  "}}", "dcp-chunk-out-of-bounds:w" },
	{ "rank mismatch",
	  "{\"state_dict_metadata\":{\"w\":" T("[4,6]",
	  "[{\"offsets\":[0],\"sizes\":[4]}]") "},"
	  "\"storage_data\":{\"w|0\":" S("0", "10") "}}",
	  "dcp-chunk-rank-mismatch:w" },
	{ "chunk without storage",
	  "{\"state_dict_metadata\":{\"w\":" T("[4]",
	  "[{\"offsets\":[0],\"sizes\":[4]}]") "},\"storage_data\":{}}",
	  "dcp-chunk-no-storage:w" },
	{ "bytes without storage",
	  "{\"state_dict_metadata\":{\"b\":{\"type\":\"bytes\"}},"
	  "\"storage_data\":{}}", "dcp-item-no-storage:b" },
	{ "storage beyond the file",
	  "{\"state_dict_metadata\":{\"w\":" T("[4]",
	  "[{\"offsets\":[0],\"sizes\":[4]}]") "},"
	  "\"storage_data\":{\"w|0\":" S("90", "11") "}}",
	  "dcp-storage-out-of-range:w|0" },
	{ "storage offset overflow",
	  "{\"state_dict_metadata\":{},"
	  "\"storage_data\":{\"x|\":" S("9223372036854775807",
	  "9223372036854775807") "}}", "dcp-storage-out-of-range:x|" },
	{ "missing data file",
	  "{\"state_dict_metadata\":{},\"storage_data\":{\"x|\":"
	  "{\"relative_path\":\"__9_0.distcp\",\"offset\":0,\"length\":1}}}",
	  "dcp-storage-file-missing:x|" },
	{ "path outside",
	  "{\"state_dict_metadata\":{},\"storage_data\":{\"x|\":"
	  "{\"relative_path\":\"../__0_0.distcp\",\"offset\":0,\"length\":1}}}",
	  "dcp-bad-storage-path:x|" },
	{ "scalar: no coverage check",
	  "{\"state_dict_metadata\":{\"s\":" T("[]",
	  "[{\"offsets\":[],\"sizes\":[]}]") "},"
	  "\"storage_data\":{\"s|\":" S("0", "4") "}}", "" },
	{ "volume overflow does not fake a cover",
	  "{\"state_dict_metadata\":{\"w\":" T("[4294967296,4294967296]",
	  "[{\"offsets\":[0,0],\"sizes\":[4294967296,4294967296]}]") "},"
	  "\"storage_data\":{\"w|0,0\":" S("0", "4") "}}", "" },
	{ "not DCP metadata", "{\"a\":1}", "" },
};

START_TEST(test_dcp)
{
	const struct dcp_case *k = &dcp_cases[_i];
	struct ckpt_checkpoint *c = dcp_checkpoint(k->json);
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_check_dcp(c, 0, &err), 0);
	ck_assert_msg(!strcmp(finding_ids(c), k->ids), "%s: findings '%s', "
	    "wanted '%s'", k->what, finding_ids(c), k->ids);
	ckpt_checkpoint_free(c);
}
END_TEST

START_TEST(test_walk)
{
	struct ckpt_checkpoint *c;
	struct ckpt_error err;
	char p[8192];

	snprintf(p, sizeof(p), "%s/b", unit_tmpdir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/b/c", unit_tmpdir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	unit_write_file("b/c/z.txt", "z\n", 2);
	unit_write_file("b/a.txt", "a\n", 2);
	unit_write_file("B.txt", "B\n", 2);
	unit_write_file("a-.txt", "x\n", 2);
	snprintf(p, sizeof(p), "%s/link", unit_tmpdir);
	ck_assert_int_eq(symlink("B.txt", p), 0);
	ck_assert_int_eq(ckpt_checkpoint_open(unit_tmpdir, 0, &c, &err), 0);
	ck_assert(ckpt_checkpoint_is_directory(c));
	ck_assert_uint_eq(ckpt_checkpoint_file_count(c), 4);
	/* byte order of the relative paths */
	ck_assert_str_eq(ckpt_checkpoint_file_name(c, 0), "B.txt");
	ck_assert_str_eq(ckpt_checkpoint_file_name(c, 1), "a-.txt");
	ck_assert_str_eq(ckpt_checkpoint_file_name(c, 2), "b/a.txt");
	ck_assert_str_eq(ckpt_checkpoint_file_name(c, 3), "b/c/z.txt");
	ck_assert_int_eq(ckpt_file_format(ckpt_checkpoint_file(c, 0)),
	    CKPT_FORMAT_TEXT);
	ck_assert_ptr_null(ckpt_checkpoint_file_error(c, 0));
	ck_assert_uint_eq(ckpt_checkpoint_finding_count(c), 1);
	ck_assert_str_eq(ckpt_checkpoint_finding(c, 0)->id,
	    "symlink-not-followed");
	ck_assert_str_eq(ckpt_checkpoint_kind(c), "directory");
	ckpt_checkpoint_free(c);

	/* a single file: not a directory, kind = its format */
	snprintf(p, sizeof(p), "%s/B.txt", unit_tmpdir);
	ck_assert_int_eq(ckpt_checkpoint_open(p, 0, &c, &err), 0);
	ck_assert(!ckpt_checkpoint_is_directory(c));
	ck_assert_str_eq(ckpt_checkpoint_kind(c), "text");
	ck_assert_str_eq(ckpt_checkpoint_file_name(c, 0), "B.txt");
	ckpt_checkpoint_free(c);

	ck_assert_int_eq(ckpt_checkpoint_open("/nonexistent/x", 0, &c, &err),
	    CKPT_ERR_IO);
	ck_assert_int_eq(err.sys_errno, ENOENT);
}
END_TEST

Suite *
checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("dcp");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_loop_test(tc, test_dcp, 0, (int)CKPT_ARRAY_SIZE(dcp_cases));
	tcase_add_test(tc, test_walk);
	suite_add_tcase(s, tc);
	return s;
}
