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
#include "store.h"
#include "parse-options.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Alphabetical; tests/t0001 checks the order. */
static const struct cmd *const commands[] = {
	&cmd_alias,
	&cmd_convert,
	&cmd_diff,
	&cmd_export,
	&cmd_gc,
	&cmd_import,
	&cmd_init,
	&cmd_inspect,
	&cmd_keygen,
	&cmd_latest,
	&cmd_log,
	&cmd_ls,
	&cmd_models,
	&cmd_pin,
	&cmd_promote,
	&cmd_prune,
	&cmd_pull,
	&cmd_push,
	&cmd_save,
	&cmd_sha256sum,
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

/* Runs argv and waits: true when it ran and exited 0. */
static bool
run_pager_command(const char *const argv[])
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return false;
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		/* "No manual entry" is ours to replace, not to pass on. */
		if (null >= 0 && !strcmp(argv[1], "-w"))
			dup2(null, 1);
		if (null >= 0)
			dup2(null, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

/* page.1 in the man/ folder beside the binary (a build tree) or in
 * ../share/man/man1 (an installed prefix whose MANPATH man does not know). */
static char *
page_beside_binary(const char *page)
{
	static const char *const rel[] = { "man", "../share/man/man1",
		"../man" };
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		char *p = xasprintf("%s/%s/%s.1", exe, rel[i], page);

		if (!access(p, R_OK))
			return p;
		free(p);
	}
	return NULL;
}

/*
 * "ckpt help CMD" and "ckpt CMD --help": the installed manual page; else
 * the page beside the binary (man -l, or mandoc); else the -h text.  Exit
 * 0 whichever was shown: a missing page is no error of the user's.
 */
static int
run_help(const char *name)
{
	char page[64], *local;
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
	{
		const char *where[] = { "man", "-w", page, NULL };
		const char *show[] = { "man", page, NULL };

		if (run_pager_command(where) && run_pager_command(show))
			return CKPT_EXIT_OK;
	}
	local = page_beside_binary(page);
	if (local) {
		const char *man_l[] = { "man", "-l", local, NULL };
		const char *mandoc[] = { "mandoc", "-a", local, NULL };
		bool shown = run_pager_command(man_l) ||
		    run_pager_command(mandoc);

		free(local);
		if (shown)
			return CKPT_EXIT_OK;
	}
	if (!strcmp(name, "ckpt")) {
		print_main_usage(stdout);
		return CKPT_EXIT_OK;
	}
	{
		char *argv[] = { (char *)name, (char *)"-h", NULL };
		struct ctx ctx = { .verbosity = 1 };

		ctx.cmd = find_command(name);
		return ctx.cmd->fn(2, argv, &ctx);
	}
}

/* Like git's run_builtin(): shared pre-run setup and post-run checks. */
static int
run_command(const struct cmd *cmd, int argc, char **argv, struct ctx *ctx)
{
	int status;

	ctx->cmd = cmd;
	ctx->lock_timeout_ms = DEFAULT_LOCK_TIMEOUT_MS;
	store_refuse_remote(ctx);
	status = cmd->fn(argc, argv, ctx);
	if (ctx->opened) {
		ckpt_store_free(ctx->opened);
		ctx->opened = NULL;
	}
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

/*
 * Colour on stdout only for a terminal, unless NO_COLOR is set to a
 * non-empty value (no-color.org: an empty NO_COLOR does not count);
 * neither colour nor the escapes of progress lines for TERM=dumb.
 */
static void
set_terminal(struct ctx *ctx)
{
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	bool escapes = !term || strcmp(term, "dumb");

	ctx->color = isatty(1) && !(nc && *nc) && escapes;
	ctx->progress = isatty(2) && escapes;
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
			fprintf(stderr, "ckpt: unknown option '%s'\n"
			    "hint: 'ckpt -h' lists the options\n", a);
			return CKPT_EXIT_USAGE;
		}
	}
	if (ctx.verbosity < 0)
		ctx.verbosity = 0;
	set_terminal(&ctx);
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
