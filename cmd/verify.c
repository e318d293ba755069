/* SPDX-License-Identifier: MIT */
/*
 * verify.c - placeholder: "ckpt verify" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const verify_usage[] = {
	"ckpt verify [<options>]",
	NULL
};

static int
cmd_verify_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, verify_usage);
	return error("'verify' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_verify = {
	.name = "verify",
	.summary = "(not implemented yet)",
	.fn = cmd_verify_main,
};
