/* SPDX-License-Identifier: MIT */
/*
 * parse-options.h - declarative command-line options on top of getopt_long,
 * after git's parse-options: each command declares its options as data, and
 * -h output, --completion-helper and value conversion come from that table.
 */
#ifndef CKPT_PARSE_OPTIONS_H
#define CKPT_PARSE_OPTIONS_H

#include "ckpt.h"
#include "ckpt-cli.h"

enum opt_type {
	OPT_T_END = 0,
	OPT_T_GROUP,		/* a heading in -h output */
	OPT_T_BOOL,		/* bool *; --no-<name> also accepted */
	OPT_T_STRING,		/* const char ** */
	OPT_T_STRING_LIST,	/* struct strlist *, repeatable */
	OPT_T_INT,		/* long long * */
	OPT_T_DOUBLE,		/* double * */
	OPT_T_COUNT		/* int *, incremented each time */
};

struct opt {
	enum opt_type type;
	int short_name;		/* 0 if none */
	const char *long_name;
	void *value;
	const char *argh;	/* "path", as the man page writes it; NULL for
				 * flags */
	const char *help;	/* lower case, no full stop */
};

struct strlist {
	char **items;
	size_t n;
};

void strlist_push(struct strlist *l, const char *s);
void strlist_release(struct strlist *l);

#define OPT_GROUP(h) \
	{ OPT_T_GROUP, 0, NULL, NULL, NULL, (h) }
#define OPT_BOOL(s, l, v, h) \
	{ OPT_T_BOOL, (s), (l), (v), NULL, (h) }
#define OPT_STRING(s, l, v, a, h) \
	{ OPT_T_STRING, (s), (l), (v), (a), (h) }
#define OPT_STRING_LIST(s, l, v, a, h) \
	{ OPT_T_STRING_LIST, (s), (l), (v), (a), (h) }
#define OPT_INT(s, l, v, a, h) \
	{ OPT_T_INT, (s), (l), (v), (a), (h) }
#define OPT_DOUBLE(s, l, v, a, h) \
	{ OPT_T_DOUBLE, (s), (l), (v), (a), (h) }
#define OPT_COUNT(s, l, v, h) \
	{ OPT_T_COUNT, (s), (l), (v), NULL, (h) }
#define OPT_END() \
	{ OPT_T_END, 0, NULL, NULL, NULL, NULL }

/*
 * Parses argv[1..] (argv[0] is the command name) against opts plus the
 * common options every command takes (--json, -q, -v, -C/--store), storing
 * values as it goes.  Positional arguments are moved to argv[0..n) and n is
 * returned.  -h prints the usage and exits 0; --completion-helper prints
 * the long options and exits 0; a bad option is a usage_error() (exit 2).
 * The command's flags (ctx->cmd) add --lock-timeout (CMD_LOCK, into
 * ctx->lock_timeout_ms) and -j/--jobs (CMD_JOBS, into ctx->jobs).
 */
int parse_options(int argc, char **argv, struct ctx *ctx,
    const struct opt *opts, const char *const *usage);

/* Prints "usage: ..." and the option table to fp. */
void usage_with_options(FILE *fp, const char *const *usage,
    const struct opt *opts);
/* Prints "ckpt: msg", the first usage line and a one-line hint to the
 * command's -h on stderr, and exits 2. */
NORETURN void usage_error(const char *const *usage, const struct opt *opts,
    const char *fmt, ...) PRINTF(3, 4);

/* Dies with exit 2 when both options are given. */
void die_for_incompatible_opts(bool a, const char *name_a, bool b,
    const char *name_b);
/* A usage_error() (exit 2) for an --allow-global pattern that
 * ckpt_allow_global_check() refuses, with its reason. */
void check_allow_globals(const char *const *usage, const struct opt *opts,
    const struct strlist *allow);

/* Checked conversions: 0 on success, -1 on a malformed or out-of-range
 * value.  parse_size accepts a number with an optional B/K/M/G/T/P suffix
 * (binary multiples; "KiB", "KB", "K" are the same) and a fraction. */
int parse_ll(const char *s, long long *out);
int parse_double(const char *s, double *out);
int parse_size(const char *s, uint64_t *out);
/* A duration as --lock-timeout takes it: plain seconds with an optional
 * fraction (0.5, 60), or ckpt_duration_parse's 30s, 2m, 1h30m. */
int parse_duration_ms(const char *s, long *out);

#endif /* CKPT_PARSE_OPTIONS_H */
