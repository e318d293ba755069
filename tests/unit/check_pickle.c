/* SPDX-License-Identifier: MIT */
/*
 * check_pickle.c - the restricted pickle reader, table-driven: each row is
 * a byte string, what the parse must return, the finding it must record
 * (id and byte offset) and the kind of the root it must build.
 */
#include "unit.h"

#include "format/file.h"
#include "format/pickle.h"

static struct ckpt_file *
new_file(void)
{
	struct ckpt_file *f = calloc(1, sizeof(*f));

	ck_assert_ptr_nonnull(f);
	f->fd = -1;
	f->path = strdup("unit.pkl");
	return f;
}

static const struct ckpt_finding *
find(const struct ckpt_file *f, const char *id)
{
	for (size_t i = 0; i < f->nfindings; i++)
		if (!strcmp(f->findings[i].id, id))
			return &f->findings[i];
	return NULL;
}

#define B(s) (const unsigned char *)(s), sizeof(s) - 1

static const struct {
	const char *what;
	const unsigned char *bytes;
	size_t len;
	int rc;			/* of ckpt_pickle_parse */
	const char *finding;	/* id that must be recorded, or NULL */
	int64_t offset;		/* its offset (-2: any) */
	int root;		/* enum pk_kind of the root, -1: none */
} cases[] = {
	{ "none", B("\x80\x02N."), 0, NULL, 0, PK_NONE },
	{ "int", B("\x80\x02K\x05."), 0, NULL, 0, PK_INT },
	{ "dict", B("\x80\x02}(X\x01\x00\x00\x00" "aK\x01u."), 0, NULL, 0,
	    PK_DICT },
	{ "ordered dict", B("\x80\x02\x63\x63ollections\nOrderedDict\n)R."), 0,
	    NULL, 0, PK_DICT },
	{ "py2 set", B("\x80\x02\x63__builtin__\nset\n]\x85R."), 0, NULL, 0,
	    PK_SET },
	{ "os.system", B("\x80\x02\x63os\nsystem\nX\x02\x00\x00\x00id\x85R."),
	    0, "unsafe-global", 2, PK_OBJECT },
	{ "reduce of it", B("\x80\x02\x63os\nsystem\nX\x02\x00\x00\x00id\x85R."),
	    0, "unsafe-call", 21, PK_OBJECT },
	{ "memo stack global", B("\x80\x04\x8c\x02os\x94" "0\x8c\x06system"
	    "\x94" "0h\x00h\x01\x93."), 0, "unsafe-global", 22, PK_GLOBAL },
	{ "stack global of non-strings", B("\x80\x04K\x01K\x02\x93."),
	    CKPT_ERR_FORMAT, "pickle-malformed", 6, -1 },
	{ "inst", B("\x80\x02(ios\nsystem\n."), 0, "unsafe-opcode", 3,
	    PK_OBJECT },
	{ "obj", B("\x80\x02(\x63os\nsystem\no."), 0, "unsafe-opcode", 14,
	    PK_OBJECT },
	{ "ext2", B("\x80\x02\x83\x01\x00."), 0, "unsafe-opcode", 2,
	    PK_OBJECT },
	{ "persid", B("\x80\x02Pabc\n."), 0, "unsafe-opcode", 2, PK_OBJECT },
	{ "next buffer", B("\x80\x05\x97."), CKPT_ERR_FORMAT, "unsafe-opcode",
	    2, -1 },
	{ "compat opcode", B("\x80\x04\x8c\x01x."), 0, "pickle-compat-opcode",
	    2, PK_STR },
	{ "unknown opcode", B("\x80\x02\xff."), CKPT_ERR_FORMAT,
	    "pickle-malformed", 2, -1 },
	{ "truncated", B("\x80\x02X\x05\x00\x00\x00" "ab"), CKPT_ERR_FORMAT,
	    "pickle-malformed", 2, -1 },
	{ "no stop", B("\x80\x02N"), CKPT_ERR_FORMAT, "pickle-malformed", 3,
	    -1 },
	{ "stop with two values", B("\x80\x02NN."), CKPT_ERR_FORMAT,
	    "pickle-malformed", 4, -1 },
	{ "memo get unset", B("\x80\x02h\x07."), CKPT_ERR_FORMAT,
	    "pickle-malformed", 2, -1 },
	{ "memo far index", B("\x80\x02Nr\xfe\xff\xff\xff."), 0, NULL, 0,
	    PK_NONE },
	{ "setitem on list", B("\x80\x02]K\x01K\x02s."), CKPT_ERR_FORMAT,
	    "pickle-malformed", 7, -1 },
	{ "append on dict", B("\x80\x02}K\x01a."), CKPT_ERR_FORMAT,
	    "pickle-malformed", 5, -1 },
	{ "build on int", B("\x80\x02K\x01}b."), CKPT_ERR_FORMAT,
	    "pickle-malformed", 5, -1 },
	{ "huge binbytes8", B("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f."),
	    CKPT_ERR_FORMAT, "pickle-malformed", 2, -1 },
	{ "negative binstring", B("\x80\x02T\xff\xff\xff\xff."),
	    CKPT_ERR_FORMAT, "pickle-malformed", 2, -1 },
	{ "frame straddle", B("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00"
	    "\x8c\x03" "abc."), CKPT_ERR_FORMAT, "pickle-malformed", 11, -1 },
	{ "nested pickle bytes", B("\x80\x03\x43\x04\x80\x02N.."), 0,
	    "pickle-nested", 2, PK_BYTES },
	{ "long1 > 8 bytes", B("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a"
	    "\xa8\x50\x19."), 0, NULL, 0, PK_BIGINT },
	{ "text int bool", B("I01\n."), 0, NULL, 0, PK_BOOL },
	{ "dotted global", B("\x80\x02\x63pathlib\nos.system\n."), 0,
	    "unsafe-global", 2, PK_GLOBAL },
	{ "tensor rebuild w/o storage", B("\x80\x02\x63torch._utils\n"
	    "_rebuild_tensor_v2\n(K\x00K\x00)))\x89}tR."), CKPT_ERR_FORMAT,
	    "pickle-malformed", -2, -1 },
	{ "storage pid: wrong arity", B("\x80\x02(X\x07\x00\x00\x00storage"
	    "tQ."), CKPT_ERR_FORMAT, "pickle-malformed", -2, -1 },
	{ "storage pid: unknown type", B("\x80\x02(X\x07\x00\x00\x00storage"
	    "\x63os\nsystem\nX\x01\x00\x00\x00\x30X\x03\x00\x00\x00\x63puK\x01"
	    "tQ."), CKPT_ERR_FORMAT, "pickle-malformed", -2, -1 },
	{ "storage pid", B("\x80\x02(X\x07\x00\x00\x00storage\x63torch\n"
	    "FloatStorage\nX\x01\x00\x00\x00\x30X\x03\x00\x00\x00\x63puK\x01"
	    "tQ."), 0, NULL, 0, PK_STORAGE },
};

START_TEST(test_pickle_table)
{
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(cases); i++) {
		struct pk_opts o = { .what = "t", .base = 0 };
		struct ckpt_file *f = new_file();
		struct ckpt_pickle *p = NULL;
		struct ckpt_error err;
		const struct ckpt_finding *x;
		int rc;

		rc = ckpt_pickle_parse(f, cases[i].bytes, cases[i].len, &o, &p,
		    NULL, &err);
		ck_assert_msg(rc == cases[i].rc, "%s: rc %d, wanted %d (%s)",
		    cases[i].what, rc, cases[i].rc, err.message);
		if (cases[i].finding) {
			x = find(f, cases[i].finding);
			ck_assert_msg(x != NULL, "%s: no %s finding",
			    cases[i].what, cases[i].finding);
			ck_assert_msg(cases[i].offset == -2 ||
			    x->offset == cases[i].offset, "%s: %s at %lld, not "
			    "%lld", cases[i].what, cases[i].finding,
			    (long long)x->offset, (long long)cases[i].offset);
		} else {
			ck_assert_msg(!find(f, "unsafe-global") &&
			    !find(f, "pickle-malformed"), "%s: unexpected "
			    "finding %s", cases[i].what, f->nfindings ?
			    f->findings[0].message : "");
		}
		if (cases[i].root >= 0) {
			ck_assert_ptr_nonnull(p);
			ck_assert_ptr_nonnull(p->root);
			ck_assert_msg((int)p->root->kind == cases[i].root,
			    "%s: root kind %d, wanted %d", cases[i].what,
			    p->root->kind, cases[i].root);
		}
		ckpt_pickle_free(p);
		ckpt_file_free(f);
	}
}
END_TEST

START_TEST(test_pickle_limits)
{
	struct pk_limits lim = ckpt_pk_default_limits;
	struct pk_opts o = { .what = "t", .base = 0, .limits = &lim };
	unsigned char buf[4096];
	struct ckpt_pickle *p = NULL;
	struct ckpt_file *f;
	size_t n = 0;

	/* a long opcode run: NONE POP ... */
	buf[n++] = 0x80;
	buf[n++] = 2;
	while (n < 2 + 2 * 600) {
		buf[n++] = 'N';
		buf[n++] = '0';
	}
	buf[n++] = 'N';
	buf[n++] = '.';
	lim.max_ops = 1000;
	f = new_file();
	ck_assert_int_eq(ckpt_pickle_parse(f, buf, n, &o, &p, NULL, NULL),
	    CKPT_ERR_LIMIT);
	ck_assert_ptr_nonnull(find(f, "pickle-limit"));
	ckpt_pickle_free(p);
	ckpt_file_free(f);

	/* memo growth */
	lim = ckpt_pk_default_limits;
	lim.max_memo = 10;
	n = 0;
	buf[n++] = 0x80;
	buf[n++] = 2;
	buf[n++] = 'N';
	for (int i = 0; i < 100; i++) {
		buf[n++] = 'q';
		buf[n++] = (unsigned char)i;
	}
	buf[n++] = '.';
	f = new_file();
	p = NULL;
	ck_assert_int_eq(ckpt_pickle_parse(f, buf, n, &o, &p, NULL, NULL),
	    CKPT_ERR_LIMIT);
	ckpt_pickle_free(p);
	ckpt_file_free(f);

	/* total allocation */
	lim = ckpt_pk_default_limits;
	lim.max_alloc = 4096;
	n = 0;
	buf[n++] = 0x80;
	buf[n++] = 2;
	buf[n++] = ']';
	buf[n++] = '(';
	while (n < 1000)
		buf[n++] = 'N';
	buf[n++] = 'e';
	buf[n++] = '.';
	f = new_file();
	p = NULL;
	ck_assert_int_eq(ckpt_pickle_parse(f, buf, n, &o, &p, NULL, NULL),
	    CKPT_ERR_LIMIT);
	ckpt_pickle_free(p);
	ckpt_file_free(f);
}
END_TEST

START_TEST(test_pickle_allowlist)
{
	ck_assert(ckpt_pickle_allowed("torch._utils._rebuild_tensor_v2", 0));
	ck_assert(ckpt_pickle_allowed("collections.OrderedDict", 0));
	ck_assert(ckpt_pickle_allowed("torch.BFloat16Storage", 0));
	ck_assert(ckpt_pickle_allowed("torch.cuda.FloatStorage", 0));
	ck_assert(!ckpt_pickle_allowed("torch.cuda.QInt8Storage", 0));
	ck_assert(ckpt_pickle_allowed("torch.float8_e4m3fn", 0));
	ck_assert(ckpt_pickle_allowed("torch.cuda.sparse.FloatTensor", 0));
	ck_assert(!ckpt_pickle_allowed("torch.sparse.BoolTensor", 0));
	ck_assert(ckpt_pickle_allowed("numpy.core.multiarray._reconstruct",
	    0));
	ck_assert(!ckpt_pickle_allowed("builtins.eval", 0));
	ck_assert(!ckpt_pickle_allowed("os.system", 0));
	ck_assert(!ckpt_pickle_allowed("torch.load", 0));
	ck_assert(!ckpt_pickle_allowed("torch.serialization.load", 0));
	ck_assert(!ckpt_pickle_allowed("builtins.getattr", 0));
	ck_assert(ckpt_pickle_allowed("builtins.getattr", PK_ALLOW_DCP));
	ck_assert(!ckpt_pickle_allowed(
	    "torch.distributed.checkpoint.metadata.Metadata", 0));
	ck_assert(ckpt_pickle_allowed(
	    "torch.distributed.checkpoint.metadata.Metadata", PK_ALLOW_DCP));
}
END_TEST

/*
 * The memo keeps only what some GET reads (a scan before the run); every
 * form of GET and PUT, and the streams the scan does not follow (MEMOIZE,
 * frames, a GET past the first STOP), read the same values as ever.
 */
START_TEST(test_pickle_memo_reads)
{
	static const struct {
		const char *what;
		const unsigned char *bytes;
		size_t len;
		int rc;
	} m[] = {
		{ "binput/binget", B("\x80\x02(K\x05q\x00K\x07q\x01h\x00t."),
		    0 },
		{ "long forms", B("\x80\x02(K\x05r\x00\x01\x00\x00K\x07q\x01"
		    "j\x00\x01\x00\x00t."), 0 },
		{ "text forms", B("(I5\np0\nI7\np1\ng0\nt."), 0 },
		{ "memoize in a frame", B("\x80\x04\x95\x0b\x00\x00\x00\x00"
		    "\x00\x00\x00(K\x05\x94K\x07\x94h\x00t."), 0 },
		{ "get of a key no put set", B("\x80\x02(K\x05q\x00K\x07q\x01"
		    "h\x02t."), CKPT_ERR_FORMAT },
		{ "get after the stop", B("\x80\x02(K\x05q\x00K\x07q\x01"
		    "h\x00t.h\x01."), 0 },
	};

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(m); i++) {
		struct pk_opts o = { .what = "t", .base = 0 };
		struct ckpt_file *f = new_file();
		struct ckpt_pickle *p = NULL;
		struct ckpt_error err;
		int rc = ckpt_pickle_parse(f, m[i].bytes, m[i].len, &o, &p,
		    NULL, &err);

		ck_assert_msg(rc == m[i].rc, "%s: rc %d (%s)", m[i].what, rc,
		    err.message);
		if (!rc) {
			struct pk_node *t = p->root;

			ck_assert_msg(t && t->kind == PK_TUPLE && t->n == 3 &&
			    t->items[0]->i == 5 && t->items[1]->i == 7 &&
			    t->items[2]->i == 5, "%s: not (5, 7, 5)",
			    m[i].what);
		}
		ckpt_pickle_free(p);
		ckpt_file_free(f);
	}
}
END_TEST

/* getattr in DCP metadata: only getattr(<DCP enum>, "NAME") is data. */
START_TEST(test_pickle_dcp_getattr)
{
	static const unsigned char ok[] = "\x80\x04\x8c\x08\x62uiltins\x8c\x07"
	    "getattr\x93\x8c%torch.distributed.checkpoint.metadata\x8c\x14"
	    "_MEM_FORMAT_ENCODING\x93\x8c\x17TORCH_CONTIGUOUS_FORMAT\x86R.";
	static const unsigned char bad[] = "\x80\x04\x8c\x08\x62uiltins\x8c\x07"
	    "getattr\x93\x8c\x02os\x8c\x06system\x93\x8c\x04\x65val\x86R.";
	struct pk_opts o = { .what = "t", .base = 0,
	    .flags = PK_ALLOW_DCP | PK_QUIET_COMPAT };
	struct ckpt_pickle *p = NULL;
	struct ckpt_file *f = new_file();

	ck_assert_int_eq(ckpt_pickle_parse(f, ok, sizeof(ok) - 1, &o, &p, NULL,
	    NULL), 0);
	ck_assert_int_eq(p->root->kind, PK_STR);
	ck_assert_uint_eq(f->nfindings, 0);
	ckpt_pickle_free(p);
	ckpt_file_free(f);
	f = new_file();
	p = NULL;
	ck_assert_int_eq(ckpt_pickle_parse(f, bad, sizeof(bad) - 1, &o, &p,
	    NULL, NULL), 0);
	ck_assert_int_eq(p->root->kind, PK_OBJECT);
	ck_assert_ptr_nonnull(find(f, "unsafe-call"));
	ck_assert_ptr_nonnull(find(f, "unsafe-global"));
	ckpt_pickle_free(p);
	ckpt_file_free(f);
}
END_TEST

START_TEST(test_pickle_allow_patterns)
{
	struct ckpt_error e;

	/* exact names, and module.* for that module's public names only */
	ck_assert(ckpt_pickle_pattern_admits("a.b.C", "a.b.C"));
	ck_assert(!ckpt_pickle_pattern_admits("a.b.C", "a.b.D"));
	ck_assert(ckpt_pickle_pattern_admits("a.b.*", "a.b.C"));
	ck_assert(!ckpt_pickle_pattern_admits("a.b.*", "a.b.c.D"));
	ck_assert(!ckpt_pickle_pattern_admits("a.b.*", "a.bc.D"));
	ck_assert(!ckpt_pickle_pattern_admits("a.b.*", "a.b._private"));
	ck_assert(!ckpt_pickle_pattern_admits("a.b.*", "a.b.__builtins__"));
	ck_assert(ckpt_pickle_pattern_admits("__main__.Config",
	    "__main__.Config"));
	/* whatever the pattern, the denylist wins */
	ck_assert(!ckpt_pickle_pattern_admits("posix.system", "posix.system"));
	ck_assert(!ckpt_pickle_pattern_admits("os.*", "os.system"));
	ck_assert(!ckpt_pickle_pattern_admits("builtins.eval",
	    "builtins.eval"));
	ck_assert(ckpt_pickle_denylisted("subprocess.Popen"));
	ck_assert(ckpt_pickle_denylisted("nodot"));
	ck_assert(!ckpt_pickle_denylisted("transformers.training_args.X"));
	/* the check a user's pattern goes through first */
	ck_assert_int_eq(ckpt_allow_global_check("a.b", &e), 0);
	ck_assert_int_eq(ckpt_allow_global_check("a.*", &e), 0);
	ck_assert_int_eq(ckpt_allow_global_check("__main__.Config", &e), 0);
	ck_assert_int_eq(ckpt_allow_global_check("a", &e), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_allow_global_check("a.*.b", &e),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_allow_global_check("a.__globals__", &e),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_allow_global_check("builtins.getattr", &e),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_allow_global_check("subprocess.*", &e),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_allow_global_check("", &e), CKPT_ERR_INVALID);
}
END_TEST

Suite *
pickle_suite(void)
{
	Suite *s = suite_create("pickle");

	TCASE(s, "opcodes", NULL, NULL, test_pickle_table, test_pickle_limits,
	    test_pickle_allowlist, test_pickle_dcp_getattr,
	    test_pickle_allow_patterns, test_pickle_memo_reads);
	return s;
}
