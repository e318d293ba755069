/* SPDX-License-Identifier: MIT */
/*
 * init.c - "ckpt init": create a store explicitly, with a commented
 * ckpt.yaml that shows the retention policy settings (all commented out,
 * so that a new store deletes nothing until someone decides).  Running it
 * on an existing store changes nothing and succeeds, as git init does.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"

static const char *const init_usage[] = {
	"ckpt init [options] [dir]",
	NULL
};

static const char default_policy[] =
	"# ckpt.yaml - the store's retention policy; see ckpt-policy(5).\n"
	"# Everything is commented out: until a policy is set, 'ckpt prune'\n"
	"# refuses to run and nothing is deleted.\n"
	"#\n"
	"# version: 1\n"
	"# trash: delete             # or keep (then 'ckpt gc' empties it)\n"
	"# gc:\n"
	"#   older_than: 24h         # staging dirs of crashed saves\n"
	"# prune_on_save: false      # 'ckpt save' prunes after each commit\n"
	"# verify:                   # pickle globals verify admits\n"
	"#   allow_globals:          # (a Hugging Face training_args.bin)\n"
	"#     - transformers.training_args.TrainingArguments\n"
	"# default:\n"
	"#   keep_last: 3            # the newest N checkpoints (by step)\n"
	"#   keep_best: 2            # the best N by metric\n"
	"#   metric: val_loss        # also the metric of RUN@best\n"
	"#   mode: min               # min or max\n"
	"#   keep_every: 10000       # steps that are a multiple of K\n"
	"#   keep_within: 2d         # everything this close to the newest\n"
	"#   keep_daily: 7           # newest checkpoint of each of 7 days\n"
	"#   max_size: 500G          # disk budget per run\n"
	"# runs:                     # per-run overrides (names or globs)\n"
	"#   \"sweep-*\":\n"
	"#     keep_last: 1\n";

static int
cmd_init_main(int argc, char **argv, struct ctx *ctx)
{
	const struct opt opts[] = {
		OPT_END()
	};
	struct ckpt_store *s;
	struct ckpt_error err;
	const char *dir;
	bool created;
	int n;

	n = parse_options(argc, argv, ctx, opts, init_usage);
	if (n > 1)
		usage_error(init_usage, opts, "init takes at most one "
		    "directory");
	dir = n ? argv[0] : ctx->store ? ctx->store : ".";
	ckpt_error_clear(&err);
	if (ckpt_store_init(dir, default_policy, &created, &s, &err)) {
		if (err.code == CKPT_ERR_UNSUPPORTED) {	/* s3://... */
			error_ckpt(&err);
			return CKPT_EXIT_USAGE;
		}
		die_ckpt(&err);
	}
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "store", json_string(
		    ckpt_store_root(s)));
		json_object_set_new(doc, "created", json_boolean(created));
		json_doc_print(doc);
	} else if (ctx->verbosity) {
		printf("%s ckpt store in %s\n", created ? "Initialized empty" :
		    "Existing", ckpt_store_root(s));
	}
	ckpt_store_free(s);
	return CKPT_EXIT_OK;
}

const struct cmd cmd_init = {
	.name = "init",
	.summary = "create a checkpoint store",
	.fn = cmd_init_main,
};
