/* SPDX-License-Identifier: MIT */
/*
 * verify.c - "ckpt verify": check checkpoints completely (integrity against
 * the manifest, structure, pickle safety, optionally numerics and the
 * signature) and say so in the manner of "sha256sum -c": one line per file
 * on stdout ("path: OK", "path: FAILED (reason)", "path: MISSING",
 * "path: EXTRA"), a summary on stderr, every finding in --json.
 *
 * Choices: -q drops the OK lines (sha256sum --quiet); -v adds every
 * finding's message on stderr.  Exit 0 when every checkpoint verified, 1
 * when any finding of severity warning or error was made (info findings,
 * such as "no manifest" or "good signature", never fail), 3 when any
 * argument could not be checked at all (no such path, reference or store,
 * permission denied): that outranks 1, since "not checked" must never
 * read as "checked, and bad" or worse as "fine".  Every other argument is
 * still checked and reported first, so one bad argument does not hide the
 * others' results.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const verify_usage[] = {
	"ckpt verify [options] ref|path ...",
	"ckpt verify [options] --all | --subset K/N",
	"ckpt verify [options] --registry [model[@version|alias] ...]",
	NULL
};

struct vopts {
	bool fast, numerics, require_sig, all, no_cache, registry;
	const char *subset, *metric, *mode, *oms, *oms_key;
	struct strlist keys, allow;
	unsigned int sub_k, sub_n;
};

struct tally {
	size_t checkpoints, bad_checkpoints, unchecked, removed;
	size_t files, ok, failed, missing, extra, unreadable;
	uint64_t hashed, cached;
	/* signature outcomes of the checkpoints that have a manifest */
	size_t sig_valid, sig_none, sig_invalid, sig_unknown;
	char sig_key[128];	/* the key of the valid ones, "" if several */
};

static json_t *
finding_json(const struct ckpt_finding *x)
{
	static const char *const sev[] = { "info", "warning", "error" };
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(x->id));
	json_object_set_new(o, "severity", json_string(
	    (unsigned)x->severity < 3 ? sev[x->severity] : "error"));
	json_object_set_new(o, "path", x->path ? json_string(x->path) :
	    json_null());
	json_object_set_new(o, "subject", x->subject ?
	    json_string(x->subject) : json_null());
	json_object_set_new(o, "message", json_string(x->message));
	json_object_set_new(o, "offset", x->offset >= 0 ?
	    json_integer(x->offset) : json_null());
	return o;
}

/* A name with a newline or backslash is escaped as sha256sum does: a
 * leading backslash and \n, \\ inside. */
static void
print_name(const char *s)
{
	if (strpbrk(s, "\\\n")) {
		putchar('\\');
		for (; *s; s++)
			if (*s == '\n')
				fputs("\\n", stdout);
			else if (*s == '\\')
				fputs("\\\\", stdout);
			else
				putchar(*s);
	} else {
		fputs(s, stdout);
	}
}

/*
 * The ids that only say "this file is bad" carry their reason in the
 * message: "unrecognised-format: a Git LFS pointer (run 'git lfs pull')",
 * "format-error: ... at byte 812".  The others (symlink, signature-missing)
 * say it all in the id.
 */
static void
print_generic_reason(const struct ckpt_finding *x)
{
	static const char *const generic[] = { "unrecognised-format",
		"format-error", "unreadable" };
	bool is_generic = false;
	const char *msg = x->message;
	size_t n = strlen(x->id);

	for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
		is_generic = is_generic || !strcmp(x->id, generic[i]);
	if (!is_generic || !msg || !*msg)
		return;
	/* "unrecognised format: X" after the id says it twice. */
	if (!strncmp(msg, "unrecognised format: ", 21) && n == 19)
		msg += 21;
	printf(": %s", msg);
	if (x->offset > 0 && !strstr(x->message, "at byte"))
		printf(", at byte %lld", (long long)x->offset);
}

/* The finding behind a file's one-word reason, if there is one. */
static const struct ckpt_finding *
finding_for(const struct ckpt_report *r, const struct ckpt_verify_file *f)
{
	for (size_t i = 0; i < ckpt_report_finding_count(r); i++) {
		const struct ckpt_finding *x = ckpt_report_finding(r, i);

		if (x->path && !strcmp(x->path, f->path) &&
		    !strcmp(x->id, f->reason))
			return x;
	}
	return NULL;
}

static void
report_human(const struct ckpt_report *r, const struct ctx *ctx)
{
	for (size_t i = 0; i < ckpt_report_finding_count(r); i++) {
		const struct ckpt_finding *x = ckpt_report_finding(r, i);
		/* Checkpoint-level findings (manifest, signature) get a line
		 * of their own; file findings are summed up in the file's
		 * line below. */
		bool per_file = i >= ckpt_report_checkpoint_finding_count(r);

		/* A cause the one-line reason cannot hold is said too. */
		bool cause = !strcmp(x->id, "hard-link-modified");

		if (ctx->verbosity >= 2 || (x->severity >= CKPT_SEV_WARNING &&
		    ctx->verbosity >= 1 && (!per_file || cause)) ||
		    (ctx->verbosity >= 2 && x->severity == CKPT_SEV_INFO))
			fprintf(stderr, "ckpt: %s%s%s\n", x->path ? x->path :
			    "", x->path ? ": " : "", x->message);
		if (!per_file && x->severity >= CKPT_SEV_WARNING) {
			print_name(x->path ? x->path : ckpt_report_path(r));
			printf(": FAILED (%s%s%s", x->id, x->subject ?
			    " " : "", x->subject ? x->subject : "");
			print_generic_reason(x);
			fputs(")\n", stdout);
		}
	}
	for (size_t i = 0; i < ckpt_report_file_count(r); i++) {
		const struct ckpt_verify_file *f = ckpt_report_file(r, i);

		if (f->status == CKPT_VERIFY_OK && ctx->verbosity < 1)
			continue;
		print_name(f->path);
		printf(": %s", ckpt_verify_status_name(f->status));
		if (f->reason && f->status != CKPT_VERIFY_MISSING &&
		    f->status != CKPT_VERIFY_EXTRA) {
			const struct ckpt_finding *why = finding_for(r, f);

			printf(" (%s", f->reason);
			if (why)
				print_generic_reason(why);
			putchar(')');
		}
		putchar('\n');
	}
}

static json_t *
report_json(const struct ckpt_report *r)
{
	json_t *o = json_object(), *files = json_array(), *fs = json_array();
	const char *keyid;
	enum ckpt_sig_state sig = ckpt_report_signature(r, &keyid);
	json_t *sj = json_object();

	json_object_set_new(o, "path", json_string(ckpt_report_path(r)));
	json_object_set_new(o, "ok", json_boolean(ckpt_report_ok(r)));
	json_object_set_new(o, "manifest", ckpt_report_manifest(r) ?
	    json_string(ckpt_report_manifest(r)) : json_null());
	json_object_set_new(sj, "status",
	    json_string(ckpt_sig_state_name(sig)));
	json_object_set_new(sj, "key", keyid ? json_string(keyid) :
	    json_null());
	json_object_set_new(o, "signature", sj);
	json_object_set_new(o, "bytes_hashed",
	    json_integer((json_int_t)ckpt_report_bytes_hashed(r)));
	json_object_set_new(o, "bytes_cached",
	    json_integer((json_int_t)ckpt_report_bytes_cached(r)));
	for (size_t i = 0; i < ckpt_report_file_count(r); i++) {
		const struct ckpt_verify_file *f = ckpt_report_file(r, i);
		json_t *fj = json_object();

		json_object_set_new(fj, "path", json_string(f->path));
		json_object_set_new(fj, "name", json_string(f->name));
		json_object_set_new(fj, "status", json_string(
		    ckpt_verify_status_name(f->status)));
		json_object_set_new(fj, "reason", f->reason ?
		    json_string(f->reason) : json_null());
		json_object_set_new(fj, "format",
		    json_string(ckpt_format_name(f->format)));
		json_object_set_new(fj, "size", json_integer(
		    (json_int_t)f->size));
		json_object_set_new(fj, "sha256", f->has_digest ?
		    json_digest("sha256", f->sha256, CKPT_SHA256_BYTES) :
		    json_null());
		json_array_append_new(files, fj);
	}
	for (size_t i = 0; i < ckpt_report_finding_count(r); i++)
		json_array_append_new(fs, finding_json(
		    ckpt_report_finding(r, i)));
	json_object_set_new(o, "files", files);
	json_object_set_new(o, "findings", fs);
	return o;
}

static void
count_signature(struct tally *t, const struct ckpt_report *r)
{
	const char *key = NULL;
	enum ckpt_sig_state sig = ckpt_report_signature(r, &key);

	if (!ckpt_report_manifest(r))
		return;
	if (sig == CKPT_SIG_VALID) {
		if (!t->sig_valid++)
			snprintf(t->sig_key, sizeof(t->sig_key), "%s",
			    key ? key : "");
		else if (!key || strcmp(key, t->sig_key))
			t->sig_key[0] = '\0';
	} else if (sig == CKPT_SIG_NONE) {
		t->sig_none++;
	} else if (sig == CKPT_SIG_UNKNOWN_KEY) {
		t->sig_unknown++;
	} else {
		t->sig_invalid++;
	}
}

/* "; signature: valid (key K)" or "; signatures: 2 valid, 1 missing". */
static void
print_signatures(const struct tally *t)
{
	size_t total = t->sig_valid + t->sig_none + t->sig_invalid +
	    t->sig_unknown;
	const char *sep = "";

	if (!total)
		return;
	fprintf(stderr, "; signature%s: ", total == 1 ? "" : "s");
	if (t->sig_valid) {
		if (total > 1)
			fprintf(stderr, "%zu ", t->sig_valid);
		fprintf(stderr, "valid");
		if (t->sig_key[0])
			fprintf(stderr, " (key %s)", t->sig_key);
		sep = ", ";
	}
	if (t->sig_none) {
		fprintf(stderr, "%s", sep);
		if (total > 1)
			fprintf(stderr, "%zu ", t->sig_none);
		fprintf(stderr, "missing");
		sep = ", ";
	}
	if (t->sig_invalid) {
		fprintf(stderr, "%s", sep);
		if (total > 1)
			fprintf(stderr, "%zu ", t->sig_invalid);
		fprintf(stderr, "INVALID");
		sep = ", ";
	}
	if (t->sig_unknown) {
		fprintf(stderr, "%s", sep);
		if (total > 1)
			fprintf(stderr, "%zu ", t->sig_unknown);
		fprintf(stderr, "by an unknown key");
	}
}

static void
count(struct tally *t, const struct ckpt_report *r)
{
	count_signature(t, r);
	t->checkpoints++;
	if (!ckpt_report_ok(r))
		t->bad_checkpoints++;
	t->hashed += ckpt_report_bytes_hashed(r);
	t->cached += ckpt_report_bytes_cached(r);
	for (size_t i = 0; i < ckpt_report_file_count(r); i++) {
		t->files++;
		switch (ckpt_report_file(r, i)->status) {
		case CKPT_VERIFY_OK:
			t->ok++;
			break;
		case CKPT_VERIFY_MISSING:
			t->missing++;
			break;
		case CKPT_VERIFY_EXTRA:
			t->extra++;
			break;
		case CKPT_VERIFY_UNREADABLE:
			t->unreadable++;
			break;
		default:
			t->failed++;
		}
	}
}

/* A checkpoint that could not be checked at all, as a JSON entry. */
static json_t *
unchecked_json(const char *path, const struct ckpt_error *e)
{
	json_t *o = json_object(), *fs = json_array();
	struct ckpt_finding x = { "unreadable", CKPT_SEV_ERROR, path, NULL,
	    e->message, e->offset };

	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "manifest", json_null());
	json_object_set_new(o, "files", json_array());
	json_array_append_new(fs, finding_json(&x));
	json_object_set_new(o, "findings", fs);
	return o;
}

/*
 * Whether the listed checkpoint directory left runs/ since it was listed
 * (a prune moved it into the trash): gone, replaced by another directory,
 * or without its manifest.
 */
static bool
vanished(const char *path, const struct stat *listed)
{
	struct stat st;
	char *m;
	bool gone;

	if (lstat(path, &st))
		return errno == ENOENT || errno == ENOTDIR;
	if (st.st_ino != listed->st_ino || st.st_dev != listed->st_dev)
		return true;
	m = xasprintf("%s/%s", path, CKPT_MANIFEST_NAME);
	gone = lstat(m, &st) && errno == ENOENT;
	free(m);
	return gone;
}

/* A checkpoint removed while it was verified: reported, not failed. */
static void
report_removed(const char *shown, const struct ctx *ctx, struct tally *t,
    json_t *list)
{
	t->removed++;
	if (list) {
		json_t *o = json_object();

		json_object_set_new(o, "path", json_string(shown));
		json_object_set_new(o, "removed", json_true());
		json_array_append_new(list, o);
	} else if (ctx->verbosity >= 1) {
		print_name(shown);
		printf(": REMOVED (removed from the store during the run)\n");
	}
}

/*
 * Verifies one checkpoint.  listed: its directory as a store listing saw
 * it; a failure of one that has since left the store (prune beside
 * verify --all) is reported as removed, not as a failure.
 */
static int
verify_one(const char *path, const char *shown,
    const struct ckpt_verify_options *vo, const struct ctx *ctx,
    struct tally *t, json_t *list, const struct stat *listed)
{
	struct ckpt_report *r;
	struct ckpt_error e;
	struct progress pr;
	struct ckpt_verify_options o = *vo;
	int rc;

	ckpt_error_clear(&e);
	progress_start(&pr, ctx, shown, 0);
	o.progress = progress_callback;
	o.progress_data = &pr;
	rc = ckpt_verify(path, &o, &r, &e);
	progress_stop(&pr);
	if (listed && (rc || !ckpt_report_ok(r)) && vanished(path, listed)) {
		if (!rc)
			ckpt_report_free(r);
		report_removed(shown, ctx, t, list);
		return 0;
	}
	if (rc) {
		error_ckpt(&e);
		t->unchecked++;
		if (list)
			json_array_append_new(list, unchecked_json(shown, &e));
		return rc;
	}
	count(t, r);
	if (list)
		json_array_append_new(list, report_json(r));
	else
		report_human(r, ctx);
	ckpt_report_free(r);
	return 0;
}

static int
parse_subset(const char *s, unsigned int *k, unsigned int *n)
{
	unsigned long long a, b;
	char extra;

	if (sscanf(s, "%llu/%llu%c", &a, &b, &extra) != 2 || !b || !a ||
	    a > b || b > 1000000)
		return -1;
	*k = (unsigned int)a;
	*n = (unsigned int)b;
	return 0;
}

static void
summary(const struct tally *t, double secs, const struct ctx *ctx)
{
	char h[32];

	if (ctx->verbosity < 1 && !t->bad_checkpoints && !t->unchecked)
		return;
	human_size(t->hashed, h, sizeof(h));
	if (!t->bad_checkpoints && !t->unchecked) {
		fprintf(stderr, "ckpt: %zu checkpoint%s, %zu file%s verified "
		    "(%s hashed in %.1f s", t->checkpoints,
		    t->checkpoints == 1 ? "" : "s", t->files,
		    t->files == 1 ? "" : "s", t->hashed ? h : "nothing",
		    secs);
		if (t->cached) {
			char c[32];

			fprintf(stderr, ", %s from the digest cache",
			    human_size(t->cached, c, sizeof(c)));
		}
		fprintf(stderr, ")");
		if (t->removed)
			fprintf(stderr, "; %zu removed from the store during "
			    "the run", t->removed);
		print_signatures(t);
		fprintf(stderr, "\n");
		return;
	}
	fprintf(stderr, "ckpt: WARNING: %zu of %zu checkpoint%s did NOT "
	    "verify: %zu file%s OK, %zu FAILED, %zu MISSING, %zu EXTRA, "
	    "%zu UNREADABLE", t->bad_checkpoints + t->unchecked,
	    t->checkpoints + t->unchecked,
	    t->checkpoints + t->unchecked == 1 ? "" : "s", t->ok,
	    t->ok == 1 ? "" : "s", t->failed, t->missing, t->extra,
	    t->unreadable);
	if (t->unchecked)
		fprintf(stderr, "; %zu could not be checked", t->unchecked);
	if (t->removed)
		fprintf(stderr, "; %zu removed during the run", t->removed);
	print_signatures(t);
	fprintf(stderr, "\n");
}

static int
cmd_verify_main(int argc, char **argv, struct ctx *ctx)
{
	struct vopts v = { 0 };
	struct ckpt_verify_options o;
	struct tally t;
	json_t *doc = NULL, *list = NULL, *sum;
	double start;
	int n;
	const struct opt opts[] = {
		OPT_GROUP("what to check"),
		OPT_BOOL(0, "fast", &v.fast, "sizes and cached digests; no "
		    "zip CRCs"),
		OPT_BOOL(0, "numerics", &v.numerics, "count NaN, +Inf and "
		    "-Inf in every float tensor"),
		OPT_BOOL(0, "require-signature", &v.require_sig,
		    "fail a checkpoint whose manifest has no valid signature"),
		OPT_STRING_LIST(0, "key", &v.keys, "pubkey", "trust this "
		    "public key (repeatable)"),
		OPT_BOOL(0, "no-cache", &v.no_cache, "neither read nor "
		    "update the digest cache"),
		OPT_STRING_LIST(0, "allow-global", &v.allow, "name",
		    "admit this pickle global: module.name or module.* "
		    "(repeatable)"),
		OPT_STRING(0, "oms-bundle", &v.oms, "file", "also check this "
		    "OpenSSF model signing bundle"),
		OPT_STRING(0, "oms-key", &v.oms_key, "pem", "the ECDSA public "
		    "key of --oms-bundle"),
		OPT_GROUP("which checkpoints"),
		OPT_BOOL(0, "all", &v.all, "every checkpoint of the store"),
		OPT_BOOL(0, "registry", &v.registry, "the registry: its "
		    "history's hash chain and the named model versions (all "
		    "without names), as ckpt log --verify"),
		OPT_STRING(0, "subset", &v.subset, "K/N", "the K-th of N "
		    "slices of the store's checkpoints"),
		OPT_STRING(0, "metric", &v.metric, "name", "the metric of "
		    "RUN@best references"),
		OPT_STRING(0, "mode", &v.mode, "min|max", "whether the best "
		    "metric is the lowest (default) or the highest"),
		OPT_END()
	};

	n = parse_options(argc, argv, ctx, opts, verify_usage);
	if (v.registry) {
		int rc;

		if (v.all || v.subset || v.fast || v.numerics || v.no_cache ||
		    v.allow.n || v.oms || v.oms_key || v.metric || v.mode)
			usage_error(verify_usage, opts, "--registry checks "
			    "versions in full against their recorded "
			    "manifests; it takes only --require-signature "
			    "and --key");
		for (int i = 0; i < n; i++) {
			const char *at = strchr(argv[i], '@');
			char *model = xasprintf("%.*s", at ? (int)(at -
			    argv[i]) : (int)strlen(argv[i]), argv[i]);
			struct ckpt_error e;
			bool bad;

			ckpt_error_clear(&e);
			bad = ckpt_name_check(model, "model name", &e) || (at &&
			    ckpt_name_check(at + 1, "version or alias", &e));
			free(model);
			if (bad)
				usage_error(verify_usage, opts, "%s: %s",
				    argv[i], e.message);
		}
		rc = registry_verify(ctx, DEFAULT_LOCK_TIMEOUT_MS, &v.keys,
		    v.require_sig, n, argv);
		strlist_release(&v.keys);
		strlist_release(&v.allow);
		return rc;
	}
	die_for_incompatible_opts(v.all, "--all", v.subset != NULL,
	    "--subset");
	if (v.subset && parse_subset(v.subset, &v.sub_k, &v.sub_n))
		usage_error(verify_usage, opts, "--subset wants K/N with "
		    "1 <= K <= N, not '%s'", v.subset);
	if ((v.all || v.subset) && n)
		usage_error(verify_usage, opts, "--all and --subset take no "
		    "paths");
	if (!v.all && !v.subset && !n)
		usage_error(verify_usage, opts, "nothing to verify");
	if (!v.oms != !v.oms_key)
		usage_error(verify_usage, opts, "--oms-bundle and --oms-key "
		    "go together");
	check_allow_globals(verify_usage, opts, &v.allow);

	o = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	o.flags = (v.fast ? CKPT_VERIFY_FAST : 0) |
	    (v.numerics ? CKPT_VERIFY_NUMERICS : 0) |
	    (v.require_sig ? CKPT_VERIFY_REQUIRE_SIGNATURE : 0) |
	    (v.no_cache ? CKPT_VERIFY_NO_CACHE : 0);
	o.threads = ctx->jobs;
	o.store = NULL;	/* per checkpoint, below */
	o.keys = (const char *const *)v.keys.items;
	o.oms_bundle = v.oms;
	o.oms_key = v.oms_key;
	o.nkeys = v.keys.n;
	o.allow_globals = (const char *const *)v.allow.items;
	o.nallow_globals = v.allow.n;

	memset(&t, 0, sizeof(t));
	if (ctx->json) {
		doc = json_doc_new();
		list = json_array();
	}
	start = now_seconds();
	if (v.all || v.subset) {
		struct ckpt_store *s = cmd_store(ctx);
		struct ckpt_list *l;
		struct ckpt_error e;
		struct stat st;
		size_t listed;

		ckpt_error_clear(&e);
		if (ckpt_store_list(s, NULL, 0, &l, &e))
			die_ckpt(&e);
		for (size_t i = 0; i < ckpt_list_count(l); i++) {
			const struct ckpt_entry *en = ckpt_list_entry(l, i);
			char *shown;

			if (v.subset && !ckpt_verify_in_subset(en->run,
			    en->step, v.sub_k, v.sub_n))
				continue;
			shown = xasprintf("%s@%lld", en->run,
			    (long long)en->step);
			o.store = ckpt_store_root(s);
			/* A remote checkpoint has no inode to compare: a
			 * prune beside it shows as a failure. */
			if (!strncmp(en->path, "s3://", 5))
				verify_one(en->path, shown, &o, ctx, &t, list,
				    NULL);
			else if (lstat(en->path, &st))
				report_removed(shown, ctx, &t, list);
			else
				verify_one(en->path, shown, &o, ctx, &t, list,
				    &st);
			free(shown);
		}
		listed = ckpt_list_count(l);
		if (!listed)
			warning("the store holds no checkpoint");
		ckpt_list_free(l);
		if (!listed || !t.checkpoints) {
			/* An empty slice is not a failure: cron runs
			 * every slice of a small store too. */
			if (doc) {
				json_object_set_new(doc, "checkpoints", list);
				json_doc_print(doc);
			}
			strlist_release(&v.keys);
			strlist_release(&v.allow);
			return CKPT_EXIT_OK;
		}
	} else {
		struct ckpt_store *s = NULL;
		enum ckpt_metric_mode mode = parse_metric_mode(v.mode);

		for (int i = 0; i < n; i++) {
			struct ckpt_ref ref;
			char *path;
			int rc = resolve_checkpoint(ctx, &s, argv[i], v.metric,
			    mode, &ref, &path);

			if (rc == CKPT_EXIT_USAGE)
				exit(rc);
			if (rc) {
				struct ckpt_error e;

				ckpt_error_clear(&e);
				snprintf(e.message, sizeof(e.message), "no "
				    "such checkpoint or reference");
				t.unchecked++;
				if (list)
					json_array_append_new(list,
					    unchecked_json(argv[i], &e));
				continue;
			}
			/* A reference: its store's allow list; a path: the
			 * store enclosing it, found by verify, never the
			 * -C/$CKPT_STORE one of a path outside it. */
			o.store = ref.path ? ckpt_store_root(s) : NULL;
			o.manifest_digest = ref.manifest_digest;
			verify_one(path, ref.path ? argv[i] : path, &o, ctx, &t,
			    list, NULL);
			o.manifest_digest = NULL;
			ckpt_ref_release(&ref);
			free(path);
		}
		ckpt_store_free(s);
	}
	if (!t.checkpoints && t.removed && !t.unchecked) {
		/* every one was pruned meanwhile: nothing failed */
		if (doc) {
			json_object_set_new(doc, "checkpoints", list);
			json_doc_print(doc);
		}
		summary(&t, now_seconds() - start, ctx);
		strlist_release(&v.keys);
		strlist_release(&v.allow);
		return CKPT_EXIT_OK;
	}
	if (doc) {
		sum = json_object();
		json_object_set_new(sum, "checkpoints",
		    json_integer((json_int_t)(t.checkpoints + t.unchecked)));
		json_object_set_new(sum, "failed_checkpoints",
		    json_integer((json_int_t)(t.bad_checkpoints +
		    t.unchecked)));
		json_object_set_new(sum, "files", json_integer(
		    (json_int_t)t.files));
		json_object_set_new(sum, "ok", json_integer((json_int_t)t.ok));
		json_object_set_new(sum, "failed",
		    json_integer((json_int_t)t.failed));
		json_object_set_new(sum, "missing",
		    json_integer((json_int_t)t.missing));
		json_object_set_new(sum, "extra",
		    json_integer((json_int_t)t.extra));
		json_object_set_new(sum, "unreadable",
		    json_integer((json_int_t)t.unreadable));
		json_object_set_new(sum, "removed",
		    json_integer((json_int_t)t.removed));
		json_object_set_new(sum, "bytes_hashed",
		    json_integer((json_int_t)t.hashed));
		json_object_set_new(sum, "bytes_cached",
		    json_integer((json_int_t)t.cached));
		json_object_set_new(sum, "seconds",
		    json_real(now_seconds() - start));
		json_object_set_new(doc, "checkpoints", list);
		json_object_set_new(doc, "summary", sum);
		json_doc_print(doc);
	}
	summary(&t, now_seconds() - start, ctx);
	strlist_release(&v.keys);
	strlist_release(&v.allow);
	/* An UNREADABLE file (permission denied, I/O error) was not
	 * checked either. */
	return t.unchecked || t.unreadable ? CKPT_EXIT_ERROR :
	    t.bad_checkpoints ? CKPT_EXIT_FINDING : CKPT_EXIT_OK;
}

const struct cmd cmd_verify = {
	.name = "verify",
	.summary = "check checkpoints: integrity, structure, safety, "
	    "signatures",
	.fn = cmd_verify_main,
	.flags = CMD_STORE | CMD_JOBS,
};
