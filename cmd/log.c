/* SPDX-License-Identifier: MIT */
/*
 * log.c - "ckpt log": the registry's history, newest first, as git log
 * shows commits: every promotion, alias move, rollback and alias
 * deletion with who, where, when, the checkpoint and its manifest
 * digest, and the note.
 *
 * "ckpt log --verify" is the registry's fsck: it first finishes what a
 * crash may have interrupted (under the store lock, as any registry
 * command does), then checks the hash chain of the history, that the
 * state files agree with it, and that every version's files still match
 * the manifest recorded when it was promoted (a full verify).  Exit 1
 * when anything does not.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <limits.h>

static const char *const log_usage[] = {
	"ckpt log [options]",
	"ckpt log [options] --verify",
	NULL
};

static char *
short_digest(const char *d)
{
	return xasprintf("%.19s", d ? d : "");
}

static char *
change_text(const struct ckpt_reg_record *r)
{
	if (!strcmp(r->action, "promote"))
		return xasprintf("promote v%lld", (long long)r->version);
	if (!strcmp(r->action, "alias-delete"))
		return xasprintf("delete %s (v%lld)", r->alias,
		    (long long)r->from);
	if (!strcmp(r->action, "rollback"))
		return xasprintf("rollback %s v%lld -> v%lld", r->alias,
		    (long long)r->from, (long long)r->to);
	if (r->from)
		return xasprintf("%s v%lld -> v%lld", r->alias,
		    (long long)r->from, (long long)r->to);
	return xasprintf("%s -> v%lld", r->alias, (long long)r->to);
}

static bool
selected(const struct ckpt_reg_record *r, const char *model,
    const char *alias)
{
	if (model && strcmp(r->model, model))
		return false;
	return !alias || (r->alias && !strcmp(r->alias, alias));
}

static int
show_log(struct ctx *ctx, struct ckpt_registry *r, const char *model,
    const char *alias, long long max)
{
	static const char *headers[] = { "#", "time", "who", "model",
	    "change", "checkpoint", "note" };
	static const enum col_align align[] = { COL_RIGHT, COL_LEFT, COL_LEFT,
	    COL_LEFT, COL_LEFT, COL_LEFT, COL_LEFT };
	json_t *doc = NULL, *list = NULL;
	struct table t;
	long long shown = 0;

	if (ctx->json) {
		doc = json_doc_new();
		list = json_array();
	} else {
		table_init(&t, 7, headers, align);
	}
	for (size_t i = ckpt_registry_record_count(r); i-- > 0;) {
		const struct ckpt_reg_record *x = ckpt_registry_record(r, i);

		if (!selected(x, model, alias))
			continue;
		if (max >= 0 && shown++ >= max)
			break;
		if (list) {
			json_t *o = json_loads(x->json, 0, NULL);

			json_object_set_new(o, "digest",
			    json_string(x->digest));
			json_array_append_new(list, o);
		} else {
			char *seq = xasprintf("%lld", (long long)x->seq);
			char *who = xasprintf("%s@%s", x->user, x->host);
			char *change = change_text(x);
			char *dg = short_digest(x->manifest);
			char *ck = x->run ? xasprintf("%s@%lld %s", x->run,
			    (long long)x->step, dg) : xstrdup("");

			table_add(&t, seq, x->time, who, x->model, change, ck,
			    x->note ? x->note : "");
			free(seq);
			free(who);
			free(change);
			free(dg);
			free(ck);
		}
	}
	if (doc) {
		json_object_set_new(doc, "records", list);
		json_object_set_new(doc, "head", ckpt_registry_head(r) ?
		    json_string(ckpt_registry_head(r)) : json_null());
		json_doc_print(doc);
	} else {
		if (t.nrows)
			table_print(&t, stdout, ctx);
		else if (ctx->verbosity > 0)
			fprintf(stderr, "ckpt: the registry history is empty"
			    "%s\n", model || alias ? " for this selection" :
			    "");
		table_release(&t);
	}
	return CKPT_EXIT_OK;
}

static json_t *
finding_json(const struct ckpt_finding *x)
{
	static const char *const sev[] = { "info", "warning", "error" };

	return json_pack("{s:s, s:s, s:o, s:o, s:s, s:o}", "id", x->id,
	    "severity", (unsigned)x->severity < 3 ? sev[x->severity] : "error",
	    "path", x->path ? json_string(x->path) : json_null(), "subject",
	    x->subject ? json_string(x->subject) : json_null(), "message",
	    x->message, "offset", x->offset >= 0 ? json_integer(x->offset) :
	    json_null());
}

static void
print_finding(const struct ckpt_finding *x)
{
	fprintf(stderr, "ckpt: %s%s%s", x->path ? x->path : "", x->path ?
	    ": " : "", x->message);
	if (x->offset >= 0)
		fprintf(stderr, " (at byte %lld)", (long long)x->offset);
	fprintf(stderr, " [%s]\n", x->id);
}

/* Verifies one version's files against its recorded manifest. */
static bool
verify_version(struct ckpt_store *s, const struct ckpt_reg_version *v,
    struct ctx *ctx, json_t *list)
{
	struct ckpt_verify_options vo;
	struct ckpt_report *rep = NULL;
	struct ckpt_error err;
	json_t *o = NULL, *fs = NULL;
	const char *first = NULL;
	bool ok;

	vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	vo.store = ckpt_store_root(s);
	vo.manifest_digest = v->manifest;
	ckpt_error_clear(&err);
	if (ckpt_verify(v->path, &vo, &rep, &err)) {
		ok = false;
		first = err.message;
	} else {
		ok = ckpt_report_ok(rep);
	}
	if (list) {
		o = json_pack("{s:s, s:I, s:s, s:s}", "model", v->model,
		    "version", (json_int_t)v->version, "path", v->path,
		    "manifest", v->manifest);
		fs = json_array();
	}
	for (size_t i = 0; rep && i < ckpt_report_finding_count(rep); i++) {
		const struct ckpt_finding *x = ckpt_report_finding(rep, i);

		if (x->severity < CKPT_SEV_WARNING)
			continue;
		if (!first)
			first = x->id;
		if (fs)
			json_array_append_new(fs, finding_json(x));
		else if (ctx->verbosity >= 2)
			print_finding(x);
	}
	if (o) {
		if (!rep) {
			struct ckpt_finding x = { "unreadable", CKPT_SEV_ERROR,
			    v->path, NULL, err.message, -1 };

			json_array_append_new(fs, finding_json(&x));
		}
		json_object_set_new(o, "ok", json_boolean(ok));
		json_object_set_new(o, "findings", fs);
		json_array_append_new(list, o);
	} else if (!ok || ctx->verbosity > 0) {
		printf("%s@v%lld: %s", v->model, (long long)v->version,
		    ok ? "OK" : "FAILED");
		if (!ok)
			printf(" (%s)", first ? first : "does not verify");
		putchar('\n');
	}
	ckpt_report_free(rep);
	return ok;
}

static int
verify_registry(struct ctx *ctx, long timeout, const struct strlist *keys,
    bool require_sig)
{
	struct ckpt_store *s = store_open(ctx, false);
	struct ckpt_registry *r = NULL;
	struct ckpt_error err;
	json_t *doc = NULL, *vlist = NULL, *plist = NULL;
	size_t repaired = 0, bad = 0, nprob, nsigned = 0;
	struct ckpt_verify_options vo;
	bool chain_ok;
	int rc;

	ckpt_error_clear(&err);
	rc = ckpt_registry_repair(s, timeout, &repaired, &err);
	chain_ok = rc != CKPT_ERR_FORMAT;
	if (rc && chain_ok) {
		error_ckpt(&err);
		ckpt_store_free(s);
		return exit_code_for(rc);
	}
	ckpt_error_clear(&err);
	vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	vo.store = ckpt_store_root(s);
	vo.keys = (const char *const *)keys->items;
	vo.nkeys = keys->n;
	if ((rc = ckpt_registry_load(s, CKPT_REGISTRY_LENIENT, &r, &err)) ||
	    (chain_ok && (rc = ckpt_registry_check_files(s, r, &err))) ||
	    (rc = ckpt_registry_check_signatures(s, r, &vo, require_sig,
	    &nsigned, &err))) {
		error_ckpt(&err);
		ckpt_registry_free(r);
		ckpt_store_free(s);
		return exit_code_for(rc);
	}
	if (ctx->json) {
		doc = json_doc_new();
		vlist = json_array();
		plist = json_array();
	}
	if (repaired && ctx->verbosity > 0)
		fprintf(stderr, "ckpt: completed %zu change%s left by an "
		    "interrupted registry command\n", repaired,
		    repaired == 1 ? "" : "s");
	nprob = ckpt_registry_problem_count(r);
	for (size_t i = 0; i < nprob; i++) {
		const struct ckpt_finding *x = ckpt_registry_problem(r, i);

		if (plist)
			json_array_append_new(plist, finding_json(x));
		else
			print_finding(x);
		if (x->severity >= CKPT_SEV_WARNING)
			bad++;
	}
	for (size_t i = 0; i < ckpt_registry_version_count(r); i++)
		if (!verify_version(s, ckpt_registry_version(r, i), ctx, vlist))
			bad++;
	if (doc) {
		json_object_set_new(doc, "records", json_integer((json_int_t)
		    ckpt_registry_record_count(r)));
		json_object_set_new(doc, "head", ckpt_registry_head(r) ?
		    json_string(ckpt_registry_head(r)) : json_null());
		json_object_set_new(doc, "repaired", json_integer(
		    (json_int_t)repaired));
		json_object_set_new(doc, "signed", json_integer(
		    (json_int_t)nsigned));
		json_object_set_new(doc, "problems", plist);
		json_object_set_new(doc, "versions", vlist);
		json_object_set_new(doc, "ok", json_boolean(!bad));
		json_doc_print(doc);
	}
	if (bad)
		fprintf(stderr, "ckpt: WARNING: the registry did NOT verify: "
		    "%zu problem%s\n", bad, bad == 1 ? "" : "s");
	else if (ctx->verbosity > 0)
		fprintf(stderr, "ckpt: registry verified: %zu record%s, chain "
		    "intact (head %s), %zu version%s match their manifests, "
		    "%zu signed promotion%s\n",
		    ckpt_registry_record_count(r),
		    ckpt_registry_record_count(r) == 1 ? "" : "s",
		    ckpt_registry_head(r) ? ckpt_registry_head(r) : "none",
		    ckpt_registry_version_count(r),
		    ckpt_registry_version_count(r) == 1 ? "" : "s", nsigned,
		    nsigned == 1 ? "" : "s");
	ckpt_registry_free(r);
	ckpt_store_free(s);
	return bad ? CKPT_EXIT_FINDING : CKPT_EXIT_OK;
}

static int
cmd_log_main(int argc, char **argv, struct ctx *ctx)
{
	const char *model = NULL, *alias = NULL, *wait = "60";
	long long max = -1;
	bool verify = false, require_sig = false;
	struct strlist keys = { 0 };
	const struct opt opts[] = {
		OPT_STRING(0, "model", &model, "name", "only this model"),
		OPT_STRING(0, "alias", &alias, "alias", "only moves of this "
		    "alias"),
		OPT_INT('n', "max-count", &max, "n", "at most n records"),
		OPT_BOOL(0, "verify", &verify, "check the hash chain, the "
		    "state files and every version's files"),
		OPT_BOOL(0, "require-signature", &require_sig, "with "
		    "--verify: every promotion must be signed"),
		OPT_STRING_LIST(0, "key", &keys, "pubkey", "with --verify: "
		    "trust this public key too (repeatable)"),
		OPT_STRING(0, "lock-timeout", &wait, "sec", "wait up to sec "
		    "seconds for the store lock (default 60)"),
		OPT_END()
	};
	struct ckpt_registry *r;
	struct ckpt_store *s;
	struct ckpt_error err;
	int64_t w;
	int n, rc;

	n = parse_options(argc, argv, ctx, opts, log_usage);
	if (n)
		usage_error(log_usage, opts, "no arguments expected (--model "
		    "NAME selects a model)");
	if (model && ckpt_name_check(model, "model name", &err))
		die_usage("%s", err.message);
	ckpt_error_clear(&err);
	if (ckpt_duration_parse(wait, &w, &err))
		die_usage("--lock-timeout: %s", err.message);
	if (verify) {
		if (model || alias || max >= 0)
			usage_error(log_usage, opts, "--verify checks the "
			    "whole registry");
		rc = verify_registry(ctx, w > LONG_MAX / 1000 ? LONG_MAX :
		    (long)w * 1000, &keys, require_sig);
		strlist_release(&keys);
		return rc;
	}
	if (require_sig || keys.n)
		usage_error(log_usage, opts, "--require-signature and --key "
		    "go with --verify");
	s = store_open(ctx, false);
	ckpt_error_clear(&err);
	if ((rc = ckpt_registry_load(s, 0, &r, &err))) {
		error_ckpt(&err);
		ckpt_store_free(s);
		return exit_code_for(rc);
	}
	rc = show_log(ctx, r, model, alias, max);
	ckpt_registry_free(r);
	ckpt_store_free(s);
	return rc;
}

const struct cmd cmd_log = {
	.name = "log",
	.summary = "show the registry's history; --verify checks it",
	.fn = cmd_log_main,
};
