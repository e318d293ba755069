/* SPDX-License-Identifier: MIT */
/*
 * latest.c - "ckpt latest": the path of the newest committed checkpoint of
 * a run, for a restarted job.  "Newest" is the highest step read from the
 * manifests, never a file time; checkpoints marked failed (a failed load
 * test or validation) are skipped.  With --verified, each candidate from
 * the newest down is re-hashed against its manifest and the first that
 * matches is printed (ckpt_verify(), as "ckpt verify" checks: files
 * against the manifest, structure, safety), so a job never resumes from
 * a damaged checkpoint.  The walk reads no more of the run than it needs
 * (ckpt_store_newest()); the whole run is listed only to count it, for
 * --json and when no checkpoint is usable.
 *
 * A resuming job must tell "nothing to resume, start fresh" from "there
 * is something, but none of it is usable": the first prints nothing and
 * exits 0 (also before the first save has created the store), the second
 * exits 1, so that the job stops instead of silently restarting from
 * scratch.  The idiom is in ckpt-latest(1) and the README.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"


static const char *const latest_usage[] = {
	"ckpt latest [options] --run run",
	NULL
};

/*
 * Verifies a checkpoint with the verify engine (ckpt_verify(): files
 * against the manifest, structure, safety).  Returns true when it is
 * clean; *why names the first problem otherwise.
 */
static bool
checkpoint_verifies(const struct ctx *ctx, struct ckpt_store *s,
    const struct ckpt_entry *e, bool fast, char **why)
{
	struct ckpt_verify_options vo;
	struct ckpt_report *r;
	struct ckpt_error err;
	struct progress pr;
	char label[300];
	bool ok;
	int rc;

	vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	vo.store = ckpt_store_root(s);
	vo.threads = ctx->jobs;
	vo.flags = fast ? CKPT_VERIFY_FAST : 0;
	snprintf(label, sizeof(label), "verifying %s@%lld", e->run,
	    (long long)e->step);
	progress_start(&pr, ctx, label, 0);
	vo.progress = progress_callback;
	vo.progress_data = &pr;
	ckpt_error_clear(&err);
	rc = ckpt_verify(e->path, &vo, &r, &err);
	progress_stop(&pr);
	if (rc) {
		*why = xasprintf("%s", err.message);
		return false;
	}
	ok = ckpt_report_ok(r);
	if (!ok) {
		*why = NULL;
		for (size_t i = 0; i < ckpt_report_file_count(r) &&
		    !*why; i++) {
			const struct ckpt_verify_file *f = ckpt_report_file(r,
			    i);

			if (f->status != CKPT_VERIFY_OK)
				*why = xasprintf("%s: %s%s%s%s", f->name,
				    ckpt_verify_status_name(f->status),
				    f->reason ? " (" : "", f->reason ?
				    f->reason : "", f->reason ? ")" : "");
		}
		for (size_t i = 0; i < ckpt_report_finding_count(r) && !*why;
		    i++) {
			const struct ckpt_finding *fd = ckpt_report_finding(r,
			    i);

			if (fd->severity >= CKPT_SEV_WARNING)
				*why = xasprintf("%s", fd->message);
		}
		if (!*why)
			*why = xstrdup("verification failed");
	}
	ckpt_report_free(r);
	return ok;
}

/* The answer under --json: path and step are null when there is none. */
static void
print_json(const char *run, const char *path, int64_t step, size_t total,
    size_t skipped, bool verified)
{
	json_t *doc = json_doc_new();

	json_object_set_new(doc, "run", json_string(run));
	json_object_set_new(doc, "step", path ? json_integer(step) :
	    json_null());
	json_object_set_new(doc, "path", path ? json_string(path) :
	    json_null());
	json_object_set_new(doc, "verified", json_boolean(verified));
	json_object_set_new(doc, "checkpoints", json_integer(
	    (json_int_t)total));
	json_object_set_new(doc, "skipped", json_integer((json_int_t)skipped));
	json_doc_print(doc);
}

/* Nothing to resume: no output on stdout, exit 0. */
static int
start_fresh(const struct ctx *ctx, const char *run, const char *why)
{
	if (ctx->json)
		print_json(run, NULL, 0, 0, 0, false);
	if (ctx->verbosity)
		fprintf(stderr, "ckpt: run '%s' has no checkpoint yet%s; "
		    "nothing to resume\n", run, why);
	return CKPT_EXIT_OK;
}

/* What the walk from the newest down found. */
struct pick {
	const struct ctx *ctx;
	struct ckpt_store *s;
	bool verified, fast;
	size_t skipped;
	char *path;
	int64_t step;
};

/*
 * ckpt_store_newest() offers the checkpoints not marked failed, newest
 * first: takes the first, or with --verified the first that verifies.
 */
static int
take_newest(const struct ckpt_entry *e, void *arg)
{
	struct pick *p = arg;
	char *why = NULL;

	if (p->verified && !checkpoint_verifies(p->ctx, p->s, e, p->fast,
	    &why)) {
		warning("%s@%lld does not verify (%s); trying an older one",
		    e->run, (long long)e->step, why);
		free(why);
		p->skipped++;
		return 0;
	}
	p->path = xstrdup(e->path);
	p->step = e->step;
	return 1;
}

/*
 * The checkpoints of run and how many are marked failed: the full
 * listing, read only when the answer needs the count (--json, or no
 * usable checkpoint, to tell "none yet" from "none usable").
 */
static size_t
count_checkpoints(struct ckpt_store *s, const char *run, bool warn_failed,
    size_t *failed)
{
	struct ckpt_error err;
	struct ckpt_list *l;
	size_t total;

	ckpt_error_clear(&err);
	if (ckpt_store_list(s, run, 0, &l, &err))
		die_ckpt(&err);
	total = ckpt_list_count(l);
	*failed = 0;
	for (size_t i = total; i-- > 0;) {
		const struct ckpt_entry *e = ckpt_list_entry(l, i);

		if (!e->failed)
			continue;
		if (warn_failed)
			warning("%s@%lld is marked failed (its load test or "
			    "validation failed)", e->run, (long long)e->step);
		(*failed)++;
	}
	ckpt_list_free(l);
	return total;
}

static int
cmd_latest_main(int argc, char **argv, struct ctx *ctx)
{
	const char *run = NULL;
	bool verified = false, fast = false;
	const struct opt opts[] = {
		OPT_STRING('r', "run", &run, "run", "the run (required)"),
		OPT_BOOL(0, "verified", &verified,
		    "newest checkpoint that verifies (files, structure, "
		    "safety)"),
		OPT_BOOL(0, "fast", &fast, "with --verified: sizes and "
		    "cached digests, as verify --fast"),
		OPT_END()
	};
	struct pick found = { 0 };
	struct ckpt_store *s;
	struct ckpt_error err;
	size_t total = 0, failed = 0;
	int rc;

	if (parse_options(argc, argv, ctx, opts, latest_usage))
		usage_error(latest_usage, opts, "latest takes no arguments");
	if (!run)
		usage_error(latest_usage, opts, "--run is required");
	if (fast && !verified)
		usage_error(latest_usage, opts, "--fast goes with --verified");
	ckpt_error_clear(&err);
	if (ckpt_name_check(run, "run name", &err)) {
		error_ckpt(&err);
		usage_hint();
		return CKPT_EXIT_USAGE;
	}
	if (store_not_created_yet(ctx))
		return start_fresh(ctx, run, " (the store does not exist "
		    "yet)");
	s = cmd_store(ctx);
	found.ctx = ctx;
	found.s = s;
	found.verified = verified;
	found.fast = fast;
	/* the newest first, reading no more than it needs */
	rc = ckpt_store_newest(s, run, take_newest, &found, &err);
	if (rc < 0)
		die_ckpt(&err);
	if (rc > 0) {
		if (ctx->json) {
			total = count_checkpoints(s, run, false, &failed);
			print_json(run, found.path, found.step, total,
			    found.skipped + failed, verified);
		} else {
			printf("%s\n", found.path);
		}
		free(found.path);
		return CKPT_EXIT_OK;
	}
	total = count_checkpoints(s, run, true, &failed);
	if (!total)
		return start_fresh(ctx, run, "");
	if (ctx->verbosity)
		fprintf(stderr, "ckpt: run '%s' has %zu checkpoint%s but none "
		    "is usable%s; not resuming (see 'ckpt verify %s@latest')\n",
		    run, total, total == 1 ? "" : "s", verified ? " (none "
		    "verifies)" : "", run);
	if (ctx->json)
		print_json(run, NULL, 0, total, found.skipped + failed,
		    verified);
	return CKPT_EXIT_FINDING;
}

const struct cmd cmd_latest = {
	.name = "latest",
	.summary = "print the newest committed checkpoint of a run",
	.fn = cmd_latest_main,
	.flags = CMD_STORE | CMD_JOBS,
};
