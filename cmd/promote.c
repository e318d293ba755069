/* SPDX-License-Identifier: MIT */
/*
 * promote.c - "ckpt promote": make a committed checkpoint version N of a
 * named model in the store's registry, move aliases to it, and roll an
 * alias back (ckpt_promote(), ckpt_registry_alias_op()).
 *
 * Choices: the checkpoint is always verified in full first, with the
 * store's allowlist and keys (as "ckpt verify" would), and a refusal --
 * it does not verify, or a --gate fails -- is exit 1, like a finding: CI
 * scripts read "1" as "the answer is no".  Promoting a manifest that is a
 * version of the model already is a no-op that says so (exit 0), so that
 * a retried job does not mint a new version.  --weights-only makes the
 * version the model weights alone, as model.safetensors converted from
 * the verified checkpoint without executing its pickle (ckpt convert's
 * writer), with a manifest of its own naming the checkpoint.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "secret.h"
#include "store.h"

#include <limits.h>
#include <math.h>

static const char *const promote_usage[] = {
	"ckpt promote [options] --model name ref|path",
	"ckpt promote [options] --rollback model --alias alias",
	NULL
};

static long
lock_timeout(const char *wait)
{
	struct ckpt_error err;
	int64_t w;

	ckpt_error_clear(&err);
	if (ckpt_duration_parse(wait, &w, &err))
		die_usage("--lock-timeout: %s", err.message);
	return w > LONG_MAX / 1000 ? LONG_MAX : (long)w * 1000;
}

static json_t *
moves_json(const struct ckpt_alias_move *mv, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:b}",
		    "alias", mv[i].alias, "from", mv[i].from ?
		    json_integer(mv[i].from) : json_null(), "to", mv[i].to ?
		    json_integer(mv[i].to) : json_null(), "changed",
		    mv[i].changed));
	return a;
}

static void
print_move(const struct ckpt_alias_move *mv)
{
	if (!mv->changed)
		printf("  %s: v%lld already\n", mv->alias, (long long)mv->to);
	else if (mv->from)
		printf("  %s: v%lld -> v%lld\n", mv->alias,
		    (long long)mv->from, (long long)mv->to);
	else
		printf("  %s: -> v%lld\n", mv->alias, (long long)mv->to);
}

/*
 * The checks ran on the staged links (registry/.staging/ID/v/NAME); a
 * person wants to hear about SRC/NAME, the same bytes.  Newly allocated.
 */
static char *
source_path(const char *p, const char *src)
{
	const char *stg = strstr(p, "/registry/.staging/"), *v;

	if (stg && (v = strstr(stg + 19, "/v/")))
		return xasprintf("%s/%s", src, v + 3);
	if (stg && (v = strstr(stg + 19, "/v")) && !v[2])
		return xstrdup(src);
	return xstrdup(p);
}

static json_t *
finding_json(const struct ckpt_finding *x, const char *src)
{
	static const char *const sev[] = { "info", "warning", "error" };
	char *path = x->path ? source_path(x->path, src) : NULL;
	json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s, s:o}", "id", x->id,
	    "severity", (unsigned)x->severity < 3 ? sev[x->severity] : "error",
	    "path", path ? json_string(path) : json_null(), "subject",
	    x->subject ? json_string(x->subject) : json_null(), "message",
	    x->message, "offset", x->offset >= 0 ? json_integer(x->offset) :
	    json_null());

	free(path);
	return o;
}

static json_t *
result_json(const struct ckpt_promote_result *r, const char *src)
{
	json_t *o = json_doc_new(), *gates = json_array(), *fs = json_array();
	const struct ckpt_report *rep = r->report;

	json_object_set_new(o, "model", json_string(r->model));
	json_object_set_new(o, "version", r->version ?
	    json_integer(r->version) : json_null());
	json_object_set_new(o, "created", json_boolean(r->created));
	json_object_set_new(o, "run", json_string(r->run));
	json_object_set_new(o, "step", json_integer(r->step));
	json_object_set_new(o, "manifest", json_string(r->manifest));
	json_object_set_new(o, "scope", json_string(r->scope ? r->scope :
	    "full"));
	json_object_set_new(o, "version_manifest", r->version_manifest ?
	    json_string(r->version_manifest) : json_null());
	if (r->version_manifest && r->created)
		json_object_set_new(o, "tensors", json_integer((json_int_t)
		    r->tensors));
	json_object_set_new(o, "path", r->path ? json_string(r->path) :
	    json_null());
	json_object_set_new(o, "storage", r->storage != CKPT_STORAGE_NONE ?
	    json_string(ckpt_storage_name(r->storage)) : json_null());
	json_object_set_new(o, "linked", json_integer((json_int_t)r->linked));
	json_object_set_new(o, "copied", json_integer((json_int_t)r->copied));
	json_object_set_new(o, "size", json_integer((json_int_t)r->size));
	json_object_set_new(o, "aliases", moves_json(r->moves, r->nmoves));
	for (size_t i = 0; i < r->ngates; i++) {
		const struct ckpt_gate_result *g = &r->gates[i];

		json_array_append_new(gates, json_pack("{s:s, s:s, s:o, s:b}",
		    "gate", g->expr, "metric", g->metric, "value",
		    isnan(g->value) ? json_null() : json_real(g->value), "ok",
		    g->ok));
	}
	json_object_set_new(o, "gates", gates);
	json_object_set_new(o, "verified", json_boolean(r->verified));
	for (size_t i = 0; rep && i < ckpt_report_finding_count(rep); i++)
		json_array_append_new(fs, finding_json(
		    ckpt_report_finding(rep, i), src));
	json_object_set_new(o, "findings", fs);
	json_object_set_new(o, "refused", r->refused ?
	    json_string(r->refused) : json_null());
	json_object_set_new(o, "signed_by", r->signer ?
	    json_string(r->signer) : json_null());
	return o;
}

/* Why a promotion was refused, on stderr: the failed checks. */
static void
print_refusal(const struct ckpt_promote_result *r, const char *src)
{
	const struct ckpt_report *rep = r->report;

	for (size_t i = 0; rep && i < ckpt_report_finding_count(rep); i++) {
		const struct ckpt_finding *x = ckpt_report_finding(rep, i);
		char *p;

		if (x->severity < CKPT_SEV_WARNING)
			continue;
		p = x->path ? source_path(x->path, src) : NULL;
		fprintf(stderr, "ckpt: %s%s%s [%s]\n", p ? p : "", p ? ": " :
		    "", x->message, x->id);
		free(p);
	}
	for (size_t i = 0; i < r->ngates; i++) {
		const struct ckpt_gate_result *g = &r->gates[i];

		if (g->ok)
			continue;
		if (isnan(g->value))
			fprintf(stderr, "ckpt: gate '%s' failed: the "
			    "checkpoint has no value for %s\n", g->expr,
			    g->metric);
		else {
			fprintf(stderr, "ckpt: gate '%s' failed: %s is ",
			    g->expr, g->metric);
			print_real(stderr, g->value);
			fputc('\n', stderr);
		}
	}
	fprintf(stderr, "ckpt: refused to promote %s@%lld: %s\n", r->run,
	    (long long)r->step, r->refused);
}

static void
print_result(const struct ckpt_promote_result *r, const char *arg)
{
	char sz[32];
	char *src = xasprintf("%s@%lld", r->run, (long long)r->step);
	char *what = strcmp(src, arg) ? xasprintf("%s (%s, %s)", arg, src,
	    r->manifest) : xasprintf("%s (%s)", src, r->manifest);

	human_size(r->size, sz, sizeof(sz));
	if (r->created && r->version_manifest)
		printf("promoted %s to %s v%lld: weights only, %llu tensor%s "
		    "in model.safetensors, %s (manifest %s)\n", what,
		    r->model, (long long)r->version,
		    (unsigned long long)r->tensors, r->tensors == 1 ? "" : "s",
		    sz, r->version_manifest);
	else if (r->created)
		printf("promoted %s to %s v%lld: %llu file%s, %s, %s\n", what,
		    r->model, (long long)r->version,
		    (unsigned long long)(r->linked + r->copied),
		    r->linked + r->copied == 1 ? "" : "s", sz,
		    r->storage == CKPT_STORAGE_LINK ? "hard links" :
		    r->storage == CKPT_STORAGE_COPY ? "copies" :
		    "hard links and copies");
	else
		printf("%s v%lld holds this checkpoint%s already (%s): no new "
		    "version\n", r->model, (long long)r->version,
		    r->version_manifest ? "'s weights" : "", r->manifest);
	if (r->signer)
		printf("  signed by key %s\n", r->signer);
	for (size_t i = 0; i < r->nmoves; i++)
		print_move(&r->moves[i]);
	free(src);
	free(what);
}

static int
do_rollback(struct ctx *ctx, const char *model, struct strlist *aliases,
    const char *note, long timeout)
{
	struct ckpt_store *s = store_open(ctx, false);
	struct ckpt_alias_move mv;
	struct ckpt_error err;
	struct ckpt_alias_options o = { .version = CKPT_ALIAS_OPTIONS_VERSION,
	    .op = CKPT_ALIAS_ROLLBACK,
	    .model = model, .alias = aliases->items[0], .note = note,
	    .lock_timeout_ms = timeout };
	int rc;

	ckpt_error_clear(&err);
	rc = ckpt_registry_alias_op(s, &o, &mv, &err);
	ckpt_store_free(s);
	if (rc) {
		error_ckpt(&err);
		return rc == CKPT_ERR_NOTFOUND ? CKPT_EXIT_USAGE :
		    exit_code_for(rc);
	}
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "model", json_string(model));
		json_object_set_new(doc, "aliases", moves_json(&mv, 1));
		json_doc_print(doc);
	} else if (ctx->verbosity > 0) {
		printf("rolled back %s@%s: v%lld -> v%lld\n", model, mv.alias,
		    (long long)mv.from, (long long)mv.to);
	}
	return CKPT_EXIT_OK;
}

static int
cmd_promote_main(int argc, char **argv, struct ctx *ctx)
{
	const char *model = NULL, *note = NULL, *rollback = NULL;
	const char *metric = NULL, *mode = NULL, *wait = "60";
	const char *sign_key = NULL, *passfile = NULL;
	struct strlist aliases = { 0 }, gates = { 0 }, keys = { 0 };
	struct strlist allow = { 0 };
	bool copy = false, require_sig = false, sign = false;
	bool weights_only = false;
	const struct opt opts[] = {
		OPT_STRING(0, "model", &model, "name", "the model to add a "
		    "version to"),
		OPT_STRING_LIST(0, "alias", &aliases, "alias", "move this "
		    "alias to the version (repeatable)"),
		OPT_STRING(0, "note", &note, "text", "why; kept in the "
		    "history"),
		OPT_STRING_LIST(0, "gate", &gates, "expr", "refuse unless "
		    "the metric passes: METRIC<X, <=, >, >= (repeatable)"),
		OPT_BOOL(0, "weights-only", &weights_only, "the version holds "
		    "the model weights alone, as safetensors"),
		OPT_BOOL(0, "copy", &copy, "copy the files: a self-contained "
		    "version (default: hard links)"),
		OPT_STRING(0, "rollback", &rollback, "model", "move --alias "
		    "back to the version it named before"),
		OPT_GROUP("verification"),
		OPT_BOOL(0, "require-signature", &require_sig, "refuse a "
		    "checkpoint without a valid signature"),
		OPT_STRING_LIST(0, "key", &keys, "pubkey", "trust this public "
		    "key (repeatable)"),
		OPT_STRING_LIST(0, "allow-global", &allow, "name", "admit this "
		    "pickle global: module.name or module.* (repeatable)"),
		OPT_GROUP("signing the promotion"),
		OPT_BOOL(0, "sign", &sign, "sign the promotion with "
		    "~/.config/ckpt/ckpt.key"),
		OPT_STRING(0, "sign-key", &sign_key, "seckey", "sign the "
		    "promotion with this secret key"),
		OPT_STRING(0, "passphrase-file", &passfile, "file", "read the "
		    "key's passphrase from the first line of file"),
		OPT_GROUP("which checkpoint"),
		OPT_STRING(0, "metric", &metric, "name", "the metric of "
		    "RUN@best (default: the run's policy)"),
		OPT_STRING(0, "mode", &mode, "min|max", "lower or higher is "
		    "better, for RUN@best"),
		OPT_STRING(0, "lock-timeout", &wait, "sec", "wait up to sec "
		    "seconds for the store lock (default 60)"),
		OPT_END()
	};
	struct ckpt_verify_options vo;
	struct ckpt_promote_options po;
	struct ckpt_promote_result *res = NULL;
	struct ckpt_store *s = NULL;
	struct ckpt_error err;
	char *path, *keypath = NULL, *pass = NULL;
	size_t passlen = 0;
	long timeout;
	int n, rc;

	n = parse_options(argc, argv, ctx, opts, promote_usage);
	timeout = lock_timeout(wait);
	if (rollback) {
		if (n || model || gates.n || copy || weights_only)
			usage_error(promote_usage, opts, "--rollback takes "
			    "--alias, --note and nothing else");
		if (aliases.n != 1)
			usage_error(promote_usage, opts, "--rollback needs "
			    "one --alias");
		rc = do_rollback(ctx, rollback, &aliases, note, timeout);
		strlist_release(&aliases);
		return rc;
	}
	if (n != 1)
		usage_error(promote_usage, opts, n ? "one checkpoint at a "
		    "time" : "which checkpoint? (RUN@STEP, RUN@best, a "
		    "path...)");
	if (!model)
		usage_error(promote_usage, opts, "--model is required");
	ckpt_error_clear(&err);
	if (ckpt_name_check(model, "model name", &err))
		usage_error(promote_usage, opts, "--model: %s", err.message);
	for (size_t i = 0; i < allow.n; i++) {
		ckpt_error_clear(&err);
		if (ckpt_allow_global_check(allow.items[i], &err))
			usage_error(promote_usage, opts, "--allow-global: %s",
			    err.message);
	}

	if (sign || sign_key) {
		struct passphrase_src src = { .file = passfile, .fd = -1 };
		bool encrypted;

		keypath = sign_key ? xstrdup(sign_key) : default_seckey();
		check_private_file(keypath, -1, "secret key", false);
		ckpt_error_clear(&err);
		if (ckpt_seckey_encrypted(keypath, &encrypted, &err))
			die_ckpt(&err);
		if (encrypted)
			pass = passphrase_read(&src, "Passphrase for the "
			    "secret key: ", false, &passlen);
	}

	s = store_open(ctx, false);
	path = resolve_checkpoint_arg(ctx, &s, argv[0], metric,
	    parse_metric_mode(mode), NULL);
	vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	vo.flags = require_sig ? CKPT_VERIFY_REQUIRE_SIGNATURE : 0;
	vo.store = ckpt_store_root(s);
	vo.keys = (const char *const *)keys.items;
	vo.nkeys = keys.n;
	vo.allow_globals = (const char *const *)allow.items;
	vo.nallow_globals = allow.n;
	po = (struct ckpt_promote_options)CKPT_PROMOTE_OPTIONS_INIT;
	po.model = model;
	po.aliases = (const char *const *)aliases.items;
	po.naliases = aliases.n;
	po.note = note;
	po.copy = copy;
	po.weights_only = weights_only;
	po.gates = (const char *const *)gates.items;
	po.ngates = gates.n;
	po.verify = &vo;
	po.lock_timeout_ms = timeout;
	po.sign_key = keypath;
	po.passphrase = pass;
	po.passlen = passlen;
	ckpt_error_clear(&err);
	rc = ckpt_promote(s, path, &po, &res, &err);
	passphrase_free(pass);
	free(keypath);
	if (rc == CKPT_ERR_REFUSED) {
		if (ctx->json)
			json_doc_print(result_json(res, path));
		print_refusal(res, path);
		rc = CKPT_EXIT_FINDING;
	} else if (rc) {
		error_ckpt(&err);
		rc = rc == CKPT_ERR_NOTFOUND ? CKPT_EXIT_ERROR :
		    exit_code_for(rc);
	} else {
		if (ctx->json)
			json_doc_print(result_json(res, path));
		else if (ctx->verbosity > 0)
			print_result(res, argv[0]);
		rc = CKPT_EXIT_OK;
	}
	ckpt_promote_result_free(res);
	ckpt_store_free(s);
	free(path);
	strlist_release(&aliases);
	strlist_release(&gates);
	strlist_release(&keys);
	strlist_release(&allow);
	return rc;
}

const struct cmd cmd_promote = {
	.name = "promote",
	.summary = "make a checkpoint a version of a model; move aliases",
	.fn = cmd_promote_main,
};
