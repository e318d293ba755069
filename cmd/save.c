/* SPDX-License-Identifier: MIT */
/*
 * save.c - placeholder: "ckpt save" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const save_usage[] = {
	"ckpt save [<options>]",
	NULL
};

static int
cmd_save_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, save_usage);
	return error("'save' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_save = {
	.name = "save",
	.summary = "(not implemented yet)",
	.fn = cmd_save_main,
};
