/* SPDX-License-Identifier: MIT */
/*
 * store.h - what the store modules share (store.c, list.c, manifest.c,
 * save.c, prune.c): the inside of struct ckpt_store.  The file and host
 * helpers they use are in util/util.h.
 */
#ifndef CKPT_STORE_H
#define CKPT_STORE_H

#include "util/internal.h"
#include "util/util.h"

#include <pthread.h>
#include <sys/types.h>

/*
 * The store's layout, spelled here only: keys relative to its root (a
 * directory or s3://BUCKET/PREFIX).  The names inside a checkpoint
 * (CKPT_MANIFEST_NAME, ...) are in ckpt.h.
 */
#define CKPT_STORE_META		".ckpt"
#define CKPT_STORE_MARKER	".ckpt/store.json"
#define CKPT_STORE_LOCK		".ckpt/lock"
#define CKPT_STORE_LOCK_BREAK	".ckpt/lock.break"
#define CKPT_STORE_PINS		".ckpt/pins"
#define CKPT_STORE_TRASH	".ckpt/trash"
#define CKPT_STORE_RUNS		"runs"
#define CKPT_STORE_REGISTRY	"registry"

struct ckpt_backend_ops;

struct ckpt_store {
	char *root;			/* absolute, no trailing slash */
	/* Where the store keeps its objects (backend.h): every read,
	 * listing, write, lock and removal of the store goes through it. */
	const struct ckpt_backend_ops *ops;
	void *be;
	bool locked;
	char lock_content[1024];	/* what we wrote, to check on unlock */
};

struct ckpt_s3;
/*
 * The S3 client of an open s3:// store and its key prefix ("" or "p/q/":
 * the object of store key K is prefix K); NULL for another backend.
 * Borrowed: valid while the store is open (backend-s3.c).
 */
struct ckpt_s3 *ckpt_store_s3(const struct ckpt_store *s,
    const char **prefix);
/*
 * The lease of the store lock this handle takes from now on (s3:// only;
 * default 300 s).  Nothing in ckpt calls it: a test program's way to a
 * lease that runs out in seconds (backend-s3.c).
 */
void ckpt_store_s3_set_lease(struct ckpt_store *s, unsigned seconds);
/*
 * gc's view of an s3:// store's unfinished multipart uploads (what a
 * killed upload or server-side copy leaves: parts stored, no object):
 * fn gets each one's store key, upload id and start on this host's
 * clock (the service's, corrected by the skew; 0: unknown).  Nothing
 * for another backend.  Abort frees one (backend-s3.c).
 */
typedef int (*ckpt_store_upload_fn)(void *arg, const char *key,
    const char *upload_id, int64_t initiated);
int ckpt_store_s3_uploads(struct ckpt_store *s, ckpt_store_upload_fn fn,
    void *arg, struct ckpt_error *err);
int ckpt_store_s3_abort_upload(struct ckpt_store *s, const char *key,
    const char *upload_id, struct ckpt_error *err);
/* Removes the upload spools that killed saves left in $TMPDIR. */
void ckpt_store_s3_sweep_spools(struct ckpt_store *s);
/* A fresh private directory in $TMPDIR (*dir: the caller frees and
 * removes it), named as a save's upload spool so that a sweep (first
 * one here) removes it once this process is gone: promote
 * --weights-only converts into it before uploading (s3:// stores only;
 * backend-s3.c). */
int ckpt_store_s3_spool(struct ckpt_store *s, char **dir,
    struct ckpt_error *err);

struct stat;
/*
 * Uploads the local file path straight into the staging area stage (a
 * backend key, ckpt_save_stage_key) of the store on S3 s, as rel: one
 * read of its bytes, each seen once and in order by observe (may be
 * NULL; non-zero stops the upload), parts in parallel with their
 * SHA-256 checked by the service; no copy in the local spool
 * (s3stage.c).  expect (may be NULL): the file's stat when it was
 * examined; a file that differs from it, or changes during the upload,
 * fails with CKPT_ERR_IO.  CKPT_ERR_UNSUPPORTED above 5 GiB.
 */
int ckpt_store_stage_upload(struct ckpt_store *s, const char *stage,
    const char *rel, const char *path, const struct stat *expect,
    int (*observe)(void *arg, const void *data, size_t len), void *arg,
    struct ckpt_error *err);
/*
 * The same for size bytes read in order from fd (a pipe will do): the
 * upload, its parts and their checks, without the file checks (import
 * streams a bundle's entry through it, s3stage.c).
 */
int ckpt_store_stage_upload_fd(struct ckpt_store *s, const char *stage,
    const char *rel, int fd, uint64_t size,
    int (*observe)(void *arg, const void *data, size_t len), void *arg,
    struct ckpt_error *err);
/*
 * Lists of runkey ("runs/R") that follow may use the run's listing index
 * on S3 (s3listix.c: what the listing showed, summaries recorded per
 * manifest ETag); NULL ends that and rewrites the index if it changed.
 * No-op for other backends.  Never around a destructive decision
 * (list.c: not with CKPT_LIST_NO_INDEX).
 */
void ckpt_store_list_index(const struct ckpt_store *s, const char *runkey);
/* The backend key of a save's staging area (save.c). */
const char *ckpt_save_stage_key(const struct ckpt_save *sv);

/* Copies a regular file to dst (created exclusively, never a wider mode
 * than src's; not synced); backend-posix-stage.c. */
int ckpt_copy_file(const char *src, const char *dst, struct ckpt_error *err);

struct stat;
/* What ckpt_mirror_tree does with a regular file src (st: its lstat). */
typedef int (*ckpt_mirror_leaf_fn)(const char *src, const char *dst,
    const struct stat *st, void *data, struct ckpt_error *err);
/*
 * Mirrors the tree at src (a regular file or a directory) at dst: each
 * directory made there, never with a wider mode than its source's (the
 * owner keeps rwx to fill it), each regular file handed to leaf; a
 * symlink, a special file or directories nested deeper than 64 are
 * refused.  backend-posix-stage.c; save --copy, --link and adopt.
 */
int ckpt_mirror_tree(const char *src, const char *dst,
    ckpt_mirror_leaf_fn leaf, void *data, struct ckpt_error *err);
/*
 * What protects checkpoints from prune (protect.c): pins and registry
 * versions, as sorted "RUN@STEP" keys.  runs: registry entries whose run
 * is readable but not their step (the whole run is protected); all: an
 * unreadable registry entry, which protects every checkpoint (the text
 * says which entry).
 */
struct ckpt_protection {
	char **pins;
	size_t npins;
	char **keys;
	size_t nkeys;
	char **runs;
	size_t nruns;
	char *all;
};

int ckpt_protection_load(const struct ckpt_store *s,
    struct ckpt_protection *p, struct ckpt_error *err);
int ckpt_pins_read(const struct ckpt_store *s, struct ckpt_protection *p,
    struct ckpt_error *err);
/* The one reader of registry protection (prune, ls, promote). */
int ckpt_registry_protection_read(const struct ckpt_store *s,
    struct ckpt_protection *p, struct ckpt_error *err);
bool ckpt_protection_pinned(const struct ckpt_protection *p,
    const char *run, int64_t step);
/* NULL when unprotected; else why ("" for a plain registry version). */
const char *ckpt_protection_registry(const struct ckpt_protection *p,
    const char *run, int64_t step);
void ckpt_protection_release(struct ckpt_protection *p);
/* Reads pins and the registry afresh for one checkpoint: *why is NULL
 * when nothing protects it.  Errors are errors (fail closed). */
int ckpt_protection_recheck(const struct ckpt_store *s, const char *run,
    int64_t step, const char **why, struct ckpt_error *err);

/* ckpt_store_config_load (ckpt.h): the store's ckpt.yaml through the
 * backend; none is the defaults, an error reading it is an error. */

/* The backend key of path (a path in the store: ROOT/key), NULL when
 * path is not in the store. */
const char *ckpt_store_key(const struct ckpt_store *s, const char *path);

/* Removes path recursively, manifest first, never following symlinks nor
 * leaving its filesystem (backend-posix.c; POSIX only: the store's own
 * removals go through s->ops->remove_tree).  0, or -1 with errno. */
int ckpt_rm_rf(const char *path);

/*
 * Whose is a staging area, and is its owner alive (owner.c)?  The one
 * rule gc and ls share: only a process of this host and pid namespace
 * can be checked (pid and start time); another boot of this machine
 * ended it; anything else is UNKNOWN (gc waits for its age, ls shows it
 * in progress).
 */
enum ckpt_owner_state {
	CKPT_OWNER_ALIVE,	/* its process runs: never touched */
	CKPT_OWNER_GONE,	/* known dead (this machine could check) */
	CKPT_OWNER_UNKNOWN	/* another host or pid namespace */
};

struct ckpt_owner {
	long pid;		/* 0 when unknown */
	unsigned long long start;	/* process start, 0 when unknown */
	const char *host, *boot, *pidns, *machine;	/* NULL: unknown */
};

struct json_t;
/* The owner a staging record names (strings borrowed from rec). */
void ckpt_owner_from_record(const struct json_t *rec, struct ckpt_owner *o);
enum ckpt_owner_state ckpt_owner_state(const struct ckpt_owner *o);

/* An entry of a listing with the storage its pointers use (list.c). */
struct ckpt_stamp {
	uint64_t ino;
	int64_t mtime_ns, ctime_ns;
};

/* The result a recorded name stands for: NONE for NULL, UNKNOWN for a
 * name this version does not know (list.c). */
enum ckpt_check_result ckpt_check_result_parse(const char *name);

/* The same for the phase of a staging record. */
enum ckpt_save_phase ckpt_save_phase_parse(const char *name);

/*
 * The strings and small arrays of a listing's entries, freed with it: one
 * allocation per block, not ten per checkpoint (list.c).  A string equal
 * to "like" (the previous entry's) is shared, not copied.
 */
struct ckpt_pool_block;
struct ckpt_pool {
	struct ckpt_pool_block *blocks;
};

void *ckpt_pool_alloc(struct ckpt_pool *p, size_t n);	/* 8-aligned */
const char *ckpt_pool_strndup(struct ckpt_pool *p, const char *s, size_t n,
    const char *like);
void ckpt_pool_release(struct ckpt_pool *p);

/*
 * Forgets the entries of l from n on and gives their memory back; their
 * strings stay in the pool until ckpt_list_free (prune's report items
 * point at them once made).
 */
void ckpt_list_truncate(struct ckpt_list *l, size_t n);

/* Every pointer of e is into the listing's pool (or static).  The
 * stamp of its directory, for the index, is the listing's (list.c
 * run_cache): most entries' is their record's. */
struct ckpt_entry_priv {
	struct ckpt_entry e;
};

/*
 * The per-run listing cache (index.c): never trusted over the files for
 * a destructive decision, and only for checkpoint directories whose stat
 * stamp is unchanged.
 */
struct ckpt_be_info;
struct ckpt_index;
struct ckpt_index_writer;

/* The stamp of a key as the backend's stat gave it (backend.h). */
void ckpt_stamp_of(const struct ckpt_be_info *info, struct ckpt_stamp *out);
/* The backend gave one (not all 0): else the cache is never used. */
bool ckpt_stamp_usable(const struct ckpt_stamp *st);
/* 0 and *out, or -1 when there is no usable index (missing, damaged). */
int ckpt_index_load(const struct ckpt_store *s, const char *run,
    struct ckpt_index **out);
void ckpt_index_free(struct ckpt_index *ix);
/* The run directory is as the index saw it: same names, same inodes. */
bool ckpt_index_run_fresh(const struct ckpt_index *ix,
    const struct ckpt_stamp *run);
size_t ckpt_index_count(const struct ckpt_index *ix);
int64_t ckpt_index_step(const struct ckpt_index *ix, size_t i);
bool ckpt_index_failed(const struct ckpt_index *ix, size_t i);
/* The readers below read the record again (a window of the file is
 * kept, not the file): NULL, false or 1 when it cannot be read. */
const char *ckpt_index_name(struct ckpt_index *ix, size_t i, char *buf,
    size_t len);
/* Fastest when asked in the order the index was written (a listing's). */
bool ckpt_index_find(struct ckpt_index *ix, const char *name, size_t *at);
/* The stamp record i was written with: false when it cannot be read. */
bool ckpt_index_stamp(struct ckpt_index *ix, size_t i,
    struct ckpt_stamp *out);
/* Record i may stand for the checkpoint directory whose stamp is now. */
bool ckpt_index_matches(struct ckpt_index *ix, size_t i,
    const struct ckpt_stamp *now);
/* Fills what the files would give (not run, name, path, protection),
 * its strings in pool, sharing those equal to prev's (may be NULL):
 * 0, -1 out of memory, 1 the record cannot be read. */
int ckpt_index_decode(struct ckpt_index *ix, size_t i,
    struct ckpt_pool *pool, const struct ckpt_entry *prev,
    struct ckpt_entry_priv *p);
/* A writer of count records for run, streaming into a temporary file;
 * NULL when out of memory, no cache directory or run has no usable
 * stamp. */
struct ckpt_index_writer *ckpt_index_writer_new(const struct ckpt_store *s,
    const char *run, const struct ckpt_stamp *st, size_t count);
void ckpt_index_writer_add(struct ckpt_index_writer *w, const char *name,
    const struct ckpt_stamp *stamp, const struct ckpt_entry *e);
/* Best effort: renames the file into place when all count records were
 * written, else removes it; frees w. */
void ckpt_index_writer_commit(struct ckpt_index_writer *w);
void ckpt_index_writer_free(struct ckpt_index_writer *w);
/* Parses and decodes an index held in memory: 0 valid, -1 ignored (the
 * fuzz harness). */
int ckpt_index_check(const void *data, size_t size);

/*
 * Why path cannot name a file in a manifest (relative, '/'-separated, no
 * empty, "." or ".." component, valid UTF-8, no control character or
 * backslash, at most 4096 bytes), or NULL when it can.  The manifest
 * reader and save share it: save refuses before it commits every name
 * the reader would reject.
 */
const char *ckpt_manifest_path_problem(const char *path);

/* The largest manifest read (1 GiB). */
#define CKPT_MANIFEST_MAX ((size_t)1 << 30)
/*
 * ckpt_manifest_read() of a manifest already in memory (fetched from an
 * object store): text (malloc'd, len bytes) is taken over, also on
 * failure; mpath names it in messages, dir is its checkpoint's location.
 */
int ckpt_manifest_parse(char *text, size_t len, const char *mpath,
    const char *dir, struct ckpt_manifest **out, struct ckpt_error *err);
/* Renames the written, fsynced file tmp to path, refusing to replace an
 * existing path unless force, and fsyncs the directory (convert.c). */
int ckpt_commit_file(const char *tmp, const char *path, bool force,
    struct ckpt_error *err);


/*
 * Checks a file's bytes as they stream past against its manifest entry
 * (bundle.c): the whole-file SHA-256 when recorded and the digests of the
 * ranges that cover every byte once.  init, update with every byte in
 * order, then final (*ok: every digest matched; *offset: the first range
 * that did not) or release.  Used by import and by push/pull.
 */
struct ckpt_stream_check {
	const struct ckpt_manifest_file *mf;
	struct ckpt_sha256 whole, range;
	bool whole_on, range_on;
	size_t next;			/* index of the current range */
	uint64_t pos;			/* bytes seen so far */
	bool bad;			/* a range digest differed */
	uint64_t bad_offset;
};
int ckpt_stream_check_init(struct ckpt_stream_check *sc,
    const struct ckpt_manifest_file *mf, struct ckpt_error *err);
int ckpt_stream_check_update(struct ckpt_stream_check *sc,
    const unsigned char *p, size_t n, struct ckpt_error *err);
int ckpt_stream_check_final(struct ckpt_stream_check *sc, bool *ok,
    uint64_t *offset, struct ckpt_error *err);
void ckpt_stream_check_release(struct ckpt_stream_check *sc);
/* mkdir -p of the parents of rel (checked names) under root. */
int ckpt_make_parents(const char *root, const char *rel,
    struct ckpt_error *err);

/*
 * capture.c: adds to meta (the caller's metadata object) what o asks
 * ckpt_save_begin to capture (ckpt_save_options, version 2): config,
 * data fingerprint, environment file and GPUs, git state, an adopted
 * directory's trainer state; a key meta has already is left alone.
 */
int ckpt_capture_metadata(struct json_t *meta,
    const struct ckpt_save_options *o, struct ckpt_error *err);

/*
 * capture.c: the git state and the GPU models (CKPT_CAPTURE_GIT, _GPUS),
 * which start processes (git status of a large work tree takes a while),
 * captured on a thread of their own while a save copies and hashes.
 * ckpt_save_finish starts it (not begin: "ckpt save --background" forks
 * after begin, and a thread does not survive fork) and joins it before
 * the manifest is written, on every path: join adds to meta the keys it
 * still lacks.  Best effort, as before: no git, no repository, no
 * driver, no thread to run it on: the key is left out or captured inline.
 */
struct ckpt_capture_bg {
	pthread_t th;
	bool started;
	bool want_git, want_gpus;
	char *git_dir;			/* NULL: the working directory */
	struct json_t *git, *gpus;	/* what the thread found, or NULL */
};
void ckpt_capture_bg_start(struct ckpt_capture_bg *bg, struct json_t *meta,
    const struct ckpt_save_options *o);
void ckpt_capture_bg_join(struct ckpt_capture_bg *bg, struct json_t *meta);

/*
 * A checkpoint's location as push, pull and export read it (transfer.c):
 * a local directory, or an s3:// prefix (a client and its key prefix).
 * read: a small file (CKPT_ERR_NOTFOUND when absent); stream: a file's
 * bytes in order into sink, whose non-zero return stops it.
 */
struct ckpt_loc {
	char *dir;			/* local */
	struct ckpt_s3 *s3;		/* remote */
	char *prefix;			/* remote: "" or ending in '/' */
	const char *shown;		/* the location as the caller wrote
					 * it */
};
typedef int (*ckpt_loc_sink_fn)(void *arg, const void *data, size_t n);
int ckpt_loc_open(const char *location, struct ckpt_loc *e,
    struct ckpt_error *err);
int ckpt_loc_read(const struct ckpt_loc *e, const char *rel, size_t max,
    char **text, size_t *len, struct ckpt_error *err);
int ckpt_loc_stream(const struct ckpt_loc *e, const char *rel,
    ckpt_loc_sink_fn sink, void *arg, struct ckpt_error *err);
void ckpt_loc_close(struct ckpt_loc *e);

#endif /* CKPT_STORE_H */
