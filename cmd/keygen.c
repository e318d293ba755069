/* SPDX-License-Identifier: MIT */
/*
 * keygen.c - placeholder: "ckpt keygen" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const keygen_usage[] = {
	"ckpt keygen [<options>]",
	NULL
};

static int
cmd_keygen_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, keygen_usage);
	return error("'keygen' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_keygen = {
	.name = "keygen",
	.summary = "(not implemented yet)",
	.fn = cmd_keygen_main,
};
