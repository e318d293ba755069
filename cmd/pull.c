/* SPDX-License-Identifier: MIT */
/*
 * pull.c - "ckpt pull REF DEST": push's copy the other way round (see
 * push.c for the choices), from -C/$CKPT_STORE or --from into a store or
 * a new plain directory.
 */
#include "ckpt.h"
#include "store.h"

static int
cmd_pull_main(int argc, char **argv, struct ctx *ctx)
{
	return copy_checkpoint_main(argc, argv, ctx, true);
}

const struct cmd cmd_pull = {
	.name = "pull",
	.summary = "copy a checkpoint from a store into a store or a new "
	    "directory",
	.fn = cmd_pull_main,
	.flags = CMD_LOCK,
};
