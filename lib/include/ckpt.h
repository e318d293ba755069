/* SPDX-License-Identifier: MIT */
/*
 * ckpt.h - the one public header of libckpt.
 *
 * libckpt reads machine-learning checkpoints (safetensors, PyTorch zip and
 * pickle, Hugging Face directories, distributed checkpoints) without Python
 * and without executing pickle code, and manages a store of committed
 * checkpoints.
 *
 * Conventions:
 *  - Every fallible call returns 0 (CKPT_OK) or a negative enum ckpt_status
 *    and fills the caller-owned struct ckpt_error when one is given (it may
 *    be NULL).  The library never prints and never exits.
 *  - Handles are created by ckpt_<obj>_open/_new(..., &out, err); *out is
 *    written only on success.  ckpt_<obj>_free() accepts NULL.
 *  - A "const T *" result is borrowed from the handle it came from and stays
 *    valid until that handle is freed.  A returned "char *" is the caller's
 *    and is freed with free(3).
 *  - Nothing here exposes a dependency's types.
 *  - Options structs the caller allocates (struct ckpt_<what>_options)
 *    start with an "unsigned int version" and are initialised with their
 *    CKPT_<WHAT>_OPTIONS_INIT macro, as libgit2's are: a program built
 *    against this header records the layout it knows, so that later
 *    versions of the library may add members at the end and still read
 *    an older caller's struct.  A version the library does not know (a
 *    newer header) is refused with CKPT_ERR_UNSUPPORTED.  Version 0 (a
 *    struct zeroed with memset or "= { 0 }") is read as version 1.  The
 *    macros use designated initialisers; C++ before C++20 zeroes the
 *    struct and sets version instead.
 *  - Functions whose result must be looked at carry CKPT_MUST_CHECK.
 *  - Outcomes are enums with a name function giving the word ckpt
 *    prints and its --json carries: ckpt_strerror (enum ckpt_status),
 *    ckpt_format_name, ckpt_sig_state_name, ckpt_check_result_name,
 *    ckpt_storage_name, ckpt_save_phase_name, ckpt_staging_state_name,
 *    ckpt_reg_action_name.  Kinds that are a vocabulary recorded in
 *    manifests stay strings: a checkpoint's kind ("dcp", "hf-sharded",
 *    "directory", ...), a tensor's kind ("quantized", "sparse", "numpy",
 *    ...) and a save's scope ("full", "weights-only").  A manifest of a
 *    newer ckpt may carry a word this library does not know; it is
 *    passed through as written, never mapped to a catch-all.
 *  - Long operations report progress through one callback type,
 *    ckpt_progress_fn: done and total in the operation's unit (bytes,
 *    unless its documentation says otherwise); total may grow while
 *    work is discovered.
 *
 * Thread safety:
 *  - libckpt keeps no global state that needs initialising: the first
 *    call from any thread is as good as another.  What it reads once per
 *    process (host name, boot id, pid namespace, machine id, user name) is
 *    read under pthread_once, the user name with getpwuid_r.
 *  - A handle (struct ckpt_file, ckpt_checkpoint, ckpt_store, ckpt_hash,
 *    ckpt_save, a report, ...) is used by one thread at a time; distinct
 *    handles may be used from different threads concurrently.  Functions
 *    that take a handle as const (the readers' accessors, ckpt_tensor_read,
 *    ckpt_tensor_stats and friends) may run concurrently on one handle.
 *  - Several stores, or one store from several threads (each with its
 *    own struct ckpt_store) or processes, are safe: the store lock
 *    (ckpt_store_lock: a file link(2)ed into place, an exclusive create)
 *    serialises every change; across hosts only where the shared
 *    filesystem makes link(2) and rename(2) atomic.
 *  - The library calls getenv() (for the variables its documentation
 *    names) and never setenv(): a program must not change its
 *    environment while other threads call libckpt.
 *  - Functions that run on several threads themselves (a "threads" or
 *    "nthreads" argument) call their progress callback from any of those
 *    threads, one call at a time.
 *  - ckpt_interrupt_install() changes process-wide signal dispositions:
 *    call it once, from the main thread, before starting others.
 *  - ckpt_save_finish() with CKPT_CAPTURE_GIT or CKPT_CAPTURE_GPUS runs
 *    git and nvidia-smi (posix_spawn, on a thread of its own while the
 *    save copies and hashes, waiting for those children only); a
 *    program that ignores SIGCHLD gets no "git" key.  Clear those flags
 *    to start no process.  ckpt_save_begin() leaves no thread or process
 *    running when it returns: a program may fork between the two.
 */
#ifndef CKPT_H
#define CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CKPT_API __attribute__((visibility("default")))
#define CKPT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define CKPT_API
#define CKPT_MUST_CHECK
#endif

#define CKPT_VERSION_MAJOR 0
#define CKPT_VERSION_MINOR 1
#define CKPT_VERSION_PATCH 0

#define CKPT_VERSION_NUMBER (CKPT_VERSION_MAJOR * 1000000 + \
	CKPT_VERSION_MINOR * 1000 + CKPT_VERSION_PATCH)

/** Returns the library version as "MAJOR.MINOR.PATCH"; static storage. */
CKPT_API const char *ckpt_version(void);
/**
 * The version of the library running, as CKPT_VERSION_NUMBER spells the
 * header's: MAJOR * 1000000 + MINOR * 1000 + PATCH (0.1.0 is 1000), as
 * archive_version_number() does, so a program can compare the two.
 */
CKPT_API int ckpt_version_number(void);

/**
 * Progress of a long operation: done of total units so far.  Called from
 * the thread doing the work (see "Thread safety" above), never
 * concurrently for one operation; it must not call back into the
 * operation.  data is the caller's, passed as given.
 */
typedef void (*ckpt_progress_fn)(uint64_t done, uint64_t total, void *data);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

enum ckpt_status {
	CKPT_OK = 0,
	CKPT_ERR_IO = -1,		/* a system call failed; see
					 * sys_errno */
	CKPT_ERR_FORMAT = -2,		/* input violates its format's rules */
	CKPT_ERR_NOMEM = -3,		/* out of memory */
	CKPT_ERR_INVALID = -4,		/* bad argument from the caller */
	CKPT_ERR_UNSUPPORTED = -5,	/* recognised but not supported */
	CKPT_ERR_LOCKED = -6,		/* the store lock is held */
	CKPT_ERR_EXISTS = -7,		/* the target exists already */
	CKPT_ERR_NOTFOUND = -8,		/* no such checkpoint, run, file */
	CKPT_ERR_LIMIT = -9,		/* a resource limit was exceeded */
	CKPT_ERR_UNSAFE = -10,		/* content that could execute code */
	CKPT_ERR_REFUSED = -11,		/* a request refused by policy */
	CKPT_ERR_CRYPTO = -12,		/* a cryptographic operation failed */
	CKPT_ERR_INTERNAL = -13		/* a bug in libckpt */
};

#define CKPT_ERROR_MSG_MAX 512
#define CKPT_ERROR_PATH_MAX 1024

/*
 * Error details, in caller-owned memory so that no allocation is needed on
 * the error path (jansson's json_error_t is the model).  "path" names the
 * file the error is about (may be empty), "message" says what is wrong in
 * lower case with no full stop, "offset" is the byte offset of a format
 * error or -1.
 */
struct ckpt_error {
	int code;			/* enum ckpt_status */
	int sys_errno;			/* errno for CKPT_ERR_IO, else 0 */
	int64_t offset;
	char path[CKPT_ERROR_PATH_MAX];
	char message[CKPT_ERROR_MSG_MAX];
};

/** Resets *err to "no error". */
CKPT_API void ckpt_error_clear(struct ckpt_error *err);

/** Returns a static description of a status code ("I/O error", ...). */
CKPT_API const char *ckpt_strerror(int code);

/* ------------------------------------------------------------------ */
/* Hashing                                                             */
/* ------------------------------------------------------------------ */

enum ckpt_hash_algo {
	CKPT_HASH_SHA256 = 0,	/* OpenSSL libcrypto, else libsodium */
	CKPT_HASH_BLAKE2B = 1	/* libsodium, 256-bit output */
};

#define CKPT_SHA256_BYTES 32
#define CKPT_HASH_MAX_BYTES 64
#define CKPT_HASH_HEX_MAX (2 * CKPT_HASH_MAX_BYTES + 1)

struct ckpt_hash;

/** Starts a streaming hash.  Thread-safe; each handle is single-threaded. */
CKPT_MUST_CHECK
CKPT_API int ckpt_hash_new(enum ckpt_hash_algo algo, struct ckpt_hash **out,
    struct ckpt_error *err);
CKPT_API void ckpt_hash_update(struct ckpt_hash *h, const void *data,
    size_t len);
/** Writes the digest to out (ckpt_hash_size() bytes); the handle may then
 * only be freed. */
CKPT_MUST_CHECK
CKPT_API int ckpt_hash_final(struct ckpt_hash *h, unsigned char *out,
    struct ckpt_error *err);
CKPT_API void ckpt_hash_free(struct ckpt_hash *h);
/** Digest size in bytes of an algorithm. */
CKPT_API size_t ckpt_hash_size(enum ckpt_hash_algo algo);
/** "sha256" or "blake2b". */
CKPT_API const char *ckpt_hash_name(enum ckpt_hash_algo algo);
/** One-shot hash of a buffer. */
CKPT_MUST_CHECK
CKPT_API int ckpt_hash_buffer(enum ckpt_hash_algo algo, const void *data,
    size_t len, unsigned char *out, struct ckpt_error *err);
/** Writes the lower-case hex of a digest and a NUL; hex holds 2*len+1. */
CKPT_API void ckpt_hex(const unsigned char *digest, size_t len, char *hex);
/** Which implementation computes SHA-256: "openssl" or "libsodium". */
CKPT_API const char *ckpt_hash_backend(void);

/* ------------------------------------------------------------------ */
/* Formats, dtypes, tensors                                            */
/* ------------------------------------------------------------------ */

enum ckpt_format {
	CKPT_FORMAT_UNKNOWN = 0,	/* unrecognised; see the reason */
	CKPT_FORMAT_SAFETENSORS,
	CKPT_FORMAT_TORCH_ZIP,		/* torch.save >= 1.6, Lightning .ckpt */
	CKPT_FORMAT_TORCHSCRIPT,	/* torch.jit.save archive */
	CKPT_FORMAT_TORCH_LEGACY,	/* pre-1.6 pickle stream */
	CKPT_FORMAT_TORCH_TAR,		/* oldest tar-based torch.save */
	CKPT_FORMAT_PICKLE,		/* a bare pickle stream */
	CKPT_FORMAT_DCP_METADATA,	/* torch.distributed.checkpoint
					 * .metadata */
	CKPT_FORMAT_DCP_SHARD,		/* *.distcp */
	CKPT_FORMAT_HF_INDEX,		/* *.safetensors.index.json,
					 * *.bin.index.json */
	CKPT_FORMAT_JSON,
	CKPT_FORMAT_YAML,
	CKPT_FORMAT_TEXT,
	CKPT_FORMAT_ZIP,		/* a zip that is not a torch archive */
	CKPT_FORMAT_GGUF,
	CKPT_FORMAT_NPY,
	CKPT_FORMAT_MANIFEST,		/* a ckpt manifest */
	CKPT_FORMAT_COUNT
};

/** Stable lower-case name of a format ("safetensors", "torch-zip", ...). */
CKPT_API const char *ckpt_format_name(enum ckpt_format fmt);

/* Element types, spelled as safetensors spells them. */
enum ckpt_dtype {
	CKPT_DTYPE_BOOL = 0,
	CKPT_DTYPE_F4,
	CKPT_DTYPE_F6_E2M3,
	CKPT_DTYPE_F6_E3M2,
	CKPT_DTYPE_U8,
	CKPT_DTYPE_I8,
	CKPT_DTYPE_F8_E5M2,
	CKPT_DTYPE_F8_E4M3,
	CKPT_DTYPE_F8_E8M0,
	CKPT_DTYPE_F8_E4M3FNUZ,
	CKPT_DTYPE_F8_E5M2FNUZ,
	CKPT_DTYPE_I16,
	CKPT_DTYPE_U16,
	CKPT_DTYPE_F16,
	CKPT_DTYPE_BF16,
	CKPT_DTYPE_I32,
	CKPT_DTYPE_U32,
	CKPT_DTYPE_F32,
	CKPT_DTYPE_C64,
	CKPT_DTYPE_F64,
	CKPT_DTYPE_I64,
	CKPT_DTYPE_U64,
	/* torch-only element types, not representable in safetensors */
	CKPT_DTYPE_C32,			/* complex32 (2 x F16) */
	CKPT_DTYPE_C128,		/* complex128 (2 x F64) */
	CKPT_DTYPE_QI8,			/* torch.qint8 */
	CKPT_DTYPE_QU8,			/* torch.quint8 */
	CKPT_DTYPE_QI32,		/* torch.qint32 */
	CKPT_DTYPE_QU4X2,		/* torch.quint4x2 */
	CKPT_DTYPE_QU2X4,		/* torch.quint2x4 */
	CKPT_DTYPE_COUNT
};

/** "F32", "BF16", ...; NULL for an out-of-range value. */
CKPT_API const char *ckpt_dtype_name(enum ckpt_dtype dt);
/** Parses a safetensors dtype name (exact, case-sensitive). */
CKPT_MUST_CHECK
CKPT_API int ckpt_dtype_from_name(const char *name, enum ckpt_dtype *out);
/** Bits per element (4 for F4, 6 for F6_*, 8 for U8, ...). */
CKPT_API unsigned int ckpt_dtype_bits(enum ckpt_dtype dt);
/** True for dtypes that can hold NaN or Inf. */
CKPT_API bool ckpt_dtype_is_float(enum ckpt_dtype dt);

#define CKPT_MAX_DIMS 64

/*
 * One tensor as a reader found it.  Byte positions are absolute offsets in
 * the file the tensor belongs to.  [offset, offset + span) covers every byte
 * any element of the tensor reads; for a contiguous tensor span == nbytes.
 */
struct ckpt_tensor {
	const char *name;		/* dot-joined path for torch pickles */
	enum ckpt_dtype dtype;
	unsigned int ndim;
	const uint64_t *shape;		/* ndim entries */
	const int64_t *strides;		/* elements; NULL when row-major
					 * contiguous */
	uint64_t numel;
	uint64_t nbytes;		/* numel * bits / 8 */
	uint64_t offset;		/* absolute file offset of the first
					 * byte */
	uint64_t span;
	const char *storage;		/* torch storage key shared by views;
					 * else NULL */
	uint64_t storage_offset;	/* elements, torch only */
	bool big_endian;
	bool contiguous;
	const char *kind;		/* NULL, or "quantized", "sparse",
					 * "meta", ... */
};

enum ckpt_severity {
	CKPT_SEV_INFO = 0,
	CKPT_SEV_WARNING = 1,
	CKPT_SEV_ERROR = 2
};

/*
 * Something a reader or a check noticed.  "id" is a stable kebab-case
 * identifier ("unsafe-global", "crc-mismatch", ...) that scripts may match.
 */
struct ckpt_finding {
	const char *id;
	enum ckpt_severity severity;
	const char *path;		/* file the finding is about, may be
					 * NULL */
	const char *subject;		/* tensor, zip member, global; may be
					 * NULL */
	const char *message;
	int64_t offset;			/* byte offset or -1 */
};

/* Flags for ckpt_file_open() and ckpt_checkpoint_open(). */
#define CKPT_OPEN_CHECK_CRC	(1u << 0)	/* check CRC32 of every zip
						 * member */
#define CKPT_OPEN_NO_PICKLE	(1u << 1)	/* do not interpret pickles */

struct ckpt_file;

/**
 * Opens one file, sniffs its format by content (never by extension) and
 * reads its headers: the safetensors header, the zip central directory and
 * data.pkl, a DCP .metadata pickle, an index.json.  Tensor data is not read.
 *
 * A file that cannot be parsed at all fails with CKPT_ERR_FORMAT (err says
 * where); a file that parses but holds something noteworthy (an unsafe pickle
 * global, a zip member whose CRC does not match) opens and carries findings.
 * An unrecognised file opens as CKPT_FORMAT_UNKNOWN with a finding that says
 * why ("a Git LFS pointer", "an HTML page", ...).
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_file_open(const char *path, unsigned int flags,
    struct ckpt_file **out, struct ckpt_error *err);

/*
 * More globals a pickle may reference, as torch.serialization.
 * add_safe_globals() grants them to torch.load(weights_only=True): each
 * "module.name", or "module.*" for every public name of that module (not
 * _private ones, not those of its submodules).  Denylisted callables
 * (os.system, builtins.eval, ...) are never admitted.  With any, an enum member
 * pickled by Python 3.11+ as getattr(<an admitted class>, "NAME") is admitted
 * too; getattr is not otherwise.
 */
struct ckpt_open_options {
	unsigned int version;		/* CKPT_OPEN_OPTIONS_VERSION */
	unsigned int flags;			/* CKPT_OPEN_* */
	const char *const *allow_globals;
	size_t nallow_globals;
};
#define CKPT_OPEN_OPTIONS_VERSION 1
#define CKPT_OPEN_OPTIONS_INIT { .version = CKPT_OPEN_OPTIONS_VERSION }

/** ckpt_file_open() with options; o may be NULL. */
CKPT_MUST_CHECK
CKPT_API int ckpt_file_open_ex(const char *path,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err);

/**
 * Checks an allow pattern: "module.name" or "module.*", identifiers
 * joined by dots; CKPT_ERR_INVALID (err says why) for anything else, or
 * for a denylisted callable or module, which no pattern may admit.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_allow_global_check(const char *pattern,
    struct ckpt_error *err);
CKPT_API void ckpt_file_free(struct ckpt_file *f);

CKPT_API const char *ckpt_file_path(const struct ckpt_file *f);
CKPT_API enum ckpt_format ckpt_file_format(const struct ckpt_file *f);
CKPT_API uint64_t ckpt_file_size(const struct ckpt_file *f);
CKPT_API size_t ckpt_file_tensor_count(const struct ckpt_file *f);
CKPT_API const struct ckpt_tensor *ckpt_file_tensor(const struct ckpt_file *f,
    size_t i);
/**
 * The file's non-tensor content as a JSON document (borrowed), or NULL: a
 * safetensors __metadata__ object, the object tree of a torch pickle, the
 * parsed DCP .metadata, the content of a JSON file.
 *
 * Torch pickles (torch zip data.pkl, legacy streams, bare pickles) map to
 * JSON thus; a key starting with "$" marks a value JSON cannot hold:
 *   dict, OrderedDict, Counter  object, in pickle order; non-string keys
 *                               stringified as Python prints them (1,
 *                               True, None, "(1, 'a')"); an OrderedDict's
 *                               _metadata attribute is not shown
 *   list, tuple, set            array
 *   int, float, str, bool, None number, string, true/false, null; ints
 *                               beyond 64 bits and NaN/Inf as strings
 *                               ("1180591620717411303424", "nan", "-inf")
 *   tensor                      {"$tensor": NAME}, NAME as in ckpt_tensor
 *   sparse tensor               {"$sparse": {"layout": L, "parts": [...]}}
 *   bytes, bytearray            {"$bytes": LENGTH}
 *   complex                     {"$complex": [RE, IM]}
 *   torch dtype                 {"$dtype": "torch.float32"}
 *   numpy array                 {"$ndarray": {"dtype": "<u4", "shape": [624],
 *                               "nbytes": 2496}}
 *   numpy scalar                its value; else {"$npscalar": {"dtype",
 *                               "nbytes"}}
 *   numpy dtype                 {"$npdtype": "<f8"}
 *   a global outside the allowlist, or an instance made from one (never
 *   resolved or called)         {"$global": "module.name"} plus, when the
 *                               pickle gave them, "$args" (array),
 *                               "$items" and "$state" (its data)
 *   an instance of an allowed class the reader does not interpret
 *                               {"$object": "module.name", ...} likewise
 *   a cycle / a cut-off subtree {"$cycle": true} / {"$truncated": true}
 *   a large container without tensors met again through the memo, after
 *   its first showing {"$shared": true}
 * A tensor's NAME is the dot-joined path of dict keys and list/tuple
 * indices from the top-level object ("model.fc1.weight",
 * "optimizer.state.0.exp_avg"; "" for a top-level tensor); instances add
 * their $items/$state keys to the path without the "$" part.
 *
 * DCP .metadata (CKPT_FORMAT_DCP_METADATA):
 *   {"state_dict_metadata": {FQN: {"type": "tensor", "at": P,
 *      "dtype": "F32", "size": [...], "chunks": [{"offsets": [...],
 *      "sizes": [...], "at": P}]} or {"type": "bytes"}},
 *    "storage_data": {"FQN|OFFSETS": {"relative_path": "__0_0.distcp",
 *      "offset": N, "length": M}}}
 *   where OFFSETS is the chunk offsets joined by "," (empty for bytes)
 *   and P the byte offset in .metadata of the pickled object.
 */
CKPT_API const char *ckpt_file_metadata_json(const struct ckpt_file *f);
/** Pickle globals referenced by the file (borrowed), with allowed flags. */
CKPT_API size_t ckpt_file_global_count(const struct ckpt_file *f);
CKPT_API const char *ckpt_file_global(const struct ckpt_file *f, size_t i,
    bool *allowed);
CKPT_API size_t ckpt_file_finding_count(const struct ckpt_file *f);
CKPT_API const struct ckpt_finding *ckpt_file_finding(
    const struct ckpt_file *f, size_t i);
/** Reads len bytes at an absolute offset of the file. */
CKPT_MUST_CHECK
CKPT_API int ckpt_file_pread(const struct ckpt_file *f, void *buf, size_t len,
    uint64_t offset, struct ckpt_error *err);

/*
 * A checkpoint: a file, or a directory of files read as one (a Hugging Face
 * checkpoint directory, a sharded model with *.index.json, a DCP directory,
 * a committed store checkpoint).  Files are listed in byte order of their
 * paths relative to the root.
 *
 * A directory is every regular file under it, recursively; symbolic links
 * and special files inside it are not followed or read (each is a
 * "symlink-not-followed" / "special-file-skipped" finding).  Every file is
 * opened with ckpt_file_open(); one that cannot be read keeps its error
 * (ckpt_checkpoint_file_error) and the checkpoint still opens, so that a
 * caller can report every problem.  ckpt_checkpoint_open() itself fails
 * only when the path cannot be reached or walked, or memory runs out.
 *
 * Checkpoint findings (stable ids): index-shard-missing,
 * index-shard-unreadable, index-bad-shard-path, index-tensor-missing,
 * index-tensor-unmapped (warning), index-total-size-mismatch (warning);
 * dcp-chunk-out-of-bounds, dcp-chunk-overlap, dcp-chunk-gap,
 * dcp-chunk-rank-mismatch, dcp-chunk-no-storage, dcp-item-no-storage,
 * dcp-storage-file-missing, dcp-storage-out-of-range, dcp-bad-storage-path,
 * dcp-bad-metadata; symlink-not-followed, special-file-skipped (warnings).
 */
struct ckpt_checkpoint;

CKPT_MUST_CHECK
CKPT_API int ckpt_checkpoint_open(const char *path, unsigned int flags,
    struct ckpt_checkpoint **out, struct ckpt_error *err);
/** ckpt_checkpoint_open() with options (allowed pickle globals); o may be
 * NULL.  The lists in o are used during the call only. */
CKPT_MUST_CHECK
CKPT_API int ckpt_checkpoint_open_ex(const char *path,
    const struct ckpt_open_options *o, struct ckpt_checkpoint **out,
    struct ckpt_error *err);

/**
 * ckpt_checkpoint_open_ex() of a location: a local path, or an object
 * store's "s3://BUCKET/KEY" (an object is one file; a prefix, every
 * object under it, a checkpoint directory), read through ranged GETs with
 * the endpoint and credentials of the environment and ~/.aws (see
 * ckpt(1), ENVIRONMENT).  Tensor data is fetched only when asked for.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_checkpoint_open_location(const char *location,
    const struct ckpt_open_options *o, struct ckpt_checkpoint **out,
    struct ckpt_error *err);
CKPT_API void ckpt_checkpoint_free(struct ckpt_checkpoint *c);
CKPT_API const char *ckpt_checkpoint_path(const struct ckpt_checkpoint *c);
/** True when the checkpoint was opened from a directory. */
CKPT_API bool ckpt_checkpoint_is_directory(const struct ckpt_checkpoint *c);
/** "safetensors", "torch-zip", "hf-checkpoint", "hf-sharded", "dcp", ... */
CKPT_API const char *ckpt_checkpoint_kind(const struct ckpt_checkpoint *c);
CKPT_API size_t ckpt_checkpoint_file_count(const struct ckpt_checkpoint *c);
/** Relative path of file i; for a single-file checkpoint, its base name. */
CKPT_API const char *ckpt_checkpoint_file_name(
    const struct ckpt_checkpoint *c, size_t i);
/** The open file i, or NULL when it could not be parsed (see its error). */
CKPT_API const struct ckpt_file *ckpt_checkpoint_file(
    const struct ckpt_checkpoint *c, size_t i);
/** Why file i could not be read, or NULL when it was. */
CKPT_API const struct ckpt_error *ckpt_checkpoint_file_error(
    const struct ckpt_checkpoint *c, size_t i);
/** Findings about the whole (index weight_map vs shards, DCP coverage). */
CKPT_API size_t ckpt_checkpoint_finding_count(const struct ckpt_checkpoint *c);
CKPT_API const struct ckpt_finding *ckpt_checkpoint_finding(
    const struct ckpt_checkpoint *c, size_t i);

/**
 * Reads nelem elements of tensor t, starting at element first (row-major
 * logical order, strides and storage offset applied), into buf as packed
 * little-endian elements of t's dtype (big-endian files are swapped).
 * buf holds nelem * bits / 8 bytes.  Sub-byte dtypes (F4, F6_*) need a
 * contiguous tensor and a byte-aligned range.  Thread-safe (pread only).
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_read(const struct ckpt_file *f,
    const struct ckpt_tensor *t, uint64_t first, uint64_t nelem, void *buf,
    struct ckpt_error *err);

/**
 * Whether t's content digest is the digest of its bytes as they lie in
 * the file: contiguous, span == nbytes, and little-endian (or one-byte
 * elements).  Views, strided and big-endian tensors are not.
 */
CKPT_API bool ckpt_tensor_content_is_bytes(const struct ckpt_tensor *t);
/**
 * The content digest of manifest schema 2: SHA-256 of t's elements in
 * row-major order as little-endian values of its dtype, exactly the bytes
 * safetensors would store for it, whatever the layout (views, strides,
 * storage offset, byte order) of the file.  Hashes only the elements
 * (a view of a large storage costs its own size), reading the windows of
 * the storage they lie in (ckpt_tensor_read).  CKPT_ERR_UNSUPPORTED for sparse,
 * quantized and meta tensors (no content digest is defined for them) and
 * strided sub-byte ones.  Thread-safe (pread only).
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_content_sha256(const struct ckpt_file *f,
    const struct ckpt_tensor *t, unsigned char *out,
    struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Tensor statistics and element decoding                              */
/* ------------------------------------------------------------------ */

/** Values per element: 2 for complex dtypes (real, imaginary), else 1. */
CKPT_API unsigned int ckpt_dtype_components(enum ckpt_dtype dt);

/**
 * Decodes n packed little-endian elements of dtype dt at src into
 * n * ckpt_dtype_components(dt) doubles at dst (complex: real, imaginary
 * interleaved).  Exact for every float format (F16, BF16, the F8 variants
 * with their own NaN/Inf rules, F6_*, F4) and for integers up to 2^53.
 * Sub-byte dtypes start at the first bit of src: F4 element i is the low
 * nibble of byte i/2 when i is even, the high one when odd; F6 packs four
 * elements in three bytes (little-endian 24-bit word, element k in bits
 * 6k..6k+5).  Quantized types decode as their raw integers (no scale).
 * Returns CKPT_ERR_UNSUPPORTED for QU4X2/QU2X4 and unknown dtypes.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_dtype_to_f64(enum ckpt_dtype dt, const void *src,
    uint64_t n, double *dst);

/*
 * Statistics of a tensor's values.  count, nan, pos_inf, neg_inf and
 * zeros count values (a complex element is two values: its real and
 * imaginary parts); min, max, mean and std cover the finite values
 * and are NaN when there are none; std is the population standard
 * deviation (ddof 0).  m2 is the sum of squared deviations from the mean,
 * kept so that partial results merge exactly.
 */
struct ckpt_tensor_stats {
	uint64_t count;
	uint64_t finite;
	uint64_t nan;
	uint64_t pos_inf;
	uint64_t neg_inf;
	uint64_t zeros;
	double min, max, mean, std;
	double m2;
};

/** Empties *st (counts 0, min/max/mean/std NaN). */
CKPT_API void ckpt_tensor_stats_init(struct ckpt_tensor_stats *st);
/** Adds n decoded values. */
CKPT_API void ckpt_tensor_stats_add(struct ckpt_tensor_stats *st,
    const double *v, size_t n);
/** Adds the values summarised by o (Chan's parallel formula). */
CKPT_API void ckpt_tensor_stats_merge(struct ckpt_tensor_stats *st,
    const struct ckpt_tensor_stats *o);
/**
 * Reads elements [first, first + nelem) of t with ckpt_tensor_read() in
 * bounded chunks (about 1 MiB, whatever the tensor's size) and adds them
 * to *st.  For F4/F6 tensors first must be a multiple of 8.  Thread-safe:
 * threads may work on different ranges of one tensor and merge.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_stats_range(const struct ckpt_file *f,
    const struct ckpt_tensor *t, uint64_t first, uint64_t nelem,
    struct ckpt_tensor_stats *st, struct ckpt_error *err);
/** Statistics of the whole tensor into *st (initialised first). */
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_stats(const struct ckpt_file *f,
    const struct ckpt_tensor *t, struct ckpt_tensor_stats *st,
    struct ckpt_error *err);

/*
 * Statistics of many tensors on every core: each tensor is
 * split into pieces of at most 4 Mi elements, the pieces run on up to
 * threads threads (0: one per online CPU) with a fixed buffer each
 * (about 1 MiB), and the partial results merge in piece order, so the
 * numbers do not depend on the thread count.  Each item gets its own
 * result: st (initialised here), rc and err.  Returns 0, or an error
 * that concerns the whole call (out of memory).  progress, when set, gets
 * the bytes of tensor data done so far and in all.
 */
struct ckpt_stats_item {
	const struct ckpt_file *f;
	const struct ckpt_tensor *t;
	struct ckpt_tensor_stats st;
	int rc;
	struct ckpt_error err;
};
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_stats_many(struct ckpt_stats_item *items,
    size_t n, unsigned int threads, ckpt_progress_fn progress,
    void *progress_data, struct ckpt_error *err);
/**
 * The same for count, finite, nan, pos_inf and neg_inf only (the rest
 * stays as ckpt_tensor_stats_init() leaves it), for NaN/Inf checks: the
 * raw bits of F32, F64, F16, BF16 and complex data are counted without
 * decoding, and only data that has such values is decoded.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_nonfinite_many(struct ckpt_stats_item *items,
    size_t n, unsigned int threads, ckpt_progress_fn progress,
    void *progress_data, struct ckpt_error *err);

/*
 * Element-wise comparison of two tensors with the same number of values
 * (each side decoded exactly to float64 from its own dtype), for diff.
 *
 *   count       value pairs (a complex element is two values)
 *   unequal     pairs with a != b, where NaN equals NaN (any payload)
 *               and -0 equals +0; 0 means the values are identical
 *   beyond      pairs not close by numpy.isclose(a, b, rtol, atol,
 *               equal_nan) on float64: |a - b| <= atol + rtol * |b| for
 *               finite pairs, a == b for infinite ones, NaN never close
 *               unless both are NaN and equal_nan is set
 *   finite      pairs with both values finite; max_abs and the sums
 *               cover these only
 *   nan_both    pairs NaN on both sides (also counted in nan_a, nan_b)
 *
 * Sums run in float64 over 4 lanes per block of 1024 values, and blocks
 * add up with Neumaier compensation: each sum S of terms t_i is within
 * about (256 + 4) * 2^-53 * sum |t_i| of the exact value.
 */
struct ckpt_compare_options {
	unsigned int version;		/* CKPT_COMPARE_OPTIONS_VERSION */
	double atol, rtol;		/* numpy's defaults are 1e-8, 1e-5 */
	bool equal_nan;
};
#define CKPT_COMPARE_OPTIONS_VERSION 1
#define CKPT_COMPARE_OPTIONS_INIT { .version = CKPT_COMPARE_OPTIONS_VERSION, \
	.atol = 1e-8, .rtol = 1e-5 }

struct ckpt_compare_stats {
	uint64_t count, unequal, beyond, finite;
	uint64_t nan_a, nan_b, nan_both;
	uint64_t pos_inf_a, neg_inf_a, pos_inf_b, neg_inf_b;
	double max_abs;			/* max |a - b| */
	double sum_abs;			/* sum |a - b| */
	double sum_sq;			/* sum (a - b)^2 */
	double sum_a2, sum_b2, sum_ab;
};

CKPT_API void ckpt_compare_stats_init(struct ckpt_compare_stats *st);
/** Adds the pairs summarised by o. */
CKPT_API void ckpt_compare_stats_merge(struct ckpt_compare_stats *st,
    const struct ckpt_compare_stats *o);
/**
 * Compares n packed elements of dtype da at a with n of dtype db at b
 * (both decoded as ckpt_dtype_to_f64() does; components must agree) and
 * adds the result to *st.  CKPT_ERR_UNSUPPORTED for dtypes that do not
 * decode or whose component counts differ.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_compare_values(enum ckpt_dtype da, const void *a,
    enum ckpt_dtype db, const void *b, uint64_t n,
    const struct ckpt_compare_options *o, struct ckpt_compare_stats *st);

/*
 * Comparisons of many tensor pairs on every core, split and merged as
 * ckpt_tensor_stats_many() does.  progress, when set, is called with
 * the bytes of tensor data (both sides) compared so far and in all,
 * serialised, from any thread.
 */
/* Reads elements [first, first + n) of a logical tensor as packed
 * little-endian bytes of its dtype; called from several threads at once. */
typedef int (*ckpt_tensor_read_fn)(void *arg, uint64_t first, uint64_t n,
    void *buf, struct ckpt_error *err);
struct ckpt_compare_item {
	const struct ckpt_file *fa, *fb;
	const struct ckpt_tensor *ta, *tb;
	struct ckpt_compare_stats st;
	int rc;
	struct ckpt_error err;
	/* Optional, per side: the elements come from read_x(arg_x, ...)
	 * instead of ckpt_tensor_read(fx, tx, ...) (a DCP tensor assembled
	 * from its chunks); tx still gives name, dtype and numel, fx the
	 * path for messages. */
	ckpt_tensor_read_fn read_a, read_b;
	void *arg_a, *arg_b;
};
CKPT_MUST_CHECK
CKPT_API int ckpt_tensor_compare_many(struct ckpt_compare_item *items,
    size_t n, const struct ckpt_compare_options *o, unsigned int threads,
    ckpt_progress_fn progress, void *progress_data,
    struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Writing safetensors                                                 */
/* ------------------------------------------------------------------ */

/*
 * A sink for written bytes: writes all len bytes or fails (filling err).
 * Writers call it sequentially, never concurrently.
 */
typedef int (*ckpt_write_fn)(void *arg, const void *buf, size_t len,
    struct ckpt_error *err);

/*
 * One tensor to write.  Its bytes come from a tensor a reader found
 * (file and src: strides, storage offset and byte order are applied by
 * ckpt_tensor_read(), so views come out contiguous and big-endian sources
 * little-endian), from memory (data: the packed little-endian bytes), or
 * from a read callback.
 * dtype must be a safetensors dtype (CKPT_DTYPE_BOOL..CKPT_DTYPE_U64);
 * with src, its dtype and element count must match.
 */
struct ckpt_st_tensor {
	const char *name;
	enum ckpt_dtype dtype;
	unsigned int ndim;
	const uint64_t *shape;
	const struct ckpt_file *file;
	const struct ckpt_tensor *src;
	const void *data;
	/* Or a reader of elements [first, first + n) as packed little-
	 * endian bytes (a tensor assembled from chunks); n * bits is a
	 * multiple of 8 and first a multiple of 8 for sub-byte dtypes. */
	int (*read)(void *arg, uint64_t first, uint64_t n, void *buf,
	    struct ckpt_error *err);
	void *read_arg;
};

struct ckpt_st_write_options {
	unsigned int version;		/* CKPT_ST_WRITE_OPTIONS_VERSION */
	/* __metadata__ as key, value, key, value...: nmetadata pairs of
	 * UTF-8 strings; keys unique.  None: no __metadata__ at all. */
	const char *const *metadata;
	size_t nmetadata;
	/* Called with tensor bytes written so far and their total. */
	ckpt_progress_fn progress;
	void *progress_data;
	/* When write() only appends to the file descriptor fd, saying so
	 * lets contiguous little-endian data go from file to file inside
	 * the kernel (copy_file_range), as cp does. */
	bool sink_is_fd;
	int fd;
};
#define CKPT_ST_WRITE_OPTIONS_VERSION 1
#define CKPT_ST_WRITE_OPTIONS_INIT { .version = CKPT_ST_WRITE_OPTIONS_VERSION }

/**
 * Writes a safetensors file through write(arg, ...), byte for byte as the
 * reference writer lays it out: tensors ordered by dtype (largest enum
 * value first: U64, I64, F64, C64, F32 ... BOOL) then by name, data in
 * that order with no holes; compact JSON header, "__metadata__" first
 * (its keys sorted), padded with spaces to a multiple of 8 bytes.  Memory
 * is bounded (a 4 MiB buffer plus the header) whatever the data size.
 * *size (may be NULL) gets the bytes written.  Refuses duplicate names,
 * "__metadata__" as a tensor name, non-UTF-8 text, dtypes safetensors
 * lacks (CKPT_ERR_UNSUPPORTED) and headers over 100,000,000 bytes
 * (CKPT_ERR_LIMIT).  Thread-safe for distinct sinks.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_safetensors_write(const struct ckpt_st_tensor *t, size_t n,
    const struct ckpt_st_write_options *o, ckpt_write_fn write, void *arg,
    uint64_t *size, struct ckpt_error *err);
/** The size ckpt_safetensors_write() would write, with the same checks. */
CKPT_MUST_CHECK
CKPT_API int ckpt_safetensors_size(const struct ckpt_st_tensor *t, size_t n,
    const char *const *metadata, size_t nmetadata, uint64_t *size,
    struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Store, manifest, references                                         */
/* ------------------------------------------------------------------ */

/*
 * On-disk layout of a store (see ckpt-manifest(5) and ckpt-save(1)):
 *
 *   STORE/.ckpt/store.json          marker, {"schema": 1}
 *   STORE/.ckpt/lock                the store lock (see ckpt_store_lock)
 *   STORE/.ckpt/pins/RUN@STEP       a pin (JSON: run, step, time, user, note)
 *   STORE/.ckpt/trash/              checkpoints removed by prune or --force
 *   STORE/ckpt.yaml                 optional policy (ckpt-policy(5))
 *   STORE/runs/RUN/step-N/          a committed checkpoint: its files plus
 *       ckpt-summary.json           small summary for ls (covered by the
 *                                   manifest)
 *       ckpt-manifest.json          the manifest, written last: "committed"
 *       ckpt-status.json            optional, mutable: post-commit results
 *                                   (load test); not covered by the manifest
 *   STORE/runs/RUN/.tmp-step-N.PID.RANDOM/   a save in progress or crashed;
 *       ckpt-staging.json           pid, host, start time, state, progress
 *   STORE/registry/.history.jsonl   the registry's hash-chained history
 *   STORE/registry/MODEL/vN/        a version's files (links or copies)
 *   STORE/registry/MODEL/vN.json    {"schema":1,"model","version","run",
 *                                   "step","manifest":"sha256:...","path"}
 *   STORE/registry/MODEL/aliases.json  {"schema":1,"aliases":{"prod":
 *                                   {"version":N,...}}}
 *
 * A checkpoint counts (for ls, latest, prune) only when it is a directory
 * runs/RUN/NAME (NAME not starting with '.') holding ckpt-manifest.json;
 * its step is read from the summary/manifest, never from NAME or mtimes.
 */

#define CKPT_MANIFEST_NAME	"ckpt-manifest.json"
#define CKPT_SUMMARY_NAME	"ckpt-summary.json"
#define CKPT_STATUS_NAME	"ckpt-status.json"
#define CKPT_STAGING_NAME	"ckpt-staging.json"
#define CKPT_STAGING_PREFIX	".tmp-"
/* A staging directory being created, before its record is in it. */
#define CKPT_STAGING_NEW_PREFIX	".new-"
#define CKPT_MANIFEST_SCHEMA	2	/* written; 1 and 2 are read */
#define CKPT_NAME_MAX		128	/* run and model names */

struct ckpt_store;

/**
 * Run and model names: 1..CKPT_NAME_MAX characters of [A-Za-z0-9._+-],
 * starting with a letter or digit (so no "/", no leading ".", no "@").
 * Returns 0, or CKPT_ERR_INVALID with err saying what is wrong.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_name_check(const char *name, const char *what,
    struct ckpt_error *err);

/* Flags for ckpt_store_open(). */
#define CKPT_STORE_CREATE	(1u << 0)	/* create when absent or
						 * empty */

/**
 * Opens the store at dir (which must contain .ckpt/), or with
 * CKPT_STORE_CREATE creates it when dir is absent or an empty directory
 * (a non-empty directory that is not a store is refused with
 * CKPT_ERR_REFUSED).  CKPT_ERR_NOTFOUND when dir is not a store.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_open(const char *dir, unsigned int flags,
    struct ckpt_store **out, struct ckpt_error *err);
/**
 * Finds the store as git finds its repository: start (or the current
 * directory when NULL) and then each parent, the first directory holding
 * .ckpt/store.json.  CKPT_ERR_NOTFOUND when there is none.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_find(const char *start, struct ckpt_store **out,
    struct ckpt_error *err);
/**
 * Creates a store at dir (creating dir if needed) and writes policy_yaml
 * (may be NULL) as dir/ckpt.yaml unless that file exists.  Succeeds on an
 * existing store (*created false).  Refuses a non-empty directory that is
 * not a store unless it holds only policy_yaml's ckpt.yaml.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_init(const char *dir, const char *policy_yaml,
    bool *created, struct ckpt_store **out, struct ckpt_error *err);
CKPT_API void ckpt_store_free(struct ckpt_store *s);
/** Absolute path of the store's root directory (borrowed). */
CKPT_API const char *ckpt_store_root(const struct ckpt_store *s);
/** root + "/" + rel; returns a newly allocated string, caller frees. */
CKPT_API char *ckpt_store_path(const struct ckpt_store *s, const char *rel);

/*
 * Interrupts (SIGINT, SIGTERM, SIGHUP).  A program calls
 * ckpt_interrupt_install() once, early and single-threaded, to have
 * libckpt unwind safely instead of dying mid-step: while the store lock
 * is held or a --move save has the user's files in its staging
 * directory, the signal is only recorded; the operation stops at its next
 * step, moves files back, marks its staging record failed and removes the
 * lock; then the release of the outermost held section re-raises the
 * signal with its default action (so the exit status says which signal).
 * Outside held sections the signal acts as it would without the handler.
 * A signal ignored when installing (nohup) stays ignored.
 * ckpt_interrupt_hold()/ckpt_interrupt_release() nest; a program holds
 * around a save to report the outcome before it dies.
 */
CKPT_API void ckpt_interrupt_install(void);
CKPT_API void ckpt_interrupt_hold(void);
CKPT_API void ckpt_interrupt_release(void);
/** The signal recorded in a held section, or 0. */
CKPT_API int ckpt_interrupt_pending(void);

/*
 * The store lock: STORE/.ckpt/lock, holding "pid", "host", "time",
 * "boot" (kernel boot id), "start" (process start time), "pidns" (pid
 * namespace), "machine" (/etc/machine-id) and "purpose" lines.  The
 * content is written to a fresh temporary file and synced, which is then
 * link()ed into place (atomic and exclusive on local filesystems and on
 * NFSv3 and later): a lock always has its content.  On ENOSPC/EDQUOT the
 * lock is a symlink to a compact identity instead (no data block), so
 * that gc and prune run on a full filesystem.  It serialises commit,
 * prune, pin, gc and promote and is held only around them; while it is
 * held, SIGINT/SIGTERM/SIGHUP are deferred (ckpt_interrupt_install).
 *
 * Stale locks are decided on identity, never on a clock: a lock is broken
 * (and reported in *broken) only when its process is known to be gone --
 * same host and pid namespace, and the pid does not exist or started at
 * another time, or the machine rebooted (another boot id, the same
 * machine id).  A lock of another host or pid namespace, or an empty or
 * garbled one (an older ckpt killed while taking it), is never broken:
 * the caller gets CKPT_ERR_LOCKED with the holder in err; a person who
 * has checked that the holder is gone removes STORE/.ckpt/lock by hand.
 */
struct ckpt_lock_holder {
	long pid;			/* 0 when unknown */
	char host[256];
	int64_t time;			/* unix seconds when taken */
	char purpose[256];
};

/**
 * Takes the store lock for purpose ("save run@10", "prune", ...), waiting
 * up to timeout_ms (0: try once; negative: wait forever) while another
 * live process holds it.  When a stale lock was broken, *broken (may be
 * NULL) describes it and broken->pid is non-zero; else broken->pid is 0.
 * CKPT_ERR_LOCKED (err names holder, host and age) on timeout.  The lock is
 * per store handle and not recursive.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_lock(struct ckpt_store *s, const char *purpose,
    long timeout_ms, struct ckpt_lock_holder *broken,
    struct ckpt_error *err);
/** Releases the lock taken through s (no-op when not held). */
CKPT_API void ckpt_store_unlock(struct ckpt_store *s);
/** Reads who holds the lock now: 0, or CKPT_ERR_NOTFOUND when free. */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_lock_holder(const struct ckpt_store *s,
    struct ckpt_lock_holder *out, struct ckpt_error *err);

/*
 * Pins: STORE/.ckpt/pins/RUN@STEP.  ckpt_store_pin creates it (atomically,
 * succeeds if already pinned), ckpt_store_unpin removes it (CKPT_ERR_NOTFOUND
 * when not pinned).  Callers take the store lock around them.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_pin(struct ckpt_store *s, const char *run,
    int64_t step, const char *note, struct ckpt_error *err);
CKPT_MUST_CHECK
CKPT_API int ckpt_store_unpin(struct ckpt_store *s, const char *run,
    int64_t step, struct ckpt_error *err);
CKPT_API bool ckpt_store_is_pinned(const struct ckpt_store *s,
    const char *run, int64_t step);

/* One metric: NaN means "no value" (recorded as null). */
struct ckpt_metric {
	const char *name;
	double value;
};

/*
 * The outcome of a check recorded with a checkpoint (the validation at
 * save, the load test after it).  Read from files that a newer ckpt may
 * have written: a value this version does not know is UNKNOWN, and the
 * entry keeps the recorded string.
 */
enum ckpt_check_result {
	CKPT_CHECK_NONE = 0,		/* not run, nothing recorded */
	CKPT_CHECK_OK,
	CKPT_CHECK_FAILED,
	CKPT_CHECK_SKIPPED,		/* the format cannot be validated */
	CKPT_CHECK_UNREADABLE,		/* its record is damaged */
	CKPT_CHECK_UNKNOWN		/* recorded by a newer version */
};
/** "ok", "failed", "skipped", "unreadable"; "unknown" for UNKNOWN and
 * NULL for NONE. */
CKPT_API const char *ckpt_check_result_name(enum ckpt_check_result r);

/* One committed checkpoint, as ckpt_store_list() found it. */
struct ckpt_entry {
	const char *run;
	int64_t step;
	const char *path;		/* absolute path of the directory */
	const char *name;		/* its name in runs/RUN/ ("step-100") */
	int64_t created;		/* unix seconds, UTC */
	const char *created_iso;	/* "2026-11-27T15:04:05Z" */
	uint64_t size;			/* bytes of all files in the manifest */
	uint64_t nfiles;
	double epoch;			/* NaN when not recorded */
	size_t nmetrics;
	const struct ckpt_metric *metrics;
	size_t ntags;
	const char *const *tags;
	const char *scope;		/* "full", "weights-only" or NULL */
	const char *note;		/* may be NULL */
	bool pinned;			/* .ckpt/pins/RUN@STEP exists */
	bool protected_by_registry;	/* a registry version points here */
	bool failed;			/* validation or load test failed */
	/* validation at save, and the post-commit load test (NONE: none) */
	enum ckpt_check_result validation, load_test;
	/* the same as recorded (for UNKNOWN): validation "ok", "failed",
	 * "skipped"; load_test NULL (none), "ok", "failed", "unreadable" */
	const char *validation_raw;
	const char *load_test_raw;
};

/*
 * Where a save is, as its staging record says.  A record a newer ckpt
 * wrote may name a phase this version does not know: UNKNOWN, and the
 * staging entry keeps the recorded string.
 */
enum ckpt_save_phase {
	CKPT_PHASE_NONE = 0,		/* not recorded */
	CKPT_PHASE_STAGING,		/* placing the files */
	CKPT_PHASE_STARTED,		/* a --background child took over */
	CKPT_PHASE_VALIDATING,
	CKPT_PHASE_HASHING,
	CKPT_PHASE_COPYING,
	CKPT_PHASE_SYNCING,
	CKPT_PHASE_COMMITTING,
	CKPT_PHASE_FAILING,		/* undoing a failed save */
	CKPT_PHASE_FAILED,
	CKPT_PHASE_UNKNOWN		/* recorded by a newer version */
};
/** "staging", "started", "validating", "hashing", "copying", "syncing",
 * "committing", "failing", "failed"; "unknown" for UNKNOWN, NULL for
 * NONE. */
CKPT_API const char *ckpt_save_phase_name(enum ckpt_save_phase p);

/* A directory of runs/RUN/ that is not a committed checkpoint. */
enum ckpt_staging_state {
	CKPT_STAGING_ACTIVE = 0,	/* a save in progress (owner alive) */
	CKPT_STAGING_FAILED,		/* the save reported a failure */
	CKPT_STAGING_ABANDONED,		/* owner gone without finishing */
	CKPT_STAGING_INCOMPLETE		/* a visible name without manifest */
};
/** "in-progress", "failed", "abandoned", "incomplete" (what ckpt ls
 * prints and --json carries). */
CKPT_API const char *ckpt_staging_state_name(enum ckpt_staging_state s);

struct ckpt_staging {
	const char *run;
	const char *path;		/* absolute */
	const char *name;
	enum ckpt_staging_state state;
	enum ckpt_save_phase phase;
	const char *phase_raw;		/* as recorded, or NULL */
	const char *message;		/* failure message or NULL */
	int64_t step;			/* -1 when unknown */
	long pid;			/* 0 when unknown */
	const char *host;		/* NULL when unknown */
	int64_t started;		/* unix seconds, 0 when unknown */
	int64_t updated;		/* last status write (or mtime) */
	uint64_t done, total;		/* bytes hashed so far / to hash */
};

/*
 * Something a listing found and did not use: a symbolic link where a run
 * or checkpoint directory belongs (never followed: it is not part of the
 * store, and no command touches it), or a registry entry that cannot be
 * parsed (it protects every checkpoint from prune).
 */
struct ckpt_foreign {
	const char *run;		/* NULL for a registry entry */
	const char *path;		/* absolute */
	const char *what;		/* "a symbolic link", ... */
};

struct ckpt_list;

/* Flags for ckpt_store_list(). */
#define CKPT_LIST_STAGING	(1u << 0)	/* also list non-committed
						 * dirs */
#define CKPT_LIST_NO_INDEX	(1u << 1)	/* read every checkpoint's
						 * files, never the listing
						 * cache (for destructive
						 * decisions) */

/**
 * Lists the committed checkpoints of run (every run when NULL), sorted by
 * run name then step, with pins and registry protection resolved; with
 * CKPT_LIST_STAGING also in-progress, failed and incomplete directories.
 * Reads only the small summary files (fast for 10,000 checkpoints).  A
 * checkpoint whose summary is unreadable is listed from its manifest.
 * Fails closed: any error but ENOENT reading runs, pins or the registry
 * is an error (CKPT_ERR_IO), never an empty or partial listing.  Symbolic
 * links are never followed; they are listed by ckpt_list_foreign().
 * A run named explicitly that is a symbolic link is CKPT_ERR_UNSAFE.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_list(struct ckpt_store *s, const char *run,
    unsigned int flags, struct ckpt_list **out, struct ckpt_error *err);
CKPT_API void ckpt_list_free(struct ckpt_list *l);
CKPT_API size_t ckpt_list_count(const struct ckpt_list *l);
CKPT_API const struct ckpt_entry *ckpt_list_entry(const struct ckpt_list *l,
    size_t i);
CKPT_API size_t ckpt_list_staging_count(const struct ckpt_list *l);
CKPT_API const struct ckpt_staging *ckpt_list_staging(
    const struct ckpt_list *l, size_t i);
CKPT_API size_t ckpt_list_foreign_count(const struct ckpt_list *l);
CKPT_API const struct ckpt_foreign *ckpt_list_foreign(
    const struct ckpt_list *l, size_t i);
/**
 * Calls fn on the committed checkpoints of run that are not marked failed,
 * from the newest (highest step) down, until fn returns non-zero, and
 * reads only what that needs: while the run directory is unchanged since
 * the listing cache was written, only the checkpoints down to the one fn
 * accepts (each read again from its own files before fn sees it); else
 * the run is listed.  Returns fn's non-zero value, 0 when fn accepted none
 * (or the run has none), or an error (CKPT_ERR_*, fail closed as
 * ckpt_store_list).  ckpt latest and RUN@latest are this.
 */
typedef int (*ckpt_entry_fn)(const struct ckpt_entry *e, void *arg);
CKPT_MUST_CHECK
CKPT_API int ckpt_store_newest(struct ckpt_store *s, const char *run,
    ckpt_entry_fn fn, void *arg, struct ckpt_error *err);
/** The value of metric name in e: true and *value (may be NaN) if present. */
CKPT_API bool ckpt_entry_metric(const struct ckpt_entry *e, const char *name,
    double *value);

/*
 * References.  Forms: RUN@STEP, RUN@latest, RUN@best (needs a metric and a
 * mode), MODEL@vN and MODEL@ALIAS (read from STORE/registry/).  latest and
 * best skip checkpoints marked failed; best ignores NaN/missing values and
 * breaks ties toward the higher step.
 */
enum ckpt_metric_mode {
	CKPT_METRIC_MIN = 0,
	CKPT_METRIC_MAX = 1
};

struct ckpt_ref {
	char *run;
	int64_t step;
	char *path;			/* absolute checkpoint directory */
	char *model;			/* MODEL@... forms, else NULL */
	int64_t version;		/* MODEL@... forms, else 0 */
	char *manifest_digest;		/* "sha256:..." from the registry, or
					 * NULL */
};

/** True when s looks like a reference (NAME@SOMETHING with a valid NAME). */
CKPT_API bool ckpt_ref_syntax_ok(const char *s);
/**
 * Resolves ref in s into *out (release with ckpt_ref_release).  metric and
 * mode are used by RUN@best only (metric NULL there: CKPT_ERR_INVALID).
 * CKPT_ERR_NOTFOUND when the run, step, model, version or alias is unknown;
 * CKPT_ERR_INVALID for a malformed reference.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_resolve(struct ckpt_store *s, const char *ref,
    const char *metric, enum ckpt_metric_mode mode, struct ckpt_ref *out,
    struct ckpt_error *err);
CKPT_API void ckpt_ref_release(struct ckpt_ref *r);

/*
 * The manifest (ckpt-manifest(5)).  Reading validates it strictly: JSON
 * without duplicate keys, schema known, file paths canonical (relative, no
 * "." or ".." components, no "//", sorted byte-wise, unique), digests
 * well-formed, chunk and tensor ranges inside the file.
 */
struct ckpt_manifest;

/* A byte range of a file and the SHA-256 of exactly those bytes. */
struct ckpt_range_digest {
	uint64_t offset;
	uint64_t end;			/* exclusive */
	unsigned char sha256[CKPT_SHA256_BYTES];
};

struct ckpt_manifest_tensor {
	const char *name;
	const char *dtype;		/* as the reader named it ("F32") */
	unsigned int ndim;
	const uint64_t *shape;
	/*
	 * [offset, end): every byte the tensor's elements read.  Schema 1
	 * records the digest of those bytes (has_bytes_sha256); schema 2
	 * covers them by the file's ranges instead.
	 */
	struct ckpt_range_digest bytes;
	bool has_bytes_sha256;
	/*
	 * Schema 2: SHA-256 of the elements in row-major order, little
	 * endian (what safetensors stores; see ckpt_tensor_content_sha256),
	 * absent for sparse and quantized tensors.
	 */
	bool has_content_sha256;
	unsigned char content_sha256[CKPT_SHA256_BYTES];
};

struct ckpt_manifest_file {
	const char *path;		/* relative to the checkpoint
					 * directory */
	uint64_t size;
	const char *format;		/* ckpt_format_name() at save time */
	/* The whole file's SHA-256: always in schema 1, optional in 2. */
	bool has_sha256;
	unsigned char sha256[CKPT_SHA256_BYTES];
	/*
	 * Schema 1: chunks cover every byte of the file that no tensor of
	 * at most chunk_size bytes covers, in pieces of at most chunk_size
	 * bytes.  Schema 2: the file's ranges, in offset order, cover every
	 * byte exactly once (nranges may be 0 only for an empty file).
	 * Either way they let one large file be verified on every core
	 * (see ckpt_hash_files).
	 */
	uint64_t chunk_size;
	size_t nchunks;
	const struct ckpt_range_digest *chunks;
	size_t nranges;
	const struct ckpt_range_digest *ranges;
	size_t ntensors;
	const struct ckpt_manifest_tensor *tensors;
};

/** Reads path: a manifest file, or a checkpoint directory holding one. */
CKPT_MUST_CHECK
CKPT_API int ckpt_manifest_read(const char *path,
    struct ckpt_manifest **out, struct ckpt_error *err);
/**
 * ckpt_manifest_read() of a location: a local path, or "s3://BUCKET/KEY"
 * naming a checkpoint prefix or its manifest object (one GET; the
 * manifest's directory is then the URL).  See
 * ckpt_checkpoint_open_location() for the endpoint and credentials.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_manifest_read_location(const char *location,
    struct ckpt_manifest **out, struct ckpt_error *err);
CKPT_API void ckpt_manifest_free(struct ckpt_manifest *m);
/** Directory the manifest lives in (absolute; borrowed). */
CKPT_API const char *ckpt_manifest_dir(const struct ckpt_manifest *m);
CKPT_MUST_CHECK
CKPT_API int ckpt_manifest_schema(const struct ckpt_manifest *m);
CKPT_API const char *ckpt_manifest_run(const struct ckpt_manifest *m);
CKPT_API int64_t ckpt_manifest_step(const struct ckpt_manifest *m);
/** "sha256:<hex>" of the manifest file's bytes (borrowed). */
CKPT_API const char *ckpt_manifest_digest(const struct ckpt_manifest *m);
/** The whole manifest as JSON text (borrowed), for inspect and diff. */
CKPT_API const char *ckpt_manifest_json(const struct ckpt_manifest *m);
/** One top-level member as JSON text, newly allocated (caller frees), or
 * NULL when absent ("metrics", "config", "git", ...). */
CKPT_API char *ckpt_manifest_get_json(const struct ckpt_manifest *m,
    const char *key);
CKPT_API size_t ckpt_manifest_file_count(const struct ckpt_manifest *m);
CKPT_API const struct ckpt_manifest_file *ckpt_manifest_file(
    const struct ckpt_manifest *m, size_t i);
/** The file entry with this relative path, or NULL. */
CKPT_API const struct ckpt_manifest_file *ckpt_manifest_find_file(
    const struct ckpt_manifest *m, const char *path);

/*
 * The hashing engine: one read pass per byte range, on every core.  Each
 * job names a file; the engine computes, as asked, the whole file's SHA-256
 * (sequential by nature: one task per file, started first) and the digest
 * of every range in ranges[] (independent tasks, run in parallel).  Files
 * run in parallel; a large file is split by its ranges so that one big
 * file also uses every core.  Memory: one fixed buffer per thread, pread.
 */
struct ckpt_hash_job {
	const char *path;		/* in */
	bool whole;			/* in: compute sha256 of the file */
	size_t nranges;			/* in */
	struct ckpt_range_digest *ranges; /* in: offset/end; out: sha256 */
	uint64_t size;			/* out: file size found */
	unsigned char sha256[CKPT_SHA256_BYTES]; /* out, when whole */
	int status;			/* out: 0 or a ckpt_status */
	struct ckpt_error err;		/* out: when status != 0 */
};


/**
 * Runs the jobs on nthreads threads (0: one per online CPU).  Returns 0
 * when every job succeeded, else the first failing job's status (every
 * job's own status and err are filled either way, so the result may be
 * ignored when each job's is looked at).  A range beyond the end of its
 * file fails that job with CKPT_ERR_FORMAT.  progress gets the bytes
 * hashed, from worker threads, serialised, about every 64 MiB.
 */
CKPT_API int ckpt_hash_files(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    struct ckpt_error *err);
/**
 * ckpt_hash_files() where a job's path may also be "s3://BUCKET/KEY": an
 * object is hashed by streaming GETs (one per whole digest, ranges split
 * over up to nthreads ranged GETs), never stored on disk.  progress is
 * given for local files only.
 */
CKPT_API int ckpt_hash_locations(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    struct ckpt_error *err);

/** The default chunk size of new manifests: 64 MiB. */
#define CKPT_CHUNK_SIZE ((uint64_t)64 << 20)

/**
 * Plans the chunk ranges of a file of size bytes with ntensors tensor
 * ranges (any order, may overlap): every byte not inside a tensor range of
 * at most chunk_size bytes, cut into pieces of at most chunk_size.
 * Returns a newly allocated array (caller frees) in *out, count in *n.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_chunks_plan(uint64_t size, const struct ckpt_range_digest
    *tensors, size_t ntensors, uint64_t chunk_size,
    struct ckpt_range_digest **out, size_t *n, struct ckpt_error *err);

/**
 * Plans the ranges of manifest schema 2 for a file of size bytes: a
 * partition of [0, size) in offset order, each byte in exactly one range.
 * spans[] are the tensors' byte spans (any order, may overlap; empty or
 * out-of-file ones are ignored); overlapping spans merge into one region.
 * A region that is exactly one span marked keep[i] (a tensor whose content
 * digest is the digest of its bytes) stays one range whatever its size, so
 * that its digest is the tensor's content digest at no extra cost; every
 * other region and every gap between regions is cut into pieces of at
 * most chunk_size (0: CKPT_CHUNK_SIZE).  Returns a newly allocated array
 * (caller frees) in *out, count in *n.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_ranges_plan(uint64_t size, const struct ckpt_range_digest
    *spans, const bool *keep, size_t nspans, uint64_t chunk_size,
    struct ckpt_range_digest **out, size_t *n, struct ckpt_error *err);

/*
 * Saving (the commit protocol of ckpt-save(1)).  ckpt_save_begin checks
 * the request, creates the staging directory runs/RUN/.tmp-step-N.PID.RND
 * with its ckpt-staging.json, and moves or links the sources in (copies
 * happen in finish).  ckpt_save_finish copies, hashes, validates, writes
 * the summary and the manifest, and commits under the store lock:
 * rename without clobbering, fsync of the parent.  On any failure the
 * staging directory stays, marked failed, and moved sources are moved
 * back where possible.  --background callers fork between the two.
 */
enum ckpt_transfer {
	CKPT_TRANSFER_AUTO = 0,		/* move on the same filesystem, else
					 * copy */
	CKPT_TRANSFER_MOVE,
	CKPT_TRANSFER_COPY,
	CKPT_TRANSFER_LINK,
	CKPT_TRANSFER_ADOPT,		/* hardlink (else copy); source kept */
	/*
	 * No sources: the caller writes the checkpoint's files, its
	 * summary and manifest included, into ckpt_save_path() (import);
	 * finish fsyncs them and commits them as they are, so that the
	 * manifest and its digest stay those written.
	 */
	CKPT_TRANSFER_STAGED
};

struct ckpt_save_options {
	unsigned int version;		/* CKPT_SAVE_OPTIONS_VERSION */
	const char *run;
	int64_t step;			/* >= 0 */
	const char *const *sources;	/* files and/or directories */
	size_t nsources;
	enum ckpt_transfer transfer;
	bool force;			/* replace an existing step */
	/* With force: delete the replaced checkpoint instead of keeping it
	 * in the trash (the caller found that it does not verify). */
	bool discard_replaced;
	/*
	 * Caller-collected metadata as a JSON object (may be NULL), merged
	 * into the manifest: "epoch", "metrics", "config", "git", "data",
	 * "environment", "tags", "note", "resumed_from", "scope",
	 * "load_test", ...  The library adds run, step, created, host,
	 * user, ckpt_version, files, tensors, validation.
	 */
	const char *metadata_json;
	unsigned int nthreads;		/* 0: every CPU */
	uint64_t chunk_size;		/* 0: CKPT_CHUNK_SIZE */
	/* Record each file's whole SHA-256 (also when the store's ckpt.yaml
	 * says manifest: {file_sha256: true}); computed in the same pass. */
	bool file_sha256;
	long lock_timeout_ms;		/* for the commit */
	ckpt_progress_fn progress;
	void *progress_data;
	/*
	 * Version 2: what "ckpt save" records about where the checkpoint
	 * came from, so that every caller gets the same manifest.  Each
	 * capture fills its manifest key only when metadata_json lacks it.
	 * capture: CKPT_CAPTURE_* flags (CKPT_SAVE_OPTIONS_INIT sets
	 * CKPT_CAPTURE_DEFAULT, as ckpt save does; 0 captures none of them).
	 * The named files are always recorded; one missing or unreadable
	 * fails the save with CKPT_ERR_INVALID.
	 */
	unsigned int capture;
	const char *git_dir;		/* CKPT_CAPTURE_GIT; NULL: cwd */
	/* "data": the fingerprint of these files and directories */
	const char *const *data_paths;
	size_t ndata_paths;
	const char *data_version;	/* "data": {"version": ...} */
	const char *env_file;		/* "environment": {"file": ...} */
	const char *config_file;	/* "config": YAML or JSON as JSON */
};
/** "git": commit, branch, dirty state, top level (best effort). */
#define CKPT_CAPTURE_GIT		(1u << 0)
/** "environment": {"gpus": [...]} from the NVIDIA driver (best effort). */
#define CKPT_CAPTURE_GPUS		(1u << 1)
/**
 * For CKPT_TRANSFER_ADOPT: the adopted directory's trainer_state.json
 * (ckpt_trainer_state_read): "trainer_state", the step's logged metrics
 * under the caller's, and "epoch" when the caller's is missing or null.
 */
#define CKPT_CAPTURE_TRAINER_STATE	(1u << 2)
#define CKPT_CAPTURE_DEFAULT	(CKPT_CAPTURE_GIT | CKPT_CAPTURE_GPUS | \
    CKPT_CAPTURE_TRAINER_STATE)
#define CKPT_SAVE_OPTIONS_VERSION 2
#define CKPT_SAVE_OPTIONS_INIT { .version = CKPT_SAVE_OPTIONS_VERSION, \
    .capture = CKPT_CAPTURE_DEFAULT }

/*
 * A Hugging Face trainer_state.json of a checkpoint directory (Python's
 * NaN and Infinity read as null).  No file: 0 with found false, and the
 * step taken from a "checkpoint-N" directory name when it has one.  A
 * file that does not parse: CKPT_ERR_INVALID with line and column.
 */
struct ckpt_trainer_state {
	bool found;			/* trainer_state.json was there */
	bool has_step;
	int64_t step;			/* global_step (or from the name) */
	double epoch;			/* NAN: none */
	char *metrics_json;		/* this step's logged metrics: object */
	char *trainer_json;		/* global_step, best_model_checkpoint,
					 * best_metric: object; NULL: !found */
};
CKPT_MUST_CHECK
CKPT_API int ckpt_trainer_state_read(const char *dir,
    struct ckpt_trainer_state *out, struct ckpt_error *err);
CKPT_API void ckpt_trainer_state_release(struct ckpt_trainer_state *ts);

struct ckpt_save;

CKPT_MUST_CHECK
CKPT_API int ckpt_save_begin(struct ckpt_store *s,
    const struct ckpt_save_options *opts, struct ckpt_save **out,
    struct ckpt_error *err);
CKPT_MUST_CHECK
CKPT_API int ckpt_save_finish(struct ckpt_save *sv,
    struct ckpt_lock_holder *broken, struct ckpt_error *err);
/** Frees the handle; a save never finished stays on disk (for gc). */
CKPT_API void ckpt_save_free(struct ckpt_save *sv);
/** The staging directory, then (after finish) the committed directory. */
CKPT_API const char *ckpt_save_path(const struct ckpt_save *sv);
/** After finish: "sha256:..." of the manifest written (borrowed). */
CKPT_API const char *ckpt_save_manifest_digest(const struct ckpt_save *sv);
/** The committed manifest's "validation" object as JSON (NULL before the
 * manifest is written): a caller need not read the manifest back, which
 * on a remote store is elsewhere. */
CKPT_API const char *ckpt_save_validation(const struct ckpt_save *sv);
/**
 * Rewrites the staging status with the calling process as its owner and
 * the given phase: a --background child calls it first so that ls never
 * takes the save for abandoned when the parent exits.
 */
CKPT_API void ckpt_save_set_phase(struct ckpt_save *sv,
    enum ckpt_save_phase phase);
/**
 * Removes the staging directory of a save that will not be finished (and
 * the run directory begin created, when it is left empty), so that the
 * store is as it was; a no-op after a commit.  Only for saves that moved
 * nothing in (COPY, LINK, ADOPT, STAGED).
 */
CKPT_API void ckpt_save_abort(struct ckpt_save *sv);
/** Marks the staging directory failed with message (for a dying caller). */
CKPT_API void ckpt_save_mark_failed(struct ckpt_save *sv, const char *msg);
/**
 * Of a --move save: *moved, the sources moved into the staging directory;
 * *stranded, those a failed or interrupted save could not move back (a
 * file now exists at the source path, ...): they stay in the staging
 * directory, listed in its record, for "ckpt gc --restore".
 */
CKPT_API void ckpt_save_moves(const struct ckpt_save *sv, size_t *moved,
    size_t *stranded);
/**
 * Records post-commit results (the load test) in the committed
 * checkpoint's ckpt-status.json, atomically.  json is an object.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_status_write(const char *dir, const char *json,
    struct ckpt_error *err);

/*
 * Converting a checkpoint to safetensors (ckpt-convert(1)) without
 * executing its pickle.  in is a file or a directory (a torch zip file, a
 * Lightning .ckpt, a training checkpoint, a legacy torch file, safetensors
 * files, a Hugging Face directory or sharded model, a DCP checkpoint,
 * consolidated from its chunks); out the .safetensors
 * path.  Weights are chosen with select (tensors at or under each
 * "PREFIX."), else per file: a top-level dict of tensors, or a
 * state_dict/model/module member holding one (that prefix removed).
 * Tied weights (one view of one storage under several names) are written
 * once, under the first name in byte order, each other name recorded in
 * __metadata__ as name -> kept name (safetensors' save_model).  Output is
 * atomic (temporary file, fsync, rename, fsync of the directory) and
 * never replaces a file unless force.  With shard_size, tensors go into
 * OUT-0000K-of-0000N.safetensors files of at most that many data bytes
 * (a larger tensor alone) and OUT.index.json lists them, as Hugging Face
 * writes them; one shard is written as OUT itself.
 *
 * Returns CKPT_ERR_UNSAFE for a pickle referencing globals outside the
 * allowlist and allow_globals, CKPT_ERR_INVALID when no weights are found
 * or names collide, CKPT_ERR_FORMAT for a DCP checkpoint whose chunks do
 * not cover its tensors, CKPT_ERR_EXISTS for an existing output.  *report (may
 * be NULL) gets, on success, a JSON document the caller frees: "input", "roots"
 * (per file: "file", "root", "how": top-level|member|select|none), "tensors"
 * (name, dtype, shape, bytes, source, file, view, byteswapped), "aliases"
 * {alias: kept}, "left_out" [{file, name, reason}], "values" [{path,
 * value}] (non-tensor values, the first 1000; "values_total" counts them),
 * "sources" {file: "sha256:..."}, "metadata" (the __metadata__ written),
 * "outputs" [{path, size, tensors}], "index" (sharded only).
 */
struct ckpt_convert_options {
	unsigned int version;		/* CKPT_CONVERT_OPTIONS_VERSION */
	const char *const *select;	/* prefixes; none: discover */
	size_t nselect;
	bool strip_prefix;		/* remove "PREFIX." from names */
	bool metadata_json;		/* scalars into __metadata__ */
	uint64_t shard_size;		/* data bytes per shard; 0: one file */
	bool force;			/* replace existing outputs */
	const char *source_name;	/* recorded as ckpt.source, or NULL */
	const char *const *allow_globals; /* see ckpt_open_options */
	size_t nallow_globals;
	ckpt_progress_fn progress;
	void *progress_data;
};
#define CKPT_CONVERT_OPTIONS_VERSION 1
#define CKPT_CONVERT_OPTIONS_INIT { .version = CKPT_CONVERT_OPTIONS_VERSION }

CKPT_MUST_CHECK
CKPT_API int ckpt_convert(const char *in, const char *out,
    const struct ckpt_convert_options *o, char **report,
    struct ckpt_error *err);

/*
 * Bundles (ckpt-export(1), ckpt-import(1)): committed checkpoints as one
 * tar stream, plain or compressed: "ckpt-bundle.json" (the list: dir
 * "RUN@STEP", run, step, manifest digest), then per checkpoint
 * RUN@STEP/ckpt-manifest.json, its signature when there is one, and every
 * file of the manifest in manifest order.
 */
enum ckpt_compression {
	CKPT_COMPRESS_NONE = 0,
	CKPT_COMPRESS_GZIP,
	CKPT_COMPRESS_ZSTD		/* CKPT_ERR_UNSUPPORTED without it */
};

/*
 * A model version carried with its checkpoint dirs[index]: the list's
 * "models" entry {"model", "version", "checkpoint": "RUN@STEP",
 * "manifest", "lineage"}, lineage being the exporting store's history
 * up to and including the version's promote record (JSON lines), which
 * ckpt_import() checks and the importer promotes with (struct
 * ckpt_promote_options lineage).
 */
struct ckpt_export_model {
	size_t index;
	const char *model;
	int64_t version;
	const char *lineage;
	size_t lineage_len;
};

struct ckpt_export_aliases {
	const char *const *names;
	size_t n;
};

struct ckpt_export_options {
	unsigned int version;		/* CKPT_EXPORT_OPTIONS_VERSION */
	enum ckpt_compression compression;
	bool force;			/* replace an existing output file */
	ckpt_progress_fn progress;
	void *progress_data;
	const struct ckpt_export_model *models;	/* may be NULL */
	size_t nmodels;
	/*
	 * Version 2: the aliases naming each model version (nmodels
	 * entries, parallel to models; NULL: none), carried as the models
	 * entry's "aliases" for ckpt-import(1) to offer.
	 */
	const struct ckpt_export_aliases *aliases;
};
#define CKPT_EXPORT_OPTIONS_VERSION 2
#define CKPT_EXPORT_OPTIONS_INIT { .version = CKPT_EXPORT_OPTIONS_VERSION }

/**
 * Writes a bundle of the committed checkpoint directories dirs[0..n) to
 * path (a temporary file beside it, fsync, rename; refused when it exists
 * unless force) or, when path is NULL, to fd.  A file whose size is not
 * the manifest's is refused (run verify); export does not re-hash (import
 * does).  *report (may be NULL): JSON {"output", "checkpoints": [{run,
 * step, path, manifest, files, bytes}]}, the caller frees it.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_export(const char *const *dirs, size_t n,
    const struct ckpt_export_options *o, const char *path, int fd,
    char **report, struct ckpt_error *err);

struct ckpt_import_options {
	unsigned int version;		/* CKPT_IMPORT_OPTIONS_VERSION */
	const char *run;		/* import every checkpoint into this
					 * run */
	const char *name;		/* the bundle's name in errors; "-" */
	long lock_timeout_ms;		/* for the commits */
	uint64_t progress_total;	/* the input's size, if known */
	/* Called with bytes of the input read so far. */
	ckpt_progress_fn progress;
	void *progress_data;
};
#define CKPT_IMPORT_OPTIONS_VERSION 1
#define CKPT_IMPORT_OPTIONS_INIT { .version = CKPT_IMPORT_OPTIONS_VERSION }

/*
 * Push and pull (ckpt-push(1), ckpt-pull(1)): the committed checkpoint at
 * source (its directory, or s3://BUCKET/PREFIX/runs/RUN/step-N) copied to
 * dest: a store (a directory or s3://BUCKET/PREFIX), through save's
 * commit protocol, or with to_dir a new plain directory.  Every byte is
 * checked against the source's manifest on the way (CKPT_ERR_FORMAT, and
 * nothing committed, when it differs); the manifest is committed last and
 * as it came, so a copy cut short is never visible.  A dest with the same
 * manifest has the checkpoint (up_to_date); another checkpoint at the
 * same RUN@STEP is CKPT_ERR_EXISTS.  Endpoint and credentials of s3://
 * locations come from the environment and ~/.aws.
 */
struct ckpt_copy_options {
	unsigned int version;		/* CKPT_COPY_OPTIONS_VERSION */
	const char *source;
	const char *dest;
	bool to_dir;
	long lock_timeout_ms;		/* a local store's commit */
};
#define CKPT_COPY_OPTIONS_VERSION 1
#define CKPT_COPY_OPTIONS_INIT { .version = CKPT_COPY_OPTIONS_VERSION }

struct ckpt_copy_result {
	char *run;
	int64_t step;
	char manifest_digest[8 + 2 * CKPT_SHA256_BYTES];
	char *dest_path;		/* the copy's location */
	size_t files;			/* of the manifest's files */
	uint64_t bytes;			/* copied */
	bool up_to_date;		/* dest had this checkpoint */
};

CKPT_MUST_CHECK
CKPT_API int ckpt_copy_checkpoint(const struct ckpt_copy_options *o,
    struct ckpt_copy_result *out, struct ckpt_error *err);
CKPT_API void ckpt_copy_result_release(struct ckpt_copy_result *r);
/**
 * The location of the checkpoint ref names in store (a directory or
 * s3://BUCKET/PREFIX): newly allocated in *out.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_location_resolve(const char *store, const char *ref,
    char **out, struct ckpt_error *err);

/**
 * Reads a bundle from fd and commits its checkpoints into the store, each
 * through the commit protocol of ckpt_save (a STAGED save), with its
 * manifest as it came (same digest, signature still valid).  Every entry
 * is checked while streaming (see lib/store/bundle.c): names (absolute,
 * "..", links, device nodes, duplicates are refused), order, sizes
 * against the manifest before writing, SHA-256 of every file, the
 * manifest's digest against the bundle's list; nothing is committed until
 * the whole stream has checked, and a failure removes what was staged.
 * An existing RUN@STEP with the same manifest digest is left as it is
 * ("identical"); with another one the import is refused (CKPT_ERR_EXISTS)
 * before anything is written.  Errors on the stream are CKPT_ERR_FORMAT
 * with the entry's header offset in the uncompressed stream.  *report:
 * JSON {"input", "checkpoints": [{run, step, bundle_run, manifest,
 * status: imported|identical|not imported, signature}]}, and "models"
 * (the list's model versions with their lineage) when it has any.
 *
 * A weights-only model version (list entry "scope": "weights-only", dir
 * "MODEL@vN", run and step its source's) is checked the same way but
 * not committed: it is staged under registry/.staging and its model
 * entry in the report gets "staged": the directory, for the caller to
 * promote (ckpt_promote() with weights_only and the lineage) and then
 * remove with ckpt_import_discard().  A registry repair removes what a
 * dead importer left there.  Without report nothing stays staged.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_import(struct ckpt_store *s, int fd,
    const struct ckpt_import_options *o, char **report, struct ckpt_error *err);
/* Removes a directory ckpt_import() staged (a "staged" of its report). */
CKPT_MUST_CHECK
CKPT_API int ckpt_import_discard(struct ckpt_store *s, const char *staged,
    struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Retention policy                                                    */
/* ------------------------------------------------------------------ */

/*
 * A retention policy: the rules of ckpt-policy(5).  Rules combine as a
 * union (a checkpoint is kept when any rule keeps it); max_size is then a
 * cap on the union.  Whatever the rules say, the newest checkpoint of each
 * run (by step) that is not marked failed (the one "ckpt latest" returns),
 * the best one by the policy's metric when it names one (not failed, with
 * a value), pinned checkpoints and sources of registry versions are kept,
 * and no rule ever looks across runs.  A failed checkpoint never fills
 * newest, a keep_last slot or a keep_best rank.
 *
 * Every field may be "unset" (CKPT_POLICY_UNSET, NULL, or the _UNSET enum
 * value) so that policies can be layered: ckpt_policy_merge() copies the
 * set fields of one policy over another (default < per-run override <
 * command line).  Counts take CKPT_KEEP_ALL for "unlimited".  A count of 0
 * is a rule that keeps nothing; a policy whose rules are all unset or 0 is
 * empty and refused.
 */
#define CKPT_POLICY_UNSET	(-2)
#define CKPT_KEEP_ALL		(-1)

enum ckpt_policy_mode {
	CKPT_POLICY_MODE_UNSET = 0,
	CKPT_POLICY_MIN,		/* lower is better (a loss); default */
	CKPT_POLICY_MAX			/* higher is better (an accuracy) */
};

enum ckpt_missing {
	CKPT_MISSING_UNSET = 0,
	CKPT_MISSING_KEEP,		/* no value: kept by keep_best;
					 * default */
	CKPT_MISSING_DROP		/* no value: not kept by keep_best */
};

/* Calendar buckets, finest first. */
enum ckpt_bucket {
	CKPT_BUCKET_HOURLY = 0,
	CKPT_BUCKET_DAILY,
	CKPT_BUCKET_WEEKLY,		/* ISO 8601 weeks, Monday to Sunday */
	CKPT_BUCKET_MONTHLY,
	CKPT_BUCKET_YEARLY,
	CKPT_BUCKET_COUNT
};

struct ckpt_policy {
	int64_t keep_last;		/* newest N by step */
	int64_t keep_best;		/* best N by metric */
	const char *metric;		/* borrowed; keep_best needs it */
	enum ckpt_policy_mode mode;
	enum ckpt_missing missing;
	int64_t keep_every;		/* steps that are multiples of K */
	int64_t keep_within;		/* seconds before the newest
					 * checkpoint */
	int64_t keep_bucket[CKPT_BUCKET_COUNT];	/* newest N periods (UTC) */
	int64_t max_size;		/* bytes per run */
};

/** Sets every field of *p to unset. */
CKPT_API void ckpt_policy_init(struct ckpt_policy *p);
/** Copies the fields that are set in src over dst. */
CKPT_API void ckpt_policy_merge(struct ckpt_policy *dst,
    const struct ckpt_policy *src);
/** True when no rule keeps anything (all unset or 0, and no max_size). */
CKPT_API bool ckpt_policy_is_empty(const struct ckpt_policy *p);
/** Checks consistency (keep_best without a metric, negative values...). */
CKPT_MUST_CHECK
CKPT_API int ckpt_policy_check(const struct ckpt_policy *p,
    struct ckpt_error *err);
/**
 * Describes the policy in one line, e.g. "keep 5 last, 2 best by val_loss
 * (min), every 1000 steps, within 2d, 7 daily; max size 10 GiB".  Returns
 * the caller's string (free(3)), NULL when out of memory.
 */
CKPT_API char *ckpt_policy_describe(const struct ckpt_policy *p);

/*
 * One checkpoint as the retention engine sees it.  Everything is borrowed
 * from the caller for the duration of ckpt_policy_plan().
 */
struct ckpt_candidate {
	const char *run;
	int64_t step;
	int64_t created;		/* commit time, seconds since the
					 * epoch */
	uint64_t size;			/* bytes on disk */
	size_t nmetrics;
	const char *const *metric_names;
	const double *metric_values;	/* NaN: no value */
	bool pinned;
	bool registry;			/* the source of a registry version */
	bool failed;			/* validation or load test failed: never
					 * newest, last or best */
	const char *registry_ref;	/* "MODEL@vN" for the reason, or NULL */
};

/* The verdict for one candidate. */
struct ckpt_verdict {
	bool keep;
	bool invariant;		/* kept whatever the rules: newest,
					 * best, pinned or registry */
	size_t nreasons;
	const char *const *reasons;	/* why kept; for a removal, why removed
					 * against the rules ("max-size") */
};

/* Totals for one run of a plan. */
struct ckpt_plan_run {
	const char *run;
	size_t count, kept, removed;
	uint64_t kept_bytes, removed_bytes;
	uint64_t over_budget;		/* bytes still above max_size, all
					 * protected; 0 when it fits */
};

struct ckpt_plan;

/**
 * Decides keep or remove for every candidate, grouping them by run.  "now"
 * (seconds since the epoch, or 0 to skip the check) excludes checkpoints
 * dated in the future when looking for the newest time, as restic does.
 *
 * Fails with CKPT_ERR_REFUSED when the policy is empty, or when in some run
 * the rules alone keep nothing while something there is not protected
 * ("would delete every checkpoint"); err names the run.
 *
 * Reasons: "newest", "best" (the best by the metric when keep_best does
 * not rank it), "pinned", "registry MODEL@vN", "last", "best K=V (i/N)",
 * "no-metric K", "every K", "within D", "hourly|daily|weekly|monthly|yearly
 * PERIOD", "oldest daily PERIOD" (restic's rule), "max-size" (kept within
 * the budget when max_size is the only rule; removed over the budget).
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_policy_plan(const struct ckpt_policy *p,
    const struct ckpt_candidate *c, size_t n, int64_t now,
    struct ckpt_plan **out, struct ckpt_error *err);
CKPT_API void ckpt_plan_free(struct ckpt_plan *plan);
/** The verdict of candidate i, in the order they were given. */
CKPT_API const struct ckpt_verdict *ckpt_plan_verdict(
    const struct ckpt_plan *plan, size_t i);
/** Runs in the order of first appearance. */
CKPT_API size_t ckpt_plan_run_count(const struct ckpt_plan *plan);
CKPT_API const struct ckpt_plan_run *ckpt_plan_run(
    const struct ckpt_plan *plan, size_t i);

/*
 * The store's ckpt.yaml (ckpt-policy(5)): a default policy, per-run
 * overrides by name or glob, trash behaviour, the gc age of leftovers of
 * crashed saves and prune_on_save.  Unknown keys are errors; errors say
 * "line L, column C: ...".
 */
struct ckpt_policy_config;

enum ckpt_trash_mode {
	CKPT_TRASH_DELETE = 0,		/* prune deletes what it moved to
					 * trash */
	CKPT_TRASH_KEEP			/* left in the trash for "ckpt gc" */
};

#define CKPT_GC_DEFAULT_AGE	(24 * 3600)
#define CKPT_POLICY_FILE_MAX	(1024 * 1024)

/** Loads path; a missing file gives an empty configuration. */
CKPT_MUST_CHECK
CKPT_API int ckpt_policy_config_load(const char *path,
    struct ckpt_policy_config **out, struct ckpt_error *err);
/** The store's ckpt.yaml (local or remote); missing: an empty one. */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_config_load(const struct ckpt_store *s,
    struct ckpt_policy_config **out, struct ckpt_error *err);
/** Parses a buffer; name is used in errors. */
CKPT_MUST_CHECK
CKPT_API int ckpt_policy_config_parse(const char *buf, size_t len,
    const char *name, struct ckpt_policy_config **out,
    struct ckpt_error *err);
CKPT_API void ckpt_policy_config_free(struct ckpt_policy_config *cfg);
/**
 * Writes to *out the policy of a run: the default, with the first matching
 * entry of "runs" merged over it (an exact name wins over globs; globs in
 * file order).  Strings stay borrowed from cfg.
 */
CKPT_API void ckpt_policy_config_lookup(const struct ckpt_policy_config *cfg,
    const char *run, struct ckpt_policy *out);
CKPT_API enum ckpt_trash_mode ckpt_policy_config_trash(
    const struct ckpt_policy_config *cfg);
/** Age in seconds after which gc removes staging dirs of crashed saves. */
CKPT_API int64_t ckpt_policy_config_gc_age(
    const struct ckpt_policy_config *cfg);
/** The prune_on_save setting: "ckpt save" prunes the run after a commit. */
CKPT_API bool ckpt_policy_config_prune_on_save(
    const struct ckpt_policy_config *cfg);
/** manifest.file_sha256: saves record each file's whole SHA-256. */
CKPT_API bool ckpt_policy_config_file_sha256(
    const struct ckpt_policy_config *cfg);
/** verify.allow_globals (see struct ckpt_open_options); *n entries. */
CKPT_API const char *const *ckpt_policy_config_allow_globals(
    const struct ckpt_policy_config *cfg, size_t *n);

/*
 * Pruning a store (ckpt-prune(1)).  Under the store lock, the store is
 * listed, each run's policy decided (ckpt.yaml, with opts->policy merged
 * over it), every plan computed -- a refused run refuses everything, before
 * anything is touched -- and each checkpoint to remove is renamed into
 * STORE/.ckpt/trash/ (atomic: its manifest leaves runs/ with it, so a crash
 * never leaves a half-deleted checkpoint that looks complete).  The lock is
 * then released and, unless ckpt.yaml says "trash: keep", the trash
 * entries are deleted, manifest first.  Saves in flight are never
 * candidates: they are not committed, and a commit waits for the lock.
 */
struct ckpt_prune_options {
	unsigned int version;		/* CKPT_PRUNE_OPTIONS_VERSION */
	const char *run;		/* NULL: every run */
	const struct ckpt_policy *policy; /* merged over ckpt.yaml's; NULL */
	bool ignore_config;		/* policy is the whole policy */
	bool dry_run;			/* plan only: no lock, no change */
	long lock_timeout_ms;		/* as ckpt_store_lock() */
	int64_t now;			/* 0: time(NULL) */
};
#define CKPT_PRUNE_OPTIONS_VERSION 1
#define CKPT_PRUNE_OPTIONS_INIT { .version = CKPT_PRUNE_OPTIONS_VERSION }

struct ckpt_prune_item {
	const char *run;
	int64_t step;
	const char *path;		/* where it was (absolute) */
	int64_t created;
	uint64_t size;
	const char *metric;		/* its run's policy metric, or NULL */
	double value;			/* of that metric; NaN: no value */
	bool keep;
	bool removed;			/* moved out of runs/ */
	size_t nreasons;
	const char *const *reasons;	/* see ckpt_policy_plan() */
	const char *trash_path;		/* where it went, if still there */
	const char *error;		/* why it could not be removed, or
					 * NULL */
};

struct ckpt_prune_run {
	const char *run;
	const char *policy;		/* ckpt_policy_describe() */
	size_t first, count;		/* its items, by ascending step */
	size_t kept, removed, failed;
	uint64_t kept_bytes, removed_bytes;
	uint64_t over_budget;		/* see struct ckpt_plan_run */
};

struct ckpt_prune_report;

/**
 * Applies the retention policy to one run or every run.  Returns 0 when
 * every planned removal was done (the report says what), CKPT_ERR_REFUSED
 * for an empty or over-broad policy (nothing touched), CKPT_ERR_INVALID for
 * an inconsistent one, CKPT_ERR_LOCKED when the lock stays held,
 * CKPT_ERR_NOTFOUND for an unknown run.  When some removals failed it
 * still returns 0: ckpt_prune_report_failed() counts them.
 * This is what "ckpt save --prune" calls after its commit, with
 * opts = { .run = RUN, .lock_timeout_ms = ... }.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_prune(struct ckpt_store *s,
    const struct ckpt_prune_options *opts, struct ckpt_prune_report **out,
    struct ckpt_error *err);
CKPT_API void ckpt_prune_report_free(struct ckpt_prune_report *r);
/** Items of every run, grouped by run (in name order), by ascending step. */
CKPT_API size_t ckpt_prune_report_count(const struct ckpt_prune_report *r);
CKPT_API const struct ckpt_prune_item *ckpt_prune_report_item(
    const struct ckpt_prune_report *r, size_t i);
CKPT_API size_t ckpt_prune_report_run_count(
    const struct ckpt_prune_report *r);
CKPT_API const struct ckpt_prune_run *ckpt_prune_report_run(
    const struct ckpt_prune_report *r, size_t i);
/** Removals that failed (each item says why). */
CKPT_API size_t ckpt_prune_report_failed(const struct ckpt_prune_report *r);
/** Why the "prune" record of the removals is not in the registry history
 * (ckpt-log(1)), or NULL when it is (or nothing was removed). */
CKPT_API const char *ckpt_prune_report_history_error(
    const struct ckpt_prune_report *r);
/** Trash entries that could not be deleted (left for gc). */
CKPT_API size_t ckpt_prune_report_trash_left(
    const struct ckpt_prune_report *r);
/** A stale lock broken on the way (holder->pid 0 when none). */
CKPT_API const struct ckpt_lock_holder *ckpt_prune_report_broken_lock(
    const struct ckpt_prune_report *r);
/** Symbolic links and unreadable registry entries the prune left alone. */
CKPT_API size_t ckpt_prune_report_foreign_count(
    const struct ckpt_prune_report *r);
CKPT_API const struct ckpt_foreign *ckpt_prune_report_foreign(
    const struct ckpt_prune_report *r, size_t i);

/*
 * Garbage collection (ckpt-gc(1)): empties STORE/.ckpt/trash/ and removes
 * the staging directories (runs/RUN/.tmp-*, .new-*) of saves that crashed
 * or failed, once their last sign of life is older than the threshold.
 * Everything is decided under the store lock.  A save in flight is never
 * removed: on this host and pid namespace its process (pid and start
 * time) must be gone; for another host or namespace, whose processes
 * cannot be checked, only the age of its record counts.  The files of a
 * --move save are moved back to their sources first (never replacing
 * anything); if one cannot go back, the directory stays and the item has
 * an error saying why.  Staging dirs are renamed into the trash under the
 * lock, then the trash is deleted without it.
 */
struct ckpt_gc_options {
	unsigned int version;		/* CKPT_GC_OPTIONS_VERSION */
	int64_t older_than;		/* seconds; negative: ckpt.yaml's */
	bool dry_run;
	long lock_timeout_ms;
	int64_t now;			/* 0: time(NULL) */
	/* Only put back the files of --move saves whose process is known
	 * to be gone, whatever their age, and remove those staging
	 * directories; leave the trash and everything else alone. */
	bool restore;
	/* Called while deleting, with bytes of files deleted so far and
	 * the bytes of every entry to delete. */
	ckpt_progress_fn progress;
	void *progress_data;
};
#define CKPT_GC_OPTIONS_VERSION 1
#define CKPT_GC_OPTIONS_INIT { .version = CKPT_GC_OPTIONS_VERSION, \
	.older_than = -1 }

enum ckpt_gc_kind {
	CKPT_GC_TRASH = 0,		/* an entry of .ckpt/trash */
	CKPT_GC_STAGING,		/* a staging directory of a save */
	CKPT_GC_UPLOAD			/* an unfinished multipart upload
					 * (s3:// stores) */
};

struct ckpt_gc_item {
	enum ckpt_gc_kind kind;
	const char *path;
	const char *run;		/* staging only, else NULL */
	int64_t step;			/* staging: -1 when unknown */
	int64_t age;			/* seconds since its last change */
	uint64_t size;			/* bytes of its files */
	bool remove;			/* to be (or was) removed */
	const char *reason;		/* why (or why not) */
	bool removed;
	const char *error;		/* removal failed, or NULL */
};

struct ckpt_gc_report;

CKPT_MUST_CHECK
CKPT_API int ckpt_store_gc(struct ckpt_store *s,
    const struct ckpt_gc_options *opts, struct ckpt_gc_report **out,
    struct ckpt_error *err);
CKPT_API void ckpt_gc_report_free(struct ckpt_gc_report *r);
CKPT_API size_t ckpt_gc_report_count(const struct ckpt_gc_report *r);
CKPT_API const struct ckpt_gc_item *ckpt_gc_report_item(
    const struct ckpt_gc_report *r, size_t i);
/** The threshold used, in seconds. */
CKPT_API int64_t ckpt_gc_report_older_than(const struct ckpt_gc_report *r);
CKPT_API size_t ckpt_gc_report_failed(const struct ckpt_gc_report *r);
/** A stale lock broken on the way (holder->pid 0 when none). */
CKPT_API const struct ckpt_lock_holder *ckpt_gc_report_broken_lock(
    const struct ckpt_gc_report *r);

/* ------------------------------------------------------------------ */
/* Verification and signatures                                         */
/* ------------------------------------------------------------------ */

/*
 * ckpt_verify() checks one checkpoint (a file, a directory, or a committed
 * store checkpoint) and reports every finding, never only the first:
 *  - against the manifest, when there is one: missing, extra and changed
 *    files (size, SHA-256 or chunk digests), which tensors of a changed file
 *    changed, the manifest's own digest and signature;
 *  - structure: every file through ckpt_file_open(CKPT_OPEN_CHECK_CRC);
 *  - safety: every pickle through the strict reader;
 *  - numerics (CKPT_VERIFY_NUMERICS): NaN, +Inf and -Inf per float tensor.
 * A finding of severity CKPT_SEV_WARNING or CKPT_SEV_ERROR fails the
 * checkpoint; CKPT_SEV_INFO findings are reported and do not.
 */
#define CKPT_VERIFY_FAST		(1u << 0)	/* sizes + digest
							 * cache */
#define CKPT_VERIFY_NUMERICS		(1u << 1)	/* NaN/Inf scan */
#define CKPT_VERIFY_REQUIRE_SIGNATURE	(1u << 2)	/* unsigned = finding */
#define CKPT_VERIFY_NO_CACHE		(1u << 3)	/* neither read nor
							   write the digest
							   cache */

struct ckpt_verify_options {
	unsigned int version;		/* CKPT_VERIFY_OPTIONS_VERSION */
	unsigned int flags;		/* CKPT_VERIFY_* */
	unsigned int threads;		/* hashing threads; 0 = online CPUs */
	const char *store;		/* store root (keys, cache) or NULL */
	const char *cache_dir;		/* digest cache directory; NULL = the
					   store's .ckpt/cache, else
					   $XDG_CACHE_HOME/ckpt or
					   ~/.cache/ckpt */
	const char *const *keys;	/* public key files to trust */
	size_t nkeys;
	/* "sha256:..." the manifest must have (from the registry), or NULL */
	const char *manifest_digest;
	/* An OpenSSF model signing bundle to check too, and the PEM ECDSA
	 * public key it must be signed with (OMS "key" method, "files"
	 * serialization, SHA-256); both or neither. */
	const char *oms_bundle;
	const char *oms_key;
	/* Called with bytes hashed (and, with CKPT_VERIFY_NUMERICS, bytes
	 * of float tensors scanned) so far and in all, from any thread,
	 * serialised. */
	ckpt_progress_fn progress;
	void *progress_data;
	/* Globals pickles may reference beyond torch.load(weights_only=
	 * True)'s allowlist (struct ckpt_open_options); the verify.
	 * allow_globals of the checkpoint's store's ckpt.yaml add to them. */
	const char *const *allow_globals;
	size_t nallow_globals;
};
#define CKPT_VERIFY_OPTIONS_VERSION 1
#define CKPT_VERIFY_OPTIONS_INIT { .version = CKPT_VERIFY_OPTIONS_VERSION }

enum ckpt_verify_status {
	CKPT_VERIFY_OK = 0,		/* "path: OK" */
	CKPT_VERIFY_FAILED,		/* "path: FAILED (reason)" */
	CKPT_VERIFY_MISSING,		/* in the manifest, not on disk */
	CKPT_VERIFY_EXTRA,		/* on disk, not in the manifest */
	CKPT_VERIFY_UNREADABLE		/* could not be read (I/O) */
};

/** "OK", "FAILED", "MISSING", "EXTRA", "UNREADABLE". */
CKPT_API const char *ckpt_verify_status_name(enum ckpt_verify_status s);

struct ckpt_verify_file {
	const char *path;		/* as given, or root-relative joined */
	const char *name;		/* relative to the checkpoint root */
	enum ckpt_verify_status status;
	const char *reason;		/* short, for "FAILED (reason)"; or
					 * NULL */
	enum ckpt_format format;
	uint64_t size;
	bool hashed;			/* digest computed (not from the
					 * cache) */
	bool has_digest;
	unsigned char sha256[CKPT_SHA256_BYTES];	/* when has_digest */
};

struct ckpt_report;

/**
 * Verifies the checkpoint at path.  Returns 0 when the checks ran (whatever
 * they found), or a negative status when nothing could be checked (the path
 * does not exist, out of memory).  Per-file I/O errors are findings.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_verify(const char *path,
    const struct ckpt_verify_options *opts, struct ckpt_report **out,
    struct ckpt_error *err);
CKPT_API void ckpt_report_free(struct ckpt_report *r);
CKPT_API const char *ckpt_report_path(const struct ckpt_report *r);
/** True when no finding of severity warning or above was made. */
CKPT_API bool ckpt_report_ok(const struct ckpt_report *r);
/** Path of the manifest checked, or NULL when there was none. */
CKPT_API const char *ckpt_report_manifest(const struct ckpt_report *r);
/* What the signature check of a verification found. */
enum ckpt_sig_state {
	CKPT_SIG_NONE = 0,		/* no signature (or none checked) */
	CKPT_SIG_VALID,			/* good signature by a trusted key */
	CKPT_SIG_INVALID,		/* bad or malformed signature */
	CKPT_SIG_UNKNOWN_KEY		/* signed by a key not trusted */
};
/** The stable name of a state: "none", "valid", "invalid", "unknown-key". */
CKPT_API const char *ckpt_sig_state_name(enum ckpt_sig_state s);
/** The signature state; *keyid (when keyid is not NULL) is the signer's
 * key id, or NULL. */
CKPT_API enum ckpt_sig_state ckpt_report_signature(
    const struct ckpt_report *r, const char **keyid);
/** Bytes hashed and bytes checked from the digest cache. */
CKPT_API uint64_t ckpt_report_bytes_hashed(const struct ckpt_report *r);
CKPT_API uint64_t ckpt_report_bytes_cached(const struct ckpt_report *r);
CKPT_API size_t ckpt_report_file_count(const struct ckpt_report *r);
CKPT_API const struct ckpt_verify_file *ckpt_report_file(
    const struct ckpt_report *r, size_t i);
CKPT_API size_t ckpt_report_finding_count(const struct ckpt_report *r);
CKPT_API const struct ckpt_finding *ckpt_report_finding(
    const struct ckpt_report *r, size_t i);
/** The first n findings are about the checkpoint as a whole (manifest,
 * signature); the rest about its files, in file order. */
CKPT_API size_t ckpt_report_checkpoint_finding_count(
    const struct ckpt_report *r);

/**
 * Deterministic slicing for rotating checks: true when the checkpoint
 * "run@step" belongs to slice k (1-based) of n.  The slice is the first 8
 * bytes of SHA-256("run@step"), big-endian, modulo n.
 */
CKPT_API bool ckpt_verify_in_subset(const char *run, int64_t step,
    unsigned int k, unsigned int n);

/*
 * Ed25519 signatures over manifests (libsodium); file formats in
 * ckpt-signature(5).  A key id is 8 bytes, written as 16 hex digits: the
 * first 8 bytes of SHA-256 of the raw 32-byte public key.  Passphrases are
 * byte strings (no terminating NUL needed); secret material lives only in
 * guarded, wiped memory.
 */
#define CKPT_KEYID_HEX 17

/**
 * Generates a key pair and writes pub_path (mode 0644) and sec_path (mode
 * 0600), both created exclusively: an existing file is never overwritten
 * (CKPT_ERR_EXISTS).  With a passphrase the secret key is encrypted with a
 * key derived by Argon2id.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_keygen(const char *pub_path, const char *sec_path,
    const char *passphrase, size_t passlen, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err);
/** Whether a secret key file is passphrase-protected. */
CKPT_MUST_CHECK
CKPT_API int ckpt_seckey_encrypted(const char *sec_path, bool *encrypted,
    struct ckpt_error *err);
/** Reads a public key file's key id. */
CKPT_MUST_CHECK
CKPT_API int ckpt_pubkey_id(const char *pub_path, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err);

/**
 * Signs the file at manifest_path and writes the detached signature to
 * sig_path (replaced atomically).  A wrong passphrase is CKPT_ERR_CRYPTO.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_sign_manifest(const char *sec_path, const char *passphrase,
    size_t passlen, const char *manifest_path, const char *sig_path,
    const char *trusted_comment, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err);

/**
 * Signs the manifest of the committed checkpoint at location (a checkpoint
 * of s, as ckpt_store_resolve gives its path) through the store's backend:
 * the manifest as the store holds it (an object of an s3:// store), the
 * signature put beside it as ckpt-manifest.json.sig, replacing one that is
 * there.  Call under the store lock (CKPT_ERR_INTERNAL otherwise), so that
 * no prune removes the manifest meanwhile.  CKPT_ERR_NOTFOUND: no manifest
 * (not committed); CKPT_ERR_INVALID: location is not in s; key errors as
 * ckpt_sign_manifest.  *sig_location (may be NULL): where the signature
 * is (caller frees).  Nothing is written on failure.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_store_sign_checkpoint(struct ckpt_store *s,
    const char *location, const char *sec_path, const char *passphrase,
    size_t passlen, const char *trusted_comment, char keyid[CKPT_KEYID_HEX],
    char **sig_location, struct ckpt_error *err);

/**
 * Checks sig_path against manifest_path with the first of the public key
 * files whose key id matches the signature's.  0: valid;
 * CKPT_ERR_NOTFOUND: no key with that id; CKPT_ERR_CRYPTO: the signature
 * does not match; CKPT_ERR_FORMAT: a malformed signature file.  keyid
 * (when not NULL) receives the signature's key id.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_signature_check(const char *manifest_path,
    const char *sig_path, const char *const *pubkeys, size_t npubkeys,
    char keyid[CKPT_KEYID_HEX], struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* The registry                                                        */
/* ------------------------------------------------------------------ */

/*
 * STORE/registry/ holds named models with numbered, immutable versions
 * and mutable aliases (ckpt-manifest(5), ckpt-promote(1)).  The truth is
 * one append-only history, STORE/registry/.history.jsonl: one JSON record
 * per line, each carrying the SHA-256 of the line before it ("prev"), so
 * that an edited, removed or reordered record breaks the chain.  Versions
 * and aliases are what replaying the history gives; the files
 * registry/MODEL/vN.json and registry/MODEL/aliases.json are copies of
 * that state for other readers (prune protection reads vN.json), written
 * by every registry command and checked by ckpt_registry_check_files().
 * A version's files live in registry/MODEL/vN/ (hard links to the
 * checkpoint's files where the filesystem allows, else copies).
 *
 * Every change happens under the store lock: the version directory is
 * renamed into place, vN.json written, and then the history rewritten
 * atomically with the new records (the commit point); aliases.json
 * follows.  A crash before the commit leaves files that the next
 * registry command moves to the trash; a crash after it leaves copies
 * that the next registry command rewrites (ckpt_registry_repair()).
 */
struct ckpt_registry;

/* How a registry version holds its checkpoint's files. */
enum ckpt_storage {
	CKPT_STORAGE_NONE = 0,		/* not recorded, or nothing placed */
	CKPT_STORAGE_LINK,		/* hard links to the checkpoint's */
	CKPT_STORAGE_COPY,		/* copies */
	CKPT_STORAGE_MIXED,		/* some of each */
	CKPT_STORAGE_UNKNOWN		/* recorded by a newer version */
};
/** "link", "copy", "mixed"; "unknown" for UNKNOWN and NULL for NONE. */
CKPT_API const char *ckpt_storage_name(enum ckpt_storage s);

/* What a record of the registry history did. */
enum ckpt_reg_action {
	CKPT_REG_PROMOTE = 0,
	CKPT_REG_ALIAS,			/* an alias set or moved */
	CKPT_REG_ALIAS_DELETE,
	CKPT_REG_ROLLBACK,
	CKPT_REG_PIN,			/* run events: pin, unpin, prune, */
	CKPT_REG_UNPIN,			/* save --force */
	CKPT_REG_PRUNE,
	CKPT_REG_SAVE_FORCE,
	/* not produced today: the history reader refuses a record whose
	 * action it does not know */
	CKPT_REG_UNKNOWN
};
/** "promote", "alias", "alias-delete", "rollback", "pin", "unpin",
 * "prune", "save-force"; "unknown" for UNKNOWN. */
CKPT_API const char *ckpt_reg_action_name(enum ckpt_reg_action a);

struct ckpt_reg_record {
	int64_t seq;			/* 1, 2, ... in file order */
	const char *digest;		/* "sha256:" of its line (no newline) */
	const char *prev;		/* the previous record's, NULL first */
	enum ckpt_reg_action action;
	const char *time;		/* ISO 8601 UTC */
	const char *user;
	const char *host;
	const char *model;
	const char *alias;		/* alias actions, else NULL */
	int64_t version;		/* promote: the new version, else 0 */
	int64_t from, to;		/* alias actions: versions, 0 = none */
	const char *run;		/* promote, else NULL */
	int64_t step;
	const char *manifest;		/* promote: "sha256:...", else NULL */
	const char *note;		/* NULL when none */
	const char *json;		/* the line as stored */
	int64_t offset;			/* byte offset of the line */
};

struct ckpt_reg_version {
	const char *model;
	int64_t version;
	const char *run;
	int64_t step;
	const char *manifest;		/* "sha256:..." recorded at promotion */
	const char *path;		/* absolute: STORE/registry/MODEL/vN */
	const char *created;		/* ISO 8601 UTC */
	const char *user;
	const char *host;
	const char *note;		/* NULL when none */
	enum ckpt_storage storage;
	const char *storage_raw;	/* as recorded (NULL: not recorded) */
	uint64_t size;			/* bytes of the manifest's files */
	uint64_t nfiles;
	const char *record;		/* digest of its promote record */
	const char *scope;		/* "full" or "weights-only" */
	/* weights-only: the manifest digest of the checkpoint the weights
	 * were converted from (manifest is the version's own); else NULL */
	const char *source_manifest;
	/* imported from another store's registry (ckpt import of a model
	 * version): that store's version number and the digest of its
	 * promote record, the last line of registry/MODEL/vN.lineage.jsonl
	 * (0 and NULL when promoted here) */
	int64_t imported_version;
	const char *imported_record;
};

struct ckpt_reg_alias {
	const char *model;
	const char *name;
	int64_t version;
	size_t nprevious;		/* what it named before, oldest first */
	const int64_t *previous;
	const char *record;		/* digest of the record that set it */
};

/* Flags for ckpt_registry_load() and ckpt_registry_parse(). */
#define CKPT_REGISTRY_LENIENT	(1u << 0)	/* problems are findings */

/**
 * Reads and replays the history of s.  A store without one has an empty
 * registry.  Without CKPT_REGISTRY_LENIENT any problem (a line that does
 * not parse, a broken chain, a record that does not replay) fails with
 * CKPT_ERR_FORMAT naming the file, the record and its byte offset: the
 * registry fails closed.  With it, problems become findings
 * (ckpt_registry_problem()) and the records that replay are kept.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_registry_load(struct ckpt_store *s, unsigned int flags,
    struct ckpt_registry **out, struct ckpt_error *err);
/** The same on a buffer (name is used in errors); versions' paths are
 * relative to the store.  For tests and the fuzzer. */
CKPT_MUST_CHECK
CKPT_API int ckpt_registry_parse(const char *text, size_t len,
    const char *name, unsigned int flags, struct ckpt_registry **out,
    struct ckpt_error *err);
CKPT_API void ckpt_registry_free(struct ckpt_registry *r);
/** Records in file order (oldest first). */
CKPT_API size_t ckpt_registry_record_count(const struct ckpt_registry *r);
CKPT_API const struct ckpt_reg_record *ckpt_registry_record(
    const struct ckpt_registry *r, size_t i);
/** Versions sorted by model name, then number. */
CKPT_API size_t ckpt_registry_version_count(const struct ckpt_registry *r);
CKPT_API const struct ckpt_reg_version *ckpt_registry_version(
    const struct ckpt_registry *r, size_t i);
CKPT_API const struct ckpt_reg_version *ckpt_registry_find_version(
    const struct ckpt_registry *r, const char *model, int64_t version);
/** Aliases sorted by model name, then alias name. */
CKPT_API size_t ckpt_registry_alias_count(const struct ckpt_registry *r);
CKPT_API const struct ckpt_reg_alias *ckpt_registry_alias(
    const struct ckpt_registry *r, size_t i);
CKPT_API const struct ckpt_reg_alias *ckpt_registry_find_alias(
    const struct ckpt_registry *r, const char *model, const char *name);
/** Findings of a lenient load and of ckpt_registry_check_files(). */
CKPT_API size_t ckpt_registry_problem_count(const struct ckpt_registry *r);
CKPT_API const struct ckpt_finding *ckpt_registry_problem(
    const struct ckpt_registry *r, size_t i);
/** Digest of the last record, NULL for an empty history. */
CKPT_API const char *ckpt_registry_head(const struct ckpt_registry *r);

/**
 * Compares the state files (vN.json, aliases.json) and version
 * directories of r's store with the replayed history and adds a finding
 * for each difference: registry-file-missing, registry-file-mismatch,
 * registry-version-missing (error) and registry-orphan (warning: the
 * leftovers of a promotion that never committed).
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_registry_check_files(struct ckpt_store *s,
    struct ckpt_registry *r, struct ckpt_error *err);

/**
 * Under the store lock: completes what a crash interrupted (rewrites state
 * files that differ from the history, moves uncommitted version
 * directories and staging leftovers of dead promotions to the trash).
 * *nrepaired (may be NULL) counts the changes.  CKPT_ERR_FORMAT when the
 * history itself does not verify (nothing is touched then).
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_registry_repair(struct ckpt_store *s, long lock_timeout_ms,
    size_t *nrepaired, struct ckpt_error *err);

enum ckpt_alias_op {
	CKPT_ALIAS_SET = 0,		/* point alias at version */
	CKPT_ALIAS_DELETE,		/* remove alias */
	CKPT_ALIAS_ROLLBACK		/* back to what it named before */
};

struct ckpt_alias_options {
	unsigned int version;		/* CKPT_ALIAS_OPTIONS_VERSION */
	enum ckpt_alias_op op;
	const char *model;
	const char *alias;
	int64_t model_version;		/* CKPT_ALIAS_SET: the version */
	const char *note;		/* may be NULL */
	long lock_timeout_ms;		/* as ckpt_store_lock() */
};
#define CKPT_ALIAS_OPTIONS_VERSION 1
#define CKPT_ALIAS_OPTIONS_INIT { .version = CKPT_ALIAS_OPTIONS_VERSION }

/* One alias move, as made (or found already made). */
struct ckpt_alias_move {
	const char *alias;
	int64_t from, to;		/* 0: none */
	bool changed;			/* false: it named "to" already (or
					 * was kept: aliases_if_absent) */
};

/**
 * Moves, deletes or rolls back an alias under the store lock, recording
 * it in the history.  Setting an alias to the version it names is a no-op
 * (move->changed false, nothing recorded).  CKPT_ERR_NOTFOUND for an
 * unknown model, version or alias, or an alias with nothing to roll back
 * to; CKPT_ERR_INVALID for bad names.  move's strings are borrowed from
 * opts.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_registry_alias_op(struct ckpt_store *s,
    const struct ckpt_alias_options *opts, struct ckpt_alias_move *move,
    struct ckpt_error *err);

/*
 * Promotion (ckpt-promote(1)): the checkpoint directory src (a committed
 * checkpoint with a manifest) becomes the next version of a model.  Its
 * files are hard-linked (copied with opts->copy, or where a link fails)
 * into a private staging directory under registry/.staging/, and that
 * copy -- the bytes the version will hold -- is verified in full with
 * opts->verify (the store's allowlist and keys apply as in "ckpt verify";
 * its manifest must be the one read at the start).  Gates "METRIC<X",
 * "<=", ">", ">=" are checked against the manifest's metrics (a metric
 * with no value fails its gate).  Then, under the store lock, the version
 * is committed and each alias moved.  A manifest that some version of
 * the model holds already is not promoted again: the aliases are moved to
 * that version (result->created false).
 */
struct ckpt_promote_options {
	unsigned int version;		/* CKPT_PROMOTE_OPTIONS_VERSION */
	const char *model;
	const char *const *aliases;
	size_t naliases;
	const char *note;		/* may be NULL */
	bool copy;			/* self-contained: copy, never link */
	const char *const *gates;	/* "val_loss<2.5", ... */
	size_t ngates;
	const struct ckpt_verify_options *verify;	/* may be NULL */
	long lock_timeout_ms;		/* as ckpt_store_lock() */
	/* Sign the promotion with this secret key (ckpt_sign_manifest()):
	 * registry/MODEL/vN.record holds the promote record's line and
	 * vN.record.sig its signature.  NULL: unsigned. */
	const char *sign_key;
	const char *passphrase;		/* of sign_key, or NULL */
	size_t passlen;
	/*
	 * The version holds the model weights alone, as one safetensors
	 * file (model.safetensors, written by ckpt_convert() from the
	 * verified checkpoint without executing any pickle) and a manifest
	 * of its own (scope "weights-only", "source": the checkpoint's run,
	 * step and manifest digest).  Not with copy.
	 */
	bool weights_only;
	/*
	 * Importing a version of another store (ckpt-import(1)): that
	 * store's history up to and including the promote record of the
	 * version (lineage_len bytes of JSON lines), which must verify as a
	 * chain and promote this checkpoint's manifest.  It is kept as
	 * registry/MODEL/vN.lineage.jsonl and the new promote record names
	 * it ("imported": model, version, record).  NULL: promoted here.
	 * With weights_only too, src is a weights-only version as
	 * ckpt_import() staged it (its own manifest, model.safetensors):
	 * verified as it is and recreated, not converted again; the
	 * lineage must promote that manifest.
	 */
	const char *lineage;
	size_t lineage_len;
	/*
	 * Version 2: set aliases only where the model has none of that
	 * name; an alias that exists stays where it is (never moved
	 * silently) and is reported as a move with changed false and "to"
	 * its version (ckpt-import(1) offering the exporting store's
	 * aliases).
	 */
	bool aliases_if_absent;
};
#define CKPT_PROMOTE_OPTIONS_VERSION 2
#define CKPT_PROMOTE_OPTIONS_INIT { .version = CKPT_PROMOTE_OPTIONS_VERSION }

struct ckpt_gate_result {
	const char *expr;		/* as given */
	const char *metric;
	double value;			/* NaN: no value */
	bool ok;
};

struct ckpt_promote_result {
	const char *model;
	int64_t version;		/* 0 when refused */
	bool created;			/* false: already a version */
	const char *run;
	int64_t step;
	const char *manifest;		/* "sha256:..." */
	const char *path;		/* the version's directory */
	enum ckpt_storage storage;	/* NONE when refused */
	uint64_t linked, copied;	/* files */
	uint64_t size;
	size_t nmoves;
	const struct ckpt_alias_move *moves;
	size_t ngates;
	const struct ckpt_gate_result *gates;
	bool verified;			/* the verification passed */
	const struct ckpt_report *report;	/* NULL when not verified */
	const char *refused;		/* why it was refused, or NULL */
	const char *signer;		/* key id when signed, else NULL */
	const char *scope;		/* "full" or "weights-only" */
	/* weights-only: the version's own manifest ("sha256:..."; manifest
	 * is the checkpoint's), and its safetensors file's tensor count */
	const char *version_manifest;
	uint64_t tensors;
};

/**
 * Promotes src (see above).  Returns 0 with *out on success;
 * CKPT_ERR_REFUSED with *out (refused, report and gates say why) when the
 * checkpoint does not verify or a gate fails: nothing was changed;
 * CKPT_ERR_INVALID for bad options or a malformed gate; CKPT_ERR_FORMAT
 * when src has no readable manifest or the history does not verify;
 * CKPT_ERR_LOCKED, CKPT_ERR_IO... as usual.  Free *out with
 * ckpt_promote_result_free().
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_promote(struct ckpt_store *s, const char *src,
    const struct ckpt_promote_options *opts,
    struct ckpt_promote_result **out, struct ckpt_error *err);
CKPT_API void ckpt_promote_result_free(struct ckpt_promote_result *r);

/**
 * Checks the signed promotions of r's store: for each version with a
 * vN.record.sig, that vN.record is its promote record and the signature
 * is valid by a key of vo (vo->keys and the store's .ckpt/keys/ *.pub).
 * Adds a finding to r for each problem (promotion-record-mismatch,
 * promotion-signature-invalid, promotion-signature-unknown-key, and with
 * require promotion-unsigned); *nsigned counts the valid ones.
 */
CKPT_MUST_CHECK
CKPT_API int ckpt_registry_check_signatures(struct ckpt_store *s,
    struct ckpt_registry *r, const struct ckpt_verify_options *vo,
    bool require, size_t *nsigned, struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Comparing two checkpoints                                           */
/* ------------------------------------------------------------------ */

/*
 * ckpt_diff() compares two checkpoints (files or directories, any format
 * ckpt_checkpoint_open() reads) tensor by tensor:
 *  - structure: tensors only in A, only in B, common ones whose dtype or
 *    shape changed.  Names match exactly after maps ("PREFIX_A=PREFIX_B":
 *    a name of A starting with PREFIX_A is looked up in B with PREFIX_B
 *    instead; the first map that applies wins); filters (fnmatch globs)
 *    select names of A, and of B for tensors only in B;
 *  - values of common tensors with the same shape and number of values
 *    per element, each side decoded exactly to float64 from its own dtype
 *    (ckpt_tensor_compare_many, on every core, in bounded memory).  A
 *    DCP tensor is read as the whole its chunks make up (chunks checked
 *    first: a bad one makes it an error entry naming file and byte).  A
 *    sparse tensor of a torch pickle is one entry (its parts NAME.0, ...
 *    hidden): same layout and size, index parts equal element for
 *    element, and the statistics of its stored values; otherwise a note
 *    says the pattern or layout differs.  Meta tensors have no data: two
 *    with the same dtype and shape are identical (no_data);
 *  - unless CKPT_DIFF_NO_DIGESTS, when both sides are committed store
 *    checkpoints, their manifests stand in for the data: equal
 *    "content_sha256" digests of a tensor (manifest schema 2: SHA-256 of
 *    its elements, row-major, little-endian) mean identical values with
 *    no data read.  Schema-1 manifests only have the digest of a tensor's
 *    byte range, which is equal-content evidence only when both tensors
 *    have the same dtype and shape and are stored contiguous and
 *    little-endian, the range holding exactly their elements: only then
 *    is it used.  The digests are trusted as recorded (ckpt verify checks
 *    them against the data);
 *  - metadata: a structural diff, by path, of the manifests' run, step,
 *    epoch, metrics, config, git, data, env, tags and note (both sides in
 *    a store), of the non-tensor values of the torch pickles (tensors
 *    left out), and of the safetensors __metadata__.
 * It fails (CKPT_ERR_FORMAT, CKPT_ERR_IO, ...) when a side or one of its
 * files cannot be read; a tensor whose data cannot be read is reported in
 * its entry (error) and the diff completes.
 */
#define CKPT_DIFF_NO_DIGESTS	(1u << 0)	/* always read the data */

struct ckpt_diff_options {
	unsigned int version;		/* CKPT_DIFF_OPTIONS_VERSION */
	unsigned int flags;		/* CKPT_DIFF_* */
	const char *const *maps;	/* "PREFIX_A=PREFIX_B" */
	size_t nmaps;
	const char *const *filters;	/* fnmatch(3) globs */
	size_t nfilters;
	struct ckpt_compare_options cmp;
	unsigned int threads;		/* 0: one per online CPU */
	ckpt_progress_fn progress;
	void *progress_data;
};
#define CKPT_DIFF_OPTIONS_VERSION 1
#define CKPT_DIFF_OPTIONS_INIT { .version = CKPT_DIFF_OPTIONS_VERSION, \
	.cmp = CKPT_COMPARE_OPTIONS_INIT }

enum ckpt_diff_where {
	CKPT_DIFF_COMMON = 0,
	CKPT_DIFF_ONLY_A,
	CKPT_DIFF_ONLY_B
};

struct ckpt_diff_tensor {
	const char *name;		/* A's name; B's for ONLY_B */
	const char *name_b;		/* B's name (after maps); NULL if
					 * none */
	enum ckpt_diff_where where;
	enum ckpt_dtype dtype_a, dtype_b;
	unsigned int ndim_a, ndim_b;
	const uint64_t *shape_a, *shape_b;
	bool dtype_changed, shape_changed;
	bool compared;			/* values known: by digest or by data */
	bool by_digest;			/* identical because digests are
					 * equal */
	bool identical;			/* every value equal (st.unequal ==
					 * 0) */
	struct ckpt_compare_stats st;	/* when compared && !by_digest */
	const char *note;		/* why not compared, or NULL */
	const char *error;		/* a read error, or NULL */
	/* NULL for a dense tensor; "sparse_coo", "sparse_csr", ... (torch's
	 * layout) for a sparse one, compared by its stored indices and
	 * values; "meta" for a tensor without data (device meta). */
	const char *layout_a, *layout_b;
	bool no_data;			/* meta on both sides: identical means
					 * the same dtype and shape */
};

/* One metadata difference: a value only in A (b NULL), only in B (a
 * NULL), or changed; values as compact JSON text. */
struct ckpt_diff_meta {
	const char *section;		/* "manifest", "pickle",
					 * "safetensors" */
	const char *path;		/* "config.content.optimizer.lr" */
	const char *a, *b;
};

struct ckpt_diff {
	const char *kind_a, *kind_b;	/* ckpt_checkpoint_kind() */
	size_t ntensors_a, ntensors_b;	/* after filters */
	size_t ntensors;		/* entries, sorted by name */
	const struct ckpt_diff_tensor *tensors;
	size_t nmeta;
	const struct ckpt_diff_meta *meta;
	/* When no name matched and a known prefix (module., model.,
	 * _orig_mod., state_dict.) would match some: "PREFIX_A=PREFIX_B". */
	const char *suggested_map;
	uint64_t bytes_read;		/* tensor data bytes compared */
};

CKPT_MUST_CHECK
CKPT_API int ckpt_diff(const char *a, const char *b,
    const struct ckpt_diff_options *o, struct ckpt_diff **out,
    struct ckpt_error *err);
CKPT_API void ckpt_diff_free(struct ckpt_diff *d);

#ifdef __cplusplus
}
#endif

#endif /* CKPT_H */
