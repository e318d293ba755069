/* SPDX-License-Identifier: MIT */
/*
 * prune.c - placeholder: "ckpt prune" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const prune_usage[] = {
	"ckpt prune [<options>]",
	NULL
};

static int
cmd_prune_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, prune_usage);
	return error("'prune' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_prune = {
	.name = "prune",
	.summary = "(not implemented yet)",
	.fn = cmd_prune_main,
};
