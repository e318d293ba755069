/* SPDX-License-Identifier: MIT */
/*
 * unpin.c - placeholder: "ckpt unpin" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const unpin_usage[] = {
	"ckpt unpin [<options>]",
	NULL
};

static int
cmd_unpin_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, unpin_usage);
	return error("'unpin' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_unpin = {
	.name = "unpin",
	.summary = "(not implemented yet)",
	.fn = cmd_unpin_main,
};
