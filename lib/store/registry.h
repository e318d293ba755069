/* SPDX-License-Identifier: MIT */
/*
 * registry.h - what registry.c shares with the reference resolver
 * (list.c) and promotion (lib/verify/promote.c): appending records to a
 * loaded history, committing them, and writing the state files.  Every
 * call that changes the store expects the store lock to be held.
 */
#ifndef CKPT_REGISTRY_H
#define CKPT_REGISTRY_H

#include "util/internal.h"

#include <jansson.h>

#define REG_DIR		"registry"
#define REG_HISTORY	"registry/.history.jsonl"
#define REG_STAGING	"registry/.staging"
#define REG_SCHEMA	1

/*
 * Adds one record (action, model and the action's fields set by the
 * caller; schema, seq, prev, time, user and host are filled in) to r in
 * memory and replays it: the state accessors see it at once.  Nothing is
 * written.  Fails (nothing added) when the record would not replay.
 */
int ckpt_reg_append(struct ckpt_registry *r, json_t *rec,
    struct ckpt_error *err);
/* Writes the history with the appended records atomically and durably:
 * the commit point of every registry change. */
int ckpt_reg_commit(struct ckpt_store *s, struct ckpt_registry *r,
    struct ckpt_error *err);
/* Whether everything appended is on disk: after a failed ckpt_reg_commit,
 * true when the failure came after the new history was in place. */
bool ckpt_reg_is_committed(const struct ckpt_registry *r);
/*
 * Appends one run event (rec: action "pin", "unpin", "prune" or
 * "save-force" and its fields, no model) to the history and commits it:
 * the audit trail of what removed or replaced checkpoints.  Fails, with
 * nothing recorded, when the history does not verify or cannot be
 * written.  The store lock must be held.
 */
int ckpt_reg_record_event(struct ckpt_store *s, json_t *rec,
    struct ckpt_error *err);
/*
 * Checks the lineage of an imported version (text, len: history lines,
 * name for errors): a chain that verifies and ends in the promotion of
 * manifest to model.  0, or an error code with *why saying what is
 * wrong.
 */
int ckpt_reg_check_lineage(const char *text, size_t len, const char *name,
    const char *model, const char *manifest, const char **why);
/* Writes registry/MODEL/vN.json as the history says it is. */
int ckpt_reg_write_version_file(struct ckpt_store *s,
    const struct ckpt_reg_version *v, struct ckpt_error *err);
/* Writes registry/MODEL/aliases.json as the history says it is. */
int ckpt_reg_write_aliases_file(struct ckpt_store *s, struct ckpt_registry *r,
    const char *model, struct ckpt_error *err);
/* Repairs under the lock already held (see ckpt_registry_repair). */
int ckpt_reg_repair_locked(struct ckpt_store *s, struct ckpt_registry *r,
    size_t *nrepaired, struct ckpt_error *err);
/* The storage a recorded name stands for: NONE for NULL, UNKNOWN for a
 * name this version does not know. */
enum ckpt_storage ckpt_storage_parse(const char *name);
/* Number of versions of model in r. */
int64_t ckpt_reg_version_count(const struct ckpt_registry *r,
    const char *model);
/* The full version of model whose manifest is digest, or NULL. */
const struct ckpt_reg_version *ckpt_reg_find_manifest(
    const struct ckpt_registry *r, const char *model, const char *digest);
/* The weights-only version of model converted from the checkpoint whose
 * manifest is digest, or NULL. */
const struct ckpt_reg_version *ckpt_reg_find_weights(
    const struct ckpt_registry *r, const char *model, const char *digest);
/* "registry/MODEL/vN" (relative to the store), newly allocated. */
char *ckpt_reg_version_rel(const char *model, int64_t version);
/* Name for a staging directory of this process:
 * HOSTTAG.PID.START.RANDOM, newly allocated. */
char *ckpt_reg_staging_name(void);
/* An alias name: a valid name that is not vN, all digits, latest or
 * best (which references read otherwise). */
int ckpt_reg_alias_name_check(const char *alias, struct ckpt_error *err);
/* Adds a finding to r (see ckpt_registry_problem); -1 out of memory. */
int ckpt_reg_add_finding(struct ckpt_registry *r, const char *id,
    enum ckpt_severity sev, const char *path, const char *subject,
    int64_t offset, const char *msg);
/* registry/MODEL/NAME (a store key) where NAME is fmt with %lld = n;
 * newly allocated. */
char *ckpt_reg_model_key(const char *model, const char *fmt, int64_t n);
/* STORE/registry/MODEL/NAME where NAME is fmt with %lld = n; newly
 * allocated. */
char *ckpt_reg_model_file(struct ckpt_store *s, const char *model,
    const char *fmt, int64_t n);
/* Moves the store key (a version's directory or a state file) into
 * .ckpt/trash/ through the backend; absent is no error. */
int ckpt_reg_to_trash(struct ckpt_store *s, const char *key, const char *label,
    struct ckpt_error *err);

#endif /* CKPT_REGISTRY_H */
