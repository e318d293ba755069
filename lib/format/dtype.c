/* SPDX-License-Identifier: MIT */
/*
 * dtype.c - element types and format names.  Names follow safetensors
 * spelling; the torch-only types use the names torch prints, upper-cased.
 */
#include "util/internal.h"

static const struct {
	const char *name;
	unsigned int bits;
	bool is_float;
} dtypes[CKPT_DTYPE_COUNT] = {
	[CKPT_DTYPE_BOOL]	 = { "BOOL", 8, false },
	[CKPT_DTYPE_F4]		 = { "F4", 4, true },
	[CKPT_DTYPE_F6_E2M3]	 = { "F6_E2M3", 6, true },
	[CKPT_DTYPE_F6_E3M2]	 = { "F6_E3M2", 6, true },
	[CKPT_DTYPE_U8]		 = { "U8", 8, false },
	[CKPT_DTYPE_I8]		 = { "I8", 8, false },
	[CKPT_DTYPE_F8_E5M2]	 = { "F8_E5M2", 8, true },
	[CKPT_DTYPE_F8_E4M3]	 = { "F8_E4M3", 8, true },
	[CKPT_DTYPE_F8_E8M0]	 = { "F8_E8M0", 8, true },
	[CKPT_DTYPE_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8, true },
	[CKPT_DTYPE_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8, true },
	[CKPT_DTYPE_I16]	 = { "I16", 16, false },
	[CKPT_DTYPE_U16]	 = { "U16", 16, false },
	[CKPT_DTYPE_F16]	 = { "F16", 16, true },
	[CKPT_DTYPE_BF16]	 = { "BF16", 16, true },
	[CKPT_DTYPE_I32]	 = { "I32", 32, false },
	[CKPT_DTYPE_U32]	 = { "U32", 32, false },
	[CKPT_DTYPE_F32]	 = { "F32", 32, true },
	[CKPT_DTYPE_C64]	 = { "C64", 64, true },
	[CKPT_DTYPE_F64]	 = { "F64", 64, true },
	[CKPT_DTYPE_I64]	 = { "I64", 64, false },
	[CKPT_DTYPE_U64]	 = { "U64", 64, false },
	[CKPT_DTYPE_C32]	 = { "C32", 32, true },
	[CKPT_DTYPE_C128]	 = { "C128", 128, true },
	[CKPT_DTYPE_QI8]	 = { "QI8", 8, false },
	[CKPT_DTYPE_QU8]	 = { "QU8", 8, false },
	[CKPT_DTYPE_QI32]	 = { "QI32", 32, false },
	[CKPT_DTYPE_QU4X2]	 = { "QU4X2", 8, false },
	[CKPT_DTYPE_QU2X4]	 = { "QU2X4", 8, false },
};

/* The dtypes a safetensors header may name (the reference enum). */
#define LAST_SAFETENSORS_DTYPE CKPT_DTYPE_U64

const char *
ckpt_dtype_name(enum ckpt_dtype dt)
{
	if ((unsigned)dt >= CKPT_DTYPE_COUNT)
		return NULL;
	return dtypes[dt].name;
}

int
ckpt_dtype_from_name(const char *name, enum ckpt_dtype *out)
{
	for (unsigned i = 0; i <= LAST_SAFETENSORS_DTYPE; i++) {
		if (!strcmp(dtypes[i].name, name)) {
			*out = (enum ckpt_dtype)i;
			return CKPT_OK;
		}
	}
	return CKPT_ERR_FORMAT;
}

unsigned int
ckpt_dtype_bits(enum ckpt_dtype dt)
{
	return (unsigned)dt < CKPT_DTYPE_COUNT ? dtypes[dt].bits : 0;
}

bool
ckpt_dtype_is_float(enum ckpt_dtype dt)
{
	return (unsigned)dt < CKPT_DTYPE_COUNT && dtypes[dt].is_float;
}

static const char *const format_names[CKPT_FORMAT_COUNT] = {
	[CKPT_FORMAT_UNKNOWN]	   = "unknown",
	[CKPT_FORMAT_SAFETENSORS]  = "safetensors",
	[CKPT_FORMAT_TORCH_ZIP]	   = "torch-zip",
	[CKPT_FORMAT_TORCHSCRIPT]  = "torchscript",
	[CKPT_FORMAT_TORCH_LEGACY] = "torch-legacy",
	[CKPT_FORMAT_TORCH_TAR]	   = "torch-tar",
	[CKPT_FORMAT_PICKLE]	   = "pickle",
	[CKPT_FORMAT_DCP_METADATA] = "dcp-metadata",
	[CKPT_FORMAT_DCP_SHARD]	   = "dcp-shard",
	[CKPT_FORMAT_HF_INDEX]	   = "hf-index",
	[CKPT_FORMAT_JSON]	   = "json",
	[CKPT_FORMAT_YAML]	   = "yaml",
	[CKPT_FORMAT_TEXT]	   = "text",
	[CKPT_FORMAT_ZIP]	   = "zip",
	[CKPT_FORMAT_GGUF]	   = "gguf",
	[CKPT_FORMAT_NPY]	   = "npy",
	[CKPT_FORMAT_MANIFEST]	   = "ckpt-manifest",
};

const char *
ckpt_format_name(enum ckpt_format fmt)
{
	if ((unsigned)fmt >= CKPT_FORMAT_COUNT)
		return "unknown";
	return format_names[fmt];
}
