/* SPDX-License-Identifier: MIT */
/*
 * sign.c - placeholder: "ckpt sign" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const sign_usage[] = {
	"ckpt sign [<options>]",
	NULL
};

static int
cmd_sign_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, sign_usage);
	return error("'sign' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_sign = {
	.name = "sign",
	.summary = "(not implemented yet)",
	.fn = cmd_sign_main,
};
