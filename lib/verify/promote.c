/* SPDX-License-Identifier: MIT */
/*
 * promote.c - ckpt_promote(): a committed checkpoint becomes version N of
 * a model (ckpt-promote(1)).
 *
 * What is deployed must be exactly what was checked, so the checkpoint's
 * files are first copied into a private staging prefix,
 * registry/.staging/ID/v, through the storage backend's copy (POSIX: a
 * hard link, else a synced copy; S3: a copy inside the service) and that
 * copy is verified where it is (a directory, or s3:// objects read by
 * ranged GETs): a link shares its inode with the source, so the bytes
 * verified are the bytes the version holds.  The verification runs
 * without the store lock (a full read of a 100 GB checkpoint must not
 * hold up training jobs' saves); only the commit takes it: the staging
 * prefix is committed to registry/MODEL/vN with the backend's
 * commit_if_absent (POSIX: rename with RENAME_NOREPLACE; S3: the objects
 * copied, the manifest put If-None-Match last), vN.json put, and the
 * history rewritten with the new records (registry.c).  A manifest
 * already promoted to the model is not promoted again, so a retried CI
 * job converges instead of minting v2, v3...
 *
 * --weights-only: after that verification, the verified copy is
 * converted (ckpt_convert(): the strict pickle reader, nothing executed)
 * into a second staging directory holding model.safetensors and a
 * manifest of its own naming the checkpoint as its source; that
 * directory becomes the version, and the history records both digests
 * (manifest: the version's, source_manifest: the checkpoint's).  On a
 * store on S3 the conversion writes into a spool of this host and is
 * uploaded into the staging prefix (convert_weights).  --sign signs the
 * promote record in memory and puts it and its signature through the
 * backend, on any store.
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "crypto/sign.h"
#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"
#include "verify/verify.h"

#define MAX_GATES	64

struct promote {
	struct ckpt_promote_result pub;
	struct ckpt_gate_result gates[MAX_GATES];
	char *gate_metric[MAX_GATES];
	struct ckpt_alias_move *moves;
	struct ckpt_report *report;
	char *model, *run, *manifest, *path, *refused;
	char *wmanifest;		/* weights-only: the version's */
	json_t *imported;		/* from the lineage, or NULL */
	char keyid[CKPT_KEYID_HEX];
};

void
ckpt_promote_result_free(struct ckpt_promote_result *res)
{
	struct promote *p = (struct promote *)res;

	if (!p)
		return;
	for (size_t i = 0; i < p->pub.ngates; i++)
		free(p->gate_metric[i]);
	free(p->moves);
	ckpt_report_free(p->report);
	free(p->model);
	free(p->run);
	free(p->manifest);
	free(p->wmanifest);
	json_decref(p->imported);
	free(p->path);
	free(p->refused);
	free(p);
}

/* ------------------------------------------------------------------ */
/* Gates                                                                */
/* ------------------------------------------------------------------ */

/* "val_loss<2.5" -> metric, operator, bound; CKPT_ERR_INVALID else. */
static int
gate_parse(const char *expr, char **metric, char op[3], double *bound,
    struct ckpt_error *err)
{
	const char *o = strpbrk(expr, "<>"), *num;
	char *end;
	size_t n;

	if (!o || o == expr)
		goto bad;
	op[0] = *o;
	op[1] = o[1] == '=' ? '=' : '\0';
	op[2] = '\0';
	num = o + (op[1] ? 2 : 1);
	n = (size_t)(o - expr);
	while (n && expr[n - 1] == ' ')
		n--;
	while (*num == ' ')
		num++;
	if (!n || !*num)
		goto bad;
	errno = 0;
	*bound = strtod(num, &end);
	while (*end == ' ')
		end++;
	if (errno || *end || !isfinite(*bound))
		goto bad;
	*metric = strndup(expr, n);
	return *metric ? CKPT_OK : ckpt_error_nomem(err);
bad:
	return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
	    "gate '%s': expected METRIC<X, METRIC<=X, METRIC>X or METRIC>=X",
	    expr);
}

static bool
gate_holds(const char *op, double v, double bound)
{
	if (isnan(v))
		return false;
	if (op[0] == '<')
		return op[1] ? v <= bound : v < bound;
	return op[1] ? v >= bound : v > bound;
}

/* Checks every gate against the manifest's metrics; false if any fails. */
static int
check_gates(struct promote *p, const struct ckpt_manifest *m,
    const struct ckpt_promote_options *o, bool *all_ok, struct ckpt_error *err)
{
	char *text = ckpt_manifest_get_json(m, "metrics");
	json_t *metrics = text ? json_loads(text, 0, NULL) : NULL;
	int rc = CKPT_OK;

	free(text);
	*all_ok = true;
	for (size_t i = 0; i < o->ngates; i++) {
		struct ckpt_gate_result *g = &p->gates[i];
		char op[3] = "";
		double bound = 0;
		json_t *v;

		if ((rc = gate_parse(o->gates[i], &p->gate_metric[i], op,
		    &bound, err)))
			break;
		p->pub.ngates = i + 1;
		g->expr = o->gates[i];
		g->metric = p->gate_metric[i];
		v = json_object_get(metrics, g->metric);
		g->value = json_is_number(v) ? json_number_value(v) : NAN;
		g->ok = gate_holds(op, g->value, bound);
		if (!g->ok)
			*all_ok = false;
	}
	json_decref(metrics);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Staging                                                              */
/* ------------------------------------------------------------------ */

/*
 * One file of the checkpoint at key src into the staging prefix vkey,
 * through the backend's copy: a hard link unless --copy or the
 * filesystem refuses one, then a synced copy (POSIX); a copy inside the
 * service (S3).
 */
static int
stage_file(struct ckpt_store *s, const char *src, const char *vkey,
    const char *rel, bool copy, struct promote *p, struct ckpt_error *err)
{
	char *from = NULL, *to = NULL, *path;
	bool shared = false;
	int rc;

	if (asprintf(&from, "%s/%s", src, rel) < 0 || asprintf(&to, "%s/%s",
	    vkey, rel) < 0) {
		free(from);
		return ckpt_error_nomem(err);
	}
	rc = s->ops->copy(s->be, from, to, copy ? CKPT_BE_COPY_INDEPENDENT :
	    0, &shared, err);
	if (rc == CKPT_ERR_NOTFOUND && (path = ckpt_store_path(s, from))) {
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, path, -1,
		    "missing: the checkpoint is incomplete");
		free(path);
	}
	if (!rc && shared)
		p->pub.linked++;
	else if (!rc)
		p->pub.copied++;
	free(from);
	free(to);
	return rc;
}

/* registry/.staging/ID (returned in *top) and its v (in *vkey): store
 * keys, made through the backend. */
static int
stage_dirs(struct ckpt_store *s, char **top, char **vkey,
    struct ckpt_error *err)
{
	char *id = ckpt_reg_staging_name();
	int rc = CKPT_OK;

	*top = *vkey = NULL;
	if (!id || asprintf(top, REG_STAGING "/%s", id) < 0 ||
	    asprintf(vkey, "%s/v", *top) < 0)
		rc = ckpt_error_nomem(err);
	free(id);
	if (!rc)
		rc = s->ops->mkprefix(s->be, REG_DIR, NULL, err);
	if (!rc)
		rc = s->ops->mkprefix(s->be, REG_STAGING, NULL, err);
	if (!rc)
		rc = s->ops->mkprefix(s->be, *top, NULL, err);
	if (!rc)
		rc = s->ops->mkprefix(s->be, *vkey, NULL, err);
	return rc;
}

/* Links (or copies) the manifest's files, the manifest and its
 * signature from the checkpoint at key src into vkey, durably. */
static int
stage_checkpoint(struct ckpt_store *s, const struct ckpt_manifest *m,
    const char *src, const char *vkey, bool copy, struct promote *p,
    struct ckpt_error *err)
{
	struct ckpt_be_info bi;
	char *sig;
	int rc = CKPT_OK;

	for (size_t i = 0; !rc && i < ckpt_manifest_file_count(m); i++) {
		const struct ckpt_manifest_file *f = ckpt_manifest_file(m, i);

		rc = stage_file(s, src, vkey, f->path, copy, p, err);
		if (!rc)
			p->pub.size += f->size;
	}
	if (rc)
		return rc;
	{
		/* the manifest and signature are not payload: uncounted */
		uint64_t l = p->pub.linked, c = p->pub.copied;

		rc = stage_file(s, src, vkey, CKPT_MANIFEST_NAME, copy, p,
		    err);
		if (asprintf(&sig, "%s/%s.sig", src, CKPT_MANIFEST_NAME) < 0)
			return ckpt_error_nomem(err);
		if (!rc && !s->ops->stat(s->be, sig, &bi, NULL))
			rc = stage_file(s, src, vkey, CKPT_MANIFEST_NAME ".sig",
			    copy, p, err);
		free(sig);
		p->pub.linked = l;
		p->pub.copied = c;
	}
	return rc ? rc : s->ops->stage_sync(s->be, vkey, err);
}

/* ------------------------------------------------------------------ */
/* Weights only                                                         */
/* ------------------------------------------------------------------ */

#define WEIGHTS_NAME	"model.safetensors"

/* The file entry of schema 2 for path: size, whole-file SHA-256 and the
 * digests of ranges of at most CKPT_CHUNK_SIZE covering it once. */
static int
weights_file_entry(const char *path, json_t **out, struct ckpt_error *err)
{
	struct ckpt_hash_job job;
	struct ckpt_range_digest *ranges = NULL;
	char hex[2 * CKPT_SHA256_BYTES + 8];
	json_t *list;
	struct stat st;
	size_t n = 0;
	int rc;

	if (stat(path, &st))
		return ckpt_error_errno(err, path, "cannot stat");
	if ((rc = ckpt_ranges_plan((uint64_t)st.st_size, NULL, NULL, 0, 0,
	    &ranges, &n, err)))
		return rc;
	memset(&job, 0, sizeof(job));
	job.path = path;
	job.whole = true;
	job.nranges = n;
	job.ranges = ranges;
	if ((rc = ckpt_hash_files(&job, 1, 0, NULL, NULL, err))) {
		free(ranges);
		return rc;
	}
	list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		memcpy(hex, "sha256:", 7);
		ckpt_hex(ranges[i].sha256, CKPT_SHA256_BYTES, hex + 7);
		json_array_append_new(list, json_pack("{s:I, s:I, s:s}",
		    "offset", (json_int_t)ranges[i].offset, "size",
		    (json_int_t)(ranges[i].end - ranges[i].offset), "sha256",
		    hex));
	}
	free(ranges);
	memcpy(hex, "sha256:", 7);
	ckpt_hex(job.sha256, CKPT_SHA256_BYTES, hex + 7);
	*out = list ? json_pack("{s:s, s:I, s:s, s:s, s:o}", "path",
	    WEIGHTS_NAME, "size", (json_int_t)job.size, "format",
	    "safetensors", "sha256", hex, "ranges", list) : NULL;
	return *out ? CKPT_OK : ckpt_error_nomem(err);
}

/*
 * The manifest of a weights-only version: the checkpoint's run, step,
 * epoch, metrics and config (what the version was promoted on), scope
 * "weights-only", and "source" naming the checkpoint and what the
 * conversion chose and left out.
 */
static int
write_weights_manifest(const struct ckpt_manifest *m, const char *wdir,
    json_t *report, struct ckpt_error *err)
{
	static const char *const copied[] = { "run", "step", "epoch",
	    "metrics", "config", "tags" };
	char now[32], *text, *path = ckpt_join(wdir, CKPT_MANIFEST_NAME);
	char *file = ckpt_join(wdir, WEIGHTS_NAME);
	json_t *src = json_loads(ckpt_manifest_json(m), 0, NULL), *doc, *fe;
	int rc;

	doc = json_object();
	if (!path || !file || !src || !doc) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if ((rc = weights_file_entry(file, &fe, err)))
		goto out;
	for (size_t i = 0; i < sizeof(copied) / sizeof(*copied); i++)
		if (json_object_get(src, copied[i]))
			json_object_set(doc, copied[i], json_object_get(src,
			    copied[i]));
	ckpt_iso_time((int64_t)time(NULL), now, sizeof(now));
	json_object_set_new(doc, "schema", json_integer(CKPT_MANIFEST_SCHEMA));
	json_object_set_new(doc, "created", json_string(now));
	json_object_set_new(doc, "host", json_string(ckpt_hostname()));
	json_object_set_new(doc, "user", json_string(ckpt_user_name()));
	json_object_set_new(doc, "ckpt_version", json_string(ckpt_version()));
	json_object_set_new(doc, "scope", json_string("weights-only"));
	json_object_set_new(doc, "files", json_pack("[o]", fe));
	/* what was chosen and tied; what was left out only counted (an
	 * optimizer's state is thousands of names) */
	json_object_set_new(doc, "source", json_pack("{s:O, s:O, s:s, s:O, "
	    "s:O, s:I}", "run", json_object_get(src, "run"), "step",
	    json_object_get(src, "step"), "manifest", ckpt_manifest_digest(m),
	    "roots", json_object_get(report, "roots") ?
	    json_object_get(report, "roots") : json_null(), "aliases",
	    json_object_get(report, "aliases") ? json_object_get(report,
	    "aliases") : json_null(), "left_out", (json_int_t)
	    json_array_size(json_object_get(report, "left_out"))));
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	rc = text ? ckpt_write_file_atomic(path, text, strlen(text), err) :
	    ckpt_error_nomem(err);
	free(text);
out:
	json_decref(src);
	json_decref(doc);
	free(path);
	free(file);
	return rc;
}

/*
 * Converts the verified staging copy vdir (links to the checkpoint's
 * files: the bytes verified are the bytes read) into wdir: the weights
 * as model.safetensors, never executing a pickle, and the manifest of
 * the version; then verifies wdir against that manifest, which checks
 * the safetensors file's structure as verify would.
 */
static int
stage_weights(const struct ckpt_manifest *m, const char *vdir,
    const char *wdir, const struct ckpt_promote_options *o, struct promote *p,
    struct ckpt_error *err)
{
	struct ckpt_convert_options co;
	struct ckpt_verify_options vo;
	struct ckpt_manifest *wm = NULL;
	struct ckpt_report *rep = NULL;
	char *out = ckpt_join(wdir, WEIGHTS_NAME), *text = NULL, src[64];
	json_t *report = NULL;
	int rc;

	if (!out)
		return ckpt_error_nomem(err);
	if (mkdir(wdir, 0755)) {
		free(out);
		return ckpt_error_errno(err, wdir, "cannot create directory");
	}
	co = (struct ckpt_convert_options)CKPT_CONVERT_OPTIONS_INIT;
	snprintf(src, sizeof(src), "%.40s@%lld", p->run,
	    (long long)p->pub.step);
	co.source_name = src;
	if (o->verify) {
		co.allow_globals = o->verify->allow_globals;
		co.nallow_globals = o->verify->nallow_globals;
	}
	rc = ckpt_convert(vdir, out, &co, &text, err);
	if (!rc && !(report = json_loads(text, 0, NULL)))
		rc = ckpt_error_nomem(err);
	if (!rc)
		rc = write_weights_manifest(m, wdir, report, err);
	if (!rc)
		rc = ckpt_fsync_dir(wdir, err);
	if (!rc)
		rc = ckpt_manifest_read(wdir, &wm, err);
	if (!rc && !(p->wmanifest = strdup(ckpt_manifest_digest(wm))))
		rc = ckpt_error_nomem(err);
	if (!rc) {
		vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
		vo.manifest_digest = p->wmanifest;
		vo.flags = CKPT_VERIFY_NO_CACHE;
		rc = ckpt_verify(wdir, &vo, &rep, err);
	}
	if (!rc && !ckpt_report_ok(rep))
		rc = ckpt_error_set(err, CKPT_ERR_INTERNAL, out, -1, "the "
		    "safetensors file written does not verify");
	if (!rc) {
		p->pub.version_manifest = p->wmanifest;
		p->pub.tensors = json_array_size(json_object_get(report,
		    "tensors"));
		p->pub.size = ckpt_manifest_file(wm, 0)->size;
		p->pub.linked = 0;
		p->pub.copied = 1;
	}
	ckpt_report_free(rep);
	ckpt_manifest_free(wm);
	json_decref(report);
	free(text);
	free(out);
	return rc;
}

/*
 * The converted weights of wdir (a local directory) uploaded into the
 * staging prefix wkey of a store on S3: model.safetensors in parts whose
 * SHA-256 the service checks, then the manifest.  commit_locked publishes
 * wkey as any staged version, its manifest put If-None-Match last.
 */
static int
upload_weights(struct ckpt_store *s, const char *wdir, const char *wkey,
    struct ckpt_error *err)
{
	char *file = ckpt_join(wdir, WEIGHTS_NAME);
	char *man = ckpt_join(wdir, CKPT_MANIFEST_NAME), *mkey = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!file || !man || !(mkey = ckpt_join(wkey, CKPT_MANIFEST_NAME)))
		rc = ckpt_error_nomem(err);
	else
		rc = ckpt_store_stage_upload(s, wkey, WEIGHTS_NAME, file, NULL,
		    NULL, NULL, err);
	if (!rc)
		rc = ckpt_read_file(man, CKPT_MANIFEST_MAX, &text, &len, err);
	if (!rc)
		rc = s->ops->put(s->be, mkey, text, len, 0, err);
	free(text);
	free(mkey);
	free(man);
	free(file);
	return rc;
}

/*
 * --weights-only: the verified staging copy at vkey converted into the
 * staging prefix top/w (*wkey).  In a local store the conversion writes
 * there; a store on S3 has no paths, so it writes into a private spool of
 * this host ($TMPDIR), is verified there, and is uploaded (upload_weights)
 * -- the same staging, verification and commit as a local store's.
 */
static int
convert_weights(struct ckpt_store *s, const struct ckpt_manifest *m,
    const char *top, const char *vkey, const struct ckpt_promote_options *o,
    struct promote *p, char **wkey, struct ckpt_error *err)
{
	bool local = s->ops == &ckpt_backend_posix;
	char *vdir = ckpt_store_path(s, vkey), *wdir = NULL, *spool = NULL;
	int rc = CKPT_OK;

	if (!vdir || asprintf(wkey, "%s/w", top) < 0) {
		*wkey = NULL;
		rc = ckpt_error_nomem(err);
	} else if (local) {
		if (!(wdir = ckpt_store_path(s, *wkey)))
			rc = ckpt_error_nomem(err);
	} else if (!(rc = ckpt_store_s3_spool(s, &spool, err)) &&
	    !(wdir = ckpt_join(spool, "w"))) {
		rc = ckpt_error_nomem(err);
	}
	if (!rc)
		rc = stage_weights(m, vdir, wdir, o, p, err);
	if (!rc && !local)
		rc = upload_weights(s, wdir, *wkey, err);
	if (spool)
		(void)ckpt_rm_rf(spool);
	free(spool);
	free(vdir);
	free(wdir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Commit                                                               */
/* ------------------------------------------------------------------ */

static int
add_move(struct promote *p, const struct ckpt_alias_move *mv,
    struct ckpt_error *err)
{
	struct ckpt_alias_move *m = reallocarray(p->moves, p->pub.nmoves + 1,
	    sizeof(*m));

	if (!m)
		return ckpt_error_nomem(err);
	p->moves = m;
	m[p->pub.nmoves++] = *mv;
	p->pub.moves = p->moves;
	return CKPT_OK;
}

/* Alias records for each requested alias not naming version already. */
static int
plan_aliases(struct ckpt_registry *r, const struct ckpt_promote_options *o,
    int64_t version, struct promote *p, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (size_t i = 0; !rc && i < o->naliases; i++) {
		const struct ckpt_reg_alias *a = ckpt_registry_find_alias(r,
		    o->model, o->aliases[i]);
		struct ckpt_alias_move mv = { o->aliases[i], a ? a->version :
		    0, version, false };
		json_t *rec;

		if (a && o->version >= 2 && o->aliases_if_absent)
			mv.to = a->version;	/* kept where it is */
		if (mv.from != mv.to) {
			rec = json_pack("{s:s, s:s, s:s, s:o, s:I}", "action",
			    "alias", "model", o->model, "alias",
			    o->aliases[i], "from", mv.from ?
			    json_integer(mv.from) : json_null(), "to",
			    (json_int_t)version);
			if (!rec)
				return ckpt_error_nomem(err);
			if (o->note)
				json_object_set_new(rec, "note",
				    json_string(o->note));
			rc = ckpt_reg_append(r, rec, err);
			json_decref(rec);
			mv.changed = true;
		}
		if (!rc)
			rc = add_move(p, &mv, err);
	}
	return rc;
}

/*
 * Signs the promote record just appended (the last one): its line goes
 * to vN.record, the signature to vN.record.sig, before the commit (a
 * crash leaves them to the repair, as vN.json).  Signed in memory and
 * put through the backend, so that it works on any store: the key is
 * read (and a wrong passphrase refused) before anything is written.
 */
static int
sign_record(struct ckpt_store *s, struct ckpt_registry *r,
    const struct ckpt_promote_options *o, struct promote *p,
    struct ckpt_error *err)
{
	const struct ckpt_reg_record *rec = ckpt_registry_record(r,
	    ckpt_registry_record_count(r) - 1);
	unsigned char digest[CKPT_SHA256_BYTES];
	char *key = ckpt_reg_model_key(o->model, "v%lld.record",
	    p->pub.version), *skey = NULL, *sig = NULL;
	char comment[CKPT_NAME_MAX + 64];
	size_t len = strlen(rec->json), siglen = 0;
	int rc;

	if (!key || asprintf(&skey, "%s.sig", key) < 0) {
		free(key);
		return ckpt_error_nomem(err);
	}
	snprintf(comment, sizeof(comment), "promotion %s v%lld", o->model,
	    (long long)p->pub.version);
	rc = ckpt_hash_buffer(CKPT_HASH_SHA256, rec->json, len, digest, err);
	if (!rc)
		rc = ckpt_sign_manifest_mem(o->sign_key, o->passphrase,
		    o->passlen, digest, comment, &sig, &siglen, p->keyid, err);
	if (!rc)
		rc = s->ops->put(s->be, key, rec->json, len, 0, err);
	if (!rc)
		rc = s->ops->put(s->be, skey, sig, siglen, 0, err);
	if (!rc)
		p->pub.signer = p->keyid;
	free(sig);
	free(key);
	free(skey);
	return rc;
}

/*
 * The lineage of an imported version: it must verify and end in the
 * promotion of this manifest; p->imported gets what the new record says
 * of it.
 */
static int
check_lineage(const struct ckpt_promote_options *o, struct promote *p,
    struct ckpt_error *err)
{
	struct ckpt_registry *l = NULL;
	const struct ckpt_reg_record *last;
	const char *why = NULL;
	struct ckpt_error pe;
	int rc;

	ckpt_error_clear(&pe);
	if ((rc = ckpt_registry_parse(o->lineage, o->lineage_len, "lineage",
	    0, &l, &pe)))
		return rc == CKPT_ERR_NOMEM ? ckpt_error_nomem(err) :
		    ckpt_error_set(err, CKPT_ERR_FORMAT, "lineage", pe.offset,
		    "the version's history does not verify: %s", pe.message);
	last = ckpt_registry_record(l, ckpt_registry_record_count(l) - 1);
	if (!last)
		why = "it is empty";
	else
		rc = ckpt_reg_check_lineage(o->lineage, o->lineage_len,
		    "lineage", last->model, p->wmanifest ? p->wmanifest :
		    p->manifest, &why);
	if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	else if (why)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, "lineage", -1,
		    "the version's history: %s", why);
	else if (!(p->imported = json_pack("{s:s, s:I, s:s}", "model",
	    last->model, "version", (json_int_t)last->version, "record",
	    last->digest)))
		rc = ckpt_error_nomem(err);
	ckpt_registry_free(l);
	return rc;
}

static int
write_lineage(struct ckpt_store *s, const struct ckpt_promote_options *o,
    int64_t version, struct ckpt_error *err)
{
	char *key = ckpt_reg_model_key(o->model, "v%lld.lineage.jsonl",
	    version);
	int rc = key ? s->ops->put(s->be, key, o->lineage, o->lineage_len, 0,
	    err) : ckpt_error_nomem(err);

	free(key);
	return rc;
}

/* The state files of an uncommitted version, on the way out. */
static void
unlink_record(struct ckpt_store *s, const char *model, int64_t version)
{
	static const char *const names[] = { "v%lld.record.sig",
	    "v%lld.record", "v%lld.lineage.jsonl", "v%lld.json" };

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(names); i++) {
		char *key = ckpt_reg_model_key(model, names[i], version);

		if (key)
			(void)s->ops->remove(s->be, key, NULL);
		free(key);
	}
}

static enum ckpt_storage
storage_of(const struct promote *p)
{
	if (!p->pub.copied)
		return CKPT_STORAGE_LINK;
	return p->pub.linked ? CKPT_STORAGE_MIXED : CKPT_STORAGE_COPY;
}

/*
 * Under the lock: the new version (unless the manifest is one already),
 * then the aliases, then the one commit.
 */
static int
commit_locked(struct ckpt_store *s, struct ckpt_registry *r,
    const struct ckpt_promote_options *o, const char *vkey, struct promote *p,
    struct ckpt_error *err)
{
	const struct ckpt_reg_version *v = o->weights_only ?
	    ckpt_reg_find_weights(r, o->model, p->manifest) :
	    ckpt_reg_find_manifest(r, o->model, p->manifest);
	char *rel = NULL, *dest = NULL, *mdir = NULL;
	json_t *rec;
	bool placed = false;
	int rc;

	if ((rc = ckpt_reg_repair_locked(s, r, NULL, err)))
		return rc;
	if (v) {
		p->pub.version = v->version;
		p->pub.size = v->size;
		if (v->source_manifest && !p->wmanifest &&
		    !(p->wmanifest = strdup(v->manifest)))
			return ckpt_error_nomem(err);
		p->pub.version_manifest = p->wmanifest;
		p->pub.storage = v->storage == CKPT_STORAGE_COPY ||
		    v->storage == CKPT_STORAGE_MIXED ? v->storage :
		    CKPT_STORAGE_LINK;
		if (!(p->path = strdup(v->path)))
			return ckpt_error_nomem(err);
		p->pub.path = p->path;
		rc = plan_aliases(r, o, v->version, p, err);
		goto commit;
	}
	p->pub.created = true;
	p->pub.version = ckpt_reg_version_count(r, o->model) + 1;
	p->pub.storage = storage_of(p);
	rel = ckpt_reg_version_rel(o->model, p->pub.version);
	if (!rel || !(dest = ckpt_store_path(s, rel)) ||
	    asprintf(&mdir, REG_DIR "/%s", o->model) < 0) {
		mdir = NULL;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rec = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:I, s:I}",
	    "action", "promote", "model", o->model, "version",
	    (json_int_t)p->pub.version, "run", p->run, "step",
	    (json_int_t)p->pub.step, "manifest", o->weights_only ?
	    p->wmanifest : p->manifest, "path", rel,
	    "storage", ckpt_storage_name(p->pub.storage), "size", (json_int_t)p->pub.size,
	    "nfiles", (json_int_t)(p->pub.linked + p->pub.copied));
	if (!rec) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (o->note)
		json_object_set_new(rec, "note", json_string(o->note));
	if (p->imported)
		json_object_set(rec, "imported", p->imported);
	if (o->weights_only) {
		json_object_set_new(rec, "scope", json_string("weights-only"));
		json_object_set_new(rec, "source_manifest",
		    json_string(p->manifest));
	}
	rc = ckpt_reg_append(r, rec, err);
	json_decref(rec);
	if (!rc)
		rc = s->ops->mkprefix(s->be, mdir, NULL, err);
	/* The version's files at registry/MODEL/vN, whole or not at all:
	 * POSIX renames the staging directory (RENAME_NOREPLACE); S3 copies
	 * the staged objects and puts the manifest If-None-Match: * last. */
	if (!rc)
		rc = s->ops->commit_if_absent(s->be, vkey, rel, err);
	placed = !rc;
	if (!rc)
		rc = s->ops->flush(s->be, mdir, err);
	/* before the commit: prune protects the source from now on */
	if (!rc)
		rc = ckpt_reg_write_version_file(s,
		    ckpt_registry_find_version(r, o->model, p->pub.version),
		    err);
	if (!rc && p->imported)
		rc = write_lineage(s, o, p->pub.version, err);
	if (!rc && o->sign_key)
		rc = sign_record(s, r, o, p, err);
	if (!rc)
		rc = plan_aliases(r, o, p->pub.version, p, err);
	if (!rc) {
		p->path = dest;
		p->pub.path = p->path;
		dest = NULL;
	}
commit:
	if (!rc)
		rc = ckpt_reg_commit(s, r, err);
	if (ckpt_reg_is_committed(r) && p->pub.nmoves)
		(void)ckpt_reg_write_aliases_file(s, r, o->model, NULL);
	if (rc && placed && !ckpt_reg_is_committed(r)) {
		/* not committed: leave the store as it was */
		unlink_record(s, o->model, p->pub.version);
		if (s->ops->remove_tree(s->be, rel, NULL))
			(void)ckpt_reg_to_trash(s, rel, "uncommitted", NULL);
		(void)s->ops->flush(s->be, mdir, NULL);
	}
out:
	free(rel);
	free(dest);
	free(mdir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* ckpt_promote                                                         */
/* ------------------------------------------------------------------ */

/*
 * A store key of a checkpoint: under runs/ or registry/ (not its
 * staging, unless staged: an imported weights-only version, where
 * ckpt_import() staged it), no empty, "." or ".." component.
 */
static bool
key_is_checkpoint(const char *key, bool staged)
{
	const char *c;

	if (strncmp(key, CKPT_STORE_RUNS "/", strlen(CKPT_STORE_RUNS) + 1) &&
	    (strncmp(key, REG_DIR "/", strlen(REG_DIR) + 1) ||
	    !strncmp(key, REG_DIR "/.", strlen(REG_DIR) + 2)) &&
	    !(staged && !strncmp(key, REG_STAGING "/",
	    strlen(REG_STAGING) + 1)))
		return false;
	for (c = key; c; c = strchr(c, '/')) {
		size_t n;

		c += *c == '/';
		n = strcspn(c, "/");
		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' &&
		    c[1] == '.'))
			return false;
	}
	return true;
}

/*
 * src must be a checkpoint inside the store (runs/ or registry/; staged:
 * see key_is_checkpoint); *key gets its store key.  A local store:
 * resolved with realpath first (a path through a link into the store is
 * the store's).
 */
static int
check_inside(struct ckpt_store *s, const char *src, bool staged,
    char **key, struct ckpt_error *err)
{
	const char *k = NULL;
	char *root = NULL, *real = NULL;
	int rc = CKPT_OK;

	*key = NULL;
	if (s->ops == &ckpt_backend_posix) {
		root = realpath(ckpt_store_root(s), NULL);
		real = realpath(src, NULL);
		if (!root || !real)
			rc = ckpt_error_errno(err, src, "cannot resolve");
		else if (!strncmp(real, root, strlen(root)) &&
		    real[strlen(root)] == '/')
			k = real + strlen(root) + 1;
	} else {
		k = ckpt_store_key(s, src);
	}
	if (!rc && (!k || !key_is_checkpoint(k, staged)))
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, src, -1,
		    "not a checkpoint of the store %s (save it first)",
		    root ? root : ckpt_store_root(s));
	if (!rc && !(*key = strdup(k)))
		rc = ckpt_error_nomem(err);
	free(root);
	free(real);
	return rc;
}

/* The manifest of the checkpoint at key, through the backend. */
static int
read_manifest(struct ckpt_store *s, const char *key,
    struct ckpt_manifest **m, struct ckpt_error *err)
{
	char *mkey = NULL, *mpath = NULL, *dir = ckpt_store_path(s, key);
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!dir || asprintf(&mkey, "%s/%s", key, CKPT_MANIFEST_NAME) < 0 ||
	    asprintf(&mpath, "%s/%s", dir, CKPT_MANIFEST_NAME) < 0) {
		free(dir);
		free(mkey);
		return ckpt_error_nomem(err);
	}
	rc = s->ops->read(s->be, mkey, CKPT_MANIFEST_MAX, &text, &len, err);
	if (rc == CKPT_ERR_NOTFOUND)
		ckpt_error_set(err, CKPT_ERR_NOTFOUND, mpath, -1, "no manifest "
		    "(not a committed checkpoint)");
	if (!rc)
		rc = ckpt_manifest_parse(text, len, mpath, dir, m, err);
	free(dir);
	free(mkey);
	free(mpath);
	return rc;
}

/* An imported weights-only version: recreated as it came. */
static bool
imported_weights(const struct ckpt_promote_options *o)
{
	return o->weights_only && o->lineage;
}

/*
 * What only a local store can do yet: recreate an imported weights-only
 * version (import refuses those on S3 before it gets here; see
 * ckpt-import(1)).
 */
static int
check_backend(struct ckpt_store *s, const struct ckpt_promote_options *o,
    struct ckpt_error *err)
{
	if (!imported_weights(o) || s->ops == &ckpt_backend_posix)
		return CKPT_OK;
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
	    "%s: an imported weights-only version is recreated in a local "
	    "store only, not on %s yet", ckpt_store_root(s), s->ops->name);
}

/*
 * The imported weights-only version m: its manifest is the version's
 * (p->wmanifest), its "source" names the checkpoint it was converted
 * from (p->manifest, as a promotion here records it).
 */
static int
adopt_weights(const struct ckpt_manifest *m, struct promote *p,
    struct ckpt_error *err)
{
	json_t *j = json_loads(ckpt_manifest_json(m), 0, NULL);
	const char *scope = json_string_value(json_object_get(j, "scope"));
	const char *src = json_string_value(json_object_get(json_object_get(
	    j, "source"), "manifest"));
	int rc = CKPT_OK;

	if (!j)
		return ckpt_error_nomem(err);
	if (!scope || strcmp(scope, "weights-only") || !src ||
	    strncmp(src, "sha256:", 7) || strlen(src) != 7 + 64)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, ckpt_manifest_dir(m),
		    -1, "not a weights-only version (scope \"weights-only\" "
		    "and a source manifest digest)");
	else if (!(p->wmanifest = strdup(p->manifest)) ||
	    !(free(p->manifest), p->manifest = strdup(src)))
		rc = ckpt_error_nomem(err);
	if (!rc) {
		p->pub.manifest = p->manifest;
		p->pub.version_manifest = p->wmanifest;
	}
	json_decref(j);
	return rc;
}

static int
check_opts(const struct ckpt_promote_options *o, struct ckpt_error *err)
{
	int rc;

	if (!o || !o->model)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "which model?");
	if ((rc = ckpt_name_check(o->model, "model name", err)))
		return rc;
	if (o->weights_only && o->copy)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "--weights-only writes a new file: --copy means nothing "
		    "with it");
	if (o->ngates > MAX_GATES)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "more than %d gates", MAX_GATES);
	for (size_t i = 0; i < o->naliases; i++)
		if ((rc = ckpt_reg_alias_name_check(o->aliases[i], err)))
			return rc;
	return CKPT_OK;
}

static int
refuse(struct promote *p, const char *why, struct ckpt_error *err)
{
	if (!(p->refused = strdup(why)))
		return ckpt_error_nomem(err);
	p->pub.refused = p->refused;
	return ckpt_error_set(err, CKPT_ERR_REFUSED, NULL, -1, "%s", why);
}

/* Stages and verifies; *ok false (p says why) when it does not verify. */
static int
stage_and_verify(struct ckpt_store *s, const struct ckpt_manifest *m,
    const char *src, const struct ckpt_promote_options *o, const char *vkey,
    struct promote *p, bool *ok, struct ckpt_error *err)
{
	struct ckpt_verify_options vo;
	char *vdir;
	int rc;

	*ok = false;
	if ((rc = stage_checkpoint(s, m, src, vkey, o->copy, p, err)))
		return rc;
	/* Read where it is staged: a local directory, or objects read
	 * through ranged GETs (s3://) -- the bytes the version holds. */
	if (!(vdir = ckpt_store_path(s, vkey)))
		return ckpt_error_nomem(err);
	if (p->wmanifest) {
		/* the version's own file, once the staging is gone */
		p->pub.copied += p->pub.linked;
		p->pub.linked = 0;
	}
	if (o->verify)
		vo = *o->verify;
	else
		vo = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	/* full verify, always; the manifest must be the one read (an
	 * imported weights-only version's own) */
	vo.flags &= ~CKPT_VERIFY_FAST;
	vo.manifest_digest = p->wmanifest ? p->wmanifest : p->manifest;
	if (!vo.store)
		vo.store = ckpt_store_root(s);
	rc = ckpt_verify(vdir, &vo, &p->report, err);
	free(vdir);
	if (rc)
		return rc;
	p->pub.report = p->report;
	p->pub.verified = *ok = ckpt_report_ok(p->report);
	return CKPT_OK;
}

int
ckpt_promote(struct ckpt_store *s, const char *src,
    const struct ckpt_promote_options *o, struct ckpt_promote_result **out,
    struct ckpt_error *err)
{
	struct ckpt_manifest *m = NULL;
	struct ckpt_registry *r = NULL;
	struct promote *p;
	char *top = NULL, *vkey = NULL, *wkey = NULL, *key = NULL;
	bool gates_ok, ok, known;
	int rc;

	if ((rc = ckpt_options_check(o->version,
	    CKPT_PROMOTE_OPTIONS_VERSION, "ckpt_promote_options", err)))
		return rc;
	if ((rc = check_opts(o, err)) || (rc = check_backend(s, o, err)) ||
	    (rc = check_inside(s, src, imported_weights(o), &key, err)))
		return rc;
	if (!(p = calloc(1, sizeof(*p)))) {
		free(key);
		return ckpt_error_nomem(err);
	}
	p->pub.gates = p->gates;
	p->pub.scope = o->weights_only ? "weights-only" : "full";
	if (!(p->model = strdup(o->model))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	p->pub.model = p->model;
	if ((rc = read_manifest(s, key, &m, err)))
		goto out;
	p->run = strdup(ckpt_manifest_run(m) ? ckpt_manifest_run(m) : "");
	p->manifest = strdup(ckpt_manifest_digest(m));
	if (!p->run || !p->manifest) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (imported_weights(o) && (rc = adopt_weights(m, p, err)))
		goto out;
	p->pub.run = p->run;
	p->pub.step = ckpt_manifest_step(m);
	p->pub.manifest = p->manifest;
	if ((rc = ckpt_name_check(p->run, "run name in the manifest", err)))
		goto out;
	if ((rc = check_gates(p, m, o, &gates_ok, err)))
		goto out;
	if (o->lineage && (rc = check_lineage(o, p, err)))
		goto out;
	if ((rc = ckpt_registry_load(s, 0, &r, err)))
		goto out;
	known = o->weights_only ? ckpt_reg_find_weights(r, o->model,
	    p->manifest) : ckpt_reg_find_manifest(r, o->model, p->manifest);
	ckpt_registry_free(r);
	r = NULL;
	if (!known) {
		if ((rc = stage_dirs(s, &top, &vkey, err)) ||
		    (rc = stage_and_verify(s, m, key, o, vkey, p, &ok, err)))
			goto out;
		if (!ok) {
			rc = refuse(p, "the checkpoint does not verify", err);
			goto out;
		}
	}
	if (!gates_ok) {
		rc = refuse(p, "a promotion gate failed", err);
		goto out;
	}
	if (!known && o->weights_only && !imported_weights(o) &&
	    (rc = convert_weights(s, m, top, vkey, o, p, &wkey, err)))
		goto out;
	if ((rc = ckpt_store_lock(s, "promote", o->lock_timeout_ms, NULL,
	    err)))
		goto out;
	rc = ckpt_registry_load(s, 0, &r, err);
	if (!rc && !known &&
	    (o->weights_only ? ckpt_reg_find_weights(r, o->model, p->manifest) :
	    ckpt_reg_find_manifest(r, o->model, p->manifest)))
		known = true;	/* another process got there first */
	if (!rc && (known || vkey))
		rc = commit_locked(s, r, o, wkey ? wkey : vkey ? vkey : "", p,
		    err);
	else if (!rc)
		rc = ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL, -1,
		    "the registry changed under the lock");
	ckpt_store_unlock(s);
out:
	if (top)
		(void)s->ops->remove_tree(s->be, top, NULL);
	free(top);
	free(vkey);
	free(wkey);
	free(key);
	ckpt_manifest_free(m);
	ckpt_registry_free(r);
	if (rc && rc != CKPT_ERR_REFUSED) {
		ckpt_promote_result_free(&p->pub);
		return rc;
	}
	*out = &p->pub;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Signed promotions                                                    */
/* ------------------------------------------------------------------ */

static const struct ckpt_reg_record *
record_of(const struct ckpt_registry *r, const char *digest)
{
	for (size_t i = 0; i < ckpt_registry_record_count(r); i++)
		if (!strcmp(ckpt_registry_record(r, i)->digest, digest))
			return ckpt_registry_record(r, i);
	return NULL;
}

/* Keys trusted beside the --key files: a store's .ckpt/keys/ *.pub read
 * through its backend (a store on S3: objects). */
struct store_keys {
	struct ckpt_store *s;
	struct ckpt_key_text *texts;
	char **names, **bufs;
	size_t n;
	bool nomem;
};

static int
store_key_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct store_keys *k = arg;
	size_t l = strlen(name), len = 0;
	char *key = NULL, *text = NULL;
	void *t, *nm, *bf;

	if (info->type != CKPT_BE_FILE || l <= 4 || strcmp(name + l - 4,
	    ".pub"))
		return 0;
	if (asprintf(&key, CKPT_STORE_META "/keys/%s", name) < 0) {
		k->nomem = true;
		return 1;
	}
	/* an unreadable key is left out, as a key file that does not read */
	if (k->s->ops->read(k->s->be, key, 4096, &text, &len, NULL)) {
		free(key);
		return 0;
	}
	t = reallocarray(k->texts, k->n + 1, sizeof(*k->texts));
	if (t)
		k->texts = t;
	nm = reallocarray(k->names, k->n + 1, sizeof(*k->names));
	if (nm)
		k->names = nm;
	bf = reallocarray(k->bufs, k->n + 1, sizeof(*k->bufs));
	if (bf)
		k->bufs = bf;
	if (!t || !nm || !bf || !(k->names[k->n] = ckpt_store_path(k->s,
	    key))) {
		free(key);
		free(text);
		k->nomem = true;
		return 1;
	}
	free(key);
	k->bufs[k->n] = text;
	k->n++;
	return 0;
}

static int
store_keys_read(struct ckpt_store *s, struct store_keys *k,
    struct ckpt_error *err)
{
	memset(k, 0, sizeof(*k));
	k->s = s;
	/* a store without keys has none to trust; a listing error is one */
	(void)s->ops->list(s->be, CKPT_STORE_META "/keys", store_key_entry, k,
	    NULL);
	if (k->nomem)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < k->n; i++)
		k->texts[i] = (struct ckpt_key_text){ k->names[i], k->bufs[i],
		    strlen(k->bufs[i]) };
	return CKPT_OK;
}

static void
store_keys_free(struct store_keys *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->names[i]);
		free(k->bufs[i]);
	}
	free(k->names);
	free(k->bufs);
	free(k->texts);
}

/* A state file that is there but is no object to read (a link, not a
 * regular file, too large): a finding, not a failure to look. */
static bool
bad_object(int rc)
{
	return rc == CKPT_ERR_UNSAFE || rc == CKPT_ERR_FORMAT ||
	    rc == CKPT_ERR_LIMIT;
}

/*
 * One version's signed promotion; 1 when valid, 0 otherwise, negative
 * when the store could not be read.  vN.record and vN.record.sig are read
 * through the backend, so a store on S3 is checked as a local one.
 */
static int
check_one(struct ckpt_store *s, struct ckpt_registry *r,
    const struct ckpt_reg_version *v, char **keys, size_t nkeys,
    const struct store_keys *sk, bool require, struct ckpt_error *err)
{
	const struct ckpt_reg_record *rec = record_of(r, v->record);
	char *key = ckpt_reg_model_key(v->model, "v%lld.record", v->version);
	char *path = NULL, *sig = NULL, *skey = NULL, *text = NULL;
	char *sigtext = NULL, keyid[CKPT_KEYID_HEX], msg[512];
	unsigned char digest[CKPT_SHA256_BYTES];
	size_t len = 0, siglen = 0;
	const char *id = NULL;
	struct ckpt_error e;
	int rc, ok = 0;

	if (!key || !(path = ckpt_store_path(s, key)) ||
	    asprintf(&sig, "%s.sig", path) < 0 ||
	    asprintf(&skey, "%s.sig", key) < 0) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	ckpt_error_clear(&e);
	rc = s->ops->read(s->be, skey, 1 << 20, &sigtext, &siglen, &e);
	if (rc && rc != CKPT_ERR_NOTFOUND && !bad_object(rc)) {
		*err = e;
		goto out;
	}
	if (bad_object(rc)) {
		id = "promotion-signature-invalid";
		snprintf(msg, sizeof(msg), "%s", e.message);
	} else if (rc) {
		if (require) {
			id = "promotion-unsigned";
			snprintf(msg, sizeof(msg), "%s v%lld: the promotion is "
			    "not signed", v->model, (long long)v->version);
		}
	} else if ((rc = s->ops->read(s->be, key, 1 << 20, &text, &len,
	    &e)) && rc != CKPT_ERR_NOTFOUND && !bad_object(rc)) {
		*err = e;
		goto out;
	} else if (rc || !rec || strcmp(text, rec->json)) {
		id = "promotion-record-mismatch";
		snprintf(msg, sizeof(msg), "is not the history's record of "
		    "%s v%lld", v->model, (long long)v->version);
	} else if ((rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text, len, digest,
	    err))) {
		goto out;
	} else if ((rc = ckpt_signature_check_mem(path, digest, sig, sigtext,
	    siglen, (const char *const *)keys, nkeys, sk->texts, sk->n, keyid,
	    &e))) {
		id = rc == CKPT_ERR_NOTFOUND ?
		    "promotion-signature-unknown-key" :
		    "promotion-signature-invalid";
		snprintf(msg, sizeof(msg), "%s", e.message);
	} else {
		ok = 1;
	}
	rc = CKPT_OK;
	if (id && ckpt_reg_add_finding(r, id, CKPT_SEV_ERROR, path, NULL, -1,
	    msg))
		rc = ckpt_error_nomem(err);
out:
	free(text);
	free(sigtext);
	free(sig);
	free(skey);
	free(path);
	free(key);
	return rc ? rc : ok;
}

int
ckpt_registry_check_signatures(struct ckpt_store *s, struct ckpt_registry *r,
    const struct ckpt_verify_options *vo, bool require, size_t *nsigned,
    struct ckpt_error *err)
{
	struct ckpt_verify_options o;
	struct store_keys sk;
	char **keys = NULL;
	size_t nkeys = 0, n = 0;
	int rc = CKPT_OK;

	memset(&sk, 0, sizeof(sk));
	if (vo)
		o = *vo;
	else
		o = (struct ckpt_verify_options)CKPT_VERIFY_OPTIONS_INIT;
	/* A local store's keys are files (ckpt_vman_trusted_keys); another
	 * backend's are read through it, never from a local directory
	 * spelled like its URL. */
	if (s->ops == &ckpt_backend_posix) {
		if (!o.store)
			o.store = ckpt_store_root(s);
	} else {
		o.store = NULL;
		rc = store_keys_read(s, &sk, err);
	}
	if (!rc && ckpt_vman_trusted_keys(&o, NULL, &keys, &nkeys))
		rc = ckpt_error_nomem(err);
	for (size_t i = 0; !rc && i < ckpt_registry_version_count(r); i++) {
		int one = check_one(s, r, ckpt_registry_version(r, i), keys,
		    nkeys, &sk, require, err);

		if (one < 0)
			rc = one;
		else
			n += (size_t)one;
	}
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	store_keys_free(&sk);
	if (nsigned)
		*nsigned = n;
	return rc;
}
