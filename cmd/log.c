/* SPDX-License-Identifier: MIT */
/*
 * log.c - "ckpt log": the registry's history, newest first, as git log
 * shows commits: every promotion, alias move, rollback and alias
 * deletion with who, where, when, the checkpoint and its manifest
 * digest, and the note; and the run events worth auditing, which the
 * store records in the same hash-chained history: pins, unpins, prunes
 * (with what they removed) and saves with --force (which checkpoint
 * replaced which).
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

/* "r@1, r@2 and 3 more" for the removed list of a prune record. */
static char *
removed_text(const struct ckpt_reg_record *r)
{
	json_t *j = json_loads(r->json, 0, NULL), *e;
	json_t *list = json_object_get(j, "removed");
	size_t i, n = json_array_size(list);
	char *out = xstrdup("prune:");

	json_array_foreach(list, i, e) {
		char *t;

		if (i == 3 && n > 4) {
			t = xasprintf("%s and %zu more", out, n - 3);
			free(out);
			out = t;
			break;
		}
		t = xasprintf("%s%s %s@%lld", out, i ? "," : "",
		    json_string_value(json_object_get(e, "run")),
		    (long long)json_integer_value(json_object_get(e, "step")));
		free(out);
		out = t;
	}
	json_decref(j);
	return out;
}

/* "promote v3", or "import v3 (v1 there)" for an imported version. */
static char *
imported_text(const struct ckpt_reg_record *r)
{
	json_t *j = json_loads(r->json, 0, NULL);
	json_t *imp = json_object_get(j, "imported");
	char *out = imp ? xasprintf("import v%lld (v%lld there)",
	    (long long)r->version, (long long)json_integer_value(
	    json_object_get(imp, "version"))) : xasprintf("promote v%lld",
	    (long long)r->version);

	json_decref(j);
	return out;
}

static char *
change_text(const struct ckpt_reg_record *r)
{
	if (r->action == CKPT_REG_PRUNE)
		return removed_text(r);
	if (r->action == CKPT_REG_SAVE_FORCE)
		return xstrdup("save --force");
	if (r->action == CKPT_REG_PIN || r->action == CKPT_REG_UNPIN)
		return xstrdup(ckpt_reg_action_name(r->action));
	if (r->action == CKPT_REG_PROMOTE)
		return imported_text(r);
	if (r->action == CKPT_REG_ALIAS_DELETE)
		return xasprintf("delete %s (v%lld)", r->alias,
		    (long long)r->from);
	if (r->action == CKPT_REG_ROLLBACK)
		return xasprintf("rollback %s v%lld -> v%lld", r->alias,
		    (long long)r->from, (long long)r->to);
	if (r->from)
		return xasprintf("%s v%lld -> v%lld", r->alias,
		    (long long)r->from, (long long)r->to);
	return xasprintf("%s -> v%lld", r->alias, (long long)r->to);
}

/* Whether a prune record removed a checkpoint of run. */
static bool
removed_from(const struct ckpt_reg_record *r, const char *run)
{
	json_t *j, *e;
	size_t i;
	bool yes = false;

	if (r->action != CKPT_REG_PRUNE)
		return false;
	j = json_loads(r->json, 0, NULL);
	json_array_foreach(json_object_get(j, "removed"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "run")) ?
		    json_string_value(json_object_get(e, "run")) : "", run))
			yes = true;
	json_decref(j);
	return yes;
}

static bool
selected(const struct ckpt_reg_record *r, const char *model,
    const char *alias, const char *run)
{
	/* run events (no model) only in the unfiltered log */
	if (model && (!r->model || strcmp(r->model, model)))
		return false;
	if (run && (!r->run || strcmp(r->run, run)) &&
	    !removed_from(r, run))
		return false;
	return !alias || (r->alias && !strcmp(r->alias, alias));
}

static int
show_log(struct ctx *ctx, struct ckpt_registry *r, const char *model,
    const char *alias, const char *run, long long max)
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

		if (!selected(x, model, alias, run))
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
			char *ck = x->run ? xasprintf("%s@%lld%s%s", x->run,
			    (long long)x->step, *dg ? " " : "", dg) :
			    xstrdup("");

			table_add(&t, seq, x->time, who, x->model ? x->model :
			    "-", change, ck,
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
			    "%s\n", model || alias || run ?
			    " for this selection" :
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

/* "v3" or "3" -> 3; anything else 0. */
static int64_t
version_number(const char *s)
{
	int64_t v = 0;

	if (*s == 'v')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/*
 * Whether version v is one of sel[0..n): "MODEL" (every version),
 * "MODEL@vN", "MODEL@N" or "MODEL@ALIAS"; all when n is 0.
 */
static bool
version_selected(struct ckpt_registry *r, const struct ckpt_reg_version *v,
    int n, char **sel)
{
	if (!n)
		return true;
	for (int i = 0; i < n; i++) {
		const char *at = strchr(sel[i], '@');
		size_t mlen = at ? (size_t)(at - sel[i]) : strlen(sel[i]);
		const struct ckpt_reg_alias *a;
		char *model;
		int64_t want = 0;

		if (strlen(v->model) != mlen || strncmp(v->model, sel[i], mlen))
			continue;
		if (!at)
			return true;
		model = xasprintf("%.*s", (int)mlen, sel[i]);
		a = ckpt_registry_find_alias(r, model, at + 1);
		free(model);
		want = a ? a->version : version_number(at + 1);
		if (want == v->version)
			return true;
	}
	return false;
}

/* Each selection names a model, version or alias of r: exit 3 if not,
 * as a reference naming nothing is everywhere. */
static bool
selection_exists(struct ckpt_registry *r, int n, char **sel)
{
	bool ok = true;

	for (int i = 0; i < n; i++) {
		bool found = false;

		for (size_t k = 0; !found && k < ckpt_registry_version_count(r);
		    k++)
			found = version_selected(r, ckpt_registry_version(r, k),
			    1, &sel[i]);
		if (!found) {
			error("%s: no such model, version or alias in the "
			    "registry", sel[i]);
			ok = false;
		}
	}
	return ok;
}

int
registry_verify(struct ctx *ctx, long timeout, const struct strlist *keys,
    bool require_sig, int nsel, char **sel)
{
	struct ckpt_store *s = store_open(ctx, false);
	struct ckpt_registry *r = NULL;
	struct ckpt_error err;
	json_t *doc = NULL, *vlist = NULL, *plist = NULL;
	size_t repaired = 0, bad = 0, nprob, nsigned = 0, nchecked = 0;
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
	if (!selection_exists(r, nsel, sel)) {
		ckpt_registry_free(r);
		ckpt_store_free(s);
		return CKPT_EXIT_ERROR;
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
	for (size_t i = 0; i < ckpt_registry_version_count(r); i++) {
		const struct ckpt_reg_version *v = ckpt_registry_version(r, i);

		if (!version_selected(r, v, nsel, sel))
			continue;
		nchecked++;
		if (!verify_version(s, v, ctx, vlist))
			bad++;
	}
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
		    "intact (head %s), %zu version%s, "
		    "%zu signed promotion%s\n",
		    ckpt_registry_record_count(r),
		    ckpt_registry_record_count(r) == 1 ? "" : "s",
		    ckpt_registry_head(r) ? ckpt_registry_head(r) : "none",
		    nchecked, nchecked == 1 ? " matches its manifest" :
		    "s match their manifests", nsigned,
		    nsigned == 1 ? "" : "s");
	ckpt_registry_free(r);
	ckpt_store_free(s);
	return bad ? CKPT_EXIT_FINDING : CKPT_EXIT_OK;
}

static int
cmd_log_main(int argc, char **argv, struct ctx *ctx)
{
	const char *model = NULL, *alias = NULL, *run = NULL, *wait = "60";
	long long max = -1;
	bool verify = false, require_sig = false;
	struct strlist keys = { 0 };
	const struct opt opts[] = {
		OPT_STRING(0, "model", &model, "name", "only this model"),
		OPT_STRING(0, "alias", &alias, "alias", "only moves of this "
		    "alias"),
		OPT_STRING(0, "run", &run, "name", "only records about "
		    "checkpoints of this run"),
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
	if (run && ckpt_name_check(run, "run name", &err))
		die_usage("%s", err.message);
	if (run && (model || alias))
		usage_error(log_usage, opts, "--run and --model/--alias "
		    "select different records: not both");
	ckpt_error_clear(&err);
	if (ckpt_duration_parse(wait, &w, &err))
		die_usage("--lock-timeout: %s", err.message);
	if (verify) {
		if (model || alias || run || max >= 0)
			usage_error(log_usage, opts, "--verify checks the "
			    "whole registry");
		rc = registry_verify(ctx, w > LONG_MAX / 1000 ? LONG_MAX :
		    (long)w * 1000, &keys, require_sig, 0, NULL);
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
	rc = show_log(ctx, r, model, alias, run, max);
	ckpt_registry_free(r);
	ckpt_store_free(s);
	return rc;
}

const struct cmd cmd_log = {
	.name = "log",
	.summary = "show the registry's history; --verify checks it",
	.fn = cmd_log_main,
};
