/* SPDX-License-Identifier: MIT */
/*
 * convert.c - "ckpt convert": write safetensors from a PyTorch checkpoint
 * (or a directory, a sharded model, a store reference) without executing
 * its pickle; the work is ckpt_convert() in lib/store/convert.c.
 *
 * Choices: what was chosen as the weights, tied names, tensors and values
 * left out are said on stdout (every one with -v, a count otherwise);
 * --json prints the library's report.  Exit 1 when the source's pickle
 * references globals outside the allowlist (nothing written: the answer
 * is "not safe"), 2 for a usage error, no weights found or an existing
 * output, 3 when the input cannot be read or the output written.  A
 * reference RUN@STEP also admits the globals of its store's
 * verify.allow_globals, as save and verify do.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

static const char *const convert_usage[] = {
	"ckpt convert [options] in out.safetensors",
	NULL
};

struct copts {
	struct strlist select, allow;
	bool strip, metadata_json, force;
	uint64_t shard_size;
};

/* Prints the few lines a person wants to read after a conversion. */
static void
print_human(json_t *r, const struct ctx *ctx)
{
	json_t *v, *x;
	size_t i, n;
	char h[32];
	const char *k;

	if (ctx->verbosity < 1)
		return;

	json_array_foreach(json_object_get(r, "roots"), i, v) {
		const char *how = json_string_value(json_object_get(v, "how"));
		const char *root = json_string_value(json_object_get(v,
		    "root"));

		if (!how || !strcmp(how, "select"))
			continue;
		if (!strcmp(how, "none"))
			printf("%s: no weights found here\n",
			    json_string_value(json_object_get(v, "file")));
		else
			printf("%s: weights: %s\n", json_string_value(
			    json_object_get(v, "file")), *root ? root :
			    "the top-level dict of tensors");
	}
	json_array_foreach(json_object_get(r, "outputs"), i, v) {
		human_size((uint64_t)json_integer_value(json_object_get(v,
		    "size")), h, sizeof(h));
		printf("wrote %s (%lld tensors, %s)\n", json_string_value(
		    json_object_get(v, "path")), (long long)json_integer_value(
		    json_object_get(v, "tensors")), h);
	}
	if ((v = json_object_get(r, "index")))
		printf("wrote %s\n", json_string_value(v));
	json_object_foreach(json_object_get(r, "aliases"), k, x)
		printf("tied: %s = %s (written once)\n", k,
		    json_string_value(x));
	n = json_array_size(json_object_get(r, "left_out"));
	if (n && ctx->verbosity >= 2) {
		json_array_foreach(json_object_get(r, "left_out"), i, v)
			printf("left out: %s: %s (%s)\n", json_string_value(
			    json_object_get(v, "file")), json_string_value(
			    json_object_get(v, "name")), json_string_value(
			    json_object_get(v, "reason")));
	} else if (n && ctx->verbosity >= 1) {
		printf("left out: %zu tensor%s (-v lists them)\n", n,
		    n == 1 ? "" : "s");
	}
	n = (size_t)json_integer_value(json_object_get(r, "values_total"));
	if (n && ctx->verbosity >= 2) {
		json_array_foreach(json_object_get(r, "values"), i, v)
			printf("value: %s = %s\n", json_string_value(
			    json_object_get(v, "path")), json_string_value(
			    json_object_get(v, "value")));
	} else if (n && ctx->verbosity >= 1) {
		printf("left out: %zu non-tensor value%s (-v lists them; "
		    "--metadata-json keeps the scalars)\n", n, n == 1 ? "" :
		    "s");
	}
}

/* The store's verify.allow_globals, for a reference into it (a local or
 * a remote store: the backend reads its ckpt.yaml). */
static void
store_globals(struct ckpt_store *s, struct strlist *allow)
{
	struct ckpt_policy_config *cfg;
	size_t n = 0;
	const char *const *g;

	if (s && !ckpt_store_config_load(s, &cfg, NULL)) {
		g = ckpt_policy_config_allow_globals(cfg, &n);
		for (size_t i = 0; i < n; i++)
			strlist_push(allow, g[i]);
		ckpt_policy_config_free(cfg);
	}
}

static int
cmd_convert_main(int argc, char **argv, struct ctx *ctx)
{
	struct copts c = { .shard_size = 0 };
	struct ckpt_convert_options o;
	struct ckpt_store *s = NULL;
	struct ckpt_error e;
	struct progress pr;
	struct ckpt_ref ref;
	char *path, *report = NULL;
	const char *shard = NULL;
	int n, rc;
	const struct opt opts[] = {
		OPT_STRING_LIST(0, "select", &c.select, "prefix", "convert "
		    "the tensors under this prefix (repeatable)"),
		OPT_BOOL(0, "strip-prefix", &c.strip, "remove the --select "
		    "prefix from tensor names"),
		OPT_BOOL(0, "metadata-json", &c.metadata_json, "keep "
		    "non-tensor scalars as strings in __metadata__"),
		OPT_STRING(0, "shard-size", &shard, "size", "write "
		    "shards of at most this size and an index"),
		OPT_BOOL('f', "force", &c.force, "replace existing output "
		    "files"),
		OPT_STRING_LIST(0, "allow-global", &c.allow, "name",
		    "admit this pickle global: module.name or module.* "
		    "(repeatable)"),
		OPT_END()
	};

	n = parse_options(argc, argv, ctx, opts, convert_usage);
	if (n != 2)
		usage_error(convert_usage, opts, "convert takes an input and "
		    "an output");
	if (shard && (parse_size(shard, &c.shard_size) || !c.shard_size))
		usage_error(convert_usage, opts, "--shard-size wants a size "
		    "such as 5G, not '%s'", shard);
	if (c.strip && !c.select.n)
		usage_error(convert_usage, opts, "--strip-prefix goes with "
		    "--select");
	check_allow_globals(convert_usage, opts, &c.allow);
	path = resolve_checkpoint_arg(ctx, &s, argv[0], NULL,
	    CKPT_METRIC_MIN, &ref);
	if (ref.path)
		store_globals(s, &c.allow);

	o = (struct ckpt_convert_options)CKPT_CONVERT_OPTIONS_INIT;
	o.select = (const char *const *)c.select.items;
	o.nselect = c.select.n;
	o.strip_prefix = c.strip;
	o.metadata_json = c.metadata_json;
	o.shard_size = c.shard_size;
	o.force = c.force;
	o.source_name = argv[0];
	o.allow_globals = (const char *const *)c.allow.items;
	o.nallow_globals = c.allow.n;
	progress_start(&pr, ctx, "converting", 0);
	o.progress = progress_callback;
	o.progress_data = &pr;
	ckpt_error_clear(&e);
	rc = ckpt_convert(path, argv[1], &o, &report, &e);
	progress_stop(&pr);
	if (rc) {
		error_ckpt(&e);
		rc = rc == CKPT_ERR_UNSAFE ? CKPT_EXIT_FINDING :
		    exit_code_for(rc);
	} else {
		json_t *r = json_loads(report, 0, NULL);

		if (!r)
			die("out of memory");
		if (ctx->json) {
			json_object_set_new(r, "schema", json_integer(1));
			json_doc_print(r);
		} else {
			print_human(r, ctx);
			json_decref(r);
		}
		rc = CKPT_EXIT_OK;
	}
	free(report);
	free(path);
	ckpt_ref_release(&ref);
	ckpt_store_free(s);
	strlist_release(&c.select);
	strlist_release(&c.allow);
	return rc;
}

const struct cmd cmd_convert = {
	.name = "convert",
	.summary = "write safetensors from a PyTorch checkpoint, without "
	    "executing it",
	.fn = cmd_convert_main,
};
