/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the storage-backend seam of the store (internal), like
 * git's refs/ backends: a small versioned table of operations that the
 * store modules (store.c, list.c, protect.c, prune.c, save.c) call where
 * they once made POSIX calls of their own.  The store decides (what to
 * list, keep, remove, when a lock is stale); a backend only stores.
 *
 * Keys are store-relative and '/'-separated ("runs/R/step-N/ckpt-
 * manifest.json", ".ckpt/pins/R@N", ".ckpt/lock"); a run or a step is a
 * prefix.  The POSIX backend (backend-posix.c) maps a key to ROOT/key and
 * walks every component below ROOT with O_NOFOLLOW: a symbolic link
 * anywhere in a key is foreign (CKPT_ERR_UNSAFE, or CKPT_BE_LINK in a
 * listing), never followed.  The S3 backend (backend-s3.c) maps a key to
 * the object PREFIX/key of an s3://BUCKET/PREFIX store.
 *
 * Errors are errors: every operation fails closed.  CKPT_ERR_NOTFOUND is
 * the only "nothing there"; any other failure (CKPT_ERR_IO with
 * sys_errno, CKPT_ERR_UNSAFE, ...) is never read as "empty" or "absent".
 * err->path names the full location (ROOT/key, s3://BUCKET/KEY).
 *
 * The operations (version 1):
 *
 *   open, close        a backend for a location; the store picks one at
 *                      ckpt_store_open (s3://BUCKET/PREFIX: "s3"; another
 *                      scheme is CKPT_ERR_UNSUPPORTED, exit 2)
 *   read               a small object whole (manifests, summaries,
 *                      status, staging records, pins, registry entries,
 *                      ckpt.yaml)
 *   stat               type, size, mtime (the backend's clock) of a key,
 *                      and the listing cache's stamp (version 2)
 *   list               the children of a prefix, one level
 *   put                an object, atomically and durably; IF_ABSENT:
 *                      of two racing creators exactly one wins
 *   remove             an object; absent is success
 *   lock, lock_read,   the store lock as an object created only if
 *   unlock             absent with its content already in it, read back,
 *                      and removed only while it still holds our content
 *   commit_if_absent   the commit point of a save: a staged checkpoint
 *                      becomes visible at its final prefix whole, or
 *                      CKPT_ERR_EXISTS
 *   trash              a committed checkpoint (or a staging area) leaves
 *                      the listing at once, into .ckpt/trash
 *   remove_tree        everything under a prefix, the manifest first, so
 *                      a half-removed checkpoint is never complete
 *   flush              what commit, trash and remove did under a prefix
 *                      becomes durable (POSIX: fsync of the directory)
 *   usage              bytes under a prefix, for reports
 *
 * Version 2 adds creating a store and save's staging, so that no store
 * module makes a POSIX call on the store any more:
 *
 *   create             open, making the location exist first (init)
 *   mkprefix, rmprefix a prefix made / removed only if empty (the store's
 *                      layout; a run a failed first save created)
 *   stage_begin        a staging area beside the run's checkpoints, never
 *                      visible without its record, and a local directory
 *                      (*local) where save examines and hashes the files
 *   stage_file         a local file or tree brought in as a name of the
 *                      area: TAKE (--move; the backend may take the
 *                      source itself), SHARE (adopt: storage shared where
 *                      possible), SHARE_ONLY (--link), or a copy
 *   stage_untake       a taken source given back, never replacing
 *                      (a failing save; gc --restore after a crash)
 *   stage_record       the staging record replaced, or removed just
 *                      before the commit (it is never part of one)
 *   stage_sync         what is staged made durable before the commit
 *   stage_abort        an area with nothing taken left in it removed
 *   commit_replace     save --force: the commit, the old checkpoint to
 *                      the trash in the same step where possible
 *
 * Version 3 adds the registry's copies (promote: a committed checkpoint's
 * files into a staging prefix of the registry, then commit_if_absent to
 * registry/MODEL/vN), and whose a key is (stat's owned/uid: gc asks it
 * before it moves a crashed save's files back):
 *
 *   copy               an object copied inside the store: a hard link or
 *                      a synced copy (POSIX), CopyObject (S3)
 *
 * These are shaped for an object store as much as for a directory: a
 * backend never has to expose rename(2) or link(2).  The S3 backend
 * (backend-s3.c) stages into a local spool (stage_begin's *local: files
 * taken, shared or copied there as the POSIX backend does), puts the
 * record as an object at once so that ls and gc on any host see the
 * save, uploads the spool to the staging prefix in stage_sync (before
 * the lock), and in commit_if_absent copies the staged objects inside
 * the service and puts the manifest IF_ABSENT last (no rename);
 * stage_untake gives back from the spool.  trash is "remove the
 * manifest first" (then move the rest), lock_read's mtime comes from
 * the service's clock, and stat leaves the stamp 0.
 *
 * The listing cache (index.c) and stamps: a cached entry is believed
 * only while stat gives the same stamp (ino, mtime_ns, ctime_ns) for its
 * checkpoint and its run as when it was written.  A backend that has no
 * such stamp leaves it 0: the cache is then never used or written for
 * its stores (every listing reads the summaries; slower, never wrong).
 * The cache file itself lives outside the store (XDG_CACHE_HOME), is
 * this host's, and is never believed for a destructive decision.
 *
 * Routed through the seam now: opening, finding and creating a store
 * (store.c: the marker, the layout, ckpt.yaml at init), the lock
 * (store.c), pins (store.c, protect.c), registry protection
 * (protect.c), ckpt.yaml for save, prune and gc (store.c), the
 * checkpoint listing and latest with the listing cache's stamps
 * (list.c, index.c), prune's and gc's trash, removals, staging records
 * and listings, gc --restore (prune.c), and all of save: its staging
 * area, bringing files in, giving them back, the record, the commit and
 * --force (save.c).  The POSIX backend keeps rename, link and
 * copy_file_range (backend-posix-stage.c) and the O_NOFOLLOW walks.
 *
 * The registry (registry.c: its history, vN.json, aliases.json, the
 * signed records and lineages, the repair; lib/verify/promote.c: the
 * staging of a version with copy, its commit with commit_if_absent) and
 * gc's question whose a crashed save's moved files are (stat's uid) go
 * through the seam too.
 *
 * NOT through the seam (yet): reading a checkpoint's files and manifest
 * to verify, inspect, diff or export them (by path or by URL: they would
 * need a read-range operation; promote verifies its staged copy that
 * way), converting one (promote --weights-only: into the store's
 * directory locally, into a spool of this host then uploaded on S3);
 * ckpt_store_find walking up local directories.  Signing a checkpoint
 * (sign.c) or a promotion, and checking a promotion's signature, read
 * and put through the seam.  save reads and
 * writes the staged files through *local by design.
 *
 * A new operation or a changed guarantee bumps CKPT_BACKEND_VERSION; the
 * store refuses a table of another version, or one that lacks any
 * operation but open and create (CKPT_ERR_INTERNAL, naming it).
 */
#ifndef CKPT_BACKEND_H
#define CKPT_BACKEND_H

#include "util/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_BACKEND_VERSION 3u

/* What a key is (never followed: a link is reported as one). */
enum ckpt_be_type {
	CKPT_BE_FILE = 1,	/* an object / a regular file */
	CKPT_BE_DIR,		/* a prefix with children / a directory */
	CKPT_BE_LINK,		/* POSIX only: a symbolic link, foreign */
	CKPT_BE_OTHER		/* anything else (fifo, socket, device) */
};

/*
 * What stat (and, where cheap, list) says of a key.  The stamp (ino,
 * mtime_ns, ctime_ns) is what the listing cache (index.c) compares to
 * believe a cached entry: a backend that cannot give one that changes
 * with every change of the key leaves all three 0, and the cache is then
 * not used for it (a listing reads every checkpoint; nothing is wrong,
 * only slower).  POSIX: st_ino, st_mtim, st_ctim.
 */
struct ckpt_be_info {
	enum ckpt_be_type type;
	uint64_t size;		/* bytes of a FILE, else 0 */
	int64_t mtime;		/* the backend's clock, s since the epoch */
	uint64_t ino;		/* stamp: 0 = none (see above) */
	int64_t mtime_ns, ctime_ns;
	/* Version 3: whose the key is on this host (POSIX: st_uid), for
	 * gc's question before it moves files back; a backend whose keys
	 * no local user owns leaves owned false (memset). */
	bool owned;
	uint32_t uid;
};

/* One child of a listed prefix; non-zero stops the listing with it. */
typedef int (*ckpt_be_list_fn)(void *arg, const char *name,
    const struct ckpt_be_info *info);

#define CKPT_BE_IF_ABSENT 1u	/* put: CKPT_ERR_EXISTS when key exists */

/* stage_file: how the source may be brought in (none: an independent
 * copy whose mode is never wider than the source's). */
#define CKPT_BE_STAGE_TAKE	1u	/* the source itself may be taken */
#define CKPT_BE_STAGE_SHARE	2u	/* may share storage with the source */
#define CKPT_BE_STAGE_SHARE_ONLY 4u	/* share, or fail: never a copy */

/* copy: an independent copy, never shared storage (promote --copy). */
#define CKPT_BE_COPY_INDEPENDENT 1u

struct ckpt_backend_ops {
	unsigned int version;	/* CKPT_BACKEND_VERSION */
	const char *name;	/* "posix" */

	/* A backend for location (a directory; a URL); *be for the rest. */
	int (*open)(const char *location, void **be, struct ckpt_error *err);
	void (*close)(void *be);

	/*
	 * The object at key, whole, NUL-terminated (*data: the caller
	 * frees; len may be NULL).  CKPT_ERR_NOTFOUND: absent (or removed
	 * meanwhile); CKPT_ERR_UNSAFE: a link in the key; CKPT_ERR_FORMAT:
	 * not a regular file; CKPT_ERR_LIMIT: more than max bytes.
	 */
	int (*read)(void *be, const char *key, size_t max, char **data,
	    size_t *len, struct ckpt_error *err);
	/* key itself not followed (a link is CKPT_BE_LINK); the keys above
	 * it are walked as by read.  CKPT_ERR_NOTFOUND when absent. */
	int (*stat)(void *be, const char *key, struct ckpt_be_info *out,
	    struct ckpt_error *err);
	/*
	 * Calls fn for every child of prefix ("" is the root) but "." and
	 * "..", in no particular order.  CKPT_ERR_NOTFOUND: no such prefix;
	 * CKPT_ERR_UNSAFE: the prefix is a link or not a directory; a read
	 * error part way is an error, never a shorter listing.  info->type
	 * is always set; size and mtime may be 0 (stat them).
	 */
	int (*list)(void *be, const char *prefix, ckpt_be_list_fn fn,
	    void *arg, struct ckpt_error *err);
	/* Writes key atomically (readers see the old or the new object,
	 * never a part) and durably.  CKPT_BE_IF_ABSENT: CKPT_ERR_EXISTS
	 * when key exists. */
	int (*put)(void *be, const char *key, const void *data, size_t len,
	    unsigned int flags, struct ckpt_error *err);
	/* Removes the object key and makes that durable; absent is no
	 * error. */
	int (*remove)(void *be, const char *key, struct ckpt_error *err);

	/*
	 * Creates the lock object key holding content, only if absent and
	 * never visible without its content: CKPT_OK, or CKPT_ERR_EXISTS
	 * when someone holds it.  When the backend is out of space it may
	 * store fallback instead (short; POSIX: a symlink, which needs no
	 * data block) and sets *used_fallback: gc and prune must run on a
	 * full filesystem to free it.
	 */
	int (*lock)(void *be, const char *key, const char *content,
	    const char *fallback, bool *used_fallback,
	    struct ckpt_error *err);
	/* The lock's text (content or fallback) and, when mtime is not
	 * NULL, its age on the backend's clock.  CKPT_ERR_NOTFOUND: free. */
	int (*lock_read)(void *be, const char *key, char **text,
	    int64_t *mtime, struct ckpt_error *err);
	/* Removes key if it still holds exactly expected: CKPT_OK; another
	 * content is CKPT_ERR_EXISTS, no lock CKPT_ERR_NOTFOUND. */
	int (*unlock)(void *be, const char *key, const char *expected,
	    struct ckpt_error *err);

	/*
	 * The commit point of a save: the staged checkpoint at stage
	 * (complete, its manifest in it) becomes final, whole and at once,
	 * or CKPT_ERR_EXISTS when final exists.  Called under the store
	 * lock; flush of the run makes it durable.  POSIX: rename(2) with
	 * RENAME_NOREPLACE.  S3: what the spool got since stage_sync
	 * uploaded, the staged objects copied to final, then the manifest
	 * put IF_ABSENT, last.
	 */
	int (*commit_if_absent)(void *be, const char *stage,
	    const char *final, struct ckpt_error *err);
	/*
	 * Takes the checkpoint or staging area at key out of every listing
	 * at once, as .ckpt/trash/name (a fresh name: CKPT_ERR_EXISTS
	 * otherwise).  It must still be a directory of the store, not a
	 * link to one (CKPT_ERR_UNSAFE).  gc removes the trash later.
	 */
	int (*trash)(void *be, const char *key, const char *name,
	    struct ckpt_error *err);
	/* Removes key and everything under it, never following a link and
	 * the manifest first; absent is success; an entry that another
	 * remover takes meanwhile is no error. */
	int (*remove_tree)(void *be, const char *key, struct ckpt_error *err);
	/*
	 * Makes the commits, moves and removals done so far under prefix
	 * (one level) durable.  POSIX: fsync of the directory (a filesystem
	 * that refuses it on directories is no error); a backend whose
	 * every call is durable on return does nothing.
	 */
	int (*flush)(void *be, const char *prefix, struct ckpt_error *err);
	/* Bytes under key (files only, links not followed); 0 on error.
	 * For reports only: nothing is decided on it. */
	uint64_t (*usage)(void *be, const char *key);

	/* ---- Version 2: creating a store, and save's staging ---- */

	/*
	 * As open, but makes the location exist first (POSIX: the
	 * directory and its missing parents; S3: nothing, the bucket must
	 * exist).  Nothing else is written: the store lays itself out with
	 * mkprefix and puts its marker (.ckpt/store.json) last.
	 */
	int (*create)(const char *location, void **be,
	    struct ckpt_error *err);
	/*
	 * Makes the prefix key exist, empty ("" is the root), durably.
	 * *made (may be NULL): it did not exist before.  A key that exists as a
	 * file or a link is CKPT_ERR_UNSAFE.  A backend whose prefixes are
	 * implicit (S3) does nothing and says !*made.
	 */
	int (*mkprefix)(void *be, const char *key, bool *made,
	    struct ckpt_error *err);
	/* Removes the prefix key only if it is empty: CKPT_OK (absent is
	 * success), or CKPT_ERR_EXISTS when anything is under it. */
	int (*rmprefix)(void *be, const char *key, struct ckpt_error *err);

	/*
	 * Opens a staging area for a save: a fresh prefix under dir (a
	 * run, "runs/R"), named ".tmp-" name ".RANDOM", never visible
	 * without its staging record (ckpt-staging.json, record/len,
	 * durable), and never listed as a checkpoint (it has no manifest
	 * at its final prefix until commit_if_absent).  *stage: its key.
	 * *local: a directory on this host holding the staged files by
	 * path, where save examines and hashes them and where a staged
	 * save's caller writes them (POSIX: the staging directory itself;
	 * an object store: a local spool that commit_if_absent uploads).
	 * Both are the caller's to free.
	 */
	int (*stage_begin)(void *be, const char *dir, const char *name,
	    const char *record, size_t len, char **stage, char **local,
	    struct ckpt_error *err);
	/*
	 * Brings the local file or directory tree src into the staging
	 * area as rel (one component), readable at local/rel afterwards.
	 * flags: CKPT_BE_STAGE_TAKE: the source itself may be taken (POSIX:
	 * rename(2), an error when it fails); *taken (may be NULL) says
	 * whether it was, and then stage_untake can give it back.
	 * CKPT_BE_STAGE_SHARE: the staged data may share storage with the
	 * source (POSIX: hard links, else copies); _SHARE_ONLY: share or
	 * fail.  Otherwise an independent copy, mode never wider than the
	 * source's (POSIX: copy_file_range).  Not durable yet (stage_sync).
	 */
	int (*stage_file)(void *be, const char *stage, const char *rel,
	    const char *src, unsigned int flags, bool *taken,
	    struct ckpt_error *err);
	/*
	 * Gives a source that stage_file took back to the local path dst,
	 * never replacing anything there (CKPT_ERR_EXISTS), durably (POSIX:
	 * rename(2) with RENAME_NOREPLACE, fsync of dst's directory).
	 * CKPT_ERR_NOTFOUND: rel is not in the staging area (back already).
	 * Used by a failing save and by gc --restore after a crash.
	 */
	int (*stage_untake)(void *be, const char *stage, const char *rel,
	    const char *dst, struct ckpt_error *err);
	/*
	 * Replaces the staging record (readers see the old or the new one,
	 * never a part); durable: on the backend's disk before it returns
	 * (where the moved sources are and a failure must survive a crash;
	 * progress need not wait).  record NULL removes it (a save under
	 * the lock, just before commit_if_absent): the record is never part
	 * of a checkpoint.
	 */
	int (*stage_record)(void *be, const char *stage, const char *record,
	    size_t len, bool durable, struct ckpt_error *err);
	/* Makes what is staged durable (POSIX: fsync of every directory in
	 * it; the files' data the caller syncs through *local, in parallel
	 * with hashing).  Called before the lock is taken for the commit. */
	int (*stage_sync)(void *be, const char *stage, struct ckpt_error *err);
	/* Removes a staging area and everything in it (called only when no
	 * taken source is left in it); absent is success. */
	int (*stage_abort)(void *be, const char *stage, struct ckpt_error *err);
	/*
	 * save --force: as commit_if_absent, but a checkpoint at final goes
	 * to the trash as .ckpt/trash/trash_name, in the same step where the
	 * backend can (POSIX: RENAME_EXCHANGE, then the old one to the
	 * trash; else trash first, then commit).  Under the store lock.
	 */
	int (*commit_replace)(void *be, const char *stage, const char *final,
	    const char *trash_name, struct ckpt_error *err);

	/* ---- Version 3: the registry's copies of checkpoints ---- */

	/*
	 * The object at key from (a file of a committed checkpoint) also at
	 * key to, made inside the store, never through this host's memory:
	 * POSIX: a hard link (*shared), else a copy whose data is synced;
	 * S3: a copy inside the service (CopyObject).  Parents of to are
	 * made.  CKPT_BE_COPY_INDEPENDENT: never shared storage.
	 * CKPT_ERR_NOTFOUND: from is absent; CKPT_ERR_EXISTS: to exists
	 * (nothing replaced); a link anywhere in either key is
	 * CKPT_ERR_UNSAFE.  Not durable until stage_sync of a prefix
	 * holding to (promote stages a version this way, then commits it
	 * with commit_if_absent).  *shared may be NULL.
	 */
	int (*copy)(void *be, const char *from, const char *to,
	    unsigned int flags, bool *shared, struct ckpt_error *err);
};

/* The POSIX backend: today's store, a directory tree. */
extern const struct ckpt_backend_ops ckpt_backend_posix;
/* The S3 backend (backend-s3.c): a store at s3://BUCKET/PREFIX. */
extern const struct ckpt_backend_ops ckpt_backend_s3;
/* Splits s3://BUCKET/PREFIX: *prefix is "" or "p/q/" (with its '/'). */
int ckpt_s3_location_parse(const char *location, char **bucket,
    char **prefix, struct ckpt_error *err);

struct ckpt_store;

/*
 * A store on an open backend (tests: an in-memory fake).  root is only
 * what messages print.  The store takes over be and closes it with
 * ops->close in ckpt_store_free.  CKPT_ERR_INTERNAL for a table of
 * another version.
 */
int ckpt_store_open_backend(const struct ckpt_backend_ops *ops, void *be,
    const char *root, struct ckpt_store **out, struct ckpt_error *err);

#endif /* CKPT_BACKEND_H */
