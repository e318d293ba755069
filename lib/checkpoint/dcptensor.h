/* SPDX-License-Identifier: MIT */
/*
 * dcptensor.h - the tensors of a distributed checkpoint (DCP) as logical
 * tensors assembled from their chunks (dcptensor.c).
 */
#ifndef CKPT_DCPTENSOR_H
#define CKPT_DCPTENSOR_H

#include "util/internal.h"

#include <jansson.h>

/* One chunk: a box of the whole, stored as the one tensor of a
 * torch.save archive in a .distcp shard. */
struct ckpt_dcp_chunk {
	uint64_t off[CKPT_MAX_DIMS], len[CKPT_MAX_DIMS];
	int64_t at;			/* in .metadata, or -1 */
	const struct ckpt_file *file;	/* the shard, the checkpoint's */
	const char *rel;		/* its name in the checkpoint */
	struct ckpt_tensor t;		/* in the shard: absolute offsets */
	int64_t strides[CKPT_MAX_DIMS];
};

struct ckpt_dcp_tensor {
	char *name;
	const char *mpath;		/* .metadata, for messages */
	struct ckpt_tensor t;		/* the whole: dtype, shape, numel */
	uint64_t shape[CKPT_MAX_DIMS];
	struct ckpt_dcp_chunk *chunks;
	size_t nchunks;
};

struct ckpt_checkpoint;
struct ckpt_dcp;

/*
 * The metadata JSON of dcp.c, as dcpcheck.c (findings) and this reader
 * (errors) both take it apart.
 */
/* Pairwise overlap checks of a tensor's chunks stop beyond this many
 * chunks; coverage is still checked (an element in no chunk is an error
 * when it is read). */
#define CKPT_DCP_MAX_PAIRWISE 4096
/* A list of at most CKPT_MAX_DIMS integers >= 0 (offsets, sizes). */
bool ckpt_dcp_u64s(json_t *a, uint64_t *out, unsigned int *n);
/* The byte offset in .metadata of a pickled object ("at"), or -1. */
int64_t ckpt_dcp_at(json_t *o);
/* Whether two boxes (offsets and sizes of nd dimensions) share an
 * element. */
bool ckpt_dcp_boxes_overlap(const uint64_t *aoff, const uint64_t *alen,
    const uint64_t *boff, const uint64_t *blen, unsigned int nd);
/* The storage key "FQN|o1,o2" of a chunk at offsets off, or "FQN|" (nd
 * 0) of a bytes item; malloc'd, NULL without memory. */
char *ckpt_dcp_storage_key(const char *fqn, const uint64_t *off,
    unsigned int nd);

/* How the archives of chunks and bytes items are read. */
struct ckpt_dcp_options {
	const struct ckpt_open_options *open;	/* allow_globals, or NULL */
	/*
	 * Called on each archive (path: its shard) before its findings are
	 * judged, to refuse it with an error of the caller's (convert's own
	 * refusal of unsafe globals); NULL for none.
	 */
	int (*check)(void *arg, struct ckpt_file *archive, const char *path,
	    struct ckpt_error *err);
	void *arg;
};

/* The DCP tensors of checkpoint c, described by its file metadata_name
 * (".metadata", relative to c's root); o may be NULL.  Borrows c and o,
 * which must outlive it. */
int ckpt_dcp_open(const struct ckpt_checkpoint *c, const char *metadata_name,
    const struct ckpt_dcp_options *o, struct ckpt_dcp **out,
    struct ckpt_error *err);
/*
 * Tensor fqn, prepared on first use: its chunks' boxes are checked (rank,
 * bounds, no overlap, full coverage), their storage ranges checked
 * against their shards, their archives read by the strict reader and
 * their tensors checked against the boxes.  Errors name the file and, for
 * a shard, the byte offset.  Not thread-safe; the result is owned by d.
 */
int ckpt_dcp_tensor(struct ckpt_dcp *d, const char *fqn,
    const struct ckpt_dcp_tensor **out, struct ckpt_error *err);
/*
 * Whether archive a, read from [base, base + len) of shard path, holds
 * what the metadata says chunk what ("chunk [2, 0] of 'w'") is: one
 * plain tensor of dtype with nd dimensions, of shape sizes[], its data
 * inside the archive.  *out is that tensor (a's); errors name path and
 * the byte offset.
 */
int ckpt_dcp_chunk_holds(const struct ckpt_file *a, const char *path,
    uint64_t base, uint64_t len, enum ckpt_dtype dtype, unsigned int nd,
    const uint64_t *sizes, const char *what, const struct ckpt_tensor **out,
    struct ckpt_error *err);
/* A ckpt_tensor_read_fn over a prepared tensor (arg): thread-safe. */
int ckpt_dcp_tensor_read(void *arg, uint64_t first, uint64_t n, void *buf,
    struct ckpt_error *err);
/*
 * The non-tensor items of the checkpoint (BytesStorageMetadata: epoch,
 * step, optimizer hyperparameters, scheduler state), each a torch.save
 * archive in a shard, as {fqn: object tree} (the tree of
 * ckpt_file_metadata_json, made by the opcode interpreter: a global
 * outside the allowlist is named in it, never resolved or called).  *out
 * is NULL when there are none; an item that cannot be read is an error
 * naming its shard and byte offset.  The caller owns *out.
 */
int ckpt_dcp_bytes(struct ckpt_dcp *d, json_t **out, struct ckpt_error *err);
void ckpt_dcp_free(struct ckpt_dcp *d);

#endif /* CKPT_DCPTENSOR_H */
