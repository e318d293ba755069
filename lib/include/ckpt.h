/* SPDX-License-Identifier: MIT */
/*
 * ckpt.h - the one public header of libckpt.
 *
 * libckpt reads machine-learning checkpoints (safetensors, PyTorch zip and
 * pickle, Hugging Face directories, distributed checkpoints) without Python
 * and without executing pickle code, and manages a store of committed
 * checkpoints.
 *
 * Conventions (see README, "Library"):
 *  - Every fallible call returns 0 (CKPT_OK) or a negative enum ckpt_status
 *    and fills the caller-owned struct ckpt_error when one is given (it may
 *    be NULL).  The library never prints and never exits.
 *  - Handles are created by ckpt_<obj>_open/_new(..., &out, err); *out is
 *    written only on success.  ckpt_<obj>_free() accepts NULL.
 *  - A "const T *" result is borrowed from the handle it came from and stays
 *    valid until that handle is freed.  A returned "char *" is the caller's
 *    and is freed with free(3).
 *  - Nothing here exposes a dependency's types.
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

/** Returns the library version as "MAJOR.MINOR.PATCH"; static storage. */
CKPT_API const char *ckpt_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

enum ckpt_status {
	CKPT_OK = 0,
	CKPT_ERR_IO = -1,		/* a system call failed; see sys_errno */
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
CKPT_API int ckpt_hash_new(enum ckpt_hash_algo algo, struct ckpt_hash **out,
    struct ckpt_error *err);
CKPT_API void ckpt_hash_update(struct ckpt_hash *h, const void *data,
    size_t len);
/** Writes the digest to out (ckpt_hash_size() bytes); the handle may then
 * only be freed. */
CKPT_API int ckpt_hash_final(struct ckpt_hash *h, unsigned char *out,
    struct ckpt_error *err);
CKPT_API void ckpt_hash_free(struct ckpt_hash *h);
/** Digest size in bytes of an algorithm. */
CKPT_API size_t ckpt_hash_size(enum ckpt_hash_algo algo);
/** "sha256" or "blake2b". */
CKPT_API const char *ckpt_hash_name(enum ckpt_hash_algo algo);
/** One-shot hash of a buffer. */
CKPT_API int ckpt_hash_buffer(enum ckpt_hash_algo algo, const void *data,
    size_t len, unsigned char *out, struct ckpt_error *err);
/** Writes the lower-case hex of a digest and a NUL; hex holds 2*len+1. */
CKPT_API void ckpt_hex(const unsigned char *digest, size_t len, char *hex);
/** Which implementation computes SHA-256: "openssl" or "libsodium". */
CKPT_API const char *ckpt_hash_backend(void);

/* ------------------------------------------------------------------ */
/* Formats, dtypes, tensors (readers: issue #3)                        */
/* ------------------------------------------------------------------ */

enum ckpt_format {
	CKPT_FORMAT_UNKNOWN = 0,	/* unrecognised; see the reason */
	CKPT_FORMAT_SAFETENSORS,
	CKPT_FORMAT_TORCH_ZIP,		/* torch.save >= 1.6, Lightning .ckpt */
	CKPT_FORMAT_TORCHSCRIPT,	/* torch.jit.save archive */
	CKPT_FORMAT_TORCH_LEGACY,	/* pre-1.6 pickle stream */
	CKPT_FORMAT_TORCH_TAR,		/* oldest tar-based torch.save */
	CKPT_FORMAT_PICKLE,		/* a bare pickle stream */
	CKPT_FORMAT_DCP_METADATA,	/* torch.distributed.checkpoint .metadata */
	CKPT_FORMAT_DCP_SHARD,		/* *.distcp */
	CKPT_FORMAT_HF_INDEX,		/* *.safetensors.index.json, *.bin.index.json */
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
	const int64_t *strides;		/* elements; NULL when row-major contiguous */
	uint64_t numel;
	uint64_t nbytes;		/* numel * bits / 8 */
	uint64_t offset;		/* absolute file offset of the first byte */
	uint64_t span;
	const char *storage;		/* torch storage key shared by views; else NULL */
	uint64_t storage_offset;	/* elements, torch only */
	bool big_endian;
	bool contiguous;
	const char *kind;		/* NULL, or "quantized", "sparse", "meta", ... */
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
	const char *path;		/* file the finding is about, may be NULL */
	const char *subject;		/* tensor, zip member, global; may be NULL */
	const char *message;
	int64_t offset;			/* byte offset or -1 */
};

/* Flags for ckpt_file_open() and ckpt_checkpoint_open(). */
#define CKPT_OPEN_CHECK_CRC	(1u << 0)	/* check CRC32 of every zip member */
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
CKPT_API int ckpt_file_open(const char *path, unsigned int flags,
    struct ckpt_file **out, struct ckpt_error *err);
CKPT_API void ckpt_file_free(struct ckpt_file *f);

CKPT_API const char *ckpt_file_path(const struct ckpt_file *f);
CKPT_API enum ckpt_format ckpt_file_format(const struct ckpt_file *f);
CKPT_API uint64_t ckpt_file_size(const struct ckpt_file *f);
CKPT_API size_t ckpt_file_tensor_count(const struct ckpt_file *f);
CKPT_API const struct ckpt_tensor *ckpt_file_tensor(const struct ckpt_file *f,
    size_t i);
/**
 * The file's non-tensor content as a JSON document (borrowed), or NULL: a
 * safetensors __metadata__ object, the object tree of a torch pickle (a
 * tensor appears as {"$tensor": NAME}, a global the reader does not allow as
 * {"$global": "module.name"}), the content of a JSON file.
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
CKPT_API int ckpt_file_pread(const struct ckpt_file *f, void *buf, size_t len,
    uint64_t offset, struct ckpt_error *err);

/*
 * A checkpoint: a file, or a directory of files read as one (a Hugging Face
 * checkpoint directory, a sharded model with *.index.json, a DCP directory,
 * a committed store checkpoint).  Files are listed in byte order of their
 * paths relative to the root.
 */
struct ckpt_checkpoint;

CKPT_API int ckpt_checkpoint_open(const char *path, unsigned int flags,
    struct ckpt_checkpoint **out, struct ckpt_error *err);
CKPT_API void ckpt_checkpoint_free(struct ckpt_checkpoint *c);
CKPT_API const char *ckpt_checkpoint_path(const struct ckpt_checkpoint *c);
/** True when the checkpoint was opened from a directory. */
CKPT_API bool ckpt_checkpoint_is_directory(const struct ckpt_checkpoint *c);
/** "safetensors", "torch-zip", "hf-checkpoint", "hf-sharded", "dcp", ... */
CKPT_API const char *ckpt_checkpoint_kind(const struct ckpt_checkpoint *c);
CKPT_API size_t ckpt_checkpoint_file_count(const struct ckpt_checkpoint *c);
/** Relative path of file i ("" ... for a single-file checkpoint: its name). */
CKPT_API const char *ckpt_checkpoint_file_name(
    const struct ckpt_checkpoint *c, size_t i);
/** The open file i, or NULL when it could not be parsed (see its error). */
CKPT_API const struct ckpt_file *ckpt_checkpoint_file(
    const struct ckpt_checkpoint *c, size_t i);
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
CKPT_API int ckpt_tensor_read(const struct ckpt_file *f,
    const struct ckpt_tensor *t, uint64_t first, uint64_t nelem, void *buf,
    struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Tensor statistics and element decoding (issue #3)                   */
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
CKPT_API int ckpt_tensor_stats_range(const struct ckpt_file *f,
    const struct ckpt_tensor *t, uint64_t first, uint64_t nelem,
    struct ckpt_tensor_stats *st, struct ckpt_error *err);
/** Statistics of the whole tensor into *st (initialised first). */
CKPT_API int ckpt_tensor_stats(const struct ckpt_file *f,
    const struct ckpt_tensor *t, struct ckpt_tensor_stats *st,
    struct ckpt_error *err);

/* ------------------------------------------------------------------ */
/* Store, manifest, references (issue #4)                              */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Retention policy (issue #6)                                         */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Verification and signatures (issue #5)                              */
/* ------------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* CKPT_H */
