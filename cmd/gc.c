/* SPDX-License-Identifier: MIT */
/*
 * gc.c - placeholder: "ckpt gc" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const gc_usage[] = {
	"ckpt gc [<options>]",
	NULL
};

static int
cmd_gc_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, gc_usage);
	return error("'gc' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_gc = {
	.name = "gc",
	.summary = "(not implemented yet)",
	.fn = cmd_gc_main,
};
