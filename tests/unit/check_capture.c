/* SPDX-License-Identifier: MIT */
/*
 * check_capture.c - a program calling ckpt_save_begin() gets the same
 * manifest as "ckpt save": the git state, config, data fingerprint,
 * environment file and trainer state the library captures are compared
 * with those of the CLI, for the same input, in two stores.
 */
#include "unit.h"
#include "util/util.h"

#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

static void
sh(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* The ckpt binary of the build this runner belongs to:
 * BUILD/tests/unit/ckpt-unit -> BUILD/ckpt. */
static char *
ckpt_binary(void)
{
	char exe[PATH_MAX], *bin;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	for (int i = 0; i < 3; i++)
		*strrchr(exe, '/') = '\0';
	bin = ckpt_join(exe, "ckpt");
	ck_assert_int_eq(access(bin, X_OK), 0);
	return bin;
}

/* <unit_tmpdir>/rel (caller frees). */
static char *
tmp_path(const char *rel)
{
	char *p = ckpt_join(unit_tmpdir, rel);

	ck_assert_ptr_nonnull(p);
	return p;
}

static json_t *
manifest_of(const char *store, const char *run, int step)
{
	char path[8192];
	json_error_t je;
	json_t *m;

	snprintf(path, sizeof(path), "%s/runs/%s/step-%d/ckpt-manifest.json",
	    store, run, step);
	m = json_load_file(path, 0, &je);
	ck_assert_msg(m != NULL, "%s: %s", path, je.text);
	return m;
}

/* The library's save of sources into a store of its own. */
static void
lib_save(const char *store, struct ckpt_save_options *o)
{
	struct ckpt_store *s;
	struct ckpt_save *sv;
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_store_open(store, CKPT_STORE_CREATE, &s, &err),
	    0);
	ck_assert_msg(ckpt_save_begin(s, o, &sv, &err) == 0, "%s: %s",
	    err.path, err.message);
	ck_assert_msg(ckpt_save_finish(sv, NULL, &err) == 0, "%s",
	    err.message);
	ckpt_save_free(sv);
	ckpt_store_free(s);
}

static void
assert_same_key(json_t *a, json_t *b, const char *key)
{
	char *ta = json_dumps(json_object_get(a, key), JSON_SORT_KEYS |
	    JSON_ENCODE_ANY);
	char *tb = json_dumps(json_object_get(b, key), JSON_SORT_KEYS |
	    JSON_ENCODE_ANY);

	ck_assert_msg(ta && tb && !strcmp(ta, tb), "%s: library %s, CLI %s",
	    key, ta ? ta : "(none)", tb ? tb : "(none)");
	free(ta);
	free(tb);
}

START_TEST(test_capture_same_as_cli)
{
	const char *keys[] = { "git", "config", "data", "environment",
		"epoch", "metrics", "tags" };
	const char *data[2];
	char *bin = ckpt_binary(), *repo = tmp_path("repo");
	char *d = tmp_path("repo/data/train"), *v = tmp_path("repo/data/v");
	char *cfg = tmp_path("repo/conf.yaml"), *env = tmp_path("repo/req.txt");
	char *w = tmp_path("repo/w.bin"), *libst = tmp_path("lib-store");
	char *clist = tmp_path("cli-store");
	const char *srcs[1];
	struct ckpt_save_options o = CKPT_SAVE_OPTIONS_INIT;
	json_t *lm, *cm, *g;

	sh("mkdir -p '%s/data/train' && cd '%s' && git init -q && "
	    "echo one >tracked && git add tracked && git -c user.email=t@t "
	    "-c user.name=t commit -q -m one && echo two >tracked && "
	    "echo 'lr: 0.1' >conf.yaml && echo 'torch==1.13' >req.txt && "
	    "echo abc >data/train/a && echo defg >data/train/b && "
	    "echo w >w.bin && echo 7 >data/v", repo, repo);
	data[0] = d;
	data[1] = v;

	sh("cd '%s' && '%s' -C '%s' save -q --run r --step 1 --copy "
	    "--config '%s' --data '%s' --data '%s' --data-version v7 "
	    "--env '%s' '%s' >/dev/null", repo, bin, clist, cfg, data[0],
	    data[1], env, w);

	srcs[0] = w;
	o.run = "r";
	o.step = 1;
	o.sources = srcs;
	o.nsources = 1;
	o.transfer = CKPT_TRANSFER_COPY;
	o.nthreads = 1;
	o.metadata_json = "{\"epoch\": null, \"metrics\": {}, \"tags\": []}";
	o.git_dir = repo;
	o.config_file = cfg;
	o.data_paths = data;
	o.ndata_paths = 2;
	o.data_version = "v7";
	o.env_file = env;
	lib_save(libst, &o);

	lm = manifest_of(libst, "r", 1);
	cm = manifest_of(clist, "r", 1);
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(keys); i++)
		assert_same_key(lm, cm, keys[i]);
	/* and they hold what they should */
	g = json_object_get(lm, "git");
	ck_assert(json_is_true(json_object_get(g, "dirty")));
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(g,
	    "commit"))), 40);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(
	    lm, "data"), "files")), 3);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(json_object_get(
	    lm, "environment"), "file"), "content"));
	ck_assert(json_is_object(json_object_get(json_object_get(lm,
	    "config"), "content")));
	json_decref(lm);
	json_decref(cm);
	free(bin), free(repo), free(d), free(v), free(cfg), free(env);
	free(w), free(libst), free(clist);
}
END_TEST

START_TEST(test_capture_adopt_trainer_state)
{
	const char *keys[] = { "trainer_state", "epoch", "metrics" };
	char *bin = ckpt_binary(), *dir = tmp_path("out/checkpoint-7");
	char *libst = tmp_path("lib-store"), *clist = tmp_path("cli-store");
	const char *srcs[1];
	struct ckpt_save_options o = CKPT_SAVE_OPTIONS_INIT;
	struct ckpt_trainer_state ts;
	struct ckpt_error err;
	json_t *lm, *cm;

	sh("mkdir -p '%s' && cd '%s' && echo w >model.bin && printf '%%s' "
	    "'{\"global_step\": 7, \"epoch\": 0.5, \"best_metric\": NaN, "
	    "\"log_history\": [{\"step\": 7, \"loss\": 1.5, \"epoch\": 0.5},"
	    " {\"step\": 6, \"loss\": 9}]}' >trainer_state.json", dir, dir);

	ck_assert_int_eq(ckpt_trainer_state_read(dir, &ts, &err), 0);
	ck_assert(ts.found && ts.has_step);
	ck_assert_int_eq(ts.step, 7);
	ck_assert(ts.epoch == 0.5);
	ck_assert_str_eq(ts.metrics_json, "{\"loss\":1.5}");
	ckpt_trainer_state_release(&ts);

	sh("cd '%s' && '%s' -C '%s' save -q --adopt '%s' -m acc=0.25 "
	    ">/dev/null", unit_tmpdir, bin, clist, dir);
	srcs[0] = dir;
	o.run = "out";
	o.step = 7;
	o.sources = srcs;
	o.nsources = 1;
	o.transfer = CKPT_TRANSFER_ADOPT;
	o.nthreads = 1;
	o.metadata_json = "{\"epoch\": null, \"metrics\": {\"acc\": 0.25}}";
	lib_save(libst, &o);
	lm = manifest_of(libst, "out", 7);
	cm = manifest_of(clist, "out", 7);
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(keys); i++)
		assert_same_key(lm, cm, keys[i]);
	ck_assert(json_real_value(json_object_get(json_object_get(lm,
	    "metrics"), "loss")) == 1.5);
	json_decref(lm);
	json_decref(cm);
	free(bin), free(dir), free(libst), free(clist);
}
END_TEST

/* A file the caller names that is not there: an error, nothing saved. */
START_TEST(test_capture_missing_data_is_an_error)
{
	char *st = tmp_path("st"), *nosuch = tmp_path("nosuch");
	const char *srcs[1], *data[1];
	struct ckpt_save_options o = CKPT_SAVE_OPTIONS_INIT;
	struct ckpt_store *s;
	struct ckpt_save *sv = NULL;
	struct ckpt_error err;

	srcs[0] = unit_write_file("w.bin", "w\n", 2);
	data[0] = nosuch;
	o.run = "r";
	o.step = 1;
	o.sources = srcs;
	o.nsources = 1;
	o.transfer = CKPT_TRANSFER_COPY;
	o.capture = 0;
	o.data_paths = data;
	o.ndata_paths = 1;
	ck_assert_int_eq(ckpt_store_open(st, CKPT_STORE_CREATE, &s, &err), 0);
	ck_assert_int_eq(ckpt_save_begin(s, &o, &sv, &err), CKPT_ERR_INVALID);
	ck_assert_int_eq(err.code, CKPT_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "nosuch"));
	ck_assert_ptr_null(sv);
	ckpt_store_free(s);
	free(st), free(nosuch);
}
END_TEST

/*
 * Git and the GPUs are captured on a thread of ckpt_save_finish (so that
 * a program may fork after begin): a key of the caller's metadata still
 * wins over what that thread finds.
 */
START_TEST(test_capture_caller_keys_win)
{
	char *repo = tmp_path("repo"), *st = tmp_path("st");
	const char *srcs[1];
	struct ckpt_save_options o = CKPT_SAVE_OPTIONS_INIT;
	json_t *m;

	sh("mkdir -p '%s' && cd '%s' && git init -q && echo one >t && "
	    "git add t && git -c user.email=t@t -c user.name=t commit -q "
	    "-m one", repo, repo);
	srcs[0] = unit_write_file("w.bin", "w\n", 2);
	o.run = "r";
	o.step = 1;
	o.sources = srcs;
	o.nsources = 1;
	o.transfer = CKPT_TRANSFER_COPY;
	o.git_dir = repo;
	o.metadata_json = "{\"git\": {\"commit\": \"mine\"}, "
	    "\"environment\": {\"gpus\": [\"mine\"]}}";
	lib_save(st, &o);
	m = manifest_of(st, "r", 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m,
	    "git"), "commit")), "mine");
	ck_assert_uint_eq(json_object_size(json_object_get(m, "git")), 1);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
	    json_object_get(m, "environment"), "gpus"), 0)), "mine");
	json_decref(m);

	/* Without the caller's key the thread's finding goes in. */
	o.step = 2;
	o.metadata_json = NULL;
	lib_save(st, &o);
	m = manifest_of(st, "r", 2);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(
	    json_object_get(m, "git"), "commit"))), 40);
	json_decref(m);
	free(repo), free(st);
}
END_TEST

Suite *
capture_suite(void)
{
	Suite *s = suite_create("capture");

	TCase *tc = tcase_create("same manifest as ckpt save");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_capture_same_as_cli);
	tcase_add_test(tc, test_capture_adopt_trainer_state);
	tcase_add_test(tc, test_capture_missing_data_is_an_error);
	tcase_add_test(tc, test_capture_caller_keys_win);
	/* two saves and git: more than the default 4 s under ASan */
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
