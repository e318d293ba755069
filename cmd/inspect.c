/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - "ckpt inspect": what is inside a checkpoint file, directory
 * or store reference, from headers alone.
 *
 * Choices:
 *  - Nothing but headers is read unless --stats asks for the data; a 4 GiB
 *    file costs what a 4 MiB one does.
 *  - Each argument is opened as a checkpoint (ckpt_checkpoint_open), so a
 *    directory prints each of its files, sorted, and the whole-checkpoint
 *    findings (index weight_map, DCP coverage) at the end.
 *  - --filter selects tensors by fnmatch(3) glob on the name; the totals
 *    count the selected tensors.
 *  - The non-tensor content of a file (safetensors __metadata__, a torch
 *    pickle's object tree, a JSON document) prints as an indented tree;
 *    subtrees holding only tensors collapse to "(N tensors)" since the
 *    tensor table lists them, and --depth bounds the nesting.
 *  - --stats runs the library's parallel statistics driver
 *    (ckpt_tensor_stats_many): tensors split into pieces on every core,
 *    merged in a fixed order, so the numbers do not depend on the thread
 *    count.
 *  - Exit statuses as every command has them (ckpt(1)): 1 when the input
 *    was read but is broken, unsafe or not what it claims (an error
 *    finding such as a posix.system pickle global or a bad CRC; a
 *    truncated file; a Git LFS pointer, an HTML page or an empty file
 *    where weights were expected), 3 only when ckpt could not do its job
 *    (no such file or reference, permission denied, I/O error).  The error
 *    names the file, the problem and the byte offset.  Several arguments:
 *    each is reported, the worst status wins, and --json is still one
 *    complete document (an argument that could not be opened has an
 *    "error" entry).
 *  - With several arguments, --json prints {"schema": 1, "checkpoints":
 *    [...]}; with one, that checkpoint's object itself.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <fnmatch.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const inspect_usage[] = {
	"ckpt inspect [options] path|ref ...",
	NULL
};

struct inspect_opts {
	struct strlist filters, allow;
	bool manifest;
	bool no_tensors;
	bool stats;
	long long depth;
	long long threads;
	const char *metric, *mode;
};

/* ---------------------------------------------------------------- */
/* Tensor selection and formatting                                   */
/* ---------------------------------------------------------------- */

static bool
selected(const struct inspect_opts *o, const struct ckpt_tensor *t)
{
	if (!o->filters.n)
		return true;
	for (size_t i = 0; i < o->filters.n; i++)
		if (!fnmatch(o->filters.items[i], t->name ? t->name : "", 0))
			return true;
	return false;
}

/* "[2, 3]" (digits by hand: printed twice for each row of the table) */
static char *
shape_str(const struct ckpt_tensor *t)
{
	size_t cap = 3 + (size_t)t->ndim * 22, o = 0;
	char *s = xmalloc(cap);

	s[o++] = '[';
	for (unsigned d = 0; d < t->ndim; d++) {
		char digits[24], *p = digits + sizeof(digits);
		uint64_t v = t->shape[d];

		do {
			*--p = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		if (d) {
			s[o++] = ',';
			s[o++] = ' ';
		}
		memcpy(s + o, p, (size_t)(digits + sizeof(digits) - p));
		o += (size_t)(digits + sizeof(digits) - p);
	}
	s[o++] = ']';
	s[o] = '\0';
	return s;
}

static const char *
num_str(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.6g", v);
	return buf;
}

/* ---------------------------------------------------------------- */
/* Statistics, in parallel                                           */
/* ---------------------------------------------------------------- */

/*
 * Tensors whose elements are in the file: plain ones, quantized (their
 * raw integers) and numpy arrays.  DCP tensors live in other files as
 * zip archives, meta tensors have no data, sparse ones are not a dense
 * array: they get no statistics.
 */
static bool
has_data(const struct ckpt_tensor *t)
{
	if (t->dtype == CKPT_DTYPE_QU4X2 || t->dtype == CKPT_DTYPE_QU2X4)
		return false;
	return !t->kind || !strcmp(t->kind, "quantized") ||
	    !strcmp(t->kind, "numpy");
}

struct tensor_result {
	const struct ckpt_file *f;
	const struct ckpt_tensor *t;
	struct ckpt_tensor_stats st;
	bool done;
	char *error;
};

/*
 * Computes the statistics of every selected tensor of c, on every core
 * (ckpt_tensor_stats_many).  Results are indexed by (file, tensor)
 * through res/nres in file then tensor order.  A tensor whose data
 * cannot be read gets an error string instead, and the function returns
 * -1 after printing it.
 */
static int
compute_stats(struct ckpt_checkpoint *c, const struct inspect_opts *o,
    const struct ctx *ctx, struct tensor_result **res_out, size_t *nres_out)
{
	struct tensor_result *res = NULL;
	struct ckpt_stats_item *items = NULL;
	struct progress pr;
	struct ckpt_error err;
	size_t nres = 0;
	int status = 0;

	for (size_t i = 0; i < ckpt_checkpoint_file_count(c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(c, i);

		if (!f)
			continue;
		for (size_t j = 0; j < ckpt_file_tensor_count(f); j++) {
			const struct ckpt_tensor *t = ckpt_file_tensor(f, j);

			if (!selected(o, t) || !has_data(t))
				continue;
			res = xreallocarray(res, nres + 1, sizeof(*res));
			items = xreallocarray(items, nres + 1, sizeof(*items));
			memset(&res[nres], 0, sizeof(*res));
			memset(&items[nres], 0, sizeof(*items));
			res[nres].f = items[nres].f = f;
			res[nres].t = items[nres].t = t;
			nres++;
		}
	}
	ckpt_error_clear(&err);
	progress_start(&pr, ctx, "statistics", 0);
	if (ckpt_tensor_stats_many(items, nres, (unsigned int)o->threads,
	    progress_callback, &pr, &err))
		die_ckpt(&err);
	progress_stop(&pr);
	for (size_t i = 0; i < nres; i++) {
		if (items[i].rc) {
			error_ckpt(&items[i].err);
			res[i].error = xstrdup(items[i].err.message);
			status = -1;
			continue;
		}
		res[i].st = items[i].st;
		res[i].done = true;
	}
	free(items);
	*res_out = res;
	*nres_out = nres;
	return status;
}

static const struct tensor_result *
find_result(const struct tensor_result *res, size_t nres,
    const struct ckpt_tensor *t)
{
	for (size_t i = 0; i < nres; i++)
		if (res[i].t == t)
			return &res[i];
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Metadata tree                                                     */
/* ---------------------------------------------------------------- */

static bool
is_tensor_ref(json_t *v)
{
	return json_is_object(v) && json_object_size(v) == 1 &&
	    json_is_string(json_object_get(v, "$tensor"));
}

/* Number of tensors in v when v holds nothing but tensors, else 0. */
static size_t
tensor_only(json_t *v)
{
	size_t n = 0, k;
	const char *key;
	json_t *c;

	if (is_tensor_ref(v))
		return 1;
	if (json_is_object(v) && json_object_size(v)) {
		json_object_foreach(v, key, c) {
			size_t m = tensor_only(c);

			if (!m)
				return 0;
			n += m;
		}
		return n;
	}
	if (json_is_array(v) && json_array_size(v)) {
		json_array_foreach(v, k, c) {
			size_t m = tensor_only(c);

			if (!m)
				return 0;
			n += m;
		}
		return n;
	}
	return 0;
}

static void
print_scalar(json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = strlen(s);
		bool plain = n > 0;

		for (size_t i = 0; i < n && plain; i++)
			if ((unsigned char)s[i] < 0x20)
				plain = false;
		if (plain && n <= 200) {
			fputs(s, stdout);
		} else {
			char *e = json_dumps(v, JSON_ENCODE_ANY);

			if (e && strlen(e) > 200)
				printf("%.197s...", e);
			else
				fputs(e ? e : "?", stdout);
			free(e);
		}
	} else {
		char *e = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
		    JSON_REAL_PRECISION(10));

		fputs(e ? e : "?", stdout);
		free(e);
	}
}

#define TREE_MAX_ITEMS 20	/* array items shown before "... (N more)" */

static void print_tree(json_t *v, int indent, long long depth);
static void print_entry(const char *key, json_t *v, int indent,
    long long depth);

/* An array of scalars prints on one line: "betas: [0.9, 0.999]"; a long
 * one shows its first items and its length. */
#define INLINE_MAX_ITEMS 8

static bool
scalar_array(json_t *v)
{
	size_t i;
	json_t *c;

	if (!json_is_array(v) || !json_array_size(v))
		return false;
	json_array_foreach(v, i, c)
		if (json_is_object(c) || json_is_array(c) ||
		    (json_is_string(c) && strlen(json_string_value(c)) > 40))
			return false;
	return true;
}

static void
print_inline_array(json_t *v)
{
	size_t i, n = json_array_size(v);
	json_t *c;

	printf(" [");
	json_array_foreach(v, i, c) {
		if (i == INLINE_MAX_ITEMS && n > INLINE_MAX_ITEMS + 1) {
			printf(", ... (%zu items)", n);
			break;
		}
		if (i)
			printf(", ");
		print_scalar(c);
	}
	printf("]\n");
}

static const char *const special_tags[] = { "$tensor", "$ndarray",
	"$bytes", "$complex", "$dtype", "$npdtype", "$npscalar", "$sparse",
	"$cycle", "$truncated", "$shared", "$global", "$object" };

/* The value of the one "$..." key of v that print_special knows, or NULL. */
static const char *
special_tag(json_t *v)
{
	if (!json_is_object(v))
		return NULL;
	for (size_t i = 0; i < sizeof(special_tags) / sizeof(special_tags[0]); i++)
		if (json_object_get(v, special_tags[i]))
			return special_tags[i];
	return NULL;
}

static void
print_compact(json_t *v)
{
	char *e = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
	    JSON_REAL_PRECISION(10));

	fputs(e ? e : "?", stdout);
	free(e);
}

/*
 * One line for the values a pickle tree marks with "$" keys (see
 * ckpt_file_metadata_json); the contents of globals and objects follow as
 * children when depth allows.
 */
static void
print_special(const char *tag, json_t *v, int indent, long long depth)
{
	json_t *x = json_object_get(v, tag);

	if (!strcmp(tag, "$tensor")) {
		printf(" (tensor)\n");
	} else if (!strcmp(tag, "$ndarray")) {
		printf(" numpy array ");
		print_scalar(json_object_get(x, "dtype"));
		putchar(' ');
		print_compact(json_object_get(x, "shape"));
		printf(" (%lld bytes)\n", (long long)json_integer_value(
		    json_object_get(x, "nbytes")));
	} else if (!strcmp(tag, "$bytes")) {
		printf(" bytes (%lld)\n", (long long)json_integer_value(x));
	} else if (!strcmp(tag, "$complex")) {
		printf(" complex");
		print_compact(x);
		putchar('\n');
	} else if (!strcmp(tag, "$dtype") || !strcmp(tag, "$npdtype")) {
		printf(" %s", tag[1] == 'n' ? "numpy dtype " : "");
		print_scalar(x);
		putchar('\n');
	} else if (!strcmp(tag, "$npscalar")) {
		printf(" numpy scalar ");
		print_scalar(json_object_get(x, "dtype"));
		putchar('\n');
	} else if (!strcmp(tag, "$sparse")) {
		printf(" (sparse tensor)\n");
	} else if (!strcmp(tag, "$cycle") || !strcmp(tag, "$truncated")) {
		printf(" (%s)\n", tag + 1);
	} else if (!strcmp(tag, "$shared")) {
		printf(" (shared: the same object as shown above)\n");
	} else {
		const char *k;
		json_t *c;

		printf(" <%s %s%s>\n", tag + 1, json_string_value(x) ?
		    json_string_value(x) : "?", tag[1] == 'g' ?
		    ", not allowed" : "");
		if (depth <= 1)
			return;
		json_object_foreach(v, k, c) {
			if (!strcmp(k, tag))
				continue;
			print_entry(k[0] == '$' ? k + 1 : k, c, indent + 2,
			    depth - 1);
		}
	}
}

static void
print_entry(const char *key, json_t *v, int indent, long long depth)
{
	const char *tag = special_tag(v);
	size_t nt = tensor_only(v);

	printf("%*s%s:", indent, "", key);
	if (tag && (strcmp(tag, "$tensor") || nt == 1)) {
		print_special(tag, v, indent, depth);
	} else if (nt) {
		printf(" (%zu tensor%s)\n", nt, nt == 1 ? "" : "s");
	} else if (scalar_array(v)) {
		print_inline_array(v);
	} else if (json_is_object(v) || json_is_array(v)) {
		size_t n = json_is_object(v) ? json_object_size(v) :
		    json_array_size(v);

		if (!n) {
			printf(" %s\n", json_is_object(v) ? "{}" : "[]");
		} else if (depth <= 1) {
			printf(" %s (%zu %s)\n", json_is_object(v) ? "{...}" :
			    "[...]", n, json_is_object(v) ? n == 1 ? "key" :
			    "keys" : n == 1 ? "item" : "items");
		} else {
			putchar('\n');
			print_tree(v, indent + 2, depth - 1);
		}
	} else {
		putchar(' ');
		print_scalar(v);
		putchar('\n');
	}
}

static void
print_tree(json_t *v, int indent, long long depth)
{
	const char *key;
	size_t i;
	json_t *c;

	if (json_is_object(v)) {
		json_object_foreach(v, key, c)
			print_entry(key, c, indent, depth);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c) {
			char k[32];

			if (i == TREE_MAX_ITEMS) {
				printf("%*s... (%zu more items)\n", indent, "",
				    json_array_size(v) - i);
				break;
			}
			snprintf(k, sizeof(k), "%zu", i);
			print_entry(k, c, indent, depth);
		}
	} else {
		printf("%*s", indent, "");
		print_scalar(v);
		putchar('\n');
	}
}

/*
 * The same tree read from the metadata text, not parsed: a state dict of
 * 40,000 tensors was 40,000 jansson objects made to print "name:
 * (tensor)" 40,000 times, a third of inspect's time.  The text has passed
 * json_text_valid, so each string has one spelling: a key is compared
 * as written.
 */
static bool
text_key_is(const char *md, size_t key, const char *want)
{
	size_t n = strlen(want);

	return md[key] == '"' && !strncmp(md + key + 1, want, n) &&
	    md[key + 1 + n] == '"';
}

static bool
text_has_special_key(const char *md, const struct json_text_child *c,
    size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t t = 0; md[c[i].key + 1] == '$' && t <
		    sizeof(special_tags) / sizeof(special_tags[0]); t++)
			if (text_key_is(md, c[i].key, special_tags[t]))
				return true;	/* every tag starts with '$' */
	return false;
}

/* tensor_only() of the value at md[at]; *ref: it is a tensor reference. */
static size_t
text_tensor_only(const char *md, size_t at, bool *ref)
{
	struct json_text_child *c;
	size_t n, nt = 0;

	*ref = false;
	if (md[at] != '{' && md[at] != '[')
		return 0;
	if (md[at] == '{' && text_key_is(md, at + 1, "$tensor") &&
	    md[at + 10] == ':' && md[at + 11] == '"') {
		/* {"$tensor":"name"} as the walk writes it: the text is
		 * valid, so the string ends at the first unescaped quote */
		size_t q = at + 12;

		while (md[q] != '"')
			q += md[q] == '\\' ? 2 : 1;
		if (md[q + 1] == '}') {
			*ref = true;
			return 1;
		}
	}
	n = json_text_children(md, at, &c);
	if (md[at] == '{' && n == 1 && text_key_is(md, c[0].key, "$tensor") &&
	    md[c[0].value] == '"') {
		free(c);
		*ref = true;
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		bool r;
		size_t m = text_tensor_only(md, c[i].value, &r);

		if (!m) {
			nt = 0;
			break;
		}
		nt += m;
	}
	free(c);
	return nt;
}

/*
 * print_tree() of an object's text: members holding only tensors are
 * printed from the text, the others parsed one at a time.  False, with
 * nothing printed, when the text is not an object whose parse prints as a
 * tree of its members (then the caller parses it whole, as before).
 */
static bool
print_metadata_text(const char *md, long long depth)
{
	struct json_text_child *m;
	size_t at = strspn(md, " \t\n\r"), n;

	if (md[at] != '{' || !json_text_valid(md))
		return false;
	n = json_text_children(md, at, &m);
	if (text_has_special_key(md, m, n)) {
		free(m);
		return false;
	}
	if (n)
		printf("\nmetadata:\n");
	for (size_t i = 0; i < n; i++) {
		char *key = json_text_string(md, m[i].key);
		const char *v = md + m[i].value;
		struct json_text_child *c = NULL;
		bool ref;
		size_t nt = text_tensor_only(md, m[i].value, &ref), nc;

		/* a tensor reference (most members of a state dict) needs
		 * no more reading */
		nc = !ref && *v == '{' ? json_text_children(md, m[i].value,
		    &c) : 0;
		if (ref) {
			fputs("  ", stdout);
			fputs(key, stdout);
			fputs(": (tensor)\n", stdout);
		} else if (nt && !text_has_special_key(md, c, nc)) {
			printf("  %s: (%zu tensor%s)\n", key, nt, nt == 1 ?
			    "" : "s");
		} else {
			json_t *j = json_loadb(v, m[i].end - m[i].value,
			    JSON_DECODE_ANY, NULL);

			if (!j)
				die("cannot parse metadata of '%s'", key);
			print_entry(key, j, 2, depth);
			json_decref(j);
		}
		free(c);
		free(key);
	}
	free(m);
	return true;
}

/* ---------------------------------------------------------------- */
/* Human output                                                      */
/* ---------------------------------------------------------------- */

struct dtype_total {
	uint64_t tensors, params, bytes;
};

/*
 * What a tensor of a training checkpoint is for: model weights, optimizer
 * state (Adam's two moments are twice the model again), or the rest
 * (scheduler, scaler, RNG state).  Told by the file name (a Trainer's
 * optimizer.pt, scheduler.pt, rng_state.pth) and by the first name
 * component inside a single-file training checkpoint ("optimizer.state.
 * 0.exp_avg" beside "model.fc.weight").
 */
enum role { ROLE_MODEL, ROLE_OPTIMIZER, ROLE_OTHER, ROLE_COUNT };

static const char *const role_names[ROLE_COUNT] = { "model", "optimizer",
	"other" };

/* The role of every tensor of a file by its name (optimizer.pt), or
 * ROLE_MODEL: then each tensor's own name decides (tensor_role). */
static enum role
file_role(const char *file)
{
	const char *base = file ? strrchr(file, '/') : NULL;

	base = base ? base + 1 : file ? file : "";
	if (strstr(base, "optim"))
		return ROLE_OPTIMIZER;
	if (strstr(base, "scheduler") || strstr(base, "rng_state") ||
	    strstr(base, "scaler"))
		return ROLE_OTHER;
	return ROLE_MODEL;
}

/* The role of tensor name in a file of role fr (file_role). */
static enum role
tensor_role(enum role fr, const char *name)
{
	static const char *const other[] = { "scheduler", "lr_scheduler",
		"scaler", "rng", "rng_state", "grad_scaler" };
	size_t n = name ? strcspn(name, ".") : 0;

	if (fr != ROLE_MODEL)
		return fr;
	if (n && name[n] == '.') {
		if (n >= 5 && memmem(name, n, "optim", 5))
			return ROLE_OPTIMIZER;
		for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
			if (strlen(other[i]) == n &&
			    !strncmp(name, other[i], n))
				return ROLE_OTHER;
	}
	return ROLE_MODEL;
}

struct totals {
	uint64_t tensors, params, bytes;
	struct dtype_total by[CKPT_DTYPE_COUNT];
	struct dtype_total role[ROLE_COUNT];
};

static void
count_tensor(struct totals *tot, enum role r, const struct ckpt_tensor *t)
{
	tot->role[r].tensors++;
	tot->role[r].params += t->numel;
	tot->role[r].bytes += t->nbytes;
	tot->tensors++;
	tot->params += t->numel;
	tot->bytes += t->nbytes;
	if ((unsigned)t->dtype < CKPT_DTYPE_COUNT) {
		tot->by[t->dtype].tensors++;
		tot->by[t->dtype].params += t->numel;
		tot->by[t->dtype].bytes += t->nbytes;
	}
}

static const char *
sev_name(enum ckpt_severity s)
{
	return s == CKPT_SEV_ERROR ? "error" : s == CKPT_SEV_WARNING ?
	    "warning" : "info";
}

static void
print_finding(const struct ctx *ctx, const struct ckpt_finding *fd)
{
	enum color col = fd->severity == CKPT_SEV_ERROR ? COLOR_RED :
	    fd->severity == CKPT_SEV_WARNING ? COLOR_YELLOW : COLOR_NONE;

	fputs("  ", stdout);
	fputs_color(ctx, col, sev_name(fd->severity), stdout);
	printf(" %s: %s", fd->id, fd->message);
	if (fd->offset >= 0)
		printf(" (at byte %lld)", (long long)fd->offset);
	putchar('\n');
}

/* Measures (print false) or prints the row of one tensor. */
static void
tensor_row(struct table *tab, const struct ckpt_tensor *t,
    const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres, bool print)
{
	const char *cells[13] = { NULL };
	char params[32], bytes[32], s[8][32];
	char *shape = shape_str(t);

	cells[0] = t->name;
	cells[1] = ckpt_dtype_name(t->dtype);
	cells[2] = shape;
	cells[3] = human_count(t->numel, params, sizeof(params));
	cells[4] = human_size(t->nbytes, bytes, sizeof(bytes));
	if (o->stats) {
		const struct tensor_result *r = find_result(res, nres, t);

		if (r && r->done) {
			cells[5] = num_str(r->st.min, s[0], 32);
			cells[6] = num_str(r->st.max, s[1], 32);
			cells[7] = num_str(r->st.mean, s[2], 32);
			cells[8] = num_str(r->st.std, s[3], 32);
			snprintf(s[4], 32, "%llu",
			    (unsigned long long)r->st.nan);
			snprintf(s[5], 32, "%llu",
			    (unsigned long long)r->st.pos_inf);
			snprintf(s[6], 32, "%llu",
			    (unsigned long long)r->st.neg_inf);
			snprintf(s[7], 32, "%llu",
			    (unsigned long long)r->st.zeros);
			for (int k = 4; k < 8; k++)
				cells[5 + k] = s[k];
		} else {
			cells[5] = r ? "(unreadable)" : "(no data)";
			for (int k = 6; k < 13; k++)
				cells[k] = "-";
		}
	}
	if (print)
		table_print_row(tab, stdout, cells);
	else
		table_measure(tab, cells);
	free(shape);
}

/*
 * The table of selected tensors, measured in one pass and printed in a
 * second: 40,000 rows kept as strings cost more memory than the whole
 * reading of the file.
 */
static void
print_tensor_table(const struct ctx *ctx, const struct ckpt_file *f,
    const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres)
{
	static const char *heads[] = { "name", "dtype", "shape", "parameters",
		"bytes", "min", "max", "mean", "std", "nan", "+inf", "-inf",
		"zeros" };
	static const enum col_align align[] = { COL_LEFT, COL_LEFT, COL_LEFT,
		COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT,
		COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT, COL_RIGHT };
	size_t ncols = o->stats ? 13 : 5, rows = 0;
	struct table tab;

	table_init(&tab, ncols, heads, align);
	for (size_t i = 0; i < ckpt_file_tensor_count(f); i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);

		if (selected(o, t)) {
			tensor_row(&tab, t, o, res, nres, false);
			rows++;
		}
	}
	if (rows)
		table_print_header(&tab, stdout, ctx);
	for (size_t i = 0; rows && i < ckpt_file_tensor_count(f); i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);

		if (selected(o, t))
			tensor_row(&tab, t, o, res, nres, true);
	}
	table_release(&tab);
}

static void
print_dtype_totals(const struct ctx *ctx, const struct totals *tot)
{
	static const char *heads[] = { "dtype", "tensors", "parameters",
		"bytes" };
	static const enum col_align align[] = { COL_LEFT, COL_RIGHT,
		COL_RIGHT, COL_RIGHT };
	struct table tab;

	table_init(&tab, 4, heads, align);
	for (int d = 0; d < CKPT_DTYPE_COUNT; d++) {
		char a[32], b[32], c[32];

		if (!tot->by[d].tensors)
			continue;
		snprintf(a, sizeof(a), "%llu",
		    (unsigned long long)tot->by[d].tensors);
		table_add(&tab, ckpt_dtype_name(d), a,
		    human_count(tot->by[d].params, b, sizeof(b)),
		    human_size(tot->by[d].bytes, c, sizeof(c)));
	}
	if (tab.nrows)
		table_print(&tab, stdout, ctx);
	table_release(&tab);
}

static void
print_total_line(const char *label, const struct totals *tot)
{
	char p[32], b[32];

	printf("%s: %llu tensor%s, %s parameter%s, %s", label,
	    (unsigned long long)tot->tensors, tot->tensors == 1 ? "" : "s",
	    human_count(tot->params, p, sizeof(p)), tot->params == 1 ? "" :
	    "s", human_size(tot->bytes, b, sizeof(b)));
	/* A training checkpoint: say how much of it is the model. */
	if (tot->role[ROLE_MODEL].params != tot->params) {
		const char *sep = " (";

		for (int r = 0; r < ROLE_COUNT; r++) {
			if (!tot->role[r].params)
				continue;
			printf("%s%s %s", sep, human_count(tot->role[r].params,
			    p, sizeof(p)), r == ROLE_MODEL ? "model" :
			    r == ROLE_OPTIMIZER ? "optimizer state" : "other");
			sep = ", ";
		}
		putchar(')');
	}
	putchar('\n');
}

static void print_dcp_chunks(const struct ctx *ctx, json_t *doc,
    const struct inspect_opts *o);

static void
print_file(const struct ctx *ctx, const struct ckpt_checkpoint *c,
    size_t i, const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres, struct totals *all)
{
	const struct ckpt_file *f = ckpt_checkpoint_file(c, i);
	struct totals tot = { 0 };
	const char *md;
	char sz[32];
	enum role fr;
	bool any;

	if (!f)
		return;
	fr = file_role(ckpt_checkpoint_file_name(c, i));
	for (size_t j = 0; j < ckpt_file_tensor_count(f); j++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, j);

		if (selected(o, t)) {
			enum role r = tensor_role(fr, t->name);

			count_tensor(&tot, r, t);
			count_tensor(all, r, t);
		}
	}
	printf("file:    %s\n", ckpt_checkpoint_file_name(c, i));
	printf("format:  %s\n", ckpt_format_name(ckpt_file_format(f)));
	printf("size:    %s", human_size(ckpt_file_size(f), sz, sizeof(sz)));
	if (ckpt_file_size(f) >= 1024)
		printf(" (%llu bytes)", (unsigned long long)ckpt_file_size(f));
	putchar('\n');

	md = ckpt_file_metadata_json(f);
	if (md && ckpt_file_format(f) == CKPT_FORMAT_DCP_METADATA) {
		json_t *doc = json_loads(md, 0, NULL);

		if (doc)
			print_dcp_chunks(ctx, doc, o);
		json_decref(doc);
	} else if (md && !print_metadata_text(md, o->depth)) {
		json_t *doc = json_loads(md, JSON_DECODE_ANY, NULL);

		if (doc && (!json_is_object(doc) || json_object_size(doc))) {
			printf("\nmetadata:\n");
			/* a pickle whose top-level object is a tensor, a
			 * global, ...: one entry for the whole */
			if (special_tag(doc))
				print_entry("(top level)", doc, 2, o->depth);
			else
				print_tree(doc, 2, o->depth);
		}
		json_decref(doc);
	}
	any = false;
	for (size_t g = 0; g < ckpt_file_global_count(f); g++) {
		bool allowed;
		const char *name = ckpt_file_global(f, g, &allowed);

		if (!any)
			printf("\nglobals:\n");
		any = true;
		printf("  %s  ", name);
		fputs_color(ctx, allowed ? COLOR_GREEN : COLOR_RED, allowed ?
		    "allowed" : "NOT ALLOWED", stdout);
		putchar('\n');
	}
	if (tot.tensors) {
		if (!o->no_tensors) {
			putchar('\n');
			print_tensor_table(ctx, f, o, res, nres);
		}
		putchar('\n');
		print_dtype_totals(ctx, &tot);
		putchar('\n');
		print_total_line("total", &tot);
	} else if (ckpt_file_tensor_count(f) && o->filters.n) {
		printf("\nno tensor matches the filter\n");
	}
	if (ckpt_file_finding_count(f)) {
		printf("\nfindings:\n");
		for (size_t k = 0; k < ckpt_file_finding_count(f); k++)
			print_finding(ctx, ckpt_file_finding(f, k));
	}
}

static char *
compact(json_t *v)
{
	char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

	return s ? s : xstrdup("");
}

/*
 * A DCP .metadata as a table: each tensor chunk or byte item with where
 * its bytes are stored (file, offset, length).
 */
static void
print_dcp_chunks(const struct ctx *ctx, json_t *doc,
    const struct inspect_opts *o)
{
	static const char *heads[] = { "item", "offsets", "sizes", "file",
		"offset", "length" };
	static const enum col_align align[] = { COL_LEFT, COL_LEFT, COL_LEFT,
		COL_LEFT, COL_RIGHT, COL_RIGHT };
	json_t *sdm = json_object_get(doc, "state_dict_metadata");
	json_t *sd = json_object_get(doc, "storage_data");
	const char *fqn;
	struct table tab;
	json_t *e;

	table_init(&tab, 6, heads, align);
	json_object_foreach(sdm, fqn, e) {
		struct ckpt_tensor fake = { .name = fqn };
		json_t *chunks = json_object_get(e, "chunks"), *c;
		size_t i;

		if (!selected(o, &fake))
			continue;
		if (!json_is_array(chunks)) {
			char *key = xasprintf("%s|", fqn);
			json_t *si = json_object_get(sd, key);
			char *off = compact(json_object_get(si, "offset"));
			char *len = compact(json_object_get(si, "length"));

			table_add(&tab, fqn, "(bytes)", "", si ?
			    json_string_value(json_object_get(si,
			    "relative_path")) : "(none)", off, len);
			free(off);
			free(len);
			free(key);
			continue;
		}
		json_array_foreach(chunks, i, c) {
			char *offs = compact(json_object_get(c, "offsets"));
			char *sizes = compact(json_object_get(c, "sizes"));
			char *key, *off, *len;
			json_t *si;

			key = xasprintf("%s|%.*s", fqn, (int)(strlen(offs) > 2 ?
			    strlen(offs) - 2 : 0), offs + 1);
			si = json_object_get(sd, key);
			off = compact(json_object_get(si, "offset"));
			len = compact(json_object_get(si, "length"));
			table_add(&tab, fqn, offs, sizes, si ?
			    json_string_value(json_object_get(si,
			    "relative_path")) : "(none)", off, len);
			free(offs);
			free(sizes);
			free(key);
			free(off);
			free(len);
		}
	}
	if (tab.nrows) {
		printf("\nchunks:\n");
		table_print(&tab, stdout, ctx);
	}
	table_release(&tab);
}

static uint64_t
checkpoint_size(const struct ckpt_checkpoint *c)
{
	uint64_t n = 0;

	for (size_t i = 0; i < ckpt_checkpoint_file_count(c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(c, i);

		if (f)
			n += ckpt_file_size(f);
	}
	return n;
}


/*
 * A committed checkpoint's manifest as the short "checkpoint" block: what
 * a person asks first (which run and step, when, how good, validated,
 * signed), not its 150-line metadata tree (--manifest shows that).
 * NULL when dir holds no readable manifest.
 */
static json_t *
checkpoint_block(const struct ckpt_checkpoint *c)
{
	struct ckpt_manifest *m;
	json_t *doc, *b, *v;
	char *sig;
	struct stat st;

	if (!ckpt_checkpoint_is_directory(c) || ckpt_manifest_read(
	    ckpt_checkpoint_path(c), &m, NULL))
		return NULL;
	doc = json_loads(ckpt_manifest_json(m), 0, NULL);
	b = json_object();
	json_object_set_new(b, "run", json_string(ckpt_manifest_run(m)));
	json_object_set_new(b, "step", json_integer(ckpt_manifest_step(m)));
	v = json_object_get(doc, "created");
	json_object_set(b, "created", v ? v : json_null());
	v = json_object_get(doc, "metrics");
	json_object_set(b, "metrics", v ? v : json_object());
	v = json_object_get(json_object_get(doc, "validation"), "result");
	json_object_set(b, "validation", v ? v : json_null());
	json_object_set_new(b, "manifest", json_string(ckpt_manifest_digest(
	    m)));
	sig = xasprintf("%s/%s.sig", ckpt_checkpoint_path(c),
	    CKPT_MANIFEST_NAME);
	json_object_set_new(b, "signed", json_boolean(!stat(sig, &st)));
	free(sig);
	json_decref(doc);
	ckpt_manifest_free(m);
	return b;
}

static void
print_checkpoint_block(json_t *b)
{
	const char *k;
	json_t *v;
	bool first = true;

	printf("checkpoint:\n");
	printf("  run:        %s\n", json_string_value(json_object_get(b,
	    "run")));
	printf("  step:       %lld\n", (long long)json_integer_value(
	    json_object_get(b, "step")));
	if (json_string_value(json_object_get(b, "created")))
		printf("  created:    %s\n", json_string_value(
		    json_object_get(b, "created")));
	printf("  metrics:   ");
	json_object_foreach(json_object_get(b, "metrics"), k, v) {
		if (json_is_number(v))
			printf(" %s=%.6g", k, json_number_value(v));
		else
			printf(" %s=-", k);
		first = false;
	}
	printf("%s\n", first ? " (none)" : "");
	printf("  validation: %s\n", json_string_value(json_object_get(b,
	    "validation")) ? json_string_value(json_object_get(b,
	    "validation")) : "(not recorded)");
	printf("  signature:  %s\n", json_is_true(json_object_get(b,
	    "signed")) ? CKPT_MANIFEST_NAME ".sig ('ckpt verify' checks it)" :
	    "none");
	printf("  manifest:   %s (--manifest shows it whole)\n",
	    json_string_value(json_object_get(b, "manifest")));
}

static void
print_human(const struct ctx *ctx, const struct ckpt_checkpoint *c,
    const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres)
{
	json_t *block = checkpoint_block(c);
	size_t nfiles = ckpt_checkpoint_file_count(c);
	struct totals all = { 0 };
	char sz[32];

	if (!ckpt_checkpoint_is_directory(c)) {
		print_file(ctx, c, 0, o, res, nres, &all);
		return;
	}
	printf("path:    %s\n", ckpt_checkpoint_path(c));
	printf("kind:    %s\n", ckpt_checkpoint_kind(c));
	printf("files:   %zu, %s\n", nfiles, human_size(checkpoint_size(c), sz,
	    sizeof(sz)));
	if (block) {
		printf("\n");
		print_checkpoint_block(block);
		json_decref(block);
	}
	for (size_t i = 0; i < nfiles; i++) {
		const struct ckpt_error *e = ckpt_checkpoint_file_error(c, i);

		printf("\n");
		if (block && !o->manifest && (!strcmp(
		    ckpt_checkpoint_file_name(c, i), CKPT_MANIFEST_NAME) ||
		    !strcmp(ckpt_checkpoint_file_name(c, i),
		    CKPT_SUMMARY_NAME))) {
			printf("file:    %s (ckpt's record: see checkpoint "
			    "above; --manifest shows it)\n",
			    ckpt_checkpoint_file_name(c, i));
			continue;
		}
		if (e) {
			/* also on stderr, where scripts look */
			printf("file:    %s\n",
			    ckpt_checkpoint_file_name(c, i));
			printf("error:   %s", e->message);
			if (e->offset >= 0 && e->code == CKPT_ERR_FORMAT)
				printf(" (at byte %lld)", (long long)e->offset);
			putchar('\n');
			continue;
		}
		print_file(ctx, c, i, o, res, nres, &all);
	}
	if (all.tensors) {
		printf("\n");
		print_total_line("checkpoint total", &all);
	}
	if (ckpt_checkpoint_finding_count(c)) {
		printf("\ncheckpoint findings:\n");
		for (size_t k = 0; k < ckpt_checkpoint_finding_count(c); k++)
			print_finding(ctx, ckpt_checkpoint_finding(c, k));
	}
}

/* ---------------------------------------------------------------- */
/* JSON output                                                       */
/* ---------------------------------------------------------------- */

static json_t *
json_u64(uint64_t v)
{
	/* jansson integers are signed 64-bit; sizes never reach 2^63. */
	return json_integer((json_int_t)v);
}

static json_t *
json_num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *
json_stats(const struct ckpt_tensor_stats *st)
{
	json_t *j = json_object();

	json_object_set_new(j, "count", json_u64(st->count));
	json_object_set_new(j, "finite", json_u64(st->finite));
	json_object_set_new(j, "nan", json_u64(st->nan));
	json_object_set_new(j, "pos_inf", json_u64(st->pos_inf));
	json_object_set_new(j, "neg_inf", json_u64(st->neg_inf));
	json_object_set_new(j, "zeros", json_u64(st->zeros));
	json_object_set_new(j, "min", json_num(st->min));
	json_object_set_new(j, "max", json_num(st->max));
	json_object_set_new(j, "mean", json_num(st->mean));
	json_object_set_new(j, "std", json_num(st->std));
	return j;
}

static json_t *
json_finding(const struct ckpt_finding *fd)
{
	json_t *j = json_object();

	json_object_set_new(j, "id", json_string(fd->id));
	json_object_set_new(j, "severity",
	    json_string(sev_name(fd->severity)));
	json_object_set_new(j, "message", json_string(fd->message));
	json_object_set_new(j, "offset", fd->offset >= 0 ?
	    json_integer(fd->offset) : json_null());
	json_object_set_new(j, "subject", fd->subject ?
	    json_string(fd->subject) : json_null());
	if (fd->path)
		json_object_set_new(j, "path", json_string(fd->path));
	return j;
}

static json_t *
json_totals(const struct totals *tot)
{
	json_t *j = json_object(), *by = json_object();

	json_object_set_new(j, "tensors", json_u64(tot->tensors));
	json_object_set_new(j, "parameters", json_u64(tot->params));
	json_object_set_new(j, "bytes", json_u64(tot->bytes));
	for (int d = 0; d < CKPT_DTYPE_COUNT; d++) {
		json_t *e;

		if (!tot->by[d].tensors)
			continue;
		e = json_object();
		json_object_set_new(e, "tensors", json_u64(tot->by[d].tensors));
		json_object_set_new(e, "parameters",
		    json_u64(tot->by[d].params));
		json_object_set_new(e, "bytes", json_u64(tot->by[d].bytes));
		json_object_set_new(by, ckpt_dtype_name(d), e);
	}
	json_object_set_new(j, "by_dtype", by);
	by = json_object();
	for (int r = 0; r < ROLE_COUNT; r++) {
		json_t *e = json_object();

		json_object_set_new(e, "tensors",
		    json_u64(tot->role[r].tensors));
		json_object_set_new(e, "parameters",
		    json_u64(tot->role[r].params));
		json_object_set_new(e, "bytes", json_u64(tot->role[r].bytes));
		json_object_set_new(by, role_names[r], e);
	}
	json_object_set_new(j, "by_role", by);
	json_object_set_new(j, "model_parameters",
	    json_u64(tot->role[ROLE_MODEL].params));
	return j;
}

static json_t *
json_tensor(const struct ckpt_tensor *t, const struct inspect_opts *o,
    const struct tensor_result *res, size_t nres)
{
	json_t *j = json_object(), *shape = json_array();

	json_object_set_new(j, "name", json_string(t->name ? t->name : ""));
	json_object_set_new(j, "dtype", json_string(ckpt_dtype_name(t->dtype)));
	for (unsigned d = 0; d < t->ndim; d++)
		json_array_append_new(shape, json_u64(t->shape[d]));
	json_object_set_new(j, "shape", shape);
	json_object_set_new(j, "parameters", json_u64(t->numel));
	json_object_set_new(j, "nbytes", json_u64(t->nbytes));
	json_object_set_new(j, "offset", json_u64(t->offset));
	if (t->strides) {
		json_t *s = json_array();

		for (unsigned d = 0; d < t->ndim; d++)
			json_array_append_new(s, json_integer(t->strides[d]));
		json_object_set_new(j, "strides", s);
		json_object_set_new(j, "contiguous",
		    json_boolean(t->contiguous));
	}
	if (t->storage) {
		json_object_set_new(j, "storage", json_string(t->storage));
		json_object_set_new(j, "storage_offset",
		    json_u64(t->storage_offset));
	}
	if (t->kind)
		json_object_set_new(j, "kind", json_string(t->kind));
	if (t->big_endian)
		json_object_set_new(j, "big_endian", json_true());
	if (o->stats) {
		const struct tensor_result *r = find_result(res, nres, t);

		if (r && r->done)
			json_object_set_new(j, "stats", json_stats(&r->st));
	}
	return j;
}

/* s is NULL or ASCII: jansson takes it as it is (no UTF-8 to check). */
static bool
ascii_or_null(const char *s)
{
	if (s)
		for (; *s; s++)
			if ((unsigned char)*s >= 0x80)
				return false;
	return true;
}

/* A member holding an array of n integers. */
static void
stream_int_array(struct json_stream *j, const char *key,
    const int64_t *v, const uint64_t *u, unsigned n)
{
	struct json_stream a;

	json_stream_key(j, key);
	json_stream_begin(&a, j->depth + 1, true);
	for (unsigned d = 0; d < n; d++)
		json_stream_int(&a, NULL, v ? (json_int_t)v[d] :
		    (json_int_t)u[d]);
	json_stream_end(&a);
}

/* A statistic as json_num gives it: null unless finite. */
static void
stream_num(struct json_stream *j, const char *key, double v)
{
	json_stream_real(j, key, isfinite(v) ? v : NAN);
}

static void
stream_stats(struct json_stream *j, const struct ckpt_tensor_stats *st)
{
	struct json_stream o;

	json_stream_key(j, "stats");
	json_stream_begin(&o, j->depth + 1, false);
	json_stream_int(&o, "count", (json_int_t)st->count);
	json_stream_int(&o, "finite", (json_int_t)st->finite);
	stream_num(&o, "max", st->max);
	stream_num(&o, "mean", st->mean);
	stream_num(&o, "min", st->min);
	json_stream_int(&o, "nan", (json_int_t)st->nan);
	json_stream_int(&o, "neg_inf", (json_int_t)st->neg_inf);
	json_stream_int(&o, "pos_inf", (json_int_t)st->pos_inf);
	stream_num(&o, "std", st->std);
	json_stream_int(&o, "zeros", (json_int_t)st->zeros);
	json_stream_end(&o);
}

/*
 * One tensor of a file's "tensors" array, written as json_stream_put
 * prints json_tensor's object (keys in sorted order) without building
 * it: 40,000 jansson objects took as long as the rest of inspect.  A
 * name that is not ASCII goes through jansson after all, which drops a
 * string that is not UTF-8; the output is the same either way.
 */
static void
stream_tensor(struct json_stream *arr, const struct ckpt_tensor *t,
    const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres)
{
	const struct tensor_result *r = o->stats ? find_result(res, nres, t) :
	    NULL;
	const char *dtype = ckpt_dtype_name(t->dtype);
	struct json_stream j;

	if (!dtype || !ascii_or_null(t->name) || !ascii_or_null(t->kind) ||
	    !ascii_or_null(t->storage)) {
		json_stream_put(arr, NULL, json_tensor(t, o, res, nres));
		return;
	}
	json_stream_item(arr);
	json_stream_begin(&j, arr->depth + 1, false);
	if (t->big_endian)
		json_stream_bool(&j, "big_endian", true);
	if (t->strides)
		json_stream_bool(&j, "contiguous", t->contiguous);
	json_stream_string(&j, "dtype", dtype);
	if (t->kind)
		json_stream_string(&j, "kind", t->kind);
	json_stream_string(&j, "name", t->name ? t->name : "");
	json_stream_int(&j, "nbytes", (json_int_t)t->nbytes);
	json_stream_int(&j, "offset", (json_int_t)t->offset);
	json_stream_int(&j, "parameters", (json_int_t)t->numel);
	stream_int_array(&j, "shape", NULL, t->shape, t->ndim);
	if (r && r->done)
		stream_stats(&j, &r->st);
	if (t->storage) {
		json_stream_string(&j, "storage", t->storage);
		json_stream_int(&j, "storage_offset",
		    (json_int_t)t->storage_offset);
	}
	if (t->strides)
		stream_int_array(&j, "strides", t->strides, NULL, t->ndim);
	json_stream_end(&j);
}

/* A file's metadata tree: printed from its text, not parsed (a state
 * dict of 40,000 tensors makes a tree of 40,000 objects); jansson only
 * for a text json_print_text leaves to it. */
static void
print_metadata(const char *md, int depth)
{
	json_t *v;

	if (md && json_print_text(md, depth))
		return;
	v = md ? json_loads(md, JSON_DECODE_ANY, NULL) : NULL;
	json_print_value(v ? v : json_null(), depth);
	json_decref(v);
}

/* One file's object, a tensor at a time; its totals added to *all. */
static void
print_file_json(const struct ckpt_checkpoint *c, size_t i,
    const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres, struct totals *all, int depth)
{
	const struct ckpt_file *f = ckpt_checkpoint_file(c, i);
	const char *name = ckpt_checkpoint_file_name(c, i);
	enum role fr = file_role(name), r;
	struct json_stream jf, arr;
	struct totals tot = { 0 };

	json_stream_begin(&jf, depth, false);
	json_stream_key(&jf, "findings");
	json_stream_begin(&arr, depth + 1, true);
	for (size_t k = 0; k < ckpt_file_finding_count(f); k++)
		json_stream_put(&arr, NULL,
		    json_finding(ckpt_file_finding(f, k)));
	json_stream_end(&arr);
	json_stream_put(&jf, "format",
	    json_string(ckpt_format_name(ckpt_file_format(f))));
	json_stream_key(&jf, "globals");
	json_stream_begin(&arr, depth + 1, true);
	for (size_t g = 0; g < ckpt_file_global_count(f); g++) {
		bool allowed;
		const char *gname = ckpt_file_global(f, g, &allowed);
		json_t *e = json_object();

		json_object_set_new(e, "name", json_string(gname));
		json_object_set_new(e, "allowed", json_boolean(allowed));
		json_stream_put(&arr, NULL, e);
	}
	json_stream_end(&arr);
	json_stream_key(&jf, "metadata");
	print_metadata(ckpt_file_metadata_json(f), depth + 1);
	json_stream_put(&jf, "path", json_string(name));
	json_stream_put(&jf, "size", json_u64(ckpt_file_size(f)));
	json_stream_key(&jf, "tensors");
	json_stream_begin(&arr, depth + 1, true);
	for (size_t k = 0; k < ckpt_file_tensor_count(f); k++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, k);

		if (!selected(o, t))
			continue;
		r = tensor_role(fr, t->name);
		count_tensor(&tot, r, t);
		count_tensor(all, r, t);
		if (!o->no_tensors)
			stream_tensor(&arr, t, o, res, nres);
	}
	json_stream_end(&arr);
	json_stream_put(&jf, "totals", json_totals(&tot));
	json_stream_end(&jf);
}

/*
 * A checkpoint's --json object, written as it goes (keys in sorted order,
 * json_doc_print's layout): the tensor table and the metadata tree are
 * never held as a jansson document.  schema: the object is the document
 * itself (one argument).
 */
static void
print_checkpoint_json(const struct ckpt_checkpoint *c,
    const struct inspect_opts *o, const struct tensor_result *res,
    size_t nres, const char *ref, int exit_status, bool schema, int depth)
{
	struct json_stream j, arr;
	struct totals all = { 0 };
	size_t nfiles = ckpt_checkpoint_file_count(c);
	json_t *b = checkpoint_block(c);

	json_stream_begin(&j, depth, false);
	if (b)
		json_stream_put(&j, "checkpoint", b);
	json_stream_put(&j, "exit_status", json_integer(exit_status));
	json_stream_key(&j, "files");
	json_stream_begin(&arr, depth + 1, true);
	for (size_t i = 0; i < nfiles; i++) {
		if (!ckpt_checkpoint_file(c, i))
			continue;
		json_stream_item(&arr);
		print_file_json(c, i, o, res, nres, &all, depth + 2);
	}
	json_stream_end(&arr);
	json_stream_key(&j, "findings");
	json_stream_begin(&arr, depth + 1, true);
	for (size_t k = 0; k < ckpt_checkpoint_finding_count(c); k++)
		json_stream_put(&arr, NULL,
		    json_finding(ckpt_checkpoint_finding(c, k)));
	json_stream_end(&arr);
	json_stream_put(&j, "format", json_string(
	    !ckpt_checkpoint_is_directory(c) && ckpt_checkpoint_file(c, 0) ?
	    ckpt_format_name(ckpt_file_format(ckpt_checkpoint_file(c, 0))) :
	    ckpt_checkpoint_kind(c)));
	json_stream_put(&j, "kind", json_string(ckpt_checkpoint_kind(c)));
	json_stream_put(&j, "path", json_string(ckpt_checkpoint_path(c)));
	if (ref)
		json_stream_put(&j, "ref", json_string(ref));
	if (schema)
		json_stream_put(&j, "schema", json_integer(1));
	json_stream_put(&j, "size", json_u64(checkpoint_size(c)));
	json_stream_put(&j, "totals", json_totals(&all));
	json_stream_end(&j);
}

/* ---------------------------------------------------------------- */
/* Errors                                                            */
/* ---------------------------------------------------------------- */

static bool
weights_name(const char *name)
{
	static const char *const exts[] = { ".safetensors", ".bin", ".pt",
		".pth", ".ckpt", ".distcp" };
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t m = strlen(exts[i]);

		if (n > m && !strcmp(name + n - m, exts[i]))
			return true;
	}
	return false;
}

/*
 * Reports the files that cannot be read: those the readers refused, and
 * unrecognised ones where weights were expected (the argument itself, or a
 * weights file name inside a directory).  Returns the worst exit status:
 * 1 for a file that was read but is broken or not what it claims to be (a
 * truncated file, a Git LFS pointer, an HTML page, an empty file), 3 for
 * one that could not be read at all.
 */
static int
report_unreadable(const struct ckpt_checkpoint *c, bool single)
{
	int status = CKPT_EXIT_OK;

	for (size_t i = 0; i < ckpt_checkpoint_file_count(c); i++) {
		const struct ckpt_error *e = ckpt_checkpoint_file_error(c, i);
		const struct ckpt_file *f = ckpt_checkpoint_file(c, i);

		if (e) {
			error_ckpt(e);
			status = worse_exit(status,
			    exit_code_for_input(e->code));
		} else if (f && ckpt_file_format(f) == CKPT_FORMAT_UNKNOWN &&
		    (single || weights_name(ckpt_checkpoint_file_name(c, i)))) {
			const struct ckpt_finding *fd = NULL;

			for (size_t k = 0; k < ckpt_file_finding_count(f); k++)
				if (!strcmp(ckpt_file_finding(f, k)->id,
				    "unrecognised-format"))
					fd = ckpt_file_finding(f, k);
			error("%s: %s", ckpt_file_path(f), fd ? fd->message :
			    "unrecognised format");
			status = worse_exit(status, CKPT_EXIT_FINDING);
		}
	}
	return status;
}

/* 1 when any finding is an error (an unsafe pickle global, a bad CRC, a
 * weight_map naming a missing shard), else 0. */
static int
findings_status(const struct ckpt_checkpoint *c)
{
	for (size_t k = 0; k < ckpt_checkpoint_finding_count(c); k++)
		if (ckpt_checkpoint_finding(c, k)->severity >= CKPT_SEV_ERROR)
			return CKPT_EXIT_FINDING;
	for (size_t i = 0; i < ckpt_checkpoint_file_count(c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(c, i);

		for (size_t k = 0; f && k < ckpt_file_finding_count(f); k++)
			if (ckpt_file_finding(f, k)->severity >=
			    CKPT_SEV_ERROR)
				return CKPT_EXIT_FINDING;
	}
	return CKPT_EXIT_OK;
}

/*
 * Opens path as verify would judge it: the pickle globals admitted are
 * --allow-global's and those of verify.allow_globals in the ckpt.yaml of
 * the checkpoint's own store (the store a reference was resolved in, else
 * the store enclosing the path, never $CKPT_STORE's for a path outside
 * it).  A ckpt.yaml that does not load admits nothing more; a warning
 * says so.
 */
static int
open_checkpoint(const char *path, const char *store_root,
    const struct strlist *own, struct ckpt_checkpoint **c,
    struct ckpt_error *err)
{
	struct ckpt_open_options oo = CKPT_OPEN_OPTIONS_INIT;
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_store *owner = NULL;
	const char *const *extra = NULL;
	const char **all;
	size_t nextra = 0, n = 0;
	int rc;

	if (!store_root && !ckpt_store_find(path, &owner, NULL))
		store_root = ckpt_store_root(owner);
	if (store_root) {
		char *yaml = xasprintf("%s/ckpt.yaml", store_root);
		struct ckpt_error e;

		ckpt_error_clear(&e);
		if (ckpt_policy_config_load(yaml, &cfg, &e))
			warning("%s: %s; its verify.allow_globals are not "
			    "applied", yaml, e.message);
		else
			extra = ckpt_policy_config_allow_globals(cfg, &nextra);
		free(yaml);
	}
	all = xcalloc(own->n + nextra + 1, sizeof(*all));
	for (size_t i = 0; i < own->n; i++)
		all[n++] = own->items[i];
	for (size_t i = 0; i < nextra; i++)
		all[n++] = extra[i];
	oo.allow_globals = all;
	oo.nallow_globals = n;
	rc = ckpt_checkpoint_open_location(path, &oo, c, err);
	free(all);
	if (cfg)
		ckpt_policy_config_free(cfg);
	ckpt_store_free(owner);
	return rc;
}

/* How many tensors of c --filter selects. */
static size_t
count_selected(const struct ckpt_checkpoint *c, const struct inspect_opts *o)
{
	size_t n = 0;

	for (size_t i = 0; i < ckpt_checkpoint_file_count(c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(c, i);

		for (size_t k = 0; f && k < ckpt_file_tensor_count(f); k++)
			n += selected(o, ckpt_file_tensor(f, k));
	}
	return n;
}

/* The --json entry of an argument that could not be opened or resolved. */
static json_t *
json_unopened(const char *arg, const struct ckpt_error *e, int status)
{
	json_t *j = json_object(), *err = json_object();

	json_object_set_new(j, "path", json_string(arg));
	json_object_set_new(err, "message", json_string(e && e->message[0] ?
	    e->message : e ? ckpt_strerror(e->code) :
	    "no such checkpoint or reference"));
	json_object_set_new(err, "offset", e && e->offset >= 0 ?
	    json_integer(e->offset) : json_null());
	json_object_set_new(j, "error", err);
	json_object_set_new(j, "exit_status", json_integer(status));
	return j;
}

/* ---------------------------------------------------------------- */

static int
cmd_inspect_main(int argc, char **argv, struct ctx *ctx)
{
	struct inspect_opts o = { .depth = 4 };
	const struct opt opts[] = {
		OPT_STRING_LIST(0, "filter", &o.filters, "<glob>",
		    "only tensors whose name matches <glob> (repeatable)"),
		OPT_BOOL(0, "no-tensors", &o.no_tensors,
		    "omit the tensor table, keep totals"),
		OPT_INT(0, "depth", &o.depth, "<n>",
		    "show metadata trees <n> levels deep (default 4)"),
		OPT_BOOL(0, "stats", &o.stats,
		    "read the data: min, max, mean, std, NaN/Inf/zero counts"),
		OPT_STRING(0, "metric", &o.metric, "<name>",
		    "the metric of RUN@best references"),
		OPT_STRING(0, "mode", &o.mode, "min|max",
		    "RUN@best: the lowest (default) or highest metric"),
		OPT_BOOL(0, "manifest", &o.manifest, "a store checkpoint: "
		    "print its manifest whole, not the short block"),
		OPT_STRING_LIST(0, "allow-global", &o.allow, "name",
		    "admit this pickle global, as verify does: module.name or "
		    "module.* (repeatable)"),
		OPT_END()
	};
	struct json_stream top, list;
	struct ckpt_store *store = NULL;
	enum ckpt_metric_mode mode;
	int status = CKPT_EXIT_OK;
	int nargs;

	nargs = parse_options(argc, argv, ctx, opts, inspect_usage);
	if (nargs < 1)
		usage_error(inspect_usage, opts, "no checkpoint given");
	if (o.depth < 1)
		usage_error(inspect_usage, opts, "--depth must be at least 1");
	/* The statistics are per tensor: with no tensor table they would
	 * be computed for nothing, and silently so. */
	if (o.stats && o.no_tensors)
		usage_error(inspect_usage, opts, "--stats shows each tensor's "
		    "statistics; it cannot go with --no-tensors");
	o.threads = ctx->jobs;
	for (size_t i = 0; i < o.filters.n; i++)
		if (!*o.filters.items[i])
			usage_error(inspect_usage, opts, "empty --filter");
	check_allow_globals(inspect_usage, opts, &o.allow);
	/* --json: one document, written as each argument is read */
	if (ctx->json && nargs > 1) {
		json_stream_begin(&top, 0, false);
		json_stream_key(&top, "checkpoints");
		json_stream_begin(&list, 1, true);
	}

	mode = parse_metric_mode(o.mode);
	for (int a = 0; a < nargs; a++) {
		struct ckpt_checkpoint *c;
		struct tensor_result *res = NULL;
		size_t nres = 0;
		struct ckpt_error err;
		struct ckpt_ref ref;
		bool single;
		int one, unreadable;
		char *path;
		bool printed = false;

		/* A path that exists wins over a reference of the same
		 * spelling.  Every argument is reported, whatever happened
		 * to the others; the worst status is the exit status. */
		one = resolve_checkpoint(ctx, &store, argv[a], o.metric, mode,
		    &ref, &path);
		ckpt_error_clear(&err);
		if (!one && open_checkpoint(path, ref.path ?
		    ckpt_store_root(store) : NULL, &o.allow, &c, &err)) {
			error_ckpt(&err);
			one = exit_code_for_input(err.code);
			if (one == CKPT_EXIT_USAGE)
				one = CKPT_EXIT_ERROR;
		} else if (!one) {
			single = !ckpt_checkpoint_is_directory(c);
			unreadable = report_unreadable(c, single);
			one = worse_exit(unreadable, findings_status(c));
			/* A valid query with no answer: 0, and said. */
			if (ctx->json && o.filters.n &&
			    !count_selected(c, &o))
				info(ctx, "%s: no tensor matches --filter",
				    argv[a]);
			if (o.stats && compute_stats(c, &o, ctx, &res, &nres))
				one = worse_exit(one, CKPT_EXIT_ERROR);
			if (ctx->json) {
				if (nargs > 1)
					json_stream_item(&list);
				print_checkpoint_json(c, &o, res, nres,
				    ref.path ? argv[a] : NULL, one, nargs == 1,
				    nargs > 1 ? 2 : 0);
				printed = true;
			} else if (!(single && unreadable)) {
				if (a)
					putchar('\n');
				if (ref.path)
					printf("ref:     %s\n", argv[a]);
				print_human(ctx, c, &o, res, nres);
			}
			for (size_t i = 0; i < nres; i++)
				free(res[i].error);
			free(res);
			ckpt_checkpoint_free(c);
		}
		if (ctx->json && !printed) {
			json_t *j = json_unopened(argv[a], err.code ? &err :
			    NULL, one);

			if (nargs > 1) {
				json_stream_put(&list, NULL, j);
			} else {
				json_object_set_new(j, "schema",
				    json_integer(1));
				json_print_value(j, 0);
				json_decref(j);
			}
		}
		status = worse_exit(status, one);
		ckpt_ref_release(&ref);
		free(path);
	}
	ckpt_store_free(store);
	if (ctx->json) {
		/* One complete document whatever the status: every
		 * argument has its entry, with its own exit_status. */
		if (nargs > 1) {
			json_stream_end(&list);
			json_stream_put(&top, "schema", json_integer(1));
			json_stream_end(&top);
		}
		putchar('\n');
		if (fflush(stdout) || ferror(stdout))
			die("cannot write JSON output");
	}
	strlist_release(&o.filters);
	strlist_release(&o.allow);
	return status;
}

const struct cmd cmd_inspect = {
	.name = "inspect",
	.summary = "describe a checkpoint's files, tensors and metadata",
	.fn = cmd_inspect_main,
	.flags = CMD_JOBS,
};
