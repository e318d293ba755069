/* SPDX-License-Identifier: MIT */
/*
 * init.c - "ckpt init": create a store explicitly, with a commented
 * ckpt.yaml that shows the retention policy settings (all commented out,
 * so that a new store deletes nothing until someone decides).  Running it
 * on an existing store changes nothing and succeeds, as git init does.
 *
 * --preset hf writes the same template with verify.allow_globals set to
 * the classes a stock Hugging Face Trainer pickles in training_args.bin
 * (the arguments dataclass and its enums), each checked by
 * ckpt_allow_global_check() first: a denylisted name never gets in.
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

/* What a stock Trainer's training_args.bin references (transformers
 * 4.x: the dataclass, its enums, and its accelerator config). */
static const char *const hf_trainer_globals[] = {
	"transformers.training_args.TrainingArguments",
	"transformers.training_args.OptimizerNames",
	"transformers.training_args.IntervalStrategy",
	"transformers.trainer_utils.IntervalStrategy",
	"transformers.trainer_utils.SaveStrategy",
	"transformers.trainer_utils.SchedulerType",
	"transformers.trainer_utils.HubStrategy",
	"transformers.trainer_utils.FSDPOption",
	"transformers.debug_utils.DebugOption",
	"transformers.trainer_pt_utils.AcceleratorConfig",
};

/* The default template with the Trainer's allowlist set, not commented. */
static char *
hf_policy(void)
{
	const char *marker = "# verify:";
	const char *at = strstr(default_policy, marker);
	const char *after = strstr(at, "# default:");
	char *list = xstrdup(""), *out;

	for (size_t i = 0; i < sizeof(hf_trainer_globals) /
	    sizeof(hf_trainer_globals[0]); i++) {
		struct ckpt_error e;
		char *t;

		ckpt_error_clear(&e);
		if (ckpt_allow_global_check(hf_trainer_globals[i], &e))
			die("preset hf: %s: %s", hf_trainer_globals[i],
			    e.message);
		t = xasprintf("%s    - %s\n", list, hf_trainer_globals[i]);
		free(list);
		list = t;
	}
	out = xasprintf("%.*sverify:                     # a Hugging Face "
	    "Trainer's training_args.bin\n  allow_globals:\n%s%s",
	    (int)(at - default_policy), default_policy, list, after);
	free(list);
	return out;
}

static int
cmd_init_main(int argc, char **argv, struct ctx *ctx)
{
	const char *preset = NULL;
	char *policy = NULL;
	const struct opt opts[] = {
		OPT_STRING(0, "preset", &preset, "hf", "hf: admit the classes "
		    "a stock Hugging Face Trainer pickles (verify."
		    "allow_globals)"),
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
	if (preset && strcmp(preset, "hf"))
		usage_error(init_usage, opts, "--preset: '%s' is not a preset "
		    "(there is one: hf)", preset);
	if (preset)
		policy = hf_policy();
	dir = n ? argv[0] : ctx->store ? ctx->store : ".";
	ckpt_error_clear(&err);
	if (ckpt_store_init(dir, policy ? policy : default_policy, &created,
	    &s, &err)) {
		if (err.code == CKPT_ERR_UNSUPPORTED) {	/* s3://... */
			error_ckpt(&err);
			free(policy);
			return CKPT_EXIT_USAGE;
		}
		die_ckpt(&err);
	}
	if (preset && !created)
		warning("%s exists already: its ckpt.yaml is unchanged; add "
		    "the verify.allow_globals of 'ckpt init --preset hf' by "
		    "hand", ckpt_store_root(s));
	free(policy);
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
