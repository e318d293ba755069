/* SPDX-License-Identifier: MIT */
/*
 * latest.c - "ckpt latest": the path of the newest committed checkpoint of
 * a run, for a restarted job.  "Newest" is the highest step read from the
 * manifests, never a file time; checkpoints marked failed (a failed load
 * test or validation) are skipped.  With --verified, each candidate from
 * the newest down is re-hashed against its manifest and the first that
 * matches is printed (ckpt_verify(), as "ckpt verify" checks: files
 * against the manifest, structure, safety), so a job never resumes from
 * a damaged checkpoint.
 * Exit 1 when there is none.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <sys/stat.h>

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
checkpoint_verifies(struct ckpt_store *s, const char *dir, char **why)
{
	struct ckpt_verify_options vo;
	struct ckpt_report *r;
	struct ckpt_error err;
	bool ok;

	memset(&vo, 0, sizeof(vo));
	vo.store = ckpt_store_root(s);
	ckpt_error_clear(&err);
	if (ckpt_verify(dir, &vo, &r, &err)) {
		*why = xasprintf("%s", err.message);
		return false;
	}
	ok = ckpt_report_ok(r);
	if (!ok) {
		*why = NULL;
		for (size_t i = 0; i < ckpt_report_file_count(r) && !*why; i++) {
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

/* What the walk from the newest down found. */
struct pick {
	struct ckpt_store *s;
	bool verified;
	size_t skipped;
	char *run, *path;
	int64_t step;
};

/* Takes the first checkpoint offered (not failed), verified if asked. */
static int
take_newest(const struct ckpt_entry *e, void *arg)
{
	struct pick *p = arg;
	char *why = NULL;

	if (p->verified && !checkpoint_verifies(p->s, e->path, &why)) {
		warning("%s@%lld does not verify (%s); trying an older one",
		    e->run, (long long)e->step, why);
		free(why);
		p->skipped++;
		return 0;
	}
	p->run = xstrdup(e->run);
	p->path = xstrdup(e->path);
	p->step = e->step;
	return 1;
}

static int
cmd_latest_main(int argc, char **argv, struct ctx *ctx)
{
	const char *run = NULL;
	bool verified = false;
	const struct opt opts[] = {
		OPT_STRING('r', "run", &run, "run", "the run (required)"),
		OPT_BOOL(0, "verified", &verified,
		    "newest checkpoint whose files match its manifest"),
		OPT_END()
	};
	struct pick found = { 0 };
	struct ckpt_store *s;
	struct ckpt_error err;
	int rc;

	if (parse_options(argc, argv, ctx, opts, latest_usage))
		usage_error(latest_usage, opts, "latest takes no arguments");
	if (!run)
		usage_error(latest_usage, opts, "--run is required");
	ckpt_error_clear(&err);
	if (ckpt_name_check(run, "run name", &err)) {
		error_ckpt(&err);
		return CKPT_EXIT_USAGE;
	}
	s = store_open(ctx, false);
	found.s = s;
	found.verified = verified;
	/* the newest first, reading no more than it needs */
	rc = ckpt_store_newest(s, run, take_newest, &found, &err);
	if (rc < 0)
		die_ckpt(&err);
	if (!rc) {
		if (ctx->verbosity)
			fprintf(stderr, "ckpt: run '%s' has no committed%s "
			    "checkpoint\n", run, verified ? ", verified" : "");
		ckpt_store_free(s);
		return CKPT_EXIT_FINDING;
	}
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "run", json_string(found.run));
		json_object_set_new(doc, "step", json_integer(found.step));
		json_object_set_new(doc, "path", json_string(found.path));
		json_object_set_new(doc, "verified", json_boolean(verified));
		json_object_set_new(doc, "skipped", json_integer(
		    (json_int_t)found.skipped));
		json_doc_print(doc);
	} else {
		printf("%s\n", found.path);
	}
	free(found.run);
	free(found.path);
	ckpt_store_free(s);
	return CKPT_EXIT_OK;
}

const struct cmd cmd_latest = {
	.name = "latest",
	.summary = "print the newest committed checkpoint of a run",
	.fn = cmd_latest_main,
};
