/* SPDX-License-Identifier: MIT */
/*
 * pin.c - "ckpt pin" and "ckpt unpin": mark a checkpoint so that no prune
 * removes it, and take the mark away.  A pin is a small file in
 * STORE/.ckpt/pins/ written by libckpt (ckpt_store_pin) under the store
 * lock; ls shows it and every prune honours it.
 *
 * The checkpoint is named by a reference (RUN@STEP, RUN@latest, RUN@best,
 * MODEL@vN, MODEL@ALIAS) or by the path of a checkpoint directory of the
 * store.  RUN@best ranks by --metric/--mode, else by the run's policy in
 * ckpt.yaml.  Pinning is idempotent (a second pin replaces the note);
 * unpin of RUN@STEP works even when the checkpoint itself is gone, so that
 * a stray pin can always be removed.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const pin_usage[] = {
	"ckpt pin [options] ref|path",
	NULL
};

static const char *const unpin_usage[] = {
	"ckpt unpin [options] ref|path",
	NULL
};

/* "RUN@123" -> run, step; false for any other form. */
static bool
split_run_step(const char *arg, char **run, int64_t *step)
{
	const char *at = strrchr(arg, '@');
	long long v;

	if (!at || at == arg || !at[1])
		return false;
	for (const char *p = at + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	if (parse_ll(at + 1, &v) || v < 0)
		return false;
	*run = xstrdup(arg);
	(*run)[at - arg] = '\0';
	*step = v;
	return true;
}

/* The run's metric and mode for RUN@best: flags, else ckpt.yaml; mode
 * is NULL when --mode was given. */
static void
best_metric(struct ckpt_store *store, const char *arg, const char **metric,
    enum ckpt_metric_mode *mode, struct ckpt_policy_config **cfgp)
{
	struct ckpt_policy pol;
	struct ckpt_error err;
	const char *at = strrchr(arg, '@');
	char *run;

	if (!at || strcmp(at, "@best") || (*metric && !mode))
		return;
	if (ckpt_store_config_load(store, cfgp, &err))
		die_ckpt(&err);
	run = xstrdup(arg);
	run[at - arg] = '\0';
	ckpt_policy_config_lookup(*cfgp, run, &pol);
	free(run);
	if (!*metric)
		*metric = pol.metric;
	if (mode && pol.mode == CKPT_POLICY_MAX)
		*mode = CKPT_METRIC_MAX;
}

/*
 * Resolves arg to the run and step of a checkpoint of this store.  With
 * lenient (unpin), RUN@STEP is taken as it is written.
 */
static void
resolve_target(const struct ctx *ctx, struct ckpt_store *store,
    const char *arg, const char *metric, const char *mode_s, bool lenient,
    char **run, int64_t *step, char **path)
{
	enum ckpt_metric_mode mode = CKPT_METRIC_MIN;
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_ref ref;
	struct ckpt_error err;
	char *p;

	*path = NULL;
	if (lenient && split_run_step(arg, run, step))
		return;
	if (mode_s && !strcmp(mode_s, "max"))
		mode = CKPT_METRIC_MAX;
	else if (mode_s && strcmp(mode_s, "min"))
		die_usage("--mode: '%s' is not min or max", mode_s);
	best_metric(store, arg, &metric, mode_s ? NULL : &mode, &cfg);
	p = resolve_checkpoint_arg(ctx, &store, arg, metric, mode, &ref);
	ckpt_policy_config_free(cfg);
	if (ref.run) {
		*run = xstrdup(ref.run);
		*step = ref.step;
		*path = p;
		ckpt_ref_release(&ref);
		return;
	}
	/* a path: it must be a committed checkpoint of this store */
	{
		struct ckpt_manifest *m;
		struct ckpt_ref r2;
		char *want, *got, *refstr;

		/* Nothing there: could not do the job (3), as for every
		 * missing path; something that is not a checkpoint of the
		 * store: a refused request (2). */
		if (access(p, F_OK)) {
			error("%s: %s", arg, strerror(errno));
			exit(CKPT_EXIT_ERROR);
		}
		if (ckpt_manifest_read(p, &m, &err)) {
			error_ckpt(&err);
			die_usage("%s is not a committed checkpoint", arg);
		}
		*run = xstrdup(ckpt_manifest_run(m));
		*step = ckpt_manifest_step(m);
		ckpt_manifest_free(m);
		refstr = xasprintf("%s@%lld", *run, (long long)*step);
		if (ckpt_store_resolve(store, refstr, NULL, CKPT_METRIC_MIN,
		    &r2, &err))
			die_usage("%s is not a checkpoint of the store %s", arg,
			    ckpt_store_root(store));
		want = realpath(r2.path, NULL);
		got = realpath(p, NULL);
		ckpt_ref_release(&r2);
		if (!want || !got || strcmp(want, got))
			die_usage("%s is not a checkpoint of the store %s "
			    "(%s is)", arg, ckpt_store_root(store), refstr);
		free(want);
		free(refstr);
		free(p);
		*path = got;
	}
}

static int
pin_common(int argc, char **argv, struct ctx *ctx, bool pin)
{
	const char *note = NULL, *metric = NULL, *mode = NULL;
	const struct opt pin_opts[] = {
		OPT_STRING(0, "note", &note, "text", "why it is pinned"),
		OPT_STRING(0, "metric", &metric, "name",
		    "the metric of RUN@best (default: the run's policy)"),
		OPT_STRING(0, "mode", &mode, "min|max",
		    "lower or higher is better, for RUN@best"),
		OPT_END()
	};
	const struct opt unpin_opts[] = {
		OPT_STRING(0, "metric", &metric, "name",
		    "the metric of RUN@best (default: the run's policy)"),
		OPT_STRING(0, "mode", &mode, "min|max",
		    "lower or higher is better, for RUN@best"),
		OPT_END()
	};
	const struct opt *opts = pin ? pin_opts : unpin_opts;
	const char *const *usage = pin ? pin_usage : unpin_usage;
	struct ckpt_lock_holder broken = { 0 };
	struct ckpt_store *store;
	struct ckpt_error err;
	char *run = NULL, *path = NULL;
	int64_t step;
	int nargs, rc;

	nargs = parse_options(argc, argv, ctx, opts, usage);
	if (nargs != 1)
		usage_error(usage, opts, nargs ? "one checkpoint at a time" :
		    "which checkpoint? (RUN@STEP, RUN@latest, RUN@best, a "
		    "path)");
	store = cmd_store(ctx);
	resolve_target(ctx, store, argv[0], metric, mode, !pin, &run, &step,
	    &path);
	rc = ckpt_store_lock(store, pin ? "pin" : "unpin", ctx->lock_timeout_ms,
	    &broken, &err);
	if (rc) {
		error_ckpt(&err);
		rc = exit_code_for(rc);
		goto out;
	}
	warn_broken_lock(&broken);
	if (pin)
		rc = ckpt_store_pin(store, run, step, note, &err);
	else
		rc = ckpt_store_unpin(store, run, step, &err);
	ckpt_store_unlock(store);
	if (rc) {
		error_ckpt(&err);
		/* unpinning what is not pinned: the request was wrong */
		rc = rc == CKPT_ERR_NOTFOUND ? CKPT_EXIT_USAGE :
		    exit_code_for(rc);
		goto out;
	}
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "run", json_string(run));
		json_object_set_new(doc, "step", json_integer(step));
		json_object_set_new(doc, "pinned", json_boolean(pin));
		if (path)
			json_object_set_new(doc, "path", json_string(path));
		if (pin && note)
			json_object_set_new(doc, "note", json_string(note));
		json_doc_print(doc);
	} else if (ctx->verbosity > 0) {
		printf("%s %s@%lld\n", pin ? "pinned" : "unpinned", run,
		    (long long)step);
	}
	rc = CKPT_EXIT_OK;
out:
	free(run);
	free(path);
	return rc;
}

static int
cmd_pin_main(int argc, char **argv, struct ctx *ctx)
{
	return pin_common(argc, argv, ctx, true);
}

static int
cmd_unpin_main(int argc, char **argv, struct ctx *ctx)
{
	return pin_common(argc, argv, ctx, false);
}

const struct cmd cmd_pin = {
	.name = "pin",
	.summary = "keep a checkpoint from every prune",
	.fn = cmd_pin_main,
	.flags = CMD_STORE | CMD_LOCK,
};

const struct cmd cmd_unpin = {
	.name = "unpin",
	.summary = "remove a pin",
	.fn = cmd_unpin_main,
	.flags = CMD_STORE | CMD_LOCK,
};
