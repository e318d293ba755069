/* SPDX-License-Identifier: MIT */
/*
 * import.c - "ckpt import": commit the checkpoints of a bundle made by
 * ckpt-export(1) into the store, checking every file against its manifest
 * while streaming (ckpt_import() in lib/store/bundle.c).
 *
 * Choices: "-" reads stdin; the store is created when -C names an empty
 * or missing directory, as save does; a checkpoint already in the store
 * with the same manifest is reported "identical" and left alone.  Exit 2
 * when a RUN@STEP exists with another manifest (nothing imported), 3 for
 * a bundle that does not check (nothing imported) or an I/O error.
 *
 * A model version in the bundle is recreated once its checkpoint is
 * committed: promoted here (verified in full, as any promotion) as the
 * next version of the same model, its lineage -- the exporting store's
 * history up to its promotion, checked by ckpt_import() -- kept beside
 * it and named by the new promote record.  A manifest that is a version
 * of the model already is left alone ("identical").
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const import_usage[] = {
	"ckpt import [options] file|-",
	NULL
};

/*
 * What became of the bundle's aliases of the version res: "set" here,
 * "unchanged" (naming it already) or "kept" (naming another version here:
 * never moved by an import).
 */
static json_t *
alias_report(const struct ckpt_promote_result *res)
{
	json_t *a = json_array();

	for (size_t i = 0; i < res->nmoves; i++) {
		const struct ckpt_alias_move *mv = &res->moves[i];

		json_array_append_new(a, json_pack("{s:s, s:s, s:I}", "alias",
		    mv->alias, "status", mv->changed ? "set" :
		    mv->to == res->version ? "unchanged" : "kept", "version",
		    (json_int_t)mv->to));
	}
	return a;
}

/* The text lines of a recreated version's aliases. */
static void
print_aliases(json_t *v)
{
	const char *model = json_string_value(json_object_get(v, "model"));
	json_t *a;
	size_t i;

	json_array_foreach(json_object_get(v, "aliases"), i, a) {
		const char *st = json_string_value(json_object_get(a,
		    "status"));
		const char *name = json_string_value(json_object_get(a,
		    "alias"));
		long long to = (long long)json_integer_value(json_object_get(a,
		    "version"));

		if (!st)
			continue;	/* not recreated: the bundle's names */
		if (!strcmp(st, "kept"))
			printf("kept alias %s %s on v%lld (the bundle has it "
			    "on the imported v%lld; 'ckpt alias %s %s v%lld' "
			    "moves it)\n", model, name, to, (long long)
			    json_integer_value(json_object_get(v, "version")),
			    model, name, (long long)json_integer_value(
			    json_object_get(v, "version")));
		else
			printf("%s alias %s %s on v%lld\n", st, model, name,
			    to);
	}
}

/*
 * Promotes the model version v (an entry of the report's "models") from
 * its committed checkpoint, with its lineage; adds "status", "version"
 * (here) and drops the lineage from v.  Returns 0 or an exit code.
 */
static int
import_version(struct ctx *ctx, struct ckpt_store *s, json_t *v)
{
	const char *ck = json_string_value(json_object_get(v, "checkpoint"));
	const char *staged = json_string_value(json_object_get(v, "staged"));
	const char *at = strrchr(ck, '@');
	json_t *lin = json_object_get(v, "lineage");
	struct ckpt_promote_result *res = NULL;
	struct ckpt_verify_options vo;
	struct ckpt_promote_options po;
	struct ckpt_error e;
	char *rel = xasprintf("runs/%.*s/step-%s", (int)(at - ck), ck,
	    at + 1);
	char *dir = staged ? xstrdup(staged) : ckpt_store_path(s, rel);
	const char **names;
	int rc;

	(void)ctx;
	vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	vo.store = ckpt_store_root(s);
	po = (struct ckpt_promote_options)CKPT_PROMOTE_OPTIONS_INIT;
	po.model = json_string_value(json_object_get(v, "model"));
	po.verify = &vo;
	po.lock_timeout_ms = DEFAULT_LOCK_TIMEOUT_MS;
	po.lineage = json_string_value(lin);
	po.lineage_len = json_string_length(lin);
	/* a weights-only version: recreated from where import staged it */
	po.weights_only = staged != NULL;
	/* the exporting store's aliases of it, where this one has none */
	po.naliases = json_array_size(json_object_get(v, "aliases"));
	po.aliases = names = xcalloc(po.naliases + 1, sizeof(*names));
	for (size_t i = 0; i < po.naliases; i++)
		names[i] = json_string_value(json_array_get(json_object_get(v,
		    "aliases"), i));
	po.aliases_if_absent = true;
	ckpt_error_clear(&e);
	rc = ckpt_promote(s, dir, &po, &res, &e);
	if (rc) {
		error("%s v%lld: not recreated: %s", po.model, (long long)
		    json_integer_value(json_object_get(v, "version")),
		    res && res->refused ? res->refused : e.message);
		json_object_set_new(v, "status", json_string("not imported"));
		rc = rc == CKPT_ERR_REFUSED ? CKPT_EXIT_FINDING :
		    exit_code_for(rc);
	} else {
		json_object_set_new(v, "status", json_string(res->created ?
		    "imported" : "identical"));
		json_object_set_new(v, "source_version", json_integer(
		    json_integer_value(json_object_get(v, "version"))));
		json_object_set_new(v, "version", json_integer(res->version));
		json_object_set_new(v, "aliases", alias_report(res));
	}
	json_object_del(v, "lineage");
	if (staged) {
		struct ckpt_error de;

		ckpt_error_clear(&de);
		if (ckpt_import_discard(s, staged, &de)) {
			error_ckpt(&de);
			if (!rc)
				rc = CKPT_EXIT_ERROR;
		}
		json_object_del(v, "staged");
		json_object_set_new(v, "scope", json_string("weights-only"));
	}
	ckpt_promote_result_free(res);
	free(names);
	free(dir);
	free(rel);
	return rc;
}

static int
cmd_import_main(int argc, char **argv, struct ctx *ctx)
{
	const char *run = NULL;
	struct ckpt_import_options o;
	struct ckpt_store *s;
	struct ckpt_error e;
	struct progress pr;
	struct stat st;
	char *report = NULL;
	int n, fd, rc;
	const struct opt opts[] = {
		OPT_STRING(0, "run", &run, "name", "import into this run "
		    "(the manifest keeps its own)"),
		OPT_END()
	};

	n = parse_options(argc, argv, ctx, opts, import_usage);
	if (n != 1)
		usage_error(import_usage, opts, "import takes one bundle");
	ckpt_error_clear(&e);
	if (run && ckpt_name_check(run, "run name", &e))
		usage_error(import_usage, opts, "--run: %s", e.message);
	if (!strcmp(argv[0], "-")) {
		fd = 0;
	} else if ((fd = open(argv[0], O_RDONLY | O_CLOEXEC)) < 0) {
		die_errno("%s: cannot open", argv[0]);
	}
	s = store_open(ctx, true);
	o = (struct ckpt_import_options)CKPT_IMPORT_OPTIONS_INIT;
	o.run = run;
	o.name = argv[0];
	o.lock_timeout_ms = 60000;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		o.progress_total = (uint64_t)st.st_size;
	progress_start(&pr, ctx, "importing", o.progress_total);
	o.progress = progress_callback;
	o.progress_data = &pr;
	rc = ckpt_import(s, fd, &o, &report, &e);
	progress_stop(&pr);
	if (fd)
		close(fd);
	if (rc) {
		error_ckpt(&e);
		rc = exit_code_for(rc);
	} else {
		json_t *r = json_loads(report, 0, NULL);
		json_t *v;
		size_t i;

		if (!r)
			die("out of memory");
		rc = CKPT_EXIT_OK;
		json_array_foreach(json_object_get(r, "models"), i, v) {
			int vrc = import_version(ctx, s, v);

			if (vrc > rc)
				rc = vrc;
		}
		if (ctx->json) {
			json_object_set_new(r, "schema", json_integer(1));
			json_doc_print(r);
			r = NULL;
		} else if (ctx->verbosity >= 1) {
			json_array_foreach(json_object_get(r, "checkpoints"),
			    i, v)
				printf("%s %s@%lld (manifest %s)\n",
				    json_string_value(json_object_get(v,
				    "status")), json_string_value(
				    json_object_get(v, "run")), (long long)
				    json_integer_value(json_object_get(v,
				    "step")), json_string_value(
				    json_object_get(v, "manifest")));
			json_array_foreach(json_object_get(r, "models"), i, v)
				if (json_object_get(v, "source_version"))
					printf("%s %s v%lld from %s (%sv%lld "
					    "where exported, lineage kept)\n",
					    json_string_value(json_object_get(
					    v, "status")), json_string_value(
					    json_object_get(v, "model")),
					    (long long)json_integer_value(
					    json_object_get(v, "version")),
					    json_string_value(json_object_get(
					    v, "checkpoint")), json_object_get(
					    v, "scope") ? "weights only; " : "",
					    (long long)json_integer_value(
					    json_object_get(v,
					    "source_version")));
			json_array_foreach(json_object_get(r, "models"), i, v)
				print_aliases(v);
		}
		json_decref(r);
	}
	free(report);
	ckpt_store_free(s);
	return rc;
}

const struct cmd cmd_import = {
	.name = "import",
	.summary = "commit the checkpoints of a bundle into the store",
	.fn = cmd_import_main,
};
