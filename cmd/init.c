/* SPDX-License-Identifier: MIT */
/*
 * init.c - placeholder: "ckpt init" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const init_usage[] = {
	"ckpt init [<options>]",
	NULL
};

static int
cmd_init_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, init_usage);
	return error("'init' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_init = {
	.name = "init",
	.summary = "(not implemented yet)",
	.fn = cmd_init_main,
};
