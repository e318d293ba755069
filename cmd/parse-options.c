/* SPDX-License-Identifier: MIT */
/*
 * parse-options.c - turns a command's option table into getopt_long's
 * arrays at run time, converts values with checked parsers, and prints -h
 * output and completion data from the same table so they cannot drift.
 */
#include "parse-options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>

static bool common_json;
static const char *common_store, *common_lock_timeout, *common_jobs;
static int common_quiet, common_verbose;

/* The options every command takes; listed after the command's own. */
static const struct opt common_opts[] = {
	OPT_GROUP("common options"),
	OPT_BOOL(0, "json", &common_json,
	    "print one JSON document on stdout"),
	OPT_COUNT('q', "quiet", &common_quiet, "print less"),
	OPT_COUNT('v', "verbose", &common_verbose, "print more"),
	OPT_STRING('C', "store", &common_store, "dir",
	    "use the store in dir (default $CKPT_STORE)"),
	/* CMD_LOCK */
	OPT_STRING(0, "lock-timeout", &common_lock_timeout, "duration",
	    "wait this long for the store lock: 30s, 2m, or seconds "
	    "(default 60s)"),
	/* CMD_JOBS */
	OPT_STRING('j', "jobs", &common_jobs, "n",
	    "worker threads, 1..1024 (default: one per CPU)"),
	OPT_END()
};

/* The flags of the command being parsed: which common options it takes. */
static unsigned int cur_flags;
static const char *cur_name;
static const char *const *cur_usage;

static bool
common_opt_wanted(const struct opt *o)
{
	if (o->long_name && !strcmp(o->long_name, "lock-timeout"))
		return cur_flags & CMD_LOCK;
	if (o->long_name && !strcmp(o->long_name, "jobs"))
		return cur_flags & CMD_JOBS;
	return true;
}

#define CODE_BASE 256
#define HIDDEN_COMPLETION (CODE_BASE - 1)

void
strlist_push(struct strlist *l, const char *s)
{
	l->items = xreallocarray(l->items, l->n + 1, sizeof(*l->items));
	l->items[l->n++] = xstrdup(s);
}

void
strlist_release(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int
parse_ll(const char *s, long long *out)
{
	char *end;
	long long v;

	if (!*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int
parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int
parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "BKMGTPE";
	const char *u;
	char *end;
	double v;
	int shift = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -1;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -1;
		shift = 10 * (int)(u - units);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "ib") ||
		    ((*end == 'B' || *end == 'b') && !end[1] && shift))
			end += strlen(end);
		if (*end)
			return -1;
	}
	v = ldexp(v, shift);
	if (v >= 18446744073709551616.0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int
parse_duration_ms(const char *s, long *out)
{
	/* LONG_MAX + 1, a power of two that a double holds exactly; a
	 * double at or above it does not convert to a long. */
	const double long_end = (double)(LONG_MAX / 2 + 1) * 2.0;
	double secs, ms;
	int64_t v;

	if (!parse_double(s, &secs)) {
		ms = secs * 1000.0 + 0.5;
		if (!(secs >= 0) || !(ms < long_end))
			return -1;
		*out = (long)ms;
		return 0;
	}
	if (!isdigit((unsigned char)*s) || ckpt_duration_parse(s, &v, NULL))
		return -1;
	*out = v > LONG_MAX / 1000 ? LONG_MAX : (long)v * 1000;
	return 0;
}

static size_t
count_opts(const struct opt *opts)
{
	size_t n = 0;

	while (opts && opts[n].type != OPT_T_END)
		n++;
	return n;
}

static void
format_opt(const struct opt *o, char *buf, size_t len)
{
	int n = 0;

	if (o->short_name && o->long_name)
		n = snprintf(buf, len, "-%c, --%s", o->short_name,
		    o->long_name);
	else if (o->short_name)
		n = snprintf(buf, len, "-%c", o->short_name);
	else
		n = snprintf(buf, len, "    --%s", o->long_name);
	if (o->argh && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " %s", o->argh);
}

static void
print_opts(FILE *fp, const struct opt *opts)
{
	char buf[128];

	for (size_t i = 0; i < count_opts(opts); i++) {
		const struct opt *o = &opts[i];

		if (o->type == OPT_T_GROUP) {
			fprintf(fp, "\n%s%s\n", o->help, *o->help ? ":" : "");
			continue;
		}
		if (opts == common_opts && !common_opt_wanted(o))
			continue;
		format_opt(o, buf, sizeof(buf));
		if (strlen(buf) > 24)
			fprintf(fp, "    %s\n%30s%s\n", buf, "", o->help);
		else
			fprintf(fp, "    %-24s  %s\n", buf, o->help);
	}
}

void
usage_with_options(FILE *fp, const char *const *usage, const struct opt *opts)
{
	for (size_t i = 0; usage && usage[i]; i++)
		fprintf(fp, "%s%s\n", i ? "   or: " : "usage: ", usage[i]);
	if (count_opts(opts) && opts[0].type != OPT_T_GROUP)
		fputc('\n', fp);
	print_opts(fp, opts);
	print_opts(fp, common_opts);
}

void
usage_error(const char *const *usage, const struct opt *opts,
    const char *fmt, ...)
{
	va_list ap;

	/* The message and a pointer to the options, not the whole table:
	 * in a CI log the message must stay the last thing said. */
	fflush(stdout);
	fputs("ckpt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (usage)
		cur_usage = usage;
	usage_hint();
	(void)opts;
	exit(CKPT_EXIT_USAGE);
}

void
usage_hint(void)
{
	if (cur_usage && cur_usage[0])
		fprintf(stderr, "usage: %s\n", cur_usage[0]);
	if (cur_name)
		fprintf(stderr, "hint: 'ckpt %s -h' lists the options\n",
		    cur_name);
	else
		fputs("hint: 'ckpt -h' lists the options\n", stderr);
}

void
die_for_incompatible_opts(bool a, const char *name_a, bool b,
    const char *name_b)
{
	if (a && b)
		die_usage("options '%s' and '%s' cannot be used together",
		    name_a, name_b);
}

void
check_allow_globals(const char *const *usage, const struct opt *opts,
    const struct strlist *allow)
{
	for (size_t i = 0; i < allow->n; i++) {
		struct ckpt_error e;

		ckpt_error_clear(&e);
		if (ckpt_allow_global_check(allow->items[i], &e))
			usage_error(usage, opts, "--allow-global: %s",
			    e.message);
	}
}

static void
print_completion(const struct opt *opts)
{
	const struct opt *tables[] = { opts, common_opts };

	for (size_t t = 0; t < 2; t++) {
		for (size_t i = 0; i < count_opts(tables[t]); i++) {
			const struct opt *o = &tables[t][i];

			if (o->type == OPT_T_GROUP || !o->long_name ||
			    (t && !common_opt_wanted(o)))
				continue;
			printf("--%s%s\n", o->long_name, o->argh ? "=" : "");
		}
	}
}

/* Looks an option up by getopt code; tables[0] is the command's. */
static const struct opt *
find_by_code(const struct opt *opts, int code, bool *negated)
{
	size_t n = count_opts(opts);
	const struct opt *o = NULL;

	*negated = false;
	if (code >= CODE_BASE) {
		size_t idx = (size_t)(code - CODE_BASE) / 2;

		*negated = (code - CODE_BASE) % 2;
		if (idx < n)
			return &opts[idx];
		if (idx - n < count_opts(common_opts))
			return &common_opts[idx - n];
		return NULL;
	}
	for (size_t i = 0; i < n && !o; i++)
		if (opts[i].short_name == code)
			o = &opts[i];
	for (size_t i = 0; i < count_opts(common_opts) && !o; i++)
		if (common_opts[i].short_name == code)
			o = &common_opts[i];
	return o;
}

static int
store_value(const struct opt *o, const char *arg, bool negated)
{
	switch (o->type) {
	case OPT_T_BOOL:
		*(bool *)o->value = !negated;
		return 0;
	case OPT_T_COUNT:
		(*(int *)o->value)++;
		return 0;
	case OPT_T_STRING:
		*(const char **)o->value = arg;
		return 0;
	case OPT_T_STRING_LIST:
		strlist_push(o->value, arg);
		return 0;
	case OPT_T_INT:
		return parse_ll(arg, o->value);
	case OPT_T_DOUBLE:
		return parse_double(arg, o->value);
	case OPT_T_END:
	case OPT_T_GROUP:
		break;
	}
	return -1;
}

static void
add_long(struct option *lo, size_t *nlo, const struct opt *o, size_t idx)
{
	int has_arg = o->argh ? required_argument : no_argument;

	if (!o->long_name)
		return;
	lo[*nlo] = (struct option){ o->long_name, has_arg, NULL,
	    CODE_BASE + (int)(2 * idx) };
	(*nlo)++;
	if (o->type == OPT_T_BOOL) {
		/* --no-<name>: the string lives as long as the process. */
		lo[*nlo] = (struct option){ xasprintf("no-%s", o->long_name),
		    no_argument, NULL, CODE_BASE + (int)(2 * idx + 1) };
		(*nlo)++;
	}
}

static void
add_short(char *so, size_t *nso, const struct opt *o)
{
	if (!o->short_name)
		return;
	so[(*nso)++] = (char)o->short_name;
	if (o->argh)
		so[(*nso)++] = ':';
}

/*
 * getopt_long's tables for the parse in progress.  They live in statics so
 * that they stay reachable when -h, --completion-helper or a usage error
 * exit() in the middle of the parse (LeakSanitizer would report them).
 */
static struct option *cur_lo;
static size_t cur_nlo;
static char *cur_so;

static void
release_tables(void)
{
	for (size_t i = 0; i < cur_nlo; i++)
		if (cur_lo[i].val >= CODE_BASE &&
		    (cur_lo[i].val - CODE_BASE) % 2)
			free((char *)cur_lo[i].name);
	free(cur_lo);
	free(cur_so);
	cur_lo = NULL;
	cur_so = NULL;
	cur_nlo = 0;
}

int
parse_options(int argc, char **argv, struct ctx *ctx, const struct opt *opts,
    const char *const *usage)
{
	size_t n = count_opts(opts), nc = count_opts(common_opts);
	struct option *lo = cur_lo = xcalloc(2 * (n + nc) + 3, sizeof(*lo));
	char *so = cur_so = xcalloc(3 * (n + nc) + 4, 1);
	size_t nlo = 0, nso = 0;
	int c, npos = 0;

	cur_flags = ctx->cmd ? ctx->cmd->flags : 0;
	cur_name = ctx->cmd ? ctx->cmd->name : NULL;
	cur_usage = usage;
	so[nso++] = ':';	/* report a missing argument as ':' */
	so[nso++] = 'h';
	for (size_t i = 0; i < n; i++) {
		add_long(lo, &nlo, &opts[i], i);
		add_short(so, &nso, &opts[i]);
	}
	for (size_t i = 0; i < nc; i++) {
		if (!common_opt_wanted(&common_opts[i]))
			continue;
		add_long(lo, &nlo, &common_opts[i], n + i);
		add_short(so, &nso, &common_opts[i]);
	}
	lo[nlo++] = (struct option){ "completion-helper", no_argument, NULL,
	    HIDDEN_COMPLETION };
	cur_nlo = nlo;

	common_json = ctx->json;
	common_store = ctx->store;
	common_lock_timeout = common_jobs = NULL;
	common_quiet = common_verbose = 0;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		const struct opt *o;
		bool negated;

		if (c == 'h') {
			usage_with_options(stdout, usage, opts);
			release_tables();
			exit(CKPT_EXIT_OK);
		}
		if (c == HIDDEN_COMPLETION) {
			print_completion(opts);
			release_tables();
			exit(CKPT_EXIT_OK);
		}
		if (c == ':')
			usage_error(usage, opts, "option '%s' needs a value",
			    argv[optind - 1]);
		if (c == '?')
			usage_error(usage, opts, "unknown option '%s'",
			    argv[optind - 1]);
		o = find_by_code(opts, c, &negated);
		if (!o)
			die("BUG: option code %d has no entry", c);
		if (store_value(o, optarg, negated)) {
			char name[64];

			if (o->long_name)
				snprintf(name, sizeof(name), "--%s",
				    o->long_name);
			else
				snprintf(name, sizeof(name), "-%c",
				    o->short_name);
			usage_error(usage, opts, "bad value '%s' for '%s'",
			    optarg, name);
		}
	}
	ctx->json = common_json;
	ctx->store = common_store;
	ctx->lock_timeout_ms = DEFAULT_LOCK_TIMEOUT_MS;
	if (common_lock_timeout && parse_duration_ms(common_lock_timeout,
	    &ctx->lock_timeout_ms))
		usage_error(usage, opts, "--lock-timeout '%s': a duration such "
		    "as 30s or 2m, or a number of seconds",
		    common_lock_timeout);
	if (common_jobs) {
		long long j;

		if (parse_ll(common_jobs, &j) || j < 1 || j > MAX_JOBS)
			usage_error(usage, opts, "--jobs '%s': a number of "
			    "threads from 1 to %d", common_jobs, MAX_JOBS);
		ctx->jobs = (unsigned int)j;
	}
	ctx->verbosity += common_verbose - common_quiet;
	if (ctx->verbosity < 0)
		ctx->verbosity = 0;
	for (int i = optind; i < argc; i++)
		argv[npos++] = argv[i];
	argv[npos] = NULL;
	release_tables();
	return npos;
}
