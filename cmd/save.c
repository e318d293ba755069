/* SPDX-License-Identifier: MIT */
/*
 * save.c - "ckpt save": commit files or a directory as checkpoint
 * RUN@STEP of the store, atomically (the protocol is in lib/store/save.c and
 * ckpt-save(1)).  This file turns the flags into metadata and save
 * options; the library captures the rest (git state, GPUs, the config
 * file as JSON, the data fingerprint, the environment file, a Hugging Face
 * trainer_state.json: lib/store/capture.c), so that a program calling
 * libckpt gets the same manifest.  After the commit it runs --load-test
 * and --prune.
 *
 * Choices: the committed path is printed on stdout (scripts use it);
 * --background forks a detached process that owns the staging directory
 * and returns once that process has taken over; a failing load test
 * marks the checkpoint failed (latest skips it) and exits 1; --prune (or
 * prune_on_save in ckpt.yaml) prunes the run with ckpt_store_prune() after
 * the commit, and its failure is only a warning: it never undoes a commit.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const save_usage[] = {
	"ckpt save [options] --run run --step n path ...",
	"ckpt save [options] --adopt dir",
	NULL
};

#define TAIL_MAX 4096

/* ------------------------------------------------------------------ */
/* Load test                                                           */
/* ------------------------------------------------------------------ */

static char *
shell_quote(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *q = xmalloc(4 * n + 3);

	q[o++] = '\'';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'') {
			memcpy(q + o, "'\\''", 4);
			o += 4;
		} else {
			q[o++] = s[i];
		}
	}
	q[o++] = '\'';
	q[o] = '\0';
	return q;
}

static char *
substitute(const char *cmd, const char *path)
{
	char *q = shell_quote(path), *out = xstrdup("");
	const char *p = cmd, *hit;

	while ((hit = strstr(p, "{}"))) {
		char *n = xasprintf("%s%.*s%s", out, (int)(hit - p), p, q);

		free(out);
		out = n;
		p = hit + 2;
	}
	{
		char *n = xasprintf("%s%s", out, p);

		free(out);
		out = n;
	}
	free(q);
	return out;
}

/*
 * Runs cmd through /bin/sh in its own process group with {} replaced by
 * the quoted path and CKPT_PATH set; keeps the last TAIL_MAX bytes of its
 * output.  Returns a JSON object with the result.
 */
static json_t *
load_test(const char *cmd, const char *path, double timeout)
{
	char *full = substitute(cmd, path);
	char tail[TAIL_MAX];
	size_t tlen = 0;
	bool timed_out = false;
	int pfd[2], status = 0;
	double t0 = now_seconds();
	json_t *j;
	pid_t pid;

	if (pipe(pfd))
		die_errno("cannot create a pipe");
	pid = fork();
	if (pid < 0)
		die_errno("cannot fork");
	if (!pid) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (null >= 0)
			dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		setenv("CKPT_PATH", path, 1);
		execl("/bin/sh", "sh", "-c", full, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double left = timeout > 0 ? timeout - (now_seconds() - t0) : -1;
		char buf[4096];
		ssize_t n;
		int r;

		if (timeout > 0 && left <= 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			timed_out = true;
			break;
		}
		r = poll(&p, 1, left < 0 ? -1 : (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			continue;
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* Keep the tail: shift out what no longer fits. */
		if ((size_t)n >= TAIL_MAX) {
			memcpy(tail, buf + n - TAIL_MAX, TAIL_MAX);
			tlen = TAIL_MAX;
		} else {
			if (tlen + (size_t)n > TAIL_MAX) {
				size_t drop = tlen + (size_t)n - TAIL_MAX;

				memmove(tail, tail + drop, tlen - drop);
				tlen -= drop;
			}
			memcpy(tail + tlen, buf, (size_t)n);
			tlen += (size_t)n;
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	j = json_object();
	json_object_set_new(j, "command", json_string(cmd));
	json_object_set_new(j, "exit_status", WIFEXITED(status) ?
	    json_integer(WEXITSTATUS(status)) : json_null());
	json_object_set_new(j, "signal", WIFSIGNALED(status) ?
	    json_integer(WTERMSIG(status)) : json_null());
	json_object_set_new(j, "timed_out", json_boolean(timed_out));
	{
		json_t *t = json_stringn(tail, tlen);

		/* Output that is not UTF-8 is kept as hex-free text. */
		if (!t) {
			for (size_t i = 0; i < tlen; i++)
				if ((unsigned char)tail[i] >= 0x80)
					tail[i] = '?';
			t = json_stringn(tail, tlen);
		}
		json_object_set_new(j, "output_tail", t ? t : json_string(""));
	}
	json_object_set_new(j, "seconds", json_real(now_seconds() - t0));
	json_object_set_new(j, "result", json_string(!timed_out &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed"));
	free(full);
	return j;
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

struct save_args {
	const char *run, *step_s, *epoch_s, *config, *data_version, *env;
	const char *note, *resumed_from, *scope, *adopt, *load_test;
	const char *load_timeout_s, *chunk_s;
	struct strlist metrics, data, tags;
	bool move, copy, link, force, background, prune, file_sha256;
};

static void
release_args(struct save_args *a)
{
	strlist_release(&a->metrics);
	strlist_release(&a->data);
	strlist_release(&a->tags);
}

/* The metadata the flags give; the library captures the rest. */
static json_t *
build_metadata(struct ctx *ctx, struct save_args *a,
    struct ckpt_store **storep)
{
	json_t *m = json_object(), *metrics = json_object(), *tags;
	double epoch = NAN;

	if (a->epoch_s && parse_double(a->epoch_s, &epoch))
		die_usage("--epoch '%s' is not a number", a->epoch_s);
	json_object_set_new(m, "epoch", isnan(epoch) ? json_null() :
	    json_real(epoch));
	for (size_t i = 0; i < a->metrics.n; i++) {
		char *kv = a->metrics.items[i], *eq = strchr(kv, '=');
		double v;

		if (!eq || eq == kv)
			die_usage("--metric '%s': expected NAME=VALUE", kv);
		*eq = '\0';
		if (!strcasecmp(eq + 1, "nan") || !eq[1])
			v = NAN;
		else if (parse_double(eq + 1, &v))
			die_usage("--metric %s: '%s' is not a number", kv,
			    eq + 1);
		json_object_set_new(metrics, kv, isnan(v) || isinf(v) ?
		    json_null() : json_real(v));
	}
	json_object_set_new(m, "metrics", metrics);
	tags = json_array();
	for (size_t i = 0; i < a->tags.n; i++)
		json_array_append_new(tags, json_string(a->tags.items[i]));
	json_object_set_new(m, "tags", tags);
	if (a->note)
		json_object_set_new(m, "note", json_string(a->note));
	if (a->scope) {
		if (strcmp(a->scope, "full") && strcmp(a->scope,
		    "weights-only"))
			die_usage("--scope must be 'full' or 'weights-only'");
		json_object_set_new(m, "scope", json_string(a->scope));
	}
	if (a->resumed_from) {
		struct ckpt_ref ref;
		json_t *r = json_object();
		char *p;

		json_object_set_new(r, "ref", json_string(a->resumed_from));
		p = resolve_checkpoint_arg(ctx, storep, a->resumed_from, NULL,
		    CKPT_METRIC_MIN, &ref);
		if (ref.path) {
			struct ckpt_manifest *mf;

			json_object_set_new(r, "run", json_string(ref.run));
			json_object_set_new(r, "step", json_integer(ref.step));
			if (!ckpt_manifest_read(ref.path, &mf, NULL)) {
				json_object_set_new(r, "manifest", json_string(
				    ckpt_manifest_digest(mf)));
				ckpt_manifest_free(mf);
			}
			ckpt_ref_release(&ref);
		} else {
			char *abs = realpath(p, NULL);

			json_object_set_new(r, "path", json_string(abs ? abs :
			    p));
			free(abs);
		}
		free(p);
		json_object_set_new(m, "resumed_from", r);
	}
	if (a->load_test)
		json_object_set_new(m, "load_test", json_pack("{s:s}",
		    "command", a->load_test));
	return m;
}

/* ckpt.yaml's prune_on_save; a broken ckpt.yaml is prune's to report. */
static bool
prune_on_save(struct ckpt_store *s)
{
	struct ckpt_policy_config *cfg;
	bool yes = false;

	/* through the store: a remote store's ckpt.yaml is no file here */
	if (!ckpt_store_config_load(s, &cfg, NULL)) {
		yes = ckpt_policy_config_prune_on_save(cfg);
		ckpt_policy_config_free(cfg);
	}
	return yes;
}

/*
 * Files whose pickles reference classes torch.load(weights_only=True)
 * refuses: committed (the structure is fine), but verify will fail them
 * unless the store admits those globals, so the user hears it now, with
 * the exact ckpt.yaml lines that would admit the ones that can be
 * admitted (a denylisted callable such as builtins.getattr never can).
 * Returns true when some global can never be admitted: the checkpoint is
 * unsafe (exit 1).  Classes that the store may admit (a stock Trainer's
 * training_args.bin) are a warning only, until ckpt.yaml admits them.
 */
static bool
warn_unsafe_globals(const char *run, long long step, const char *val)
{
	json_t *v = json_loads(val, 0, NULL), *f, *g;
	struct strlist allowable = { 0 }, never = { 0 }, files = { 0 };
	size_t i, k;
	bool any;	/* set twice: any file, then any unadmittable */

	json_array_foreach(json_object_get(v, "files"), i, f) {
		json_t *list = json_object_get(f, "unsafe_globals");

		if (!json_array_size(list))
			continue;
		strlist_push(&files, json_string_value(json_object_get(f,
		    "path")));
		json_array_foreach(list, k, g) {
			const char *name = json_string_value(g);
			struct strlist *to;
			bool seen = false;

			if (!name)
				continue;
			to = ckpt_allow_global_check(name, NULL) ? &never :
			    &allowable;
			for (size_t j = 0; j < to->n && !seen; j++)
				seen = !strcmp(to->items[j], name);
			if (!seen)
				strlist_push(to, name);
		}
	}
	json_decref(v);
	/*
	 * builtins.getattr is how a pickle reaches an enum member of a class
	 * (a Trainer's IntervalStrategy.STEPS): it is never admitted itself,
	 * and verify accepts it on a class the store admits.  Listed only
	 * when nothing else is, as the code-running call it then is.
	 */
	if (allowable.n) {
		for (size_t j = 0; j < never.n; j++) {
			if (strcmp(never.items[j], "builtins.getattr"))
				continue;
			free(never.items[j]);
			never.items[j] = never.items[--never.n];
			break;
		}
	}
	any = files.n > 0;
	if (any) {
		fflush(stdout);
		fprintf(stderr, "ckpt: warning: %s@%lld: ", run, step);
		for (i = 0; i < files.n; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", files.items[i]);
		fprintf(stderr, " pickle%s globals that torch.load(weights_only"
		    "=True) refuses, so 'ckpt verify' fails this checkpoint\n",
		    files.n == 1 ? "s" : "");
	}
	if (never.n) {
		fprintf(stderr, "ckpt: these can never be allowed (they can "
		    "run code):");
		for (i = 0; i < never.n; i++)
			fprintf(stderr, " %s", never.items[i]);
		fputc('\n', stderr);
	}
	if (allowable.n) {
		fprintf(stderr, "ckpt: if you trust these classes, admit them "
		    "in the store's ckpt.yaml (ckpt-policy(5)):\n"
		    "verify:\n  allow_globals:\n");
		for (i = 0; i < allowable.n; i++)
			fprintf(stderr, "    - %s\n", allowable.items[i]);
	}
	any = never.n > 0;
	strlist_release(&allowable);
	strlist_release(&never);
	strlist_release(&files);
	return any;
}

/* "model.safetensors: header length 240 exceeds file size 200; ..." */
static char *
validation_failures(const char *val)
{
	json_t *v = json_loads(val, 0, NULL), *f;
	char *s = xstrdup("");
	size_t i;

	json_array_foreach(json_object_get(v, "files"), i, f) {
		const char *res = json_string_value(json_object_get(f,
		    "result"));
		const char *why = json_string_value(json_object_get(f,
		    "error"));
		char *t;

		if (!res || strcmp(res, "failed"))
			continue;
		t = xasprintf("%s%s%s: %s", s, *s ? "; " : "",
		    json_string_value(json_object_get(f, "path")),
		    why ? why : "failed");
		free(s);
		s = t;
	}
	json_decref(v);
	if (!*s) {
		free(s);
		s = xstrdup("see 'ckpt verify'");
	}
	return s;
}

/*
 * --force over a step that exists: true when that checkpoint does not
 * verify (the usual case: a job resumed from before it because it was
 * damaged), so that it is deleted rather than kept in the trash, where a
 * second copy of a broken multi-GiB checkpoint helps nobody.
 */
static bool
replaced_is_broken(const struct ctx *ctx, struct ckpt_store *s,
    const char *run, long long step)
{
	struct ckpt_verify_options vo;
	struct ckpt_report *r = NULL;
	struct ckpt_ref ref;
	char refstr[300];
	bool broken;

	snprintf(refstr, sizeof(refstr), "%s@%lld", run, step);
	if (ckpt_store_resolve(s, refstr, NULL, CKPT_METRIC_MIN, &ref, NULL))
		return false;	/* nothing there to replace */
	vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	vo.store = ckpt_store_root(s);
	vo.threads = ctx->jobs;
	broken = ckpt_verify(ref.path, &vo, &r, NULL) || !ckpt_report_ok(r);
	if (broken)
		info(ctx, "%s does not verify: the new checkpoint replaces it "
		    "and it is deleted, not kept in the trash", refstr);
	ckpt_report_free(r);
	ckpt_ref_release(&ref);
	return broken;
}

static int
after_commit(struct ctx *ctx, struct save_args *a, struct ckpt_store *s,
    const struct ckpt_save *sv, const char *run, long long step,
    json_t *report)
{
	const char *path = ckpt_save_path(sv);
	struct ckpt_manifest *m = NULL;
	int status = CKPT_EXIT_OK;
	char *val = NULL;

	/* A remote store's manifest is not a file here: what save wrote
	 * into it is the same. */
	if (strstr(path, "://") || !ckpt_manifest_read(path, &m, NULL)) {
		val = m ? ckpt_manifest_get_json(m, "validation") :
		    ckpt_save_validation(sv) ? xstrdup(ckpt_save_validation(
		    sv)) : NULL;
		if (val && strstr(val, "\"result\":\"failed\"")) {
			char *why = validation_failures(val);

			warning("%s@%lld was committed as given, but its "
			    "post-save validation failed: %s; 'ckpt verify' "
			    "will fail it", run, step, why);
			free(why);
			status = CKPT_EXIT_FINDING;
		}
		if (val && warn_unsafe_globals(run, step, val))
			status = CKPT_EXIT_FINDING;
		json_object_set_new(report, "manifest", json_string(m ?
		    ckpt_manifest_digest(m) : ckpt_save_manifest_digest(sv)));
		json_object_set_new(report, "validation", val ?
		    json_loads(val, 0, NULL) : json_null());
		ckpt_manifest_free(m);
	}
	free(val);
	if (a->load_test) {
		double timeout = 0;
		struct ckpt_error err;
		json_t *lt, *st;
		char *text;

		if (a->load_timeout_s && parse_double(a->load_timeout_s,
		    &timeout))
			die_usage("--load-test-timeout: not a number");
		lt = load_test(a->load_test, path, timeout);
		st = json_object();
		json_object_set(st, "load_test", lt);
		json_object_set_new(st, "failed", json_boolean(strcmp(
		    json_string_value(json_object_get(lt, "result")), "ok")));
		text = json_dumps(st, JSON_COMPACT);
		ckpt_error_clear(&err);
		if (ckpt_status_write(path, text, &err))
			error_ckpt(&err);
		free(text);
		if (json_is_true(json_object_get(st, "failed"))) {
			error("%s@%lld: load test failed (%s); the checkpoint "
			    "is marked failed", run, step, json_is_true(
			    json_object_get(lt, "timed_out")) ? "timed out" :
			    "non-zero exit");
			status = CKPT_EXIT_FINDING;
		}
		json_decref(st);
		json_object_set_new(report, "load_test", lt);
	}
	if (a->prune || prune_on_save(s)) {
		struct ckpt_prune_options po;
		struct ckpt_prune_report *rep;
		struct ckpt_error err;
		size_t removed = 0;
		int rc;

		po = (struct ckpt_prune_options)CKPT_PRUNE_OPTIONS_INIT;
		po.run = run;
		po.lock_timeout_ms = ctx->lock_timeout_ms;
		ckpt_error_clear(&err);
		rc = ckpt_store_prune(s, &po, &rep, &err);
		if (rc) {
			/* The commit stands whatever prune thinks. */
			warning("checkpoint saved, but not pruned: %s%s%s",
			    err.path[0] ? err.path : "", err.path[0] ? ": " :
			    "", err.message);
			json_object_set_new(report, "prune", json_false());
		} else {
			for (size_t i =
			    0; i < ckpt_prune_report_count(rep); i++)
				if (ckpt_prune_report_item(rep, i)->removed)
					removed++;
			info(ctx, "pruned %zu checkpoint%s of run %s", removed,
			    removed == 1 ? "" : "s", run);
			if (ckpt_prune_report_failed(rep))
				warning("%zu removals failed; see 'ckpt prune "
				    "--dry-run --run %s'",
				    ckpt_prune_report_failed(rep), run);
			json_object_set_new(report, "prune", json_integer(
			    (json_int_t)removed));
			ckpt_prune_report_free(rep);
		}
	}
	return status;
}

static int
cmd_save_main(int argc, char **argv, struct ctx *ctx)
{
	struct save_args a = { 0 };
	const struct opt opts[] = {
		OPT_GROUP("what"),
		OPT_STRING('r', "run", &a.run, "run", "run name"),
		OPT_STRING('s', "step", &a.step_s, "n", "step (an integer)"),
		OPT_STRING(0, "epoch", &a.epoch_s, "x", "epoch"),
		OPT_STRING_LIST('m', "metric", &a.metrics, "name=value",
		    "record a metric (repeatable; nan = no value)"),
		OPT_STRING(0, "config", &a.config, "file",
		    "embed a YAML or JSON config as JSON"),
		OPT_STRING_LIST(0, "data", &a.data, "path",
		    "fingerprint these data files (repeatable)"),
		OPT_STRING(0, "data-version", &a.data_version, "id",
		    "record a data version (DVC hash, commit, ...)"),
		OPT_STRING(0, "env", &a.env, "file",
		    "record a requirements/conda/lock file"),
		OPT_STRING_LIST('t', "tag", &a.tags, "tag", "add a tag "
		    "(repeatable)"),
		OPT_STRING(0, "note", &a.note, "text", "add a note"),
		OPT_STRING(0, "resumed-from", &a.resumed_from, "ref",
		    "the checkpoint this run resumed from"),
		OPT_STRING(0, "scope", &a.scope, "full|weights-only",
		    "what the checkpoint holds (default: inferred)"),
		OPT_GROUP("how"),
		OPT_BOOL(0, "move", &a.move, "move the files in (default on "
		    "the same filesystem)"),
		OPT_BOOL(0, "copy", &a.copy, "copy the files"),
		OPT_BOOL(0, "link", &a.link, "hard-link the files"),
		OPT_STRING(0, "adopt", &a.adopt, "dir", "register a directory "
		    "(Hugging Face checkpoint-N/) by hard links"),
		OPT_BOOL('f', "force", &a.force, "replace an existing step"),
		OPT_STRING(0, "load-test", &a.load_test, "cmd",
		    "run cmd on the committed checkpoint ({} = its path)"),
		OPT_STRING(0, "load-test-timeout", &a.load_timeout_s, "sec",
		    "kill the load test after sec seconds"),
		OPT_BOOL(0, "background", &a.background,
		    "return at once; finish in a detached process"),
		OPT_BOOL(0, "prune", &a.prune, "apply the retention policy "
		    "after the commit"),
		OPT_STRING(0, "chunk-size", &a.chunk_s, "size",
		    "chunk size of the manifest (default 64MiB)"),
		OPT_BOOL(0, "file-sha256", &a.file_sha256, "record each "
		    "file's whole SHA-256 too (same read pass)"),
		OPT_END()
	};
	struct ckpt_save_options so;
	struct ckpt_store *s = NULL;
	bool remote;
	struct ckpt_save *sv;
	struct ckpt_error err;
	struct ckpt_lock_holder broken = { 0 };
	struct ckpt_trainer_state ad = { 0 };
	struct progress prog;
	const char **sources;
	json_t *meta, *report;
	char *meta_text, *adopt_run = NULL;
	long long step = -1;
	int n, status;

	n = parse_options(argc, argv, ctx, opts, save_usage);
	if ((int)a.move + (int)a.copy + (int)a.link + (a.adopt != NULL) > 1)
		die_usage("--move, --copy, --link and --adopt exclude each "
		    "other");
	if (a.adopt) {
		char *abs, *parent;

		if (n)
			usage_error(save_usage, opts, "--adopt takes the "
			    "directory as its value, no other paths");
		abs = realpath(a.adopt, NULL);
		if (!abs)
			die_usage("--adopt %s: %s", a.adopt, strerror(errno));
		/* The step; the library records the rest of it. */
		ckpt_error_clear(&err);
		if (ckpt_trainer_state_read(abs, &ad, &err))
			die_ckpt(&err);
		if (!a.run) {
			parent = xstrdup(abs);
			*strrchr(parent, '/') = '\0';
			adopt_run = xstrdup(strrchr(parent, '/') ?
			    strrchr(parent, '/') + 1 : parent);
			free(parent);
			a.run = adopt_run;
		}
		if (!a.step_s && ad.has_step)
			step = ad.step;
		free(abs);
	} else if (!n) {
		usage_error(save_usage, opts, "nothing to save");
	}
	if (!a.run)
		usage_error(save_usage, opts, "--run is required");
	ckpt_error_clear(&err);
	if (ckpt_name_check(a.run, "run name", &err)) {
		error_ckpt(&err);
		if (a.adopt && !strcmp(a.run, adopt_run ? adopt_run : ""))
			fprintf(stderr, "hint: the run name comes from the "
			    "parent directory; give one with --run\n");
		release_args(&a);
		ckpt_trainer_state_release(&ad);
		free(adopt_run);
		return CKPT_EXIT_USAGE;
	}
	if (a.step_s && (parse_ll(a.step_s, &step) || step < 0))
		die_usage("--step '%s' is not a non-negative integer",
		    a.step_s);
	if (a.adopt && a.step_s && ad.has_step && step != ad.step)
		warning("--step %lld overrides global_step %lld of "
		    "trainer_state.json", step, (long long)ad.step);
	if (step < 0)
		usage_error(save_usage, opts, a.adopt ? "no step: "
		    "trainer_state.json has no global_step; give --step" :
		    "--step is required");
	so = (struct ckpt_save_options)CKPT_SAVE_OPTIONS_INIT;
	so.nthreads = ctx->jobs;
	if (a.chunk_s && (parse_size(a.chunk_s, &so.chunk_size) ||
	    so.chunk_size < 4096))
		die_usage("--chunk-size: a size of at least 4KiB");
	so.file_sha256 = a.file_sha256;
	so.config_file = a.config;
	so.data_paths = (const char *const *)a.data.items;
	so.ndata_paths = a.data.n;
	so.data_version = a.data_version;
	so.env_file = a.env;

	/* A source that is not there: could not do the job (3), and
	 * before the first save creates a store for nothing. */
	for (int i = 0; i < n; i++) {
		struct stat st;

		if (lstat(argv[i], &st)) {
			error("%s: %s", argv[i], strerror(errno));
			release_args(&a);
			return CKPT_EXIT_ERROR;
		}
	}
	remote = ctx->store && strstr(ctx->store, "://");
	if (remote && a.load_test) {
		error("%s: --load-test needs a local store (it runs the "
		    "command on the checkpoint's files)", ctx->store);
		release_args(&a);
		return CKPT_EXIT_USAGE;
	}
	s = cmd_store(ctx);
	meta = build_metadata(ctx, &a, &s);
	meta_text = json_dumps(meta, JSON_COMPACT);
	json_decref(meta);

	sources = xcalloc(n + 1, sizeof(*sources));
	for (int i = 0; i < n; i++)
		sources[i] = argv[i];
	if (a.adopt)
		sources[n++] = a.adopt;
	so.run = a.run;
	so.step = step;
	so.sources = sources;
	so.nsources = (size_t)n;
	so.transfer = a.adopt ? CKPT_TRANSFER_ADOPT : a.move ?
	    CKPT_TRANSFER_MOVE : a.copy ? CKPT_TRANSFER_COPY : a.link ?
	    CKPT_TRANSFER_LINK : CKPT_TRANSFER_AUTO;
	so.force = a.force;
	/* A remote checkpoint cannot be verified from here yet: the one
	 * --force replaces is kept in the trash. */
	so.discard_replaced = a.force && !remote && replaced_is_broken(ctx,
	    s, a.run, step);
	so.metadata_json = meta_text;
	so.lock_timeout_ms = ctx->lock_timeout_ms;
	progress_start(&prog, ctx, "hashing", 0);
	if (!a.background) {
		so.progress = progress_callback;
		so.progress_data = &prog;
	}
	/*
	 * A SIGINT, SIGTERM or SIGHUP from here on is recorded, the save
	 * unwinds (moved files go back), we say so, and only then does the
	 * signal act (interrupt_release below).
	 */
	ckpt_interrupt_hold();
	if (ckpt_save_begin(s, &so, &sv, &err)) {
		error_ckpt(&err);
		if (ckpt_interrupt_pending() && !strstr(err.message,
		    "could not be moved back"))
			fprintf(stderr, "ckpt: nothing was committed%s\n",
			    so.transfer == CKPT_TRANSFER_COPY ||
			    so.transfer == CKPT_TRANSFER_LINK ? "" :
			    "; moved files were moved back");
		ckpt_interrupt_release();
		exit(exit_code_for(err.code));
	}

	report = json_doc_new();
	json_object_set_new(report, "run", json_string(a.run));
	json_object_set_new(report, "step", json_integer(step));
	if (a.background) {
		int pfd[2];
		pid_t pid;
		char c;

		if (pipe(pfd))
			die_errno("cannot create a pipe");
		fflush(NULL);
		pid = fork();
		if (pid < 0)
			die_errno("cannot fork");
		if (!pid) {
			int null;

			close(pfd[0]);
			setsid();
			if (fork())
				_exit(0);	/* the grandchild carries on */
			null = open("/dev/null", O_RDWR);
			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
			}
			ckpt_save_set_phase(sv, CKPT_PHASE_STARTED);
			if (write(pfd[1], "x", 1) < 0)
				_exit(CKPT_EXIT_ERROR);
			close(pfd[1]);
			if (ckpt_save_finish(sv, &broken, &err))
				_exit(exit_code_for(err.code));
			status = after_commit(ctx, &a, s, sv, a.run, step,
			    report);
			_exit(status);
		}
		close(pfd[1]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (read(pfd[0], &c, 1) != 1)
			die("the background save did not start; see 'ckpt ls'");
		close(pfd[0]);
		json_object_set_new(report, "background", json_true());
		json_object_set_new(report, "staging", json_string(
		    ckpt_save_path(sv)));
		if (ctx->json)
			json_doc_print(report);
		else {
			json_decref(report);
			info(ctx, "saving %s@%lld in the background; 'ckpt ls' "
			    "shows its progress", a.run, step);
			printf("%s\n", ckpt_save_path(sv));
		}
		free(meta_text);
		free(sources);
		free(adopt_run);
		release_args(&a);
		ckpt_save_free(sv);
		ckpt_interrupt_release();
		return CKPT_EXIT_OK;
	}

	status = ckpt_save_finish(sv, &broken, &err);
	progress_stop(&prog);
	warn_broken_lock(&broken);
	if (status) {
		size_t moved, stranded;

		error_ckpt(&err);
		ckpt_save_moves(sv, &moved, &stranded);
		/* Only what is true: the library counted what went back. */
		if (stranded)
			fprintf(stderr, "ckpt: the save failed; nothing was "
			    "committed; %zu of %zu moved file%s could not be "
			    "moved back and %s in %s (listed in its %s); "
			    "'ckpt gc --restore' tries again\n", stranded,
			    moved, moved == 1 ? "" : "s", stranded == 1 ?
			    "is" : "are", ckpt_save_path(sv),
			    CKPT_STAGING_NAME);
		else if (err.code != CKPT_ERR_EXISTS || moved)
			fprintf(stderr, "ckpt: the save failed; nothing was "
			    "committed%s\n", moved ? " (moved files were "
			    "moved back)" : "");
		json_decref(report);
		free(meta_text);
		free(sources);
		free(adopt_run);
		release_args(&a);
		ckpt_save_free(sv);
		ckpt_interrupt_release();
		return exit_code_for(err.code);
	}
	json_object_set_new(report, "path", json_string(ckpt_save_path(sv)));
	/* Committed: the user's files are safe in the store.  A signal that
	 * came meanwhile acts now, after saying so; the load test and the
	 * prune that follow are interruptible as any command is. */
	if (ckpt_interrupt_pending())
		info(ctx, "saved %s@%lld (%s), then interrupted", a.run, step,
		    ckpt_save_path(sv));
	ckpt_interrupt_release();
	status = after_commit(ctx, &a, s, sv, a.run, step, report);
	if (ctx->json) {
		json_doc_print(report);
	} else {
		info(ctx, "saved %s@%lld (manifest %s)%s", a.run, step,
		    ckpt_save_manifest_digest(sv), strcmp(json_string_value(
		    json_object_get(json_object_get(report, "load_test"),
		    "result")) ?: "ok", "ok") ?
		    ", marked FAILED: its load test failed" : status ?
		    ", with the problems above" : "");
		printf("%s\n", ckpt_save_path(sv));
		json_decref(report);
	}
	free(meta_text);
	free(sources);
	free(adopt_run);
	ckpt_trainer_state_release(&ad);
	release_args(&a);
	ckpt_save_free(sv);
	return status;
}

const struct cmd cmd_save = {
	.name = "save",
	.summary = "commit a checkpoint into the store, atomically",
	.fn = cmd_save_main,
	.flags = CMD_STORE | CMD_CREATE_STORE | CMD_LOCK | CMD_JOBS,
};
