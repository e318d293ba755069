/* SPDX-License-Identifier: MIT */
/*
 * zip.h - a strict, read-only zip central-directory reader for torch
 * archives (internal to libckpt).  It trusts nothing: the end-of-central-
 * directory record is searched only in the last 64 KiB + 22 bytes, zip64
 * records are cross-checked, every central entry is matched against its
 * local header, and member extents must be disjoint and inside the file.
 * Entry names are data, never paths.  Members are located by offset so
 * that tensor data is never read unless asked for.
 *
 * What it can live with becomes a finding on the ckpt_file (ids "zip-*");
 * what makes the archive unreadable is a CKPT_ERR_FORMAT error.
 */
#ifndef CKPT_ZIP_H
#define CKPT_ZIP_H

#include "format/file.h"

struct ckpt_zip_entry {
	char *name;		/* NUL-terminated copy of the central name */
	size_t name_len;
	uint64_t lho;		/* local header offset, absolute */
	uint64_t data_offset;	/* first data byte, absolute */
	uint64_t csize, usize;
	uint64_t end;		/* one past data (+ data descriptor) */
	uint32_t crc;
	uint16_t method;	/* 0 stored, 8 deflate */
	uint16_t flags;		/* central general-purpose flags */
	bool encrypted;
	bool referenced;	/* set by ckpt_zip_find() */
};

struct ckpt_zip {
	struct ckpt_zip_entry *entries;	/* central-directory order */
	size_t n;
	uint64_t base, len;		/* the archive's slice of the file */
	uint64_t cd_offset, cd_size;	/* absolute */
	bool zip64;
	char *prefix;			/* "archive" for "archive/data.pkl"; or
					 * NULL */
	size_t *sorted;			/* entry indices sorted by name */
};

/*
 * Reads the archive occupying [base, base + len) of f.  Offsets inside the
 * archive are relative to base (a DCP shard holds zips back to back).  With
 * CKPT_OPEN_CHECK_CRC in f->flags every member's CRC32 is checked.
 */
int ckpt_zip_open(struct ckpt_file *f, uint64_t base, uint64_t len,
    struct ckpt_zip **out, struct ckpt_error *err);
void ckpt_zip_free(struct ckpt_zip *z);

/*
 * Where the last archive in [base, base + len) starts, relative to base,
 * from its end records alone: 0 for an ordinary zip, more when other
 * bytes (or other archives: a DCP .distcp shard) come before it.
 */
int ckpt_zip_locate(struct ckpt_file *f, uint64_t base, uint64_t len,
    uint64_t *start, struct ckpt_error *err);

/*
 * The entry named "<prefix>/<name>" (or exactly name when prefix is NULL),
 * or NULL.  Marks it referenced.  Duplicates were reported at open time;
 * the first in central-directory order is returned.
 */
struct ckpt_zip_entry *ckpt_zip_find(struct ckpt_zip *z, const char *name);

/*
 * Reads a whole member into a malloc'd buffer (plus a NUL byte after it),
 * inflating deflated members; at most max bytes.  *out is the caller's.
 */
int ckpt_zip_read(struct ckpt_file *f, const struct ckpt_zip_entry *e,
    size_t max, unsigned char **out, size_t *len, struct ckpt_error *err);

/* CRC-32 (ISO-HDLC, as zip uses it), continued from crc (0 to start). */
uint32_t ckpt_crc32(uint32_t crc, const void *buf, size_t len);

#endif /* CKPT_ZIP_H */
