/* SPDX-License-Identifier: MIT */
/*
 * prune.c - "ckpt prune": apply a retention policy to one run or every run
 * of the store, restic style: a separate, explainable, dry-runnable
 * command.  Deciding and deleting are libckpt's (ckpt_store_prune); this
 * file turns flags into a policy and prints the plan.
 *
 * Choices:
 *  - Scope is explicit: --run RUN or --all.  A prune never guesses which
 *    runs it may touch.
 *  - Flags override ckpt.yaml.  When any keep rule or --max-size is given,
 *    the command line is the whole policy (what you type is what runs, so
 *    "--keep-last 3 --dry-run" shows exactly keep-last 3); --metric, --mode
 *    and --missing given alone adjust the policy of ckpt.yaml.
 *  - The table lists every checkpoint of each run by step with the reasons
 *    it is kept; --json is the same plan as one document.
 *  - Exit 0 done, 1 some removals failed, 2 usage or refused policy,
 *    3 lock held or error.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <math.h>
#include <time.h>

static const char *const prune_usage[] = {
	"ckpt prune [options] --run run | --all",
	NULL
};

/* A count flag: an integer >= 0 or "unlimited"/"all". */
static int64_t
parse_count_flag(const char *name, const char *s)
{
	long long v;

	if (!s)
		return CKPT_POLICY_UNSET;
	if (!strcmp(s, "unlimited") || !strcmp(s, "all"))
		return CKPT_KEEP_ALL;
	if (parse_ll(s, &v) || v < 0)
		die_usage("--%s: '%s' is not a count (an integer >= 0 or "
		    "unlimited)", name, s);
	return v;
}

static const char *
iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ",
	    &tm))
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* One checkpoint of a run's keep or remove list, at depth 4. */
static void
item_print_json(const struct ckpt_prune_item *it)
{
	struct json_stream o;
	char tbuf[64];

	json_stream_begin(&o, 4, false);
	json_stream_string(&o, "created", iso_time(it->created, tbuf,
	    sizeof(tbuf)));
	if (!it->keep && it->error)
		json_stream_string(&o, "error", it->error);
	json_stream_string(&o, "path", it->path);
	json_stream_strings(&o, "reasons", it->reasons, it->nreasons);
	if (!it->keep)
		json_stream_bool(&o, "removed", it->removed);
	json_stream_int(&o, "size", (json_int_t)it->size);
	json_stream_int(&o, "step", it->step);
	if (it->metric)
		json_stream_real(&o, "value", isfinite(it->value) ?
		    it->value : NAN);
	json_stream_end(&o);
}

/* The items of run rs that are kept (keep) or not, at depth 3. */
static void
items_print_json(const struct ckpt_prune_report *r,
    const struct ckpt_prune_run *rs, bool keep)
{
	struct json_stream a;

	json_stream_begin(&a, 3, true);
	for (size_t k = 0; k < rs->count; k++) {
		const struct ckpt_prune_item *it =
		    ckpt_prune_report_item(r, rs->first + k);

		if (it->keep != keep)
			continue;
		json_stream_item(&a);
		item_print_json(it);
	}
	json_stream_end(&a);
}

/*
 * The report as one document, written as it goes (no jansson tree of
 * 100,000 items), in json_doc_print's layout: keys sorted.
 */
static void
print_json(const struct ckpt_prune_report *r, bool dry_run)
{
	struct json_stream doc, runs, jr;

	json_stream_begin(&doc, 0, false);
	json_stream_bool(&doc, "dry_run", dry_run);
	json_stream_key(&doc, "runs");
	json_stream_begin(&runs, 1, true);
	for (size_t g = 0; g < ckpt_prune_report_run_count(r); g++) {
		const struct ckpt_prune_run *rs = ckpt_prune_report_run(r, g);
		const struct ckpt_prune_item *last = rs->count ?
		    ckpt_prune_report_item(r, rs->first + rs->count - 1) :
		    NULL;

		json_stream_item(&runs);
		json_stream_begin(&jr, 2, false);
		json_stream_key(&jr, "keep");
		items_print_json(r, rs, true);
		json_stream_int(&jr, "kept_bytes", (json_int_t)rs->kept_bytes);
		json_stream_string(&jr, "metric", last ? last->metric : NULL);
		json_stream_int(&jr, "over_budget",
		    (json_int_t)rs->over_budget);
		json_stream_string(&jr, "policy", rs->policy);
		json_stream_key(&jr, "remove");
		items_print_json(r, rs, false);
		json_stream_int(&jr, "removed_bytes",
		    (json_int_t)rs->removed_bytes);
		json_stream_string(&jr, "run", rs->run);
		json_stream_end(&jr);
	}
	json_stream_end(&runs);
	json_stream_int(&doc, "schema", 1);
	json_stream_end(&doc);
	putchar('\n');
	if (fflush(stdout) || ferror(stdout))
		die("cannot write JSON output");
}

/* Buffers reused from row to row; checkpoints made close together
 * share their time's text. */
struct row_text {
	char *reasons;
	size_t cap;
	int64_t created;
	bool have_time;
	char tm[32];
};

/* Measures (print false) or prints the row of one checkpoint. */
static void
item_row(struct table *t, struct row_text *rt,
    const struct ckpt_prune_item *it, bool metric, bool dry_run, bool print)
{
	char sz[32], val[64], num[32];
	const char *action, *cells[7];
	size_t c = 0, len = 1, at = 0;

	for (size_t j = 0; j < it->nreasons; j++)
		len += strlen(it->reasons[j]) + 2;
	if (len > rt->cap) {
		rt->cap = 2 * len;
		rt->reasons = xreallocarray(rt->reasons, rt->cap, 1);
	}
	for (size_t j = 0; j < it->nreasons; j++) {
		size_t n = strlen(it->reasons[j]);

		if (j) {
			memcpy(rt->reasons + at, ", ", 2);
			at += 2;
		}
		memcpy(rt->reasons + at, it->reasons[j], n);
		at += n;
	}
	rt->reasons[at] = '\0';
	if (!rt->have_time || rt->created != it->created) {
		human_time(it->created, rt->tm, sizeof(rt->tm));
		rt->created = it->created;
		rt->have_time = true;
	}
	if (it->keep)
		action = "keep";
	else if (dry_run)
		action = "remove";
	else if (it->removed)
		action = "removed";
	else
		action = "FAILED";
	snprintf(num, sizeof(num), "%lld", (long long)it->step);
	cells[c++] = it->run;
	cells[c++] = num;
	cells[c++] = rt->tm;
	cells[c++] = human_size(it->size, sz, sizeof(sz));
	if (metric) {
		if (isnan(it->value))
			snprintf(val, sizeof(val), "-");
		else
			snprintf(val, sizeof(val), "%.6g", it->value);
		cells[c++] = val;
	}
	cells[c++] = action;
	cells[c++] = rt->reasons;
	if (print)
		table_print_row(t, stdout, cells);
	else
		table_measure(t, cells);
}

static void
print_table(const struct ckpt_prune_report *r, bool dry_run,
    const struct ctx *ctx)
{
	size_t total_rm = 0, total = 0, nruns = ckpt_prune_report_run_count(r);
	uint64_t bytes_rm = 0;
	char sz[32];

	for (size_t g = 0; g < nruns; g++) {
		const struct ckpt_prune_run *rs = ckpt_prune_report_run(r, g);
		const struct ckpt_prune_item *first =
		    ckpt_prune_report_item(r, rs->first);
		const char *metric = first ? first->metric : NULL;
		const char *headers[] = { "RUN", "STEP", "TIME", "SIZE",
			metric ? metric : "", "ACTION", "REASONS" };
		static const enum col_align align[] = { COL_LEFT, COL_RIGHT,
			COL_LEFT, COL_RIGHT, COL_RIGHT, COL_LEFT, COL_LEFT };
		struct row_text rt = { 0 };
		struct table t;

		if (g)
			putchar('\n');
		printf("run %s: %s\n", rs->run, rs->policy);
		/* without a metric the column goes: shift the last two */
		if (!metric) {
			headers[4] = "ACTION";
			headers[5] = "REASONS";
		}
		table_init(&t, metric ? 7 : 6, headers, align);
		if (!metric) {
			t.align[4] = COL_LEFT;
			t.align[5] = COL_LEFT;
		}
		/* widths first, then the rows: no row is kept */
		for (size_t k = 0; k < rs->count; k++)
			item_row(&t, &rt, ckpt_prune_report_item(r,
			    rs->first + k), metric != NULL, dry_run, false);
		table_print_header(&t, stdout, ctx);
		for (size_t k = 0; k < rs->count; k++)
			item_row(&t, &rt, ckpt_prune_report_item(r,
			    rs->first + k), metric != NULL, dry_run, true);
		table_release(&t);
		free(rt.reasons);
		total += rs->count;
		total_rm += rs->removed + rs->failed;
		bytes_rm += rs->removed_bytes;
	}
	if (nruns)
		putchar('\n');
	printf("%s %zu of %zu checkpoint%s (%s) in %zu run%s\n",
	    dry_run ? "would remove" : "removed",
	    dry_run ? total_rm : total_rm - ckpt_prune_report_failed(r),
	    total, total == 1 ? "" : "s",
	    human_size(bytes_rm, sz, sizeof(sz)), nruns, nruns == 1 ? "" : "s");
}

static int
cmd_prune_main(int argc, char **argv, struct ctx *ctx)
{
	const char *run = NULL, *keep_last = NULL, *keep_best = NULL,
	    *metric = NULL, *mode = NULL, *keep_every = NULL,
	    *keep_within = NULL, *max_size = NULL, *missing = NULL;
	const char *bucket[CKPT_BUCKET_COUNT] = { NULL };
	bool all = false, dry_run = false;
	const struct opt opts[] = {
		OPT_GROUP("scope"),
		OPT_STRING(0, "run", &run, "run", "prune this run"),
		OPT_BOOL(0, "all", &all, "prune every run"),
		OPT_GROUP("rules (override ckpt.yaml; counts take unlimited)"),
		OPT_STRING(0, "keep-last", &keep_last, "n",
		    "keep the newest n checkpoints by step"),
		OPT_STRING(0, "keep-best", &keep_best, "n",
		    "keep the best n by --metric"),
		OPT_STRING(0, "metric", &metric, "name",
		    "the metric of --keep-best"),
		OPT_STRING(0, "mode", &mode, "min|max",
		    "lower (min, default) or higher (max) is better"),
		OPT_STRING(0, "missing", &missing, "keep|drop",
		    "checkpoints without the metric: keep (default) or drop"),
		OPT_STRING(0, "keep-every", &keep_every, "k",
		    "keep steps that are multiples of k"),
		OPT_STRING(0, "keep-within", &keep_within, "duration",
		    "keep those within duration of the newest (36h, 2d12h)"),
		OPT_STRING(0, "keep-hourly", &bucket[CKPT_BUCKET_HOURLY], "n",
		    "keep the newest of each of the last n hours (UTC)"),
		OPT_STRING(0, "keep-daily", &bucket[CKPT_BUCKET_DAILY], "n",
		    "keep the newest of each of the last n days (UTC)"),
		OPT_STRING(0, "keep-weekly", &bucket[CKPT_BUCKET_WEEKLY], "n",
		    "keep the newest of each of the last n ISO weeks"),
		OPT_STRING(0, "keep-monthly", &bucket[CKPT_BUCKET_MONTHLY], "n",
		    "keep the newest of each of the last n months"),
		OPT_STRING(0, "keep-yearly", &bucket[CKPT_BUCKET_YEARLY], "n",
		    "keep the newest of each of the last n years"),
		OPT_STRING(0, "max-size", &max_size, "size",
		    "disk budget per run: remove the oldest until it fits"),
		OPT_GROUP("action"),
		OPT_BOOL('n', "dry-run", &dry_run,
		    "print the plan, change nothing"),
		OPT_END()
	};
	struct ckpt_prune_options po = CKPT_PRUNE_OPTIONS_INIT;
	struct ckpt_prune_report *rep = NULL;
	struct ckpt_policy pol;
	struct ckpt_error err;
	struct ckpt_store *store;
	bool rules = false;
	int64_t v;
	int rc, nargs;

	nargs = parse_options(argc, argv, ctx, opts, prune_usage);
	if (nargs)
		usage_error(prune_usage, opts, "unexpected argument '%s'",
		    argv[0]);
	if (!run && !all)
		usage_error(prune_usage, opts, "give --run RUN or --all");
	die_for_incompatible_opts(run != NULL, "--run", all, "--all");
	if (run && ckpt_name_check(run, "run name", &err))
		usage_error(prune_usage, opts, "--run: %s", err.message);

	ckpt_policy_init(&pol);
	pol.keep_last = parse_count_flag("keep-last", keep_last);
	pol.keep_best = parse_count_flag("keep-best", keep_best);
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++) {
		char name[32];

		snprintf(name, sizeof(name), "keep-%s",
		    b == 0 ? "hourly" : b == 1 ? "daily" : b == 2 ? "weekly" :
		    b == 3 ? "monthly" : "yearly");
		pol.keep_bucket[b] = parse_count_flag(name, bucket[b]);
	}
	if (keep_every) {
		long long k;

		if (parse_ll(keep_every, &k) || k <= 0)
			die_usage("--keep-every: '%s' is not a positive number "
			    "of steps", keep_every);
		pol.keep_every = k;
	}
	if (keep_within) {
		if (ckpt_duration_parse(keep_within, &v, &err))
			die_usage("--keep-within: %s", err.message);
		pol.keep_within = v;
	}
	if (max_size) {
		if (ckpt_size_parse(max_size, &v, &err))
			die_usage("--max-size: %s", err.message);
		pol.max_size = v;
	}
	rules = keep_last || keep_best || keep_every || keep_within ||
	    max_size;
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
		rules = rules || bucket[b];
	pol.metric = metric;
	if (mode) {
		if (!strcmp(mode, "min"))
			pol.mode = CKPT_POLICY_MIN;
		else if (!strcmp(mode, "max"))
			pol.mode = CKPT_POLICY_MAX;
		else
			die_usage("--mode: '%s' is not min or max", mode);
	}
	if (missing) {
		if (!strcmp(missing, "keep"))
			pol.missing = CKPT_MISSING_KEEP;
		else if (!strcmp(missing, "drop"))
			pol.missing = CKPT_MISSING_DROP;
		else
			die_usage("--missing: '%s' is not keep or drop",
			    missing);
	}
	store = cmd_store(ctx);
	po.run = run;
	po.policy = &pol;
	po.ignore_config = rules;
	po.dry_run = dry_run;
	po.lock_timeout_ms = ctx->lock_timeout_ms;
	rc = ckpt_store_prune(store, &po, &rep, &err);
	if (rc) {
		error_ckpt(&err);
		if (rc == CKPT_ERR_NOTFOUND && run)
			hint_run_name(store, run);
		if (rc == CKPT_ERR_NOTFOUND)
			return CKPT_EXIT_USAGE;
		return exit_code_for(rc);
	}
	warn_broken_lock(ckpt_prune_report_broken_lock(rep));
	for (size_t i = 0; i < ckpt_prune_report_foreign_count(rep); i++) {
		const struct ckpt_foreign *f = ckpt_prune_report_foreign(rep,
		    i);

		warning("%s: %s", f->path, f->what);
	}
	for (size_t g = 0; g < ckpt_prune_report_run_count(rep); g++) {
		const struct ckpt_prune_run *rs = ckpt_prune_report_run(rep, g);
		char sz[32];

		if (rs->over_budget)
			warning("run %s: the checkpoints that must be kept "
			    "exceed max_size by %s", rs->run,
			    human_size(rs->over_budget, sz, sizeof(sz)));
	}
	for (size_t i = 0; i < ckpt_prune_report_count(rep); i++) {
		const struct ckpt_prune_item *it =
		    ckpt_prune_report_item(rep, i);

		if (it->error)
			error("%s@%lld: %s", it->run, (long long)it->step,
			    it->error);
	}
	if (ckpt_prune_report_trash_left(rep))
		warning("%zu trash entr%s could not be deleted; 'ckpt gc' "
		    "will retry", ckpt_prune_report_trash_left(rep),
		    ckpt_prune_report_trash_left(rep) == 1 ? "y" : "ies");
	if (ctx->json)
		print_json(rep, dry_run);
	else if (ctx->verbosity > 0)
		print_table(rep, dry_run, ctx);
	rc = ckpt_prune_report_failed(rep) ? CKPT_EXIT_FINDING : CKPT_EXIT_OK;
	/* A warning, not a failure: prune is what frees a full disk, and
	 * the removals are done and reported either way. */
	if (ckpt_prune_report_history_error(rep))
		warning("the removals are not recorded in the registry "
		    "history (ckpt log): %s",
		    ckpt_prune_report_history_error(rep));
	ckpt_prune_report_free(rep);
	return rc;
}

const struct cmd cmd_prune = {
	.name = "prune",
	.summary = "apply a retention policy to the store's checkpoints",
	.fn = cmd_prune_main,
	.flags = CMD_STORE | CMD_LOCK,
};
