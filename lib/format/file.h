/* SPDX-License-Identifier: MIT */
/*
 * file.h - the inside of struct ckpt_file, shared by the format readers.
 * ckpt_file_open() (file.c) opens the file, sniffs the format by content
 * and hands the handle to one reader, which fills it with the builders
 * below.  Readers never print; what they notice but can live with becomes
 * a finding.
 */
#ifndef CKPT_FILE_H
#define CKPT_FILE_H

#include "util/internal.h"
#include "util/findings.h"

struct ckpt_global_ref {
	char *name;		/* "module.qualname" after py2 mapping */
	bool allowed;
};

/*
 * A byte source other than a local file (a remote object): its size and
 * a pread.  The format layer knows nothing of where the bytes live; the
 * store layer supplies an S3 source (store/s3src.c).  The file reads
 * through a small cache of blocks fetched at least readahead bytes at a
 * time, growing while reads go forward, so a header parse costs one or
 * two ranged requests and a sequential pass few large ones.
 */
struct ckpt_source {
	/* Exactly len bytes at off into buf, or an error (err filled). */
	int (*pread)(void *arg, void *buf, size_t len, uint64_t off,
	    struct ckpt_error *err);
	void (*close)(void *arg);	/* may be NULL */
	void *arg;
	uint64_t size;
	/* Bytes [0, head_len) the source already holds (the answer of the
	 * request that learnt the size), malloc'd; the file takes them. */
	unsigned char *head;
	size_t head_len;
	size_t readahead;		/* least bytes per fetch; 0: 1 MiB */
};

struct ckpt_file_cache;
struct ckpt_file_block;

struct ckpt_file {
	char *path;
	int fd;				/* -1 when reading through src */
	struct ckpt_source *src;	/* NULL for a local file */
	struct ckpt_file_cache *cache;
	uint64_t size;
	enum ckpt_format format;
	unsigned int flags;		/* CKPT_OPEN_* */
	/* Extra allowed globals (ckpt_open_options), during the open only. */
	const char *const *allow_globals;
	size_t nallow_globals;

	struct ckpt_tensor *tensors;	/* strings and arrays in blocks */
	size_t ntensors, tensors_cap;
	struct ckpt_file_block *blocks;	/* see ckpt_file_add_tensor */

	char *metadata_json;		/* see ckpt_file_metadata_json() */

	struct ckpt_global_ref *globals;
	size_t nglobals;

	struct ckpt_finding *findings;	/* strings owned here */
	size_t nfindings;

	/* A DCP shard's torch.save archives the reader scanned: [start,
	 * end) byte pairs, narchives of them. */
	uint64_t *archives;
	size_t narchives;

	/* Reader-private state, freed with priv_free when set. */
	void *priv;
	void (*priv_free)(void *priv);
};

/* Copies t (name, shape, strides, storage and kind included). */
int ckpt_file_add_tensor(struct ckpt_file *f, const struct ckpt_tensor *t,
    struct ckpt_error *err);
/* Forgets every tensor added (a reader starting over). */
void ckpt_file_clear_tensors(struct ckpt_file *f);
/* Room for n more tensors (a reader that knows how many will come). */
int ckpt_file_reserve_tensors(struct ckpt_file *f, size_t n,
    struct ckpt_error *err);
/* Adds a finding; subject may be NULL; offset -1 when unknown. */
int ckpt_file_add_finding(struct ckpt_file *f, const char *id,
    enum ckpt_severity sev, const char *subject, int64_t offset,
    const char *fmt, ...) CKPT_PRINTF(6, 7);
/* Records a pickle global once (repeats are ignored). */
int ckpt_file_add_global(struct ckpt_file *f, const char *name,
    bool allowed);
/* Takes ownership of json (malloc'd, NUL-terminated). */
void ckpt_file_set_metadata(struct ckpt_file *f, char *json);

/*
 * Sniffing: classifies the first bytes of a file (head, n of them; size is
 * the whole file's).  For CKPT_FORMAT_UNKNOWN and the look-alikes (a Git
 * LFS pointer, an HTML page) it writes a reason into reason[len].
 */
enum ckpt_format ckpt_sniff(const unsigned char *head, size_t n,
    uint64_t size, const char *path, char *reason, size_t len);

/*
 * The readers.  Each gets an open handle whose path, fd, size and format
 * are set, fills tensors, metadata, globals and findings, and returns 0, or
 * a negative status with err filled when the file cannot be read at all.
 */
/* ckpt_safetensors_write() to an O_DIRECT writer (util/util.h), which
 * gets the elements read into its own buffers; the caller finishes dw. */
struct ckpt_dwrite;
int ckpt_safetensors_write_direct(const struct ckpt_st_tensor *t, size_t n,
    const struct ckpt_st_write_options *o, struct ckpt_dwrite *dw,
    uint64_t *size, struct ckpt_error *err);
int ckpt_safetensors_read(struct ckpt_file *f, struct ckpt_error *err);
int ckpt_torchzip_read(struct ckpt_file *f, struct ckpt_error *err);
/* One torch.save archive at [base, base + len) of an open file that holds
 * no other (a chunk of a DCP .distcp shard): tensors, findings. */
int ckpt_torchzip_read_slice(struct ckpt_file *f, uint64_t base,
    uint64_t len, struct ckpt_error *err);
/*
 * The torch.save archive at [base, base + len) of open file f (a DCP
 * shard, local or remote), read by the strict reader with the extra
 * allowed globals allow[0..nallow): tensors, findings.  *out borrows f's
 * bytes: free it with ckpt_torchzip_archive_free before f.
 */
int ckpt_torchzip_open_archive(const struct ckpt_file *f, uint64_t base,
    uint64_t len, const char *const *allow, size_t nallow,
    struct ckpt_file **out, struct ckpt_error *err);
void ckpt_torchzip_archive_free(struct ckpt_file *a);
/* Whether [base, base + len) is exactly an archive the reader scanned in
 * shard f. */
bool ckpt_file_scanned_archive(const struct ckpt_file *f, uint64_t base,
    uint64_t len);
/* Opens path as the one torch.save archive at [base, base + len) (a DCP
 * chunk), with no sniffing; tensor offsets are absolute in path. */
int ckpt_file_open_slice(const char *path, uint64_t base, uint64_t len,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err);
/*
 * Opens the bytes of src as a checkpoint file named name (a URL, for
 * messages), sniffed and read like ckpt_file_open_ex.  The file owns src
 * from here on, also on failure (src->close is called).
 */
int ckpt_file_open_source(const char *name, struct ckpt_source *src,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err);
int ckpt_torch_legacy_read(struct ckpt_file *f, struct ckpt_error *err);
int ckpt_pickle_file_read(struct ckpt_file *f, struct ckpt_error *err);
int ckpt_dcp_metadata_read(struct ckpt_file *f, struct ckpt_error *err);
int ckpt_hfindex_read(struct ckpt_file *f, struct ckpt_error *err);
int ckpt_json_file_read(struct ckpt_file *f, struct ckpt_error *err);

/*
 * ckpt_tensor_content_sha256 of n tensors of f on up to nthreads threads
 * (0: one per online CPU): out[i], rcs[i] and errs[i] are tensor i's
 * digest, status and error.  The digest of a view or a big-endian
 * storage is sequential, so the tensors, not their bytes, are spread.
 */
void ckpt_tensor_content_sha256_many(const struct ckpt_file *f,
    const struct ckpt_tensor *const *t, size_t n,
    unsigned char (*out)[CKPT_SHA256_BYTES], int *rcs,
    struct ckpt_error *errs, unsigned int nthreads);

#endif /* CKPT_FILE_H */
