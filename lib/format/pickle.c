/* SPDX-License-Identifier: MIT */
/*
 * pickle.c - the restricted pickle reader (see pickle.h).
 *
 * The interpreter is CPython's pickle machine with every side effect
 * replaced by a node: a value stack, a mark stack and a memo (a hash map,
 * so that LONG_BINPUT 0xffffffff costs one slot), nodes shared by
 * reference so that a memo fan-out costs nothing until a walk, which
 * shows a large tensor-free shared container once and a reference to it
 * after that (the walk is bounded too).  The allowlist is
 * torch.load(weights_only=True)'s, after CPython's py2 name mapping; a global
 * outside it is a name, nothing more. Every length is checked against the bytes
 * that remain before anything is allocated, and every resource has a limit
 * (ckpt_pk_default_limits).
 */
#include "util/internal.h"

#include <locale.h>
#include <math.h>

#include "format/pickle.h"

#ifdef CKPT_ASAN
#include <sanitizer/asan_interface.h>
#endif

const struct pk_limits ckpt_pk_default_limits = {
	.max_ops = 50000000,
	.max_stack = 100000,
	.max_marks = 10000,
	.max_memo = 4000000,
	.max_alloc = (uint64_t)1 << 30,
	.max_depth = 200,
	.max_walk = 20000000,
	.max_shared = 10000,
};

#include "format/pickle-compat.inc"

/* ------------------------------------------------------------------ */
/* Allowlist                                                           */
/* ------------------------------------------------------------------ */

/* torch.load(weights_only=True)'s default allowlist (formats.md §2.6). */
static const char *const allow_exact[] = {
	"collections.OrderedDict", "collections.Counter",
	"torch.nn.parameter.Parameter", "torch.serialization._get_layout",
	"torch.Size", "torch.Tensor", "torch.device", "_codecs.encode",
	"builtins.bytearray", "builtins.set", "builtins.complex",
	"torch.storage.TypedStorage", "torch.storage.UntypedStorage",
	"torch.per_tensor_affine", "torch.per_tensor_symmetric",
	"torch.per_channel_affine", "torch.per_channel_symmetric",
	"torch.per_channel_affine_float_qparams",
	"torch._utils._rebuild_parameter",
	"torch._utils._rebuild_parameter_with_state",
	"torch._utils._rebuild_qtensor", "torch._utils._rebuild_tensor",
	"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
	"torch._utils._rebuild_sparse_tensor",
	"torch._utils._rebuild_meta_tensor_no_storage",
	"torch._utils._rebuild_nested_tensor",
	"torch._utils._rebuild_wrapper_subclass",
	"torch._utils._rebuild_device_tensor_from_numpy",
	"torch._utils._rebuild_xla_tensor",
	"torch._utils._rebuild_device_tensor_from_cpu_tensor",
	"torch._tensor._rebuild_from_type_v2",
	/* NumPy values (Hugging Face rng_state.pth): interpreted as data. */
	"numpy.core.multiarray._reconstruct",
	"numpy._core.multiarray._reconstruct",
	"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
	"numpy.ndarray", "numpy.dtype",
};

/* The DCP .metadata dataclasses (2.x module names and 1.13's). */
static const char *const allow_dcp[] = {
	"torch.distributed.checkpoint.metadata.Metadata",
	"torch.distributed.checkpoint.metadata.TensorStorageMetadata",
	"torch.distributed.checkpoint.metadata.BytesStorageMetadata",
	"torch.distributed.checkpoint.metadata.ChunkStorageMetadata",
	"torch.distributed.checkpoint.metadata.TensorProperties",
	"torch.distributed.checkpoint.metadata.MetadataIndex",
	"torch.distributed.checkpoint.metadata.StorageMeta",
	"torch.distributed.checkpoint.metadata._MEM_FORMAT_ENCODING",
	"torch.distributed.checkpoint.filesystem._StorageInfo",
	"torch.distributed._shard.checkpoint.metadata.Metadata",
	"torch.distributed._shard.checkpoint.metadata.TensorStorageMetadata",
	"torch.distributed._shard.checkpoint.metadata.BytesStorageMetadata",
	"torch.distributed._shard.checkpoint.metadata.ChunkStorageMetadata",
	"torch.distributed._shard.checkpoint.metadata.MetadataIndex",
	"torch.distributed._shard.checkpoint.filesystem._StorageInfo",
	"torch.distributed._shard.sharded_tensor.metadata.TensorProperties",
	"torch.distributed._shard.sharded_tensor.metadata.MEM_FORMAT_ENCODING",
	/* memory formats as 1.13 pickles them (a dotted name) */
	"torch._utils.torch.contiguous_format",
	"torch._utils.torch.channels_last",
	"torch._utils.torch.preserve_format",
	"torch._utils.torch.channels_last_3d",
};

static const struct {
	const char *name;
	int dtype;		/* enum ckpt_dtype, or -1: allowed,
				 * unsupported */
} torch_dtypes[] = {
	{ "float64", CKPT_DTYPE_F64 }, { "float32", CKPT_DTYPE_F32 },
	{ "float16", CKPT_DTYPE_F16 }, { "bfloat16", CKPT_DTYPE_BF16 },
	{ "int64", CKPT_DTYPE_I64 }, { "int32", CKPT_DTYPE_I32 },
	{ "int16", CKPT_DTYPE_I16 }, { "int8", CKPT_DTYPE_I8 },
	{ "uint8", CKPT_DTYPE_U8 }, { "bool", CKPT_DTYPE_BOOL },
	{ "complex128", CKPT_DTYPE_C128 }, { "complex64", CKPT_DTYPE_C64 },
	{ "complex32", CKPT_DTYPE_C32 }, { "qint8", CKPT_DTYPE_QI8 },
	{ "quint8", CKPT_DTYPE_QU8 }, { "qint32", CKPT_DTYPE_QI32 },
	{ "quint4x2", CKPT_DTYPE_QU4X2 }, { "quint2x4", CKPT_DTYPE_QU2X4 },
	{ "float8_e5m2", CKPT_DTYPE_F8_E5M2 },
	{ "float8_e4m3fn", CKPT_DTYPE_F8_E4M3 },
	{ "float8_e5m2fnuz", CKPT_DTYPE_F8_E5M2FNUZ },
	{ "float8_e4m3fnuz", CKPT_DTYPE_F8_E4M3FNUZ },
	{ "float8_e8m0fnu", CKPT_DTYPE_F8_E8M0 },
	{ "uint16", CKPT_DTYPE_U16 }, { "uint32", CKPT_DTYPE_U32 },
	{ "uint64", CKPT_DTYPE_U64 },
	{ "float4_e2m1fn_x2", -1 }, { "bits8", -1 }, { "bits16", -1 },
	{ "bits1x8", -1 }, { "bits2x4", -1 }, { "bits4x2", -1 },
	{ "uint1", -1 }, { "uint2", -1 }, { "uint3", -1 }, { "uint4", -1 },
	{ "uint5", -1 }, { "uint6", -1 }, { "uint7", -1 }, { "int1", -1 },
	{ "int2", -1 }, { "int3", -1 }, { "int4", -1 }, { "int5", -1 },
	{ "int6", -1 }, { "int7", -1 },
};

static const struct {
	const char *name;	/* after "torch." or "torch.cuda." */
	enum ckpt_dtype dtype;
	bool cuda;		/* also under torch.cuda. */
} storage_types[] = {
	{ "DoubleStorage", CKPT_DTYPE_F64, true },
	{ "FloatStorage", CKPT_DTYPE_F32, true },
	{ "HalfStorage", CKPT_DTYPE_F16, true },
	{ "BFloat16Storage", CKPT_DTYPE_BF16, true },
	{ "LongStorage", CKPT_DTYPE_I64, true },
	{ "IntStorage", CKPT_DTYPE_I32, true },
	{ "ShortStorage", CKPT_DTYPE_I16, true },
	{ "CharStorage", CKPT_DTYPE_I8, true },
	{ "ByteStorage", CKPT_DTYPE_U8, true },
	{ "BoolStorage", CKPT_DTYPE_BOOL, true },
	{ "ComplexDoubleStorage", CKPT_DTYPE_C128, true },
	{ "ComplexFloatStorage", CKPT_DTYPE_C64, true },
	{ "QInt8Storage", CKPT_DTYPE_QI8, false },
	{ "QInt32Storage", CKPT_DTYPE_QI32, false },
	{ "QUInt8Storage", CKPT_DTYPE_QU8, false },
	{ "QUInt4x2Storage", CKPT_DTYPE_QU4X2, false },
	{ "QUInt2x4Storage", CKPT_DTYPE_QU2X4, false },
};

static const char *const tensor_classes[] = {
	"Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char",
	"Byte", "Bool",
};

/* For messages only: what is known to run code (security.md §3.8). */
static const char *const deny_modules[] = {
	"os", "posix", "nt", "sys", "subprocess", "runpy", "pty", "socket",
	"shutil", "pickle", "_pickle", "importlib", "ctypes", "_ctypes",
	"webbrowser", "code", "codeop", "marshal", "types", "pdb", "bdb",
	"operator", "_operator", "functools", "pkgutil", "pip", "timeit",
	"cProfile", "profile", "trace", "doctest", "asyncio", "multiprocessing",
	"_posixsubprocess", "pydoc", "ensurepip", "venv", "urllib", "requests",
	"http", "ssl", "numpy.f2py", "numpy.testing", "dill", "cloudpickle",
	"joblib", "_io", "io", "tempfile", "_interpreters",
	"_xxsubinterpreters", "idlelib", "lib2to3", "logging", "uuid",
	"imaplib",
};

static const char *const deny_builtins[] = {
	"eval", "exec", "compile", "getattr", "setattr", "delattr", "open",
	"__import__", "breakpoint", "apply", "globals", "locals", "vars",
	"input", "memoryview",
};

static bool
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static int
torch_dtype(const char *full)
{
	if (strncmp(full, "torch.", 6))
		return -2;
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(torch_dtypes); i++)
		if (!strcmp(full + 6, torch_dtypes[i].name))
			return torch_dtypes[i].dtype;
	return -2;
}

static int
storage_dtype(const char *full, bool *untyped)
{
	const char *n = NULL;

	*untyped = false;
	if (!strcmp(full, "torch.storage.UntypedStorage") ||
	    !strcmp(full, "torch.UntypedStorage")) {
		*untyped = true;
		return CKPT_DTYPE_U8;
	}
	if (!strncmp(full, "torch.cuda.", 11))
		n = full + 11;
	else if (!strncmp(full, "torch.", 6))
		n = full + 6;
	if (!n)
		return -1;
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(storage_types); i++)
		if (!strcmp(n, storage_types[i].name) && (n == full + 6 ||
		    storage_types[i].cuda))
			return (int)storage_types[i].dtype;
	return -1;
}

bool
ckpt_pickle_allowed(const char *name, unsigned int flags)
{
	bool u;
	const char *n = NULL;

	if (in_list(name, allow_exact, CKPT_ARRAY_SIZE(allow_exact)))
		return true;
	if ((flags & PK_ALLOW_DCP) &&
	    in_list(name, allow_dcp, CKPT_ARRAY_SIZE(allow_dcp)))
		return true;
	/* Python 3.11 pickles an enum member as getattr(cls, "NAME"): in
	 * DCP metadata that one use is interpreted (see interpret()), any
	 * other is an unsafe call. */
	if ((flags & PK_ALLOW_DCP) && !strcmp(name, "builtins.getattr"))
		return true;
	if (torch_dtype(name) >= -1 || storage_dtype(name, &u) >= 0)
		return true;
	if (!strncmp(name, "torch.cuda.sparse.", 18))
		n = name + 18;
	else if (!strncmp(name, "torch.sparse.", 13))
		n = name + 13;
	else if (!strncmp(name, "torch.cuda.", 11))
		n = name + 11;
	else if (!strncmp(name, "torch.", 6))
		n = name + 6;
	if (n) {
		size_t l = strlen(n);

		if (l > 6 && !strcmp(n + l - 6, "Tensor"))
			for (size_t i = 0; i < CKPT_ARRAY_SIZE(tensor_classes);
			    i++)
				if (strlen(tensor_classes[i]) == l - 6 &&
				    !strncmp(n, tensor_classes[i], l - 6))
					return !(n == name + 13 || n ==
					    name + 18) ||
					    strcmp(n, "BoolTensor");
	}
	return false;
}

static bool
denylisted(const char *mod, const char *name)
{
	if (!strcmp(mod, "builtins"))
		return in_list(name, deny_builtins,
		    CKPT_ARRAY_SIZE(deny_builtins));
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(deny_modules); i++) {
		size_t l = strlen(deny_modules[i]);

		if (!strncmp(mod, deny_modules[i], l) &&
		    (mod[l] == '\0' || mod[l] == '.'))
			return true;
	}
	if (!strcmp(mod, "torch.serialization") && !strcmp(name, "load"))
		return true;
	if (!strcmp(mod, "torch") && !strcmp(name, "load"))
		return true;
	return false;
}

bool
ckpt_pickle_denylisted(const char *name)
{
	const char *dot = strrchr(name, '.');
	char mod[520];

	if (!dot || (size_t)(dot - name) >= sizeof(mod))
		return true;	/* not a module.name: never admitted */
	memcpy(mod, name, (size_t)(dot - name));
	mod[dot - name] = '\0';
	return denylisted(mod, dot + 1);
}

bool
ckpt_pickle_pattern_admits(const char *pattern, const char *name)
{
	size_t pl = strlen(pattern);

	if (ckpt_pickle_denylisted(name))
		return false;
	if (pl > 2 && !strcmp(pattern + pl - 2, ".*"))
		/* every public name of that module itself, not of its
		 * submodules, not _private or __dunder__ ones */
		return !strncmp(name, pattern, pl - 1) &&
		    name[pl - 1] != '_' && !strchr(name + pl - 1, '.');
	return !strcmp(pattern, name);
}

/* The caller's extra allowlist (ckpt_open_options.allow_globals). */
static bool
user_admits(const struct ckpt_file *f, const char *name)
{
	for (size_t i = 0; i < f->nallow_globals; i++)
		if (ckpt_pickle_pattern_admits(f->allow_globals[i], name))
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Nodes and memory                                                    */
/* ------------------------------------------------------------------ */

struct parser {
	struct ckpt_file *f;
	struct ckpt_pickle *p;
	const struct pk_opts *o;
	const struct pk_limits *lim;
	const unsigned char *buf;	/* bytes [wbase, wbase + wlen) */
	size_t len, pos, op_pos;	/* stream offsets */
	/* o->read: a window of the stream (win, wcap bytes of room) */
	unsigned char *win;
	size_t wbase, wlen, wcap;
	unsigned char op;		/* the opcode being run */
	struct pk_node **stack;
	size_t sp, stack_cap;
	size_t *marks;
	size_t nmarks, marks_cap;
	uint32_t *mkeys;		/* memo: key + 1, 0 = empty */
	struct pk_node **mvals;
	size_t mcap, mcount;
	uint32_t *rkeys;		/* keys some GET reads: key + 1 */
	size_t rcap;			/* 0: every key is kept */
	size_t unread;			/* PUTs of keys no GET reads */
	uint64_t ops;
	size_t frame_end;
	bool in_frame;
	bool compat_seen[256];
	char **reported;		/* names already reported */
	size_t nreported;
	uint32_t *skeys;		/* storage hash: index + 1 */
	size_t scap;
	/* o->take: the root dict being filled, the names' hash (index + 1
	 * into p->direct), the direct array's room, and the item arrays
	 * the dict would have grown to (accounted as if it had) */
	struct pk_node *direct_dict;
	bool direct_failed;
	uint32_t *dslots;
	size_t dscap, dcap, vcap;
	bool *truncated;
	struct ckpt_error *err;
};

static int
account(struct ckpt_pickle *p, uint64_t bytes, struct ckpt_error *err)
{
	if (!ckpt_add_u64(p->allocated, bytes, &p->allocated) ||
	    p->allocated > p->lim->max_alloc)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1, "pickle "
		    "needs more than %llu bytes of memory",
		    (unsigned long long)p->lim->max_alloc);
	return CKPT_OK;
}

/*
 * Nodes, strings and item arrays come from slabs freed all at once: a
 * torch state dict of 40,000 tensors makes about 600,000 nodes, and one
 * malloc and free each (plus an array to find them again) cost more
 * memory and time than the nodes themselves.  Sizes are rounded up to 8.
 */
#define SLAB_SIZE	((size_t)64 << 10)

struct pk_slab {
	struct pk_slab *next;
	size_t used, size;
	max_align_t data[];
};

static void *
arena_get(struct ckpt_pickle *p, size_t size)
{
	struct pk_slab *s = p->slabs;
	void **spare;

	size = (size + 7) & ~(size_t)7;
	if (size / 8 < PK_SPARE_CLASSES && *(spare = &p->spare[size / 8])) {
		void *m = *spare;

		*spare = *(void **)m;
		return memset(m, 0, size);
	}
	if (!s || s->size - s->used < size) {
		bool own = size > SLAB_SIZE / 4;
		size_t cap = own ? size : SLAB_SIZE;

		/* a large request gets a slab of its own, behind the
		 * current one, which keeps serving small ones */
		if (!(s = malloc(sizeof(*s) + cap)))
			return NULL;
		s->used = 0;
		s->size = cap;
		if (own && p->slabs) {
			s->next = p->slabs->next;
			p->slabs->next = s;
		} else {
			s->next = p->slabs;
			p->slabs = s;
		}
	}
	s->used += size;
	return memset((char *)s->data + s->used - size, 0, size);
}

static void *
pk_alloc(struct ckpt_pickle *p, size_t size, struct ckpt_error *err)
{
	void *m;

	if (account(p, size, err))
		return NULL;
	if (!(m = arena_get(p, size ? size : 1)))
		ckpt_error_nomem(err);
	return m;
}

/*
 * Gives back a block nothing references any more (the caller's proof:
 * see release_unpinned) for the next allocation of its size: the
 * intermediate nodes of a torch rebuild call (ten per tensor) then cost
 * one set of blocks, not one per tensor.  Under AddressSanitizer the
 * block is poisoned and never reused, so a reference that was still
 * alive shows as a use-after-poison instead of reading a new node.
 */
static void
spare_put(struct ckpt_pickle *p, void *m, size_t size, bool counted)
{
	size = (size + 7) & ~(size_t)7;
	if (!m || !size || size / 8 >= PK_SPARE_CLASSES)
		return;
	if (counted)
		p->allocated -= size < p->allocated ? size : p->allocated;
#ifdef CKPT_ASAN
	ASAN_POISON_MEMORY_REGION(m, size);
#else
	*(void **)m = p->spare[size / 8];
	p->spare[size / 8] = m;
#endif
}

static void
pk_release(struct ckpt_pickle *p, void *m, size_t size)
{
	spare_put(p, m, size, true);
}

static char *
pk_strndup(struct ckpt_pickle *p, const char *s, size_t n,
    struct ckpt_error *err)
{
	char *d = pk_alloc(p, n + 1, err);

	if (d)
		memcpy(d, s, n);
	return d;
}

static struct pk_node *
pk_new(struct ckpt_pickle *p, enum pk_kind kind, int64_t pos,
    struct ckpt_error *err)
{
	struct pk_node *n = pk_alloc(p, sizeof(*n), err);

	if (n) {
		n->kind = kind;
		n->pos = pos;
		p->ntensors += kind == PK_TENSOR;
	}
	return n;
}

/*
 * None, booleans and small ints are immutable leaves whose identity no
 * walker shows (a "$shared" mark is for containers): one node per value
 * serves every occurrence.  Messages about a value name the opcode being
 * run, never the node's own offset, so sharing loses nothing.
 */
static struct pk_node *
pk_leaf(struct ckpt_pickle *p, enum pk_kind kind, int64_t v, int64_t pos,
    struct ckpt_error *err)
{
	struct pk_node **slot = NULL, *n;

	if (kind == PK_NONE)
		slot = &p->none;
	else if (kind == PK_BOOL)
		slot = &p->bools[v != 0];
	else if (kind == PK_INT && v >= PK_INTERN_MIN && v <= PK_INTERN_MAX)
		slot = &p->ints[v - PK_INTERN_MIN];
	if (slot && *slot)
		return *slot;
	if ((n = pk_new(p, kind, pos, err)))
		n->i = kind == PK_BOOL ? v != 0 : v;
	if (slot)
		*slot = n;
	return n;
}

/* Room for cap items (and keys, for dicts) in a container node. */
static int
pk_reserve(struct ckpt_pickle *p, struct pk_node *c, size_t cap,
    struct ckpt_error *err)
{
	size_t per = c->kind == PK_DICT ? 2 : 1;
	struct pk_node **v, **k = NULL;

	if (cap <= c->cap)
		return CKPT_OK;
	if (cap > SIZE_MAX / sizeof(*v) / 2)
		return ckpt_error_nomem(err);
	/* the old arrays stay in the slabs: at most as much again */
	if (!(v = pk_alloc(p, cap * sizeof(*v), err)) ||
	    (per == 2 && !(k = pk_alloc(p, cap * sizeof(*k), err))))
		return err->code;
	if (c->n) {
		memcpy(v, c->items, c->n * sizeof(*v));
		if (k)
			memcpy(k, c->keys, c->n * sizeof(*k));
	}
	c->items = v;
	if (k)
		c->keys = k;
	c->cap = cap;
	return CKPT_OK;
}

/* Appends an item (and a key, for dicts) to a container node. */
static int
pk_push_item(struct ckpt_pickle *p, struct pk_node *c, struct pk_node *key,
    struct pk_node *val, struct ckpt_error *err)
{
	int rc;

	if (c->n == c->cap &&
	    (rc = pk_reserve(p, c, c->cap ? 2 * c->cap : 4, err)))
		return rc;
	if (c->kind == PK_DICT)
		c->keys[c->n] = key;
	c->items[c->n++] = val;
	return CKPT_OK;
}

void
ckpt_pickle_drop_tree(struct ckpt_pickle *p)
{
	while (p->slabs) {
		struct pk_slab *s = p->slabs;

		p->slabs = s->next;
		free(s);
	}
	memset(p->spare, 0, sizeof(p->spare));
	memset(p->ints, 0, sizeof(p->ints));
	p->none = p->bools[0] = p->bools[1] = NULL;
	p->root = NULL;
	free(p->storages);
	p->storages = NULL;
	p->nstorages = 0;
}

void
ckpt_pickle_free(struct ckpt_pickle *p)
{
	if (!p)
		return;
	ckpt_pickle_drop_tree(p);
	free(p->direct);
	free(p);
}

/* ------------------------------------------------------------------ */
/* Errors and findings                                                 */
/* ------------------------------------------------------------------ */

static int64_t
abs_off(const struct parser *ps, size_t pos)
{
	return ps->o->base >= 0 ? ps->o->base + (int64_t)pos : (int64_t)pos;
}

static const char *
what(const struct parser *ps)
{
	return ps->o->what ? ps->o->what : "the pickle";
}

/*
 * A stream the reader stops at, at the current opcode: an error of code,
 * and a finding id (its text ending in hint) so that a file can still
 * open and say why its pickle was not read.
 */
static int CKPT_PRINTF(5, 0)
vstop(struct parser *ps, const char *id, int code, const char *hint,
    const char *fmt, va_list ap)
{
	char msg[300];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	ckpt_file_add_finding(ps->f, id, CKPT_SEV_ERROR, ps->o->what,
	    abs_off(ps, ps->op_pos), "%s: %s at offset %zu%s", what(ps), msg,
	    ps->op_pos, hint);
	return ckpt_error_set(ps->err, code, ps->f->path,
	    abs_off(ps, ps->op_pos), "%s: %s at offset %zu", what(ps), msg,
	    ps->op_pos);
}

/* A malformed stream. */
static int CKPT_PRINTF(2, 3)
bad(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vstop(ps, "pickle-malformed", CKPT_ERR_FORMAT, "", fmt, ap);
	va_end(ap);
	return rc;
}

static int
truncated(struct parser *ps)
{
	if (ps->truncated) {
		*ps->truncated = true;
		return ckpt_error_set(ps->err, CKPT_ERR_FORMAT, ps->f->path,
		    abs_off(ps, ps->len), "%s: truncated", what(ps));
	}
	return bad(ps, "stream ends in the middle of an opcode");
}

/* A stream past one of the reader's limits. */
static int CKPT_PRINTF(2, 3)
limit(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vstop(ps, "pickle-limit", CKPT_ERR_LIMIT, " (a pickle bomb?)",
	    fmt, ap);
	va_end(ap);
	return rc;
}

/* Reports name once per pickle under id; returns 0 or NOMEM. */
static bool
first_report(struct parser *ps, const char *id, const char *name)
{
	char *key;
	char **r;

	if (asprintf(&key, "%s\n%s", id, name) < 0)
		return false;
	for (size_t i = 0; i < ps->nreported; i++)
		if (!strcmp(ps->reported[i], key)) {
			free(key);
			return false;
		}
	r = reallocarray(ps->reported, ps->nreported + 1, sizeof(*r));
	if (!r) {
		free(key);
		return false;
	}
	ps->reported = r;
	r[ps->nreported++] = key;
	return true;
}

static const char *const opnames[256] = {
	['('] = "MARK", ['.'] = "STOP", ['0'] = "POP", ['1'] = "POP_MARK",
	['2'] = "DUP", ['F'] = "FLOAT", ['I'] = "INT", ['J'] = "BININT",
	['K'] = "BININT1", ['L'] = "LONG", ['M'] = "BININT2", ['N'] = "NONE",
	['P'] = "PERSID", ['Q'] = "BINPERSID", ['R'] = "REDUCE",
	['S'] = "STRING", ['T'] = "BINSTRING", ['U'] = "SHORT_BINSTRING",
	['V'] = "UNICODE", ['X'] = "BINUNICODE", ['a'] = "APPEND",
	['b'] = "BUILD", ['c'] = "GLOBAL", ['d'] = "DICT", ['}'] = "EMPTY_DICT",
	['e'] = "APPENDS", ['g'] = "GET", ['h'] = "BINGET", ['i'] = "INST",
	['j'] = "LONG_BINGET", ['l'] = "LIST", [']'] = "EMPTY_LIST",
	['o'] = "OBJ", ['p'] = "PUT", ['q'] = "BINPUT", ['r'] = "LONG_BINPUT",
	['s'] = "SETITEM", ['t'] = "TUPLE", [')'] = "EMPTY_TUPLE",
	['u'] = "SETITEMS", ['G'] = "BINFLOAT", [0x80] = "PROTO",
	[0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4",
	[0x85] = "TUPLE1", [0x86] = "TUPLE2", [0x87] = "TUPLE3",
	[0x88] = "NEWTRUE", [0x89] = "NEWFALSE", [0x8a] = "LONG1",
	[0x8b] = "LONG4", ['B'] = "BINBYTES", ['C'] = "SHORT_BINBYTES",
	[0x8c] = "SHORT_BINUNICODE", [0x8d] = "BINUNICODE8",
	[0x8e] = "BINBYTES8", [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS",
	[0x91] = "FROZENSET", [0x92] = "NEWOBJ_EX", [0x93] = "STACK_GLOBAL",
	[0x94] = "MEMOIZE", [0x95] = "FRAME", [0x96] = "BYTEARRAY8",
	[0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
};

/* torch's weights_only unpickler implements exactly these. */
static bool
strict_op(unsigned char op)
{
	static const char strict[] = "\x80.(cRb\x81Qae su t\x85\x86\x87)]}"
	    "\x8fN\x88\x89JKM\x8aGXUhjqr";

	return op != ' ' && memchr(strict, op, sizeof(strict) - 1);
}

static int
compat(struct parser *ps, unsigned char op)
{
	if ((ps->o->flags & PK_QUIET_COMPAT) || ps->compat_seen[op])
		return CKPT_OK;
	ps->compat_seen[op] = true;
	return ckpt_file_add_finding(ps->f, "pickle-compat-opcode",
	    CKPT_SEV_WARNING, opnames[op], abs_off(ps, ps->op_pos), "%s: "
	    "opcode %s at offset %zu is pure data but outside torch.load("
	    "weights_only=True)'s set (saved with another pickle protocol?)",
	    what(ps), opnames[op], ps->op_pos);
}

static int
unsafe_op(struct parser *ps, unsigned char op, const char *name)
{
	return ckpt_file_add_finding(ps->f, "unsafe-opcode", CKPT_SEV_ERROR,
	    name ? name : opnames[op], abs_off(ps, ps->op_pos), "%s: opcode "
	    "%s%s%s at offset %zu can execute code; not interpreted",
	    what(ps), opnames[op], name ? " of " : "", name ? name : "",
	    ps->op_pos);
}

/* ------------------------------------------------------------------ */
/* Stack and memo                                                      */
/* ------------------------------------------------------------------ */

static int
push(struct parser *ps, struct pk_node *n)
{
	if (!n)
		return ps->err && ps->err->code ? ps->err->code :
		    CKPT_ERR_NOMEM;
	if (ps->sp >= ps->lim->max_stack)
		return limit(ps, "stack deeper than %zu", ps->lim->max_stack);
	if (ps->sp == ps->stack_cap) {
		size_t cap = ps->stack_cap ? 2 * ps->stack_cap : 64;
		struct pk_node **s;

		s = reallocarray(ps->stack, cap, sizeof(*s));
		if (!s)
			return ckpt_error_nomem(ps->err);
		ps->stack = s;
		ps->stack_cap = cap;
	}
	ps->stack[ps->sp++] = n;
	return CKPT_OK;
}

/* Items above the topmost mark. */
static size_t
mark_base(struct parser *ps)
{
	return ps->nmarks ? ps->marks[ps->nmarks - 1] : 0;
}

static int
need_stack(struct parser *ps, size_t n)
{
	if (ps->sp < mark_base(ps) + n)
		return bad(ps, "%s needs %zu value%s on the stack",
		    opnames[ps->op], n, n == 1 ? "" : "s");
	return CKPT_OK;
}

static struct pk_node *
pop(struct parser *ps)
{
	return ps->stack[--ps->sp];
}

static int
pop_mark(struct parser *ps, size_t *base)
{
	if (!ps->nmarks)
		return bad(ps, "%s without a MARK",
		    opnames[ps->op]);
	*base = ps->marks[--ps->nmarks];
	return CKPT_OK;
}

/*
 * Pops the mark of SETITEMS, APPENDS or ADDITEMS: the items from *base
 * go into the container just below it (*base - 1), which must not sit
 * under the outer mark; container names what it should be.
 */
static int
pop_mark_onto(struct parser *ps, size_t *base, const char *container)
{
	int rc;

	if ((rc = pop_mark(ps, base)))
		return rc;
	if (*base == 0 || *base < mark_base(ps) + 1)
		return bad(ps, "%s without a %s", opnames[ps->op], container);
	return CKPT_OK;
}

static struct pk_node *
memo_get(struct parser *ps, uint32_t key)
{
	size_t h;

	if (!ps->mcap || key == UINT32_MAX)
		return NULL;
	h = ((key + 1u) * 2654435761u) & (ps->mcap - 1);
	while (ps->mkeys[h]) {
		if (ps->mkeys[h] == key + 1u)
			return ps->mvals[h];
		h = (h + 1) & (ps->mcap - 1);
	}
	return NULL;
}

/*
 * Which memo keys a GET reads, from a scan of the opcodes up to STOP
 * before the stream is run: torch's pickler PUTs nearly every value it
 * writes (ten per tensor) and GETs a handful (the globals, "storage",
 * "cpu"), so keeping only those spares a memo of 400,000 entries for a
 * state dict of 40,000 tensors.  Anything the scan does not follow to a
 * STOP (an unknown opcode, MEMOIZE, whose key is the memo's size, a
 * truncated or malformed stream, a text key that is no number) keeps
 * every key, as before; the run itself then reports what is wrong.
 */
static bool
rkeys_add(struct parser *ps, uint64_t k, size_t *n)
{
	size_t h;

	if (k > UINT32_MAX - 1)
		return true;		/* the run refuses it */
	if (*n * 2 >= ps->rcap) {
		size_t cap = ps->rcap ? 2 * ps->rcap : 64;
		uint32_t *r = calloc(cap, sizeof(*r));

		if (!r)
			return false;
		for (size_t i = 0; i < ps->rcap; i++) {
			if (!ps->rkeys[i])
				continue;
			for (h = (ps->rkeys[i] * 2654435761u) & (cap - 1);
			    r[h]; h = (h + 1) & (cap - 1))
				;
			r[h] = ps->rkeys[i];
		}
		free(ps->rkeys);
		ps->rkeys = r;
		ps->rcap = cap;
	}
	for (h = (((uint32_t)k + 1u) * 2654435761u) & (ps->rcap - 1);
	    ps->rkeys[h] && ps->rkeys[h] != (uint32_t)k + 1u;
	    h = (h + 1) & (ps->rcap - 1))
		;
	if (!ps->rkeys[h])
		(*n)++;
	ps->rkeys[h] = (uint32_t)k + 1u;
	return true;
}

static bool
rkeys_has(const struct parser *ps, uint32_t key)
{
	size_t h = ((key + 1u) * 2654435761u) & (ps->rcap - 1);

	for (; ps->rkeys[h]; h = (h + 1) & (ps->rcap - 1))
		if (ps->rkeys[h] == key + 1u)
			return true;
	return false;
}

static uint64_t rdle(const unsigned char *p, size_t n);
static const unsigned char *at(const struct parser *ps, size_t pos);
static int window(struct parser *ps, size_t pos, size_t n);
static int find_nl(struct parser *ps, size_t from, size_t max, size_t *nl);

/* Bytes of argument after opcode op at stream offset pos (pos: after
 * op), or -1 for what the scan does not follow. */
static int64_t
op_arg_len(struct parser *ps, size_t pos, unsigned op)
{
	static const unsigned char fixed[256] = {
		[0x80] = 1, ['J'] = 4, ['K'] = 1, ['M'] = 2, ['G'] = 8,
		['h'] = 1, ['j'] = 4, ['q'] = 1, ['r'] = 4, [0x82] = 1,
		[0x83] = 2, [0x84] = 4, [0x95] = 8,
	};
	static const unsigned char counted[256] = {
		[0x8a] = 1, [0x8b] = 4, ['X'] = 4, [0x8c] = 1, [0x8d] = 8,
		['T'] = 4, ['U'] = 1, ['B'] = 4, ['C'] = 1, [0x8e] = 8,
		[0x96] = 8,
	};
	size_t len = ps->len, nl;
	uint64_t n;

	if (fixed[op])
		return fixed[op];
	if (counted[op]) {
		if (len - pos < counted[op] || window(ps, pos, counted[op]))
			return -1;
		n = rdle(at(ps, pos), counted[op]);
		if (n > len - pos - counted[op])
			return -1;
		return (int64_t)(counted[op] + n);
	}
	if (strchr("ILFSVPgpci", (int)op) && op) {
		size_t from = pos;

		for (int lines = op == 'c' || op == 'i' ? 2 : 1; lines--;) {
			if (find_nl(ps, from, len - from, &nl))
				return -1;
			from = nl + 1;
		}
		return (int64_t)(from - pos);
	}
	if (op == 0x94 || !opnames[op])
		return -1;		/* MEMOIZE, or unknown */
	return 0;
}

/* A text memo key ("12\n"), or UINT64_MAX. */
static uint64_t
text_key(const unsigned char *s, size_t n)
{
	uint64_t k = 0;

	if (n < 2 || n > 11)
		return UINT64_MAX;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return UINT64_MAX;
		k = k * 10 + (uint64_t)(s[i] - '0');
	}
	return k;
}

/* Through a window the scan is a pass of its own (op_pos: where the
 * window may start); the run starts again from byte 0. */
static void
scan_gets(struct parser *ps)
{
	size_t pos = 0, n = 0;

	while (pos < ps->len) {
		unsigned op;
		int64_t a;
		uint64_t k;

		ps->op_pos = pos;
		if (window(ps, pos, 1))
			break;
		op = *at(ps, pos++);
		a = op_arg_len(ps, pos, op);
		if (a < 0 || (uint64_t)a > ps->len - pos)
			break;
		if (op == '.') {
			ps->op_pos = 0;
			if (!ps->rcap && !rkeys_add(ps, UINT32_MAX - 1, &n))
				break;	/* an empty set that exists */
			return;
		}
		if (op == 'h' || op == 'j' || op == 'g') {
			if (window(ps, pos, (size_t)a))
				break;
			k = op == 'g' ? text_key(at(ps, pos), (size_t)a) :
			    rdle(at(ps, pos), (size_t)a);
			if (k == UINT64_MAX || !rkeys_add(ps, k, &n))
				break;
		}
		pos += (size_t)a;
	}
	ps->op_pos = 0;
	free(ps->rkeys);
	ps->rkeys = NULL;
	ps->rcap = 0;
}

static int
memo_put(struct parser *ps, uint32_t key, struct pk_node *v)
{
	size_t h;

	if (ps->rcap && !rkeys_has(ps, key)) {
		/* never read: counted against the limit, not kept */
		if (ps->mcount + ++ps->unread > ps->lim->max_memo)
			return limit(ps, "more than %zu memo entries",
			    ps->lim->max_memo);
		return CKPT_OK;
	}
	if (ps->mcount + ps->unread >= ps->lim->max_memo &&
	    !memo_get(ps, key))
		return limit(ps, "more than %zu memo entries",
		    ps->lim->max_memo);
	if (ps->mcount * 2 >= ps->mcap) {
		size_t cap = ps->mcap ? 2 * ps->mcap : 1024;
		uint32_t *k;
		struct pk_node **nv;
		int rc;

		if ((rc = account(ps->p, cap * (sizeof(*k) + sizeof(*nv)),
		    ps->err)))
			return limit(ps, "memo too large");
		k = calloc(cap, sizeof(*k));
		nv = calloc(cap, sizeof(*nv));
		if (!k || !nv) {
			free(k);
			free(nv);
			return ckpt_error_nomem(ps->err);
		}
		for (size_t i = 0; i < ps->mcap; i++) {
			if (!ps->mkeys[i])
				continue;
			h = (ps->mkeys[i] * 2654435761u) & (cap - 1);
			while (k[h])
				h = (h + 1) & (cap - 1);
			k[h] = ps->mkeys[i];
			nv[h] = ps->mvals[i];
		}
		free(ps->mkeys);
		free(ps->mvals);
		ps->mkeys = k;
		ps->mvals = nv;
		ps->mcap = cap;
	}
	h = ((key + 1u) * 2654435761u) & (ps->mcap - 1);
	while (ps->mkeys[h] && ps->mkeys[h] != key + 1u)
		h = (h + 1) & (ps->mcap - 1);
	if (!ps->mkeys[h])
		ps->mcount++;
	ps->mkeys[h] = key + 1u;
	ps->mvals[h] = v;
	v->pinned = 1;		/* a GET may push it again */
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Reading arguments                                                   */
/* ------------------------------------------------------------------ */

/* The stream's byte at offset pos (inside the window). */
static const unsigned char *
at(const struct parser *ps, size_t pos)
{
	return ps->buf + (pos - ps->wbase);
}

/*
 * Makes [pos, pos + n) of the stream readable at at(ps, pos) (pos + n <=
 * len).  Reading through o->read, the window moves forward keeping the
 * current opcode's bytes (its text arguments are read in turn), and
 * grows only for an argument larger than PK_WINDOW: a 5 MB data.pkl
 * costs 256 KiB, and strings are copied out of it (new_str).
 */
#define PK_WINDOW ((size_t)256 << 10)

static int
window_move(struct parser *ps, size_t pos, size_t n)
{
	size_t keep = ps->op_pos < pos ? ps->op_pos : pos, have = 0, want;
	int rc;

	if (!ps->o->read)
		return CKPT_OK;
	want = pos + n - keep < PK_WINDOW ? PK_WINDOW : pos + n - keep;
	if (want > ps->len - keep)
		want = ps->len - keep;
	if (keep >= ps->wbase && keep < ps->wbase + ps->wlen) {
		have = ps->wbase + ps->wlen - keep;
		memmove(ps->win, ps->win + (keep - ps->wbase), have);
	}
	if (want > ps->wcap) {
		unsigned char *w = realloc(ps->win, want);

		if (!w)
			return ckpt_error_nomem(ps->err);
		ps->win = w;
		ps->wcap = want;
	}
	ps->buf = ps->win;
	ps->wbase = keep;
	ps->wlen = have;
	if ((rc = ps->o->read(ps->o->read_ctx, ps->win + have, want - have,
	    keep + have, ps->err)))
		return rc;
	ps->wlen = want;
	return CKPT_OK;
}

static inline int
window(struct parser *ps, size_t pos, size_t n)
{
	if (pos >= ps->wbase && pos + n <= ps->wbase + ps->wlen)
		return CKPT_OK;
	return window_move(ps, pos, n);
}

static int
need(struct parser *ps, size_t n)
{
	if (ps->len - ps->pos < n)
		return truncated(ps);
	return window(ps, ps->pos, n);
}

/* Where the first '\n' of [from, from + max) is (max <= len - from):
 * 1 when there is none, else 0 or an error.  Through a window it reads
 * on in growing steps, not the whole rest at once. */
static int
find_nl(struct parser *ps, size_t from, size_t max, size_t *nl)
{
	size_t done = from, step = 256, end;
	const unsigned char *p;
	int rc;

	for (;;) {
		end = max - (done - from) < step ? from + max : done + step;
		if ((rc = window(ps, from, end - from)))
			return rc;
		if ((p = memchr(at(ps, done), '\n', end - done))) {
			*nl = done + (size_t)(p - at(ps, done));
			return CKPT_OK;
		}
		if (end == from + max)
			return 1;
		done = end;
		step *= 2;
	}
}

static uint64_t
rdle(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A text argument up to '\n' (at most max bytes); returns its length. */
static int
line(struct parser *ps, size_t max, const char **s, size_t *n)
{
	size_t avail = ps->len - ps->pos, nl;
	int rc;

	rc = find_nl(ps, ps->pos, avail < max + 1 ? avail : max + 1, &nl);
	if (rc < 0)
		return rc;
	if (rc)
		return avail <= max ? truncated(ps) :
		    bad(ps, "text argument longer than %zu bytes", max);
	*s = (const char *)at(ps, ps->pos);
	*n = nl - ps->pos;
	ps->pos += *n + 1;
	return CKPT_OK;
}

static int
length_arg(struct parser *ps, size_t width, bool is_signed, size_t *out)
{
	uint64_t v;
	int rc;

	if ((rc = need(ps, width)))
		return rc;
	v = rdle(at(ps, ps->pos), width);
	ps->pos += width;
	if (is_signed && width == 4 && (v & 0x80000000u))
		return bad(ps, "negative length");
	/* Never trust a declared length: it must fit in what remains. */
	if (v > ps->len - ps->pos) {
		if (ps->truncated && ps->len - ps->pos < v) {
			/* could be a real stream cut short; let the caller
			 * read more unless the length is absurd */
			if (v <= ps->lim->max_alloc)
				return truncated(ps);
		}
		return bad(ps, "declared length %llu exceeds the %zu bytes "
		    "that remain", (unsigned long long)v, ps->len - ps->pos);
	}
	*out = (size_t)v;
	return window(ps, ps->pos, (size_t)v);
}

static struct pk_node *
new_str(struct parser *ps, enum pk_kind kind, const char *s, size_t n)
{
	struct pk_node *x = pk_new(ps->p, kind, (int64_t)ps->op_pos, ps->err);
	uintptr_t a = (uintptr_t)s, w = (uintptr_t)ps->buf;

	if (x && ps->win && a >= w && a <= w + ps->wlen) {
		/* the window moves on: a copy, as the whole stream would
		 * have held it (not counted against max_alloc either) */
		char *c = arena_get(ps->p, n + 1);

		if (!c) {
			ckpt_error_nomem(ps->err);
			return NULL;
		}
		x->s = memcpy(c, s, n);
		x->len = n;
		x->owned = true;
		x->i = (int64_t)(ps->wbase + (a - w));
	} else if (x) {
		x->s = s;
		x->len = n;
		/* where the payload starts, for bytes that hold array data */
		x->i = (int64_t)((const unsigned char *)s - ps->buf);
	}
	return x;
}

static struct pk_node *
new_int(struct parser *ps, int64_t v)
{
	return pk_leaf(ps->p, PK_INT, v, (int64_t)ps->op_pos, ps->err);
}

/* LONG1/LONG4 payload: two's complement, little-endian. */
static struct pk_node *
new_long(struct parser *ps, const unsigned char *b, size_t n)
{
	struct pk_node *x;

	if (n <= 8) {
		uint64_t v = rdle(b, n);

		if (n && n < 8 && (b[n - 1] & 0x80))
			v |= ~(uint64_t)0 << (8 * n);
		return new_int(ps, (int64_t)v);
	}
	x = new_str(ps, PK_BIGINT, (const char *)b, n);
	if (x)
		x->i = 0;
	return x;
}

/* ------------------------------------------------------------------ */
/* Globals                                                             */
/* ------------------------------------------------------------------ */

static bool
valid_name(const char *s, size_t n)
{
	if (!n || n > 512)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* TorchScript archives name their own compiled classes __torch__.*: the
 * archive is reported as TorchScript once instead of per class. */
static bool
ts_class(const struct parser *ps, const char *name)
{
	return (ps->o->flags & PK_TORCHSCRIPT) &&
	    !strncmp(name, "__torch__.", 10);
}

static struct pk_node *
make_global(struct parser *ps, const char *mod, size_t mlen,
    const char *name, size_t nlen, const char *via)
{
	char m[520], nm[520], *full;
	bool allowed, deny, user, enum_getattr;
	struct pk_node *g;
	int dt;

	if (!valid_name(mod, mlen) || !valid_name(name, nlen)) {
		bad(ps, "%s with an empty or unprintable name", via);
		return NULL;
	}
	memcpy(m, mod, mlen);
	m[mlen] = '\0';
	memcpy(nm, name, nlen);
	nm[nlen] = '\0';
	/* CPython's fix_imports (torch applies it at every protocol). */
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(py2_names); i++)
		if (!strcmp(m, py2_names[i][0]) &&
		    !strcmp(nm, py2_names[i][1])) {
			snprintf(m, sizeof(m), "%s", py2_names[i][2]);
			snprintf(nm, sizeof(nm), "%s", py2_names[i][3]);
			goto mapped;
		}
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(py2_modules); i++)
		if (!strcmp(m, py2_modules[i][0])) {
			snprintf(m, sizeof(m), "%s", py2_modules[i][1]);
			break;
		}
	if (!strcmp(m, "torch.tensor"))
		snprintf(m, sizeof(m), "torch._tensor");
mapped:
	if (asprintf(&full, "%s.%s", m, nm) < 0) {
		ckpt_error_nomem(ps->err);
		return NULL;
	}
	allowed = ckpt_pickle_allowed(full, ps->o->flags);
	deny = denylisted(m, nm);
	user = !allowed && !deny && user_admits(ps->f, full);
	/*
	 * Python 3.11+ pickles an enum member as getattr(Class, "NAME").
	 * With classes allowed by the caller, getattr is admitted here and
	 * judged at its REDUCE: only getattr(<such a class>, "NAME") passes.
	 */
	enum_getattr = !allowed && ps->f->nallow_globals &&
	    !strcmp(full, "builtins.getattr");
	allowed |= user || enum_getattr;
	if (ckpt_file_add_global(ps->f, full, allowed)) {
		free(full);
		ckpt_error_nomem(ps->err);
		return NULL;
	}
	if (!allowed && !ts_class(ps, full) &&
	    first_report(ps, "unsafe-global", full))
		ckpt_file_add_finding(ps->f, "unsafe-global", CKPT_SEV_ERROR,
		    full, abs_off(ps, ps->op_pos), "%s: %s '%s' at offset "
		    "%zu %s; not resolved", what(ps), via, full, ps->op_pos,
		    deny ? "is a known code-execution callable" :
		    strchr(nm, '.') ? "is a dotted (attribute-chain) name "
		    "outside the allowlist" : "is not on torch.load("
		    "weights_only=True)'s allowlist");
	dt = torch_dtype(full);
	g = pk_new(ps->p, dt >= -1 ? PK_DTYPE : PK_GLOBAL,
	    (int64_t)ps->op_pos, ps->err);
	if (g) {
		g->s = pk_strndup(ps->p, full, strlen(full), ps->err);
		g->len = strlen(full);
		g->allowed = allowed;
		g->user = user;
		g->i = dt;
		if (!g->s)
			g = NULL;
	}
	free(full);
	return g;
}

/* ------------------------------------------------------------------ */
/* Interpreting allowlisted callables                                  */
/* ------------------------------------------------------------------ */

static bool
is_int(const struct pk_node *n)
{
	return n && (n->kind == PK_INT || n->kind == PK_BOOL);
}

static bool
is_seq(const struct pk_node *n)
{
	return n && (n->kind == PK_TUPLE || n->kind == PK_LIST);
}

bool
ckpt_pk_is_str(const struct pk_node *n, const char *s)
{
	return n && (n->kind == PK_STR || n->kind == PK_BYTES) &&
	    n->len == strlen(s) && !memcmp(n->s, s, n->len);
}

struct pk_node *
ckpt_pk_dict_get(const struct pk_node *d, const char *key)
{
	if (!d || d->kind != PK_DICT)
		return NULL;
	/* The last one wins, as in a Python dict. */
	for (size_t i = d->n; i-- > 0;)
		if (ckpt_pk_is_str(d->keys[i], key))
			return d->items[i];
	return NULL;
}

const char *
ckpt_pk_dict_str(const struct pk_node *d, const char *key, struct pk_node **val)
{
	struct pk_node *v = ckpt_pk_dict_get(d, key);

	if (val)
		*val = v;
	return v && v->kind == PK_STR ? v->s : NULL;
}

struct pk_node *
ckpt_pk_object_state(const struct pk_node *o)
{
	struct pk_node *s = o ? o->state : NULL;

	if (s && s->kind == PK_TUPLE && s->n == 2 && s->items[0]->kind ==
	    PK_DICT)
		return s->items[0];
	return s;
}

static int
arg_error(struct parser *ps, const char *fn, unsigned i, const char *want)
{
	return bad(ps, "argument %u of %s is not %s", i, fn, want);
}

/* size/stride tuple of non-negative ints. */
static int
dims(struct parser *ps, const char *fn, unsigned i, struct pk_node *n,
    unsigned *ndim, uint64_t **out, bool is_stride)
{
	uint64_t *v;

	if (!is_seq(n) || n->n > CKPT_MAX_DIMS)
		return arg_error(ps, fn, i, "a tuple of at most 64 ints");
	v = pk_alloc(ps->p, (n->n ? n->n : 1) * sizeof(*v), ps->err);
	if (!v)
		return ps->err ? ps->err->code : CKPT_ERR_NOMEM;
	for (size_t k = 0; k < n->n; k++) {
		if (!is_int(n->items[k]) || n->items[k]->i < 0)
			return arg_error(ps, fn, i, is_stride ?
			    "a tuple of non-negative strides" :
			    "a tuple of non-negative sizes");
		v[k] = (uint64_t)n->items[k]->i;
	}
	*ndim = (unsigned)n->n;
	*out = v;
	return CKPT_OK;
}

static bool
empty_hooks(const struct pk_node *h)
{
	return !h || h->kind == PK_NONE || (h->kind == PK_DICT && !h->n);
}

/* A new tensor node in *node at this opcode; its tensor, or NULL (ps->err). */
static struct pk_tensor *
new_tensor(struct parser *ps, struct pk_node **node)
{
	struct pk_tensor *x;

	*node = pk_new(ps->p, PK_TENSOR, (int64_t)ps->op_pos, ps->err);
	x = *node ? pk_alloc(ps->p, sizeof(*x), ps->err) : NULL;
	if (x)
		(*node)->u.tensor = x;
	return x;
}

/* _rebuild_tensor(_v2/_v3), _rebuild_qtensor. */
static int
rebuild_tensor(struct parser *ps, const char *fn, struct pk_node *a,
    int variant, struct pk_node **out)
{
	struct pk_node *t;
	struct pk_tensor *x;
	uint64_t *stride;
	unsigned nd, ns;
	size_t min = variant == 2 ? 6 : variant == 3 ? 7 : variant == 4 ?
	    7 : 4;
	int rc;

	if (a->n < min || a->n > min + 1)
		return bad(ps, "%s takes %zu arguments, not %zu", fn, min,
		    a->n);
	if (a->items[0]->kind != PK_STORAGE)
		return arg_error(ps, fn, 0, "a storage");
	if (!is_int(a->items[1]) || a->items[1]->i < 0)
		return arg_error(ps, fn, 1, "a non-negative storage offset");
	if (!(x = new_tensor(ps, &t)))
		return ps->err->code;
	x->storage = a->items[0]->u.storage;
	x->offset = (uint64_t)a->items[1]->i;
	if ((rc = dims(ps, fn, 2, a->items[2], &nd, &x->shape, false)) ||
	    (rc = dims(ps, fn, 3, a->items[3], &ns, &stride, true)))
		return rc;
	if (nd != ns)
		return bad(ps, "%s: size has %u dimensions, stride %u", fn,
		    nd, ns);
	x->ndim = nd;
	x->stride = (int64_t *)stride;
	x->dtype = x->storage->dtype;
	if (variant == 3) {
		struct pk_node *d = a->items[6];

		if (d->kind != PK_DTYPE)
			return arg_error(ps, fn, 6, "a torch dtype");
		if (d->i < 0)
			return bad(ps, "%s: dtype %s is not supported", fn,
			    d->s);
		x->dtype = (enum ckpt_dtype)d->i;
	} else if (x->storage->untyped) {
		return bad(ps, "%s on an untyped storage without a dtype",
		    fn);
	}
	if (variant == 4) {
		x->kind = "quantized";
		x->requires_grad = a->items[5]->kind == PK_BOOL &&
		    a->items[5]->i;
		if (!empty_hooks(a->items[6]))
			return bad(ps, "%s with backward hooks", fn);
	} else if (variant >= 2) {
		if (a->items[4]->kind != PK_BOOL)
			return arg_error(ps, fn, 4, "a bool");
		x->requires_grad = a->items[4]->i;
		if (!empty_hooks(a->items[5]))
			return bad(ps, "%s with backward hooks (code "
			    "references)", fn);
	}
	*out = t;
	return CKPT_OK;
}

static struct pk_node *
tensor_arg(struct pk_node *n)
{
	return n && n->kind == PK_TENSOR ? n : NULL;
}

static int interpret(struct parser *ps, struct pk_node *fn,
    struct pk_node *a, struct pk_node **out);
static struct pk_node *opaque(struct parser *ps, struct pk_node *cls,
    struct pk_node *args, const char *how);
static bool public_name(const struct pk_node *n);

/* bytes from _codecs.encode(str, "latin1"): each code point one byte. */
static struct pk_node *
latin1(struct parser *ps, struct pk_node *s)
{
	unsigned char *o = pk_alloc(ps->p, s->len + 1, ps->err);
	const unsigned char *in = (const unsigned char *)s->s;
	size_t n = 0;
	struct pk_node *b;

	if (!o)
		return NULL;
	for (size_t i = 0; i < s->len; i++) {
		if (in[i] < 0x80) {
			o[n++] = in[i];
		} else if ((in[i] & 0xe0) == 0xc0 && i + 1 < s->len) {
			o[n++] = (unsigned char)(((in[i] & 0x1f) << 6) |
			    (in[i + 1] & 0x3f));
			i++;
		} else {
			bad(ps, "_codecs.encode of a character beyond "
			    "latin-1");
			return NULL;
		}
	}
	b = pk_new(ps->p, PK_BYTES, (int64_t)ps->op_pos, ps->err);
	if (b) {
		b->s = (const char *)o;
		b->len = n;
		b->i = -1;	/* not a slice of the stream */
	}
	return b;
}

static bool
is_pickle_bytes(const struct pk_node *b)
{
	return b->len >= 4 && (unsigned char)b->s[0] == 0x80 &&
	    b->s[1] >= 2 && b->s[1] <= 5 && b->s[b->len - 1] == '.';
}

static int
interpret(struct parser *ps, struct pk_node *fn, struct pk_node *a,
    struct pk_node **out)
{
	const char *name = fn->s;
	struct pk_node *r = NULL;
	int rc;

	if (a->kind != PK_TUPLE)
		return bad(ps, "REDUCE arguments of %s are not a tuple", name);
	if (!strcmp(name, "collections.OrderedDict") ||
	    !strcmp(name, "collections.Counter")) {
		r = pk_new(ps->p, PK_DICT, (int64_t)ps->op_pos, ps->err);
		if (!r)
			return ps->err->code;
		r->ordered = true;
		if (a->n == 1 && a->items[0]->kind == PK_DICT) {
			for (size_t i = 0; i < a->items[0]->n; i++)
				if ((rc = pk_push_item(ps->p, r,
				    a->items[0]->keys[i], a->items[0]->items[i],
				    ps->err)))
					return rc;
		} else if (a->n == 1 && is_seq(a->items[0])) {
			for (size_t i = 0; i < a->items[0]->n; i++) {
				struct pk_node *kv = a->items[0]->items[i];

				if (!is_seq(kv) || kv->n != 2)
					return bad(ps, "%s of a non-pair",
					    name);
				if ((rc = pk_push_item(ps->p, r, kv->items[0],
				    kv->items[1], ps->err)))
					return rc;
			}
		} else if (a->n) {
			return bad(ps, "%s with unexpected arguments", name);
		}
	} else if (!strcmp(name, "builtins.set") ||
	    !strcmp(name, "builtins.frozenset")) {
		r = pk_new(ps->p, PK_SET, (int64_t)ps->op_pos, ps->err);
		if (!r)
			return ps->err->code;
		if (a->n == 1 && is_seq(a->items[0])) {
			for (size_t i = 0; i < a->items[0]->n; i++)
				if ((rc = pk_push_item(ps->p, r, NULL,
				    a->items[0]->items[i], ps->err)))
					return rc;
		} else if (a->n) {
			return bad(ps, "%s of a non-list", name);
		}
	} else if (!strcmp(name, "builtins.bytearray")) {
		if (a->n == 1 && a->items[0]->kind == PK_BYTES)
			r = a->items[0];
		else if (!a->n)
			r = new_str(ps, PK_BYTES, "", 0);
		else
			return bad(ps, "%s with unexpected arguments", name);
	} else if (!strcmp(name, "builtins.complex")) {
		r = pk_new(ps->p, PK_COMPLEX, (int64_t)ps->op_pos, ps->err);
		if (!r)
			return ps->err->code;
		for (size_t i = 0; i < a->n && i < 2; i++) {
			struct pk_node *v = a->items[i];
			double d = v->kind == PK_FLOAT ? v->d :
			    is_int(v) ? (double)v->i : NAN;

			if (v->kind != PK_FLOAT && !is_int(v))
				return bad(ps, "%s of a non-number", name);
			if (i)
				r->u.d2 = d;
			else
				r->d = d;
		}
	} else if (!strcmp(name, "_codecs.encode")) {
		if (a->n < 1 || a->items[0]->kind != PK_STR ||
		    (a->n == 2 && !ckpt_pk_is_str(a->items[1], "latin1") &&
		    !ckpt_pk_is_str(a->items[1], "latin-1")) || a->n > 2)
			return bad(ps, "%s with unexpected arguments", name);
		r = latin1(ps, a->items[0]);
		if (r && is_pickle_bytes(r) && first_report(ps,
		    "pickle-nested", "bytes"))
			ckpt_file_add_finding(ps->f, "pickle-nested",
			    CKPT_SEV_WARNING, ps->o->what,
			    abs_off(ps, ps->op_pos), "%s: a bytes value at "
			    "offset %zu holds another pickle", what(ps),
			    ps->op_pos);
	} else if (!strcmp(name, "torch.Size")) {
		if (a->n != 1 || !is_seq(a->items[0]))
			return bad(ps, "%s of a non-tuple", name);
		r = a->items[0];
	} else if (!strcmp(name, "torch.device")) {
		char buf[128];

		if (a->n < 1 || a->n > 2 || a->items[0]->kind != PK_STR ||
		    a->items[0]->len > 64 || (a->n == 2 &&
		    !is_int(a->items[1]) && a->items[1]->kind != PK_NONE))
			return bad(ps, "%s with unexpected arguments", name);
		if (a->n == 2 && is_int(a->items[1]))
			snprintf(buf, sizeof(buf), "%.*s:%lld",
			    (int)a->items[0]->len, a->items[0]->s,
			    (long long)a->items[1]->i);
		else
			snprintf(buf, sizeof(buf), "%.*s",
			    (int)a->items[0]->len, a->items[0]->s);
		r = new_str(ps, PK_STR, pk_strndup(ps->p, buf, strlen(buf),
		    ps->err), strlen(buf));
	} else if (!strcmp(name, "torch.serialization._get_layout")) {
		if (a->n != 1 || a->items[0]->kind != PK_STR)
			return bad(ps, "%s with unexpected arguments", name);
		r = a->items[0];
	} else if (!strcmp(name, "torch._utils._rebuild_tensor")) {
		return rebuild_tensor(ps, name, a, 1, out);
	} else if (!strcmp(name, "torch._utils._rebuild_tensor_v2")) {
		return rebuild_tensor(ps, name, a, 2, out);
	} else if (!strcmp(name, "torch._utils._rebuild_tensor_v3")) {
		return rebuild_tensor(ps, name, a, 3, out);
	} else if (!strcmp(name, "torch._utils._rebuild_qtensor")) {
		return rebuild_tensor(ps, name, a, 4, out);
	} else if (!strcmp(name, "torch._utils._rebuild_parameter") ||
	    !strcmp(name, "torch._utils._rebuild_parameter_with_state")) {
		bool st = strlen(name) > 32;

		if (a->n != (st ? 4u : 3u) || !(r = tensor_arg(a->items[0])))
			return bad(ps, "%s with unexpected arguments", name);
		if (!empty_hooks(a->items[2]))
			return bad(ps, "%s with backward hooks (code "
			    "references)", name);
		r->u.tensor->requires_grad = a->items[1]->kind == PK_BOOL &&
		    a->items[1]->i;
		if (st)
			r->state = a->items[3];
	} else if (!strcmp(name, "torch._utils._rebuild_sparse_tensor")) {
		struct pk_tensor *x;

		if (a->n != 2 || a->items[0]->kind != PK_STR ||
		    !is_seq(a->items[1]))
			return bad(ps, "%s with unexpected arguments", name);
		if (!(x = new_tensor(ps, &r)))
			return ps->err->code;
		x->kind = "sparse";
		x->layout = pk_strndup(ps->p, a->items[0]->s, a->items[0]->len,
		    ps->err);
		x->parts = a->items[1];
	} else if (!strcmp(name,
	    "torch._utils._rebuild_meta_tensor_no_storage")) {
		struct pk_tensor *x;
		uint64_t *stride;
		unsigned nd, ns;

		if (a->n != 4 || a->items[0]->kind != PK_DTYPE ||
		    a->items[0]->i < 0)
			return bad(ps, "%s with unexpected arguments", name);
		if (!(x = new_tensor(ps, &r)))
			return ps->err->code;
		x->kind = "meta";
		x->dtype = (enum ckpt_dtype)a->items[0]->i;
		if ((rc = dims(ps, name, 1, a->items[1], &nd, &x->shape,
		    false)) || (rc = dims(ps, name, 2, a->items[2], &ns,
		    &stride, true)))
			return rc;
		if (nd != ns)
			return bad(ps, "%s: size and stride differ", name);
		x->ndim = nd;
		x->stride = (int64_t *)stride;
	} else if (!strcmp(name, "torch._tensor._rebuild_from_type_v2")) {
		struct pk_node *f2 = a->n == 4 ? a->items[0] : NULL;

		if (!f2 || f2->kind != PK_GLOBAL || !f2->allowed ||
		    a->items[2]->kind != PK_TUPLE)
			return bad(ps, "%s with unexpected arguments", name);
		if (!strcmp(f2->s, name))
			return bad(ps, "%s calling itself", name);
		if ((rc = interpret(ps, f2, a->items[2], &r)))
			return rc;
		if (r->kind == PK_TENSOR && a->items[3]->kind == PK_DICT &&
		    a->items[3]->n)
			r->state = a->items[3];
	} else if (!strcmp(name,
	    "torch._utils._rebuild_device_tensor_from_cpu_tensor")) {
		if (a->n != 4 || !(r = tensor_arg(a->items[0])))
			return bad(ps, "%s with unexpected arguments", name);
	} else if (!strcmp(name,
	    "torch._utils._rebuild_device_tensor_from_numpy") ||
	    !strcmp(name, "torch._utils._rebuild_xla_tensor")) {
		struct pk_node *nd = a->n == 4 ? a->items[0] : NULL;
		struct pk_storage *s;
		struct pk_tensor *x;

		if (!nd || nd->kind != PK_NDARRAY || a->items[1]->kind !=
		    PK_DTYPE || a->items[1]->i < 0 || nd->u.nd->object ||
		    nd->u.nd->data_pos < 0)
			return bad(ps, "%s with unexpected arguments", name);
		s = pk_alloc(ps->p, sizeof(*s), ps->err);
		x = s ? new_tensor(ps, &r) : NULL;
		if (!x)
			return ps->err->code;
		s->dtype = (enum ckpt_dtype)a->items[1]->i;
		s->nbytes = nd->u.nd->nbytes;
		if (ps->o->base >= 0) {
			s->data_offset = (uint64_t)(ps->o->base +
			    nd->u.nd->data_pos);
			s->sized = s->resolved = true;
		}
		s->numel = ckpt_dtype_bits(s->dtype) >= 8 ? s->nbytes /
		    (ckpt_dtype_bits(s->dtype) / 8) : 0;
		x->storage = s;
		x->dtype = s->dtype;
		x->kind = "numpy";
		x->ndim = nd->u.nd->ndim;
		x->shape = pk_alloc(ps->p, sizeof(uint64_t) * (x->ndim + 1),
		    ps->err);
		x->stride = pk_alloc(ps->p, sizeof(int64_t) * (x->ndim + 1),
		    ps->err);
		if (!x->shape || !x->stride)
			return ps->err->code;
		memcpy(x->shape, nd->u.nd->shape, sizeof(uint64_t) * x->ndim);
		for (unsigned d = x->ndim, acc = 1; d-- > 0;) {
			x->stride[d] = acc;
			acc *= (unsigned)x->shape[d];
		}
	} else if (!strcmp(name, "numpy.core.multiarray._reconstruct") ||
	    !strcmp(name, "numpy._core.multiarray._reconstruct")) {
		r = pk_new(ps->p, PK_NDARRAY, (int64_t)ps->op_pos, ps->err);
		if (!r || !(r->u.nd = pk_alloc(ps->p, sizeof(*r->u.nd),
		    ps->err)))
			return ps->err->code;
		r->u.nd->data_pos = -1;
	} else if (!strcmp(name, "numpy.dtype")) {
		if (a->n < 1 || a->items[0]->kind != PK_STR ||
		    a->items[0]->len > 16)
			return bad(ps, "%s with unexpected arguments", name);
		r = pk_new(ps->p, PK_NPDTYPE, (int64_t)ps->op_pos, ps->err);
		if (!r)
			return ps->err->code;
		r->s = a->items[0]->s;
		r->len = a->items[0]->len;
		r->i = '|';
	} else if (!strcmp(name, "numpy.core.multiarray.scalar") ||
	    !strcmp(name, "numpy._core.multiarray.scalar")) {
		if (a->n != 2 || a->items[0]->kind != PK_NPDTYPE ||
		    (a->items[1]->kind != PK_BYTES &&
		    a->items[1]->kind != PK_STR))
			return bad(ps, "%s with unexpected arguments", name);
		r = pk_new(ps->p, PK_NPSCALAR, (int64_t)ps->op_pos, ps->err);
		if (!r)
			return ps->err->code;
		r->cls = a->items[0];
		r->s = a->items[1]->s;
		r->len = a->items[1]->len;
	} else if (!strcmp(name, "builtins.getattr")) {
		/* only getattr(<DCP enum class>, "MEMBER"): a name; or a
		 * member of an enum class the caller allowed: an instance */
		bool pair = a->n == 2 && a->items[0]->kind == PK_GLOBAL &&
		    a->items[0]->allowed && a->items[1]->kind == PK_STR;
		bool dcp = pair && strstr(a->items[0]->s,
		    "MEM_FORMAT_ENCODING");
		bool member = pair && a->items[0]->user &&
		    public_name(a->items[1]);

		if (!dcp && !member) {
			r = opaque(ps, fn, a, "REDUCE");
			if (!r)
				return ps->err->code;
			*out = r;
			return CKPT_OK;
		}
		if (dcp) {
			r = a->items[1];
		} else {
			r = pk_new(ps->p, PK_OBJECT, (int64_t)ps->op_pos,
			    ps->err);
			if (!r)
				return ps->err->code;
			r->cls = a->items[0];
			r->args = a;
			r->allowed = true;
		}
	} else if (strstr(name, "_MEM_FORMAT_ENCODING") ||
	    strstr(name, "MEM_FORMAT_ENCODING")) {
		if (a->n != 1 || !is_int(a->items[0]))
			return bad(ps, "%s with unexpected arguments", name);
		r = a->items[0];
	} else {
		/* allowed but not data we interpret (torch.Tensor, a DCP
		 * class called directly, ...): a symbolic instance */
		r = pk_new(ps->p, PK_OBJECT, (int64_t)ps->op_pos, ps->err);
		if (!r)
			return ps->err->code;
		r->cls = fn;
		r->args = a;
		r->allowed = true;
	}
	if (!r)
		return ps->err && ps->err->code ? ps->err->code :
		    CKPT_ERR_NOMEM;
	/* a node made by an earlier opcode (torch.Size's tuple, an
	 * argument passed through) is now referenced twice */
	if (r->pos != (int64_t)ps->op_pos)
		r->pinned = 1;
	*out = r;
	return CKPT_OK;
}

/* An attribute name getattr may fetch: an identifier, no underscore
 * first (which keeps __globals__, __init__ and the like out). */
static bool
public_name(const struct pk_node *n)
{
	if (!n->len || n->len > 256 || n->s[0] == '_' ||
	    (n->s[0] >= '0' && n->s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n->len; i++) {
		char c = n->s[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* An opaque instance of a callable that is not interpreted. */
static struct pk_node *
opaque(struct parser *ps, struct pk_node *cls, struct pk_node *args,
    const char *how)
{
	struct pk_node *o = pk_new(ps->p, PK_OBJECT, (int64_t)ps->op_pos,
	    ps->err);
	const char *name = cls && (cls->kind == PK_GLOBAL ||
	    cls->kind == PK_DTYPE) ? cls->s : "a non-global callable";

	if (!o)
		return NULL;
	o->cls = cls;
	o->args = args;
	if (how && !ts_class(ps, name) && first_report(ps, "unsafe-call",
	    name))
		ckpt_file_add_finding(ps->f, "unsafe-call", CKPT_SEV_ERROR,
		    name, abs_off(ps, ps->op_pos), "%s: %s of %s at offset "
		    "%zu would call it; not executed", what(ps), how, name,
		    ps->op_pos);
	return o;
}

/* ------------------------------------------------------------------ */
/* Persistent ids: torch storages                                      */
/* ------------------------------------------------------------------ */

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct pk_storage *
storage_find(struct parser *ps, const char *key)
{
	size_t h;

	if (!ps->scap)
		return NULL;
	for (h = hash_str(key) & (ps->scap - 1); ps->skeys[h];
	    h = (h + 1) & (ps->scap - 1)) {
		struct pk_storage *s = ps->p->storages[ps->skeys[h] - 1];

		if (!strcmp(s->key, key))
			return s;
	}
	return NULL;
}

static int
storage_add(struct parser *ps, struct pk_storage *s)
{
	struct ckpt_pickle *p = ps->p;
	size_t h;

	if ((p->nstorages + 1) * 2 > ps->scap) {
		size_t cap = ps->scap ? 2 * ps->scap : 64;
		uint32_t *k = calloc(cap, sizeof(*k));
		struct pk_storage **v;

		if (!k)
			return ckpt_error_nomem(ps->err);
		v = reallocarray(p->storages, cap, sizeof(*v));
		if (!v) {
			free(k);
			return ckpt_error_nomem(ps->err);
		}
		p->storages = v;
		for (size_t i = 0; i < p->nstorages; i++) {
			h = hash_str(v[i]->key) & (cap - 1);
			while (k[h])
				h = (h + 1) & (cap - 1);
			k[h] = (uint32_t)i + 1;
		}
		free(ps->skeys);
		ps->skeys = k;
		ps->scap = cap;
	}
	p->storages[p->nstorages] = s;
	h = hash_str(s->key) & (ps->scap - 1);
	while (ps->skeys[h])
		h = (h + 1) & (ps->scap - 1);
	ps->skeys[h] = (uint32_t)++p->nstorages;
	return CKPT_OK;
}

static int
persistent(struct parser *ps, struct pk_node *pid, struct pk_node **out)
{
	size_t want = ps->o->flags & PK_LEGACY ? 6 : 5;
	struct pk_node *t, *n;
	struct pk_storage *s, *o;
	char key[128];
	bool untyped;
	int dt;

	if (pid->kind != PK_TUPLE || !pid->n)
		return bad(ps, "persistent id is not a tuple");
	if (!ckpt_pk_is_str(pid->items[0], "storage")) {
		unsafe_op(ps, 'Q', pid->items[0]->kind == PK_STR ?
		    "a non-storage persistent id" : NULL);
		*out = opaque(ps, NULL, pid, NULL);
		return *out ? CKPT_OK : ps->err->code;
	}
	if (pid->n != want)
		return bad(ps, "storage persistent id has %zu fields, not %zu",
		    pid->n, want);
	t = pid->items[1];
	if ((t->kind != PK_GLOBAL && t->kind != PK_DTYPE) ||
	    (dt = storage_dtype(t->s, &untyped)) < 0)
		return bad(ps, "persistent id names storage type %s",
		    t->kind == PK_GLOBAL ? t->s : "(not a global)");
	if ((pid->items[2]->kind != PK_STR && pid->items[2]->kind !=
	    PK_BYTES) || !pid->items[2]->len || pid->items[2]->len >= 
	    sizeof(key) || memchr(pid->items[2]->s, '\0', pid->items[2]->len))
		return bad(ps, "storage key is not a short string");
	if (pid->items[3]->kind != PK_STR || pid->items[3]->len > 64)
		return bad(ps, "storage location is not a short string");
	if (!is_int(pid->items[4]) || pid->items[4]->i < 0)
		return bad(ps, "storage size is not a non-negative int");
	if (want == 6 && pid->items[5]->kind != PK_NONE)
		return bad(ps, "legacy storage views are not supported");
	memcpy(key, pid->items[2]->s, pid->items[2]->len);
	key[pid->items[2]->len] = '\0';
	if ((o = storage_find(ps, key))) {
		if (o->dtype != (enum ckpt_dtype)dt || o->untyped != untyped ||
		    o->numel != (uint64_t)pid->items[4]->i)
			ckpt_file_add_finding(ps->f, "torch-storage-conflict",
			    CKPT_SEV_ERROR, key, abs_off(ps, ps->op_pos),
			    "%s: storage '%s' is declared again at offset %zu "
			    "with another type or size", what(ps), key,
			    ps->op_pos);
		/* a node of its own (the first may have been given back),
		 * dated as the first */
		n = pk_new(ps->p, PK_STORAGE, o->pos - (ps->o->base >= 0 ?
		    ps->o->base : 0), ps->err);
		if (!n)
			return ps->err->code;
		n->u.storage = o;
		*out = n;
		return CKPT_OK;
	}
	n = pk_new(ps->p, PK_STORAGE, (int64_t)ps->op_pos, ps->err);
	s = n ? pk_alloc(ps->p, sizeof(*s), ps->err) : NULL;
	if (!s)
		return ps->err->code;
	n->u.storage = s;
	s->key = pk_strndup(ps->p, key, strlen(key), ps->err);
	if (!s->key)
		return ps->err->code;
	s->dtype = (enum ckpt_dtype)dt;
	s->untyped = untyped;
	s->numel = (uint64_t)pid->items[4]->i;
	s->pos = abs_off(ps, ps->op_pos);
	*out = n;
	return storage_add(ps, s);
}

/* ------------------------------------------------------------------ */
/* BUILD                                                               */
/* ------------------------------------------------------------------ */

static int
build_ndarray(struct parser *ps, struct pk_node *o, struct pk_node *st)
{
	struct pk_ndarray *nd = o->u.nd;
	struct pk_node *shape, *dt, *data;
	uint64_t numel = 1, isz;
	const char *t;

	/* (version, shape, dtype, is_fortran, data) */
	if (st->kind != PK_TUPLE || st->n != 5 || !is_seq(st->items[1]) ||
	    st->items[2]->kind != PK_NPDTYPE ||
	    st->items[1]->n > CKPT_MAX_DIMS)
		return bad(ps, "numpy array state is not (version, shape, "
		    "dtype, fortran, data)");
	shape = st->items[1];
	dt = st->items[2];
	data = st->items[4];
	nd->ndim = (unsigned)shape->n;
	for (size_t i = 0; i < shape->n; i++) {
		if (!is_int(shape->items[i]) || shape->items[i]->i < 0 ||
		    !ckpt_mul_u64(numel, (uint64_t)shape->items[i]->i, &numel))
			return bad(ps, "numpy array shape is not valid");
		nd->shape[i] = (uint64_t)shape->items[i]->i;
	}
	snprintf(nd->dtype, sizeof(nd->dtype), "%c%.*s", (int)dt->i,
	    (int)dt->len, dt->s);
	t = dt->s;
	if (dt->len && t[0] == 'O') {
		nd->object = true;
		if (data->kind != PK_LIST)
			return bad(ps, "numpy object array without a list");
		o->state = data;
		return CKPT_OK;
	}
	if (data->kind != PK_BYTES && data->kind != PK_STR)
		return bad(ps, "numpy array data is not bytes");
	/* itemsize: the digits after the kind letter ("u4", "f8", "b1") */
	isz = dt->len > 1 ? strtoull(t + 1, NULL, 10) : 0;
	if (dt->len > 1 && isz && (!ckpt_mul_u64(numel, isz, &numel) ||
	    numel != data->len))
		return bad(ps, "numpy array of %s has %zu bytes of data, not "
		    "%llu", nd->dtype, data->len, (unsigned long long)numel);
	nd->nbytes = data->len;
	nd->data_pos = data->kind == PK_BYTES && data->i >= 0 ? data->i : -1;
	o->state = data;
	return CKPT_OK;
}

static int
build(struct parser *ps, struct pk_node *o, struct pk_node *st)
{
	switch (o->kind) {
	case PK_DICT:
		/* OrderedDict.__dict__.update: state_dict()'s _metadata */
		if (st->kind != PK_DICT && !(st->kind == PK_TUPLE &&
		    st->n == 2))
			return bad(ps, "BUILD of an OrderedDict with a "
			    "non-dict state");
		o->state = st;
		return CKPT_OK;
	case PK_TENSOR:
	case PK_OBJECT:
		o->state = st;
		return CKPT_OK;
	case PK_NDARRAY:
		return build_ndarray(ps, o, st);
	case PK_NPDTYPE:
		/* (version, byteorder, subarray, names, fields, elsize,
		 * alignment, flags) */
		if (st->kind != PK_TUPLE || st->n < 2 ||
		    st->items[1]->kind != PK_STR || st->items[1]->len != 1)
			return bad(ps, "numpy dtype state is not valid");
		o->i = st->items[1]->s[0];
		return CKPT_OK;
	default:
		return bad(ps, "BUILD on a value that has no state");
	}
}

/* ------------------------------------------------------------------ */
/* The machine                                                         */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Giving back what a torch rebuild call leaves behind                 */
/* ------------------------------------------------------------------ */

/*
 * A node popped from the stack is referenced only by the slot it came
 * from, or the one container that took it, unless it is pinned: every
 * other way to reach a node twice (a memo entry some GET reads, DUP, an
 * interpreted call returning one of its arguments, Parameter) pins it.
 * Shared leaves (None, bools, small ints) are never given back.
 */
static bool
releasable(const struct pk_node *n, enum pk_kind kind)
{
	if (!n || n->pinned || n->kind != kind)
		return false;
	if (kind == PK_INT)
		return n->i < PK_INTERN_MIN || n->i > PK_INTERN_MAX;
	return kind == PK_STR || kind == PK_TUPLE || kind == PK_DICT ||
	    kind == PK_STORAGE;
}

/* A node and its item arrays (not the items). */
static void
release_node(struct ckpt_pickle *p, struct pk_node *n)
{
	if (n->owned)	/* not counted: the stream's bytes never were */
		spare_put(p, (void *)n->s, n->len + 1, false);
	if (n->cap) {
		pk_release(p, n->items, n->cap * sizeof(*n->items));
		if (n->kind == PK_DICT)
			pk_release(p, n->keys, n->cap * sizeof(*n->keys));
	}
	pk_release(p, n, sizeof(*n));
}

static void
release_if(struct ckpt_pickle *p, struct pk_node *n, enum pk_kind kind)
{
	if (releasable(n, kind))
		release_node(p, n);
}

/* A size or stride tuple, and its ints that are nodes of their own. */
static void
release_dims(struct ckpt_pickle *p, struct pk_node *t)
{
	if (!releasable(t, PK_TUPLE))
		return;
	for (size_t i = 0; i < t->n; i++)
		release_if(p, t->items[i], PK_INT);
	release_node(p, t);
}

/* Backward hooks: an empty OrderedDict() without state. */
static void
release_hooks(struct ckpt_pickle *p, struct pk_node *d)
{
	if (releasable(d, PK_DICT) && !d->n && !d->state && !d->extra)
		release_node(p, d);
}

/*
 * After a call interpreted at the top of REDUCE/NEWOBJ succeeded: the
 * argument tuple of a tensor rebuild (the tensor copied what it needs:
 * storage record, offset, size, stride, dtype, flags), of a Parameter
 * rebuild (the tensor is the result) and of an empty OrderedDict() is
 * referenced by nothing when unpinned.  Calls nested inside another
 * (_rebuild_from_type_v2) are left alone: their arguments belong to the
 * outer tuple.
 */
static void
release_call_args(struct parser *ps, const char *fn, struct pk_node *a)
{
	static const char *const rebuilds[] = {
		"torch._utils._rebuild_tensor",
		"torch._utils._rebuild_tensor_v2",
		"torch._utils._rebuild_tensor_v3",
	};
	struct ckpt_pickle *p = ps->p;
	size_t hooks = 0;

	if (!releasable(a, PK_TUPLE))
		return;
	if (in_list(fn, rebuilds, sizeof(rebuilds) / sizeof(*rebuilds))) {
		/* the tensor points at the storage's record, which
		 * p->storages keeps, not at its node */
		release_if(p, a->items[0], PK_STORAGE);
		release_if(p, a->items[1], PK_INT);
		release_dims(p, a->items[2]);
		release_dims(p, a->items[3]);
		hooks = strcmp(fn, "torch._utils._rebuild_tensor") ? 5 : 0;
	} else if (!strcmp(fn, "torch._utils._rebuild_parameter")) {
		hooks = 2;
	} else if (strcmp(fn, "collections.OrderedDict") || a->n) {
		return;
	}
	if (hooks && hooks < a->n)
		release_hooks(p, a->items[hooks]);
	release_node(p, a);
}

/* A storage's persistent id: the storage copied its key and location. */
static void
release_persistent_id(struct ckpt_pickle *p, struct pk_node *pid)
{
	if (!releasable(pid, PK_TUPLE))
		return;
	for (size_t i = 0; i < pid->n; i++)
		if (releasable(pid->items[i], PK_STR) ||
		    releasable(pid->items[i], PK_INT))
			release_node(p, pid->items[i]);
	release_node(p, pid);
}

static int
tuple_of(struct parser *ps, size_t base, enum pk_kind kind)
{
	struct pk_node *t = pk_new(ps->p, kind, (int64_t)ps->op_pos, ps->err);
	int rc;

	if (!t)
		return ps->err->code;
	/* a tuple never grows: exactly its size */
	if (ps->sp > base && (rc = pk_reserve(ps->p, t, ps->sp - base,
	    ps->err)))
		return rc;
	for (size_t i = base; i < ps->sp; i++)
		if ((rc = pk_push_item(ps->p, t, NULL, ps->stack[i], ps->err)))
			return rc;
	ps->sp = base;
	return push(ps, t);
}

/*
 * The direct path (pk_opts.take): a tensor set under a str key of the
 * root dict becomes a table entry at once and its nodes are given back,
 * so a state dict costs its table, not a tree.  The root dict is the
 * first one filled at the bottom of the stack with no MARK open;
 * whatever else happens (a value that is no fresh tensor, a key that is
 * not plain text or comes twice, the dict shared or not the root after
 * all) ends the path, and the caller parses again without it
 * (ckpt_pickle.direct_ok), so the result is the tree walk's exactly.
 */
static size_t utf8_next(const char *s, size_t n, const char **rep);
static uint32_t hash_bytes(const char *s, size_t n);

static bool
direct_candidate(const struct parser *ps, const struct pk_node *d)
{
	return d->kind == PK_DICT && ps->sp && ps->stack[0] == d &&
	    !ps->nmarks && !d->n && !d->pinned && ps->lim->max_depth >= 1;
}

/* UTF-8 that out_text writes unchanged (no NUL, nothing replaced). */
static bool
plain_text(const char *s, size_t n)
{
	const char *rep;
	size_t k;

	for (size_t i = 0; i < n; i += k) {
		k = 1;
		if ((unsigned char)s[i] - 0x20u < 0x5fu)
			continue;	/* printable ASCII */
		if (!(k = utf8_next(s + i, n - i, &rep)) || rep)
			return false;
	}
	return true;
}

/* Index + 1 of a name already taken equal to s[0, n), or 0 after
 * recording that p->direct[i] will be it. */
static size_t
direct_seen(struct parser *ps, const char *s, size_t n, size_t i)
{
	size_t h = hash_bytes(s, n) & (ps->dscap - 1);

	for (; ps->dslots[h]; h = (h + 1) & (ps->dscap - 1)) {
		const char *o = ps->p->direct[ps->dslots[h] - 1];

		if (!strncmp(o, s, n) && !o[n])
			return ps->dslots[h];
	}
	ps->dslots[h] = (uint32_t)i + 1;
	return 0;
}

/* Room for one more name in p->direct and its hash. */
static int
direct_room(struct parser *ps)
{
	struct ckpt_pickle *p = ps->p;

	if (p->ndirect == ps->dcap) {
		size_t cap = ps->dcap ? 2 * ps->dcap : 64;
		const char **v = reallocarray(p->direct, cap, sizeof(*v));

		if (!v)
			return ckpt_error_nomem(ps->err);
		p->direct = v;
		ps->dcap = cap;
	}
	if ((p->ndirect + 1) * 2 > ps->dscap) {
		size_t cap = ps->dscap ? 2 * ps->dscap : 128;
		uint32_t *k = calloc(cap, sizeof(*k));

		if (!k)
			return ckpt_error_nomem(ps->err);
		free(ps->dslots);
		ps->dslots = k;
		ps->dscap = cap;
		for (size_t i = 0; i < p->ndirect; i++) {
			size_t h = hash_bytes(p->direct[i],
			    strlen(p->direct[i])) & (cap - 1);

			while (k[h])
				h = (h + 1) & (cap - 1);
			k[h] = (uint32_t)i + 1;
		}
	}
	return CKPT_OK;
}

/* A tensor node the table took: it, its record and its dims go back
 * (the storage record stays with p->storages). */
static void
release_tensor(struct ckpt_pickle *p, struct pk_node *t)
{
	struct pk_tensor *x = t->u.tensor;
	size_t dims = (x->ndim ? x->ndim : 1) * sizeof(uint64_t);

	pk_release(p, x->shape, dims);
	pk_release(p, x->stride, dims);
	pk_release(p, x, sizeof(*x));
	release_node(p, t);
}

/* Offers the pair key: val to o->take; *taken says whether it took it. */
static int
direct_take(struct parser *ps, struct pk_node *key, struct pk_node *val,
    bool *taken)
{
	struct ckpt_pickle *p = ps->p;
	const struct pk_tensor *x = val->u.tensor;
	const char *kept = NULL;
	uint64_t held;
	int rc;

	*taken = false;
	if (key->kind != PK_STR || val->kind != PK_TENSOR || val->pinned ||
	    !x || x->parts || (x->kind && !strcmp(x->kind, "sparse")) ||
	    p->ndirect + 2 > ps->lim->max_walk ||
	    !plain_text(key->s, key->len))
		return CKPT_OK;
	if ((rc = direct_room(ps)))
		return rc;
	if (direct_seen(ps, key->s, key->len, p->ndirect))
		return CKPT_OK;	/* a key set twice: the walk reports it */
	/* the dict's item and key arrays, as pk_push_item would have
	 * grown them: the same memory limit either way */
	if (p->ndirect == ps->vcap) {
		size_t cap = ps->vcap ? 2 * ps->vcap : 4;

		if ((rc = account(p, cap * 2 * sizeof(struct pk_node *),
		    ps->err)))
			return rc;
		ps->vcap = cap;
	}
	if ((rc = ps->o->take(ps->o->take_ctx, key->s, key->len, val, &kept,
	    ps->err)))
		return rc;
	if (!kept)
		return CKPT_OK;
	p->direct[p->ndirect++] = kept;
	/* the tree would have kept these nodes: so does the account */
	held = p->allocated;
	release_if(p, key, PK_STR);
	release_tensor(p, val);
	p->allocated = held;
	*taken = true;
	return CKPT_OK;
}

/* Takes the pairs at stack[*from...] that the direct path can, from the
 * first; *from is then the first pair left to the dict. */
static int
direct_items(struct parser *ps, struct pk_node *d, size_t *from)
{
	bool taken = true;
	int rc;

	if (ps->direct_failed || d->kind != PK_DICT)
		return CKPT_OK;
	if (!ps->direct_dict) {
		if (!direct_candidate(ps, d))
			return CKPT_OK;
		ps->direct_dict = d;
	} else if (d != ps->direct_dict) {
		return CKPT_OK;
	} else if (!direct_candidate(ps, d)) {
		ps->direct_failed = true;
		return CKPT_OK;
	}
	for (; *from < ps->sp && taken; *from += 2) {
		if ((rc = direct_take(ps, ps->stack[*from],
		    ps->stack[*from + 1], &taken)))
			return rc;
		if (!taken) {
			ps->direct_failed = true;
			return CKPT_OK;
		}
	}
	return CKPT_OK;
}

/*
 * Where SETITEMS or APPENDS put their items: n itself, or for a dict or
 * list subclass being filled (an object) the container of kind its items
 * are data in, made on first use.  NULL only when that fails (ps->err).
 */
static struct pk_node *
items_of(struct parser *ps, struct pk_node *n, enum pk_kind kind)
{
	if (n->kind != PK_OBJECT)
		return n;
	if (!n->extra)
		n->extra = pk_new(ps->p, kind, (int64_t)ps->op_pos, ps->err);
	return n->extra;
}

static int
set_items(struct parser *ps, struct pk_node *d, size_t from)
{
	size_t base = from;
	int rc;

	if ((ps->sp - from) % 2)
		return bad(ps, "SETITEMS with an odd number of values");
	if (!(d = items_of(ps, d, PK_DICT)))
		return ps->err->code;
	if (d->kind != PK_DICT)
		return bad(ps, "SETITEM on a value that is not a dict");
	if (ps->o->take && (rc = direct_items(ps, d, &from)))
		return rc;
	for (size_t i = from; i < ps->sp; i += 2)
		if ((rc = pk_push_item(ps->p, d, ps->stack[i],
		    ps->stack[i + 1], ps->err)))
			return rc;
	ps->sp = base;
	return CKPT_OK;
}

static int
append_items(struct parser *ps, struct pk_node *l, size_t from)
{
	int rc;

	if (!(l = items_of(ps, l, PK_LIST)))
		return ps->err->code;
	if (l->kind != PK_LIST)
		return bad(ps, "APPEND on a value that is not a list");
	for (size_t i = from; i < ps->sp; i++)
		if ((rc = pk_push_item(ps->p, l, NULL, ps->stack[i], ps->err)))
			return rc;
	ps->sp = from;
	return CKPT_OK;
}

static int
text_int(struct parser *ps, const char *s, size_t n, bool is_long,
    struct pk_node **out)
{
	char buf[64];
	char *end;
	long long v;

	if (is_long && n && s[n - 1] == 'L')
		n--;
	if (!n || n >= sizeof(buf)) {
		if (n && n <= 4096) {
			*out = new_str(ps, PK_BIGINT, s, n);
			if (*out)
				(*out)->i = 1;	/* decimal text */
			return *out ? CKPT_OK : ps->err->code;
		}
		return bad(ps, "integer text of %zu bytes", n);
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!is_long && (!strcmp(buf, "00") || !strcmp(buf, "01"))) {
		*out = pk_leaf(ps->p, PK_BOOL, buf[1] == '1',
		    (int64_t)ps->op_pos, ps->err);
		return *out ? CKPT_OK : ps->err->code;
	}
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (*end || end == buf) {
		return bad(ps, "integer text is not a number");
	}
	if (errno == ERANGE) {
		*out = new_str(ps, PK_BIGINT, s, n);
		if (*out)
			(*out)->i = 1;
		return *out ? CKPT_OK : ps->err->code;
	}
	*out = new_int(ps, v);
	return *out ? CKPT_OK : ps->err->code;
}

/*
 * The memo key of GET and PUT (a decimal line) or of their binary forms
 * (a little-endian integer of width bytes).
 */
static int
memo_key(struct parser *ps, bool text, size_t width, uint64_t *k)
{
	const char *s;
	size_t len;
	int rc;

	if (text) {
		char buf[24];

		if ((rc = line(ps, 20, &s, &len)))
			return rc;
		memcpy(buf, s, len);
		buf[len] = '\0';
		*k = strtoull(buf, NULL, 10);
		return CKPT_OK;
	}
	if ((rc = need(ps, width)))
		return rc;
	*k = rdle(at(ps, ps->pos), width);
	ps->pos += width;
	return CKPT_OK;
}

static int
step(struct parser *ps, bool *stop)
{
	unsigned char op;
	struct pk_node *a, *b, *c, *n = NULL;
	const char *s, *s2;
	size_t len, len2, base = 0;
	int rc;

	ps->op_pos = ps->pos;
	if (ps->in_frame && ps->pos == ps->frame_end)
		ps->in_frame = false;
	if ((rc = need(ps, 1)))
		return rc;
	op = ps->op = *at(ps, ps->pos++);
	if (++ps->ops > ps->lim->max_ops)
		return limit(ps, "more than %llu opcodes",
		    (unsigned long long)ps->lim->max_ops);
	if (opnames[op] && !strict_op(op) && op != 'i' && op != 'o' &&
	    op != 0x92 && op != 0x82 && op != 0x83 && op != 0x84 &&
	    op != 'P' && op != 0x97 && op != 0x98 &&
	    (rc = compat(ps, op)))
		return rc;
	switch (op) {
	case 0x80:	/* PROTO */
		if ((rc = need(ps, 1)))
			return rc;
		ps->p->proto = *at(ps, ps->pos++);
		if (ps->p->proto > 5)
			return bad(ps, "unknown pickle protocol %d",
			    ps->p->proto);
		break;
	case 0x95:	/* FRAME */
		if ((rc = length_arg(ps, 8, false, &len)))
			return rc;
		if (ps->in_frame)
			return bad(ps, "FRAME inside a frame");
		ps->in_frame = len > 0;
		ps->frame_end = ps->pos + len;
		break;
	case '.':	/* STOP */
		if (ps->sp != 1 || ps->nmarks)
			return bad(ps, "STOP with %zu values and %zu marks on "
			    "the stack", ps->sp, ps->nmarks);
		ps->p->root = pop(ps);
		*stop = true;
		break;
	case '(':
		if (ps->nmarks >= ps->lim->max_marks)
			return limit(ps, "MARKs nested deeper than %zu",
			    ps->lim->max_marks);
		if (ps->nmarks == ps->marks_cap) {
			size_t cap = ps->marks_cap ? 2 * ps->marks_cap : 32;
			size_t *m;

			m = reallocarray(ps->marks, cap, sizeof(*m));
			if (!m)
				return ckpt_error_nomem(ps->err);
			ps->marks = m;
			ps->marks_cap = cap;
		}
		ps->marks[ps->nmarks++] = ps->sp;
		break;
	case '1':	/* POP_MARK */
		if ((rc = pop_mark(ps, &base)))
			return rc;
		ps->sp = base;
		break;
	case '0':	/* POP */
		if ((rc = need_stack(ps, 1)))
			return rc;
		ps->sp--;
		break;
	case '2':	/* DUP */
		if ((rc = need_stack(ps, 1)))
			return rc;
		ps->stack[ps->sp - 1]->pinned = 1;
		return push(ps, ps->stack[ps->sp - 1]);
	case 'N':
		return push(ps, pk_leaf(ps->p, PK_NONE, 0,
		    (int64_t)ps->op_pos, ps->err));
	case 0x88:
	case 0x89:
		return push(ps, pk_leaf(ps->p, PK_BOOL, op == 0x88,
		    (int64_t)ps->op_pos, ps->err));
	case 'J':
		if ((rc = need(ps, 4)))
			return rc;
		n = new_int(ps, (int32_t)(uint32_t)rdle(at(ps, ps->pos), 4));
		ps->pos += 4;
		return push(ps, n);
	case 'K':
	case 'M':
		len = op == 'K' ? 1 : 2;
		if ((rc = need(ps, len)))
			return rc;
		n = new_int(ps, (int64_t)rdle(at(ps, ps->pos), len));
		ps->pos += len;
		return push(ps, n);
	case 0x8a:	/* LONG1 */
	case 0x8b:	/* LONG4 */
		if ((rc = length_arg(ps, op == 0x8a ? 1 : 4, true, &len)))
			return rc;
		n = new_long(ps, at(ps, ps->pos), len);
		ps->pos += len;
		return push(ps, n);
	case 'I':
	case 'L':
		if ((rc = line(ps, 4096, &s, &len)) ||
		    (rc = text_int(ps, s, len, op == 'L', &n)))
			return rc;
		return push(ps, n);
	case 'F': {
		char buf[64];

		if ((rc = line(ps, 60, &s, &len)))
			return rc;
		memcpy(buf, s, len);
		buf[len] = '\0';
		n = pk_new(ps->p, PK_FLOAT, (int64_t)ps->op_pos, ps->err);
		if (n) {
			char *end;

			n->d = strtod(buf, &end);
			if (*end || end == buf)
				return bad(ps, "FLOAT text is not a number");
		}
		return push(ps, n);
	}
	case 'G': {
		uint64_t v;

		if ((rc = need(ps, 8)))
			return rc;
		v = 0;
		for (int i = 0; i < 8; i++)
			v = v << 8 | *at(ps, ps->pos + i);
		ps->pos += 8;
		n = pk_new(ps->p, PK_FLOAT, (int64_t)ps->op_pos, ps->err);
		if (n)
			memcpy(&n->d, &v, sizeof(v));
		return push(ps, n);
	}
	case 'X':	/* BINUNICODE */
	case 0x8c:	/* SHORT_BINUNICODE */
	case 0x8d:	/* BINUNICODE8 */
	case 'T':	/* BINSTRING */
	case 'U':	/* SHORT_BINSTRING */
	case 'B':	/* BINBYTES */
	case 'C':	/* SHORT_BINBYTES */
	case 0x8e:	/* BINBYTES8 */
	case 0x96:	/* BYTEARRAY8 */
		len2 = op == 0x8c || op == 'U' || op == 'C' ? 1 :
		    op == 0x8d || op == 0x8e || op == 0x96 ? 8 : 4;
		if ((rc = length_arg(ps, len2, op == 'T', &len)))
			return rc;
		n = new_str(ps, op == 'B' || op == 'C' || op == 0x8e ||
		    op == 0x96 ? PK_BYTES : PK_STR,
		    (const char *)at(ps, ps->pos), len);
		ps->pos += len;
		if (n && n->kind == PK_BYTES && is_pickle_bytes(n) &&
		    first_report(ps, "pickle-nested", "bytes"))
			ckpt_file_add_finding(ps->f, "pickle-nested",
			    CKPT_SEV_WARNING, ps->o->what,
			    abs_off(ps, ps->op_pos), "%s: a bytes value at "
			    "offset %zu holds another pickle", what(ps),
			    ps->op_pos);
		return push(ps, n);
	case 'S':	/* STRING: 'quoted' */
	case 'V':	/* UNICODE: raw-unicode-escape */
		if ((rc = line(ps, (size_t)64 << 20, &s, &len)))
			return rc;
		if (op == 'S') {
			if (len < 2 || (s[0] != '\'' && s[0] != '"') ||
			    s[len - 1] != s[0])
				return bad(ps, "STRING argument is not quoted");
			s++;
			len -= 2;
		}
		return push(ps, new_str(ps, PK_STR, s, len));
	case ']':
		return push(ps, pk_new(ps->p, PK_LIST, (int64_t)ps->op_pos,
		    ps->err));
	case ')':
		return push(ps, pk_new(ps->p, PK_TUPLE, (int64_t)ps->op_pos,
		    ps->err));
	case '}':
		return push(ps, pk_new(ps->p, PK_DICT, (int64_t)ps->op_pos,
		    ps->err));
	case 0x8f:
		return push(ps, pk_new(ps->p, PK_SET, (int64_t)ps->op_pos,
		    ps->err));
	case 't':
	case 'l':
	case 0x91:	/* FROZENSET */
		if ((rc = pop_mark(ps, &base)))
			return rc;
		return tuple_of(ps, base, op == 't' ? PK_TUPLE :
		    op == 'l' ? PK_LIST : PK_SET);
	case 0x85:
	case 0x86:
	case 0x87:
		len = (size_t)(op - 0x84);
		if ((rc = need_stack(ps, len)))
			return rc;
		return tuple_of(ps, ps->sp - len, PK_TUPLE);
	case 'd':	/* DICT */
		if ((rc = pop_mark(ps, &base)))
			return rc;
		n = pk_new(ps->p, PK_DICT, (int64_t)ps->op_pos, ps->err);
		if (!n)
			return ps->err->code;
		if ((rc = set_items(ps, n, base)))
			return rc;
		return push(ps, n);
	case 's':	/* SETITEM */
		if ((rc = need_stack(ps, 3)))
			return rc;
		return set_items(ps, ps->stack[ps->sp - 3], ps->sp - 2);
	case 'u':	/* SETITEMS */
		if ((rc = pop_mark_onto(ps, &base, "dict")))
			return rc;
		return set_items(ps, ps->stack[base - 1], base);
	case 'a':	/* APPEND */
		if ((rc = need_stack(ps, 2)))
			return rc;
		return append_items(ps, ps->stack[ps->sp - 2], ps->sp - 1);
	case 'e':	/* APPENDS */
		if ((rc = pop_mark_onto(ps, &base, "list")))
			return rc;
		return append_items(ps, ps->stack[base - 1], base);
	case 0x90:	/* ADDITEMS */
		if ((rc = pop_mark_onto(ps, &base, "set")))
			return rc;
		if (ps->stack[base - 1]->kind != PK_SET)
			return bad(ps, "ADDITEMS without a set");
		for (size_t i = base; i < ps->sp; i++)
			if ((rc = pk_push_item(ps->p, ps->stack[base - 1],
			    NULL, ps->stack[i], ps->err)))
				return rc;
		ps->sp = base;
		break;
	case 'g':
	case 'h':
	case 'j': {
		uint64_t k;

		if ((rc = memo_key(ps, op == 'g', op == 'h' ? 1 : 4, &k)))
			return rc;
		if (k > UINT32_MAX - 1 || !(n = memo_get(ps, (uint32_t)k)))
			return bad(ps, "%s of memo entry %llu, which was never "
			    "set", opnames[op], (unsigned long long)k);
		return push(ps, n);
	}
	case 'p':
	case 'q':
	case 'r':
	case 0x94: {
		uint64_t k = ps->mcount;	/* MEMOIZE */

		if (op != 0x94 && (rc = memo_key(ps, op == 'p', op == 'q' ?
		    1 : 4, &k)))
			return rc;
		if ((rc = need_stack(ps, 1)))
			return rc;
		if (k > UINT32_MAX - 1)
			return bad(ps, "memo index %llu out of range",
			    (unsigned long long)k);
		return memo_put(ps, (uint32_t)k, ps->stack[ps->sp - 1]);
	}
	case 'c':	/* GLOBAL */
		base = ps->pos;
		if ((rc = line(ps, 512, &s, &len)) ||
		    (rc = line(ps, 512, &s2, &len2)))
			return rc;
		s = (const char *)at(ps, base);	/* the window may move */
		n = make_global(ps, s, len, s2, len2, "GLOBAL");
		return n ? push(ps, n) : ps->err->code;
	case 0x93:	/* STACK_GLOBAL */
		if ((rc = need_stack(ps, 2)))
			return rc;
		b = pop(ps);
		a = pop(ps);
		if (a->kind != PK_STR || b->kind != PK_STR)
			return bad(ps, "STACK_GLOBAL of values that are not "
			    "strings");
		n = make_global(ps, a->s, a->len, b->s, b->len,
		    "STACK_GLOBAL");
		return n ? push(ps, n) : ps->err->code;
	case 'R':	/* REDUCE */
		if ((rc = need_stack(ps, 2)))
			return rc;
		b = pop(ps);
		a = pop(ps);
		if (a->kind == PK_GLOBAL && a->allowed) {
			if ((rc = interpret(ps, a, b, &n)))
				return rc;
			release_call_args(ps, a->s, b);
			return push(ps, n);
		}
		return push(ps, opaque(ps, a, b, "REDUCE"));
	case 0x81:	/* NEWOBJ */
		if ((rc = need_stack(ps, 2)))
			return rc;
		b = pop(ps);
		a = pop(ps);
		if (b->kind != PK_TUPLE)
			return bad(ps, "NEWOBJ arguments are not a tuple");
		/* getattr is admitted for REDUCE only (enum members) */
		if (a->kind == PK_GLOBAL && a->allowed &&
		    strcmp(a->s, "builtins.getattr")) {
			if (!strcmp(a->s, "torch.nn.parameter.Parameter")) {
				if (!b->n || !(n = tensor_arg(b->items[0])))
					return bad(ps, "Parameter of a "
					    "non-tensor");
				n->pinned = 1;
				return push(ps, n);
			}
			if (!strcmp(a->s, "collections.OrderedDict") ||
			    !strcmp(a->s, "collections.Counter") ||
			    !strncmp(a->s, "numpy.", 6) ||
			    strstr(a->s, "_rebuild"))
			{
				if (interpret(ps, a, b, &n))
					return ps->err->code;
				release_call_args(ps, a->s, b);
				return push(ps, n);
			}
			n = opaque(ps, a, b, NULL);
			if (n)
				n->allowed = true;
			return push(ps, n);
		}
		return push(ps, opaque(ps, a, b, "NEWOBJ"));
	case 0x92:	/* NEWOBJ_EX */
		if ((rc = need_stack(ps, 3)))
			return rc;
		c = pop(ps);
		b = pop(ps);
		a = pop(ps);
		(void)c;
		unsafe_op(ps, op, a->kind == PK_GLOBAL ? a->s : NULL);
		return push(ps, opaque(ps, a, b, NULL));
	case 'b':	/* BUILD */
		if ((rc = need_stack(ps, 2)))
			return rc;
		b = pop(ps);
		return build(ps, ps->stack[ps->sp - 1], b);
	case 'i':	/* INST module\nname\n, args from the mark */
		base = ps->pos;
		if ((rc = line(ps, 512, &s, &len)) ||
		    (rc = line(ps, 512, &s2, &len2)))
			return rc;
		s = (const char *)at(ps, base);	/* the window may move */
		if (!(a = make_global(ps, s, len, s2, len2, "INST")))
			return ps->err->code;
		unsafe_op(ps, op, a->s);
		if ((rc = pop_mark(ps, &base)) ||
		    (rc = tuple_of(ps, base, PK_TUPLE)))
			return rc;
		b = pop(ps);
		return push(ps, opaque(ps, a, b, NULL));
	case 'o':	/* OBJ: mark, class, args... */
		if ((rc = pop_mark(ps, &base)))
			return rc;
		if (ps->sp <= base)
			return bad(ps, "OBJ without a class");
		a = ps->stack[base];
		unsafe_op(ps, op, a->kind == PK_GLOBAL ? a->s : NULL);
		if ((rc = tuple_of(ps, base + 1, PK_TUPLE)))
			return rc;
		b = pop(ps);
		ps->sp = base;
		return push(ps, opaque(ps, a, b, NULL));
	case 0x82:	/* EXT1/2/4: the copyreg extension registry */
	case 0x83:
	case 0x84:
		len = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
		if ((rc = need(ps, len)))
			return rc;
		ps->pos += len;
		unsafe_op(ps, op, NULL);
		return push(ps, opaque(ps, NULL, NULL, NULL));
	case 'P':	/* PERSID: text persistent id */
		if ((rc = line(ps, 4096, &s, &len)))
			return rc;
		unsafe_op(ps, op, NULL);
		return push(ps, opaque(ps, NULL, NULL, NULL));
	case 'Q':	/* BINPERSID */
		if ((rc = need_stack(ps, 1)))
			return rc;
		a = pop(ps);
		if ((rc = persistent(ps, a, &n)))
			return rc;
		if (n->kind == PK_STORAGE)
			release_persistent_id(ps->p, a);
		return push(ps, n);
	case 0x97:	/* NEXT_BUFFER */
	case 0x98:	/* READONLY_BUFFER */
		unsafe_op(ps, op, NULL);
		return bad(ps, "out-of-band buffers are not supported");
	default:
		return bad(ps, "unknown opcode 0x%02x", op);
	}
	return CKPT_OK;
}

int
ckpt_pickle_parse(struct ckpt_file *f, const unsigned char *buf, size_t len,
    const struct pk_opts *o, struct ckpt_pickle **out, bool *trunc,
    struct ckpt_error *err)
{
	struct ckpt_error local;
	struct parser ps = { 0 };
	bool stop = false;
	int rc = CKPT_OK;

	if (!err)
		err = &local;
	ckpt_error_clear(err);
	ps.p = calloc(1, sizeof(*ps.p));
	if (!ps.p)
		return ckpt_error_nomem(err);
	ps.lim = ps.p->lim = o->limits ? o->limits : &ckpt_pk_default_limits;
	ps.f = f;
	ps.o = o;
	ps.buf = buf;
	ps.len = len;
	ps.wlen = o->read ? 0 : len;	/* a buffer is one whole window */
	ps.err = err;
	ps.truncated = trunc;
	if (trunc)
		*trunc = false;
	scan_gets(&ps);
	while (!stop && !rc) {
		rc = step(&ps, &stop);
		if (!rc && ps.in_frame && ps.pos > ps.frame_end)
			rc = bad(&ps, "opcode straddles the end of its frame");
	}
	if (!rc && ps.in_frame && ps.pos != ps.frame_end)
		rc = bad(&ps, "STOP inside a frame");
	if (rc == CKPT_ERR_LIMIT && !err->path[0])
		limit(&ps, "%s", err->message);
	ps.p->consumed = ps.pos;
	for (size_t i = 0; i < ps.nreported; i++)
		free(ps.reported[i]);
	free(ps.reported);
	free(ps.stack);
	free(ps.marks);
	free(ps.mkeys);
	free(ps.mvals);
	free(ps.win);
	free(ps.rkeys);
	free(ps.skeys);
	free(ps.dslots);
	ps.p->direct_ok = !rc && ps.p->ndirect && !ps.direct_failed &&
	    ps.p->root == ps.direct_dict && !ps.direct_dict->pinned &&
	    !ps.direct_dict->n;
	if (rc && rc != CKPT_ERR_FORMAT && rc != CKPT_ERR_LIMIT) {
		ckpt_pickle_free(ps.p);
		return rc;
	}
	if (rc)
		ps.p->root = NULL;
	*out = ps.p;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Walking: tensor names and the JSON tree                             */
/* ------------------------------------------------------------------ */

struct walker {
	struct ckpt_file *f;
	struct ckpt_pickle *p;
	const struct pk_opts *o;
	int (*add)(void *, const char *, struct pk_node *,
	    struct ckpt_error *);
	void *ctx;
	struct ckpt_error *err;
	char *path;
	size_t plen, pcap;
	uint64_t visited, shared;
	bool cut;
	bool dup_reported;		/* a limit was hit (reported once) */
	int rc;
	/* the JSON text, written as the walk goes (off: not wanted) */
	char *out;
	size_t olen, ocap;
	bool off;
};

/*
 * The JSON text of the tree is written straight into one buffer, in the
 * layout json_dumps(JSON_COMPACT) gives: a jansson tree of a state dict of
 * 40,000 tensors cost more memory and time than the rest of the reading.
 */
static void
out_raw(struct walker *w, const char *s, size_t n)
{
	if (w->off || w->rc)
		return;
	if (w->ocap - w->olen <= n) {
		size_t cap = w->ocap ? w->ocap : 32;
		char *b;

		while (cap - w->olen <= n)
			cap *= 2;
		if (!(b = realloc(w->out, cap))) {
			w->rc = ckpt_error_nomem(w->err);
			return;
		}
		w->out = b;
		w->ocap = cap;
	}
	memcpy(w->out + w->olen, s, n);
	w->olen += n;
	w->out[w->olen] = '\0';
}

static void
out_lit(struct walker *w, const char *s)
{
	out_raw(w, s, strlen(s));
}

static void
out_int(struct walker *w, long long v)
{
	char b[32];

	out_raw(w, b, (size_t)snprintf(b, sizeof(b), "%lld", v));
}

/* A finite double as jansson prints one: 17 digits, always a '.' or an
 * exponent, the exponent without '+' or leading zeros. */
static void
out_real(struct walker *w, double d)
{
	char b[48], *e;
	size_t n = (size_t)snprintf(b, sizeof(b) - 2, "%.17g", d);
	const char *dp = localeconv()->decimal_point;

	/* a library's caller may have set a locale with a decimal comma */
	if (dp && dp[0] && dp[0] != '.' && !dp[1] && (e = strchr(b, dp[0])))
		*e = '.';
	if (!strchr(b, '.') && !strchr(b, 'e')) {
		memcpy(b + n, ".0", 3);
		n += 2;
	}
	if ((e = strchr(b, 'e'))) {
		char *from = e + 1, *to = e + 1;

		if (*from == '+')
			from++;
		else if (*from == '-')
			from = ++to;
		while (*from == '0' && from[1])
			from++;
		memmove(to, from, strlen(from) + 1);
		n = strlen(b);
	}
	out_raw(w, b, n);
}

/* Valid UTF-8 for JSON: invalid bytes become U+FFFD, NUL becomes '?'.
 * Returns how many bytes of s make the next character (0: none left);
 * *rep is set when they are replaced by rep[]. */
static size_t
utf8_next(const char *s, size_t n, const char **rep)
{
	unsigned char c = (unsigned char)s[0];
	size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 && c >= 0xc2 ? 1 :
	    (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 && c < 0xf5 ? 3 : 9;
	bool ok = k != 9 && k < n;

	*rep = NULL;
	for (size_t m = 1; ok && m <= k; m++)
		if (m >= n || ((unsigned char)s[m] & 0xc0) != 0x80)
			ok = false;
	if (ok && k == 2 && ((c == 0xe0 && (unsigned char)s[1] < 0xa0) ||
	    (c == 0xed && (unsigned char)s[1] >= 0xa0)))
		ok = false;	/* overlong or surrogate */
	if (ok && k == 3 && ((c == 0xf0 && (unsigned char)s[1] < 0x90) ||
	    (c == 0xf4 && (unsigned char)s[1] >= 0x90)))
		ok = false;
	if (!ok) {
		*rep = "\xef\xbf\xbd";
		return 1;
	}
	if (!c)
		*rep = "?";
	return k + 1;
}

/* s[0, n) as a JSON string: made valid UTF-8, then escaped as jansson
 * escapes (quote, backslash, control characters). */
static void
out_text(struct walker *w, const char *s, size_t n)
{
	size_t i = 0, run = 0;

	out_raw(w, "\"", 1);
	while (i < n && !w->rc) {
		const char *rep;
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		const char *e = NULL;
		size_t k;

		/* printable ASCII stands for itself (most names) */
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		k = utf8_next(s + i, n - i, &rep);

		if (rep) {
			e = rep;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
			e = esc;
		} else if (c < 0x20) {
			const char *named = c == '\b' ? "\\b" : c == '\f' ?
			    "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r" :
			    c == '\t' ? "\\t" : NULL;

			if (named)
				e = named;
			else
				snprintf(esc, sizeof(esc), "\\u%04X", c);
			if (!named)
				e = esc;
		}
		if (e) {
			out_raw(w, s + i - run, run);
			out_lit(w, e);
			run = 0;
		} else {
			run += k;
		}
		i += k;
	}
	out_raw(w, s + i - run, run);
	out_raw(w, "\"", 1);
}

/* A key and its colon; the comma before it when not the first. */
static void
out_key(struct walker *w, const char *k, bool first)
{
	if (!first)
		out_raw(w, ",", 1);
	out_text(w, k, strlen(k));
	out_raw(w, ":", 1);
}

/* {"$tag":true} */
static void
out_flag(struct walker *w, const char *tag)
{
	out_raw(w, "{", 1);
	out_key(w, tag, true);
	out_lit(w, "true}");
}

/* {"$tag":"text"} */
static void
out_tagged(struct walker *w, const char *tag, const char *s, size_t n)
{
	out_raw(w, "{", 1);
	out_key(w, tag, true);
	out_text(w, s, n);
	out_raw(w, "}", 1);
}

static int
path_push(struct walker *w, const char *seg, size_t n, size_t *saved)
{
	size_t need = w->plen + n + 2;

	*saved = w->plen;
	if (need > w->pcap) {
		size_t cap = need * 2;
		char *p = realloc(w->path, cap);

		if (!p)
			return ckpt_error_nomem(w->err);
		w->path = p;
		w->pcap = cap;
	}
	if (w->plen)
		w->path[w->plen++] = '.';
	memcpy(w->path + w->plen, seg, n);
	w->plen += n;
	w->path[w->plen] = '\0';
	return CKPT_OK;
}

static void
path_pop(struct walker *w, size_t saved)
{
	w->plen = saved;
	if (w->path)
		w->path[saved] = '\0';
}

/* A dict key as text: str as is, numbers in Python's repr. */
static char *
key_text(const struct pk_node *k)
{
	char *s = NULL;

	switch (k->kind) {
	case PK_STR:
	case PK_BYTES:
		s = strndup(k->s, k->len);
		break;
	case PK_INT:
		if (asprintf(&s, "%lld", (long long)k->i) < 0)
			s = NULL;
		break;
	case PK_BOOL:
		s = strdup(k->i ? "True" : "False");
		break;
	case PK_NONE:
		s = strdup("None");
		break;
	case PK_FLOAT:
		if (asprintf(&s, "%.17g", k->d) < 0)
			s = NULL;
		break;
	case PK_TUPLE: {
		char *acc = strdup("(");

		for (size_t i = 0; acc && i < k->n && i < 16; i++) {
			char *e = k->items[i]->kind == PK_TUPLE ?
			    strdup("(...)") : key_text(k->items[i]);
			char *t = NULL;

			if (!e || asprintf(&t, "%s%s%s", acc, i ? ", " : "",
			    e) < 0)
				t = NULL;
			free(e);
			free(acc);
			acc = t;
		}
		if (acc && asprintf(&s, "%s%s", acc, k->n == 1 ? ",)" :
		    ")") < 0)
			s = NULL;
		free(acc);
		break;
	}
	case PK_GLOBAL:
	case PK_DTYPE:
		s = strdup(k->s);
		break;
	default:
		s = strdup("<object>");
		break;
	}
	return s;
}

static void walk(struct walker *w, struct pk_node *n, unsigned depth);

/* Decodes a numpy scalar of a simple type to a JSON number. */
static void
np_scalar(struct walker *w, const struct pk_node *n)
{
	const struct pk_node *dt = n->cls;
	unsigned char b[16];
	char kind, dts[32];
	unsigned long sz;
	bool swap;

	if (!dt || dt->len < 2 || dt->len > 4)
		goto opaque;
	kind = dt->s[0];
	sz = strtoul(dt->s + 1, NULL, 10);
	if (sz != n->len || sz > 8 || !sz)
		goto opaque;
	swap = dt->i == '>';
	for (size_t i = 0; i < sz; i++)
		b[i] = (unsigned char)n->s[swap ? sz - 1 - i : i];
	if (kind == 'f' && (sz == 8 || sz == 4)) {
		double d;

		if (sz == 8) {
			memcpy(&d, b, 8);
		} else {
			float fl;

			memcpy(&fl, b, 4);
			d = fl;
		}
		if (isfinite(d))
			out_real(w, d);
		else
			out_lit(w, isnan(d) ? "\"nan\"" : d > 0 ? "\"inf\"" :
			    "\"-inf\"");
		return;
	}
	if (kind == 'i' || kind == 'u' || kind == 'b') {
		uint64_t v = rdle(b, sz);

		if (kind == 'b') {
			out_lit(w, v ? "true" : "false");
			return;
		}
		if (kind == 'i' && sz < 8 && (b[sz - 1] & 0x80))
			v |= ~(uint64_t)0 << (8 * sz);
		if (kind == 'u' && v > INT64_MAX)
			goto opaque;
		out_int(w, (long long)(int64_t)v);
		return;
	}
opaque:
	snprintf(dts, sizeof(dts), "%c%.*s", dt ? (int)dt->i : '|',
	    dt ? (int)dt->len : 0, dt ? dt->s : "");
	out_raw(w, "{", 1);
	out_key(w, "$npscalar", true);
	out_raw(w, "{", 1);
	out_key(w, "dtype", true);
	out_text(w, dts, strlen(dts));
	out_key(w, "nbytes", false);
	out_int(w, (long long)n->len);
	out_lit(w, "}}");
}

static void
bigint(struct walker *w, const struct pk_node *n)
{
	char buf[64];

	if (n->i == 1) {
		out_text(w, n->s, n->len);
		return;
	}
	if (n->len <= 16) {
		unsigned __int128 v = 0;
		bool neg = n->len && ((unsigned char)n->s[n->len - 1] & 0x80);
		char *p = buf + sizeof(buf) - 1;

		for (size_t i = n->len; i-- > 0;)
			v = v << 8 | (unsigned char)n->s[i];
		if (neg) {
			if (n->len < 16)
				v |= ~(unsigned __int128)0 << (8 * n->len);
			v = ~v + 1;
		}
		*p = '\0';
		do {
			*--p = (char)('0' + (int)(v % 10));
			v /= 10;
		} while (v);
		if (neg)
			*--p = '-';
		out_text(w, p, strlen(p));
		return;
	}
	snprintf(buf, sizeof(buf), "<int of %zu bytes>", n->len);
	out_text(w, buf, strlen(buf));
}

static void
seq(struct walker *w, struct pk_node *n, unsigned depth)
{
	out_raw(w, "[", 1);
	for (size_t i = 0; i < n->n && !w->rc; i++) {
		char seg[24];
		size_t saved;

		snprintf(seg, sizeof(seg), "%zu", i);
		if ((w->rc = path_push(w, seg, strlen(seg), &saved)))
			break;
		if (i)
			out_raw(w, ",", 1);
		walk(w, n->items[i], depth + 1);
		path_pop(w, saved);
	}
	out_raw(w, "]", 1);
}

/*
 * A dict key as the walk uses it: its text (key_text's), borrowed from
 * the pickle for str and bytes keys, which is most of them (a state dict
 * of 40,000 tensors made three strings per key here: its text, its
 * identity and its JSON form); its class for Python's equality (a crafted
 * pickle may set one key twice; the last value wins): 's' str or bytes,
 * 'n' int or bool, 'o' other; and the text out_text writes, invalid UTF-8
 * replaced, for JSON's equality (1 and "1" are one JSON key).
 */
struct dict_key {
	const char *text, *json;
	size_t len, jlen;
	char *own, *own_json;
	char cls;
};

/* The text out_text escapes for s[0, n): NULL when it is s itself. */
static char *
replaced_text(const char *s, size_t n, size_t *len, bool *nomem)
{
	const char *rep;
	size_t i = 0, k, o = 0;
	char *d;

	while (i < n && (k = utf8_next(s + i, n - i, &rep)) && !rep)
		i += k;
	if (i == n)
		return NULL;
	/* at most 3 bytes for each byte replaced */
	if (!(d = malloc(3 * n + 1))) {
		*nomem = true;
		return NULL;
	}
	for (i = 0; i < n; i += k) {
		k = utf8_next(s + i, n - i, &rep);
		memcpy(d + o, rep ? rep : s + i, rep ? strlen(rep) : k);
		o += rep ? strlen(rep) : k;
	}
	d[o] = '\0';
	*len = o;
	return d;
}

static bool
dict_key_init(struct dict_key *d, const struct pk_node *k)
{
	bool nomem = false;

	memset(d, 0, sizeof(*d));
	d->cls = k->kind == PK_STR || k->kind == PK_BYTES ? 's' :
	    k->kind == PK_INT || k->kind == PK_BOOL ? 'n' : 'o';
	if (k->kind == PK_STR || k->kind == PK_BYTES) {
		/* key_text's strndup: up to the first NUL */
		d->text = k->s;
		d->len = strnlen(k->s, k->len);
	} else {
		if (!(d->own = key_text(k)))
			return false;
		d->text = d->own;
		d->len = strlen(d->own);
	}
	d->own_json = replaced_text(d->text, d->len, &d->jlen, &nomem);
	if (!d->own_json) {
		d->json = d->text;
		d->jlen = d->len;
	} else {
		d->json = d->own_json;
	}
	return !nomem;
}

static uint32_t
hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* Index + 1 of the first of keys[0, i) equal to keys[i] (by Python's
 * equality, or by JSON's), found in slot[] (cap a power of two), or 0
 * after recording i there. */
static size_t
first_equal(const struct dict_key *keys, size_t i, bool json, size_t *slot,
    size_t cap)
{
	const struct dict_key *k = &keys[i];
	const char *t = json ? k->json : k->text;
	size_t len = json ? k->jlen : k->len;
	size_t h = (hash_bytes(t, len) ^ (json ? 0 : (uint32_t)k->cls)) &
	    (cap - 1);

	for (; slot[h]; h = (h + 1) & (cap - 1)) {
		const struct dict_key *o = &keys[slot[h] - 1];

		if (json ? o->jlen == len && !memcmp(o->json, t, len) :
		    o->cls == k->cls && o->len == len && !memcmp(o->text, t,
		    len))
			return slot[h];
	}
	slot[h] = i + 1;
	return 0;
}

static void
dup_key_finding(struct walker *w, const struct pk_node *n,
    const struct dict_key *k)
{
	char *t = strndup(k->text, k->len);

	if (!t) {
		w->rc = ckpt_error_nomem(w->err);
		return;
	}
	w->dup_reported = true;
	ckpt_file_add_finding(w->f, "pickle-duplicate-key", CKPT_SEV_WARNING,
	    t, w->o->base >= 0 ? w->o->base + n->pos : n->pos, "%s: a dict "
	    "sets key '%s' more than once; the last value counts, as in "
	    "Python", w->o->what ? w->o->what : "pickle", t);
	free(t);
}

/*
 * A dict.  A key set twice (same text, both str or both numbers: Python's
 * equality) shows the last value at the first one's place, and only that
 * value is walked.  Keys that differ for Python but not as JSON text (1
 * and "1") are all walked, and the JSON object keeps the last value at the
 * first place, as a JSON object would: their values are written aside
 * first, then in order.
 */
static void
dict(struct walker *w, struct pk_node *n, unsigned depth)
{
	struct dict_key *keys = NULL;
	char **aside = NULL;
	size_t *last = NULL, *first = NULL, cap = 0, *slot = NULL;
	bool clash = false, any = false;

	if (n->n && !(keys = calloc(n->n, sizeof(*keys)))) {
		w->rc = ckpt_error_nomem(w->err);
		goto out;
	}
	for (size_t i = 0; i < n->n; i++)
		if (!dict_key_init(&keys[i], n->keys[i])) {
			w->rc = ckpt_error_nomem(w->err);
			goto out;
		}
	if (n->n > 1) {
		last = calloc(n->n, sizeof(*last));
		first = calloc(n->n, sizeof(*first));
		for (cap = 4; cap < 2 * n->n; cap *= 2)
			;
		slot = calloc(cap, sizeof(*slot));	/* index + 1 */
		if (!last || !first || !slot) {
			w->rc = ckpt_error_nomem(w->err);
			goto out;
		}
		for (size_t i = 0; i < n->n && !w->rc; i++) {
			size_t f;

			last[i] = i;
			if (!(f = first_equal(keys, i, false, slot, cap)))
				continue;
			last[f - 1] = i;
			last[i] = SIZE_MAX;	/* not emitted */
			if (!w->dup_reported)
				dup_key_finding(w, n, &keys[i]);
		}
		/* the same JSON key for different Python keys */
		memset(slot, 0, cap * sizeof(*slot));
		for (size_t i = 0; i < n->n && !w->off; i++) {
			size_t f;

			first[i] = i;
			if (last[i] == SIZE_MAX)
				continue;
			if ((f = first_equal(keys, i, true, slot, cap))) {
				first[i] = f - 1;
				clash = true;
			}
		}
		if (clash && !(aside = calloc(n->n, sizeof(*aside)))) {
			w->rc = ckpt_error_nomem(w->err);
			goto out;
		}
	}
	out_raw(w, "{", 1);
	for (size_t i = 0; i < n->n && !w->rc; i++) {
		const struct dict_key *k = &keys[i];
		size_t v_i = last ? last[i] : i, saved, at = w->olen;

		if (v_i == SIZE_MAX)
			continue;
		if ((w->rc = path_push(w, k->text, k->len, &saved)))
			break;
		if (!aside) {
			if (any)
				out_raw(w, ",", 1);
			out_text(w, k->text, k->len);
			out_raw(w, ":", 1);
		}
		any = true;
		walk(w, n->items[v_i], depth + 1);
		path_pop(w, saved);
		if (aside && !w->rc && !w->off) {
			/* the value written aside, its place decided below */
			if (!(aside[i] = strndup(w->out + at, w->olen - at)))
				w->rc = ckpt_error_nomem(w->err);
			w->olen = at;
		}
	}
	any = false;
	for (size_t i = 0; aside && i < n->n && !w->rc; i++) {
		size_t v = SIZE_MAX;

		if (last[i] == SIZE_MAX || first[i] != i)
			continue;
		for (size_t j = i; j < n->n; j++)
			if (last[j] != SIZE_MAX && first[j] == i)
				v = j;
		if (any)
			out_raw(w, ",", 1);
		any = true;
		out_text(w, keys[i].text, keys[i].len);
		out_raw(w, ":", 1);
		out_lit(w, aside[v]);
	}
	out_raw(w, "}", 1);
out:
	for (size_t i = 0; keys && i < n->n; i++) {
		free(keys[i].own);
		free(keys[i].own_json);
		if (aside)
			free(aside[i]);
	}
	free(keys);
	free(aside);
	free(last);
	free(first);
	free(slot);
}

static void
tensor_json(struct walker *w, struct pk_node *n, unsigned depth)
{
	struct pk_tensor *x = n->u.tensor;

	if (x->kind && !strcmp(x->kind, "sparse")) {
		/* components named <name>.0, <name>.1, ... as torch's
		 * _rebuild_sparse_tensor receives them */
		out_raw(w, "{", 1);
		out_key(w, "$sparse", true);
		out_raw(w, "{", 1);
		out_key(w, "layout", true);
		out_text(w, x->layout ? x->layout : "", x->layout ?
		    strlen(x->layout) : 0);
		out_key(w, "parts", false);
		seq(w, x->parts, depth);
		out_lit(w, "}}");
		return;
	}
	if (w->add && (w->rc = w->add(w->ctx, w->path ? w->path : "", n,
	    w->err)))
		return;
	out_tagged(w, "$tensor", w->path ? w->path : "", w->plen);
}

static void
object(struct walker *w, struct pk_node *n, unsigned depth)
{
	const char *cls = n->cls && (n->cls->kind == PK_GLOBAL ||
	    n->cls->kind == PK_DTYPE) ? n->cls->s : "?";
	struct pk_node *st = ckpt_pk_object_state(n);

	out_raw(w, "{", 1);
	out_key(w, n->allowed ? "$object" : "$global", true);
	out_text(w, cls, strlen(cls));
	if (n->args && n->args->n) {
		out_key(w, "$args", false);
		walk(w, n->args, depth + 1);
	}
	if (n->extra) {
		out_key(w, "$items", false);
		if (n->extra->kind == PK_DICT)
			dict(w, n->extra, depth);
		else
			seq(w, n->extra, depth);
	}
	if (st) {
		out_key(w, "$state", false);
		if (st->kind == PK_DICT)
			dict(w, st, depth);
		else
			walk(w, st, depth + 1);
	}
	out_raw(w, "}", 1);
}

static bool
is_container(const struct pk_node *n)
{
	return n->kind == PK_LIST || n->kind == PK_TUPLE || n->kind == PK_SET
	    || n->kind == PK_DICT || n->kind == PK_OBJECT;
}

static uint32_t
add_sat(uint32_t a, uint32_t b)
{
	return a > PK_XSIZE_MAX - b ? PK_XSIZE_MAX : a + b;
}

/*
 * What a full expansion of n would cost (nodes visited, saturating) and
 * whether it reaches a tensor, computed once per node over the shared
 * graph: O(nodes + references), however the memo fans out.  A cycle or a
 * nesting deeper than the walk goes counts as large and as holding a
 * tensor, so that such a subtree takes the bounded walk, as before.
 */
static void
subtree_info(struct pk_node *n, unsigned depth, unsigned max_depth)
{
	struct pk_node *kids[5];
	uint32_t size = 1;
	bool tensor = n->kind == PK_TENSOR;

	if (n->xinfo & PK_X_DONE)
		return;
	if ((n->xinfo & PK_X_BUSY) || depth > max_depth) {
		n->xinfo |= PK_X_DONE | PK_X_TENSOR;
		n->xsize = PK_XSIZE_MAX;
		return;
	}
	n->xinfo |= PK_X_BUSY;
	for (size_t i = 0; i < n->n && n->items && !tensor; i++) {
		subtree_info(n->items[i], depth + 1, max_depth);
		size = add_sat(size, n->items[i]->xsize);
		tensor = n->items[i]->xinfo & PK_X_TENSOR;
		if (n->keys && n->keys[i]) {
			subtree_info(n->keys[i], depth + 1, max_depth);
			size = add_sat(size, n->keys[i]->xsize);
		}
	}
	kids[0] = n->cls;
	kids[1] = n->args;
	kids[2] = n->state;
	kids[3] = n->extra;
	kids[4] = n->kind == PK_TENSOR && n->u.tensor ? n->u.tensor->parts :
	    NULL;
	for (size_t i = 0; i < 5 && !tensor; i++) {
		if (!kids[i])
			continue;
		subtree_info(kids[i], depth + 1, max_depth);
		size = add_sat(size, kids[i]->xsize);
		tensor = kids[i]->xinfo & PK_X_TENSOR;
	}
	if (tensor)
		size = PK_XSIZE_MAX;	/* not needed: always expanded */
	n->xsize = size;
	n->xinfo = (unsigned char)((n->xinfo & ~PK_X_BUSY) | PK_X_DONE |
	    (tensor ? PK_X_TENSOR : 0));
}

/*
 * A container met again (a memo reference) whose expansion is large and
 * holds no tensor is shown once, then counted: {"$shared": true}.  An
 * 8 KB pickle whose references fan out no longer costs seconds.  Small
 * ones (a shared tuple of betas) still print in full, and so does every
 * path to a tensor, which must be listed under each of its names.
 */
#define SHARED_SHOWN_IN_FULL 32

static bool
shown_as_reference(struct walker *w, struct pk_node *n, unsigned depth)
{
	if (!n->seen || !is_container(n))
		return false;
	subtree_info(n, depth, w->p->lim->max_depth);
	return !(n->xinfo & PK_X_TENSOR) && n->xsize > SHARED_SHOWN_IN_FULL;
}

static void
walk(struct walker *w, struct pk_node *n, unsigned depth)
{
	if (w->rc)
		return;
	if (shown_as_reference(w, n, depth)) {
		out_flag(w, "$shared");
		return;
	}
	if (n->seen && (n->kind == PK_LIST || n->kind == PK_TUPLE ||
	    n->kind == PK_SET || n->kind == PK_DICT || n->kind == PK_OBJECT) &&
	    n->n + (n->extra ? n->extra->n : 0) > 0)
		w->shared++;
	if (depth > w->p->lim->max_depth || ++w->visited > w->p->lim->max_walk
	    || w->shared > w->p->lim->max_shared) {
		if (!w->cut) {
			w->cut = true;
			ckpt_file_add_finding(w->f, "pickle-limit",
			    CKPT_SEV_WARNING, w->o->what, w->o->base >= 0 ?
			    w->o->base + n->pos : n->pos, "%s: object tree "
			    "nested deeper than %u, larger than %llu nodes, or "
			    "repeating shared containers more than %llu times "
			    "once shared values are expanded; the rest is not "
			    "shown", w->o->what ? w->o->what : "pickle",
			    w->p->lim->max_depth,
			    (unsigned long long)w->p->lim->max_walk,
			    (unsigned long long)w->p->lim->max_shared);
		}
		out_flag(w, "$truncated");
		return;
	}
	if (n->mark) {
		out_flag(w, "$cycle");
		return;
	}
	n->mark = 1;
	switch (n->kind) {
	case PK_NONE:
		out_lit(w, "null");
		break;
	case PK_BOOL:
		out_lit(w, n->i ? "true" : "false");
		break;
	case PK_INT:
		out_int(w, (long long)n->i);
		break;
	case PK_BIGINT:
		bigint(w, n);
		break;
	case PK_FLOAT:
		if (isfinite(n->d))
			out_real(w, n->d);
		else
			out_lit(w, isnan(n->d) ? "\"nan\"" : n->d > 0 ?
			    "\"inf\"" : "\"-inf\"");
		break;
	case PK_COMPLEX:
		out_raw(w, "{", 1);
		out_key(w, "$complex", true);
		out_raw(w, "[", 1);
		if (isfinite(n->d))
			out_real(w, n->d);
		else
			out_lit(w, "\"nan\"");
		out_raw(w, ",", 1);
		if (isfinite(n->u.d2))
			out_real(w, n->u.d2);
		else
			out_lit(w, "\"nan\"");
		out_lit(w, "]}");
		break;
	case PK_STR:
		out_text(w, n->s, n->len);
		break;
	case PK_BYTES:
		out_raw(w, "{", 1);
		out_key(w, "$bytes", true);
		out_int(w, (long long)n->len);
		out_raw(w, "}", 1);
		break;
	case PK_LIST:
	case PK_TUPLE:
	case PK_SET:
		seq(w, n, depth);
		break;
	case PK_DICT:
		dict(w, n, depth);
		break;
	case PK_GLOBAL:
	case PK_DTYPE:
		out_tagged(w, n->kind == PK_DTYPE ? "$dtype" : "$global", n->s,
		    strlen(n->s));
		break;
	case PK_OBJECT:
		object(w, n, depth);
		break;
	case PK_STORAGE: {
		const char *k = n->u.storage->key ? n->u.storage->key : "";

		out_tagged(w, "$storage", k, strlen(k));
		break;
	}
	case PK_TENSOR:
		tensor_json(w, n, depth);
		break;
	case PK_NDARRAY:
		out_raw(w, "{", 1);
		out_key(w, "$ndarray", true);
		out_raw(w, "{", 1);
		out_key(w, "dtype", true);
		out_text(w, n->u.nd->dtype, strlen(n->u.nd->dtype));
		out_key(w, "shape", false);
		out_raw(w, "[", 1);
		for (unsigned i = 0; i < n->u.nd->ndim; i++) {
			if (i)
				out_raw(w, ",", 1);
			out_int(w, (long long)n->u.nd->shape[i]);
		}
		out_raw(w, "]", 1);
		out_key(w, "nbytes", false);
		out_int(w, (long long)n->u.nd->nbytes);
		out_lit(w, "}}");
		break;
	case PK_NPDTYPE: {
		char dts[32];

		snprintf(dts, sizeof(dts), "%c%.*s", (int)n->i, (int)n->len,
		    n->s);
		out_tagged(w, "$npdtype", dts, strlen(dts));
		break;
	}
	case PK_NPSCALAR:
		np_scalar(w, n);
		break;
	}
	n->mark = 0;
	n->seen = 1;
}

/*
 * The JSON of a root dict whose tensors the table took as the pickle ran
 * (ckpt_pickle.direct_ok), as walk() writes it: each name is a plain str
 * key, met once, and the tensor's path.  Sized at once.
 */
static void
direct_json(struct walker *w)
{
	static const char tag[] = "{\"$tensor\":";
	size_t need = 3;

	for (size_t i = 0; i < w->p->ndirect; i++)
		need += 2 * strlen(w->p->direct[i]) + sizeof(tag) + 6;
	if (!(w->out = malloc(need))) {
		w->rc = ckpt_error_nomem(w->err);
		return;
	}
	w->ocap = need;
	out_raw(w, "{", 1);
	for (size_t i = 0; i < w->p->ndirect && !w->rc; i++) {
		const char *name = w->p->direct[i];
		size_t n = strlen(name);

		if (i)
			out_raw(w, ",", 1);
		out_text(w, name, n);
		out_raw(w, ":", 1);
		out_raw(w, tag, sizeof(tag) - 1);
		out_text(w, name, n);
		out_raw(w, "}", 1);
	}
	out_raw(w, "}", 1);
}

int
ckpt_pickle_walk(struct ckpt_file *f, struct ckpt_pickle *p,
    const struct pk_opts *o,
    int (*add)(void *ctx, const char *name, struct pk_node *t,
    struct ckpt_error *err), void *ctx, char **json, struct ckpt_error *err)
{
	struct walker w = { .f = f, .p = p, .o = o, .add = add, .ctx = ctx,
	    .err = err, .off = !json };

	if (json)
		*json = NULL;
	if (p->direct_ok) {
		if (json)
			direct_json(&w);
		if (!w.rc && json)
			*json = w.out;
		else
			free(w.out);
		return w.rc;
	}
	if (!p->root)
		return CKPT_OK;
	w.path = calloc(1, 64);
	if (!w.path)
		return ckpt_error_nomem(err);
	w.pcap = 64;
	walk(&w, p->root, 0);
	free(w.path);
	if (!w.rc && json)
		*json = w.out;
	else
		free(w.out);
	return w.rc;
}
