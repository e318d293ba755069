/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the model registry: its history (STORE/registry/
 * .history.jsonl), read as hostile input and checked as a hash chain,
 * replayed into versions and aliases; records appended and committed by
 * rewriting the file atomically; the state files (vN.json, aliases.json)
 * written from the replay and compared with it; and the repair that
 * finishes what a crash interrupted.
 *
 * Why the history is the truth and the rest copies of it: a change
 * touches several files (a version directory, vN.json, aliases.json, the
 * history) and no filesystem renames several files at once.  With one
 * file deciding, a crash leaves either the old history or the new one,
 * and the other files are brought in line by the next command that takes
 * the lock.  vN.json is written before the commit, so that prune, which
 * reads it, protects a version's source from the moment the version can
 * exist.
 *
 * The whole file is rewritten at each commit (the backend's put: write,
 * fsync, rename on POSIX; one PUT on S3): never a torn line, at the price
 * of O(size) per change -- a registry has thousands of records, not
 * millions.  Every file here is reached through the storage backend
 * (backend.h), so the registry works on any store the seam serves.
 */
#include "util/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"

#define HISTORY_MAX	((size_t)256 << 20)
#define STATE_MAX	((size_t)1 << 20)
#define STAGING_STALE	(24 * 3600)	/* another host's staging dir */

static const char *const storage_names[] = { NULL, "link", "copy",
	"mixed", "unknown" };

const char *
ckpt_storage_name(enum ckpt_storage s)
{
	return (unsigned)s < CKPT_ARRAY_SIZE(storage_names) ?
	    storage_names[s] : "unknown";
}

enum ckpt_storage
ckpt_storage_parse(const char *name)
{
	if (!name)
		return CKPT_STORAGE_NONE;
	for (size_t i = 1; i < CKPT_ARRAY_SIZE(storage_names) - 1; i++)
		if (!strcmp(name, storage_names[i]))
			return (enum ckpt_storage)i;
	return CKPT_STORAGE_UNKNOWN;
}

static const char *const reg_action_names[] = { "promote", "alias",
	"alias-delete", "rollback", "pin", "unpin", "prune", "save-force",
	"unknown" };

const char *
ckpt_reg_action_name(enum ckpt_reg_action a)
{
	return (unsigned)a < CKPT_ARRAY_SIZE(reg_action_names) ?
	    reg_action_names[a] : "unknown";
}

static enum ckpt_reg_action
reg_action_parse(const char *name)
{
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(reg_action_names) - 1; i++)
		if (!strcmp(name, reg_action_names[i]))
			return (enum ckpt_reg_action)i;
	return CKPT_REG_UNKNOWN;
}

struct rec {
	struct ckpt_reg_record pub;
	const char *action;		/* as recorded (in j) */
	json_t *j;
	char *digest;
	char *line;
};

struct ver {
	struct ckpt_reg_version pub;
	char *path;
};

struct ali {
	struct ckpt_reg_alias pub;
	int64_t *prev;
	size_t nprev, cap;
};

struct ckpt_registry {
	char *root;			/* store root, NULL after parse() */
	char *name;			/* the history's path, for errors */
	char *text;			/* the history, and appended lines */
	size_t len;
	size_t committed;		/* bytes of text on disk */
	size_t nlines;
	char *last_digest;		/* of the last line, NULL when none */
	struct rec *recs;
	size_t nrecs, rcap;
	struct ver *vers;
	size_t nvers, vcap;
	struct ali *alis;
	size_t nalis, acap;
	struct ckpt_finding *probs;
	size_t nprobs;
	bool lenient;
};

/* ------------------------------------------------------------------ */
/* Accessors                                                            */
/* ------------------------------------------------------------------ */

size_t
ckpt_registry_record_count(const struct ckpt_registry *r)
{
	return r->nrecs;
}

const struct ckpt_reg_record *
ckpt_registry_record(const struct ckpt_registry *r, size_t i)
{
	return i < r->nrecs ? &r->recs[i].pub : NULL;
}

size_t
ckpt_registry_version_count(const struct ckpt_registry *r)
{
	return r->nvers;
}

const struct ckpt_reg_version *
ckpt_registry_version(const struct ckpt_registry *r, size_t i)
{
	return i < r->nvers ? &r->vers[i].pub : NULL;
}

const struct ckpt_reg_version *
ckpt_registry_find_version(const struct ckpt_registry *r, const char *model,
    int64_t version)
{
	for (size_t i = 0; i < r->nvers; i++)
		if (r->vers[i].pub.version == version &&
		    !strcmp(r->vers[i].pub.model, model))
			return &r->vers[i].pub;
	return NULL;
}

size_t
ckpt_registry_alias_count(const struct ckpt_registry *r)
{
	return r->nalis;
}

const struct ckpt_reg_alias *
ckpt_registry_alias(const struct ckpt_registry *r, size_t i)
{
	return i < r->nalis ? &r->alis[i].pub : NULL;
}

static struct ali *
find_ali(const struct ckpt_registry *r, const char *model, const char *name)
{
	for (size_t i = 0; i < r->nalis; i++)
		if (!strcmp(r->alis[i].pub.name, name) &&
		    !strcmp(r->alis[i].pub.model, model))
			return &r->alis[i];
	return NULL;
}

const struct ckpt_reg_alias *
ckpt_registry_find_alias(const struct ckpt_registry *r, const char *model,
    const char *name)
{
	struct ali *a = find_ali(r, model, name);

	return a ? &a->pub : NULL;
}

size_t
ckpt_registry_problem_count(const struct ckpt_registry *r)
{
	return r->nprobs;
}

const struct ckpt_finding *
ckpt_registry_problem(const struct ckpt_registry *r, size_t i)
{
	return i < r->nprobs ? &r->probs[i] : NULL;
}

const char *
ckpt_registry_head(const struct ckpt_registry *r)
{
	return r->last_digest;
}

int64_t
ckpt_reg_version_count(const struct ckpt_registry *r, const char *model)
{
	int64_t n = 0;

	for (size_t i = 0; i < r->nvers; i++)
		if (!strcmp(r->vers[i].pub.model, model))
			n++;
	return n;
}

const struct ckpt_reg_version *
ckpt_reg_find_manifest(const struct ckpt_registry *r, const char *model,
    const char *digest)
{
	for (size_t i = 0; i < r->nvers; i++)
		if (!strcmp(r->vers[i].pub.model, model) &&
		    !r->vers[i].pub.source_manifest &&
		    !strcmp(r->vers[i].pub.manifest, digest))
			return &r->vers[i].pub;
	return NULL;
}

const struct ckpt_reg_version *
ckpt_reg_find_weights(const struct ckpt_registry *r, const char *model,
    const char *digest)
{
	for (size_t i = 0; i < r->nvers; i++)
		if (!strcmp(r->vers[i].pub.model, model) &&
		    r->vers[i].pub.source_manifest &&
		    !strcmp(r->vers[i].pub.source_manifest, digest))
			return &r->vers[i].pub;
	return NULL;
}

char *
ckpt_reg_version_rel(const char *model, int64_t version)
{
	char *p;

	if (asprintf(&p, REG_DIR "/%s/v%lld", model, (long long)version) < 0)
		return NULL;
	return p;
}

void
ckpt_registry_free(struct ckpt_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nrecs; i++) {
		json_decref(r->recs[i].j);
		free(r->recs[i].digest);
		free(r->recs[i].line);
	}
	free(r->recs);
	for (size_t i = 0; i < r->nvers; i++)
		free(r->vers[i].path);
	free(r->vers);
	for (size_t i = 0; i < r->nalis; i++)
		free(r->alis[i].prev);
	free(r->alis);
	for (size_t i = 0; i < r->nprobs; i++) {
		free((char *)r->probs[i].path);
		free((char *)r->probs[i].subject);
		free((char *)r->probs[i].message);
	}
	free(r->probs);
	free(r->last_digest);
	free(r->text);
	free(r->name);
	free(r->root);
	free(r);
}

/* ------------------------------------------------------------------ */
/* Problems: errors when strict, findings when lenient                  */
/* ------------------------------------------------------------------ */

int
ckpt_reg_add_finding(struct ckpt_registry *r, const char *id,
    enum ckpt_severity sev, const char *path, const char *subject,
    int64_t offset, const char *msg)
{
	struct ckpt_finding *p = reallocarray(r->probs, r->nprobs + 1,
	    sizeof(*p));

	if (!p)
		return -1;
	r->probs = p;
	p = &r->probs[r->nprobs];
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->severity = sev;
	p->offset = offset;
	p->path = path ? strdup(path) : NULL;
	p->subject = subject ? strdup(subject) : NULL;
	p->message = strdup(msg);
	r->nprobs++;
	if ((path && !p->path) || (subject && !p->subject) || !p->message)
		return -1;
	return 0;
}

/*
 * A problem with the history at a byte offset.  Strict: the error to
 * return.  Lenient: a finding, and 0 (the caller skips the record).
 */
static int problem(struct ckpt_registry *r, struct ckpt_error *err,
    const char *id, int64_t offset, const char *fmt, ...) CKPT_PRINTF(5, 6);

static int
problem(struct ckpt_registry *r, struct ckpt_error *err, const char *id,
    int64_t offset, const char *fmt, ...)
{
	char msg[CKPT_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!r->lenient)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, r->name, offset,
		    "%s", msg);
	if (ckpt_reg_add_finding(r, id, CKPT_SEV_ERROR, r->name, NULL, offset,
	    msg))
		return ckpt_error_nomem(err);
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Replay                                                               */
/* ------------------------------------------------------------------ */

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* An integer >= min, or -1 (absent, not an integer, too small). */
static int64_t
jint(json_t *o, const char *key, int64_t min)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min)
		return -1;
	return json_integer_value(v);
}

/* from/to of alias records: an integer >= 1 or null (0). */
static bool
jversion(json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (json_is_null(v)) {
		*out = 0;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool
is_digest(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) || strlen(s) != 7 + 64)
		return false;
	for (s += 7; *s; s++)
		if (!isdigit((unsigned char)*s) && (*s < 'a' || *s > 'f'))
			return false;
	return true;
}

static struct ali *
new_ali(struct ckpt_registry *r)
{
	if (r->nalis == r->acap) {
		size_t cap = r->acap ? 2 * r->acap : 8;
		struct ali *p = reallocarray(r->alis, cap, sizeof(*p));

		if (!p)
			return NULL;
		r->alis = p;
		r->acap = cap;
	}
	memset(&r->alis[r->nalis], 0, sizeof(r->alis[0]));
	return &r->alis[r->nalis++];
}

static int
ali_push(struct ali *a, int64_t v)
{
	if (a->nprev == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 4;
		int64_t *p = reallocarray(a->prev, cap, sizeof(*p));

		if (!p)
			return -1;
		a->prev = p;
		a->cap = cap;
	}
	a->prev[a->nprev++] = v;
	return 0;
}

static void
ali_remove(struct ckpt_registry *r, struct ali *a)
{
	size_t i = (size_t)(a - r->alis);

	free(a->prev);
	memmove(&r->alis[i], &r->alis[i + 1], (r->nalis - i - 1) *
	    sizeof(*a));
	r->nalis--;
}

/* Pointers into arrays that may have moved: set them again. */
static void
fix_pointers(struct ckpt_registry *r)
{
	for (size_t i = 0; i < r->nalis; i++) {
		r->alis[i].pub.previous = r->alis[i].prev;
		r->alis[i].pub.nprevious = r->alis[i].nprev;
	}
	for (size_t i = 0; i < r->nvers; i++)
		r->vers[i].pub.path = r->vers[i].path;
}

static int
replay_promote(struct ckpt_registry *r, struct rec *rc, char *why,
    size_t wlen)
{
	json_t *j = rc->j;
	const char *model = rc->pub.model, *path = jstr(j, "path");
	int64_t version = jint(j, "version", 1), step = jint(j, "step", 0);
	int64_t size = jint(j, "size", 0), nfiles = jint(j, "nfiles", 0);
	const char *storage = jstr(j, "storage");
	const char *scope = jstr(j, "scope"), *source = jstr(j,
	    "source_manifest");
	json_t *imported;
	char *want;
	struct ver *v;

	if (version != ckpt_reg_version_count(r, model) + 1) {
		snprintf(why, wlen, "version %lld of model '%s' is out of "
		    "sequence (expected %lld)", (long long)version, model,
		    (long long)ckpt_reg_version_count(r, model) + 1);
		return 1;
	}
	if (!jstr(j, "run") || ckpt_name_check(jstr(j, "run"), NULL, NULL) ||
	    step < 0 || !is_digest(jstr(j, "manifest")) || size < 0 ||
	    nfiles < 0 || !storage || (strcmp(storage, "link") &&
	    strcmp(storage, "copy") && strcmp(storage, "mixed"))) {
		snprintf(why, wlen, "a promote record needs run, step, "
		    "manifest, size, nfiles and storage");
		return 1;
	}
	imported = json_object_get(j, "imported");
	if (imported && (!json_is_object(imported) || jint(imported,
	    "version", 1) < 1 || !is_digest(jstr(imported, "record")) ||
	    !jstr(imported, "model") || ckpt_name_check(jstr(imported,
	    "model"), NULL, NULL))) {
		snprintf(why, wlen, "\"imported\" needs model, version and "
		    "record");
		return 1;
	}
	/* absent: a full version (records before weights-only) */
	if (json_object_get(j, "scope") ? !scope || strcmp(scope,
	    "weights-only") || !is_digest(source) :
	    json_object_get(j, "source_manifest") != NULL) {
		snprintf(why, wlen, "scope must be \"weights-only\" with a "
		    "source_manifest digest, or absent");
		return 1;
	}
	/* The path is implied by the name: a record cannot point a
	 * version anywhere else in (or out of) the store. */
	want = ckpt_reg_version_rel(model, version);
	if (!want)
		return -1;
	if (!path || strcmp(path, want)) {
		snprintf(why, wlen, "path must be \"%s\"", want);
		free(want);
		return 1;
	}
	if (r->nvers == r->vcap) {
		size_t cap = r->vcap ? 2 * r->vcap : 8;
		struct ver *p = reallocarray(r->vers, cap, sizeof(*p));

		if (!p) {
			free(want);
			return -1;
		}
		r->vers = p;
		r->vcap = cap;
	}
	v = &r->vers[r->nvers];
	memset(v, 0, sizeof(*v));
	v->path = r->root ? ckpt_join(r->root, want) : strdup(want);
	free(want);
	if (!v->path)
		return -1;
	r->nvers++;
	v->pub.model = model;
	v->pub.version = version;
	v->pub.run = jstr(j, "run");
	v->pub.step = step;
	v->pub.manifest = jstr(j, "manifest");
	v->pub.created = rc->pub.time;
	v->pub.user = rc->pub.user;
	v->pub.host = rc->pub.host;
	v->pub.note = rc->pub.note;
	v->pub.storage = ckpt_storage_parse(storage);
	v->pub.storage_raw = storage;
	v->pub.size = (uint64_t)size;
	v->pub.nfiles = (uint64_t)nfiles;
	v->pub.record = rc->digest;
	v->pub.scope = scope ? scope : "full";
	v->pub.source_manifest = source;
	if (imported) {
		v->pub.imported_version = jint(imported, "version", 1);
		v->pub.imported_record = jstr(imported, "record");
	}
	rc->pub.version = version;
	rc->pub.run = v->pub.run;
	rc->pub.step = step;
	rc->pub.manifest = v->pub.manifest;
	return 0;
}

static int
replay_alias(struct ckpt_registry *r, struct rec *rc, char *why, size_t wlen)
{
	const char *action = rc->action, *name = jstr(rc->j, "alias");
	struct ali *a;
	int64_t from, to, cur;

	if (!name || ckpt_name_check(name, NULL, NULL) ||
	    !jversion(rc->j, "from", &from) || !jversion(rc->j, "to", &to)) {
		snprintf(why, wlen, "an alias record needs alias, from and to");
		return 1;
	}
	rc->pub.alias = name;
	rc->pub.from = from;
	rc->pub.to = to;
	a = find_ali(r, rc->pub.model, name);
	cur = a ? a->pub.version : 0;
	if (from != cur) {
		snprintf(why, wlen, "alias '%s' moves from %lld but named %lld",
		    name, (long long)from, (long long)cur);
		return 1;
	}
	if (!strcmp(action, "alias-delete")) {
		if (!a || to) {
			snprintf(why, wlen, "deletes alias '%s', which does "
			    "not exist, or names a target", name);
			return 1;
		}
		ali_remove(r, a);
		return 0;
	}
	if (!to || !ckpt_registry_find_version(r, rc->pub.model, to) ||
	    to == from) {
		snprintf(why, wlen, "alias '%s' moves to %lld, not a new "
		    "version of model '%s'", name, (long long)to,
		    rc->pub.model);
		return 1;
	}
	if (!strcmp(action, "rollback")) {
		if (!a || !a->nprev || a->prev[a->nprev - 1] != to) {
			snprintf(why, wlen, "rollback of alias '%s' to %lld, "
			    "which it did not name just before", name,
			    (long long)to);
			return 1;
		}
		a->nprev--;
		a->pub.version = to;
		a->pub.record = rc->digest;
		return 0;
	}
	if (!a) {
		if (!(a = new_ali(r)))
			return -1;
		a->pub.model = rc->pub.model;
		a->pub.name = name;
	} else if (ali_push(a, cur)) {
		return -1;
	}
	a->pub.version = to;
	a->pub.record = rc->digest;
	return 0;
}

/* Run events: audited, with no effect on versions and aliases. */
static bool
is_run_event(const char *action)
{
	return !strcmp(action, "pin") || !strcmp(action, "unpin") ||
	    !strcmp(action, "prune") || !strcmp(action, "save-force");
}

static bool
valid_run_step(json_t *o, const char **run, int64_t *step)
{
	*run = jstr(o, "run");
	*step = jint(o, "step", 0);
	return *run && !ckpt_name_check(*run, NULL, NULL) && *step >= 0;
}

/*
 * pin/unpin: run, step; save-force: run, step, manifest (the new
 * checkpoint) and replaced (the old one's manifest, when readable);
 * prune: removed, a non-empty list of {run, step, size}.
 */
static int
replay_event(struct rec *rc, char *why, size_t wlen)
{
	json_t *j = rc->j, *removed = json_object_get(j, "removed"), *e;
	const char *action = rc->action, *run;
	int64_t step;
	size_t i;

	if (!strcmp(action, "prune")) {
		if (!json_is_array(removed) || !json_array_size(removed))
			goto bad;
		json_array_foreach(removed, i, e)
			if (!json_is_object(e) || !valid_run_step(e, &run,
			    &step) || jint(e, "size", 0) < 0)
				goto bad;
		return 0;
	}
	if (!valid_run_step(j, &run, &step))
		goto bad;
	if (!strcmp(action, "save-force") && (!is_digest(jstr(j,
	    "manifest")) || (json_object_get(j, "replaced") &&
	    !is_digest(jstr(j, "replaced")))))
		goto bad;
	rc->pub.run = run;
	rc->pub.step = step;
	rc->pub.manifest = jstr(j, "manifest");
	return 0;
bad:
	snprintf(why, wlen, "a %s record needs %s", action,
	    !strcmp(action, "prune") ? "a list of removed run, step and "
	    "size" : !strcmp(action, "save-force") ? "run, step and manifest "
	    "digests" : "run and step");
	return 1;
}

/*
 * Checks one line (chain, fields) and replays it.  Returns 0 (lenient:
 * also when the line was skipped as a problem), or an error.
 */
static int
add_line(struct ckpt_registry *r, const char *line, size_t len,
    int64_t offset, struct ckpt_error *err)
{
	unsigned char d[CKPT_SHA256_BYTES];
	char hex[2 * CKPT_SHA256_BYTES + 1], why[256];
	char *digest, *prev_digest = r->last_digest;
	json_error_t je;
	json_t *j;
	struct rec *rc;
	const char *action, *prev;
	int64_t seq;
	int rv, bad;

	r->nlines++;
	if (ckpt_hash_buffer(CKPT_HASH_SHA256, line, len, d, err))
		return err ? err->code : CKPT_ERR_INTERNAL;
	ckpt_hex(d, sizeof(d), hex);
	if (asprintf(&digest, "sha256:%s", hex) < 0)
		return ckpt_error_nomem(err);
	r->last_digest = digest;
	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		rv = problem(r, err, "history-malformed", offset +
		    (j ? 0 : je.position), "record %zu: %s", r->nlines,
		    j ? "not a JSON object" : je.text);
		goto out;
	}
	prev = jstr(j, "prev");
	if (prev_digest ? !prev || strcmp(prev, prev_digest) :
	    !json_is_null(json_object_get(j, "prev"))) {
		rv = problem(r, err, "history-chain-broken", offset,
		    "record %zu does not chain to the record before it (prev "
		    "%s, expected %s): the history was edited", r->nlines,
		    prev ? prev : "null", prev_digest ? prev_digest : "null");
		json_decref(j);
		goto out;
	}
	seq = jint(j, "seq", 1);
	action = jstr(j, "action");
	/* a run event names no model; every other record one */
	if (jint(j, "schema", 0) != REG_SCHEMA || seq != (int64_t)r->nlines ||
	    !action || !jstr(j, "time") || !jstr(j, "user") ||
	    !jstr(j, "host") || (is_run_event(action) ?
	    json_object_get(j, "model") != NULL : (!jstr(j, "model") ||
	    ckpt_name_check(jstr(j, "model"), NULL, NULL))) ||
	    (json_object_get(j, "note") && !jstr(j, "note"))) {
		rv = problem(r, err, "history-malformed", offset, "record %zu: "
		    "needs schema 1, seq %zu, action, time, user, host and a "
		    "valid model name (none for a run event)", r->nlines,
		    r->nlines);
		json_decref(j);
		goto out;
	}
	if (r->nrecs == r->rcap) {
		size_t cap = r->rcap ? 2 * r->rcap : 32;
		struct rec *p = reallocarray(r->recs, cap, sizeof(*p));

		if (!p) {
			json_decref(j);
			rv = ckpt_error_nomem(err);
			goto out;
		}
		r->recs = p;
		r->rcap = cap;
	}
	rc = &r->recs[r->nrecs];
	memset(rc, 0, sizeof(*rc));
	rc->j = j;
	rc->digest = strdup(digest);
	rc->line = strndup(line, len);
	if (!rc->digest || !rc->line) {
		free(rc->digest);
		free(rc->line);
		json_decref(j);
		rv = ckpt_error_nomem(err);
		goto out;
	}
	rc->pub.seq = seq;
	rc->pub.digest = rc->digest;
	rc->pub.prev = prev;
	rc->action = action;
	rc->pub.action = reg_action_parse(action);
	rc->pub.time = jstr(j, "time");
	rc->pub.user = jstr(j, "user");
	rc->pub.host = jstr(j, "host");
	rc->pub.model = jstr(j, "model");
	rc->pub.note = jstr(j, "note");
	rc->pub.json = rc->line;
	rc->pub.offset = offset;
	why[0] = '\0';
	if (!strcmp(action, "promote"))
		bad = replay_promote(r, rc, why, sizeof(why));
	else if (!strcmp(action, "alias") || !strcmp(action, "rollback") ||
	    !strcmp(action, "alias-delete"))
		bad = replay_alias(r, rc, why, sizeof(why));
	else if (is_run_event(action))
		bad = replay_event(rc, why, sizeof(why));
	else {
		snprintf(why, sizeof(why), "unknown action '%s'", action);
		bad = 1;
	}
	if (bad < 0) {
		rv = ckpt_error_nomem(err);
	} else if (bad) {
		rv = problem(r, err, "history-replay", offset, "record %zu: %s",
		    r->nlines, why);
	} else {
		r->nrecs++;
		rv = CKPT_OK;
	}
	if (bad) {
		free(rc->digest);
		free(rc->line);
		json_decref(j);
	}
	fix_pointers(r);
out:
	free(prev_digest);
	return rv;
}

static int
cmp_ver(const void *a, const void *b)
{
	const struct ver *x = a, *y = b;
	int c = strcmp(x->pub.model, y->pub.model);

	if (c)
		return c;
	return x->pub.version < y->pub.version ? -1 :
	    x->pub.version > y->pub.version;
}

static int
cmp_ali(const void *a, const void *b)
{
	const struct ali *x = a, *y = b;
	int c = strcmp(x->pub.model, y->pub.model);

	return c ? c : strcmp(x->pub.name, y->pub.name);
}

static void
finish(struct ckpt_registry *r)
{
	if (r->nvers)
		qsort(r->vers, r->nvers, sizeof(*r->vers), cmp_ver);
	if (r->nalis)
		qsort(r->alis, r->nalis, sizeof(*r->alis), cmp_ali);
	fix_pointers(r);
}

static int
parse_into(struct ckpt_registry *r, struct ckpt_error *err)
{
	size_t off = 0;
	int rc;

	while (off < r->len) {
		const char *nl = memchr(r->text + off, '\n', r->len - off);

		if (!nl)
			return problem(r, err, "history-malformed",
			    (int64_t)off, "record %zu is not terminated by a "
			    "newline: the history was cut or edited",
			    r->nlines + 1);
		if ((rc = add_line(r, r->text + off, (size_t)(nl - r->text) -
		    off, (int64_t)off, err)))
			return rc;
		off = (size_t)(nl - r->text) + 1;
	}
	return CKPT_OK;
}

static int
registry_new(const char *text, size_t len, const char *name,
    unsigned int flags, struct ckpt_registry **out, struct ckpt_error *err)
{
	struct ckpt_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return ckpt_error_nomem(err);
	r->lenient = flags & CKPT_REGISTRY_LENIENT;
	r->name = strdup(name ? name : "history");
	r->text = malloc(len + 1);
	if (!r->name || !r->text) {
		ckpt_registry_free(r);
		return ckpt_error_nomem(err);
	}
	if (len)
		memcpy(r->text, text, len);
	r->text[len] = '\0';
	r->len = r->committed = len;
	*out = r;
	return CKPT_OK;
}

int
ckpt_registry_parse(const char *text, size_t len, const char *name,
    unsigned int flags, struct ckpt_registry **out, struct ckpt_error *err)
{
	struct ckpt_registry *r;
	int rc;

	if ((rc = registry_new(text, len, name, flags, &r, err)))
		return rc;
	if ((rc = parse_into(r, err))) {
		ckpt_registry_free(r);
		return rc;
	}
	finish(r);
	*out = r;
	return CKPT_OK;
}

int
ckpt_registry_load(struct ckpt_store *s, unsigned int flags,
    struct ckpt_registry **out, struct ckpt_error *err)
{
	struct ckpt_registry *r;
	char *path = ckpt_store_path(s, REG_HISTORY), *text = NULL;
	size_t len = 0;
	int rc;

	if (!path)
		return ckpt_error_nomem(err);
	/* Through the backend: a remote store's history is no file here. */
	rc = s->ops->read(s->be, REG_HISTORY, HISTORY_MAX, &text, &len, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		ckpt_error_clear(err);
		rc = CKPT_OK;
	}
	if (!rc)
		rc = registry_new(text ? text : "", len, path, flags, &r, err);
	free(text);
	free(path);
	if (rc)
		return rc;
	if (!(r->root = strdup(ckpt_store_root(s)))) {
		ckpt_registry_free(r);
		return ckpt_error_nomem(err);
	}
	if ((rc = parse_into(r, err))) {
		ckpt_registry_free(r);
		return rc;
	}
	finish(r);
	*out = r;
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Appending and committing                                             */
/* ------------------------------------------------------------------ */

int
ckpt_reg_append(struct ckpt_registry *r, json_t *rec, struct ckpt_error *err)
{
	char now[32], *line;
	size_t n, off = r->len, nlines = r->nlines, nrecs = r->nrecs;
	char *last = r->last_digest ? strdup(r->last_digest) : NULL;
	bool lenient = r->lenient;
	int rc;

	if (r->last_digest && !last)
		return ckpt_error_nomem(err);
	ckpt_iso_time((int64_t)time(NULL), now, sizeof(now));
	json_object_set_new(rec, "schema", json_integer(REG_SCHEMA));
	json_object_set_new(rec, "seq", json_integer((json_int_t)r->nlines +
	    1));
	json_object_set_new(rec, "prev", r->last_digest ?
	    json_string(r->last_digest) : json_null());
	json_object_set_new(rec, "time", json_string(now));
	json_object_set_new(rec, "user", json_string(ckpt_user_name()));
	json_object_set_new(rec, "host", json_string(ckpt_hostname()));
	line = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	if (!line) {
		free(last);
		return ckpt_error_nomem(err);
	}
	n = strlen(line);
	{
		char *t = realloc(r->text, r->len + n + 2);

		if (!t) {
			free(line);
			free(last);
			return ckpt_error_nomem(err);
		}
		r->text = t;
	}
	memcpy(r->text + r->len, line, n);
	r->text[r->len + n] = '\n';
	r->text[r->len + n + 1] = '\0';
	free(line);
	r->len += n + 1;
	/* The parser checks what we append exactly as it checks the file. */
	r->lenient = false;
	rc = add_line(r, r->text + off, n, (int64_t)off, err);
	r->lenient = lenient;
	if (rc || r->nrecs != nrecs + 1) {
		r->len = off;
		r->text[off] = '\0';
		r->nlines = nlines;
		free(r->last_digest);
		r->last_digest = last;
		return rc ? rc : ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL,
		    -1, "a registry record did not replay");
	}
	free(last);
	return CKPT_OK;
}

/*
 * Through the storage backend, as the pins it records are: read, append,
 * put (atomic and durable).  Its prefix is made by mkprefix (a directory
 * for the POSIX backend; nothing for an object store).
 */
int
ckpt_reg_record_event(struct ckpt_store *s, json_t *rec, struct ckpt_error *err)
{
	struct ckpt_registry *r = NULL;
	struct ckpt_error le;
	char *text = NULL, *name = ckpt_store_path(s, REG_HISTORY);
	size_t len = 0;
	int rc;

	if (!name)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&le);
	rc = s->ops->read(s->be, REG_HISTORY, HISTORY_MAX, &text, &len, &le);
	if (rc == CKPT_ERR_NOTFOUND)	/* the first event: its prefix */
		rc = s->ops->mkprefix(s->be, REG_DIR, NULL, &le);
	if (rc) {
		if (err)
			*err = le;
		free(name);
		return rc;
	}
	rc = ckpt_registry_parse(text ? text : "", len, name, 0, &r, err);
	free(text);
	free(name);
	if (!rc && !(rc = ckpt_reg_append(r, rec, err)))
		rc = s->ops->put(s->be, REG_HISTORY, r->text, r->len, 0, err);
	ckpt_registry_free(r);
	return rc;
}

/*
 * The history is put whole (atomic and durable: POSIX writes a temporary
 * file, fsyncs and renames it; S3 replaces the object in one PUT) under
 * the store lock, which orders the writers.
 */
int
ckpt_reg_commit(struct ckpt_store *s, struct ckpt_registry *r,
    struct ckpt_error *err)
{
	int rc;

	if (r->len == r->committed)
		return CKPT_OK;
	rc = s->ops->mkprefix(s->be, REG_DIR, NULL, err);
	if (!rc)
		rc = s->ops->put(s->be, REG_HISTORY, r->text, r->len, 0, err);
	if (!rc) {
		r->committed = r->len;
	} else {
		/* A failure after the rename (fsync of the directory): the
		 * new history is in place, and undoing the rest around it
		 * would contradict it. */
		char *text = NULL;
		size_t len = 0;

		if (!s->ops->read(s->be, REG_HISTORY, HISTORY_MAX, &text, &len,
		    NULL) && len == r->len && !memcmp(text, r->text, len))
			r->committed = r->len;
		free(text);
	}
	return rc;
}

bool
ckpt_reg_is_committed(const struct ckpt_registry *r)
{
	return r->committed == r->len;
}

/* ------------------------------------------------------------------ */
/* State files                                                          */
/* ------------------------------------------------------------------ */

static json_t *
version_json(const struct ckpt_reg_version *v)
{
	char *rel = ckpt_reg_version_rel(v->model, v->version);
	json_t *o = json_object();

	if (!rel || !o) {
		free(rel);
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "schema", json_integer(REG_SCHEMA));
	json_object_set_new(o, "model", json_string(v->model));
	json_object_set_new(o, "version", json_integer(v->version));
	json_object_set_new(o, "run", json_string(v->run));
	json_object_set_new(o, "step", json_integer(v->step));
	json_object_set_new(o, "manifest", json_string(v->manifest));
	json_object_set_new(o, "path", json_string(rel));
	json_object_set_new(o, "created", json_string(v->created));
	json_object_set_new(o, "user", json_string(v->user));
	json_object_set_new(o, "host", json_string(v->host));
	if (v->note)
		json_object_set_new(o, "note", json_string(v->note));
	json_object_set_new(o, "storage", json_string(v->storage_raw));
	json_object_set_new(o, "size", json_integer((json_int_t)v->size));
	json_object_set_new(o, "nfiles", json_integer((json_int_t)v->nfiles));
	json_object_set_new(o, "record", json_string(v->record));
	if (v->imported_record)
		json_object_set_new(o, "imported", json_pack("{s:I, s:s}",
		    "version", (json_int_t)v->imported_version, "record",
		    v->imported_record));
	if (v->source_manifest) {
		json_object_set_new(o, "scope", json_string(v->scope));
		json_object_set_new(o, "source_manifest",
		    json_string(v->source_manifest));
	}
	free(rel);
	return o;
}

static json_t *
aliases_json(const struct ckpt_registry *r, const char *model)
{
	json_t *o = json_object(), *as = json_object();

	for (size_t i = 0; i < r->nalis; i++) {
		const struct ali *a = &r->alis[i];
		json_t *e, *prev;

		if (strcmp(a->pub.model, model))
			continue;
		e = json_object();
		prev = json_array();
		for (size_t k = 0; k < a->nprev; k++)
			json_array_append_new(prev, json_integer(a->prev[k]));
		json_object_set_new(e, "version", json_integer(
		    a->pub.version));
		json_object_set_new(e, "previous", prev);
		json_object_set_new(e, "record", json_string(a->pub.record));
		json_object_set_new(as, a->pub.name, e);
	}
	json_object_set_new(o, "schema", json_integer(REG_SCHEMA));
	json_object_set_new(o, "model", json_string(model));
	json_object_set_new(o, "aliases", as);
	return o;
}

/* A state file (key) put through the backend: atomic and durable. */
static int
write_json(struct ckpt_store *s, const char *key, json_t *o,
    struct ckpt_error *err)
{
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) :
	    NULL;
	int rc;

	if (!text)
		return ckpt_error_nomem(err);
	rc = s->ops->put(s->be, key, text, strlen(text), 0, err);
	free(text);
	return rc;
}

char *
ckpt_reg_model_key(const char *model, const char *fmt, int64_t n)
{
	char name[48], *key;

	snprintf(name, sizeof(name), fmt, (long long)n);
	if (asprintf(&key, REG_DIR "/%s/%s", model, name) < 0)
		return NULL;
	return key;
}

char *
ckpt_reg_model_file(struct ckpt_store *s, const char *model, const char *fmt,
    int64_t n)
{
	char *key = ckpt_reg_model_key(model, fmt, n);
	char *path = key ? ckpt_store_path(s, key) : NULL;

	free(key);
	return path;
}

/* registry/MODEL made (a directory for the POSIX backend). */
static int
model_prefix(struct ckpt_store *s, const char *model, struct ckpt_error *err)
{
	char *key;
	int rc;

	if (asprintf(&key, REG_DIR "/%s", model) < 0)
		return ckpt_error_nomem(err);
	rc = s->ops->mkprefix(s->be, REG_DIR, NULL, err);
	if (!rc)
		rc = s->ops->mkprefix(s->be, key, NULL, err);
	free(key);
	return rc;
}

int
ckpt_reg_write_version_file(struct ckpt_store *s,
    const struct ckpt_reg_version *v, struct ckpt_error *err)
{
	char *key = ckpt_reg_model_key(v->model, "v%lld.json", v->version);
	json_t *o = version_json(v);
	int rc;

	rc = key ? write_json(s, key, o, err) : ckpt_error_nomem(err);
	json_decref(o);
	free(key);
	return rc;
}

int
ckpt_reg_write_aliases_file(struct ckpt_store *s, struct ckpt_registry *r,
    const char *model, struct ckpt_error *err)
{
	char *key = ckpt_reg_model_key(model, "aliases.json", 0);
	json_t *o = aliases_json(r, model);
	int rc;

	rc = key ? model_prefix(s, model, err) : ckpt_error_nomem(err);
	if (!rc)
		rc = write_json(s, key, o, err);
	json_decref(o);
	free(key);
	return rc;
}

/*
 * 1: the state file of model (fmt, n) holds exactly want; 0: it differs
 * or cannot be read; -1: it is missing; -2: out of memory.
 */
static int
file_matches(struct ckpt_store *s, const char *model, const char *fmt,
    int64_t n, json_t *want)
{
	char *key = ckpt_reg_model_key(model, fmt, n), *text = NULL;
	json_t *j;
	int rc, same;

	if (!key || !want) {
		free(key);
		return -2;
	}
	rc = s->ops->read(s->be, key, STATE_MAX, &text, NULL, NULL);
	free(key);
	if (rc) {
		free(text);
		return rc == CKPT_ERR_NOTFOUND ? -1 : 0;
	}
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	same = j && json_equal(j, want);
	json_decref(j);
	return same;
}

/* file_matches() for version v's vN.json against the history. */
static int
version_file_state(struct ckpt_store *s, const struct ckpt_reg_version *v)
{
	json_t *want = version_json(v);
	int m = file_matches(s, v->model, "v%lld.json", v->version, want);

	json_decref(want);
	return m;
}

/*
 * file_matches() for model's aliases.json against the history, where a
 * model that never had an alias may have no file (1).
 */
static int
aliases_file_state(struct ckpt_store *s, const struct ckpt_registry *r,
    const char *model)
{
	json_t *want = aliases_json(r, model);
	int m = file_matches(s, model, "aliases.json", 0, want);

	if (m == -1 && !json_object_size(json_object_get(want, "aliases")))
		m = 1;
	json_decref(want);
	return m;
}

/*
 * The finding for a state file at path that file_matches() found missing
 * (m < 0: missing) or not as the history has it (m == 0: differs); none
 * for m > 0.  Returns 0, or -1 when out of memory.
 */
static int
file_finding(struct ckpt_registry *r, int m, const char *path,
    const char *missing, const char *differs)
{
	if (m > 0)
		return 0;
	return ckpt_reg_add_finding(r, m < 0 ? "registry-file-missing" :
	    "registry-file-mismatch", CKPT_SEV_ERROR, path, NULL, -1,
	    m < 0 ? missing : differs) ? -1 : 0;
}

/*
 * The files of version N in a model directory: "vN" (its files), "vN.json",
 * "vN.record" and "vN.record.sig" (a signed promotion) -> N, and whether
 * it is the .json; 0 for anything else.
 */
static int64_t
version_entry(const char *name, bool *is_json)
{
	const char *p = name + 1;
	int64_t v = 0;

	if (name[0] != 'v' || !isdigit((unsigned char)*p) || *p == '0')
		return 0;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (*p - '0');
	}
	*is_json = !strcmp(p, ".json");
	if (*p && !*is_json && strcmp(p, ".record") &&
	    strcmp(p, ".record.sig") && strcmp(p, ".lineage.jsonl"))
		return 0;
	return v;
}

/*
 * Calls fn for each entry vN / vN.json of every model directory and for
 * each model directory itself (name "" then).
 */
typedef int (*entry_fn)(struct ckpt_store *s, struct ckpt_registry *r,
    const char *model, const char *name, int64_t version, bool is_json,
    void *arg, struct ckpt_error *err);

/* The children of a listed prefix, gathered (the callbacks below change
 * the store, which a listing in progress must not see). */
struct names {
	char **v;
	enum ckpt_be_type *type;
	size_t n;
};

static int
names_add(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct names *ns = arg;
	char **v = reallocarray(ns->v, ns->n + 1, sizeof(*v));
	enum ckpt_be_type *t;

	if (!v)
		return CKPT_ERR_NOMEM;
	ns->v = v;
	if (!(t = reallocarray(ns->type, ns->n + 1, sizeof(*t))))
		return CKPT_ERR_NOMEM;
	ns->type = t;
	if (!(v[ns->n] = strdup(name)))
		return CKPT_ERR_NOMEM;
	t[ns->n++] = info->type;
	return 0;
}

static void
names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	free(ns->type);
	memset(ns, 0, sizeof(*ns));
}

/* The children of prefix through the backend; absent is none. */
static int
list_names(struct ckpt_store *s, const char *prefix, struct names *ns,
    struct ckpt_error *err)
{
	int rc;

	memset(ns, 0, sizeof(*ns));
	rc = s->ops->list(s->be, prefix, names_add, ns, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		if (err)
			ckpt_error_clear(err);
		rc = CKPT_OK;
	} else if (rc == CKPT_ERR_NOMEM) {
		rc = ckpt_error_nomem(err);
	}
	if (rc)
		names_free(ns);
	return rc;
}

static int
walk_models(struct ckpt_store *s, struct ckpt_registry *r, entry_fn fn,
    void *arg, struct ckpt_error *err)
{
	struct names models;
	int rc;

	if ((rc = list_names(s, REG_DIR, &models, err)))
		return rc;
	for (size_t i = 0; !rc && i < models.n; i++) {
		const char *model = models.v[i];
		struct names vs;
		char *key;

		/* not a directory (nor a link to one): not a model */
		if (model[0] == '.' || models.type[i] != CKPT_BE_DIR ||
		    ckpt_name_check(model, NULL, NULL))
			continue;
		if (asprintf(&key, REG_DIR "/%s", model) < 0) {
			rc = ckpt_error_nomem(err);
			break;
		}
		rc = list_names(s, key, &vs, err);
		free(key);
		if (!rc)
			rc = fn(s, r, model, "", 0, false, arg, err);
		for (size_t k = 0; !rc && k < vs.n; k++) {
			bool is_json = false;
			int64_t v = version_entry(vs.v[k], &is_json);

			if (v || strstr(vs.v[k], ".tmp."))
				rc = fn(s, r, model, vs.v[k], v, is_json, arg,
				    err);
		}
		names_free(&vs);
	}
	names_free(&models);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Checking the state files                                             */
/* ------------------------------------------------------------------ */

static int
check_entry(struct ckpt_store *s, struct ckpt_registry *r, const char *model,
    const char *name, int64_t version, bool is_json, void *arg,
    struct ckpt_error *err)
{
	char *path, msg[512];

	(void)arg;
	if (!*name || (version && ckpt_registry_find_version(r, model,
	    version)))
		return CKPT_OK;
	path = ckpt_store_path(s, REG_DIR);
	snprintf(msg, sizeof(msg), "%s/%s/%s is not a version in the history "
	    "(left by an interrupted promotion; the next registry command "
	    "moves it to the trash)", path ? path : REG_DIR, model, name);
	free(path);
	(void)is_json;
	if (ckpt_reg_add_finding(r, "registry-orphan", CKPT_SEV_WARNING, NULL,
	    model, -1, msg))
		return ckpt_error_nomem(err);
	return CKPT_OK;
}

int
ckpt_reg_check_lineage(const char *text, size_t len, const char *name,
    const char *model, const char *manifest, const char **why)
{
	struct ckpt_registry *l = NULL;
	const struct ckpt_reg_record *last;
	struct ckpt_error e;

	*why = NULL;
	ckpt_error_clear(&e);
	if (ckpt_registry_parse(text, len, name, 0, &l, &e)) {
		*why = e.code == CKPT_ERR_NOMEM ? "out of memory" :
		    "its hash chain or a record does not verify";
		return e.code;
	}
	last = ckpt_registry_record(l, ckpt_registry_record_count(l) - 1);
	if (!last || last->action != CKPT_REG_PROMOTE || strcmp(last->model,
	    model) || strcmp(last->manifest, manifest))
		*why = "its last record is not the promotion of this manifest";
	ckpt_registry_free(l);
	return *why ? CKPT_ERR_FORMAT : CKPT_OK;
}

/* An imported version's lineage: the other store's history up to its
 * promotion, chained, ending in the record the version names. */
static int
check_lineage(struct ckpt_store *s, struct ckpt_registry *r,
    const struct ckpt_reg_version *v, struct ckpt_error *err)
{
	char *path = ckpt_reg_model_file(s, v->model, "v%lld.lineage.jsonl",
	    v->version), *text = NULL, msg[CKPT_ERROR_MSG_MAX + 128];
	char *key = ckpt_reg_model_key(v->model, "v%lld.lineage.jsonl",
	    v->version);
	struct ckpt_registry *l = NULL;
	const char *why = NULL, *model = NULL;
	struct ckpt_error e;
	size_t len = 0;
	int rc = CKPT_OK;

	if (!path)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&e);
	if (!key) {
		rc = ckpt_error_nomem(err);
	} else if (s->ops->read(s->be, key, HISTORY_MAX, &text, &len, &e)) {
		why = e.message;
	} else if (ckpt_registry_parse(text, len, path, 0, &l, &e)) {
		why = e.code == CKPT_ERR_NOMEM ? "out of memory" : e.message;
	} else if (!ckpt_registry_head(l) || strcmp(ckpt_registry_head(l),
	    v->imported_record)) {
		why = "does not end in the promote record the version was "
		    "imported with";
	} else {
		model = ckpt_registry_record(l, ckpt_registry_record_count(l) -
		    1)->model;
		if (ckpt_reg_check_lineage(text, len, path, model, v->manifest,
		    &why) == CKPT_ERR_NOMEM)
			rc = ckpt_error_nomem(err);
	}
	if (why && !rc) {
		snprintf(msg, sizeof(msg), "lineage of %s v%lld: %s", v->model,
		    (long long)v->version, why);
		if (ckpt_reg_add_finding(r, "registry-lineage-invalid",
		    CKPT_SEV_ERROR, path, NULL, -1, msg))
			rc = ckpt_error_nomem(err);
	}
	ckpt_registry_free(l);
	free(text);
	free(key);
	free(path);
	return rc;
}

int
ckpt_registry_check_files(struct ckpt_store *s, struct ckpt_registry *r,
    struct ckpt_error *err)
{
	char **models = NULL;
	size_t nmodels = 0;
	int rc = CKPT_OK;

	for (size_t i = 0; i < r->nvers; i++) {
		const struct ckpt_reg_version *v = &r->vers[i].pub;
		char *path = ckpt_reg_model_file(s, v->model, "v%lld.json",
		    v->version);
		char *vkey = ckpt_reg_version_rel(v->model, v->version);
		struct ckpt_be_info bi;
		int m = path && vkey ? version_file_state(s, v) : -2;

		if (m == -2) {
			free(path);
			free(vkey);
			return ckpt_error_nomem(err);
		}
		if (file_finding(r, m, path, "missing: the history has this "
		    "version", "differs from the history's record of this "
		    "version"))
			rc = ckpt_error_nomem(err);
		free(path);
		if (!rc && v->imported_record)
			rc = check_lineage(s, r, v, err);
		if (!rc && (s->ops->stat(s->be, vkey, &bi, NULL) ||
		    bi.type != CKPT_BE_DIR) &&
		    ckpt_reg_add_finding(r, "registry-version-missing",
		    CKPT_SEV_ERROR, v->path, NULL, -1,
		    "the version's directory is missing"))
			rc = ckpt_error_nomem(err);
		free(vkey);
		if (rc)
			break;
		if (!nmodels || strcmp(models[nmodels - 1], v->model)) {
			char **p = reallocarray(models, nmodels + 1,
			    sizeof(*p));

			if (!p) {
				rc = ckpt_error_nomem(err);
				break;
			}
			models = p;
			models[nmodels++] = (char *)v->model;
		}
	}
	for (size_t i = 0; !rc && i < nmodels; i++) {
		char *path =
		    ckpt_reg_model_file(s, models[i], "aliases.json", 0);
		int m = path ? aliases_file_state(s, r, models[i]) : -2;

		if (m == -2) {
			free(path);
			rc = ckpt_error_nomem(err);
			break;
		}
		if (file_finding(r, m, path, "missing: the history has "
		    "aliases for this model", "differs from the aliases the "
		    "history gives"))
			rc = ckpt_error_nomem(err);
		free(path);
	}
	free(models);
	if (!rc)
		rc = walk_models(s, r, check_entry, NULL, err);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Repair                                                               */
/* ------------------------------------------------------------------ */

/* A state file (small) into the trash: read, put there, removed. */
static int
file_to_trash(struct ckpt_store *s, const char *key, const char *to,
    struct ckpt_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = s->ops->read(s->be, key, HISTORY_MAX, &text, &len, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		if (err)
			ckpt_error_clear(err);
		return CKPT_OK;
	}
	if (!rc)
		rc = s->ops->mkprefix(s->be, CKPT_STORE_TRASH, NULL, err);
	if (!rc)
		rc = s->ops->put(s->be, to, text, len, CKPT_BE_IF_ABSENT, err);
	if (!rc)
		rc = s->ops->remove(s->be, key, err);
	free(text);
	return rc;
}

int
ckpt_reg_to_trash(struct ckpt_store *s, const char *key, const char *label,
    struct ckpt_error *err)
{
	struct ckpt_be_info bi;
	char *name = NULL, *to = NULL;
	int rc;

	if (asprintf(&name, "registry-%s.%ld.%lld", label, (long)getpid(),
	    (long long)time(NULL)) < 0 || asprintf(&to, "%s/%s",
	    CKPT_STORE_TRASH, name) < 0) {
		free(name);
		return ckpt_error_nomem(err);
	}
	rc = s->ops->stat(s->be, key, &bi, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		if (err)
			ckpt_error_clear(err);
		rc = CKPT_OK;
	} else if (!rc && bi.type == CKPT_BE_DIR) {
		rc = s->ops->trash(s->be, key, name, err);
		if (rc == CKPT_ERR_NOTFOUND) {
			if (err)
				ckpt_error_clear(err);
			rc = CKPT_OK;
		}
		if (!rc)
			rc = s->ops->flush(s->be, CKPT_STORE_TRASH, err);
	} else if (!rc && bi.type == CKPT_BE_FILE) {
		rc = file_to_trash(s, key, to, err);
	} else if (!rc) {
		rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, key, -1, "neither a "
		    "file nor a directory of the store: left alone");
	}
	free(name);
	free(to);
	return rc;
}

struct repair {
	size_t n;
};

static int
repair_entry(struct ckpt_store *s, struct ckpt_registry *r, const char *model,
    const char *name, int64_t version, bool is_json, void *arg,
    struct ckpt_error *err)
{
	struct repair *rp = arg;
	char rel[CKPT_NAME_MAX * 2 + 64], label[CKPT_NAME_MAX * 2 + 8];
	int rc;

	(void)is_json;
	if (!*name || (version && ckpt_registry_find_version(r, model,
	    version)))
		return CKPT_OK;
	snprintf(rel, sizeof(rel), REG_DIR "/%s/%s", model, name);
	if (!version) {
		/* a temporary file of an interrupted atomic write */
		rc = s->ops->remove(s->be, rel, err);
	} else {
		/* Never deleted outright: if the history lost a record,
		 * these are the version's only copy. */
		snprintf(label, sizeof(label), "%s-%s", model, name);
		rc = ckpt_reg_to_trash(s, rel, label, err);
	}
	if (!rc)
		rp->n++;
	return rc;
}

/* Staging areas of promotions whose process is gone. */
static int
repair_staging(struct ckpt_store *s, struct repair *rp, struct ckpt_error *err)
{
	char *mine = ckpt_reg_staging_name();
	struct names ns;
	int rc;

	if (!mine)
		return ckpt_error_nomem(err);
	if ((rc = list_names(s, REG_STAGING, &ns, err))) {
		free(mine);
		return rc;
	}
	for (size_t i = 0; !rc && i < ns.n; i++) {
		const char *name = ns.v[i];
		struct ckpt_be_info bi;
		char tag[32], *key;
		long pid;
		unsigned long long start;
		bool dead;

		if (name[0] == '.' || asprintf(&key, REG_STAGING "/%s", name) <
		    0)
			continue;
		if (sscanf(name, "%31[^.].%ld.%llu.", tag, &pid, &start) == 3 &&
		    !strncmp(mine, tag, strlen(tag)) &&
		    mine[strlen(tag)] == '.')
			dead = !ckpt_proc_alive(pid, start);
		else
			dead = !s->ops->stat(s->be, key, &bi, NULL) &&
			    bi.mtime + STAGING_STALE < time(NULL);
		if (dead) {
			rc = s->ops->remove_tree(s->be, key, err);
			if (!rc)
				rp->n++;
		}
		free(key);
	}
	names_free(&ns);
	free(mine);
	return rc;
}

int
ckpt_reg_repair_locked(struct ckpt_store *s, struct ckpt_registry *r,
    size_t *nrepaired, struct ckpt_error *err)
{
	struct repair rp = { 0 };
	struct names tmps;
	int rc;

	/* Uncommitted leftovers first: a stale v3/ must not meet the
	 * next v3. */
	if ((rc = walk_models(s, r, repair_entry, &rp, err)))
		return rc;
	for (size_t i = 0; i < r->nvers; i++) {
		const struct ckpt_reg_version *v = &r->vers[i].pub;
		char *path = ckpt_reg_model_file(s, v->model, "v%lld.json",
		    v->version);
		int m = path ? version_file_state(s, v) : -2;

		free(path);
		if (m == -2)
			return ckpt_error_nomem(err);
		if (m <= 0) {
			if ((rc = ckpt_reg_write_version_file(s, v, err)))
				return rc;
			rp.n++;
		}
		if (i + 1 == r->nvers || strcmp(v->model,
		    r->vers[i + 1].pub.model)) {
			path =
			    ckpt_reg_model_file(s, v->model, "aliases.json", 0);
			m = path ? aliases_file_state(s, r, v->model) : -2;
			free(path);
			if (m == -2)
				return ckpt_error_nomem(err);
			if (m <= 0) {
				if ((rc = ckpt_reg_write_aliases_file(s, r,
				    v->model, err)))
					return rc;
				rp.n++;
			}
		}
	}
	if ((rc = repair_staging(s, &rp, err)))
		return rc;
	/* a temporary file of an interrupted history write (best effort,
	 * as before: what cannot be listed or removed stays) */
	if (!list_names(s, REG_DIR, &tmps, NULL)) {
		for (size_t i = 0; i < tmps.n; i++) {
			char *k;

			if (strncmp(tmps.v[i], ".history.jsonl.tmp.", 19) ||
			    asprintf(&k, REG_DIR "/%s", tmps.v[i]) < 0)
				continue;
			if (!s->ops->remove(s->be, k, NULL))
				rp.n++;
			free(k);
		}
		names_free(&tmps);
	}
	if (nrepaired)
		*nrepaired = rp.n;
	return CKPT_OK;
}

int
ckpt_registry_repair(struct ckpt_store *s, long lock_timeout_ms,
    size_t *nrepaired, struct ckpt_error *err)
{
	struct ckpt_registry *r;
	int rc;

	if ((rc = ckpt_store_lock(s, "registry repair", lock_timeout_ms, NULL,
	    err)))
		return rc;
	rc = ckpt_registry_load(s, 0, &r, err);
	if (!rc) {
		rc = ckpt_reg_repair_locked(s, r, nrepaired, err);
		ckpt_registry_free(r);
	}
	ckpt_store_unlock(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Alias moves                                                          */
/* ------------------------------------------------------------------ */

int
ckpt_reg_alias_name_check(const char *alias, struct ckpt_error *err)
{
	const char *p = alias[0] == 'v' ? alias + 1 : alias;
	int rc;

	if ((rc = ckpt_name_check(alias, "alias", err)))
		return rc;
	while (*p && isdigit((unsigned char)*p))
		p++;
	/* MODEL@v2, MODEL@12, MODEL@latest and MODEL@best mean something
	 * else */
	if ((!*p && p > alias + (alias[0] == 'v')) ||
	    !strcmp(alias, "latest") || !strcmp(alias, "best"))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s' cannot be an alias: MODEL@%s means something else",
		    alias, alias);
	return CKPT_OK;
}

static int
alias_plan(struct ckpt_registry *r, const struct ckpt_alias_options *o,
    struct ckpt_alias_move *mv, json_t **rec, struct ckpt_error *err)
{
	const struct ckpt_reg_alias *a = ckpt_registry_find_alias(r, o->model,
	    o->alias);
	const char *action = "alias";
	int64_t to = 0;

	mv->alias = o->alias;
	mv->from = a ? a->version : 0;
	mv->to = mv->from;
	mv->changed = false;
	*rec = NULL;
	if (!ckpt_reg_version_count(r, o->model))
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
		    "no model '%s' in the registry", o->model);
	switch (o->op) {
	case CKPT_ALIAS_SET:
		if (!ckpt_registry_find_version(r, o->model, o->model_version))
			return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "model '%s' has no version %lld", o->model,
			    (long long)o->model_version);
		to = o->model_version;
		if (to == mv->from)
			return CKPT_OK;
		break;
	case CKPT_ALIAS_DELETE:
		if (!a)
			return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "model '%s' has no alias '%s'", o->model,
			    o->alias);
		action = "alias-delete";
		break;
	case CKPT_ALIAS_ROLLBACK:
		if (!a)
			return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "model '%s' has no alias '%s'", o->model,
			    o->alias);
		if (!a->nprevious)
			return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "alias '%s' of model '%s' has named only v%lld: "
			    "nothing to roll back to", o->alias, o->model,
			    (long long)a->version);
		to = a->previous[a->nprevious - 1];
		action = "rollback";
		break;
	default:
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "unknown alias operation");
	}
	*rec = json_object();
	if (!*rec)
		return ckpt_error_nomem(err);
	json_object_set_new(*rec, "action", json_string(action));
	json_object_set_new(*rec, "model", json_string(o->model));
	json_object_set_new(*rec, "alias", json_string(o->alias));
	json_object_set_new(*rec, "from", mv->from ? json_integer(mv->from) :
	    json_null());
	json_object_set_new(*rec, "to", to ? json_integer(to) : json_null());
	if (o->note)
		json_object_set_new(*rec, "note", json_string(o->note));
	mv->to = to;
	mv->changed = true;
	return CKPT_OK;
}

int
ckpt_registry_alias_op(struct ckpt_store *s, const struct ckpt_alias_options *o,
    struct ckpt_alias_move *mv, struct ckpt_error *err)
{
	struct ckpt_registry *r = NULL;
	json_t *rec = NULL;
	int rc;

	if ((rc = ckpt_options_check(o->version,
	    CKPT_ALIAS_OPTIONS_VERSION, "ckpt_alias_options", err)))
		return rc;
	if ((rc = ckpt_name_check(o->model, "model name", err)) ||
	    (rc = ckpt_name_check(o->alias, "alias", err)))
		return rc;
	if ((rc = ckpt_reg_alias_name_check(o->alias, err)))
		return rc;
	if ((rc = ckpt_store_lock(s, "alias", o->lock_timeout_ms, NULL, err)))
		return rc;
	rc = ckpt_registry_load(s, 0, &r, err);
	if (!rc)
		rc = ckpt_reg_repair_locked(s, r, NULL, err);
	if (!rc)
		rc = alias_plan(r, o, mv, &rec, err);
	if (!rc && rec)
		rc = ckpt_reg_append(r, rec, err);
	if (!rc && rec)
		rc = ckpt_reg_commit(s, r, err);
	/* Committed: aliases.json follows; a failure here is repaired by
	 * the next registry command, so it is not this one's failure. */
	if (rec && r && ckpt_reg_is_committed(r))
		(void)ckpt_reg_write_aliases_file(s, r, o->model, NULL);
	json_decref(rec);
	ckpt_registry_free(r);
	ckpt_store_unlock(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Staging names                                                        */
/* ------------------------------------------------------------------ */

char *
ckpt_reg_staging_name(void)
{
	unsigned char d[CKPT_SHA256_BYTES];
	char hex[2 * CKPT_SHA256_BYTES + 1], *id, *seed;
	long pid = (long)getpid();

	/* host and boot in one tag: a pid is only meaningful on the host
	 * and boot it came from */
	if (asprintf(&seed, "%s\n%s", ckpt_hostname(), ckpt_boot_id()) < 0)
		return NULL;
	if (ckpt_hash_buffer(CKPT_HASH_SHA256, seed, strlen(seed), d, NULL)) {
		free(seed);
		return NULL;
	}
	free(seed);
	ckpt_hex(d, 6, hex);
	if (asprintf(&id, "%s.%ld.%llu.%08lx", hex, pid, ckpt_proc_start(pid),
	    (unsigned long)random() ^ (unsigned long)time(NULL)) < 0)
		return NULL;
	return id;
}
