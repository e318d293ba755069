/* SPDX-License-Identifier: MIT */
/*
 * dcptensor.h - the tensors of a distributed checkpoint (DCP) as logical
 * tensors assembled from their chunks (dcptensor.c).
 */
#ifndef CKPT_DCPTENSOR_H
#define CKPT_DCPTENSOR_H

#include "util/internal.h"

/* One chunk: a box of the whole, stored as the one tensor of a
 * torch.save archive in a .distcp shard. */
struct ckpt_dcp_chunk {
	uint64_t off[CKPT_MAX_DIMS], len[CKPT_MAX_DIMS];
	int64_t at;			/* in .metadata, or -1 */
	const struct ckpt_file *file;	/* the shard, the checkpoint's */
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

/* The DCP tensors of checkpoint c, described by its file metadata_name
 * (".metadata", relative to c's root).  Borrows c, which must outlive it. */
int ckpt_dcp_open(const struct ckpt_checkpoint *c, const char *metadata_name,
    struct ckpt_dcp **out, struct ckpt_error *err);
/*
 * Tensor fqn, prepared on first use: its chunks' boxes are checked (rank,
 * bounds, no overlap, full coverage), their storage ranges checked
 * against their shards, their archives read by the strict reader and
 * their tensors checked against the boxes.  Errors name the file and, for
 * a shard, the byte offset.  Not thread-safe; the result is owned by d.
 */
int ckpt_dcp_tensor(struct ckpt_dcp *d, const char *fqn,
    const struct ckpt_dcp_tensor **out, struct ckpt_error *err);
/* A ckpt_tensor_read_fn over a prepared tensor (arg): thread-safe. */
int ckpt_dcp_tensor_read(void *arg, uint64_t first, uint64_t n, void *buf,
    struct ckpt_error *err);
void ckpt_dcp_free(struct ckpt_dcp *d);

#endif /* CKPT_DCPTENSOR_H */
