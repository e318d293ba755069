/* SPDX-License-Identifier: MIT */
/* hfindex.c - placeholder until its reader lands (issue #3). */
#include "file.h"

int
ckpt_hfindex_read(struct ckpt_file *f, struct ckpt_error *err)
{
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, f->path, -1,
	    "reading %s files is not implemented yet",
	    ckpt_format_name(f->format));
}
