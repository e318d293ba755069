/* SPDX-License-Identifier: MIT */
/*
 * export.c - "ckpt export": committed checkpoints (references or paths)
 * as one bundle, a tar stream with their manifests, signatures and
 * summaries (ckpt_export() in lib/store/bundle.c; ckpt-import(1) reads
 * it back).
 *
 * Choices: -o FILE is written atomically and never replaced without
 * --force; -o - streams to stdout (for ssh or an object-store client),
 * refused when stdout is a terminal.  A model version (MODEL@vN,
 * MODEL@ALIAS) exports as its checkpoint plus its lineage: this store's
 * history up to and including its promote record, a hash chain that
 * "ckpt import" verifies and keeps beside the version it recreates.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <unistd.h>

static const char *const export_usage[] = {
	"ckpt export [options] -o file|- ref ...",
	NULL
};

/* The aliases naming (model, version) now: they travel with it. */
static void
aliases_of(const struct ckpt_registry *r, const char *model, int64_t version,
    struct ckpt_export_aliases *ea)
{
	const char **names = xcalloc(ckpt_registry_alias_count(r) + 1,
	    sizeof(*names));

	ea->n = 0;
	for (size_t i = 0; i < ckpt_registry_alias_count(r); i++) {
		const struct ckpt_reg_alias *a = ckpt_registry_alias(r, i);

		if (!strcmp(a->model, model) && a->version == version)
			names[ea->n++] = xstrdup(a->name);
	}
	ea->names = names;
}

/*
 * The lineage of version (model, version) of s: the history's lines up
 * to and including its promote record, newly allocated.  Exits 3 when
 * the history does not verify (no lineage from a history not trusted).
 */
static char *
lineage_of(struct ckpt_store *s, const char *model, int64_t version,
    size_t *len, struct ckpt_export_aliases *ea)
{
	const struct ckpt_reg_version *v;
	struct ckpt_registry *r;
	struct ckpt_error e;
	char *text = xstrdup(""), *t;

	ckpt_error_clear(&e);
	if (ckpt_registry_load(s, 0, &r, &e))
		die_ckpt(&e);
	v = ckpt_registry_find_version(r, model, version);
	if (!v)
		die("%s@v%lld: no such version", model, (long long)version);
	aliases_of(r, model, version, ea);
	for (size_t i = 0; i < ckpt_registry_record_count(r); i++) {
		const struct ckpt_reg_record *x = ckpt_registry_record(r, i);

		t = xasprintf("%s%s\n", text, x->json);
		free(text);
		text = t;
		if (!strcmp(x->digest, v->record))
			break;
	}
	ckpt_registry_free(r);
	*len = strlen(text);
	return text;
}

static int
cmd_export_main(int argc, char **argv, struct ctx *ctx)
{
	const char *out = NULL;
	bool zstd = false, gzip = false, force = false;
	struct ckpt_export_options o;
	struct ckpt_store *s = NULL;
	struct ckpt_error e;
	struct progress pr;
	char **dirs, *report = NULL;
	struct ckpt_export_model *models;
	struct ckpt_export_aliases *aliases;
	size_t nmodels = 0;
	int n, rc;
	const struct opt opts[] = {
		OPT_STRING('o', "output", &out, "file", "write the bundle "
		    "here ('-': stdout)"),
		OPT_BOOL(0, "zstd", &zstd, "compress with zstd"),
		OPT_BOOL(0, "gzip", &gzip, "compress with gzip"),
		OPT_BOOL('f', "force", &force, "replace an existing output "
		    "file"),
		OPT_END()
	};

	n = parse_options(argc, argv, ctx, opts, export_usage);
	die_for_incompatible_opts(zstd, "--zstd", gzip, "--gzip");
	if (!out)
		usage_error(export_usage, opts, "-o file (or -o -) is "
		    "required");
	if (!n)
		usage_error(export_usage, opts, "nothing to export");
	if (!strcmp(out, "-") && isatty(1))
		usage_error(export_usage, opts, "not writing a bundle to a "
		    "terminal");
	dirs = xcalloc((size_t)n, sizeof(*dirs));
	models = xcalloc((size_t)n, sizeof(*models));
	aliases = xcalloc((size_t)n, sizeof(*aliases));
	for (int i = 0; i < n; i++) {
		struct ckpt_ref ref;

		memset(&ref, 0, sizeof(ref));
		dirs[i] = resolve_checkpoint_arg(ctx, &s, argv[i], NULL,
		    CKPT_METRIC_MIN, &ref);
		if (ref.model) {
			struct ckpt_export_model *em = &models[nmodels++];

			em->index = (size_t)i;
			em->model = xstrdup(ref.model);
			em->version = ref.version;
			em->lineage = lineage_of(s, ref.model, ref.version,
			    &em->lineage_len, &aliases[nmodels - 1]);
		}
		ckpt_ref_release(&ref);
	}
	o = (struct ckpt_export_options)CKPT_EXPORT_OPTIONS_INIT;
	o.models = models;
	o.nmodels = nmodels;
	o.aliases = aliases;
	o.compression = zstd ? CKPT_COMPRESS_ZSTD : gzip ?
	    CKPT_COMPRESS_GZIP : CKPT_COMPRESS_NONE;
	o.force = force;
	progress_start(&pr, ctx, "exporting", 0);
	o.progress = progress_callback;
	o.progress_data = &pr;
	ckpt_error_clear(&e);
	rc = ckpt_export((const char *const *)dirs, (size_t)n, &o,
	    strcmp(out, "-") ? out : NULL, 1, &report, &e);
	progress_stop(&pr);
	if (rc) {
		error_ckpt(&e);
		rc = exit_code_for(rc);
	} else {
		json_t *r = json_loads(report, 0, NULL);
		json_t *v;
		size_t i;

		if (!r)
			die("out of memory");
		if (ctx->json && strcmp(out, "-")) {
			json_object_set_new(r, "schema", json_integer(1));
			json_doc_print(r);
			r = NULL;
		} else if (ctx->verbosity >= 1) {
			json_array_foreach(json_object_get(r, "checkpoints"),
			    i, v) {
				char h[32];

				human_size((uint64_t)json_integer_value(
				    json_object_get(v, "bytes")), h, sizeof(h));
				fprintf(strcmp(out, "-") ? stdout : stderr,
				    "exported %s (%s%lld files, %s, "
				    "manifest %s)\n", json_string_value(
				    json_object_get(v, "name")), strcmp(
				    json_string_value(json_object_get(v,
				    "scope")), "full") ? "weights only, " : "",
				    (long long)json_integer_value(
				    json_object_get(v, "files")), h,
				    json_string_value(json_object_get(v,
				    "manifest")));
			}
		}
		json_decref(r);
		rc = CKPT_EXIT_OK;
	}
	for (int i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	for (size_t i = 0; i < nmodels; i++) {
		free((char *)models[i].model);
		free((char *)models[i].lineage);
		for (size_t k = 0; k < aliases[i].n; k++)
			free((char *)aliases[i].names[k]);
		free((void *)aliases[i].names);
	}
	free(models);
	free(aliases);
	free(report);
	ckpt_store_free(s);
	return rc;
}

const struct cmd cmd_export = {
	.name = "export",
	.summary = "write checkpoints as a bundle (tar) for another store",
	.fn = cmd_export_main,
};
