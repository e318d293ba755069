/* SPDX-License-Identifier: MIT */
/*
 * ls.c - "ckpt ls": the runs and committed checkpoints of the store, with
 * step, time, size, metrics, tags and pins, and, separately, saves that
 * are in progress, failed or left behind by a crash.
 *
 * Sorting is by run then step unless --sort names a metric, in which case
 * checkpoints without a value for it come last (like NaN in sort -g).
 * --where filters on a metric with <, <=, >, >=, = or !=; a checkpoint
 * without a value never matches.
 *
 * A name that names nothing (--run, the metric of --sort or --where) is
 * an error with a "did you mean" (exit 2): a typo must not pass for an
 * empty answer or for the default order.  A valid query that matches
 * nothing exits 0 and says so on stderr.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <math.h>

static const char *const ls_usage[] = {
	"ckpt ls [options]",
	"ckpt ls --models [model ...]",
	NULL
};

enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };

struct where {
	char *metric;
	enum op op;
	double value;
};

static const char *sort_key;

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct run names, or metric names, of a listing, sorted. */
static size_t
collect_names(const struct ckpt_list *l, bool metrics, const char ***out)
{
	const char **names = NULL;
	size_t n = 0;

	for (size_t i = 0; i < ckpt_list_count(l); i++) {
		const struct ckpt_entry *e = ckpt_list_entry(l, i);
		size_t m = metrics ? e->nmetrics : 1;

		for (size_t k = 0; k < m; k++) {
			const char *name = metrics ? e->metrics[k].name :
			    e->run;
			bool seen = false;

			for (size_t j = 0; j < n && !seen; j++)
				seen = !strcmp(names[j], name);
			if (seen)
				continue;
			names = xreallocarray(names, n + 1, sizeof(*names));
			names[n++] = name;
		}
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return n;
}

/* Exit 2 when name is none of names: "did you mean", else the list. */
static void
check_known(const char *what, const char *opt, const char *name,
    const char **names, size_t n, const char *extra)
{
	const char *near;
	char *all;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return;
	if (extra && !strcmp(extra, name))
		return;
	all = xstrdup("");
	near = closest_name(name, names, n);
	error("%s: no %s named '%s' in the store", opt, what, name);
	if (near) {
		fprintf(stderr, "hint: did you mean '%s'?\n", near);
	} else {
		for (size_t i = 0; i < n && i < 20; i++) {
			char *t = xasprintf("%s%s%s", all, i ? ", " : "",
			    names[i]);

			free(all);
			all = t;
		}
		fprintf(stderr, "hint: %s%s%s%s%s\n", extra ? "'" : "",
		    extra ? extra : "", extra ? "' or " : "", n ? "one of: " :
		    "there are none", all);
	}
	free(all);
	exit(CKPT_EXIT_USAGE);
}

static void
parse_where(const char *s, struct where *w)
{
	static const struct { const char *tok; enum op op; } ops[] = {
		{ "<=", OP_LE }, { ">=", OP_GE }, { "!=", OP_NE },
		{ "==", OP_EQ }, { "<", OP_LT }, { ">", OP_GT }, { "=", OP_EQ },
	};
	size_t pos = strcspn(s, "<>=!");

	if (!pos || !s[pos])
		die_usage("--where '%s': expected METRIC<VALUE (or <=, >, >=, "
		    "=, !=)", s);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].tok);

		if (strncmp(s + pos, ops[i].tok, n))
			continue;
		w->metric = xasprintf("%.*s", (int)pos, s);
		w->op = ops[i].op;
		if (parse_double(s + pos + n, &w->value))
			die_usage("--where '%s': '%s' is not a number", s,
			    s + pos + n);
		return;
	}
	die_usage("--where '%s': unknown comparison", s);
}

static bool
where_match(const struct ckpt_entry *e, const struct where *w)
{
	double v;

	if (!ckpt_entry_metric(e, w->metric, &v) || isnan(v))
		return false;
	switch (w->op) {
	case OP_LT: return v < w->value;
	case OP_LE: return v <= w->value;
	case OP_GT: return v > w->value;
	case OP_GE: return v >= w->value;
	case OP_EQ: return v == w->value;
	default: return v != w->value;
	}
}

static int
cmp_by_metric(const void *a, const void *b)
{
	const struct ckpt_entry *x = *(const struct ckpt_entry *const *)a;
	const struct ckpt_entry *y = *(const struct ckpt_entry *const *)b;
	double vx = NAN, vy = NAN;

	ckpt_entry_metric(x, sort_key, &vx);
	ckpt_entry_metric(y, sort_key, &vy);
	if (isnan(vx) != isnan(vy))
		return isnan(vx) ? 1 : -1;
	if (!isnan(vx) && vx != vy)
		return vx < vy ? -1 : 1;
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return strcmp(x->run, y->run);
}

/*
 * An abandoned or failed save may be a --move save still holding the
 * user's files: say how to get them back (ckpt-gc(1)).
 */
static void
abandoned_hint(const struct ctx *ctx, const struct ckpt_list *l)
{
	for (size_t i = 0; i < ckpt_list_staging_count(l); i++) {
		enum ckpt_staging_state st = ckpt_list_staging(l, i)->state;

		if (st != CKPT_STAGING_ABANDONED && st != CKPT_STAGING_FAILED)
			continue;
		if (ctx->verbosity > 0)
			fprintf(stderr, "hint: the files of an abandoned or "
			    "failed --move save are in its staging directory;"
			    " 'ckpt gc --restore' moves them back where they "
			    "came from\n");
		return;
	}
}

/* Text built up for one cell, its buffer reused from row to row. */
struct cellbuf {
	char *s;
	size_t len, cap;
};

static void PRINTF(2, 3)
cell_printf(struct cellbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->cap - b->len,
		    fmt, ap);
		va_end(ap);
		if (n < 0)
			die("cannot format a cell");
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = 2 * (b->len + (size_t)n + 1);
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	b->len += (size_t)n;
}

/* Appends s (a row is formatted twice: measured, then printed). */
static void
cell_put(struct cellbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->cap - b->len <= n) {
		b->cap = 2 * (b->len + n + 1);
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

static void
cell_start(struct cellbuf *b)
{
	b->len = 0;
	cell_put(b, "");
}

static const char *
metrics_text(struct cellbuf *b, const struct ckpt_entry *e)
{
	cell_start(b);
	for (size_t i = 0; i < e->nmetrics; i++) {
		if (i)
			cell_put(b, " ");
		cell_put(b, e->metrics[i].name);
		if (isnan(e->metrics[i].value))
			cell_put(b, "=-");
		else
			cell_printf(b, "=%.6g", e->metrics[i].value);
	}
	return b->s;
}

static const char *
tags_text(struct cellbuf *b, const struct ckpt_entry *e)
{
	cell_start(b);
	for (size_t i = 0; i < e->ntags; i++) {
		if (i)
			cell_put(b, ",");
		cell_put(b, e->tags[i]);
	}
	return b->s;
}

static const char *
flags_text(struct cellbuf *b, const struct ckpt_entry *e)
{
	cell_start(b);
	if (e->pinned)
		cell_put(b, "pinned ");
	if (e->protected_by_registry)
		cell_put(b, "registry ");
	if (e->failed)
		cell_put(b, "FAILED ");
	if (b->len)
		b->s[--b->len] = '\0';
	return b->s;
}

static int
cmp_metric_name(const void *a, const void *b)
{
	return strcmp((*(const struct ckpt_metric *const *)a)->name,
	    (*(const struct ckpt_metric *const *)b)->name);
}

/*
 * One checkpoint of ls --json at depth 2, printed as it goes (no jansson
 * tree): the members in sorted order, as json_print_value prints them.
 */
static void
entry_print_json(const struct ckpt_entry *e)
{
	static const struct ckpt_metric **sorted;
	static size_t nsorted;
	struct json_stream o, m;

	json_stream_begin(&o, 2, false);
	json_stream_string(&o, "created", e->created_iso);
	json_stream_real(&o, "epoch", e->epoch);
	json_stream_bool(&o, "failed", e->failed);
	json_stream_int(&o, "files", (json_int_t)e->nfiles);
	/* as recorded, so a newer version's values pass through */
	json_stream_string(&o, "load_test", e->load_test_raw);
	json_stream_key(&o, "metrics");
	if (e->nmetrics > nsorted) {
		nsorted = e->nmetrics;
		sorted = xreallocarray(sorted, nsorted, sizeof(*sorted));
	}
	for (size_t i = 0; i < e->nmetrics; i++)
		sorted[i] = &e->metrics[i];
	if (e->nmetrics > 1)
		qsort(sorted, e->nmetrics, sizeof(*sorted), cmp_metric_name);
	json_stream_begin(&m, 3, false);
	for (size_t i = 0; i < e->nmetrics; i++)
		json_stream_real(&m, sorted[i]->name, sorted[i]->value);
	json_stream_end(&m);
	if (e->note)
		json_stream_string(&o, "note", e->note);
	json_stream_string(&o, "path", e->path);
	json_stream_bool(&o, "pinned", e->pinned);
	json_stream_bool(&o, "protected", e->protected_by_registry);
	json_stream_string(&o, "run", e->run);
	json_stream_string(&o, "scope", e->scope);
	json_stream_int(&o, "size", (json_int_t)e->size);
	json_stream_int(&o, "step", e->step);
	json_stream_strings(&o, "tags", e->tags, e->ntags);
	json_stream_string(&o, "validation", e->validation_raw);
	json_stream_end(&o);
}

/* The "runs" totals of ls --json: a few runs, their checkpoints in a row
 * unless --sort mixed them. */
struct run_total {
	const char *run;
	json_int_t count, size;
};

static void
run_total_add(struct run_total **v, size_t *n, const struct ckpt_entry *e)
{
	struct run_total *r = *n ? &(*v)[*n - 1] : NULL;

	if (!r || (r->run != e->run && strcmp(r->run, e->run))) {
		r = NULL;
		for (size_t i = 0; i < *n && !r; i++)
			if (!strcmp((*v)[i].run, e->run))
				r = &(*v)[i];
	}
	if (!r) {
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		r = &(*v)[(*n)++];
		r->run = e->run;
		r->count = r->size = 0;
	}
	r->count++;
	r->size += (json_int_t)e->size;
}

static json_t *
staging_json(const struct ckpt_staging *st)
{
	json_t *o = json_object();

	json_object_set_new(o, "run", json_string(st->run));
	json_object_set_new(o, "path", json_string(st->path));
	json_object_set_new(o, "state", json_string(ckpt_staging_state_name(
	    st->state)));
	json_object_set_new(o, "step", st->step >= 0 ?
	    json_integer(st->step) : json_null());
	json_object_set_new(o, "phase", st->phase_raw ?
	    json_string(st->phase_raw) : json_null());
	json_object_set_new(o, "message", st->message ?
	    json_string(st->message) : json_null());
	json_object_set_new(o, "pid", st->pid ? json_integer(st->pid) :
	    json_null());
	json_object_set_new(o, "host", st->host ? json_string(st->host) :
	    json_null());
	json_object_set_new(o, "started", json_time(st->started));
	json_object_set_new(o, "updated", json_time(st->updated));
	json_object_set_new(o, "done", json_integer((json_int_t)st->done));
	json_object_set_new(o, "total", json_integer((json_int_t)st->total));
	return o;
}

/*
 * --run, and the metrics of --sort and --where, must name something: in
 * the store for a run; among the listed checkpoints for a metric (when
 * there are any: an empty run answers every query with nothing).
 */
static void
check_names(struct ckpt_store *s, const struct ckpt_list *l, const char *run,
    const char *sort, const struct where *ws, size_t nws)
{
	const char **names;
	struct ckpt_list *all = NULL;
	size_t n;

	if (run && !ckpt_list_count(l)) {
		struct ckpt_error err;

		ckpt_error_clear(&err);
		if (ckpt_store_list(s, NULL, CKPT_LIST_STAGING, &all, &err))
			die_ckpt(&err);
		n = collect_names(all, false, &names);
		/* A run whose first save is under way exists too. */
		for (size_t i = 0; i < ckpt_list_staging_count(all); i++) {
			names = xreallocarray(names, n + 1, sizeof(*names));
			names[n++] = ckpt_list_staging(all, i)->run;
		}
		check_known("run", "--run", run, names, n, NULL);
		free(names);
		ckpt_list_free(all);
		return;
	}
	if (!ckpt_list_count(l) || (!sort && !nws))
		return;
	/* The metrics of the whole store: --run b --where loss<1 is a
	 * valid query with no answer when only run a records loss. */
	if (run) {
		struct ckpt_error err;

		ckpt_error_clear(&err);
		if (ckpt_store_list(s, NULL, 0, &all, &err))
			die_ckpt(&err);
		l = all;
	}
	n = collect_names(l, true, &names);
	if (sort)
		check_known("metric", "--sort", sort, names, n, "step");
	for (size_t i = 0; i < nws; i++)
		check_known("metric", "--where", ws[i].metric, names, n, NULL);
	free(names);
	if (all)
		ckpt_list_free(all);
}

/* Symbolic links and unreadable registry entries, left alone. */
static json_t *
foreign_json(const struct ckpt_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < ckpt_list_foreign_count(l); i++) {
		const struct ckpt_foreign *f = ckpt_list_foreign(l, i);
		json_t *o = json_object();

		json_object_set_new(o, "run", f->run ? json_string(f->run) :
		    json_null());
		json_object_set_new(o, "path", json_string(f->path));
		json_object_set_new(o, "what", json_string(f->what));
		json_array_append_new(a, o);
	}
	return a;
}

/* The cells of rows, reused: checkpoints made close together share
 * their time's text. */
struct row_text {
	struct cellbuf mt, tg, fl;
	int64_t created;
	bool have_time;
	char tm[32];
};

/* Measures (print false) or prints the row of one checkpoint. */
static void
entry_row(struct table *t, struct row_text *rt, const struct ckpt_entry *e,
    bool print)
{
	char step[32], sz[32];
	const char *cells[7];

	snprintf(step, sizeof(step), "%lld", (long long)e->step);
	if (!rt->have_time || rt->created != e->created) {
		human_time(e->created, rt->tm, sizeof(rt->tm));
		rt->created = e->created;
		rt->have_time = true;
	}
	human_size(e->size, sz, sizeof(sz));
	cells[0] = e->run;
	cells[1] = step;
	cells[2] = rt->tm;
	cells[3] = sz;
	cells[4] = metrics_text(&rt->mt, e);
	cells[5] = tags_text(&rt->tg, e);
	cells[6] = flags_text(&rt->fl, e);
	if (print)
		table_print_row(t, stdout, cells);
	else
		table_measure(t, cells);
}

static int
cmd_ls_main(int argc, char **argv, struct ctx *ctx)
{
	const char *run = NULL, *sort = NULL;
	struct strlist wheres = { 0 };
	bool models = false;
	const struct opt opts[] = {
		OPT_BOOL(0, "models", &models, "list the registry's models, "
		    "versions and aliases instead"),
		OPT_STRING('r', "run", &run, "run", "list only this run"),
		OPT_STRING(0, "sort", &sort, "step|name",
		    "sort by step (default) or by the metric name, ascending"),
		OPT_STRING_LIST(0, "where", &wheres, "metric<x",
		    "keep checkpoints whose metric compares so (<, <=, >, >=, "
		    "=, !=)"),
		OPT_END()
	};
	const struct ckpt_entry **shown;
	struct where *ws;
	struct ckpt_store *s;
	struct ckpt_list *l;
	struct ckpt_error err;
	size_t n = 0;
	int rc, nargs;

	nargs = parse_options(argc, argv, ctx, opts, ls_usage);
	if (models) {
		if (run || sort || wheres.n)
			usage_error(ls_usage, opts, "--models lists models: "
			    "--run, --sort and --where select checkpoints");
		strlist_release(&wheres);
		return models_list(ctx, nargs, argv);
	}
	if (nargs)
		usage_error(ls_usage, opts, "ls takes no arguments (but "
		    "model names after --models)");
	if (run && ckpt_name_check(run, "run name", &err)) {
		error_ckpt(&err);
		usage_hint();
		return CKPT_EXIT_USAGE;
	}
	ws = xcalloc(wheres.n, sizeof(*ws));
	for (size_t i = 0; i < wheres.n; i++)
		parse_where(wheres.items[i], &ws[i]);
	s = cmd_store(ctx);
	ckpt_error_clear(&err);
	if ((rc = ckpt_store_list(s, run, CKPT_LIST_STAGING, &l, &err)))
		die_ckpt(&err);
	check_names(s, l, run, sort, ws, wheres.n);
	if (!ctx->json)
		for (size_t i = 0; i < ckpt_list_foreign_count(l); i++)
			warning("%s: %s", ckpt_list_foreign(l, i)->path,
			    ckpt_list_foreign(l, i)->what);
	shown = xcalloc(ckpt_list_count(l), sizeof(*shown));
	for (size_t i = 0; i < ckpt_list_count(l); i++) {
		const struct ckpt_entry *e = ckpt_list_entry(l, i);
		bool ok = true;

		for (size_t k = 0; k < wheres.n && ok; k++)
			ok = where_match(e, &ws[k]);
		if (ok)
			shown[n++] = e;
	}
	if (sort && strcmp(sort, "step")) {
		sort_key = sort;
		qsort(shown, n, sizeof(*shown), cmp_by_metric);
	}
	if (ctx->json) {
		json_t *runs = json_object(), *stg = json_array(), *v;
		struct run_total *totals = NULL;
		size_t ntotals = 0;

		/*
		 * Streamed, one checkpoint at a time, in the layout of
		 * json_doc_print (keys sorted): memory does not grow with
		 * the number of checkpoints beyond the listing itself.
		 */
		fputs("{\n  \"checkpoints\": ", stdout);
		fputs(n ? "[" : "[]", stdout);
		for (size_t i = 0; i < n; i++) {
			fputs("\n    ", stdout);
			entry_print_json(shown[i]);
			if (i + 1 < n)
				putchar(',');
			run_total_add(&totals, &ntotals, shown[i]);
		}
		if (n)
			fputs("\n  ]", stdout);
		for (size_t i = 0; i < ntotals; i++) {
			json_t *r = json_object();

			json_object_set_new(r, "checkpoints",
			    json_integer(totals[i].count));
			json_object_set_new(r, "size",
			    json_integer(totals[i].size));
			json_object_set_new(runs, totals[i].run, r);
		}
		free(totals);
		for (size_t i = 0; i < ckpt_list_staging_count(l); i++)
			json_array_append_new(stg, staging_json(
			    ckpt_list_staging(l, i)));
		fputs(",\n  \"foreign\": ", stdout);
		v = foreign_json(l);
		json_print_value(v, 1);
		json_decref(v);
		fputs(",\n  \"runs\": ", stdout);
		json_print_value(runs, 1);
		json_decref(runs);
		fputs(",\n  \"saves\": ", stdout);
		json_print_value(stg, 1);
		json_decref(stg);
		fputs(",\n  \"schema\": 1,\n  \"store\": ", stdout);
		v = json_string(ckpt_store_root(s));
		json_print_value(v, 1);
		json_decref(v);
		fputs("\n}\n", stdout);
		if (fflush(stdout) || ferror(stdout))
			die("cannot write JSON output");
	} else {
		static const char *hdr[] = { "RUN", "STEP", "CREATED", "SIZE",
			"METRICS", "TAGS", "FLAGS" };
		static const enum col_align al[] = { COL_LEFT, COL_RIGHT,
			COL_LEFT, COL_RIGHT, COL_LEFT, COL_LEFT, COL_LEFT };
		struct row_text rt = { 0 };
		struct table t;

		table_init(&t, 7, hdr, al);
		/* widths first, then the rows: no row is kept */
		for (size_t i = 0; i < n; i++)
			entry_row(&t, &rt, shown[i], false);
		if (n)
			table_print_header(&t, stdout, ctx);
		for (size_t i = 0; i < n; i++)
			entry_row(&t, &rt, shown[i], true);
		free(rt.mt.s);
		free(rt.tg.s);
		free(rt.fl.s);
		if (!n && wheres.n && ckpt_list_count(l))
			info(ctx, "no checkpoint%s%s matches --where",
			    run ? " of run " : "", run ? run : "");
		else if (!n && !ckpt_list_staging_count(l))
			info(ctx, "no checkpoints%s%s", run ? " in run " : "",
			    run ? run : "");
		table_release(&t);
		if (ckpt_list_staging_count(l)) {
			static const char *sh[] = { "RUN", "STEP", "STATE",
				"PROGRESS", "OWNER", "PATH" };
			struct table u;

			if (n)
				putchar('\n');
			table_init(&u, 6, sh, NULL);
			for (size_t i =
			    0; i < ckpt_list_staging_count(l); i++) {
				const struct ckpt_staging *st =
				    ckpt_list_staging(l, i);
				char step[32], prog[64], own[300], state[400];

				snprintf(step, sizeof(step), st->step >= 0 ?
				    "%lld" : "?", (long long)st->step);
				if (st->total)
					snprintf(prog, sizeof(prog),
					    "%s %.0f%%",
					    st->phase_raw ? st->phase_raw : "",
					    100.0 * (double)st->done /
					    (double)st->total);
				else
					snprintf(prog, sizeof(prog), "%s",
					    st->phase_raw ? st->phase_raw :
					    "-");
				if (st->pid)
					snprintf(own, sizeof(own),
					    "pid %ld on %s", st->pid,
					    st->host ? st->host : "?");
				else
					snprintf(own, sizeof(own), "-");
				snprintf(state, sizeof(state), "%s%s%s",
				    ckpt_staging_state_name(st->state),
				    st->message ? ": " : "",
				    st->message ? st->message : "");
				table_add(&u, st->run, step, state, prog, own,
				    st->path);
			}
			table_print(&u, stdout, ctx);
			table_release(&u);
			abandoned_hint(ctx, l);
		}
	}
	for (size_t i = 0; i < wheres.n; i++)
		free(ws[i].metric);
	free(ws);
	free(shown);
	strlist_release(&wheres);
	ckpt_list_free(l);
	return CKPT_EXIT_OK;
}

const struct cmd cmd_ls = {
	.name = "ls",
	.summary = "list runs and checkpoints of the store",
	.fn = cmd_ls_main,
	.flags = CMD_STORE,
};
