/* SPDX-License-Identifier: MIT */
/*
 * ls.c - placeholder: "ckpt ls" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const ls_usage[] = {
	"ckpt ls [<options>]",
	NULL
};

static int
cmd_ls_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, ls_usage);
	return error("'ls' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_ls = {
	.name = "ls",
	.summary = "(not implemented yet)",
	.fn = cmd_ls_main,
};
