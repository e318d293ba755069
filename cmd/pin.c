/* SPDX-License-Identifier: MIT */
/*
 * pin.c - placeholder: "ckpt pin" is being written (see the issues); it
 * parses its options and reports that it cannot run yet.
 */
#include "ckpt.h"
#include "parse-options.h"

static const char *const pin_usage[] = {
	"ckpt pin [<options>]",
	NULL
};

static int
cmd_pin_main(int argc, char **argv, struct ctx *ctx)
{
	static const struct opt opts[] = {
		OPT_END()
	};

	parse_options(argc, argv, ctx, opts, pin_usage);
	return error("'pin' is not implemented yet"), CKPT_EXIT_ERROR;
}

const struct cmd cmd_pin = {
	.name = "pin",
	.summary = "(not implemented yet)",
	.fn = cmd_pin_main,
};
