/* SPDX-License-Identifier: MIT */
/*
 * diff.c - "ckpt diff A B": two checkpoints compared tensor by tensor,
 * across formats, as a report and as a CI gate.
 *
 * Choices:
 *  - A and B are paths or store references, resolved as inspect does;
 *    the comparison itself is the library's (ckpt_diff): structure,
 *    values through the numeric kernels on every core, digests of store
 *    manifests instead of data where they prove equality, metadata.
 *  - Exit as diff(1): 0 identical, 1 different.  With --atol/--rtol the
 *    question becomes "within tolerance": 0 when every value of every
 *    common tensor is close (numpy.isclose on float64; a tolerance not
 *    given is 0) and the structure matches; --allow-missing and
 *    --allow-extra relax the structure in both modes.  Metadata
 *    differences (step, metrics, epoch) are reported and never change
 *    the exit status: two checkpoints of one run always differ there.
 *    A tensor whose data cannot be read is exit 3.
 *  - "identical" is about values: NaN equals NaN, -0 equals +0; a tensor
 *    exported to another dtype with the same values is identical in
 *    values and reported as a dtype change, which makes the checkpoints
 *    different without tolerances and passes with them.
 *  - The table of changed tensors is sorted by relative change
 *    (||A - B|| / ||A||), structural changes first, and cut at --top.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <math.h>

static const char *const diff_usage[] = {
	"ckpt diff [options] a b",
	NULL
};

struct diff_opts {
	struct strlist maps, filters;
	double atol, rtol;
	bool equal_nan, allow_missing, allow_extra, stat, no_digests;
	long long top;
	const char *metric, *mode;
	bool tolerance;
};

enum verdict { V_IDENTICAL, V_CLOSE, V_DIFFERENT, V_ERROR };

static double
rel_l2(const struct ckpt_compare_stats *s)
{
	if (s->sum_a2 > 0)
		return sqrt(s->sum_sq) / sqrt(s->sum_a2);
	return s->sum_sq > 0 ? INFINITY : 0;
}

static double
cosine(const struct ckpt_compare_stats *s)
{
	if (!(s->sum_a2 > 0 && s->sum_b2 > 0))
		return NAN;
	return s->sum_ab / (sqrt(s->sum_a2) * sqrt(s->sum_b2));
}

static double
mean_abs(const struct ckpt_compare_stats *s)
{
	return s->finite ? s->sum_abs / (double)s->finite : NAN;
}

static enum verdict
judge(const struct ckpt_diff_tensor *t, const struct diff_opts *o)
{
	if (t->error)
		return V_ERROR;
	if (t->shape_changed || !t->compared)
		return V_DIFFERENT;
	if (t->identical && !t->dtype_changed)
		return V_IDENTICAL;
	if (o->tolerance && (t->by_digest || !t->st.beyond))
		return V_CLOSE;
	return V_DIFFERENT;
}

struct summary {
	size_t common, identical, close, different, only_a, only_b;
	size_t dtype_changed, shape_changed, errors, by_digest, no_data;
};

static void
summarise(const struct ckpt_diff *d, const struct diff_opts *o,
    struct summary *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < d->ntensors; i++) {
		const struct ckpt_diff_tensor *t = &d->tensors[i];

		if (t->where == CKPT_DIFF_ONLY_A) {
			s->only_a++;
			continue;
		}
		if (t->where == CKPT_DIFF_ONLY_B) {
			s->only_b++;
			continue;
		}
		s->common++;
		s->dtype_changed += t->dtype_changed;
		s->shape_changed += t->shape_changed;
		s->by_digest += t->by_digest;
		s->no_data += t->no_data;
		switch (judge(t, o)) {
		case V_IDENTICAL:
			s->identical++;
			break;
		case V_CLOSE:
			s->close++;
			break;
		case V_DIFFERENT:
			s->different++;
			break;
		case V_ERROR:
			s->errors++;
			break;
		}
	}
}

static int
exit_status(const struct summary *s, const struct diff_opts *o)
{
	if (s->errors)
		return CKPT_EXIT_ERROR;
	if ((s->only_a && !o->allow_missing) || (s->only_b && !o->allow_extra))
		return CKPT_EXIT_FINDING;
	if (s->different)
		return CKPT_EXIT_FINDING;
	return CKPT_EXIT_OK;
}

/* ---------------------------------------------------------------- */
/* Rendering                                                         */
/* ---------------------------------------------------------------- */

static char *
shape_str(unsigned int ndim, const uint64_t *shape)
{
	char *s = xstrdup("[");

	for (unsigned i = 0; i < ndim; i++) {
		char *n = xasprintf("%s%s%llu", s, i ? ", " : "",
		    (unsigned long long)shape[i]);

		free(s);
		s = n;
	}
	{
		char *n = xasprintf("%s]", s);

		free(s);
		s = n;
	}
	return s;
}

static const char *
verdict_name(enum verdict v)
{
	static const char *const names[] = { "identical", "within_tolerance",
	    "different", "unreadable" };

	return names[v];
}

/* Order of the table: structural changes first, then the largest
 * relative change, the most values beyond tolerance, the name. */
static double
sort_key(const struct ckpt_diff_tensor *t)
{
	if (t->shape_changed || !t->compared || t->error)
		return INFINITY;
	if (t->by_digest)
		return 0;
	return rel_l2(&t->st);
}

static int
cmp_changed(const void *x, const void *y)
{
	const struct ckpt_diff_tensor *a = *(const struct ckpt_diff_tensor *
	    const *)x;
	const struct ckpt_diff_tensor *b = *(const struct ckpt_diff_tensor *
	    const *)y;
	double ka = sort_key(a), kb = sort_key(b);

	if (ka != kb && !(isnan(ka) && isnan(kb)))
		return isnan(ka) ? -1 : isnan(kb) ? 1 : ka > kb ? -1 : 1;
	if (a->st.beyond != b->st.beyond)
		return a->st.beyond > b->st.beyond ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* The common tensors that are not identical, in table order. */
static const struct ckpt_diff_tensor **
changed_list(const struct ckpt_diff *d, const struct diff_opts *o,
    size_t *n)
{
	const struct ckpt_diff_tensor **v = xcalloc(d->ntensors + 1,
	    sizeof(*v));

	*n = 0;
	for (size_t i = 0; i < d->ntensors; i++)
		if (d->tensors[i].where == CKPT_DIFF_COMMON &&
		    judge(&d->tensors[i], o) != V_IDENTICAL)
			v[(*n)++] = &d->tensors[i];
	qsort(v, *n, sizeof(*v), cmp_changed);
	return v;
}

static char *
num(double x)
{
	if (isnan(x))
		return xstrdup("-");
	return xasprintf("%.6g", x);
}

static char *
dtype_pair(const struct ckpt_diff_tensor *t)
{
	if (!t->dtype_changed)
		return xstrdup(ckpt_dtype_name(t->dtype_a));
	return xasprintf("%s->%s", ckpt_dtype_name(t->dtype_a),
	    ckpt_dtype_name(t->dtype_b));
}

static char *
shape_pair(const struct ckpt_diff_tensor *t)
{
	char *a = shape_str(t->ndim_a, t->shape_a), *b, *s;

	if (!t->shape_changed)
		return a;
	b = shape_str(t->ndim_b, t->shape_b);
	s = xasprintf("%s->%s", a, b);
	free(a);
	free(b);
	return s;
}

static void
print_summary(const struct ckpt_diff *d, const struct summary *s,
    const struct diff_opts *o, const char *a, const char *b)
{
	printf("a: %s (%s, %zu tensors)\n", a, d->kind_a, d->ntensors_a);
	printf("b: %s (%s, %zu tensors)\n", b, d->kind_b, d->ntensors_b);
	printf("tensors: %zu common: %zu identical", s->common, s->identical);
	if (o->tolerance)
		printf(", %zu within tolerance", s->close);
	printf(", %zu different", s->different);
	if (s->errors)
		printf(", %zu unreadable", s->errors);
	printf("; %zu only in a, %zu only in b\n", s->only_a, s->only_b);
	if (s->dtype_changed || s->shape_changed)
		printf("changed: %zu dtype, %zu shape\n", s->dtype_changed,
		    s->shape_changed);
	if (s->by_digest)
		printf("%zu identical by manifest digest (not read)\n",
		    s->by_digest);
	if (s->no_data)
		printf("%zu meta tensor%s (no data): dtype and shape "
		    "compared\n", s->no_data, s->no_data == 1 ? "" : "s");
	if (d->suggested_map)
		printf("hint: no tensor names match; try --map %s\n",
		    d->suggested_map);
}

static void
print_changed(const struct ckpt_diff *d, const struct diff_opts *o,
    struct ctx *ctx)
{
	static const char *headers[] = { "name", "dtype", "shape", "max_abs",
	    "mean_abs", "rel_l2", "cosine", "beyond", "nan_a", "nan_b",
	    "note" };
	static const enum col_align align[] = { COL_LEFT, COL_LEFT, COL_LEFT,
	    COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT,
	    COL_RIGHT, COL_LEFT };
	size_t n, shown;
	const struct ckpt_diff_tensor **v = changed_list(d, o, &n);
	struct table t;

	if (!n) {
		free(v);
		return;
	}
	shown = (size_t)o->top < n ? (size_t)o->top : n;
	printf("\nchanged tensors, largest relative change first");
	if (shown < n)
		printf(" (%zu of %zu; --top)", shown, n);
	printf(":\n");
	table_init(&t, sizeof(headers) / sizeof(headers[0]), headers, align);
	for (size_t i = 0; i < shown; i++) {
		const struct ckpt_diff_tensor *x = v[i];
		const struct ckpt_compare_stats *s = &x->st;
		bool vals = x->compared && !x->by_digest;
		char *c[11];

		c[0] = xstrdup(x->name);
		c[1] = dtype_pair(x);
		c[2] = shape_pair(x);
		c[3] = vals ? num(s->max_abs) : xstrdup("-");
		c[4] = vals ? num(mean_abs(s)) : xstrdup("-");
		c[5] = vals ? num(rel_l2(s)) : xstrdup("-");
		c[6] = vals ? num(cosine(s)) : xstrdup("-");
		c[7] = vals ? xasprintf("%llu", (unsigned long long)s->beyond) :
		    xstrdup("-");
		c[8] = vals ? xasprintf("%llu", (unsigned long long)s->nan_a) :
		    xstrdup("-");
		c[9] = vals ? xasprintf("%llu", (unsigned long long)s->nan_b) :
		    xstrdup("-");
		c[10] = xstrdup(x->error ? x->error : x->note ? x->note :
		    x->identical ? "same values" : s->nan_both ?
		    "NaN in both" : "");
		table_add_row(&t, (const char **)c);
		for (size_t k = 0; k < 11; k++)
			free(c[k]);
	}
	table_print(&t, stdout, ctx);
	table_release(&t);
	free(v);
}

static void
print_only(const struct ckpt_diff *d, enum ckpt_diff_where w,
    const char *title, const struct diff_opts *o)
{
	size_t n = 0, shown = 0;

	for (size_t i = 0; i < d->ntensors; i++)
		n += d->tensors[i].where == w;
	if (!n)
		return;
	printf("\n%s (%zu):\n", title, n);
	for (size_t i = 0; i < d->ntensors && shown < (size_t)o->top; i++) {
		const struct ckpt_diff_tensor *t = &d->tensors[i];
		bool a = w == CKPT_DIFF_ONLY_A;
		char *sh;

		if (t->where != w)
			continue;
		sh = shape_str(a ? t->ndim_a : t->ndim_b,
		    a ? t->shape_a : t->shape_b);
		printf("  %s  %s  %s\n", t->name,
		    ckpt_dtype_name(a ? t->dtype_a : t->dtype_b), sh);
		free(sh);
		shown++;
	}
	if (shown < n)
		printf("  ... %zu more (--top)\n", n - shown);
}

static void
print_meta(const struct ckpt_diff *d)
{
	if (!d->nmeta)
		return;
	printf("\nmetadata:\n");
	for (size_t i = 0; i < d->nmeta; i++) {
		const struct ckpt_diff_meta *m = &d->meta[i];

		if (!m->a)
			printf("  %s %s: only in b: %s\n", m->section, m->path,
			    m->b);
		else if (!m->b)
			printf("  %s %s: only in a: %s\n", m->section, m->path,
			    m->a);
		else
			printf("  %s %s: %s -> %s\n", m->section, m->path, m->a,
			    m->b);
	}
}

static json_t *
json_shape(unsigned int ndim, const uint64_t *shape)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < ndim; i++)
		json_array_append_new(a, json_integer((json_int_t)shape[i]));
	return a;
}

static json_t *
json_num(double x)
{
	return isfinite(x) ? json_real(x) : json_null();
}

static json_t *
json_u64(uint64_t x)
{
	return json_integer((json_int_t)x);
}

static json_t *
json_changed(const struct ckpt_diff_tensor *t, const struct diff_opts *o)
{
	const struct ckpt_compare_stats *s = &t->st;
	bool vals = t->compared && !t->by_digest;
	json_t *j = json_object();

	json_object_set_new(j, "name", json_string(t->name));
	if (t->name_b && strcmp(t->name_b, t->name))
		json_object_set_new(j, "name_b", json_string(t->name_b));
	json_object_set_new(j, "status", json_string(verdict_name(judge(t,
	    o))));
	json_object_set_new(j, "dtype_a", json_string(ckpt_dtype_name(
	    t->dtype_a)));
	json_object_set_new(j, "dtype_b", json_string(ckpt_dtype_name(
	    t->dtype_b)));
	json_object_set_new(j, "shape_a", json_shape(t->ndim_a, t->shape_a));
	json_object_set_new(j, "shape_b", json_shape(t->ndim_b, t->shape_b));
	json_object_set_new(j, "layout_a", json_string(t->layout_a ?
	    t->layout_a : "strided"));
	json_object_set_new(j, "layout_b", json_string(t->layout_b ?
	    t->layout_b : "strided"));
	json_object_set_new(j, "identical", json_boolean(t->identical));
	json_object_set_new(j, "count", vals ? json_u64(s->count) :
	    json_null());
	json_object_set_new(j, "unequal", vals ? json_u64(s->unequal) :
	    json_null());
	json_object_set_new(j, "max_abs", vals ? json_num(s->max_abs) :
	    json_null());
	json_object_set_new(j, "mean_abs", vals ? json_num(mean_abs(s)) :
	    json_null());
	json_object_set_new(j, "rel_l2", vals ? json_num(rel_l2(s)) :
	    json_null());
	json_object_set_new(j, "cosine", vals ? json_num(cosine(s)) :
	    json_null());
	json_object_set_new(j, "beyond_tolerance", vals ? json_u64(s->beyond) :
	    json_null());
	json_object_set_new(j, "nan_a", vals ? json_u64(s->nan_a) :
	    json_null());
	json_object_set_new(j, "nan_b", vals ? json_u64(s->nan_b) :
	    json_null());
	json_object_set_new(j, "nan_both", vals ? json_u64(s->nan_both) :
	    json_null());
	json_object_set_new(j, "inf_a", vals ? json_u64(s->pos_inf_a +
	    s->neg_inf_a) : json_null());
	json_object_set_new(j, "inf_b", vals ? json_u64(s->pos_inf_b +
	    s->neg_inf_b) : json_null());
	if (t->note || t->error)
		json_object_set_new(j, "note", json_string(t->error ?
		    t->error : t->note));
	return j;
}

static json_t *
json_side(const char *arg, const char *path, const char *kind, size_t n)
{
	json_t *j = json_object();

	json_object_set_new(j, "arg", json_string(arg));
	json_object_set_new(j, "path", json_string(path));
	json_object_set_new(j, "kind", json_string(kind));
	json_object_set_new(j, "tensors", json_integer((json_int_t)n));
	return j;
}

static json_t *
json_meta_value(const char *text)
{
	json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;

	return v ? v : json_null();
}

static void
print_json(const struct ckpt_diff *d, const struct summary *s,
    const struct diff_opts *o, const char *args[2], const char *paths[2],
    int status)
{
	json_t *doc = json_doc_new(), *oa = json_array(), *ob = json_array();
	json_t *ch = json_array(), *meta = json_object(), *sum = json_object();
	size_t n;
	const struct ckpt_diff_tensor **v = changed_list(d, o, &n);

	json_object_set_new(doc, "a", json_side(args[0], paths[0], d->kind_a,
	    d->ntensors_a));
	json_object_set_new(doc, "b", json_side(args[1], paths[1], d->kind_b,
	    d->ntensors_b));
	for (size_t i = 0; i < d->ntensors; i++) {
		if (d->tensors[i].where == CKPT_DIFF_ONLY_A)
			json_array_append_new(oa,
			    json_string(d->tensors[i].name));
		else if (d->tensors[i].where == CKPT_DIFF_ONLY_B)
			json_array_append_new(ob,
			    json_string(d->tensors[i].name));
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(ch, json_changed(v[i], o));
	free(v);
	/* {"manifest": [...], "pickle": [...], "safetensors": [...]} */
	for (size_t i = 0; i < d->nmeta; i++) {
		json_t *m = json_object(), *list;

		list = json_object_get(meta, d->meta[i].section);
		if (!list) {
			list = json_array();
			json_object_set_new(meta, d->meta[i].section, list);
		}
		json_object_set_new(m, "path", json_string(d->meta[i].path));
		json_object_set_new(m, "a", json_meta_value(d->meta[i].a));
		json_object_set_new(m, "b", json_meta_value(d->meta[i].b));
		json_object_set_new(m, "change", json_string(!d->meta[i].a ?
		    "added" : !d->meta[i].b ? "removed" : "changed"));
		json_array_append_new(list, m);
	}
	json_object_set_new(doc, "only_a", oa);
	json_object_set_new(doc, "only_b", ob);
	json_object_set_new(doc, "changed", ch);
	json_object_set_new(doc, "metadata", meta);
	json_object_set_new(sum, "common", json_u64(s->common));
	json_object_set_new(sum, "identical", json_u64(s->identical));
	json_object_set_new(sum, "within_tolerance", json_u64(s->close));
	json_object_set_new(sum, "different", json_u64(s->different));
	json_object_set_new(sum, "unreadable", json_u64(s->errors));
	json_object_set_new(sum, "only_a", json_u64(s->only_a));
	json_object_set_new(sum, "only_b", json_u64(s->only_b));
	json_object_set_new(sum, "dtype_changed", json_u64(s->dtype_changed));
	json_object_set_new(sum, "shape_changed", json_u64(s->shape_changed));
	json_object_set_new(sum, "identical_by_digest", json_u64(s->by_digest));
	json_object_set_new(sum, "no_data", json_u64(s->no_data));
	json_object_set_new(sum, "metadata_differences", json_u64(d->nmeta));
	json_object_set_new(sum, "bytes_read", json_u64(d->bytes_read));
	json_object_set_new(sum, "atol", o->tolerance ? json_real(o->atol) :
	    json_null());
	json_object_set_new(sum, "rtol", o->tolerance ? json_real(o->rtol) :
	    json_null());
	json_object_set_new(sum, "result", json_string(status == 0 ?
	    (o->tolerance ? "pass" : "identical") : status == 1 ?
	    (o->tolerance ? "fail" : "different") : "error"));
	json_object_set_new(sum, "exit", json_integer(status));
	json_object_set_new(doc, "summary", sum);
	json_object_set_new(doc, "suggested_map", d->suggested_map ?
	    json_string(d->suggested_map) : json_null());
	json_doc_print(doc);
}

/* ---------------------------------------------------------------- */

static void
check_map(const char *const *usage, const struct opt *opts, const char *m)
{
	const char *eq = strchr(m, '=');

	if (!eq || strchr(eq + 1, '='))
		usage_error(usage, opts, "--map wants PREFIX_A=PREFIX_B");
}

static int
cmd_diff_main(int argc, char **argv, struct ctx *ctx)
{
	struct diff_opts o = { .top = 20, .atol = NAN, .rtol = NAN };
	const struct opt opts[] = {
		OPT_STRING_LIST(0, "map", &o.maps, "<a>=<b>",
		    "match names of a starting with <a> to <b> in b "
		    "(repeatable)"),
		OPT_STRING_LIST(0, "filter", &o.filters, "<glob>",
		    "only tensors whose name matches <glob> (repeatable)"),
		OPT_DOUBLE(0, "atol", &o.atol, "<x>",
		    "absolute tolerance: pass when |a-b| <= atol + rtol*|b|"),
		OPT_DOUBLE(0, "rtol", &o.rtol, "<y>",
		    "relative tolerance (numpy.allclose's rule)"),
		OPT_BOOL(0, "equal-nan", &o.equal_nan,
		    "NaN against NaN is within tolerance"),
		OPT_BOOL(0, "allow-missing", &o.allow_missing,
		    "tensors of a missing from b do not fail"),
		OPT_BOOL(0, "allow-extra", &o.allow_extra,
		    "tensors only in b do not fail"),
		OPT_BOOL(0, "stat", &o.stat, "print the summary only"),
		OPT_INT(0, "top", &o.top, "<n>",
		    "rows of the changed-tensor table (default 20)"),
		OPT_BOOL(0, "no-digests", &o.no_digests,
		    "read the data even where manifest digests are equal"),
		OPT_STRING(0, "metric", &o.metric, "<name>",
		    "the metric of RUN@best references"),
		OPT_STRING(0, "mode", &o.mode, "min|max",
		    "RUN@best: the lowest (default) or highest metric"),
		OPT_END()
	};
	struct ckpt_diff_options dopt = CKPT_DIFF_OPTIONS_INIT;
	struct ckpt_store *store = NULL;
	struct ckpt_diff *d = NULL;
	struct ckpt_error err;
	struct progress pr;
	struct summary s;
	const char *args[2];
	char *paths[2];
	int nargs, status;

	nargs = parse_options(argc, argv, ctx, opts, diff_usage);
	if (nargs != 2)
		usage_error(diff_usage, opts, "two checkpoints wanted");
	for (size_t i = 0; i < o.maps.n; i++)
		check_map(diff_usage, opts, o.maps.items[i]);
	for (size_t i = 0; i < o.filters.n; i++)
		if (!*o.filters.items[i])
			usage_error(diff_usage, opts, "empty --filter");
	o.tolerance = !isnan(o.atol) || !isnan(o.rtol);
	if (isnan(o.atol))
		o.atol = 0;
	if (isnan(o.rtol))
		o.rtol = 0;
	if (!(o.atol >= 0 && o.rtol >= 0) || isinf(o.atol) || isinf(o.rtol))
		usage_error(diff_usage, opts,
		    "--atol and --rtol must be finite and non-negative");
	if (o.top < 0)
		usage_error(diff_usage, opts, "--top must be 0 or more");

	for (int i = 0; i < 2; i++) {
		args[i] = argv[i];
		paths[i] = resolve_checkpoint_arg(ctx, &store, argv[i],
		    o.metric, parse_metric_mode(o.mode), NULL);
	}
	dopt.flags = o.no_digests ? CKPT_DIFF_NO_DIGESTS : 0;
	dopt.maps = (const char *const *)o.maps.items;
	dopt.nmaps = o.maps.n;
	dopt.filters = (const char *const *)o.filters.items;
	dopt.nfilters = o.filters.n;
	dopt.cmp.atol = o.atol;
	dopt.cmp.rtol = o.rtol;
	dopt.cmp.equal_nan = o.equal_nan;
	dopt.threads = ctx->jobs;
	progress_start(&pr, ctx, "comparing", 0);
	dopt.progress = progress_callback;
	dopt.progress_data = &pr;
	ckpt_error_clear(&err);
	if (ckpt_diff(paths[0], paths[1], &dopt, &d, &err)) {
		progress_stop(&pr);
		die_ckpt(&err);
	}
	progress_stop(&pr);

	summarise(d, &o, &s);
	status = exit_status(&s, &o);
	for (size_t i = 0; i < d->ntensors; i++)
		if (d->tensors[i].error)
			error("%s: %s", d->tensors[i].name,
			    d->tensors[i].error);
	if (ctx->json) {
		print_json(d, &s, &o, args, (const char **)paths, status);
	} else {
		print_summary(d, &s, &o, args[0], args[1]);
		if (!o.stat) {
			print_changed(d, &o, ctx);
			print_only(d, CKPT_DIFF_ONLY_A, "only in a", &o);
			print_only(d, CKPT_DIFF_ONLY_B, "only in b", &o);
			print_meta(d);
		}
	}
	ckpt_diff_free(d);
	ckpt_store_free(store);
	free(paths[0]);
	free(paths[1]);
	strlist_release(&o.maps);
	strlist_release(&o.filters);
	return status;
}

const struct cmd cmd_diff = {
	.name = "diff",
	.summary = "compare two checkpoints tensor by tensor",
	.fn = cmd_diff_main,
	.flags = CMD_JOBS,
};
