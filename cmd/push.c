/* SPDX-License-Identifier: MIT */
/*
 * push.c - "ckpt push REF DEST", and what "ckpt pull REF DEST" (pull.c)
 * shares with it: a committed
 * checkpoint copied between stores, local or in an object store
 * (ckpt_copy_checkpoint() in lib/store/transfer.c), checked against its
 * manifest on the way and committed at the destination only whole.
 *
 * Choices: both take REF in the source store, which is -C/$CKPT_STORE
 * (or the enclosing store); pull may name it with --from instead, the
 * usual way to reach a remote one.  An existing path as REF is the
 * checkpoint directory itself, as elsewhere.  push's DEST is a store (a
 * directory or s3://BUCKET/PREFIX); pull's may also be a new plain
 * directory, filled with the checkpoint's files (manifest included).
 * Exit 0 also when DEST has the checkpoint already (said so); 1 when the
 * source's bytes do not match its manifest (nothing committed); 2 when
 * DEST holds another checkpoint at the same RUN@STEP; 3 when the job
 * could not be done (no such checkpoint or store, I/O, the service).
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <sys/stat.h>

static const char *const push_usage[] = {
	"ckpt push [options] ref dest",
	NULL
};

static const char *const pull_usage[] = {
	"ckpt pull [options] ref dest",
	NULL
};

static bool
is_url(const char *s)
{
	return !strncmp(s, "s3://", 5);
}

/* Whether dir is a local store (holds .ckpt/store.json). */
static bool
is_store_dir(const char *dir)
{
	char *m = xasprintf("%s/.ckpt/store.json", dir);
	struct stat st;
	bool yes = !stat(m, &st);

	free(m);
	return yes;
}

/* The source checkpoint's location: a path as it is, else ref resolved
 * in from (a store location) or the command's store. */
static char *
source_of(struct ctx *ctx, const char *from, const char *ref)
{
	struct ckpt_error e;
	struct stat st;
	char *loc = NULL;
	struct ckpt_store *s = NULL;
	const char *store = from ? from : ctx->store;

	if (!stat(ref, &st) || !ckpt_ref_syntax_ok(ref))
		return xstrdup(ref);
	if (!store) {
		s = store_open(ctx, false);
		store = ckpt_store_root(s);
	}
	ckpt_error_clear(&e);
	if (ckpt_location_resolve(store, ref, &loc, &e)) {
		error_ckpt(&e);
		exit(exit_code_for(e.code));
	}
	ckpt_store_free(s);
	return loc;
}

static void
report(const struct ctx *ctx, const struct ckpt_copy_result *r, bool pull)
{
	char a[32];

	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "run", json_string(r->run));
		json_object_set_new(doc, "step", json_integer(r->step));
		json_object_set_new(doc, "manifest",
		    json_string(r->manifest_digest));
		json_object_set_new(doc, "dest", json_string(r->dest_path));
		json_object_set_new(doc, "up_to_date",
		    json_boolean(r->up_to_date));
		json_object_set_new(doc, "files", json_integer((json_int_t)
		    r->files));
		json_object_set_new(doc, "bytes", json_integer((json_int_t)
		    r->bytes));
		json_doc_print(doc);
		return;
	}
	if (ctx->verbosity < 1)
		return;
	if (r->up_to_date) {
		printf("%s@%lld: already at %s (manifest %s)\n", r->run,
		    (long long)r->step, r->dest_path, r->manifest_digest);
		return;
	}
	printf("%s %s@%lld to %s: %zu files, %s copied (manifest %s)\n",
	    pull ? "pulled" : "pushed", r->run, (long long)r->step,
	    r->dest_path, r->files, human_size(r->bytes, a, sizeof(a)),
	    r->manifest_digest);
}

int
copy_checkpoint_main(int argc, char **argv, struct ctx *ctx, bool pull)
{
	const char *const *usage = pull ? pull_usage : push_usage;
	const char *from = NULL;
	struct ckpt_copy_result r;
	struct ckpt_copy_options o;
	struct ckpt_error e;
	int n, rc;
	const struct opt push_opts[] = {
		OPT_END()
	};
	const struct opt pull_opts[] = {
		OPT_STRING(0, "from", &from, "store", "the store to pull "
		    "from (a directory or s3://bucket/prefix; default: "
		    "-C/$CKPT_STORE)"),
		OPT_END()
	};
	const struct opt *opts = pull ? pull_opts : push_opts;

	n = parse_options(argc, argv, ctx, opts, usage);
	if (n != 2)
		usage_error(usage, opts, "%s takes a reference and a "
		    "destination", pull ? "pull" : "push");
	o = (struct ckpt_copy_options)CKPT_COPY_OPTIONS_INIT;
	o.dest = argv[1];
	o.lock_timeout_ms = ctx->lock_timeout_ms;
	if (!is_url(o.dest) && !is_store_dir(o.dest)) {
		struct stat st;

		if (!pull || !stat(o.dest, &st))
			usage_error(usage, opts, "%s: not a store (a "
			    "directory holding .ckpt/store.json, or "
			    "s3://bucket/prefix)%s", o.dest, pull ?
			    "; pull makes a new directory, not an existing "
			    "one" : "");
		o.to_dir = true;
	}
	o.source = source_of(ctx, from, argv[0]);
	ckpt_error_clear(&e);
	rc = ckpt_copy_checkpoint(&o, &r, &e);
	free((char *)o.source);
	if (rc) {
		error_ckpt(&e);
		return exit_code_for_input(rc);
	}
	report(ctx, &r, pull);
	ckpt_copy_result_release(&r);
	return CKPT_EXIT_OK;
}

static int
cmd_push_main(int argc, char **argv, struct ctx *ctx)
{
	return copy_checkpoint_main(argc, argv, ctx, false);
}

const struct cmd cmd_push = {
	.name = "push",
	.summary = "copy a checkpoint to another store (local or s3://)",
	.fn = cmd_push_main,
	.flags = CMD_LOCK,
};
