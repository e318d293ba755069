/* SPDX-License-Identifier: MIT */
/*
 * gc.c - "ckpt gc": empty the store's trash and remove the staging
 * directories of crashed or failed saves once their last sign of life is
 * older than a threshold (--older-than, else ckpt.yaml's gc.older_than,
 * else 24h).  A save in flight is never touched: on this host its pid must
 * be gone; the threshold covers saves of other hosts.  The files of a
 * --move save go back where they came from before its directory goes
 * (--restore does only that, at any age).  The work is libckpt's
 * (ckpt_store_gc); this file prints it.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

static const char *const gc_usage[] = {
	"ckpt gc [options]",
	NULL
};

static const char *
kind_name(enum ckpt_gc_kind k)
{
	return k == CKPT_GC_TRASH ? "trash" : k == CKPT_GC_UPLOAD ? "upload" :
	    "staging";
}

static int
cmd_gc_main(int argc, char **argv, struct ctx *ctx)
{
	const char *older = NULL;
	bool dry_run = false, restore = false;
	const struct opt opts[] = {
		OPT_BOOL('n', "dry-run", &dry_run,
		    "print what would be removed, change nothing"),
		OPT_BOOL(0, "restore", &restore,
		    "only put back the files of interrupted --move saves "
		    "(any age)"),
		OPT_STRING(0, "older-than", &older, "duration",
		    "age of leftovers of crashed saves (default: ckpt.yaml, "
		    "else 24h)"),
		OPT_END()
	};
	struct ckpt_gc_options go = CKPT_GC_OPTIONS_INIT;
	struct ckpt_gc_report *rep = NULL;
	struct progress pr;
	struct ckpt_store *store;
	struct ckpt_error err;
	uint64_t freed = 0;
	size_t nremove = 0;
	int64_t v;
	int rc;

	if (parse_options(argc, argv, ctx, opts, gc_usage))
		usage_error(gc_usage, opts, "unexpected argument '%s'",
		    argv[0]);
	if (older) {
		if (ckpt_duration_parse(older, &v, &err))
			die_usage("--older-than: %s", err.message);
		go.older_than = v;
	}
	go.lock_timeout_ms = ctx->lock_timeout_ms;
	go.dry_run = dry_run;
	go.restore = restore;

	store = cmd_store(ctx);
	progress_start(&pr, ctx, "deleting", 0);
	go.progress = progress_callback;
	go.progress_data = &pr;
	rc = ckpt_store_gc(store, &go, &rep, &err);
	progress_stop(&pr);
	if (rc) {
		error_ckpt(&err);
		return exit_code_for(rc);
	}
	warn_broken_lock(ckpt_gc_report_broken_lock(rep));
	for (size_t i = 0; i < ckpt_gc_report_count(rep); i++) {
		const struct ckpt_gc_item *it = ckpt_gc_report_item(rep, i);

		if (it->error)
			error("%s: %s", it->path, it->error);
		if (it->remove && !it->error) {
			nremove++;
			freed += it->size;
		}
	}
	if (ctx->json) {
		json_t *doc = json_doc_new(), *items = json_array();

		json_object_set_new(doc, "dry_run", json_boolean(dry_run));
		json_object_set_new(doc, "restore", json_boolean(restore));
		json_object_set_new(doc, "older_than",
		    json_integer(ckpt_gc_report_older_than(rep)));
		for (size_t i = 0; i < ckpt_gc_report_count(rep); i++) {
			const struct ckpt_gc_item *it =
			    ckpt_gc_report_item(rep, i);
			json_t *o = json_object();

			json_object_set_new(o, "kind",
			    json_string(kind_name(it->kind)));
			json_object_set_new(o, "path", json_string(it->path));
			if (it->run)
				json_object_set_new(o, "run",
				    json_string(it->run));
			if (it->kind == CKPT_GC_STAGING && it->step >= 0)
				json_object_set_new(o, "step",
				    json_integer(it->step));
			json_object_set_new(o, "age", json_integer(it->age));
			json_object_set_new(o, "size",
			    json_integer((json_int_t)it->size));
			json_object_set_new(o, "action", json_string(
			    it->remove ? "remove" : "keep"));
			json_object_set_new(o, "reason",
			    json_string(it->reason));
			json_object_set_new(o, "removed",
			    json_boolean(it->removed));
			if (it->error)
				json_object_set_new(o, "error",
				    json_string(it->error));
			json_array_append_new(items, o);
		}
		json_object_set_new(doc, "items", items);
		json_object_set_new(doc, "freed_bytes",
		    json_integer((json_int_t)freed));
		json_doc_print(doc);
	} else if (ctx->verbosity > 0) {
		static const char *headers[] = { "KIND", "PATH", "AGE", "SIZE",
			"ACTION", "REASON" };
		static const enum col_align align[] = { COL_LEFT, COL_LEFT,
			COL_RIGHT, COL_RIGHT, COL_LEFT, COL_LEFT };
		struct table t;
		char age[64], sz[32];

		table_init(&t, 6, headers, align);
		for (size_t i = 0; i < ckpt_gc_report_count(rep); i++) {
			const struct ckpt_gc_item *it =
			    ckpt_gc_report_item(rep, i);

			table_add(&t, kind_name(it->kind), it->path,
			    ckpt_duration_format(it->age, age, sizeof(age)),
			    human_size(it->size, sz, sizeof(sz)),
			    !it->remove ? "keep" : dry_run ? "remove" :
			    it->removed ? "removed" : "FAILED", it->reason);
		}
		if (t.nrows)
			table_print(&t, stdout, ctx);
		table_release(&t);
		printf("%s %zu item%s (%s)\n", dry_run ? "would remove" :
		    "removed", nremove, nremove == 1 ? "" : "s",
		    human_size(freed, sz, sizeof(sz)));
	}
	rc = ckpt_gc_report_failed(rep) ? CKPT_EXIT_FINDING : CKPT_EXIT_OK;
	ckpt_gc_report_free(rep);
	return rc;
}

const struct cmd cmd_gc = {
	.name = "gc",
	.summary = "empty the trash and remove leftovers of crashed saves",
	.fn = cmd_gc_main,
	.flags = CMD_STORE | CMD_LOCK,
};
