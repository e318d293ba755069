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

static void
on_progress(uint64_t done, uint64_t total, void *data)
{
	progress_update(data, done);
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
	o.progress = on_progress;
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
		}
		json_decref(r);
		rc = CKPT_EXIT_OK;
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
