/* SPDX-License-Identifier: MIT */
/*
 * pickle.h - a restricted pickle reader (internal to libckpt).
 *
 * It interprets opcodes on its own value model and never calls anything:
 * GLOBAL yields a name, REDUCE/NEWOBJ/BUILD yield symbolic nodes, and only
 * the callables of torch.load(weights_only=True)'s allowlist (plus NumPy's
 * array/scalar/dtype reconstructors, and the DCP dataclasses when asked)
 * are interpreted, as data.  Anything else is recorded on the ckpt_file
 * (ckpt_file_add_global(..., false) and a finding naming the global or
 * opcode and its byte offset) and becomes an opaque node.
 *
 * Findings (ids):
 *   unsafe-global      a global outside the allowlist (GLOBAL, STACK_GLOBAL,
 *                      INST): never resolved
 *   unsafe-call        REDUCE/NEWOBJ/OBJ/INST on such a callable
 *   unsafe-opcode      INST, OBJ, NEWOBJ_EX, EXT1/2/4, PERSID, buffers
 *   pickle-compat-opcode  a pure-data opcode torch's weights_only reader
 *                      does not implement (protocol 0/1 text forms, 3-5)
 *   pickle-malformed   the stream cannot be interpreted (truncated, bad
 *                      stack, BUILD/SETITEM on the wrong type...); the
 *                      globals seen before the error are still reported
 *   pickle-limit       a resource limit (opcodes, stack, memo, memory)
 *   pickle-nested      a bytes value that is itself a pickle
 */
#ifndef CKPT_PICKLE_H
#define CKPT_PICKLE_H

#include "format/file.h"

enum pk_kind {
	PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_COMPLEX,
	PK_STR, PK_BYTES, PK_LIST, PK_TUPLE, PK_DICT, PK_SET,
	PK_GLOBAL,	/* a name (allowed or not) */
	PK_OBJECT,	/* an instance: cls, args, items, state */
	PK_STORAGE,	/* a torch storage from a persistent id */
	PK_TENSOR,	/* a rebuilt torch tensor */
	PK_NDARRAY,	/* numpy.ndarray (data, not executed) */
	PK_NPDTYPE,	/* numpy.dtype */
	PK_NPSCALAR,	/* numpy scalar */
	PK_DTYPE	/* torch dtype (torch.float32, ...) */
};

struct pk_node;

/* One per storage of a state dict (and pk_tensor one per tensor): the
 * fields are ordered so that they pack without holes. */
struct pk_storage {
	char *key;
	uint64_t numel;		/* as pickled */
	int64_t pos;		/* offset of BINPERSID */
	/* filled by the container reader */
	uint64_t data_offset;	/* absolute */
	uint64_t nbytes;	/* record size */
	enum ckpt_dtype dtype;
	bool untyped;		/* torch.storage.UntypedStorage: numel =
				 * bytes */
	bool sized;		/* nbytes known (the record exists) */
	bool resolved;		/* data_offset valid: readable by offset */
	bool big_endian;
};

struct pk_tensor {
	struct pk_storage *storage;	/* NULL for meta tensors */
	uint64_t offset;		/* storage offset, elements */
	uint64_t *shape;
	int64_t *stride;
	const char *kind;		/* NULL, "parameter", "quantized",
					 * ... */
	struct pk_node *parts;		/* sparse: tuple of component tensors */
	char *layout;			/* sparse layout name */
	enum ckpt_dtype dtype;
	unsigned int ndim;
	bool requires_grad;
};

struct pk_ndarray {
	char dtype[32];			/* numpy dtype string, e.g. "<u4" */
	unsigned int ndim;
	uint64_t shape[CKPT_MAX_DIMS];
	uint64_t nbytes;
	int64_t data_pos;		/* offset of the bytes in the pickle */
	bool object;			/* dtype 'O': data is a list */
};

struct pk_node {
	enum pk_kind kind;
	bool allowed;		/* GLOBAL/OBJECT: class on the allowlist */
	bool user;		/* GLOBAL: allowed by the caller's list only */
	bool ordered;		/* DICT: an OrderedDict */
	unsigned char mark;	/* walkers: on the current path */
	unsigned char seen;	/* walkers: expanded once already */
	unsigned char xinfo;	/* walkers: PK_X_* about the subtree */
	unsigned char pinned;	/* reader: may be referenced from more than
				 * the stack slot or container that took it
				 * (memo, DUP, an interpreted call returning
				 * an argument): never released early */
	bool owned;		/* reader: s is a copy of its own in the
				 * slabs (a windowed stream), given back
				 * with the node */
	uint32_t xsize;		/* walkers: nodes a full expansion visits,
				 * saturated at PK_XSIZE_MAX */
	int64_t pos;		/* offset in the pickle of the creating
				 * opcode */
	/* a node of a state dict's tree of 40,000 tensors is one of
	 * 100,000: the payloads no kind shares overlap */
	union {
		int64_t i;	/* BOOL, INT (BIGINT, GLOBAL, DTYPE...) */
		double d;	/* FLOAT, COMPLEX */
	};
	const char *s;		/* STR/BYTES/BIGINT(LE bytes)/GLOBAL name */
	size_t len;
	struct pk_node **items;	/* LIST/TUPLE/SET items, DICT values */
	struct pk_node **keys;	/* DICT keys */
	size_t n, cap;
	struct pk_node *cls;	/* OBJECT, NPSCALAR: class or dtype */
	struct pk_node *args;	/* OBJECT: arguments (a tuple) */
	struct pk_node *state;	/* OBJECT, DICT, TENSOR: BUILD state */
	struct pk_node *extra;	/* OBJECT: SETITEMS/APPENDS into it */
	union {
		struct pk_storage *storage;
		struct pk_tensor *tensor;
		struct pk_ndarray *nd;
		double d2;	/* COMPLEX: the imaginary part */
	} u;
};

#define PK_X_DONE	(1u << 0)	/* xsize and PK_X_TENSOR are known */
#define PK_X_TENSOR	(1u << 1)	/* a tensor somewhere below */
#define PK_X_BUSY	(1u << 2)	/* being computed (a cycle) */
#define PK_XSIZE_MAX	UINT32_MAX

#define PK_ALLOW_DCP	(1u << 0)	/* the DCP metadata dataclasses */
#define PK_QUIET_COMPAT	(1u << 1)	/* protocol 3-5 opcodes expected */
#define PK_LEGACY	(1u << 2)	/* 6-tuple persistent ids */
#define PK_TORCHSCRIPT	(1u << 3)	/* __torch__.* classes are the
					 * archive's */

struct pk_limits {
	uint64_t max_ops;
	size_t max_stack;
	size_t max_marks;
	size_t max_memo;
	uint64_t max_alloc;		/* bytes of nodes and arrays */
	unsigned int max_depth;		/* walks: nesting depth */
	uint64_t max_walk;		/* walks: nodes visited */
	uint64_t max_shared;		/* walks: re-expansions of shared
					 * containers (memo fan-out bombs) */
};

extern const struct pk_limits ckpt_pk_default_limits;

struct pk_opts {
	unsigned int flags;		/* PK_* */
	const char *what;		/* "data.pkl", for messages */
	int64_t base;			/* absolute offset of byte 0, or -1 */
	const struct pk_limits *limits;	/* NULL: the defaults */
	/*
	 * Optional: the container reader's table entry for a tensor stored
	 * under a str key of the root dict, made while the pickle runs (a
	 * state dict of 40,000 tensors then keeps no node tree).  name is
	 * name[0, len), not NUL-terminated.  It sets *kept to the name it
	 * stored (alive as long as the file), or leaves it NULL to decline
	 * (the tensor would need a finding): the reader then keeps the
	 * tree.  See ckpt_pickle.direct_ok.
	 */
	int (*take)(void *ctx, const char *name, size_t len,
	    struct pk_node *t, const char **kept, struct ckpt_error *err);
	void *take_ctx;
	/*
	 * Optional: the stream's bytes [off, off + n) into dst, read
	 * through a window of a few hundred KiB instead of buf (which is
	 * then NULL; len is the stream's length).  Strings are copied out
	 * of the window.  Not with truncated (incremental reading).
	 */
	int (*read)(void *ctx, void *dst, size_t n, uint64_t off,
	    struct ckpt_error *err);
	void *read_ctx;
};

/* ints in this range are one shared node each */
#define PK_INTERN_MIN	(-8)
#define PK_INTERN_MAX	1023

/* released blocks of up to (PK_SPARE_CLASSES - 1) * 8 bytes are reused */
#define PK_SPARE_CLASSES	33

struct ckpt_pickle {
	struct pk_node *root;		/* NULL when the stream was malformed */
	size_t consumed;		/* bytes up to and including STOP */
	int proto;
	/* internals */
	struct pk_slab *slabs;		/* every node, string and array */
	uint64_t allocated;
	struct pk_node *none, *bools[2];	/* shared leaves (pk_leaf) */
	void *spare[PK_SPARE_CLASSES];	/* released blocks by size / 8 */
	struct pk_node *ints[PK_INTERN_MAX - PK_INTERN_MIN + 1];
	const struct pk_limits *lim;
	/* storages by key, in first-seen order (each PK_STORAGE node
	 * points at one; a rebuilt tensor's node is given back) */
	struct pk_storage **storages;
	size_t nstorages;
	size_t ntensors;		/* tensor nodes made: the walk's
					 * table will hold about as many */
	/* The names o->take kept, in dict order.  direct_ok: the pickle
	 * was a dict of those tensors alone, so the walk writes its JSON
	 * from them and adds nothing.  With ndirect > 0 and !direct_ok the
	 * tree lacks the tensors taken: the caller drops what it added and
	 * parses again without o->take. */
	const char **direct;
	size_t ndirect;
	bool direct_ok;
};

/*
 * Interprets one pickle in buf[0, len), which must stay alive as long as
 * the result (strings and bytes point into it), or read by o->read.  Returns CKPT_OK with
 * p->root set, or an error: CKPT_ERR_FORMAT for a malformed stream,
 * CKPT_ERR_LIMIT for a bomb (with a finding recorded on f either way, so a
 * file can still open and report it).  With truncated set, a stream that
 * merely ended early returns CKPT_ERR_FORMAT and sets *truncated (callers
 * reading incrementally then read more).  *out is set on success and on
 * format errors (holding what was parsed) and freed by ckpt_pickle_free.
 */
int ckpt_pickle_parse(struct ckpt_file *f, const unsigned char *buf,
    size_t len, const struct pk_opts *o, struct ckpt_pickle **out,
    bool *truncated, struct ckpt_error *err);
void ckpt_pickle_free(struct ckpt_pickle *p);
/* Frees the nodes, strings and storage records of a direct_ok result:
 * its walk needs only p->direct. */
void ckpt_pickle_drop_tree(struct ckpt_pickle *p);

/* Whether "module.name" is on the default allowlist (flags: PK_ALLOW_*). */
bool ckpt_pickle_allowed(const char *name, unsigned int flags);
/* Whether "module.name" is a known code-execution callable (denylist). */
bool ckpt_pickle_denylisted(const char *name);
/* Whether a caller's allow pattern ("module.name" or "module.*") admits
 * name; a denylisted name is never admitted. */
bool ckpt_pickle_pattern_admits(const char *pattern, const char *name);

/*
 * Walks the tree from p->root: names tensors by the dot-joined path of dict
 * keys and list/tuple indices, calls add(ctx, name, tensor node) for each,
 * and builds the JSON tree described at ckpt_file_metadata_json().
 * json may be NULL.  Returns CKPT_OK or an error (out of memory).
 */
int ckpt_pickle_walk(struct ckpt_file *f, struct ckpt_pickle *p,
    const struct pk_opts *o,
    int (*add)(void *ctx, const char *name, struct pk_node *t,
    struct ckpt_error *err), void *ctx, char **json, struct ckpt_error *err);

/* Helpers for the container readers. */
const char *ckpt_pk_dict_str(const struct pk_node *d, const char *key,
    struct pk_node **val);
struct pk_node *ckpt_pk_dict_get(const struct pk_node *d, const char *key);
bool ckpt_pk_is_str(const struct pk_node *n, const char *s);
/* The dict of an OBJECT's state (BUILD dict, or first of (dict, slots)). */
struct pk_node *ckpt_pk_object_state(const struct pk_node *o);

#endif /* CKPT_PICKLE_H */
