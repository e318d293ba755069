/* SPDX-License-Identifier: MIT */
/*
 * check_store.c - the store: names, open/find/create, the lock and its
 * stale-lock rule, pins, listing, every reference form, strict manifest
 * reading, the chunk planner and the hashing engine.
 */
#include "unit.h"

#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/registry.h"

static char store_dir[4200];

static void
put(const char *rel, const char *text)
{
	char path[4400];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", store_dir, rel);
	{
		char *d = ckpt_dirname(path);
		char cmd[4600];

		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", d);
		ck_assert_int_eq(system(cmd), 0);
		free(d);
	}
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
}

#define DIGEST0 "sha256:0000000000000000000000000000000000000000000000000000" \
    "000000000000"

/* Appends a record (JSON text) to the store's registry history. */
static void
record(struct ckpt_store *s, const char *text)
{
	struct ckpt_registry *r;
	json_t *j = json_loads(text, 0, NULL);

	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(ckpt_registry_load(s, 0, &r, NULL), 0);
	ck_assert_int_eq(ckpt_reg_append(r, j, NULL), 0);
	ck_assert_int_eq(ckpt_reg_commit(s, r, NULL), 0);
	ckpt_registry_free(r);
	json_decref(j);
}

/* A committed checkpoint as the listing sees it (summary + manifest). */
static void
mk_ckpt(const char *run, long step, const char *metrics, bool failed)
{
	char rel[512], doc[2048];

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"run\":\"%s\",\"step\":%ld,"
	    "\"created\":\"2026-01-01T00:00:%02ldZ\",\"metrics\":{%s},"
	    "\"size\":10,\"nfiles\":1,\"tags\":[\"t\"],"
	    "\"validation\":{\"result\":\"%s\"}}", run, step, step % 60,
	    metrics, failed ? "failed" : "ok");
	snprintf(rel, sizeof(rel), "runs/%s/step-%ld/%s", run, step,
	    CKPT_SUMMARY_NAME);
	put(rel, doc);
	snprintf(rel, sizeof(rel), "runs/%s/step-%ld/%s", run, step,
	    CKPT_MANIFEST_NAME);
	put(rel, "{\"schema\":1,\"run\":\"x\",\"step\":0,\"files\":[]}");
}

static struct ckpt_store *
mk_store(void)
{
	struct ckpt_store *s = NULL;

	snprintf(store_dir, sizeof(store_dir), "%s/store", unit_tmpdir);
	ck_assert_int_eq(ckpt_store_open(store_dir, CKPT_STORE_CREATE, &s,
	    NULL), 0);
	return s;
}

START_TEST(test_store_names)
{
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_name_check("llama-lr3e4_v1.2+x", "run", NULL),
	    0);
	ck_assert_int_eq(ckpt_name_check("", "run", &err), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_name_check(".hidden", "run", &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_name_check("a/b", "run", &err),
	    CKPT_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "'/'"));
	ck_assert_int_eq(ckpt_name_check("a@b", "run", &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_name_check("-x", "run", &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_name_check("a b", "run", &err),
	    CKPT_ERR_INVALID);
}
END_TEST

/* Recorded names (check results, storage, save phases): known names
 * round-trip, others are UNKNOWN. */
START_TEST(test_store_check_results)
{
	static const char *const known[] = { "ok", "failed", "skipped",
	    "unreadable" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ck_assert_str_eq(ckpt_check_result_name(
		    ckpt_check_result_parse(known[i])), known[i]);
	ck_assert_int_eq(ckpt_check_result_parse(NULL), CKPT_CHECK_NONE);
	ck_assert_ptr_null(ckpt_check_result_name(CKPT_CHECK_NONE));
	ck_assert_int_eq(ckpt_check_result_parse("timed-out"),
	    CKPT_CHECK_UNKNOWN);
	ck_assert_int_eq(ckpt_check_result_parse("unknown"),
	    CKPT_CHECK_UNKNOWN);
	ck_assert_str_eq(ckpt_check_result_name(CKPT_CHECK_UNKNOWN),
	    "unknown");
	ck_assert_int_eq(ckpt_storage_parse("mixed"), CKPT_STORAGE_MIXED);
	ck_assert_str_eq(ckpt_storage_name(ckpt_storage_parse("copy")),
	    "copy");
	ck_assert_int_eq(ckpt_storage_parse(NULL), CKPT_STORAGE_NONE);
	ck_assert_int_eq(ckpt_storage_parse("reflink"),
	    CKPT_STORAGE_UNKNOWN);
	for (int p = CKPT_PHASE_STAGING; p < CKPT_PHASE_UNKNOWN; p++)
		ck_assert_int_eq(ckpt_save_phase_parse(ckpt_save_phase_name(
		    (enum ckpt_save_phase)p)), p);
	ck_assert_int_eq(ckpt_save_phase_parse("uploading"),
	    CKPT_PHASE_UNKNOWN);
	ck_assert_int_eq(ckpt_save_phase_parse(NULL), CKPT_PHASE_NONE);
}
END_TEST

START_TEST(test_store_open_find_create)
{
	struct ckpt_store *s, *t;
	struct ckpt_error err;
	char sub[4400], cwd[4096];

	snprintf(store_dir, sizeof(store_dir), "%s/store", unit_tmpdir);
	ck_assert_int_eq(ckpt_store_open(store_dir, 0, &s, &err),
	    CKPT_ERR_NOTFOUND);
	s = mk_store();
	snprintf(sub, sizeof(sub), "%s/runs", store_dir);
	ck_assert_int_eq(ckpt_store_find(sub, &t, NULL), 0);
	ck_assert_str_eq(ckpt_store_root(t), ckpt_store_root(s));
	ckpt_store_free(t);
	/* A non-empty directory that is not a store is never taken over. */
	unit_write_file("junk", "x", 1);
	ck_assert_int_eq(ckpt_store_open(unit_tmpdir, CKPT_STORE_CREATE, &t,
	    &err), CKPT_ERR_REFUSED);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(unit_tmpdir), 0);
	ck_assert_int_eq(ckpt_store_find(NULL, &t, &err), CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(chdir(cwd), 0);
	ckpt_store_free(s);
}
END_TEST

START_TEST(test_store_lock)
{
	struct ckpt_store *s = mk_store(), *t;
	struct ckpt_lock_holder h, broken;
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_store_open(store_dir, 0, &t, NULL), 0);
	ck_assert_int_eq(ckpt_store_lock(s, "test one", 0, &broken, NULL), 0);
	ck_assert_int_eq(broken.pid, 0);
	ck_assert_int_eq(ckpt_store_lock_holder(t, &h, NULL), 0);
	ck_assert_int_eq(h.pid, getpid());
	ck_assert_str_eq(h.purpose, "test one");
	/* Held by a live process (us): the other handle times out. */
	ck_assert_int_eq(ckpt_store_lock(t, "test two", 50, NULL, &err),
	    CKPT_ERR_LOCKED);
	ck_assert_ptr_nonnull(strstr(err.message, "test one"));
	ckpt_store_unlock(s);
	ck_assert_int_eq(ckpt_store_lock_holder(t, &h, NULL),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(ckpt_store_lock(t, "test two", 0, NULL, NULL), 0);
	ckpt_store_unlock(t);
	ckpt_store_free(s);
	ckpt_store_free(t);
}
END_TEST

START_TEST(test_store_stale_lock)
{
	struct ckpt_store *s = mk_store();
	struct ckpt_lock_holder broken;
	char text[1024];
	pid_t pid;

	/* A lock of a process that has exited, on this host. */
	pid = fork();
	if (!pid)
		_exit(0);
	waitpid(pid, NULL, 0);
	snprintf(text, sizeof(text), "pid %ld\nhost %s\ntime 1\nboot %s\n"
	    "start 0\npurpose crashed save\n", (long)pid, ckpt_hostname(),
	    ckpt_boot_id());
	put(".ckpt/lock", text);
	ck_assert_int_eq(ckpt_store_lock(s, "after crash", 0, &broken, NULL),
	    0);
	ck_assert_int_eq(broken.pid, pid);
	ck_assert_str_eq(broken.purpose, "crashed save");
	ckpt_store_unlock(s);
	/* Another host's lock is never broken. */
	put(".ckpt/lock", "pid 1\nhost some-other-host\ntime 1\n"
	    "purpose prune\n");
	{
		struct ckpt_error err;

		ck_assert_int_eq(ckpt_store_lock(s, "x", 20, &broken, &err),
		    CKPT_ERR_LOCKED);
		ck_assert_ptr_nonnull(strstr(err.message, "some-other-host"));
		ck_assert_ptr_nonnull(strstr(err.message, "by hand"));
	}
	ckpt_store_free(s);
}
END_TEST

START_TEST(test_store_list_and_refs)
{
	struct ckpt_store *s = mk_store();
	struct ckpt_list *l;
	struct ckpt_ref r;
	struct ckpt_error err;
	double v;

	mk_ckpt("a", 10, "\"loss\":0.5", false);
	mk_ckpt("a", 200, "\"loss\":0.2", false);
	mk_ckpt("a", 30, "\"loss\":0.2", false);
	mk_ckpt("a", 40, "\"loss\":null", false);
	mk_ckpt("a", 500, "\"loss\":0.1", true);	/* failed: skipped */
	mk_ckpt("b", 7, "", false);
	put("runs/a/.tmp-step-9.1.abc/x", "partial");
	put("runs/a/step-77/weights", "no manifest");
	ck_assert_int_eq(ckpt_store_pin(s, "a", 30, "keep", NULL), 0);
	ck_assert(ckpt_store_is_pinned(s, "a", 30));
	put("registry/m/v1.json", "{\"schema\":1,\"model\":\"m\",\"version\":1,"
	    "\"run\":\"a\",\"step\":10,\"manifest\":\"sha256:00\"}");
	put("registry/m/v2.json", "{\"schema\":1,\"model\":\"m\",\"version\":2,"
	    "\"run\":\"b\",\"step\":7}");
	put("registry/m/aliases.json", "{\"schema\":1,\"aliases\":"
	    "{\"production\":1,\"staging\":2}}");
	/* references resolve from the history, not from those files */
	record(s, "{\"action\":\"promote\",\"model\":\"m\",\"version\":1,"
	    "\"run\":\"a\",\"step\":10,\"manifest\":\"" DIGEST0 "\","
	    "\"path\":\"registry/m/v1\",\"storage\":\"link\",\"size\":1,"
	    "\"nfiles\":1}");
	record(s, "{\"action\":\"promote\",\"model\":\"m\",\"version\":2,"
	    "\"run\":\"b\",\"step\":7,\"manifest\":\"" DIGEST0 "\","
	    "\"path\":\"registry/m/v2\",\"storage\":\"copy\",\"size\":1,"
	    "\"nfiles\":1}");
	record(s, "{\"action\":\"alias\",\"model\":\"m\",\"alias\":"
	    "\"production\",\"from\":null,\"to\":1}");
	record(s, "{\"action\":\"alias\",\"model\":\"m\",\"alias\":"
	    "\"staging\",\"from\":null,\"to\":2}");

	ck_assert_int_eq(ckpt_store_list(s, NULL, CKPT_LIST_STAGING, &l,
	    NULL), 0);
	ck_assert_uint_eq(ckpt_list_count(l), 6);
	ck_assert_str_eq(ckpt_list_entry(l, 0)->run, "a");
	ck_assert_int_eq(ckpt_list_entry(l, 0)->step, 10);
	ck_assert(ckpt_list_entry(l, 0)->protected_by_registry);
	ck_assert_int_eq(ckpt_list_entry(l, 1)->step, 30);	/* numeric */
	ck_assert(ckpt_list_entry(l, 1)->pinned);
	ck_assert(!ckpt_list_entry(l, 0)->pinned);
	ck_assert(ckpt_entry_metric(ckpt_list_entry(l, 2), "loss", &v));
	ck_assert(isnan(v));
	ck_assert(ckpt_list_entry(l, 4)->failed);
	ck_assert_str_eq(ckpt_list_entry(l, 5)->run, "b");
	ck_assert_uint_eq(ckpt_list_staging_count(l), 2);
	ck_assert_int_eq(ckpt_list_staging(l, 0)->state,
	    CKPT_STAGING_ABANDONED);
	ck_assert_int_eq(ckpt_list_staging(l, 1)->state,
	    CKPT_STAGING_INCOMPLETE);
	ckpt_list_free(l);

	ck_assert_int_eq(ckpt_store_resolve(s, "a@30", NULL, 0, &r, NULL), 0);
	ck_assert_int_eq(r.step, 30);
	ck_assert_ptr_nonnull(strstr(r.path, "/runs/a/step-30"));
	ckpt_ref_release(&r);
	ck_assert_int_eq(ckpt_store_resolve(s, "a@latest", NULL, 0, &r,
	    NULL), 0);
	ck_assert_int_eq(r.step, 200);
	ckpt_ref_release(&r);
	/* Tie between 30 and 200 on 0.2: the newer wins; NaN never. */
	ck_assert_int_eq(ckpt_store_resolve(s, "a@best", "loss",
	    CKPT_METRIC_MIN, &r, NULL), 0);
	ck_assert_int_eq(r.step, 200);
	ckpt_ref_release(&r);
	ck_assert_int_eq(ckpt_store_resolve(s, "a@best", "loss",
	    CKPT_METRIC_MAX, &r, NULL), 0);
	ck_assert_int_eq(r.step, 10);
	ckpt_ref_release(&r);
	ck_assert_int_eq(ckpt_store_resolve(s, "a@best", NULL, 0, &r, &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_store_resolve(s, "m@v1", NULL, 0, &r, NULL), 0);
	ck_assert_str_eq(r.run, "a");
	ck_assert_int_eq(r.step, 10);
	ck_assert_str_eq(r.model, "m");
	ck_assert_int_eq(r.version, 1);
	ck_assert_str_eq(r.manifest_digest, DIGEST0);
	ck_assert_ptr_nonnull(strstr(r.path, "/registry/m/v1"));
	ckpt_ref_release(&r);
	ck_assert_int_eq(ckpt_store_resolve(s, "m@staging", NULL, 0, &r,
	    NULL), 0);
	ck_assert_str_eq(r.run, "b");
	ck_assert_int_eq(r.version, 2);
	ckpt_ref_release(&r);
	ck_assert_int_eq(ckpt_store_resolve(s, "a@99", NULL, 0, &r, &err),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(ckpt_store_resolve(s, "a@77", NULL, 0, &r, &err),
	    CKPT_ERR_NOTFOUND);	/* no manifest: not committed */
	ck_assert_int_eq(ckpt_store_resolve(s, "m@v3", NULL, 0, &r, &err),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(ckpt_store_resolve(s, "m@nosuch", NULL, 0, &r,
	    &err), CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(ckpt_store_resolve(s, "zz@latest", NULL, 0, &r,
	    &err), CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(ckpt_store_resolve(s, "../a@1", NULL, 0, &r, &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_store_resolve(s, "a", NULL, 0, &r, &err),
	    CKPT_ERR_INVALID);
	ck_assert(ckpt_ref_syntax_ok("run@latest"));
	ck_assert(!ckpt_ref_syntax_ok("dir/run@latest"));
	ck_assert(!ckpt_ref_syntax_ok("model.safetensors"));
	ck_assert_int_eq(ckpt_store_unpin(s, "a", 30, NULL), 0);
	ck_assert_int_eq(ckpt_store_unpin(s, "a", 30, &err),
	    CKPT_ERR_NOTFOUND);
	ckpt_store_free(s);
}
END_TEST

static int
manifest_from(const char *text, struct ckpt_error *err)
{
	struct ckpt_manifest *m = NULL;
	const char *p = unit_write_file(CKPT_MANIFEST_NAME, text,
	    strlen(text));
	int rc = ckpt_manifest_read(p, &m, err);

	ckpt_manifest_free(m);
	return rc;
}

#define D64 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

START_TEST(test_store_manifest_strict)
{
	struct ckpt_error err;
	struct ckpt_manifest *m;
	const char *p;
	static const char good[] = "{\"schema\":1,\"run\":\"r\",\"step\":3,"
	    "\"files\":[{\"path\":\"a\",\"size\":0,\"sha256\":\"" D64 "\"},"
	    "{\"path\":\"d/b\",\"size\":8,\"sha256\":\"" D64 "\","
	    "\"chunks\":[{\"offset\":0,\"size\":8,\"sha256\":\"" D64 "\"}],"
	    "\"tensors\":[{\"name\":\"w\",\"dtype\":\"F32\",\"shape\":[2],"
	    "\"offset\":0,\"size\":8,\"sha256\":\"" D64 "\"}]}]}";

	p = unit_write_file(CKPT_MANIFEST_NAME, good, strlen(good));
	ck_assert_int_eq(ckpt_manifest_read(p, &m, &err), 0);
	ck_assert_int_eq(ckpt_manifest_step(m), 3);
	ck_assert_str_eq(ckpt_manifest_run(m), "r");
	ck_assert_uint_eq(ckpt_manifest_file_count(m), 2);
	ck_assert_ptr_nonnull(ckpt_manifest_find_file(m, "d/b"));
	ck_assert_ptr_null(ckpt_manifest_find_file(m, "c"));
	ck_assert_uint_eq(ckpt_manifest_find_file(m, "d/b")->ntensors, 1);
	ck_assert_int_eq(ckpt_manifest_find_file(m, "d/b")->tensors[0]
	    .bytes.end, 8);
	ck_assert_int_eq(strncmp(ckpt_manifest_digest(m), "sha256:", 7), 0);
	ckpt_manifest_free(m);
	/* Reading the directory finds the manifest inside. */
	ck_assert_int_eq(ckpt_manifest_read(unit_tmpdir, &m, NULL), 0);
	ckpt_manifest_free(m);

	ck_assert_int_eq(manifest_from("{\"schema\":1,\"schema\":1}", &err),
	    CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("{\"schema\":3,\"run\":\"r\","
	    "\"step\":1,\"files\":[]}", &err), CKPT_ERR_UNSUPPORTED);
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[]} x", &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[{\"path\":\"../etc/passwd\",\"size\":0,"
	    "\"sha256\":\"" D64 "\"}]}", &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[{\"path\":\"./a\",\"size\":0,"
	    "\"sha256\":\"" D64 "\"}]}", &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[{\"path\":\"a\",\"size\":0,"
	    "\"sha256\":\"" D64 "\"},{\"path\":\"a\",\"size\":0,"
	    "\"sha256\":\"" D64 "\"}]}", &err), CKPT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err.message, "twice"));
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[{\"path\":\"b\",\"size\":0,"
	    "\"sha256\":\"" D64 "\"},{\"path\":\"a\",\"size\":0,"
	    "\"sha256\":\"" D64 "\"}]}", &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[{\"path\":\"a\",\"size\":4,"
	    "\"sha256\":\"" D64 "\",\"chunks\":[{\"offset\":2,\"size\":"
	    "18446744073709551615,\"sha256\":\"" D64 "\"}]}]}", &err),
	    CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("{\"schema\":1,\"run\":\"r\","
	    "\"step\":1,\"files\":[{\"path\":\"a\",\"size\":0,"
	    "\"sha256\":\"sha256:XYZ\"}]}", &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(manifest_from("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
	    &err), CKPT_ERR_FORMAT);
}
END_TEST

START_TEST(test_store_chunks_plan)
{
	struct ckpt_range_digest t[3], *c;
	size_t n;

	memset(t, 0, sizeof(t));
	/* Tensors [100,200) and [150,300) (overlapping), and one too big. */
	t[0].offset = 100; t[0].end = 200;
	t[1].offset = 150; t[1].end = 300;
	t[2].offset = 300; t[2].end = 1000;
	ck_assert_int_eq(ckpt_chunks_plan(1000, t, 3, 256, &c, &n, NULL), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(c[0].offset, 0);
	ck_assert_int_eq(c[0].end, 100);
	ck_assert_int_eq(c[1].offset, 300);
	ck_assert_int_eq(c[1].end, 556);
	ck_assert_int_eq(c[2].end, 812);
	ck_assert_int_eq(c[3].end, 1000);
	free(c);
	ck_assert_int_eq(ckpt_chunks_plan(0, NULL, 0, 0, &c, &n, NULL), 0);
	ck_assert_uint_eq(n, 0);
	free(c);
}
END_TEST

START_TEST(test_store_ranges_plan)
{
	struct ckpt_range_digest t[5], *c;
	bool keep[5] = { true, false, true, false, true };
	size_t n;

	memset(t, 0, sizeof(t));
	/* [100,200) a tensor that is its bytes, [150,300) a view over it:
	 * one region, cut in chunks; [400,1000) kept whole though larger
	 * than a chunk, [400,1000) again (tied); [1000,1000) empty. */
	t[0].offset = 100; t[0].end = 200;
	t[1].offset = 150; t[1].end = 300;
	t[2].offset = 400; t[2].end = 1000;
	t[3].offset = 400; t[3].end = 1000;
	t[4].offset = 1000; t[4].end = 1000;
	ck_assert_int_eq(ckpt_ranges_plan(1300, t, keep, 5, 128, &c, &n,
	    NULL), 0);
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(c[0].offset, 0);
	ck_assert_int_eq(c[0].end, 100);
	ck_assert_int_eq(c[1].end, 228);	/* the region in chunks */
	ck_assert_int_eq(c[2].end, 300);
	ck_assert_int_eq(c[3].end, 400);	/* the gap */
	ck_assert_int_eq(c[4].end, 1000);	/* the kept tensor, whole */
	ck_assert_int_eq(c[5].end, 1128);	/* the tail in chunks */
	ck_assert_int_eq(c[6].end, 1256);
	ck_assert_int_eq(c[7].end, 1300);
	for (size_t i = 1; i < n; i++)
		ck_assert_int_eq(c[i].offset, c[i - 1].end);
	free(c);
	ck_assert_int_eq(ckpt_ranges_plan(0, NULL, NULL, 0, 0, &c, &n, NULL),
	    0);
	ck_assert_uint_eq(n, 0);
	free(c);
}
END_TEST

START_TEST(test_store_hash_engine)
{
	enum { N = 3 * 1024 * 1024 + 17 };
	unsigned char *buf = malloc(N), want[32];
	struct ckpt_range_digest *c;
	struct ckpt_hash_job job;
	struct ckpt_error err;
	size_t n;

	for (size_t i = 0; i < N; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	memset(&job, 0, sizeof(job));
	job.path = unit_write_file("big", buf, N);
	job.whole = true;
	ck_assert_int_eq(ckpt_chunks_plan(N, NULL, 0, 1 << 20, &c, &n, NULL),
	    0);
	ck_assert_uint_eq(n, 4);
	job.ranges = c;
	job.nranges = n;
	ck_assert_int_eq(ckpt_hash_files(&job, 1, 3, NULL, NULL, &err), 0);
	ck_assert_uint_eq(job.size, N);
	ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256, buf, N, want,
	    NULL), 0);
	ck_assert_mem_eq(job.sha256, want, 32);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256,
		    buf + c[i].offset, c[i].end - c[i].offset, want, NULL),
		    0);
		ck_assert_mem_eq(c[i].sha256, want, 32);
	}
	/* A range past the end fails that job with a format error. */
	c[0].end = N + 1;
	ck_assert_int_eq(ckpt_hash_files(&job, 1, 2, NULL, NULL, &err),
	    CKPT_ERR_FORMAT);
	free(c);
	free(buf);
}
END_TEST

Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	/* TCASE() cannot take fixtures under -Werror=address; spelled out. */
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_store_names);
	tcase_add_test(tc, test_store_check_results);
	tcase_add_test(tc, test_store_open_find_create);
	tcase_add_test(tc, test_store_lock);
	tcase_add_test(tc, test_store_stale_lock);
	tcase_add_test(tc, test_store_list_and_refs);
	tcase_add_test(tc, test_store_manifest_strict);
	tcase_add_test(tc, test_store_chunks_plan);
	tcase_add_test(tc, test_store_ranges_plan);
	tcase_add_test(tc, test_store_hash_engine);
	suite_add_tcase(s, tc);
	return s;
}
