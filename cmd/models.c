/* SPDX-License-Identifier: MIT */
/*
 * models.c - "ckpt ls --models" (and its older name "ckpt models"): the
 * registry's models, one row per version,
 * with the aliases naming it, the checkpoint it came from, its size and
 * how its files are stored (hard links shared with the run, or copies).
 * Read from the history, so it shows exactly what references resolve to.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

static const char *const models_usage[] = {
	"ckpt models [options] [model ...]",
	NULL
};

static bool
wanted(const char *model, int n, char **names)
{
	if (!n)
		return true;
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], model))
			return true;
	return false;
}

/* "production, staging" or "" (newly allocated). */
static char *
aliases_of(struct ckpt_registry *r, const struct ckpt_reg_version *v,
    json_t *arr)
{
	char *s = xstrdup(""), *t;

	for (size_t i = 0; i < ckpt_registry_alias_count(r); i++) {
		const struct ckpt_reg_alias *a = ckpt_registry_alias(r, i);

		if (strcmp(a->model, v->model) || a->version != v->version)
			continue;
		if (arr)
			json_array_append_new(arr, json_string(a->name));
		t = xasprintf("%s%s%s", s, *s ? ", " : "", a->name);
		free(s);
		s = t;
	}
	return s;
}

static json_t *
version_json(struct ckpt_registry *r, const struct ckpt_reg_version *v)
{
	json_t *o = json_object(), *as = json_array();
	char *unused = aliases_of(r, v, as);

	free(unused);
	json_object_set_new(o, "version", json_integer(v->version));
	json_object_set_new(o, "run", json_string(v->run));
	json_object_set_new(o, "step", json_integer(v->step));
	json_object_set_new(o, "manifest", json_string(v->manifest));
	json_object_set_new(o, "path", json_string(v->path));
	json_object_set_new(o, "size", json_integer((json_int_t)v->size));
	json_object_set_new(o, "nfiles", json_integer((json_int_t)v->nfiles));
	json_object_set_new(o, "storage", json_string(v->storage_raw));
	json_object_set_new(o, "scope", json_string(v->scope));
	json_object_set_new(o, "imported", v->imported_record ? json_pack(
	    "{s:I, s:s}", "version", (json_int_t)v->imported_version,
	    "record", v->imported_record) : json_null());
	json_object_set_new(o, "source_manifest", v->source_manifest ?
	    json_string(v->source_manifest) : json_null());
	json_object_set_new(o, "created", json_string(v->created));
	json_object_set_new(o, "user", json_string(v->user));
	json_object_set_new(o, "host", json_string(v->host));
	json_object_set_new(o, "note", v->note ? json_string(v->note) :
	    json_null());
	json_object_set_new(o, "aliases", as);
	return o;
}

static json_t *
model_aliases_json(struct ckpt_registry *r, const char *model)
{
	json_t *o = json_object();

	for (size_t i = 0; i < ckpt_registry_alias_count(r); i++) {
		const struct ckpt_reg_alias *a = ckpt_registry_alias(r, i);
		json_t *prev = json_array();

		if (strcmp(a->model, model)) {
			json_decref(prev);
			continue;
		}
		for (size_t k = 0; k < a->nprevious; k++)
			json_array_append_new(prev,
			    json_integer(a->previous[k]));
		json_object_set_new(o, a->name, json_pack("{s:I, s:o}",
		    "version", (json_int_t)a->version, "previous", prev));
	}
	return o;
}

int
models_list(struct ctx *ctx, int n, char **argv)
{
	static const char *headers[] = { "model", "version", "aliases",
	    "source", "size", "storage", "created", "note" };
	static const enum col_align align[] = { COL_LEFT, COL_RIGHT, COL_LEFT,
	    COL_LEFT, COL_RIGHT, COL_LEFT, COL_LEFT, COL_LEFT };
	struct ckpt_registry *r;
	struct ckpt_store *s;
	struct ckpt_error err;
	json_t *doc = NULL, *models = NULL, *cur = NULL;
	struct table t;
	size_t shown = 0;
	int rc;

	for (int i = 0; i < n; i++)
		if (ckpt_name_check(argv[i], "model name", &err))
			die_usage("%s", err.message);
	s = store_open(ctx, false);
	ckpt_error_clear(&err);
	if ((rc = ckpt_registry_load(s, 0, &r, &err))) {
		error_ckpt(&err);
		ckpt_store_free(s);
		return exit_code_for(rc);
	}
	if (ctx->json) {
		doc = json_doc_new();
		models = json_array();
	} else {
		table_init(&t, 8, headers, align);
	}
	for (size_t i = 0; i < ckpt_registry_version_count(r); i++) {
		const struct ckpt_reg_version *v = ckpt_registry_version(r, i);
		bool first = !i || strcmp(ckpt_registry_version(r,
		    i - 1)->model, v->model);

		if (!wanted(v->model, n, argv))
			continue;
		shown++;
		if (models) {
			if (first) {
				cur = json_array();
				json_array_append_new(models, json_pack(
				    "{s:s, s:o, s:o}", "model", v->model,
				    "versions", cur, "aliases",
				    model_aliases_json(r, v->model)));
			}
			json_array_append_new(cur, version_json(r, v));
		} else {
			char ver[32], sz[32];
			char *as = aliases_of(r, v, NULL);
			char *src = xasprintf("%s@%lld", v->run,
			    (long long)v->step);

			snprintf(ver, sizeof(ver), "v%lld",
			    (long long)v->version);
			human_size(v->size, sz, sizeof(sz));
			/* a weights-only version's file is its own */
			table_add(&t, v->model, ver, as, src, sz,
			    v->source_manifest ? "weights-only" :
			    v->storage_raw,
			    v->created, v->note ? v->note : "");
			free(as);
			free(src);
		}
	}
	for (int i = 0; i < n; i++)
		if (!ckpt_registry_find_version(r, argv[i], 1)) {
			error("no model '%s' in the registry", argv[i]);
			rc = CKPT_EXIT_USAGE;
		}
	if (doc) {
		json_object_set_new(doc, "models", models);
		if (!rc)
			json_doc_print(doc);
		else
			json_decref(doc);
	} else {
		if (t.nrows)
			table_print(&t, stdout, ctx);
		else if (!shown && !n && ctx->verbosity > 0)
			fprintf(stderr, "ckpt: the registry holds no model "
			    "(ckpt promote adds one)\n");
		table_release(&t);
	}
	ckpt_registry_free(r);
	ckpt_store_free(s);
	return rc;
}

static int
cmd_models_main(int argc, char **argv, struct ctx *ctx)
{
	const struct opt opts[] = { OPT_END() };
	int n = parse_options(argc, argv, ctx, opts, models_usage);

	return models_list(ctx, n, argv);
}

const struct cmd cmd_models = {
	.name = "models",
	.summary = "list the registry's models (as ckpt ls --models)",
	.fn = cmd_models_main,
};
