/* SPDX-License-Identifier: MIT */
/*
 * alias.c - "ckpt alias": point an alias of a model at one of its
 * versions, or delete it (ckpt_registry_alias_op()).  Each move is a
 * record of the registry's history, with who, when and --note; the
 * version it named before is kept so that "ckpt promote --rollback" can
 * go back.  Pointing an alias where it points already records nothing.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <limits.h>

static const char *const alias_usage[] = {
	"ckpt alias [options] model alias version",
	"ckpt alias [options] --delete model alias",
	NULL
};

/* "v3" or "3" */
static int64_t
parse_version(const char *s)
{
	long long v;

	if (*s == 'v')
		s++;
	if (parse_ll(s, &v) || v < 1)
		die_usage("'%s' is not a version (v1, v2, ...)", s);
	return v;
}

static int
cmd_alias_main(int argc, char **argv, struct ctx *ctx)
{
	const char *note = NULL, *wait = "60";
	bool del = false;
	const struct opt opts[] = {
		OPT_BOOL(0, "delete", &del, "remove the alias"),
		OPT_STRING(0, "note", &note, "text", "why; kept in the "
		    "history"),
		OPT_STRING(0, "lock-timeout", &wait, "sec", "wait up to sec "
		    "seconds for the store lock (default 60)"),
		OPT_END()
	};
	struct ckpt_alias_options o = CKPT_ALIAS_OPTIONS_INIT;
	struct ckpt_alias_move mv;
	struct ckpt_store *s;
	struct ckpt_error err;
	int64_t w;
	int n, rc;

	n = parse_options(argc, argv, ctx, opts, alias_usage);
	if (n != (del ? 2 : 3))
		usage_error(alias_usage, opts, del ? "--delete takes a model "
		    "and an alias" : "expected a model, an alias and a "
		    "version");
	ckpt_error_clear(&err);
	if (ckpt_duration_parse(wait, &w, &err))
		die_usage("--lock-timeout: %s", err.message);
	o.op = del ? CKPT_ALIAS_DELETE : CKPT_ALIAS_SET;
	o.model = argv[0];
	o.alias = argv[1];
	o.model_version = del ? 0 : parse_version(argv[2]);
	o.note = note;
	o.lock_timeout_ms = w > LONG_MAX / 1000 ? LONG_MAX : (long)w * 1000;

	s = store_open(ctx, false);
	rc = ckpt_registry_alias_op(s, &o, &mv, &err);
	ckpt_store_free(s);
	if (rc) {
		error_ckpt(&err);
		return rc == CKPT_ERR_NOTFOUND ? CKPT_EXIT_USAGE :
		    exit_code_for(rc);
	}
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "model", json_string(o.model));
		json_object_set_new(doc, "alias", json_string(mv.alias));
		json_object_set_new(doc, "from", mv.from ?
		    json_integer(mv.from) : json_null());
		json_object_set_new(doc, "to", mv.to ? json_integer(mv.to) :
		    json_null());
		json_object_set_new(doc, "changed", json_boolean(mv.changed));
		json_doc_print(doc);
	} else if (ctx->verbosity > 0) {
		if (del)
			printf("deleted %s@%s (was v%lld)\n", o.model, mv.alias,
			    (long long)mv.from);
		else if (!mv.changed)
			printf("%s@%s names v%lld already\n", o.model,
			    mv.alias, (long long)mv.to);
		else if (mv.from)
			printf("%s@%s: v%lld -> v%lld\n", o.model, mv.alias,
			    (long long)mv.from, (long long)mv.to);
		else
			printf("%s@%s: -> v%lld\n", o.model, mv.alias,
			    (long long)mv.to);
	}
	return CKPT_EXIT_OK;
}

const struct cmd cmd_alias = {
	.name = "alias",
	.summary = "point an alias of a model at a version, or delete it",
	.fn = cmd_alias_main,
};
