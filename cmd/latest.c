/* SPDX-License-Identifier: MIT */
/*
 * latest.c - placeholder: "ckpt latest" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const latest_usage[] = {
	"ckpt latest [<options>]",
	NULL
};

static int
cmd_latest_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, latest_usage);
	return error("'latest' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_latest = {
	.name = "latest",
	.summary = "(not implemented yet)",
	.fn = cmd_latest_main,
};
