/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - placeholder: "ckpt inspect" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const inspect_usage[] = {
	"ckpt inspect [<options>]",
	NULL
};

static int
cmd_inspect_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, inspect_usage);
	return error("'inspect' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_inspect = {
	.name = "inspect",
	.summary = "(not implemented yet)",
	.fn = cmd_inspect_main,
};
