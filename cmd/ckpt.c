/* SPDX-License-Identifier: MIT */
/*
 * ckpt.c - main(): global options, the command table and dispatch.
 *
 * Global options come before the command (git's handle_options()); the
 * common ones (--json, -q, -v, -C/--store) are also accepted after it by
 * every command.  Command names match exactly: scripts need names that stay
 * stable, so there are no abbreviations, only a "did you mean" hint.
 */
#include "ckpt.h"
#include "parse-options.h"

#include <errno.h>
#include <unistd.h>

/* Alphabetical; tests/t0001 checks the order. */
static const struct cmd *const commands[] = {
	&cmd_diff,
	&cmd_gc,
	&cmd_init,
	&cmd_inspect,
	&cmd_keygen,
	&cmd_latest,
	&cmd_ls,
	&cmd_pin,
	&cmd_prune,
	&cmd_save,
	&cmd_sign,
	&cmd_unpin,
	&cmd_verify,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* As man/ckpt.1 renders its SYNOPSIS (tests/t9001 compares them). */
static const char *const main_usage[] = {
	"ckpt [--version] [-h | --help] [-C dir] [--json] [-q] [-v] "
	    "command [args]",
	NULL
};

static const struct cmd *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

static void
list_commands(FILE *fp, bool names_only)
{
	if (!names_only)
		fprintf(fp, "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (names_only)
			fprintf(fp, "%s\n", commands[i]->name);
		else if (!(commands[i]->flags & CMD_HIDDEN))
			fprintf(fp, "   %-10s %s\n", commands[i]->name,
			    commands[i]->summary);
	}
}

static void
print_main_usage(FILE *fp)
{
	fprintf(fp, "usage: %s\n\n", main_usage[0]);
	list_commands(fp, false);
	fprintf(fp, "\n'ckpt help <command>' opens the manual of a command;"
	    " 'ckpt <command> -h' lists its options.\n");
}

NORETURN static void
unknown_command(const char *name)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		size_t d = edit_distance(name, commands[i]->name);

		if (d < best_d) {
			best_d = d;
			best = commands[i]->name;
		}
	}
	fprintf(stderr, "ckpt: '%s' is not a ckpt command; see 'ckpt help'\n",
	    name);
	if (best && best_d <= 2)
		fprintf(stderr, "\nThe most similar command is\n\t%s\n", best);
	exit(CKPT_EXIT_USAGE);
}

/* "ckpt help CMD" opens the manual; without man(1), it shows -h. */
static int
run_help(const char *name)
{
	char page[64];
	int n;

	if (!name) {
		print_main_usage(stdout);
		return CKPT_EXIT_OK;
	}
	if (strcmp(name, "ckpt") && !find_command(name))
		unknown_command(name);
	n = snprintf(page, sizeof(page), strcmp(name, "ckpt") ? "ckpt-%s" :
	    "%s", name);
	if (n < 0 || (size_t)n >= sizeof(page))
		die("command name too long");
	fflush(stdout);
	execlp("man", "man", page, (char *)NULL);
	warning("cannot run man (%s); showing the options instead",
	    strerror(errno));
	if (!strcmp(name, "ckpt")) {
		print_main_usage(stdout);
		return CKPT_EXIT_OK;
	}
	{
		char *argv[] = { (char *)name, (char *)"-h", NULL };
		struct ctx ctx = { .verbosity = 1 };

		return find_command(name)->fn(2, argv, &ctx);
	}
}

/* Like git's run_builtin(): shared pre-run setup and post-run checks. */
static int
run_command(const struct cmd *cmd, int argc, char **argv, struct ctx *ctx)
{
	int status;

	ctx->cmd = cmd;
	status = cmd->fn(argc, argv, ctx);
	return status;
}

/*
 * At exit, whichever way we get there (return from main, exit() after -h):
 * a full disk or a closed pipe while printing must not pass for success.
 */
static void
close_stdout(void)
{
	if (fflush(stdout) || ferror(stdout) || fclose(stdout)) {
		fprintf(stderr, "ckpt: write failure on standard output:"
		    " %s\n", strerror(errno));
		_exit(CKPT_EXIT_ERROR);
	}
}

static bool
wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int
main(int argc, char **argv)
{
	struct ctx ctx = { .verbosity = 1 };
	const struct cmd *cmd;
	const char *env;
	int i;

	atexit(close_stdout);
	/* SIGINT/SIGTERM/SIGHUP unwind a store operation (lock, --move). */
	ckpt_interrupt_install();
	env = getenv("CKPT_STORE");
	if (env && *env)
		ctx.store = env;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--version")) {
			printf("ckpt version %s\n", ckpt_version());
			return CKPT_EXIT_OK;
		} else if (!strcmp(a, "-h")) {
			print_main_usage(stdout);
			return CKPT_EXIT_OK;
		} else if (!strcmp(a, "--help")) {
			return run_help(i + 1 < argc ? argv[i + 1] : "ckpt");
		} else if (!strcmp(a, "--list-commands")) {
			list_commands(stdout, true);
			return CKPT_EXIT_OK;
		} else if (!strcmp(a, "--completion-helper")) {
			/* The global options, for the shell completions. */
			fputs("--version\n--help\n--store=\n--json\n"
			    "--quiet\n--verbose\n", stdout);
			return CKPT_EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			ctx.json = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			ctx.verbosity--;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			ctx.verbosity++;
		} else if (!strcmp(a, "-C") || !strcmp(a, "--store")) {
			if (++i >= argc)
				die_usage("option '%s' needs a value", a);
			ctx.store = argv[i];
		} else if (!strncmp(a, "--store=", 8)) {
			ctx.store = a + 8;
		} else {
			fprintf(stderr, "ckpt: unknown option '%s'\n\n", a);
			print_main_usage(stderr);
			return CKPT_EXIT_USAGE;
		}
	}
	if (ctx.verbosity < 0)
		ctx.verbosity = 0;
	ctx.color = isatty(1) && !getenv("NO_COLOR");
	if (i >= argc) {
		print_main_usage(stderr);
		return CKPT_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help"))
		return run_help(i + 1 < argc ? argv[i + 1] : NULL);
	cmd = find_command(argv[i]);
	if (!cmd)
		unknown_command(argv[i]);
	if (wants_help(argc - i, argv + i))
		return run_help(cmd->name);
	return run_command(cmd, argc - i, argv + i, &ctx);
}
