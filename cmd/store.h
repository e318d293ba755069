/* SPDX-License-Identifier: MIT */
/*
 * store.h - what commands share to reach the store: opening it the way
 * every command does (--store/-C, $CKPT_STORE, else the nearest enclosing
 * store) and turning a command-line argument (a path or a reference such
 * as RUN@STEP, RUN@latest, RUN@best, MODEL@vN, MODEL@ALIAS) into a path.
 */
#ifndef CKPT_CMD_STORE_H
#define CKPT_CMD_STORE_H

#include "ckpt.h"

/*
 * Opens the store of ctx: ctx->store (from -C/--store or $CKPT_STORE) or
 * the nearest enclosing store of the current directory.  With create, a
 * missing or empty ctx->store directory becomes a new store.  Dies with a
 * clear message: exit 2 when there is no store, 3 on I/O errors.
 */
struct ckpt_store *store_open(const struct ctx *ctx, bool create);
/* Exits 2 when ctx->store is remote (s3://) and the command does not
 * work on a remote store yet (the dispatcher asks before it runs). */
void store_refuse_remote(const struct ctx *ctx);

/*
 * The store of a CMD_STORE command, opened on first call as its flags say
 * (CMD_CREATE_STORE creates it) and closed by main() after the command.
 */
struct ckpt_store *cmd_store(struct ctx *ctx);

/* -C/$CKPT_STORE names a directory that is missing or empty: the first
 * save has not run yet (a job's first launch). */
bool store_not_created_yet(const struct ctx *ctx);

/* After "no such run": "hint: did you mean 'train'?" when one is near. */
void hint_run_name(struct ckpt_store *s, const char *run);

/* The one warning for a stale lock that was broken (b->pid == 0: none). */
void warn_broken_lock(const struct ckpt_lock_holder *b);

/*
 * Resolves a checkpoint argument: an existing file or directory is
 * returned as is; otherwise a reference is resolved in the store (opened
 * on first need into *storep, which may hold an open store already).
 * metric/mode serve RUN@best; when metric is NULL, the run's policy
 * metric and mode from ckpt.yaml are used (ckpt-policy(5)).  Returns a
 * newly allocated path; on failure it prints why and exits: 2 for a
 * malformed request (RUN@best without a metric), 3 for a reference that
 * names nothing (no such run, step, model or store).  When ref is not NULL
 * it receives the resolution (release with ckpt_ref_release); for a plain
 * path ref->path is NULL.
 */
char *resolve_checkpoint_arg(const struct ctx *ctx, struct ckpt_store **storep,
    const char *arg, const char *metric, enum ckpt_metric_mode mode,
    struct ckpt_ref *ref);

/* The same, returning that exit code instead of exiting (0: *path_out
 * set), so that a command given several arguments checks the others. */
int resolve_checkpoint(const struct ctx *ctx, struct ckpt_store **storep,
    const char *arg, const char *metric, enum ckpt_metric_mode mode,
    struct ckpt_ref *ref, char **path_out);

/* push and pull (push.c): the copy of a checkpoint between stores. */
int copy_checkpoint_main(int argc, char **argv, struct ctx *ctx, bool pull);

/* Parses "min"/"max" (exit 2 otherwise). */
enum ckpt_metric_mode parse_metric_mode(const char *s);

#endif /* CKPT_CMD_STORE_H */
