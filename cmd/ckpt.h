/* SPDX-License-Identifier: MIT */
/*
 * ckpt.h - what the commands of the ckpt binary share: struct cmd, struct
 * ctx, exit codes, die/error/warning and the x-allocators.
 *
 * Adding a command:
 *  1. Create cmd/<name>.c with a comment saying what the command does and
 *     the choices made, and "const struct cmd cmd_<name> = {...}".
 *     Everything else in it is static.  Parse options first thing with
 *     parse_options() so that -h and --completion-helper work.  Say in
 *     .flags what the dispatcher does for it (CMD_STORE and cmd_store(),
 *     CMD_LOCK for ctx->lock_timeout_ms, CMD_JOBS for ctx->jobs) rather
 *     than parsing those options again.  Exit statuses follow ckpt(1):
 *     1 for a broken/unsafe/different input, 3 when the job could not be
 *     done, the worst over several inputs (worse_exit()).
 *  2. Declare it below and add &cmd_<name> to commands[] in cmd/ckpt.c, in
 *     alphabetical order (tests/t0001 checks the order).
 *  3. The Makefile picks up every C file in cmd/ by itself.
 *  4. Write man/ckpt-<name>.1 (tests/t9001 checks its SYNOPSIS against -h).
 *  5. Write tests/tNNNN-<name>-*.sh.
 *  6. Completions need nothing: they ask the binary.
 */
#ifndef CKPT_CMD_H
#define CKPT_CMD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define _FILE_OFFSET_BITS 64

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt.h>
#include <ckpt-cli.h>

/* Exit statuses, documented in ckpt(1). */
enum ckpt_exit {
	CKPT_EXIT_OK = 0,	/* success, no findings */
	CKPT_EXIT_FINDING = 1,	/* the answer is "no": findings, differences */
	CKPT_EXIT_USAGE = 2,	/* usage error or refused request */
	CKPT_EXIT_ERROR = 3	/* could not run: I/O, input, lock, memory */
};

/* State every command gets: the global options. */
struct ctx {
	const char *store;	/* --store/-C, else $CKPT_STORE, else NULL */
	int verbosity;		/* -q = 0, default 1, each -v adds one */
	bool json;		/* --json */
	bool color;		/* stdout is a tty, NO_COLOR empty or unset,
				 * TERM not "dumb" */
	bool progress;		/* stderr is a tty and TERM is not "dumb" */
	long lock_timeout_ms;	/* --lock-timeout (CMD_LOCK), default 60 s */
	unsigned int jobs;	/* --jobs/-j (CMD_JOBS); 0: one per CPU */
	const struct cmd *cmd;
	struct ckpt_store *opened;	/* by cmd_store(); freed by main */
};

struct cmd {
	const char *name;
	const char *summary;		/* one line for "ckpt help" */
	int (*fn)(int argc, char **argv, struct ctx *ctx);
	unsigned int flags;
};

/*
 * What the dispatcher does for a command, so that no command repeats it:
 * CMD_STORE: cmd_store() opens the store (-C, $CKPT_STORE, else the
 * nearest enclosing one) on first use and main() closes it;
 * CMD_CREATE_STORE: ... creating it when missing (save's first run);
 * CMD_LOCK: the command takes the store lock, so parse_options() accepts
 * --lock-timeout (one grammar: 30s, 2m, or plain seconds) into
 * ctx->lock_timeout_ms, and warn_broken_lock() reports a stale lock;
 * CMD_JOBS: parse_options() accepts -j/--jobs (1..1024) into ctx->jobs.
 */
#define CMD_HIDDEN	(1u << 0)	/* not listed by "ckpt help" */
#define CMD_STORE	(1u << 1)
#define CMD_CREATE_STORE (1u << 2)
#define CMD_LOCK	(1u << 3)
#define CMD_JOBS	(1u << 4)

#define DEFAULT_LOCK_TIMEOUT_MS 60000L
#define MAX_JOBS 1024

extern const struct cmd cmd_alias, cmd_convert, cmd_diff, cmd_export,
    cmd_gc, cmd_import, cmd_init, cmd_inspect, cmd_keygen, cmd_latest,
    cmd_log, cmd_ls, cmd_models, cmd_pin, cmd_promote, cmd_prune, cmd_pull,
    cmd_push, cmd_save,
    cmd_sha256sum, cmd_sign, cmd_unpin, cmd_verify;

/* The registry's models, versions and aliases, all or those named in
 * argv[0..n) (models.c): "ckpt ls --models" and "ckpt models". */
int models_list(struct ctx *ctx, int n, char **argv);
/* The registry's fsck (log.c): "ckpt log --verify" and "ckpt verify
 * --registry [MODEL[@vN|@ALIAS]...]": the hash chain, the state files,
 * the signed promotions, and the files of the selected versions (all
 * when nsel is 0) against their recorded manifests. */
struct strlist;
int registry_verify(struct ctx *ctx, long timeout_ms,
    const struct strlist *keys, bool require_sig, int nsel, char **sel);

#if defined(__GNUC__)
#define NORETURN __attribute__((noreturn))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NORETURN
#define PRINTF(f, a)
#endif

/* usage.c: messages go to stderr as "ckpt: ..." */
NORETURN void die(const char *fmt, ...) PRINTF(1, 2);		/* exit 3 */
NORETURN void die_errno(const char *fmt, ...) PRINTF(1, 2);	/* exit 3 */
NORETURN void die_usage(const char *fmt, ...) PRINTF(1, 2);	/* exit 2 */
/* After a usage error's message: the command's first usage line and
 * "hint: 'ckpt CMD -h' lists the options" ('ckpt -h' before a command),
 * as usage_error() and die_usage() print them. */
void usage_hint(void);
int error(const char *fmt, ...) PRINTF(1, 2);			/* returns -1 */
void warning(const char *fmt, ...) PRINTF(1, 2);
void info(const struct ctx *ctx, const char *fmt, ...) PRINTF(2, 3);
/* Prints a library error as "ckpt: path: message (at byte N)". */
void error_ckpt(const struct ckpt_error *err);
/*
 * Maps a library status to an exit code: a refused or malformed request
 * -> 2; anything else -> 3 (could not do the job: I/O, lock, memory, no
 * such file or reference).
 */
int exit_code_for(int status);
/*
 * The same for a command whose job is to judge its input (inspect,
 * verify): an input that was read but is broken, unsafe or over a limit
 * (CKPT_ERR_FORMAT, _UNSAFE, _LIMIT) is its answer, 1, not a failure.
 */
int exit_code_for_input(int status);
/* The worse of two exit codes: 3 > 1 > 0 (2 is decided before any work). */
int worse_exit(int a, int b);
NORETURN void die_ckpt(const struct ckpt_error *err);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);

/* Levenshtein distance, for "did you mean" hints. */
size_t edit_distance(const char *a, const char *b);
/* The candidate nearest to name (at most 2 edits, or a prefix), or NULL. */
const char *closest_name(const char *name, const char *const *cands,
    size_t n);

#endif /* CKPT_CMD_H */
