/* SPDX-License-Identifier: MIT */
/*
 * check_safetensors.c - the safetensors reader against every rule of the
 * reference reader (formats.md 1.4, the malformed inputs of 1.5) and ours
 * (duplicate keys, strict integers, whitespace): a table of files, each
 * with the status, the byte offset and a piece of the message expected.
 */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/file.h"

/* Builds 8-byte length + header + data; len_override < 0 means strlen. */
static size_t
build(unsigned char *buf, size_t cap, unsigned long long len_override,
    const char *hdr, size_t hlen, const void *data, size_t dlen)
{
	uint64_t n = len_override ? len_override : hlen;

	ck_assert_uint_le(8 + hlen + dlen, cap);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(n >> (8 * i));
	memcpy(buf + 8, hdr, hlen);
	if (dlen)
		memcpy(buf + 8 + hlen, data, dlen);
	return 8 + hlen + dlen;
}

/* Runs the reader on a file directly, whatever the sniffer thinks. */
static int
read_direct(const char *path, struct ckpt_error *err)
{
	struct ckpt_file *f = calloc(1, sizeof(*f));
	struct stat st;
	int rc;

	ck_assert_ptr_nonnull(f);
	f->path = strdup(path);
	f->fd = open(path, O_RDONLY);
	ck_assert_int_ge(f->fd, 0);
	ck_assert_int_eq(fstat(f->fd, &st), 0);
	f->size = (uint64_t)st.st_size;
	f->format = CKPT_FORMAT_SAFETENSORS;
	rc = ckpt_safetensors_read(f, err);
	ckpt_file_free(f);
	return rc;
}

struct bad_case {
	const char *what;
	unsigned long long len;	/* header length field; 0: the real one */
	const char *hdr;
	size_t dlen;		/* data bytes (zeros) after the header */
	int code;
	long long offset;	/* expected err.offset; -2: 8 + hlen + x */
	const char *msg;	/* substring of err.message */
	bool direct;		/* the sniffer would not route it here */
};

#define DATA_AT(x) (-1000 - (x))	/* offset 8 + hlen + x */

static const struct bad_case bad_cases[] = {
	/* formats.md 1.5, the reference test-suite */
	{ "header too small (empty)", 0, "", 0, CKPT_ERR_FORMAT, 0,
	  "too small", true },
	{ "header too large", 0xffffff000000003cULL, "{}", 0, CKPT_ERR_FORMAT,
	  0, "exceeds file size 10", false },
	{ "invalid header length", 60, "", 0, CKPT_ERR_FORMAT, 0,
	  "header length 60 exceeds file size 8", true },
	{ "N+8 overflows", 0xffffffffffffffffULL, "{}", 0, CKPT_ERR_FORMAT, 0,
	  "header length 18446744073709551615 exceeds file size", false },
	{ "non-UTF-8 header", 0, "\xff", 0, CKPT_ERR_FORMAT, 8,
	  "invalid UTF-8", true },
	{ "non-UTF-8 in a name", 0, "{\"a\xc3\x28\":1}", 0,
	  CKPT_ERR_FORMAT, 11, "invalid UTF-8", false },
	{ "overlong UTF-8", 0, "{\"\xc0\xaf\":1}", 0, CKPT_ERR_FORMAT, 10,
	  "invalid UTF-8", false },
	{ "UTF-8 surrogate", 0, "{\"\xed\xa0\x80\":1}", 0, CKPT_ERR_FORMAT,
	  10, "invalid UTF-8", false },
	{ "not JSON", 0, "{", 0, CKPT_ERR_FORMAT, 9, "invalid JSON", false },
	{ "not an object", 0, " []", 0, CKPT_ERR_FORMAT, 9,
	  "not a JSON object", false },
	{ "json attack: shared offsets", 0,
	  "{\"w0\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
	  "\"w1\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
	  "\"w2\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
	  16, CKPT_ERR_FORMAT, DATA_AT(0), "invalid offset for tensor 'w1'",
	  false },
	{ "invalid info", 0,
	  "{\"t\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,4]}}",
	  4, CKPT_ERR_FORMAT, DATA_AT(0),
	  "tensor 't': dtype I32 and shape [2, 2] need 16 bytes", false },
	{ "validation overflow: elements", 0,
	  "{\"t\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],"
	  "\"data_offsets\":[0,16]}}", 16, CKPT_ERR_FORMAT, 9,
	  "element count of shape [2, 18446744073709551614] overflows",
	  false },
	{ "validation overflow: bits", 0,
	  "{\"t\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],"
	  "\"data_offsets\":[0,16]}}", 16, CKPT_ERR_FORMAT, 9,
	  "size of 18446744073709551614 I32 elements overflows", false },
	{ "trailing bytes (polyglot)", 0,
	  "{\"t\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
	  16 + 35, CKPT_ERR_FORMAT, DATA_AT(16),
	  "35 unexpected bytes after the last tensor", false },
	{ "truncated data", 0,
	  "{\"t\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
	  14, CKPT_ERR_FORMAT, DATA_AT(14), "file truncated", false },
	{ "F4 misaligned", 0,
	  "{\"t\":{\"dtype\":\"F4\",\"shape\":[1,3],\"data_offsets\":[0,2]}}",
	  2, CKPT_ERR_FORMAT, 9, "do not end on a byte boundary", false },
	{ "F6 misaligned", 0,
	  "{\"t\":{\"dtype\":\"F6_E2M3\",\"shape\":[3],\"data_offsets\":[0,3]}}",
	  3, CKPT_ERR_FORMAT, 9, "(18 bits) do not end on a byte", false },
	{ "F4 wrong size", 0,
	  "{\"t\":{\"dtype\":\"F4\",\"shape\":[1,2],\"data_offsets\":[0,2]}}",
	  2, CKPT_ERR_FORMAT, DATA_AT(0), "need 1 bytes", false },
	/* ours and security.md 2.4 */
	{ "duplicate tensor names", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
	  "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
	  2, CKPT_ERR_FORMAT, 61, "duplicate tensor name 't'", false },
	{ "duplicate field", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],"
	  "\"data_offsets\":[0,1]}}", 1, CKPT_ERR_FORMAT, 27,
	  "duplicate field \"dtype\"", false },
	{ "duplicate __metadata__", 0,
	  "{\"__metadata__\":{},\"__metadata__\":{}}", 0, CKPT_ERR_FORMAT, 42,
	  "duplicate key \"__metadata__\"", false },
	{ "duplicate metadata key", 0,
	  "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, CKPT_ERR_FORMAT, 33,
	  "duplicate key \"a\" in __metadata__", false },
	{ "duplicate key in an unknown field", 0,
	  "{\"t\":{\"x\":{\"k\":1,\"k\":2},\"dtype\":\"U8\",\"shape\":[1],"
	  "\"data_offsets\":[0,1]}}", 1, CKPT_ERR_FORMAT, -3,
	  "duplicate key \"k\"", false },
	{ "hole between tensors", 0,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	  "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}",
	  5, CKPT_ERR_FORMAT, DATA_AT(3), "leaves a hole", false },
	{ "overlapping tensors", 0,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	  "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}",
	  3, CKPT_ERR_FORMAT, DATA_AT(1), "overlaps the previous tensor (expected begin 2, after 'a')",
	  false },
	{ "not starting at 0", 0,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
	  4, CKPT_ERR_FORMAT, DATA_AT(2), "leaves a hole", false },
	{ "end before begin", 0,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	  "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,1]}}",
	  2, CKPT_ERR_FORMAT, DATA_AT(2), "[2, 1] ends before it begins",
	  false },
	{ "offsets beyond the file", 0,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
	  2, CKPT_ERR_FORMAT, DATA_AT(2), "file truncated", false },
	{ "unknown dtype", 0,
	  "{\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	  4, CKPT_ERR_FORMAT, 22, "unknown dtype \"F33\"", false },
	{ "wrong-case dtype", 0,
	  "{\"t\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	  4, CKPT_ERR_FORMAT, 22, "unknown dtype \"f32\"", false },
	{ "torch spelling of a dtype", 0,
	  "{\"t\":{\"dtype\":\"F8_E4M3FN\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	  1, CKPT_ERR_FORMAT, 22, "unknown dtype", false },
	{ "dtype not a string", 0,
	  "{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}",
	  4, CKPT_ERR_FORMAT, 22, "dtype must be a string", false },
	{ "negative shape", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}",
	  1, CKPT_ERR_FORMAT, 36, "negative number", false },
	{ "negative zero", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[-0],\"data_offsets\":[0,0]}}",
	  0, CKPT_ERR_FORMAT, 36, "negative number", false },
	{ "float in shape", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[16.0],\"data_offsets\":[0,16]}}",
	  16, CKPT_ERR_FORMAT, 36, "not floating-point", false },
	{ "exponent in offsets", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[1000],\"data_offsets\":[0,1e3]}}",
	  0, CKPT_ERR_FORMAT, 60, "not floating-point", false },
	{ "integer above 2^64-1", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],"
	  "\"data_offsets\":[0,1]}}", 1, CKPT_ERR_FORMAT, 36,
	  "does not fit 64 bits", false },
	{ "leading zero", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}",
	  1, CKPT_ERR_FORMAT, 36, "leading zero", false },
	{ "string in shape", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}",
	  1, CKPT_ERR_FORMAT, 36, "non-negative integers", false },
	{ "three data offsets", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}",
	  1, CKPT_ERR_FORMAT, 54, "exactly 2 integers", false },
	{ "missing data_offsets", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, CKPT_ERR_FORMAT, 13,
	  "missing field \"data_offsets\"", false },
	{ "entry not an object", 0, "{\"t\":[1]}", 0, CKPT_ERR_FORMAT, 13,
	  "entry must be an object", false },
	{ "metadata value not a string", 0,
	  "{\"__metadata__\":{\"epoch\":3}}", 0, CKPT_ERR_FORMAT, 33,
	  "value of \"epoch\" is not a string", false },
	{ "metadata not an object", 0, "{\"__metadata__\":\"pt\"}", 0,
	  CKPT_ERR_FORMAT, 24, "must be an object", false },
	{ "NUL padding", 0, "{}\0\0", 0, CKPT_ERR_FORMAT, 10,
	  "unexpected data after the header", false },
	{ "data after the object", 0, "{} {}", 0, CKPT_ERR_FORMAT, 11,
	  "unexpected data after the header", false },
	{ "trailing comma", 0, "{\"__metadata__\":{},}", 0,
	  CKPT_ERR_FORMAT, 27, "invalid JSON", false },
	{ "control character in a name", 0, "{\"a\tb\":1}", 0,
	  CKPT_ERR_FORMAT, 11, "control character", false },
	{ "lone surrogate escape", 0, "{\"\\ud800\":1}", 0, CKPT_ERR_FORMAT,
	  10, "lone surrogate", false },
	{ "escaped NUL", 0, "{\"a\\u0000\":1}", 0, CKPT_ERR_FORMAT, 11,
	  "\\u0000", false },
	{ "bad escape", 0, "{\"\\x\":1}", 0, CKPT_ERR_FORMAT, 10,
	  "invalid escape", false },
	{ "deep unknown field", 0,
	  "{\"t\":{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 0,
	  CKPT_ERR_FORMAT, -3, "nesting deeper", false },
	{ "too many dimensions", 0,
	  "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
	  "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
	  "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
	  CKPT_ERR_LIMIT, -3, "more than 64 entries", false },
};

START_TEST(test_bad)
{
	const struct bad_case *c = &bad_cases[_i];
	static unsigned char buf[8192];
	struct ckpt_file *f = NULL;
	struct ckpt_error err;
	size_t hlen = 0, n;
	const char *path;
	unsigned char zero[64] = { 0 };
	int rc;

	/* NUL padding is part of the header: count explicitly */
	hlen = strlen(c->hdr);
	if (!strcmp(c->what, "NUL padding"))
		hlen = 4;
	n = build(buf, sizeof(buf), c->len, c->hdr, hlen, zero, c->dlen);
	if (!strcmp(c->what, "header too small (empty)"))
		n = 0;
	if (!strcmp(c->what, "invalid header length"))
		n = 8;
	path = unit_write_file("t.safetensors", buf, n);
	ckpt_error_clear(&err);
	if (c->direct) {
		rc = read_direct(path, &err);
	} else {
		rc = ckpt_file_open(path, 0, &f, &err);
		if (!rc) {
			ck_assert_msg(ckpt_file_format(f) ==
			    CKPT_FORMAT_SAFETENSORS, "%s: sniffed as %s",
			    c->what, ckpt_format_name(ckpt_file_format(f)));
			ckpt_file_free(f);
		}
	}
	ck_assert_msg(rc == c->code, "%s: status %d, wanted %d (%s)",
	    c->what, rc, c->code, err.message);
	ck_assert_int_eq(err.code, c->code);
	ck_assert_msg(strstr(err.message, c->msg), "%s: message '%s' lacks "
	    "'%s'", c->what, err.message, c->msg);
	ck_assert_str_eq(err.path, path);
	if (c->offset <= -1000)
		ck_assert_msg(err.offset == (int64_t)(8 + hlen +
		    (size_t)(-1000 - c->offset)), "%s: offset %lld, wanted "
		    "%zu", c->what, (long long)err.offset,
		    8 + hlen + (size_t)(-1000 - c->offset));
	else if (c->offset != -3)
		ck_assert_msg(err.offset == c->offset, "%s: offset %lld, "
		    "wanted %lld (%s)", c->what, (long long)err.offset,
		    c->offset, err.message);
	else
		ck_assert_int_ge(err.offset, 8);
}
END_TEST

/* A file above the 100,000,000-byte header cap, sparse. */
START_TEST(test_header_over_limit)
{
	unsigned char len[9] = { 0 };
	uint64_t n = 100000001;
	struct ckpt_file *f;
	struct ckpt_error err;
	const char *path;
	int fd;

	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)(n >> (8 * i));
	len[8] = '{';
	path = unit_write_file("big.safetensors", len, 9);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(8 + n + 10)), 0);
	close(fd);
	ck_assert_int_eq(ckpt_file_open(path, 0, &f, &err), CKPT_ERR_FORMAT);
	ck_assert_msg(strstr(err.message, "header length 100000001 exceeds "
	    "the limit of 100000000 bytes"), "%s", err.message);
	ck_assert_int_eq(err.offset, 0);
}
END_TEST

struct good_case {
	const char *what;
	const char *hdr;
	size_t hlen;		/* 0: strlen */
	size_t dlen;
	size_t ntensors;
};

static const struct good_case good_cases[] = {
	{ "empty header", "{}", 0, 0, 0 },
	{ "canonical empty file", "{}      ", 0, 0, 0 },
	{ "trailing whitespace", "{}\r \t\n", 0, 0, 0 },
	{ "leading whitespace", "\t\n{}\r ", 0, 0, 0 },
	{ "whitespace everywhere", " { \"t\" : { \"dtype\" : \"U8\" , "
	  "\"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] } } ", 0, 2, 1 },
	{ "scalar", "{\"t\":{\"dtype\":\"I32\",\"shape\":[],"
	  "\"data_offsets\":[0,4]}}", 0, 4, 1 },
	{ "empty tensor", "{\"t\":{\"dtype\":\"I32\",\"shape\":[2,0],"
	  "\"data_offsets\":[0,0]}}", 0, 0, 1 },
	{ "several empty tensors at one offset",
	  "{\"a\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[0,0]},"
	  "\"b\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
	  "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0,
	  1, 3 },
	{ "metadata null", "{\"__metadata__\":null}", 0, 0, 0 },
	{ "unknown entry fields ignored", "{\"t\":{\"dtype\":\"U8\","
	  "\"extra\":{\"a\":[1,2.5,-3e4,true,false,null,\"x\"]},\"shape\":[1],"
	  "\"data_offsets\":[0,1]}}", 0, 1, 1 },
	{ "header order irrelevant", "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],"
	  "\"data_offsets\":[1,2]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
	  "\"data_offsets\":[0,1]}}", 0, 2, 2 },
	{ "unicode names", "{\"\\u00e9\\ud83d\\ude00\xc3\xa9\":{\"dtype\":"
	  "\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, 1 },
	{ "every dtype",
	  "{\"a\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]},"
	  "\"b\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[8,16]},"
	  "\"c\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[16,20]},"
	  "\"d\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[20,22]},"
	  "\"e\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[1],\"data_offsets\":[22,23]},"
	  "\"f\":{\"dtype\":\"F8_E5M2FNUZ\",\"shape\":[1],\"data_offsets\":[23,24]},"
	  "\"g\":{\"dtype\":\"F8_E8M0\",\"shape\":[1],\"data_offsets\":[24,25]},"
	  "\"h\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[25,28]},"
	  "\"i\":{\"dtype\":\"F6_E2M3\",\"shape\":[8],\"data_offsets\":[28,34]},"
	  "\"j\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[34,37]},"
	  "\"k\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[37,38]}}",
	  0, 38, 11 },
};

START_TEST(test_good)
{
	const struct good_case *c = &good_cases[_i];
	static unsigned char buf[8192];
	unsigned char zero[64] = { 0 };
	struct ckpt_file *f;
	struct ckpt_error err;
	size_t hlen = c->hlen ? c->hlen : strlen(c->hdr), n;
	const char *path;

	n = build(buf, sizeof(buf), 0, c->hdr, hlen, zero, c->dlen);
	path = unit_write_file("g.safetensors", buf, n);
	ckpt_error_clear(&err);
	ck_assert_msg(ckpt_file_open(path, 0, &f, &err) == 0, "%s: %s",
	    c->what, err.message);
	ck_assert_int_eq(ckpt_file_format(f), CKPT_FORMAT_SAFETENSORS);
	ck_assert_uint_eq(ckpt_file_tensor_count(f), c->ntensors);
	/* tensors come in data order, with absolute offsets */
	for (size_t i = 0; i < c->ntensors; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);

		ck_assert_uint_ge(t->offset, 8 + hlen);
		ck_assert_uint_le(t->offset + t->nbytes, n);
		ck_assert_uint_eq(t->span, t->nbytes);
		ck_assert(t->contiguous);
		if (i)
			ck_assert_uint_ge(t->offset, ckpt_file_tensor(f,
			    i - 1)->offset);
	}
	ckpt_file_free(f);
}
END_TEST

START_TEST(test_details)
{
	static const char hdr[] = "{\"__metadata__\":{\"format\":\"pt\","
	    "\"z\":\"\\\"q\\\"\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
	    "\"data_offsets\":[8,32]},\"s\":{\"dtype\":\"I64\",\"shape\":[],"
	    "\"data_offsets\":[0,8]}}";
	static unsigned char buf[512];
	unsigned char data[32] = { 0 };
	const struct ckpt_tensor *t;
	struct ckpt_file *f;
	struct ckpt_error err;
	size_t n;

	n = build(buf, sizeof(buf), 0, hdr, strlen(hdr), data, 32);
	ck_assert_int_eq(ckpt_file_open(unit_write_file("d.safetensors", buf,
	    n), 0, &f, &err), 0);
	ck_assert_str_eq(ckpt_file_metadata_json(f),
	    "{\"format\":\"pt\",\"z\":\"\\\"q\\\"\"}");
	ck_assert_uint_eq(ckpt_file_tensor_count(f), 2);
	t = ckpt_file_tensor(f, 0);
	ck_assert_str_eq(t->name, "s");
	ck_assert_uint_eq(t->ndim, 0);
	ck_assert_uint_eq(t->numel, 1);
	ck_assert_uint_eq(t->offset, 8 + strlen(hdr));
	t = ckpt_file_tensor(f, 1);
	ck_assert_str_eq(t->name, "w");
	ck_assert_int_eq(t->dtype, CKPT_DTYPE_F32);
	ck_assert_uint_eq(t->ndim, 2);
	ck_assert_uint_eq(t->shape[0], 2);
	ck_assert_uint_eq(t->shape[1], 3);
	ck_assert_uint_eq(t->numel, 6);
	ck_assert_uint_eq(t->nbytes, 24);
	ck_assert_uint_eq(t->offset, 8 + strlen(hdr) + 8);
	ck_assert_ptr_null(t->strides);
	ck_assert_uint_eq(ckpt_file_finding_count(f), 0);
	ckpt_file_free(f);
}
END_TEST

START_TEST(test_leading_whitespace_finding)
{
	static const char hdr[] = "\n{}";
	static unsigned char buf[64];
	struct ckpt_file *f;
	struct ckpt_error err;
	size_t n = build(buf, sizeof(buf), 0, hdr, 3, NULL, 0);

	ck_assert_int_eq(ckpt_file_open(unit_write_file("w.safetensors", buf,
	    n), 0, &f, &err), 0);
	ck_assert_uint_eq(ckpt_file_finding_count(f), 1);
	ck_assert_str_eq(ckpt_file_finding(f, 0)->id,
	    "header-leading-whitespace");
	ckpt_file_free(f);
}
END_TEST

/* Sniffing: text before a brace is not safetensors; binary is. */
START_TEST(test_sniff)
{
	char reason[256];
	unsigned char st[] = { 0x00, 0, 0, 0, 0, 1, 0, 0, '{' };

	ck_assert_int_eq(ckpt_sniff((const unsigned char *)"abcdefgh{", 9, 9,
	    "x", reason, sizeof(reason)), CKPT_FORMAT_TEXT);
	ck_assert_int_eq(ckpt_sniff(st, 9, 512, "m.safetensors", reason,
	    sizeof(reason)), CKPT_FORMAT_SAFETENSORS);
	ck_assert_int_eq(ckpt_sniff((const unsigned char *)"", 0, 0, "x",
	    reason, sizeof(reason)), CKPT_FORMAT_UNKNOWN);
	ck_assert_str_eq(reason, "an empty file");
	ck_assert_int_eq(ckpt_sniff((const unsigned char *)
	    "version https://git-lfs.github.com/spec/v1\n", 44, 44, "x",
	    reason, sizeof(reason)), CKPT_FORMAT_UNKNOWN);
	ck_assert_ptr_nonnull(strstr(reason, "Git LFS pointer"));
	ck_assert_int_eq(ckpt_sniff((const unsigned char *)"\n<html>", 7, 7,
	    "x", reason, sizeof(reason)), CKPT_FORMAT_UNKNOWN);
	ck_assert_ptr_nonnull(strstr(reason, "HTML"));
	ck_assert_int_eq(ckpt_sniff((const unsigned char *)"{\"error\":1}",
	    11, 11, "m.bin", reason, sizeof(reason)), CKPT_FORMAT_UNKNOWN);
	ck_assert_int_eq(ckpt_sniff((const unsigned char *)"{\"error\":1}",
	    11, 11, "m.json", reason, sizeof(reason)), CKPT_FORMAT_JSON);
}
END_TEST

/*
 * A header length beyond the file: a broken safetensors file when '{'
 * follows, or whitespace under a weights name; other binary files with
 * whitespace at byte 8 (a tokenizer model) are just of no format.
 */
START_TEST(test_sniff_bad_length)
{
	char reason[256];
	unsigned char brace[] = { 1, 2, 3, 4, 5, 6, 7, 8, '{' };
	unsigned char space[] = { 1, 2, 3, 4, 5, 6, 7, 8, '\t' };

	ck_assert_int_eq(ckpt_sniff(brace, 9, 199, "model", reason,
	    sizeof(reason)), CKPT_FORMAT_SAFETENSORS);
	ck_assert_int_eq(ckpt_sniff(space, 9, 199, "m.safetensors", reason,
	    sizeof(reason)), CKPT_FORMAT_SAFETENSORS);
	ck_assert_int_eq(ckpt_sniff(space, 9, 199, "tokenizer.model", reason,
	    sizeof(reason)), CKPT_FORMAT_UNKNOWN);
	ck_assert_str_eq(reason, "no known format starts with these bytes");
}
END_TEST

START_TEST(test_truncated_zip)
{
	static const unsigned char zip[64] = { 'P', 'K', 3, 4, 20 };
	struct ckpt_file *f;
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_file_open(unit_write_file("z.pt", zip,
	    sizeof(zip)), 0, &f, &err), 0);
	ck_assert_int_eq(ckpt_file_format(f), CKPT_FORMAT_UNKNOWN);
	ck_assert_uint_eq(ckpt_file_finding_count(f), 1);
	ck_assert_ptr_nonnull(strstr(ckpt_file_finding(f, 0)->message,
	    "truncated zip"));
	ckpt_file_free(f);
}
END_TEST

Suite *
safetensors_suite(void)
{
	Suite *s = suite_create("safetensors");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_loop_test(tc, test_bad, 0, (int)CKPT_ARRAY_SIZE(bad_cases));
	tcase_add_loop_test(tc, test_good, 0,
	    (int)CKPT_ARRAY_SIZE(good_cases));
	tcase_add_test(tc, test_header_over_limit);
	tcase_add_test(tc, test_details);
	tcase_add_test(tc, test_leading_whitespace_finding);
	tcase_add_test(tc, test_truncated_zip);
	tcase_add_test(tc, test_sniff);
	tcase_add_test(tc, test_sniff_bad_length);
	suite_add_tcase(s, tc);
	return s;
}
