/* SPDX-License-Identifier: MIT */
/*
 * save.c - the commit protocol of "ckpt save" (ckpt-save(1)).
 *
 *  1. begin: check the request, create runs/RUN/.tmp-step-N.PID.RANDOM
 *     beside the destination (same filesystem, so the final rename is
 *     atomic) with ckpt-staging.json saying who saves what, and move or
 *     link the sources in.
 *  2. finish: copy (for --copy); fsync every file (in a thread of its
 *     own) while reading every file's structure (the validation) and
 *     hashing every file once on every core (hashing.c); once the fsyncs
 *     are done, write ckpt-summary.json, then the manifest
 *     (temp + fsync + rename), remove the staging status, fsync the
 *     directory; take the store lock; rename into place without
 *     clobbering (renameat2 RENAME_NOREPLACE, or, where the filesystem
 *     lacks it, a plain rename, which cannot replace a non-empty
 *     directory and which only lock holders do); fsync the parent;
 *     release the lock.
 *
 * Until that rename the checkpoint is invisible to ls, latest and prune;
 * after it, it is complete.  A failure marks the staging directory
 * failed and moves moved sources back; a crash leaves a staging
 * directory that ls shows and gc removes.
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "checkpoint/checkpoint.h"
#include "format/file.h"
#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"

#define MAX_DEPTH	64

struct src_map {
	char *src;		/* absolute source path */
	char *rel;		/* path inside the checkpoint */
	bool in_staging;	/* moved in and not (yet) moved back */
};

/* How a tensor's content digest is had (manifest schema 2). */
enum content_src {
	CONTENT_NONE = 0,	/* sparse, quantized, unreadable: none */
	CONTENT_RANGE,		/* the digest of the range parts[range] */
	CONTENT_GATHERED	/* computed from its elements: digest */
};

struct tcontent {
	enum content_src src;
	size_t range;
	unsigned char digest[CKPT_SHA256_BYTES];
};

struct sfile {
	char *rel;
	char *abs;
	uint64_t size;
	const char *format;
	enum ckpt_format fmt;
	json_t *tensors;	/* array, or NULL */
	struct ckpt_range_digest *ranges; /* the tensors' byte spans */
	size_t ntensor_ranges;
	struct tcontent *content;	/* per tensor span */
	struct ckpt_range_digest *parts; /* the partition of the file */
	size_t nparts;
	json_t *validation;
	char *metadata;		/* reader's metadata JSON, for inference */
	struct stat src_st;	/* direct: the source's lstat, examined */
};

/* A file of a --copy save: copied and digested in one read pass. */
struct cfile {
	char *src, *dst;
	struct stat st;		/* the source's, before the copy */
	int fd;			/* the copy, while it is written */
	int dfd;		/* the same with O_DIRECT, or -1 */
	struct ckpt_range_digest *parts; /* planned from the source */
	size_t nparts;
	bool whole;		/* sha256 is the whole file's digest */
	unsigned char sha256[CKPT_SHA256_BYTES];
};

struct ckpt_save {
	struct ckpt_store *store;
	/* how examine opens files: the store's verify.allow_globals */
	struct ckpt_open_options open_opts;
	struct ckpt_save_options opts;
	char *run;
	int64_t step;
	char *rundir, *final, *path;	/* paths, for messages */
	/* Backend keys (backend.h) of the run, the checkpoint and the
	 * staging area; staging is the area's local directory (*local of
	 * stage_begin), where the files are examined and hashed. */
	char *run_key, *final_key, *stage, *staging;
	bool has_record;		/* the staging record is there */
	json_t *meta;
	int64_t created;
	char created_iso[32];
	enum ckpt_transfer transfer;
	struct src_map *map;		/* top-level entries to bring in */
	size_t nmap;
	bool moved, committed, made_rundir;
	bool held;			/* ckpt_interrupt_hold() is ours */
	size_t nmoved_ever, nstranded;	/* for ckpt_save_moves() */
	char **emptied_dirs;		/* source directories a move empties */
	size_t nemptied;
	struct sfile *files;
	size_t nfiles;
	struct cfile *copies;		/* --copy: sorted by dst */
	size_t ncopies;
	/* --copy to a store on S3: the files are examined at their
	 * sources and uploaded from there into the staging area, digested
	 * as they are sent (no local copy); files[].abs are the sources. */
	bool direct;
	struct ckpt_policy_config *cfg;	/* the store's ckpt.yaml */
	char digest[8 + 2 * CKPT_SHA256_BYTES + 1];
	char *validation;	/* the manifest's "validation", as JSON */
	bool file_sha256;		/* record whole-file digests */
	pthread_mutex_t mu;
	time_t last_status;
	uint64_t done, total;
};

/* ------------------------------------------------------------------ */
/* The staging status file                                             */
/* ------------------------------------------------------------------ */

/* The staging record's text (ckpt-staging.json), or NULL (no memory). */
static char *
status_text(struct ckpt_save *sv, enum ckpt_save_phase phase,
    const char *state, const char *message)
{
	char now[32];
	json_t *j, *srcs;
	char *text;

	ckpt_iso_time((int64_t)time(NULL), now, sizeof(now));
	j = json_pack("{s:i, s:s, s:I, s:I, s:s, s:s, s:I, s:s, s:s, s:s,"
	    " s:s, s:I, s:I, s:s}", "schema", 1, "run", sv->run, "step",
	    (json_int_t)sv->step, "pid", (json_int_t)getpid(), "host",
	    ckpt_hostname(), "boot", ckpt_boot_id(), "start",
	    (json_int_t)ckpt_proc_start((long)getpid()), "started",
	    sv->created_iso, "updated", now, "phase",
	    ckpt_save_phase_name(phase), "state", state,
	    "done", (json_int_t)sv->done, "total", (json_int_t)sv->total,
	    "transfer", sv->transfer == CKPT_TRANSFER_MOVE ? "move" :
	    sv->transfer == CKPT_TRANSFER_COPY ? "copy" :
	    sv->transfer == CKPT_TRANSFER_STAGED ? "staged" :
	    sv->transfer == CKPT_TRANSFER_AUTO ? "auto" : "link");
	if (!j)
		return NULL;
	/* Who owns it, as precisely as the store lock says it (gc decides
	 * on these whether the save is alive). */
	json_object_set_new(j, "pidns", json_string(ckpt_pid_ns()));
	json_object_set_new(j, "machine", json_string(ckpt_machine_id()));
	if (message)
		json_object_set_new(j, "message", json_string(message));
	/* Where moved data came from, so that a person can put it back. */
	srcs = json_array();
	for (size_t i = 0; i < sv->nmap; i++)
		json_array_append_new(srcs, json_pack("{s:s, s:s}", "source",
		    sv->map[i].src, "path", sv->map[i].rel));
	json_object_set_new(j, "sources", srcs);
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	return text;
}

static int
write_status(struct ckpt_save *sv, enum ckpt_save_phase phase,
    const char *state, const char *message)
{
	const struct ckpt_store *s = sv->store;
	char *text;
	int rc;

	if (!sv->has_record)
		return CKPT_OK;
	if (!(text = status_text(sv, phase, state, message)))
		return CKPT_ERR_NOMEM;
	/*
	 * Best effort: the status is for people and ls.  Where moved data
	 * came from, and a failure, must survive a crash; the phases in
	 * between must not wait on the disk (an fsync here would wait for
	 * the writeback of the files being synced).
	 */
	rc = s->ops->stage_record(s->be, sv->stage, text, strlen(text),
	    phase == CKPT_PHASE_STAGING || strcmp(state, "active"), NULL);
	free(text);
	return rc;
}

/* The record back after finish removed it for the commit (a failure). */
static void
restore_record(struct ckpt_save *sv, const char *msg)
{
	if (sv->has_record || !sv->stage)
		return;
	sv->has_record = true;
	write_status(sv, CKPT_PHASE_FAILING, "active", msg);
}

static void
progress(uint64_t done, uint64_t total, void *data)
{
	struct ckpt_save *sv = data;
	time_t now = time(NULL);

	pthread_mutex_lock(&sv->mu);
	sv->done = done;
	sv->total = total;
	if (now != sv->last_status) {
		sv->last_status = now;
		write_status(sv, CKPT_PHASE_HASHING, "active", NULL);
	}
	pthread_mutex_unlock(&sv->mu);
	if (sv->opts.progress)
		sv->opts.progress(done, total, sv->opts.progress_data);
}

/* ------------------------------------------------------------------ */
/* begin                                                               */
/* ------------------------------------------------------------------ */

static bool
reserved_name(const char *name)
{
	return !strcmp(name, CKPT_MANIFEST_NAME) || !strcmp(name,
	    CKPT_SUMMARY_NAME) || !strcmp(name, CKPT_STATUS_NAME) ||
	    !strcmp(name, CKPT_STAGING_NAME);
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int
add_map(struct ckpt_save *sv, const char *src, const char *rel,
    struct ckpt_error *err)
{
	struct src_map *m;

	for (size_t i = 0; i < sv->nmap; i++)
		if (!strcmp(sv->map[i].rel, rel))
			return ckpt_error_set(err, CKPT_ERR_INVALID, src, -1,
			    "two sources are named '%s' in the checkpoint",
			    rel);
	if (reserved_name(rel))
		return ckpt_error_set(err, CKPT_ERR_INVALID, src, -1,
		    "'%s' is a name ckpt reserves for itself (is this a "
		    "committed checkpoint already?)", rel);
	if (rel[0] == '.' && (!rel[1] || !strcmp(rel, "..")))
		return ckpt_error_set(err, CKPT_ERR_INVALID, src, -1,
		    "bad name");
	m = reallocarray(sv->map, sv->nmap + 1, sizeof(*m));
	if (!m)
		return ckpt_error_nomem(err);
	sv->map = m;
	m[sv->nmap].src = realpath(src, NULL);
	m[sv->nmap].rel = strdup(rel);
	m[sv->nmap].in_staging = false;
	if (!m[sv->nmap].src || !m[sv->nmap].rel) {
		free(m[sv->nmap].src);
		free(m[sv->nmap].rel);
		return ckpt_error_errno(err, src, "cannot resolve");
	}
	sv->nmap++;
	return CKPT_OK;
}

/* A name for messages: control bytes as \n, \t or \xNN. */
static void
printable_name(const char *name, char *out, size_t size)
{
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)name;
	    *c && o + 5 < size; c++) {
		if (*c == '\n')
			o += (size_t)snprintf(out + o, size - o, "\\n");
		else if (*c == '\t')
			o += (size_t)snprintf(out + o, size - o, "\\t");
		else if (*c < 0x20 || *c == 0x7f)
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", *c);
		else
			out[o++] = (char)*c;
	}
	out[o] = '\0';
}

/* The manifest reader's rule (ckpt_manifest_path_problem), before any
 * file is moved: a checkpoint that could never verify is not made. */
static int
check_name(const char *rel, struct ckpt_error *err)
{
	const char *why = ckpt_manifest_path_problem(rel);
	char shown[512];

	if (!why)
		return CKPT_OK;
	printable_name(rel, shown, sizeof(shown));
	return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1, "'%s': a file "
	    "name a manifest cannot hold (%s); rename it before saving",
	    shown, why);
}

/*
 * Refuses symlinks and special files anywhere below p (security M05),
 * and names a manifest cannot hold; rel is p's path in the checkpoint
 * ("" for the one source directory whose entries are the checkpoint).
 */
static int
check_tree(const char *p, const char *rel, int depth, struct ckpt_error *err)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int rc = CKPT_OK;

	if (*rel && (rc = check_name(rel, err)))
		return rc;
	if (lstat(p, &st))
		return errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_INVALID,
		    p, -1, "no such file or directory") :
		    ckpt_error_errno(err, p, "cannot stat");
	if (S_ISLNK(st.st_mode))
		return ckpt_error_set(err, CKPT_ERR_INVALID, p, -1,
		    "is a symbolic link; a checkpoint holds regular files only");
	if (S_ISREG(st.st_mode))
		return CKPT_OK;
	if (!S_ISDIR(st.st_mode))
		return ckpt_error_set(err, CKPT_ERR_INVALID, p, -1,
		    "not a regular file or directory");
	if (depth > MAX_DEPTH)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, p, -1,
		    "directories nested deeper than %d", MAX_DEPTH);
	d = opendir(p);
	if (!d)
		return ckpt_error_errno(err, p, "cannot open directory");
	while (!rc && (de = readdir(d))) {
		char *c, *r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		c = ckpt_join(p, de->d_name);
		r = *rel ? ckpt_join(rel, de->d_name) : strdup(de->d_name);
		rc = c && r ? check_tree(c, r, depth + 1, err) :
		    ckpt_error_nomem(err);
		free(c);
		free(r);
	}
	closedir(d);
	return rc;
}

static int
plan_sources(struct ckpt_save *sv, struct ckpt_error *err)
{
	const struct ckpt_save_options *o = &sv->opts;
	struct stat st;
	int rc;

	bool one_dir = o->nsources == 1 && !stat(o->sources[0], &st) &&
	    S_ISDIR(st.st_mode);

	for (size_t i = 0; i < o->nsources; i++)
		if ((rc = check_tree(o->sources[i], one_dir ? "" :
		    base_name(o->sources[i]), 0, err)))
			return rc;
	if (one_dir) {
		/* One directory: its entries are the checkpoint's files. */
		DIR *d = opendir(o->sources[0]);
		struct dirent *de;

		if (!d)
			return ckpt_error_errno(err, o->sources[0],
			    "cannot open directory");
		rc = CKPT_OK;
		while (!rc && (de = readdir(d))) {
			char *c;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name,
			    ".."))
				continue;
			c = ckpt_join(o->sources[0], de->d_name);
			if (!c) {
				rc = ckpt_error_nomem(err);
				break;
			}
			rc = add_map(sv, c, de->d_name, err);
			free(c);
		}
		closedir(d);
		if (!rc && !sv->nmap)
			rc = ckpt_error_set(err, CKPT_ERR_INVALID,
			    o->sources[0], -1, "directory is empty");
		if (!rc && (sv->transfer == CKPT_TRANSFER_MOVE ||
		    sv->transfer == CKPT_TRANSFER_AUTO)) {
			sv->emptied_dirs = calloc(1, sizeof(char *));
			if (!sv->emptied_dirs || !(sv->emptied_dirs[0] =
			    realpath(o->sources[0], NULL)))
				return ckpt_error_nomem(err);
			sv->nemptied = 1;
		}
		return rc;
	}
	for (size_t i = 0; i < o->nsources; i++)
		if ((rc = add_map(sv, o->sources[i], base_name(o->sources[i]),
		    err)))
			return rc;
	return CKPT_OK;
}

/*
 * Creates the copy of regular file src (st: its lstat) at dst, empty, and
 * lists it for the pass that fills and digests it (copy_in).
 */
static int
add_copy(struct ckpt_save *sv, const char *src, const char *dst,
    const struct stat *st, struct ckpt_error *err)
{
	struct cfile *c = reallocarray(sv->copies, sv->ncopies + 1,
	    sizeof(*c));

	if (!c)
		return ckpt_error_nomem(err);
	sv->copies = c;
	c = &c[sv->ncopies];
	memset(c, 0, sizeof(*c));
	c->fd = c->dfd = -1;
	c->st = *st;
	c->src = strdup(src);
	c->dst = strdup(dst);
	sv->ncopies++;
	if (!c->src || !c->dst)
		return ckpt_error_nomem(err);
	/* The source's permission bits, less the umask: a copy of a 0600
	 * file is never readable by more people than the file. */
	c->fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, st->st_mode & 0777);
	if (c->fd < 0)
		return ckpt_error_errno(err, dst, "cannot create");
	/* The copy's whole blocks are written with O_DIRECT (hashing.c);
	 * a filesystem that refuses it (EINVAL) gets buffered writes. */
	c->dfd = open(dst, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
	return CKPT_OK;
}

/* ckpt_mirror_tree's leaf of a --copy save: add_copy. */
static int
copy_leaf(const char *src, const char *dst, const struct stat *st,
    void *data, struct ckpt_error *err)
{
	return add_copy(data, src, dst, st, err);
}

/* The tree at src as empty copies in the local staging directory, as
 * rel, listed for copy_in. */
static int
copy_tree_at(struct ckpt_save *sv, const char *src, const char *rel,
    struct ckpt_error *err)
{
	char *dst = ckpt_join(sv->staging, rel);
	int rc = dst ? ckpt_mirror_tree(src, dst, copy_leaf, sv, err) :
	    ckpt_error_nomem(err);

	free(dst);
	return rc;
}

/*
 * Moves moved sources back where they came from (after a failure or an
 * interrupt).  What cannot go back stays in the staging directory, listed
 * in its record ("sources"), counted in nstranded; "ckpt gc --restore"
 * tries again.
 */
static void
undo_moves(struct ckpt_save *sv)
{
	const struct ckpt_store *s = sv->store;

	if (!sv->moved || sv->committed)
		return;
	sv->nstranded = 0;
	for (size_t i = 0; i < sv->nmap; i++) {
		int rc;

		if (!sv->map[i].in_staging)
			continue;
		rc = s->ops->stage_untake(s->be, sv->stage, sv->map[i].rel,
		    sv->map[i].src, NULL);
		if (!rc || rc == CKPT_ERR_NOTFOUND)
			sv->map[i].in_staging = false;
		else
			sv->nstranded++;
	}
	sv->moved = sv->nstranded > 0;
}

/* How stage_file brings a source in for a transfer (backend.h). */
static unsigned int
stage_flags(enum ckpt_transfer t)
{
	switch (t) {
	case CKPT_TRANSFER_MOVE:
		return CKPT_BE_STAGE_TAKE;
	case CKPT_TRANSFER_COPY:
		return 0;
	case CKPT_TRANSFER_LINK:
		return CKPT_BE_STAGE_SHARE_ONLY;
	default:		/* ADOPT: hard links, else copies */
		return CKPT_BE_STAGE_SHARE;
	}
}

static int
transfer_in(struct ckpt_save *sv, bool copies_too, struct ckpt_error *err)
{
	const struct ckpt_store *s = sv->store;
	int rc;

	if (sv->transfer == CKPT_TRANSFER_STAGED ||	/* no sources */
	    (sv->transfer == CKPT_TRANSFER_COPY && !copies_too))
		return CKPT_OK;
	for (size_t i = 0; i < sv->nmap; i++) {
		bool taken = false;

		if (ckpt_interrupt_pending())
			return ckpt_error_interrupted(err, "moving files in");
		/* A copy is made in the local staging directory by the copy
		 * pass (copy_in), which digests it as it writes it. */
		rc = sv->transfer == CKPT_TRANSFER_COPY ? copy_tree_at(sv,
		    sv->map[i].src, sv->map[i].rel, err) : s->ops->stage_file(
		    s->be, sv->stage, sv->map[i].rel, sv->map[i].src,
		    stage_flags(sv->transfer), &taken, err);
		if (taken) {
			sv->moved = true;
			sv->map[i].in_staging = true;
			sv->nmoved_ever++;
		}
		if (rc)
			return rc;
	}
	return CKPT_OK;
}

/*
 * Opens the staging area (backend.h: stage_begin) with its durable record
 * already inside, so that gc never takes a live save's area for an
 * abandoned one.
 */
static int
create_staging(struct ckpt_save *sv, struct ckpt_error *err)
{
	const struct ckpt_store *s = sv->store;
	char name[64], *text;
	int rc;

	snprintf(name, sizeof(name), "step-%lld.%ld", (long long)sv->step,
	    (long)getpid());
	if (!(text = status_text(sv, CKPT_PHASE_STAGING, "active", NULL)))
		return ckpt_error_nomem(err);
	rc = s->ops->stage_begin(s->be, sv->run_key, name, text, strlen(text),
	    &sv->stage, &sv->staging, err);
	free(text);
	if (rc)
		return rc;
	sv->has_record = true;
	if (!(sv->path = strdup(sv->staging)))
		return ckpt_error_nomem(err);
	return CKPT_OK;
}

/*
 * save picks --move when every source is on the filesystem of the
 * staging area (a rename), else --copy.
 */
static int
resolve_auto(struct ckpt_save *sv, struct ckpt_error *err)
{
	struct stat st, rst;

	if (sv->transfer != CKPT_TRANSFER_AUTO)
		return CKPT_OK;
	/* A remote store's staging area is a local spool: a move would
	 * take the user's files for a copy that ends up elsewhere. */
	if (sv->store->ops != &ckpt_backend_posix) {
		sv->transfer = CKPT_TRANSFER_COPY;
		return CKPT_OK;
	}
	if (stat(sv->staging, &rst))
		return ckpt_error_errno(err, sv->staging, "cannot stat");
	sv->transfer = CKPT_TRANSFER_MOVE;
	for (size_t i = 0; i < sv->nmap; i++)
		if (stat(sv->map[i].src, &st) || st.st_dev != rst.st_dev)
			sv->transfer = CKPT_TRANSFER_COPY;
	/* Before a file is taken, the record says --move, durably. */
	return write_status(sv, CKPT_PHASE_STAGING, "active", NULL) ?
	    ckpt_error_set(err, CKPT_ERR_IO, sv->staging, -1, "cannot write "
	    "the staging record in") : CKPT_OK;
}

int
ckpt_save_begin(struct ckpt_store *s, const struct ckpt_save_options *opts,
    struct ckpt_save **out, struct ckpt_error *err)
{
	struct ckpt_save *sv;
	struct ckpt_be_info info;
	json_error_t je;
	int rc;

	if ((rc = ckpt_options_check(opts->version,
	    CKPT_SAVE_OPTIONS_VERSION, "ckpt_save_options", err)))
		return rc;
	if ((rc = ckpt_name_check(opts->run, "run name", err)))
		return rc;
	if (opts->step < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "step must be a non-negative integer");
	if (!opts->nsources != (opts->transfer == CKPT_TRANSFER_STAGED))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    opts->nsources ? "a staged save takes no sources" :
		    "nothing to save");
	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return ckpt_error_nomem(err);
	pthread_mutex_init(&sv->mu, NULL);
	sv->store = s;
	sv->opts = *opts;
	sv->step = opts->step;
	sv->run = strdup(opts->run);
	sv->created = (int64_t)time(NULL);
	ckpt_iso_time(sv->created, sv->created_iso, sizeof(sv->created_iso));
	if (opts->metadata_json && *opts->metadata_json) {
		sv->meta = json_loads(opts->metadata_json,
		    JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(sv->meta)) {
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "metadata is not a JSON object: %s", je.text);
			goto fail;
		}
	} else {
		sv->meta = json_object();
	}
	if (sv->meta && (rc = ckpt_capture_metadata(sv->meta, opts, err)))
		goto fail;
	if (!sv->run || !sv->meta || asprintf(&sv->run_key,
	    CKPT_STORE_RUNS "/%s", sv->run) < 0 || asprintf(&sv->final_key,
	    "%s/step-%lld", sv->run_key, (long long)sv->step) < 0 ||
	    !(sv->rundir = ckpt_store_path(s, sv->run_key)) ||
	    !(sv->final = ckpt_store_path(s, sv->final_key))) {
		rc = ckpt_error_nomem(err);
		goto fail;
	}
	/* Fail closed: only "not there" lets a save without --force on. */
	rc = s->ops->stat(s->be, sv->final_key, &info, err);
	if (!rc && !opts->force) {
		rc = ckpt_error_set(err, CKPT_ERR_EXISTS, NULL, -1,
		    "%s@%lld exists already (use --force to replace it)",
		    sv->run, (long long)sv->step);
		goto fail;
	}
	if (rc && rc != CKPT_ERR_NOTFOUND)
		goto fail;
	if (err)
		ckpt_error_clear(err);
	if ((rc = s->ops->mkprefix(s->be, sv->run_key, &sv->made_rundir,
	    err)))
		goto fail;
	sv->transfer = opts->transfer;
	if ((rc = plan_sources(sv, err)))
		goto fail;
	for (size_t i = 0; i < sv->nmap; i++) {
		size_t n = strlen(sv->rundir);

		/* Saving from inside the destination run makes no sense. */
		if (!strncmp(sv->map[i].src, sv->rundir, n) &&
		    (sv->map[i].src[n] == '/' || !sv->map[i].src[n])) {
			rc = ckpt_error_set(err, CKPT_ERR_INVALID,
			    sv->map[i].src, -1, "is inside the store's run "
			    "directory");
			goto fail;
		}
	}
	/* From here a SIGINT unwinds (undo the moves) instead of killing. */
	ckpt_interrupt_hold();
	sv->held = true;
	if ((rc = create_staging(sv, err)))
		goto fail;
	if ((rc = resolve_auto(sv, err)) ||
	    (rc = transfer_in(sv, false, err))) {
		char msg[CKPT_ERROR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err ? err->message :
		    "transfer failed");
		undo_moves(sv);
		write_status(sv, CKPT_PHASE_STAGING, "failed", msg);
		if (sv->nstranded)
			ckpt_error_set(err, rc, NULL, -1, "%s; %zu moved "
			    "file%s could not be moved back and stay in %s "
			    "('ckpt gc --restore' tries again)", msg,
			    sv->nstranded, sv->nstranded == 1 ? "" : "s",
			    sv->staging);
		goto fail;
	}
	*out = sv;
	return CKPT_OK;
fail:
	ckpt_save_free(sv);
	return rc;
}

/* ------------------------------------------------------------------ */
/* finish                                                              */
/* ------------------------------------------------------------------ */

static int
cmp_sfile(const void *a, const void *b)
{
	return strcmp(((const struct sfile *)a)->rel,
	    ((const struct sfile *)b)->rel);
}

/* Lists the regular file abs (st: its lstat) as rel; takes abs, rel. */
static int
add_file(struct ckpt_save *sv, char *abs, char *rel, const struct stat *st,
    struct ckpt_error *err)
{
	struct sfile *f = reallocarray(sv->files, sv->nfiles + 1, sizeof(*f));

	if (!f) {
		free(abs);
		free(rel);
		return ckpt_error_nomem(err);
	}
	sv->files = f;
	f = &f[sv->nfiles++];
	memset(f, 0, sizeof(*f));
	f->abs = abs;
	f->rel = rel;
	f->size = (uint64_t)st->st_size;
	f->src_st = *st;
	return CKPT_OK;
}

static int
collect(struct ckpt_save *sv, const char *dir, const char *prefix,
    int depth, struct ckpt_error *err)
{
	struct dirent *de;
	DIR *d;
	int rc = CKPT_OK;

	if (depth > MAX_DEPTH)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, dir, -1,
		    "directories nested too deep");
	d = opendir(dir);
	if (!d)
		return ckpt_error_errno(err, dir, "cannot open directory");
	while (!rc && (de = readdir(d))) {
		struct stat st;
		char *abs, *rel;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*prefix && reserved_name(de->d_name))
			continue;
		abs = ckpt_join(dir, de->d_name);
		rel = *prefix ? ckpt_join(prefix, de->d_name) :
		    strdup(de->d_name);
		if (!abs || !rel) {
			free(abs);
			free(rel);
			rc = ckpt_error_nomem(err);
			break;
		}
		if (lstat(abs, &st)) {
			rc = ckpt_error_errno(err, abs, "cannot stat");
		} else if (S_ISDIR(st.st_mode)) {
			rc = collect(sv, abs, rel, depth + 1, err);
		} else if (!S_ISREG(st.st_mode)) {
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, abs, -1,
			    "not a regular file");
		} else {
			rc = add_file(sv, abs, rel, &st, err);
			continue;
		}
		free(abs);
		free(rel);
	}
	closedir(d);
	return rc;
}

/* Direct: lists the source tree src as rel (no link followed). */
static int
collect_source(struct ckpt_save *sv, const char *src, const char *rel,
    int depth, struct ckpt_error *err)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = CKPT_OK;

	if (lstat(src, &st))
		return ckpt_error_errno(err, src, "cannot stat");
	if (S_ISREG(st.st_mode)) {
		char *a = strdup(src), *r = strdup(rel);

		if (!a || !r) {
			free(a);
			free(r);
			return ckpt_error_nomem(err);
		}
		return add_file(sv, a, r, &st, err);
	}
	if (!S_ISDIR(st.st_mode) || depth > MAX_DEPTH)
		return ckpt_error_set(err, CKPT_ERR_INVALID, src, -1,
		    "not a regular file or directory");
	if (!(d = opendir(src)))
		return ckpt_error_errno(err, src, "cannot open directory");
	while (!rc && (de = readdir(d))) {
		char *s, *r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		s = ckpt_join(src, de->d_name);
		r = ckpt_join(rel, de->d_name);
		rc = s && r ? collect_source(sv, s, r, depth + 1, err) :
		    ckpt_error_nomem(err);
		free(s);
		free(r);
	}
	closedir(d);
	return rc;
}

/* Direct: every source, as collect lists a staging directory. */
static int
collect_sources(struct ckpt_save *sv, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (size_t i = 0; i < sv->nmap && !rc; i++)
		rc = collect_source(sv, sv->map[i].src, sv->map[i].rel, 0,
		    err);
	return rc;
}

static int
fsync_path(const char *p, struct ckpt_error *err)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC), rc = CKPT_OK;

	if (fd < 0)
		return ckpt_error_errno(err, p, "cannot open");
	/* Any fsync error fails the save: no retry-and-trust. */
	if (fsync(fd))
		rc = ckpt_error_errno(err, p, "cannot fsync");
	close(fd);
	return rc;
}

static bool
is_safety_finding(const struct ckpt_finding *x)
{
	return !strcmp(x->id, "unsafe-global") ||
	    !strcmp(x->id, "unsafe-call") || !strcmp(x->id, "unsafe-opcode");
}

/* Adds subject to the file validation's "unsafe_globals", once. */
static void
note_unsafe(json_t *validation, const char *subject)
{
	json_t *list = json_object_get(validation, "unsafe_globals"), *v;
	size_t i;

	if (!subject)
		subject = "(unnamed)";
	if (!list) {
		list = json_array();
		json_object_set_new(validation, "unsafe_globals", list);
	}
	json_array_foreach(list, i, v)
		if (!strcmp(json_string_value(v), subject))
			return;
	json_array_append_new(list, json_string(subject));
}

/*
 * A reader's error finding x in a file's validation.  The validation is
 * about structure: a well-formed pickle that references classes
 * torch.load(weights_only=True) would refuse (a Hugging Face
 * training_args.bin) is recorded, and judged by verify, where
 * verify.allow_globals can admit it; any other error fails the file, the
 * first one saying why and where.
 */
static int
note_finding(json_t *validation, const struct ckpt_finding *x)
{
	char *why;
	int rc;

	if (x->severity != CKPT_SEV_ERROR)
		return CKPT_OK;
	if (is_safety_finding(x)) {
		note_unsafe(validation, x->subject);
		return CKPT_OK;
	}
	if (json_object_get(validation, "error"))
		return CKPT_OK;
	if (x->offset >= 0 && !strstr(x->message, "at byte"))
		rc = asprintf(&why, "%s (at byte %lld)", x->message,
		    (long long)x->offset);
	else
		rc = (why = strdup(x->message)) ? 0 : -1;
	if (rc < 0)
		return CKPT_ERR_NOMEM;
	json_object_set_new(validation, "result", json_string("failed"));
	json_object_set_new(validation, "error", json_string(why));
	free(why);
	return CKPT_OK;
}

/*
 * The file's ranges (manifest schema 2): each byte in exactly one, a
 * tensor whose content is its bytes in a range of its own, the rest cut
 * into chunks (ckpt_ranges_plan).
 */
static int
plan_parts(struct ckpt_save *sv, struct sfile *f, const bool *keep,
    struct ckpt_error *err)
{
	return ckpt_ranges_plan(f->size, f->ranges, keep, f->ntensor_ranges,
	    sv->opts.chunk_size, &f->parts, &f->nparts, err);
}

/* The range that is exactly [off, end), or nparts. */
static size_t
find_part(const struct sfile *f, uint64_t off, uint64_t end)
{
	size_t lo = 0, hi = f->nparts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->parts[mid].offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->nparts && f->parts[lo].offset == off &&
	    f->parts[lo].end == end ? lo : f->nparts;
}

/*
 * The content digests of a file's tensors (manifest schema 2): a tensor
 * whose content is its bytes, in a range of its own, has its range's
 * digest (no extra work); any other (views, strided, big-endian) is
 * computed from its gathered elements, the tensors spread over every
 * core, which hashes only those elements.  A tensor without one (sparse,
 * quantized) is recorded without one.
 */
static int
plan_contents(struct ckpt_save *sv, struct sfile *f,
    const struct ckpt_file *cf, const bool *keep, const size_t *idx,
    struct ckpt_error *err)
{
	size_t nr = f->ntensor_ranges + 1, n = 0;
	const struct ckpt_tensor **gt = calloc(nr, sizeof(*gt));
	size_t *gk = calloc(nr, sizeof(*gk));
	unsigned char (*d)[CKPT_SHA256_BYTES] = calloc(nr, sizeof(*d));
	int *rcs = calloc(nr, sizeof(*rcs)), rc = CKPT_OK;
	struct ckpt_error *errs = calloc(nr, sizeof(*errs));

	if (!gt || !gk || !d || !rcs || !errs) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t k = 0; k < f->ntensor_ranges; k++) {
		struct tcontent *c = &f->content[k];

		if (keep[k] && (c->range = find_part(f, f->ranges[k].offset,
		    f->ranges[k].end)) < f->nparts) {
			c->src = CONTENT_RANGE;
			continue;
		}
		gk[n] = k;
		gt[n++] = ckpt_file_tensor(cf, idx[k]);
	}
	ckpt_tensor_content_sha256_many(cf, gt, n, d, rcs, errs,
	    sv->opts.nthreads);
	for (size_t i = 0; i < n && !rc; i++) {
		struct tcontent *c = &f->content[gk[i]];

		if (rcs[i] == CKPT_ERR_NOMEM) {
			rc = ckpt_error_nomem(err);
		} else if (rcs[i] == CKPT_ERR_IO) {
			*err = errs[i];
			rc = rcs[i];
		} else if (!rcs[i]) {
			c->src = CONTENT_GATHERED;
			memcpy(c->digest, d[i], CKPT_SHA256_BYTES);
		}
	}
out:
	free(gt);
	free(gk);
	free(d);
	free(rcs);
	free(errs);
	return rc;
}

/*
 * The byte spans of cf's tensors that lie inside its size bytes, in the
 * reader's order: ranges[], whether each tensor's content is its bytes
 * (keep[]) and its index in cf (idx[]); with tensors, their manifest
 * entries too.
 */
static int
tensor_spans(const struct ckpt_file *cf, uint64_t size, json_t *tensors,
    struct ckpt_range_digest **ranges, bool **keep, size_t **idx, size_t *n,
    struct ckpt_error *err)
{
	size_t nt = ckpt_file_tensor_count(cf);

	*n = 0;
	*ranges = calloc(nt + 1, sizeof(**ranges));
	*keep = calloc(nt + 1, sizeof(**keep));
	*idx = calloc(nt + 1, sizeof(**idx));
	if (!*ranges || !*keep || !*idx)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < nt; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(cf, i);
		uint64_t end;

		if (!ckpt_add_u64(t->offset, t->span, &end) || end > size)
			continue;	/* the reader reported it already */
		if (tensors) {
			json_t *shape = json_array();

			for (unsigned int k = 0; k < t->ndim; k++)
				json_array_append_new(shape, json_integer(
				    (json_int_t)t->shape[k]));
			json_array_append_new(tensors, json_pack("{s:s, s:s,"
			    " s:o, s:I, s:I}", "name", t->name ? t->name : "",
			    "dtype", ckpt_dtype_name(t->dtype) ?
			    ckpt_dtype_name(t->dtype) : "?", "shape", shape,
			    "offset", (json_int_t)t->offset, "size",
			    (json_int_t)t->span));
		}
		(*ranges)[*n].offset = t->offset;
		(*ranges)[*n].end = end;
		(*keep)[*n] = ckpt_tensor_content_is_bytes(t);
		(*idx)[*n] = i;
		(*n)++;
	}
	return CKPT_OK;
}

/* Reads a file's structure: format, tensors, validation result. */
static int
examine(struct ckpt_save *sv, struct sfile *f, struct ckpt_error *err)
{
	struct ckpt_file *cf;
	struct ckpt_error e;
	bool *keep = NULL;
	size_t nt, *idx = NULL;
	int rc;

	ckpt_error_clear(&e);
	rc = ckpt_file_open_ex(f->abs, &sv->open_opts, &cf, &e);
	if (rc == CKPT_ERR_NOMEM)
		return ckpt_error_nomem(err);
	if (rc) {
		/* Readers not yet able to read a format say "unsupported":
		 * the file is then recorded by format alone. */
		f->format = "unknown";
		f->validation = json_pack("{s:s, s:s}", "result", rc ==
		    CKPT_ERR_UNSUPPORTED ? "skipped" : "failed", "error",
		    e.message);
		if (rc == CKPT_ERR_UNSUPPORTED) {
			unsigned char head[512];
			char why[64];
			ssize_t n;
			int fd = open(f->abs, O_RDONLY | O_CLOEXEC);

			if (fd >= 0) {
				n = pread(fd, head, sizeof(head), 0);
				close(fd);
				if (n > 0) {
					f->fmt = ckpt_sniff(head, (size_t)n,
					    f->size, f->abs, why, sizeof(why));
					f->format = ckpt_format_name(f->fmt);
				}
			}
		}
		return plan_parts(sv, f, NULL, err);
	}
	f->fmt = ckpt_file_format(cf);
	f->format = ckpt_format_name(f->fmt);
	nt = ckpt_file_tensor_count(cf);
	f->validation = json_pack("{s:s, s:I}", "result", "ok", "findings",
	    (json_int_t)ckpt_file_finding_count(cf));
	for (size_t i = 0; i < ckpt_file_finding_count(cf) && !rc; i++)
		if (note_finding(f->validation, ckpt_file_finding(cf, i)))
			rc = ckpt_error_nomem(err);
	if (ckpt_file_metadata_json(cf))
		f->metadata = strdup(ckpt_file_metadata_json(cf));
	f->tensors = json_array();
	f->content = calloc(nt + 1, sizeof(*f->content));
	rc = rc ? rc : !f->tensors || !f->content ? ckpt_error_nomem(err) :
	    tensor_spans(cf, f->size, f->tensors, &f->ranges, &keep, &idx,
	    &f->ntensor_ranges, err);
	if (!rc)
		rc = plan_parts(sv, f, keep, err);
	if (!rc)
		rc = plan_contents(sv, f, cf, keep, idx, err);
	free(keep);
	free(idx);
	ckpt_file_free(cf);
	return rc;
}

static json_t *
digest_json(const unsigned char *d)
{
	char buf[8 + 2 * CKPT_SHA256_BYTES + 1];

	memcpy(buf, "sha256:", 7);
	ckpt_hex(d, CKPT_SHA256_BYTES, buf + 7);
	return json_string(buf);
}

/* A file that is one range (or empty) has its whole digest for free. */
static bool
whole_is_free(const struct ckpt_range_digest *parts, size_t nparts,
    uint64_t size)
{
	return !nparts || (nparts == 1 && parts[0].offset == 0 &&
	    parts[0].end == size);
}

static json_t *
file_entry(const struct ckpt_save *sv, const struct sfile *f,
    const unsigned char *whole, bool has_whole)
{
	json_t *ranges = json_array(), *e;

	for (size_t k = 0; k < f->nparts; k++)
		json_array_append_new(ranges, json_pack("{s:I, s:I, s:o}",
		    "offset", (json_int_t)f->parts[k].offset, "size",
		    (json_int_t)(f->parts[k].end - f->parts[k].offset),
		    "sha256", digest_json(f->parts[k].sha256)));
	for (size_t k = 0; k < f->ntensor_ranges; k++) {
		const struct tcontent *c = &f->content[k];

		if (c->src == CONTENT_NONE)
			continue;
		json_object_set_new(json_array_get(f->tensors, k),
		    "content_sha256", digest_json(c->src == CONTENT_RANGE ?
		    f->parts[c->range].sha256 : c->digest));
	}
	e = json_pack("{s:s, s:I, s:s, s:I, s:o, s:o}", "path", f->rel,
	    "size", (json_int_t)f->size, "format", f->format, "chunk_size",
	    (json_int_t)(sv->opts.chunk_size ? sv->opts.chunk_size :
	    CKPT_CHUNK_SIZE), "ranges", ranges, "tensors", f->tensors ?
	    json_incref(f->tensors) : json_array());
	if (e && has_whole)
		json_object_set_new(e, "sha256", digest_json(whole));
	return e;
}

/* ------------------------------------------------------------------ */
/* --copy: one read pass copies and digests                            */
/* ------------------------------------------------------------------ */

static int
cmp_cfile(const void *a, const void *b)
{
	return strcmp(((const struct cfile *)a)->dst,
	    ((const struct cfile *)b)->dst);
}

/*
 * A copy's ranges, planned from its source as examine will plan them
 * from the copy: the same bytes give the same plan, so the digests of
 * the copy pass are the copy's; a source that changed between the two
 * gives another plan, and the copy is then hashed again.
 */
static int
plan_copy_parts(struct ckpt_save *sv, struct cfile *c,
    struct ckpt_error *err)
{
	struct ckpt_range_digest *spans = NULL;
	struct ckpt_file *cf;
	struct ckpt_error e;
	uint64_t size = (uint64_t)c->st.st_size;
	bool *keep = NULL;
	size_t n = 0, *idx = NULL;
	int rc;

	ckpt_error_clear(&e);
	rc = ckpt_file_open_ex(c->src, &sv->open_opts, &cf, &e);
	if (rc == CKPT_ERR_NOMEM)
		return ckpt_error_nomem(err);
	if (!rc) {
		rc = tensor_spans(cf, size, NULL, &spans, &keep, &idx, &n,
		    err);
		ckpt_file_free(cf);
	} else {
		rc = CKPT_OK;	/* unreadable: chunks, as examine does */
	}
	if (!rc)
		rc = ckpt_ranges_plan(size, spans, keep, n, sv->opts.chunk_size,
		    &c->parts, &c->nparts, err);
	free(spans);
	free(keep);
	free(idx);
	return rc;
}

/* Closes the copies; a close error fails (NFS reports write errors so). */
static int
close_copies(struct ckpt_save *sv, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (size_t i = 0; i < sv->ncopies; i++) {
		struct cfile *c = &sv->copies[i];

		if (c->dfd >= 0 && close(c->dfd) && !rc)
			rc = ckpt_error_errno(err, c->dst, "cannot close");
		if (c->fd >= 0 && close(c->fd) && !rc)
			rc = ckpt_error_errno(err, c->dst, "cannot close");
		c->fd = c->dfd = -1;
	}
	return rc;
}

/*
 * A source written to while it was copied would give a torn copy (part
 * old, part new bytes) whose digests, though true to the copy, describe
 * no state the trainer ever wrote: the save fails instead.
 */
static int
check_source_unchanged(const struct cfile *c, uint64_t copied,
    struct ckpt_error *err)
{
	struct stat st;

	if (stat(c->src, &st))
		return ckpt_error_errno(err, c->src, "cannot stat");
	if (copied != (uint64_t)c->st.st_size || st.st_size != c->st.st_size ||
	    st.st_ino != c->st.st_ino || st.st_dev != c->st.st_dev ||
	    st.st_mtim.tv_sec != c->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != c->st.st_mtim.tv_nsec)
		return ckpt_error_set(err, CKPT_ERR_IO, c->src, -1, "changed "
		    "while being copied (%llu bytes, then %llu); nothing was "
		    "saved", (unsigned long long)c->st.st_size,
		    (unsigned long long)st.st_size);
	return CKPT_OK;
}

/*
 * --copy: the hashing engine copies every source into the staging
 * directory and digests the bytes while a writer thread per file writes
 * them (the ranges planned from the source, and the whole file where the
 * store asks for it): one read of each byte for the copy and its
 * digests, on every core (ckpt_hash_copy_files), the writeback started
 * as it goes.  The copies
 * are made durable by the fsyncs of the commit, as any other file.
 */
static int
copy_in(struct ckpt_save *sv, struct ckpt_error *err)
{
	struct ckpt_hash_job *jobs;
	struct ckpt_hash_copy *hc;
	int rc;

	if ((rc = transfer_in(sv, true, err))) {
		close_copies(sv, NULL);
		return rc;
	}
	for (size_t i = 0; i < sv->ncopies && !rc; i++)
		rc = plan_copy_parts(sv, &sv->copies[i], err);
	jobs = calloc(sv->ncopies + 1, sizeof(*jobs));
	hc = calloc(sv->ncopies + 1, sizeof(*hc));
	if (!rc && (!jobs || !hc))
		rc = ckpt_error_nomem(err);
	for (size_t i = 0; !rc && i < sv->ncopies; i++) {
		struct cfile *c = &sv->copies[i];

		jobs[i].path = c->src;
		jobs[i].ranges = c->parts;
		jobs[i].nranges = c->nparts;
		jobs[i].whole = sv->file_sha256 && !whole_is_free(c->parts,
		    c->nparts, (uint64_t)c->st.st_size);
		hc[i].fd = c->fd;
		hc[i].dfd = c->dfd;
		hc[i].path = c->dst;
	}
	if (!rc)
		rc = ckpt_hash_copy_files(jobs, hc, sv->ncopies,
		    sv->opts.nthreads, progress, sv, err);
	if (close_copies(sv, rc ? NULL : err) && !rc)
		rc = CKPT_ERR_IO;
	for (size_t i = 0; !rc && i < sv->ncopies; i++) {
		struct cfile *c = &sv->copies[i];

		c->whole = jobs[i].whole;
		memcpy(c->sha256, jobs[i].sha256, CKPT_SHA256_BYTES);
		rc = check_source_unchanged(c, jobs[i].size, err);
	}
	free(jobs);
	free(hc);
	if (!rc && sv->ncopies)
		qsort(sv->copies, sv->ncopies, sizeof(*sv->copies), cmp_cfile);
	return rc;
}

/*
 * The copy pass's digests of f, copied into f->parts, when f is a copy
 * whose ranges are the ones planned from its source (they are unless
 * the source changed in between); NULL: f is to be hashed.
 */
static const struct cfile *
copy_digests(const struct ckpt_save *sv, struct sfile *f)
{
	struct cfile key;
	const struct cfile *c;

	if (!sv->ncopies)
		return NULL;
	key.dst = f->abs;
	c = bsearch(&key, sv->copies, sv->ncopies, sizeof(*c), cmp_cfile);
	if (!c || c->nparts != f->nparts || (uint64_t)c->st.st_size !=
	    f->size || (sv->file_sha256 && !c->whole && !whole_is_free(
	    f->parts, f->nparts, f->size)))
		return NULL;
	for (size_t k = 0; k < f->nparts; k++)
		if (c->parts[k].offset != f->parts[k].offset ||
		    c->parts[k].end != f->parts[k].end)
			return NULL;
	for (size_t k = 0; k < f->nparts; k++)
		memcpy(f->parts[k].sha256, c->parts[k].sha256,
		    CKPT_SHA256_BYTES);
	return c;
}

/*
 * Direct: the digests of a file's ranges (a partition: each byte in
 * exactly one, in order) and, when asked, of the whole file, taken from
 * the bytes as the upload reads them (the observer of
 * ckpt_store_stage_upload), both streams in one pass (update2).
 */
struct up_hash {
	struct ckpt_save *sv;
	struct sfile *f;
	struct ckpt_sha256 whole, range;
	bool whole_on, range_on;
	size_t next;		/* the range being digested */
	uint64_t pos, done0;	/* bytes seen; of the files before */
	int rc;
	struct ckpt_error err;
};

/* Ends every range that ends at pos, starting the next. */
static int
up_hash_close(struct up_hash *u)
{
	const struct sfile *f = u->f;

	while (u->range_on && u->pos == f->parts[u->next].end) {
		u->range_on = false;
		if ((u->rc = ckpt_sha256_final(&u->range,
		    f->parts[u->next].sha256, &u->err)))
			return u->rc;
		if (++u->next < f->nparts) {
			if ((u->rc = ckpt_sha256_init(&u->range, &u->err)))
				return u->rc;
			u->range_on = true;
		}
	}
	return 0;
}

static int
up_hash_observe(void *arg, const void *data, size_t n)
{
	struct up_hash *u = arg;
	const unsigned char *p = data;

	while (n) {
		uint64_t left;
		size_t k;

		if (!u->range_on) {
			u->rc = ckpt_error_set(&u->err, CKPT_ERR_IO, u->f->abs,
			    (int64_t)u->pos, "grew while it was uploaded; "
			    "nothing was saved");
			return u->rc;
		}
		left = u->f->parts[u->next].end - u->pos;
		k = n < left ? n : (size_t)left;
		if (u->whole_on)
			ckpt_sha256_update2(&u->whole, p, &u->range, p, k);
		else
			ckpt_sha256_update(&u->range, p, k);
		p += k;
		n -= k;
		u->pos += k;
		if (up_hash_close(u))
			return u->rc;
	}
	progress(u->done0 + u->pos, u->sv->total, u->sv);
	return 0;
}

/* Direct: uploads f from its source into the staging area, job's
 * digests (its ranges into f->parts) taken in the same read pass. */
static int
upload_hashed(struct ckpt_save *sv, struct sfile *f, struct ckpt_hash_job *job,
    uint64_t done0, struct ckpt_error *err)
{
	struct up_hash u = { .sv = sv, .f = f, .whole_on = job->whole,
	    .done0 = done0 };
	int rc;

	ckpt_error_clear(&u.err);
	if (u.whole_on && (rc = ckpt_sha256_init(&u.whole, err)))
		return rc;
	if (f->nparts && (rc = ckpt_sha256_init(&u.range, err)))
		goto out;
	u.range_on = f->nparts > 0;
	if (!up_hash_close(&u))
		rc = ckpt_store_stage_upload(sv->store, sv->stage, f->rel,
		    f->abs, &f->src_st, up_hash_observe, &u, err);
	if (u.rc) {
		rc = u.rc;
		if (err)
			*err = u.err;
	}
	if (!rc && (u.pos != f->size || u.next != f->nparts))
		rc = ckpt_error_set(err, CKPT_ERR_IO, f->abs, (int64_t)u.pos,
		    "changed size while it was uploaded; nothing was saved");
	if (!rc && u.whole_on) {
		u.whole_on = false;
		rc = ckpt_sha256_final(&u.whole, job->sha256, err);
	}
	if (!rc)
		job->size = u.pos;
out:
	if (u.range_on)
		ckpt_sha256_release(&u.range);
	if (u.whole_on)
		ckpt_sha256_release(&u.whole);
	return rc;
}

/* Direct: every file uploaded and digested, one after the other (each
 * one's parts in flight in parallel). */
static int
upload_all(struct ckpt_save *sv, struct ckpt_hash_job *jobs,
    struct ckpt_error *err)
{
	uint64_t done = 0;
	int rc = CKPT_OK;

	sv->total = 0;
	for (size_t i = 0; i < sv->nfiles; i++)
		sv->total += sv->files[i].size;
	for (size_t i = 0; i < sv->nfiles && !rc; i++) {
		if (ckpt_interrupt_pending())
			return ckpt_error_interrupted(err, "uploading");
		rc = upload_hashed(sv, &sv->files[i], &jobs[i], done, err);
		done += sv->files[i].size;
	}
	return rc;
}

/*
 * One read pass over every file: the digest of every range on every
 * core, and, where the store asks for it, the whole file's (a sequential
 * pass that carries the ranges as passengers, ckpt_hash_files); direct:
 * the pass that uploads them.
 */
static int
plan_and_hash(struct ckpt_save *sv, struct ckpt_error *err)
{
	struct ckpt_hash_job *jobs;
	const struct cfile **copied;
	int rc = CKPT_OK;

	jobs = calloc(sv->nfiles + 1, sizeof(*jobs));
	copied = calloc(sv->nfiles + 1, sizeof(*copied));
	if (!jobs || !copied) {
		free(jobs);
		free(copied);
		return ckpt_error_nomem(err);
	}
	for (size_t i = 0; i < sv->nfiles; i++) {
		struct sfile *f = &sv->files[i];

		jobs[i].path = f->abs;
		/* Digested as it was copied: only its size is checked. */
		if ((copied[i] = copy_digests(sv, f)))
			continue;
		jobs[i].ranges = f->parts;
		jobs[i].nranges = f->nparts;
		jobs[i].whole = sv->file_sha256 && !whole_is_free(f->parts,
		    f->nparts, f->size);
	}
	rc = sv->direct ? upload_all(sv, jobs, err) : ckpt_hash_files(jobs,
	    sv->nfiles, sv->opts.nthreads, progress, sv, err);
	for (size_t i = 0; !rc && i < sv->nfiles; i++) {
		struct sfile *f = &sv->files[i];
		bool free_whole = whole_is_free(f->parts, f->nparts,
		    f->size);

		if (jobs[i].size != f->size) {
			rc = ckpt_error_set(err, CKPT_ERR_IO, f->abs, -1,
			    "file changed size during the save");
			break;
		}
		if (copied[i] && copied[i]->whole)
			memcpy(jobs[i].sha256, copied[i]->sha256,
			    CKPT_SHA256_BYTES);
		if (free_whole && f->nparts)
			memcpy(jobs[i].sha256, f->parts[0].sha256,
			    CKPT_SHA256_BYTES);
		else if (free_whole && (rc = ckpt_hash_buffer(
		    CKPT_HASH_SHA256, "", 0, jobs[i].sha256, err)))
			break;
		/* Stash the file entry in the validation's owner. */
		f->validation = f->validation ? f->validation : json_pack(
		    "{s:s}", "result", "skipped");
		json_object_set_new(f->validation, "_entry", file_entry(sv, f,
		    jobs[i].sha256, free_whole || sv->file_sha256));
	}
	free(jobs);
	free(copied);
	return rc;
}

/* Whether the checkpoint holds optimizer state: names, pickle keys. */
static const char *
infer_scope(const struct ckpt_save *sv)
{
	bool any_known = false;

	for (size_t i = 0; i < sv->nfiles; i++) {
		const struct sfile *f = &sv->files[i];

		if (strstr(base_name(f->rel), "optim"))
			return "full";
		if (f->metadata && (strstr(f->metadata, "\"optimizer") ||
		    strstr(f->metadata, "\"optimizer_states\"")))
			return "full";
		if (f->ntensor_ranges)
			any_known = true;
	}
	return any_known ? "weights-only" : NULL;
}

/* transformers / lightning versions recorded by the checkpoint. */
static void
infer_frameworks(struct ckpt_save *sv)
{
	json_t *env = json_object_get(sv->meta, "environment");
	json_t *fw = json_object();

	for (size_t i = 0; i < sv->nfiles; i++) {
		const struct sfile *f = &sv->files[i];

		if (!strcmp(base_name(f->rel), "config.json")) {
			char *text;
			json_t *j;

			if (ckpt_read_file(f->abs, 16 << 20, &text, NULL, NULL))
				continue;
			j = json_loads(text, 0, NULL);
			free(text);
			if (json_is_string(json_object_get(j,
			    "transformers_version")))
				json_object_set(fw, "transformers",
				    json_object_get(j, "transformers_version"));
			if (json_is_string(json_object_get(j, "torch_dtype")))
				json_object_set(fw, "torch_dtype",
				    json_object_get(j, "torch_dtype"));
			json_decref(j);
		}
		if (f->metadata) {
			const char *p = strstr(f->metadata,
			    "\"pytorch-lightning_version\"");
			json_t *j;

			if (!p)
				continue;
			j = json_loads(f->metadata, 0, NULL);
			if (json_is_string(json_object_get(j,
			    "pytorch-lightning_version")))
				json_object_set(fw, "lightning",
				    json_object_get(j,
				    "pytorch-lightning_version"));
			json_decref(j);
		}
	}
	if (!json_object_size(fw)) {
		json_decref(fw);
		return;
	}
	if (!json_is_object(env)) {
		env = json_object();
		json_object_set_new(sv->meta, "environment", env);
	}
	json_object_set_new(env, "frameworks", fw);
}

static int
write_manifest(struct ckpt_save *sv, struct ckpt_error *err)
{
	json_t *m = json_deep_copy(sv->meta), *files = json_array(), *sum;
	json_t *val = json_object(), *vfiles = json_array();
	const char *result = "ok";
	unsigned char d[CKPT_SHA256_BYTES];
	uint64_t total = 0;
	char *text, *path;
	int rc;

	if (!m || !files || !val || !vfiles)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < sv->nfiles; i++) {
		json_t *v = sv->files[i].validation;
		const char *r = json_string_value(json_object_get(v,
		    "result"));

		json_array_append(files, json_object_get(v, "_entry"));
		total += sv->files[i].size;
		if (r && !strcmp(r, "failed"))
			result = "failed";
		if (r && (strcmp(r, "ok") || json_object_get(v,
		    "unsafe_globals"))) {
			json_t *c = json_pack("{s:s, s:s}", "path",
			    sv->files[i].rel, "result", r);

			if (json_object_get(v, "error"))
				json_object_set(c, "error", json_object_get(v,
				    "error"));
			if (json_object_get(v, "unsafe_globals"))
				json_object_set(c, "unsafe_globals",
				    json_object_get(v, "unsafe_globals"));
			json_array_append_new(vfiles, c);
		}
	}
	json_object_set_new(val, "result", json_string(result));
	json_object_set_new(val, "files", vfiles);
	json_object_set_new(val, "checked", json_integer((json_int_t)
	    sv->nfiles));
	if (!json_object_get(m, "scope") && infer_scope(sv))
		json_object_set_new(m, "scope", json_string(infer_scope(sv)));
	json_object_set_new(m, "validation", val);
	free(sv->validation);
	sv->validation = json_dumps(val, JSON_COMPACT);
	json_object_set_new(m, "schema", json_integer(CKPT_MANIFEST_SCHEMA));
	json_object_set_new(m, "run", json_string(sv->run));
	json_object_set_new(m, "step", json_integer(sv->step));
	json_object_set_new(m, "created", json_string(sv->created_iso));
	json_object_set_new(m, "host", json_string(ckpt_hostname()));
	json_object_set_new(m, "user", json_string(ckpt_user_name()));
	json_object_set_new(m, "ckpt_version", json_string(ckpt_version()));

	/* The summary: what ls needs, small, and covered by the manifest. */
	sum = json_object();
	json_object_set_new(sum, "schema", json_integer(1));
	json_object_set_new(sum, "size", json_integer((json_int_t)total));
	json_object_set_new(sum, "nfiles", json_integer((json_int_t)
	    sv->nfiles));
	{
		static const char *const keys[] = { "run", "step", "created",
			"epoch", "metrics", "tags", "scope", "note",
			"validation", "resumed_from" };

		for (size_t i = 0; i < CKPT_ARRAY_SIZE(keys); i++) {
			json_t *v = json_object_get(m, keys[i]);

			if (!v)
				continue;
			if (!strcmp(keys[i], "validation"))
				v = json_pack("{s:O}", "result",
				    json_object_get(v, "result"));
			else
				json_incref(v);
			json_object_set_new(sum, keys[i], v);
		}
	}
	text = json_dumps(sum, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(sum);
	path = ckpt_join(sv->staging, CKPT_SUMMARY_NAME);
	if (!text || !path) {
		free(text);
		free(path);
		json_decref(m);
		json_decref(files);
		return ckpt_error_nomem(err);
	}
	rc = ckpt_write_file_atomic(path, text, strlen(text), err);
	free(path);
	if (!rc)
		rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text, strlen(text), d,
		    err);
	if (!rc) {
		json_t *e = json_pack("{s:s, s:I, s:s, s:o, s:I, s:[{s:I, "
		    "s:I, s:o}], s:[]}", "path", CKPT_SUMMARY_NAME, "size",
		    (json_int_t)strlen(text), "format", "json", "sha256",
		    digest_json(d), "chunk_size", (json_int_t)
		    (sv->opts.chunk_size ? sv->opts.chunk_size :
		    CKPT_CHUNK_SIZE), "ranges", "offset", (json_int_t)0,
		    "size", (json_int_t)strlen(text), "sha256",
		    digest_json(d), "tensors");
		size_t pos = 0;

		/* Insert in byte order of paths. */
		while (pos < json_array_size(files) && strcmp(
		    json_string_value(json_object_get(json_array_get(files,
		    pos), "path")), CKPT_SUMMARY_NAME) < 0)
			pos++;
		json_array_insert_new(files, pos, e);
	}
	free(text);
	if (rc) {
		json_decref(m);
		json_decref(files);
		return rc;
	}
	json_object_set_new(m, "files", files);
	text = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(m);
	path = ckpt_join(sv->staging, CKPT_MANIFEST_NAME);
	if (!text || !path) {
		free(text);
		free(path);
		return ckpt_error_nomem(err);
	}
	rc = ckpt_write_file_atomic(path, text, strlen(text), err);
	if (!rc && !(rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text,
	    strlen(text), d, err))) {
		memcpy(sv->digest, "sha256:", 7);
		ckpt_hex(d, sizeof(d), sv->digest + 7);
	}
	free(path);
	free(text);
	return rc;
}

/*
 * A "save-force" record in the registry history (ckpt-log(1)): which
 * checkpoint replaced which.  The old manifest's digest (of its bytes,
 * read through the backend) is left out when it cannot be read (a broken
 * checkpoint is what --force replaces).
 */
static int
record_replace(struct ckpt_save *sv, struct ckpt_error *err)
{
	const struct ckpt_store *s = sv->store;
	unsigned char d[CKPT_SHA256_BYTES];
	char key[CKPT_NAME_MAX + 128], digest[8 + 2 * CKPT_SHA256_BYTES + 1];
	json_t *rec = json_pack("{s:s, s:s, s:I, s:s}", "action",
	    "save-force", "run", sv->run, "step", (json_int_t)sv->step,
	    "manifest", sv->digest);
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!rec)
		return ckpt_error_nomem(err);
	snprintf(key, sizeof(key), "%s/%s", sv->final_key, CKPT_MANIFEST_NAME);
	if (!s->ops->read(s->be, key, (size_t)1 << 30, &text, &len, NULL) &&
	    !ckpt_hash_buffer(CKPT_HASH_SHA256, text, len, d, NULL)) {
		memcpy(digest, "sha256:", 7);
		ckpt_hex(d, sizeof(d), digest + 7);
		json_object_set_new(rec, "replaced", json_string(digest));
	}
	free(text);
	rc = ckpt_reg_record_event(sv->store, rec, err);
	json_decref(rec);
	return rc;
}

/* --force: the new checkpoint in, the old one out to the trash. */
static int
replace_existing(struct ckpt_save *sv, struct ckpt_error *err)
{
	const struct ckpt_store *s = sv->store;
	char trash[CKPT_NAME_MAX + 96], key[CKPT_NAME_MAX + 128];
	int rc;

	if (ckpt_store_is_pinned(sv->store, sv->run, sv->step))
		return ckpt_error_set(err, CKPT_ERR_REFUSED, NULL, -1,
		    "%s@%lld is pinned; unpin it before replacing it",
		    sv->run, (long long)sv->step);
	{
		struct ckpt_list *l;
		bool prot = false;

		if (!ckpt_store_list(sv->store, sv->run, 0, &l, NULL)) {
			for (size_t i = 0; i < ckpt_list_count(l); i++)
				if (ckpt_list_entry(l, i)->step == sv->step &&
				    ckpt_list_entry(l, i)->protected_by_registry)
					prot = true;
			ckpt_list_free(l);
		}
		if (prot)
			return ckpt_error_set(err, CKPT_ERR_REFUSED, NULL, -1,
			    "%s@%lld is a registry version and cannot be "
			    "replaced", sv->run, (long long)sv->step);
	}
	snprintf(trash, sizeof(trash), "%s@%lld.%lld.%ld", sv->run,
	    (long long)sv->step, (long long)time(NULL), (long)getpid());
	/* Audited before it happens: no overwrite the history lacks. */
	if ((rc = record_replace(sv, err)))
		return rc;
	if ((rc = s->ops->commit_replace(s->be, sv->stage, sv->final_key,
	    trash, err)))
		return rc;
	/* Committed either way; a leftover is gc's to remove. */
	snprintf(key, sizeof(key), CKPT_STORE_TRASH "/%s", trash);
	if (sv->opts.discard_replaced)
		(void)s->ops->remove_tree(s->be, key, NULL);
	return CKPT_OK;
}

/*
 * The files' fsync runs in a thread of its own while the main thread
 * validates and hashes: the disk writes back what a copy (or the trainer)
 * left dirty while the CPUs digest it, and the manifest, written after the
 * join, still comes only after every file is durable.
 */
struct syncer {
	struct ckpt_save *sv;
	pthread_t th;
	bool threaded;
	int rc;
	struct ckpt_error err;
};

static void *
sync_files(void *arg)
{
	struct syncer *sy = arg;

	for (size_t i = 0; i < sy->sv->nfiles && !sy->rc; i++)
		sy->rc = fsync_path(sy->sv->files[i].abs, &sy->err);
	return NULL;
}

static void
sync_start(struct syncer *sy, struct ckpt_save *sv)
{
	memset(sy, 0, sizeof(*sy));
	sy->sv = sv;
	ckpt_error_clear(&sy->err);
	sy->threaded = !pthread_create(&sy->th, NULL, sync_files, sy);
}

/* Waits for the fsyncs (or does them, without a thread); their status. */
static int
sync_join(struct syncer *sy, struct ckpt_error *err)
{
	if (sy->threaded)
		pthread_join(sy->th, NULL);
	else
		sync_files(sy);
	if (sy->rc && err)
		*err = sy->err;
	return sy->rc;
}

/* What the store's ckpt.yaml says about saves. */
static void
load_config(struct ckpt_save *sv)
{
	/* Globals the store admits are not worth a note in the validation;
	 * a ckpt.yaml that does not parse admits none (prune says why), and
	 * a missing one loads as empty. */
	if (!ckpt_store_config_load(sv->store, &sv->cfg, NULL))
		sv->open_opts.allow_globals = ckpt_policy_config_allow_globals(
		    sv->cfg, &sv->open_opts.nallow_globals);
	sv->file_sha256 = sv->opts.file_sha256 ||
	    ckpt_policy_config_file_sha256(sv->cfg);
}

/* Whether a file asks for a whole-checkpoint check (an HF index, DCP
 * metadata), as verify decides it. */
static bool
needs_whole_check(const struct ckpt_save *sv)
{
	for (size_t i = 0; i < sv->nfiles; i++)
		if (ckpt_checkpoint_whole_check_file(sv->files[i].rel,
		    sv->files[i].fmt, sv->files[i].metadata))
			return true;
	return false;
}

/* The file of the checkpoint at path, or NULL. */
static struct sfile *
file_at(struct ckpt_save *sv, const char *path)
{
	for (size_t i = 0; path && i < sv->nfiles; i++)
		if (!strcmp(sv->files[i].abs, path))
			return &sv->files[i];
	return NULL;
}

/*
 * The checks verify runs over the whole checkpoint (an HF index against
 * its shards; DCP metadata against its chunks, their archives and every
 * range torch.load would read, dcpcheck.c), run on the staged files, so
 * that save records what verify would find: each finding joins the
 * validation of the file it names, as the file's own findings do.
 */
static int
check_whole(struct ckpt_save *sv, struct ckpt_error *err)
{
	const char **names = calloc(sv->nfiles + 1, sizeof(*names));
	const char **paths = calloc(sv->nfiles + 1, sizeof(*paths));
	struct ckpt_checkpoint *c = NULL;
	int rc = CKPT_OK;

	if (!names || !paths) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < sv->nfiles; i++) {
		names[i] = sv->files[i].rel;
		paths[i] = sv->files[i].abs;
	}
	if ((rc = ckpt_checkpoint_open_with(sv->staging, true, names, paths,
	    sv->nfiles, NULL, NULL, &sv->open_opts, &c, err)))
		goto out;
	for (size_t i = 0; i < ckpt_checkpoint_finding_count(c) && !rc; i++) {
		const struct ckpt_finding *x = ckpt_checkpoint_finding(c, i);
		struct sfile *f = file_at(sv, x->path);

		/* every check names the file; the first one otherwise */
		if (note_finding((f ? f : sv->files)->validation, x))
			rc = ckpt_error_nomem(err);
	}
out:
	ckpt_checkpoint_free(c);
	free(names);
	free(paths);
	return rc;
}

static int
validate_and_hash(struct ckpt_save *sv, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	write_status(sv, CKPT_PHASE_VALIDATING, "active", NULL);
	for (size_t i = 0; i < sv->nfiles && !rc; i++)
		rc = examine(sv, &sv->files[i], err);
	if (!rc && needs_whole_check(sv))
		rc = check_whole(sv, err);
	if (rc)
		return rc;
	infer_frameworks(sv);
	write_status(sv, CKPT_PHASE_HASHING, "active", NULL);
	return plan_and_hash(sv, err);
}

/* Between steps: a SIGINT/SIGTERM/SIGHUP recorded meanwhile fails the
 * save (interrupt.c). */
static int
check_interrupt(const char *step, struct ckpt_error *err)
{
	return ckpt_interrupt_pending() ? ckpt_error_interrupted(err, step) :
	    CKPT_OK;
}

/* Copies, hashes, validates and writes the summary and manifest. */
static int
place_and_hash(struct ckpt_save *sv, struct ckpt_error *err)
{
	struct syncer sy;
	int rc;

	load_config(sv);
	/* A copy to S3 needs no local one: uploaded from the sources. */
	sv->direct = sv->transfer == CKPT_TRANSFER_COPY &&
	    ckpt_store_s3(sv->store, NULL);
	if (sv->direct) {
		if ((rc = collect_sources(sv, err)))
			return rc;
	} else {
		write_status(sv, CKPT_PHASE_COPYING, "active", NULL);
		if (sv->transfer == CKPT_TRANSFER_COPY &&
		    (rc = copy_in(sv, err)))
			return rc;
		write_status(sv, CKPT_PHASE_SYNCING, "active", NULL);
		if ((rc = collect(sv, sv->staging, "", 0, err)))
			return rc;
	}
	if (!sv->nfiles)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no files to save");
	qsort(sv->files, sv->nfiles, sizeof(*sv->files), cmp_sfile);
	/* Direct: the sources are the user's; nothing local to sync. */
	if (!sv->direct)
		sync_start(&sy, sv);
	rc = validate_and_hash(sv, err);
	if (!sv->direct && sync_join(&sy, rc ? NULL : err) && !rc)
		rc = sy.rc;
	return rc;
}

/*
 * The files placed, made durable and hashed, then the manifest written.
 * Git and the GPUs are asked meanwhile (capture.c): their processes
 * need not add to the save's time.
 */
static int
prepare(struct ckpt_save *sv, struct ckpt_error *err)
{
	struct ckpt_capture_bg bg;
	int rc;

	if ((rc = check_interrupt("save", err)))
		return rc;
	ckpt_capture_bg_start(&bg, sv->meta, &sv->opts);
	rc = place_and_hash(sv, err);
	ckpt_capture_bg_join(&bg, sv->meta);
	if (rc || (rc = check_interrupt("hashing", err)))
		return rc;
	write_status(sv, CKPT_PHASE_COMMITTING, "active", NULL);
	return write_manifest(sv, err);
}

/*
 * A staged save (import): the files, summary and manifest are the
 * caller's, already checked against the manifest; they are made durable
 * and the manifest's digest taken from its bytes as they are.
 */
static int
prepare_staged(struct ckpt_save *sv, struct ckpt_error *err)
{
	static const char *const own[] = { CKPT_MANIFEST_NAME,
	    CKPT_SUMMARY_NAME };
	unsigned char d[CKPT_SHA256_BYTES];
	char *path, *text;
	size_t len;
	int rc;

	write_status(sv, CKPT_PHASE_SYNCING, "active", NULL);
	if ((rc = collect(sv, sv->staging, "", 0, err)))
		return rc;
	for (size_t i = 0; i < sv->nfiles; i++)
		if ((rc = fsync_path(sv->files[i].abs, err)))
			return rc;
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(own); i++) {
		struct stat st;

		if (!(path = ckpt_join(sv->staging, own[i])))
			return ckpt_error_nomem(err);
		rc = lstat(path, &st) && i ? CKPT_OK : fsync_path(path, err);
		if (!rc && !i) {
			rc = ckpt_read_file(path, (size_t)1 << 30, &text, &len,
			    err);
			if (!rc) {
				rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text,
				    len, d, err);
				free(text);
			}
			if (!rc) {
				memcpy(sv->digest, "sha256:", 7);
				ckpt_hex(d, sizeof(d), sv->digest + 7);
			}
		}
		free(path);
		if (rc)
			return rc;
	}
	write_status(sv, CKPT_PHASE_COMMITTING, "active", NULL);
	return CKPT_OK;
}

static int
finish(struct ckpt_save *sv, struct ckpt_lock_holder *broken,
    struct ckpt_error *err)
{
	const struct ckpt_store *s = sv->store;
	char purpose[CKPT_NAME_MAX + 64];
	struct ckpt_be_info info;
	int rc;

	if ((rc = sv->transfer == CKPT_TRANSFER_STAGED ? prepare_staged(sv,
	    err) : prepare(sv, err)))
		return rc;
	if ((rc = sv->store->ops->stage_sync(sv->store->be, sv->stage, err)) ||
	    (rc = check_interrupt("committing", err)))
		return rc;
	snprintf(purpose, sizeof(purpose), "save %s@%lld", sv->run,
	    (long long)sv->step);
	if ((rc = ckpt_store_lock(sv->store, purpose, sv->opts.lock_timeout_ms,
	    broken, err)))
		return rc;
	/*
	 * The staging status must not become part of the checkpoint.  It
	 * goes only now, under the lock, so that a save waiting for the
	 * lock still shows as in progress.
	 */
	sv->has_record = false;
	if ((rc = s->ops->stage_record(s->be, sv->stage, NULL, 0, true,
	    err))) {
		ckpt_store_unlock(sv->store);
		return rc;
	}
	/* Fail closed: an error is not "no checkpoint there". */
	rc = s->ops->stat(s->be, sv->final_key, &info, err);
	if (!rc) {
		rc = sv->opts.force ? replace_existing(sv, err) :
		    ckpt_error_set(err, CKPT_ERR_EXISTS, NULL, -1, "%s@%lld "
		    "was committed by someone else meanwhile (use --force to "
		    "replace it)", sv->run, (long long)sv->step);
	} else if (rc == CKPT_ERR_NOTFOUND) {
		rc = s->ops->commit_if_absent(s->be, sv->stage, sv->final_key,
		    err);
	}
	if (!rc) {
		sv->committed = true;
		rc = s->ops->flush(s->be, sv->run_key, err);
	}
	ckpt_store_unlock(sv->store);
	if (!sv->committed)
		return rc;
	free(sv->path);
	sv->path = strdup(sv->final);
	/* A moved directory is now empty: it went into the checkpoint. */
	for (size_t i = 0; i < sv->nemptied && sv->transfer ==
	    CKPT_TRANSFER_MOVE; i++)
		rmdir(sv->emptied_dirs[i]);
	return rc;
}

/* The end of the section begin entered: a recorded signal may now act. */
static void
save_release(struct ckpt_save *sv)
{
	if (!sv->held)
		return;
	sv->held = false;
	ckpt_interrupt_release();
}

int
ckpt_save_finish(struct ckpt_save *sv, struct ckpt_lock_holder *broken,
    struct ckpt_error *err)
{
	struct ckpt_error local;
	int rc;

	if (broken)
		memset(broken, 0, sizeof(*broken));
	if (!err) {
		ckpt_error_clear(&local);
		err = &local;
	}
	if (sv->committed)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "save already finished");
	rc = finish(sv, broken, err);
	if (rc && !sv->committed) {
		char msg[CKPT_ERROR_MSG_MAX + CKPT_ERROR_PATH_MAX + 4];

		snprintf(msg, sizeof(msg), "%s%s%s", err->path, err->path[0] ?
		    ": " : "", err->message);
		/* The record went just before the commit rename: back first,
		 * as ours and alive, so that a kill during the undo leaves
		 * gc the list of what to move back, and gc never races us. */
		restore_record(sv, msg);
		undo_moves(sv);
		write_status(sv, CKPT_PHASE_FAILED, "failed", msg);
	}
	save_release(sv);
	return rc;
}

void
ckpt_save_set_phase(struct ckpt_save *sv, enum ckpt_save_phase phase)
{
	if (sv && !sv->committed)
		write_status(sv, phase, "active", NULL);
}

void
ckpt_save_abort(struct ckpt_save *sv)
{
	if (!sv || sv->committed || sv->moved || !sv->stage)
		return;
	(void)sv->store->ops->stage_abort(sv->store->be, sv->stage, NULL);
	sv->has_record = false;
	if (sv->made_rundir)
		(void)sv->store->ops->rmprefix(sv->store->be, sv->run_key,
		    NULL);
}

void
ckpt_save_mark_failed(struct ckpt_save *sv, const char *msg)
{
	if (!sv || sv->committed)
		return;
	restore_record(sv, msg);
	undo_moves(sv);
	write_status(sv, CKPT_PHASE_FAILED, "failed", msg);
	save_release(sv);
}

void
ckpt_save_moves(const struct ckpt_save *sv, size_t *moved,
    size_t *stranded)
{
	if (moved)
		*moved = sv ? sv->nmoved_ever : 0;
	if (stranded)
		*stranded = sv && !sv->committed ? sv->nstranded : 0;
}

void
ckpt_save_free(struct ckpt_save *sv)
{
	if (!sv)
		return;
	save_release(sv);
	for (size_t i = 0; i < sv->nmap; i++) {
		free(sv->map[i].src);
		free(sv->map[i].rel);
	}
	free(sv->map);
	for (size_t i = 0; i < sv->nemptied; i++)
		free(sv->emptied_dirs[i]);
	free(sv->emptied_dirs);
	for (size_t i = 0; i < sv->nfiles; i++) {
		free(sv->files[i].rel);
		free(sv->files[i].abs);
		free(sv->files[i].ranges);
		free(sv->files[i].content);
		free(sv->files[i].parts);
		free(sv->files[i].metadata);
		json_decref(sv->files[i].tensors);
		json_decref(sv->files[i].validation);
	}
	free(sv->files);
	for (size_t i = 0; i < sv->ncopies; i++) {
		if (sv->copies[i].fd >= 0)
			close(sv->copies[i].fd);
		if (sv->copies[i].dfd >= 0)
			close(sv->copies[i].dfd);
		free(sv->copies[i].src);
		free(sv->copies[i].dst);
		free(sv->copies[i].parts);
	}
	free(sv->copies);
	ckpt_policy_config_free(sv->cfg);
	json_decref(sv->meta);
	free(sv->run);
	free(sv->rundir);
	free(sv->staging);
	free(sv->stage);
	free(sv->run_key);
	free(sv->final_key);
	free(sv->final);
	free(sv->path);
	free(sv->validation);
	pthread_mutex_destroy(&sv->mu);
	free(sv);
}

const char *
ckpt_save_path(const struct ckpt_save *sv)
{
	return sv->path;
}

const char *
ckpt_save_stage_key(const struct ckpt_save *sv)
{
	return sv->stage;
}

const char *
ckpt_save_manifest_digest(const struct ckpt_save *sv)
{
	return sv->digest[0] ? sv->digest : NULL;
}

const char *
ckpt_save_validation(const struct ckpt_save *sv)
{
	return sv->validation;
}

int
ckpt_status_write(const char *dir, const char *json, struct ckpt_error *err)
{
	json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	char *text, *path;
	int rc;

	if (!json_is_object(j)) {
		json_decref(j);
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "status is not a JSON object");
	}
	json_object_set_new(j, "schema", json_integer(1));
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	path = ckpt_join(dir, CKPT_STATUS_NAME);
	if (!text || !path) {
		free(text);
		free(path);
		return ckpt_error_nomem(err);
	}
	rc = ckpt_write_file_atomic(path, text, strlen(text), err);
	free(text);
	free(path);
	return rc;
}
