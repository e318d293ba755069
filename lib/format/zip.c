/* SPDX-License-Identifier: MIT */
/*
 * zip.c - the strict zip reader behind torch archives (see zip.h).
 *
 * torch finds records through the central directory and their data through
 * the local header's lengths; Python's zipfile insists that local and
 * central names agree; libarchive's streaming reader trusts local headers
 * alone.  Every such difference has been a scanner bypass, so this reader
 * reads both and reports any disagreement, requires members to be disjoint
 * and accounted for, and refuses what two sane readers could read
 * differently.  Deflated members are inflated through libarchive's gzip
 * filter (a listed dependency) by wrapping the raw deflate stream in a
 * gzip header; torch itself writes stored members only.
 */
#include "util/internal.h"

#include <pthread.h>

#include "format/zip.h"
#include "util/libarchive.h"

#define SIG_LFH		0x04034b50u
#define SIG_CDH		0x02014b50u
#define SIG_EOCD	0x06054b50u
#define SIG_EOCD64	0x06064b50u
#define SIG_LOC64	0x07064b50u
#define SIG_DD		0x08074b50u

#define LFH_LEN		30
#define CDH_LEN		46
#define EOCD_LEN	22
#define LOC64_LEN	20
#define EOCD64_LEN	56

#define FLAG_ENCRYPTED	0x0001u
#define FLAG_DEFLATE_OPT 0x0006u
#define FLAG_DESCRIPTOR	0x0008u
#define FLAG_PATCHED	0x0020u
#define FLAG_STRONG_ENC	0x0040u
#define FLAG_UTF8	0x0800u
#define FLAG_CD_ENC	0x2000u

#define EXTRA_ZIP64	0x0001u
#define EXTRA_ALIGN	0x4246u		/* "FB", torch's alignment padding */

/* The central directory is read whole; bigger than this is not torch. */
#define MAX_CD_BYTES	((uint64_t)256 << 20)

static uint16_t
le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* CRC-32, slicing by 8: verify checks every member of multi-GiB files. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
			    crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t
ckpt_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {
		uint32_t a = crc ^ le32(p), b = le32(p + 4);

		crc = crc_table[7][a & 0xff] ^ crc_table[6][(a >> 8) & 0xff] ^
		    crc_table[5][(a >> 16) & 0xff] ^ crc_table[4][a >> 24] ^
		    crc_table[3][b & 0xff] ^ crc_table[2][(b >> 8) & 0xff] ^
		    crc_table[1][(b >> 16) & 0xff] ^ crc_table[0][b >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void
ckpt_zip_free(struct ckpt_zip *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->n; i++)
		free(z->entries[i].name);
	free(z->entries);
	free(z->sorted);
	free(z->prefix);
	free(z);
}

static int
rd(struct ckpt_file *f, void *buf, size_t len, uint64_t off,
    struct ckpt_error *err)
{
	return ckpt_file_pread(f, buf, len, off, err);
}

/*
 * The local headers, read in central-directory order, which is file order
 * in every archive torch writes: through a window of the file, one pread
 * per WINDOW bytes rather than two per member (40,000 members: 80,000
 * system calls).  A header outside the window refills it from there.
 */
#define WINDOW	((size_t)256 << 10)

struct window {
	unsigned char *buf;		/* NULL: read directly */
	uint64_t off;
	size_t len;
};

static int
rd_win(struct ckpt_file *f, struct window *w, void *buf, size_t len,
    uint64_t off, struct ckpt_error *err)
{
	size_t n;
	int rc;

	if (!w->buf || len > WINDOW || off >= f->size)
		return rd(f, buf, len, off, err);
	if (off < w->off || off - w->off > w->len || w->len - (off - w->off) <
	    len) {
		n = f->size - off < WINDOW ? (size_t)(f->size - off) : WINDOW;
		if (n < len)
			return rd(f, buf, len, off, err);
		if ((rc = rd(f, w->buf, n, off, err))) {
			w->len = 0;
			return rc;
		}
		w->off = off;
		w->len = n;
	}
	memcpy(buf, w->buf + (off - w->off), len);
	return CKPT_OK;
}

/*
 * Names are data.  They still must not look like paths that escape, or
 * be ambiguous, in a checkpoint (security.md Z14).
 */
static const char *
bad_name(const char *name, size_t len)
{
	size_t i = 0;

	if (!len)
		return "an empty name";
	if (memchr(name, '\0', len))
		return "a NUL byte";
	if (name[0] == '/')
		return "an absolute path";
	if (memchr(name, '\\', len))
		return "a backslash";
	if (len >= 2 && name[1] == ':')
		return "a drive letter";
	while (i < len) {
		size_t j = i;

		while (j < len && name[j] != '/')
			j++;
		if ((j - i == 2 && name[i] == '.' && name[i + 1] == '.') ||
		    (j - i == 1 && name[i] == '.'))
			return "a '.' or '..' component";
		i = j + 1;
	}
	/* UTF-8 well-formedness (no overlongs or surrogates checked: this
	 * is about display, the bytes are compared exactly elsewhere). */
	for (i = 0; i < len;) {
		unsigned char c = (unsigned char)name[i];
		size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 :
		    (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;

		if (k == 9 || (k && i + k >= len))
			return "invalid UTF-8";
		for (size_t m = 1; m <= k; m++)
			if (((unsigned char)name[i + m] & 0xc0) != 0x80)
				return "invalid UTF-8";
		i += k + 1;
	}
	return NULL;
}

/* Zip64 extended information of a central entry (only sentinel fields). */
static int
cd_zip64(struct ckpt_file *f, const unsigned char *x, size_t xlen,
    uint64_t *usize, uint64_t *csize, uint64_t *lho, uint32_t *disk,
    uint64_t where, const char *name, struct ckpt_error *err)
{
	bool need = *usize == 0xffffffffu || *csize == 0xffffffffu ||
	    *lho == 0xffffffffu || *disk == 0xffffu;
	bool seen = false;
	size_t i = 0;

	while (i + 4 <= xlen) {
		uint16_t id = le16(x + i), n = le16(x + i + 2);
		const unsigned char *d = x + i + 4;
		size_t k = 0;

		if (i + 4 + n > xlen)
			break;
		if (id == EXTRA_ZIP64 && !seen) {
			seen = true;
			if (*usize == 0xffffffffu && k + 8 <= n)
				*usize = le64(d + k), k += 8;
			else if (*usize == 0xffffffffu)
				goto short64;
			if (*csize == 0xffffffffu && k + 8 <= n)
				*csize = le64(d + k), k += 8;
			else if (*csize == 0xffffffffu)
				goto short64;
			if (*lho == 0xffffffffu && k + 8 <= n)
				*lho = le64(d + k), k += 8;
			else if (*lho == 0xffffffffu)
				goto short64;
			if (*disk == 0xffffu && k + 4 <= n)
				*disk = le32(d + k), k += 4;
			else if (*disk == 0xffffu)
				goto short64;
			if (k != n)
				ckpt_file_add_finding(f, "zip-bad-extra",
				    CKPT_SEV_ERROR, name, (int64_t)where,
				    "zip64 extra field of '%s' has %u bytes, "
				    "its sentinels need %zu", name, n, k);
		}
		i += 4 + (size_t)n;
	}
	if (i != xlen)
		ckpt_file_add_finding(f, "zip-bad-extra", CKPT_SEV_ERROR, name,
		    (int64_t)where, "malformed extra field in the central "
		    "entry of '%s'", name);
	if (need && !seen)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)where, "central entry of '%s' has zip64 "
		    "sentinels but no zip64 extra field", name);
	return CKPT_OK;
short64:
	return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path, (int64_t)where,
	    "zip64 extra field of '%s' is too short for its sentinels", name);
}

static int
cmp_name(const struct ckpt_zip_entry *a, const struct ckpt_zip_entry *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* qsort has no context argument in C11: sort indices with a static. */
static const struct ckpt_zip_entry *sort_entries;

static int
by_name(const void *a, const void *b)
{
	const struct ckpt_zip_entry *x = &sort_entries[*(const size_t *)a];
	const struct ckpt_zip_entry *y = &sort_entries[*(const size_t *)b];
	int c = cmp_name(x, y);

	return c ? c : (*(const size_t *)a > *(const size_t *)b) -
	    (*(const size_t *)a < *(const size_t *)b);
}

static int
by_offset(const void *a, const void *b)
{
	const struct ckpt_zip_entry *x = &sort_entries[*(const size_t *)a];
	const struct ckpt_zip_entry *y = &sort_entries[*(const size_t *)b];

	return (x->lho > y->lho) - (x->lho < y->lho);
}

static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static void
sort_idx(size_t *idx, size_t n, const struct ckpt_zip_entry *e,
    int (*cmp)(const void *, const void *))
{
	pthread_mutex_lock(&sort_lock);
	sort_entries = e;
	qsort(idx, n, sizeof(*idx), cmp);
	sort_entries = NULL;
	pthread_mutex_unlock(&sort_lock);
}

/* Compares the local header of e with its central entry; sets data_offset
 * and end. */
static int
read_local(struct ckpt_file *f, struct ckpt_zip *z, struct ckpt_zip_entry *e,
    struct window *w, struct ckpt_error *err)
{
	unsigned char h[LFH_LEN], dd[24];
	unsigned char *var = NULL;
	uint64_t rel = e->lho - z->base, lcsize, lusize, off;
	uint16_t lflags, lmethod, nlen, xlen;
	uint32_t lcrc;
	bool z64 = false, mismatch = false;
	int rc;

	if (rel > z->len || z->len - rel < LFH_LEN)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)e->lho, "local header of '%s' lies beyond the "
		    "end of the archive", e->name);
	if ((rc = rd_win(f, w, h, LFH_LEN, e->lho, err)))
		return rc;
	if (le32(h) != SIG_LFH)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)e->lho, "no local header for '%s' where the "
		    "central directory says", e->name);
	lflags = le16(h + 6);
	lmethod = le16(h + 8);
	lcrc = le32(h + 14);
	lcsize = le32(h + 18);
	lusize = le32(h + 22);
	nlen = le16(h + 26);
	xlen = le16(h + 28);
	if (z->len - rel - LFH_LEN < (uint64_t)nlen + xlen)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)e->lho, "local header of '%s' runs past the end "
		    "of the archive", e->name);
	var = malloc((size_t)nlen + xlen + 1);
	if (!var)
		return ckpt_error_nomem(err);
	if ((rc = rd_win(f, w, var, (size_t)nlen + xlen, e->lho + LFH_LEN,
	    err)))
		goto out;
	if (nlen != e->name_len || memcmp(var, e->name, nlen)) {
		char shown[80];
		size_t k = nlen < sizeof(shown) - 1 ? nlen : sizeof(shown) - 1;

		for (size_t i = 0; i < k; i++)
			shown[i] = var[i] >= 0x20 && var[i] < 0x7f ?
			    (char)var[i] : '?';
		shown[k] = '\0';
		ckpt_file_add_finding(f, "zip-header-mismatch",
		    CKPT_SEV_ERROR, e->name, (int64_t)e->lho, "local header "
		    "names '%s' but the central directory '%s'", shown,
		    e->name);
	}
	/* Local extra fields: zip64 sizes, torch's alignment padding. */
	for (size_t i = nlen; i < (size_t)nlen + xlen;) {
		uint16_t id, n;

		if (i + 4 > (size_t)nlen + xlen ||
		    i + 4 + le16(var + i + 2) > (size_t)nlen + xlen) {
			ckpt_file_add_finding(f, "zip-bad-extra",
			    CKPT_SEV_ERROR, e->name, (int64_t)(e->lho + LFH_LEN
			    + i), "malformed extra field in the local header "
			    "of '%s'", e->name);
			break;
		}
		id = le16(var + i);
		n = le16(var + i + 2);
		if (id == EXTRA_ZIP64) {
			/* Standard: usize, csize when the local fields are
			 * sentinels; torch also stores its local header
			 * offset here (formats.md §6.1). */
			z64 = true;
			if (lusize == 0xffffffffu && n >= 16) {
				lusize = le64(var + i + 4);
				lcsize = le64(var + i + 12);
			}
		} else if (id == EXTRA_ALIGN) {
			for (uint16_t k = 0; k < n; k++)
				if (var[i + 4 + k] != 'Z') {
					ckpt_file_add_finding(f,
					    "zip-extra-field", CKPT_SEV_WARNING,
					    e->name, (int64_t)e->lho,
					    "alignment"
					    " padding of '%s' is not torch's",
					    e->name);
					break;
				}
		} else {
			ckpt_file_add_finding(f, "zip-extra-field",
			    CKPT_SEV_INFO, e->name, (int64_t)e->lho, "local "
			    "header of '%s' carries extra field 0x%04x, which "
			    "torch does not write", e->name, id);
		}
		i += 4 + (size_t)n;
	}
	(void)z64;
	if (lmethod != e->method) {
		ckpt_file_add_finding(f, "zip-header-mismatch",
		    CKPT_SEV_ERROR, e->name, (int64_t)e->lho, "compression "
		    "method of '%s' is %u in its local header but %u in the "
		    "central directory", e->name, lmethod, e->method);
	}
	if (lflags != e->flags) {
		ckpt_file_add_finding(f, "zip-header-mismatch",
		    CKPT_SEV_ERROR, e->name, (int64_t)e->lho, "flags of '%s' "
		    "are 0x%04x in its local header but 0x%04x in the central "
		    "directory", e->name, lflags, e->flags);
		if (lflags & (FLAG_ENCRYPTED | FLAG_STRONG_ENC))
			e->encrypted = true;
	}
	if (lflags & FLAG_DESCRIPTOR) {
		/* The real values follow the data; locals may be zero. */
		if ((lcrc && lcrc != e->crc) || (lcsize && lcsize !=
		    e->csize) || (lusize && lusize != e->usize))
			mismatch = true;
	} else if (lcrc != e->crc || lcsize != e->csize ||
	    lusize != e->usize) {
		mismatch = true;
	}
	if (mismatch)
		ckpt_file_add_finding(f, "zip-header-mismatch",
		    CKPT_SEV_ERROR, e->name, (int64_t)e->lho, "sizes or CRC of "
		    "'%s' differ between its local header and the central "
		    "directory", e->name);
	off = rel + LFH_LEN + nlen + xlen;
	if (off > z->len || z->len - off < e->csize) {
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)e->lho, "data of '%s' (%llu bytes) runs past the "
		    "end of the archive", e->name,
		    (unsigned long long)e->csize);
		goto out;
	}
	e->data_offset = z->base + off;
	e->end = e->data_offset + e->csize;
	if (lflags & FLAG_DESCRIPTOR) {
		uint64_t avail = z->len - (e->end - z->base);
		size_t n = avail < sizeof(dd) ? (size_t)avail : sizeof(dd);
		size_t s = 0, used = 0;

		memset(dd, 0, sizeof(dd));
		if ((rc = rd_win(f, w, dd, n, e->end, err)))
			goto out;
		if (n >= 4 && le32(dd) == SIG_DD)
			s = 4;
		if (n >= s + 12 && le32(dd + s) == e->crc &&
		    le32(dd + s + 4) == e->csize &&
		    le32(dd + s + 8) == e->usize)
			used = s + 12;
		else if (n >= s + 20 && le32(dd + s) == e->crc &&
		    le64(dd + s + 4) == e->csize &&
		    le64(dd + s + 12) == e->usize)
			used = s + 20;
		if (!used) {
			ckpt_file_add_finding(f, "zip-header-mismatch",
			    CKPT_SEV_ERROR, e->name, (int64_t)e->end, "data "
			    "descriptor of '%s' disagrees with the central "
			    "directory", e->name);
			used = n < s + 12 ? n : s + 12;
		}
		e->end += used;
	}
	rc = CKPT_OK;
out:
	free(var);
	return rc;
}

/* Flags and method of one central entry. */
static void
check_flags(struct ckpt_file *f, struct ckpt_zip_entry *e, uint64_t where)
{
	uint16_t ok = FLAG_DESCRIPTOR | FLAG_UTF8;

	if (e->method == 8)
		ok |= FLAG_DEFLATE_OPT;
	if (e->flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENC | FLAG_CD_ENC)) {
		e->encrypted = true;
		ckpt_file_add_finding(f, "zip-encrypted", CKPT_SEV_ERROR,
		    e->name, (int64_t)where, "member '%s' is encrypted "
		    "(flags 0x%04x)", e->name, e->flags);
	}
	if (e->flags & ~(ok | FLAG_ENCRYPTED | FLAG_STRONG_ENC | FLAG_CD_ENC))
		ckpt_file_add_finding(f, "zip-flags", CKPT_SEV_ERROR, e->name,
		    (int64_t)where, "member '%s' sets flag bits 0x%04x that "
		    "torch never writes", e->name,
		    e->flags & ~(ok | FLAG_ENCRYPTED | FLAG_STRONG_ENC |
		    FLAG_CD_ENC));
	if (e->method != 0 && e->method != 8)
		ckpt_file_add_finding(f, "zip-compression", CKPT_SEV_ERROR,
		    e->name, (int64_t)where, "member '%s' uses compression "
		    "method %u (only stored and deflate are supported)",
		    e->name, e->method);
	else if (e->method == 0 && e->csize != e->usize)
		ckpt_file_add_finding(f, "zip-header-mismatch",
		    CKPT_SEV_ERROR, e->name, (int64_t)where, "stored member "
		    "'%s' has compressed size %llu but size %llu", e->name,
		    (unsigned long long)e->csize,
		    (unsigned long long)e->usize);
}

static int
read_central(struct ckpt_file *f, struct ckpt_zip *z, const unsigned char *cd,
    uint64_t count, struct ckpt_error *err)
{
	size_t pos = 0;
	int rc;

	z->entries = calloc(count ? (size_t)count : 1, sizeof(*z->entries));
	if (!z->entries)
		return ckpt_error_nomem(err);
	for (uint64_t k = 0; k < count; k++) {
		struct ckpt_zip_entry *e = &z->entries[z->n];
		const unsigned char *h = cd + pos;
		uint64_t where = z->cd_offset + pos, lho;
		uint16_t nlen, xlen, clen;
		uint32_t disk;
		const char *why;

		if (z->cd_size - pos < CDH_LEN || le32(h) != SIG_CDH)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)where, "central directory entry %llu of "
			    "%llu is missing or damaged",
			    (unsigned long long)k + 1,
			    (unsigned long long)count);
		nlen = le16(h + 28);
		xlen = le16(h + 30);
		clen = le16(h + 32);
		if (z->cd_size - pos - CDH_LEN < (uint64_t)nlen + xlen + clen)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)where, "central directory entry %llu runs "
			    "past the directory", (unsigned long long)k + 1);
		e->name = malloc((size_t)nlen + 1);
		if (!e->name)
			return ckpt_error_nomem(err);
		memcpy(e->name, h + CDH_LEN, nlen);
		e->name[nlen] = '\0';
		e->name_len = nlen;
		z->n++;
		e->flags = le16(h + 8);
		e->method = le16(h + 10);
		e->crc = le32(h + 16);
		e->csize = le32(h + 20);
		e->usize = le32(h + 24);
		disk = le16(h + 34);
		lho = le32(h + 42);
		if ((rc = cd_zip64(f, h + CDH_LEN + nlen, xlen, &e->usize,
		    &e->csize, &lho, &disk, where, e->name, err)))
			return rc;
		if (disk != 0)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)where, "member '%s' is on disk %u; "
			    "multi-disk archives are not supported", e->name,
			    disk);
		if (lho >= z->len)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)where,
			    "member '%s' starts at %llu, beyond "
			    "the end of the archive", e->name,
			    (unsigned long long)lho);
		e->lho = z->base + lho;
		if ((why = bad_name(e->name, e->name_len)))
			ckpt_file_add_finding(f, "zip-bad-name",
			    CKPT_SEV_ERROR, e->name, (int64_t)where, "member "
			    "name '%s' has %s", e->name, why);
		check_flags(f, e, where);
		pos += CDH_LEN + (size_t)nlen + xlen + clen;
	}
	if (pos != z->cd_size)
		ckpt_file_add_finding(f, "zip-gap", CKPT_SEV_ERROR, NULL,
		    (int64_t)(z->cd_offset + pos), "%llu bytes after the last "
		    "central directory entry",
		    (unsigned long long)(z->cd_size - pos));
	return CKPT_OK;
}

/* Members must be disjoint, in order, and account for every byte. */
static void
check_layout(struct ckpt_file *f, struct ckpt_zip *z, size_t *idx)
{
	uint64_t prev_end = z->base;
	const char *prev = NULL;

	for (size_t i = 0; i < z->n; i++)
		idx[i] = i;
	sort_idx(idx, z->n, z->entries, by_offset);
	for (size_t i = 0; i < z->n; i++) {
		const struct ckpt_zip_entry *e = &z->entries[idx[i]];

		if (e->lho < prev_end && prev)
			ckpt_file_add_finding(f, "zip-overlap",
			    CKPT_SEV_ERROR, e->name, (int64_t)e->lho, "member "
			    "'%s' overlaps '%s' (a zip bomb or a second "
			    "reading of the same bytes)", e->name, prev);
		else if (e->lho > prev_end && !prev)
			ckpt_file_add_finding(f, "zip-prefix-data",
			    CKPT_SEV_ERROR, NULL, (int64_t)z->base,
			    "%llu bytes "
			    "before the first member (another format glued "
			    "in front?)",
			    (unsigned long long)(e->lho - z->base));
		else if (e->lho > prev_end)
			ckpt_file_add_finding(f, "zip-gap", CKPT_SEV_WARNING,
			    e->name, (int64_t)prev_end, "%llu unaccounted "
			    "bytes before member '%s'",
			    (unsigned long long)(e->lho - prev_end), e->name);
		if (e->end > prev_end)
			prev_end = e->end;
		prev = e->name;
	}
	if (prev && prev_end > z->cd_offset)
		ckpt_file_add_finding(f, "zip-overlap", CKPT_SEV_ERROR, prev,
		    (int64_t)z->cd_offset, "member data overlaps the central "
		    "directory");
	else if (prev && prev_end < z->cd_offset)
		ckpt_file_add_finding(f, "zip-gap", CKPT_SEV_WARNING, NULL,
		    (int64_t)prev_end, "%llu unaccounted bytes before the "
		    "central directory",
		    (unsigned long long)(z->cd_offset - prev_end));
	else if (!prev && z->cd_offset > z->base)
		ckpt_file_add_finding(f, "zip-prefix-data", CKPT_SEV_ERROR,
		    NULL, (int64_t)z->base, "%llu bytes before the central "
		    "directory of an empty archive",
		    (unsigned long long)(z->cd_offset - z->base));
}

static int
check_crc(struct ckpt_file *f, struct ckpt_zip_entry *e,
    struct ckpt_error *err)
{
	unsigned char *buf;
	uint32_t crc = 0;
	int rc = CKPT_OK;

	if (e->encrypted || (e->method != 0 && e->method != 8))
		return CKPT_OK;
	if (e->method == 8) {
		size_t len;

		rc = ckpt_zip_read(f, e, (size_t)1 << 30, &buf, &len, err);
		if (rc == CKPT_ERR_FORMAT || rc == CKPT_ERR_LIMIT ||
		    rc == CKPT_ERR_UNSUPPORTED) {
			ckpt_file_add_finding(f, "zip-bad-member",
			    CKPT_SEV_ERROR, e->name, (int64_t)e->data_offset,
			    "cannot inflate '%s': %s", e->name,
			    err ? err->message : "error");
			return CKPT_OK;
		}
		if (rc)
			return rc;
		crc = ckpt_crc32(0, buf, len);
		free(buf);
	} else {
		size_t cap = 1 << 20;

		buf = malloc(cap);
		if (!buf)
			return ckpt_error_nomem(err);
		for (uint64_t done = 0; done < e->csize && !rc;) {
			size_t n = e->csize - done < cap ?
			    (size_t)(e->csize - done) : cap;

			rc = rd(f, buf, n, e->data_offset + done, err);
			crc = ckpt_crc32(crc, buf, n);
			done += n;
		}
		free(buf);
		if (rc)
			return rc;
	}
	if (crc == e->crc)
		return CKPT_OK;
	if (e->crc == 0)
		return ckpt_file_add_finding(f, "zip-crc-missing",
		    CKPT_SEV_WARNING, e->name, (int64_t)e->data_offset,
		    "member '%s' records no CRC-32 (saved with CRC "
		    "computation off?)", e->name);
	return ckpt_file_add_finding(f, "zip-crc-mismatch", CKPT_SEV_ERROR,
	    e->name, (int64_t)e->data_offset, "CRC-32 of member '%s' is "
	    "%08x, the central directory records %08x", e->name, crc, e->crc);
}

/*
 * The end of central directory record of the archive at [base, base+len):
 * the last signature whose comment fits in the archive (a later one is
 * inside a comment).  Copies the record to rec and sets *eocd, its offset
 * from base, and *clen, its comment's length.
 */
static int
find_eocd(struct ckpt_file *f, uint64_t base, uint64_t len,
    unsigned char rec[EOCD_LEN], uint64_t *eocd, uint16_t *clen,
    struct ckpt_error *err)
{
	unsigned char *tail;
	size_t tlen, i;
	int rc;

	if (len < EOCD_LEN)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)base, "truncated zip archive: %llu bytes "
		    "cannot hold an end of central directory record",
		    (unsigned long long)len);
	tlen = len < EOCD_LEN + 65535 ? (size_t)len : EOCD_LEN + 65535;
	tail = malloc(tlen);
	if (!tail)
		return ckpt_error_nomem(err);
	if ((rc = rd(f, tail, tlen, base + len - tlen, err))) {
		free(tail);
		return rc;
	}
	for (i = tlen - EOCD_LEN + 1; i-- > 0;)
		if (le32(tail + i) == SIG_EOCD &&
		    i + EOCD_LEN + le16(tail + i + 20) <= tlen) {
			memcpy(rec, tail + i, EOCD_LEN);
			*eocd = len - tlen + i;
			*clen = le16(tail + i + 20);
			free(tail);
			return CKPT_OK;
		}
	free(tail);
	return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
	    (int64_t)(base + len), "truncated zip archive: no end of central "
	    "directory record (an interrupted save or download?)");
}

/* The end records: EOCD (and zip64 EOCD through its locator). */
static int
read_end(struct ckpt_file *f, struct ckpt_zip *z, uint64_t *count,
    struct ckpt_error *err)
{
	unsigned char end[EOCD_LEN], loc[LOC64_LEN], e64[EOCD64_LEN];
	uint64_t eocd, limit, n_total;
	uint32_t cd_size, cd_off;
	uint16_t n_disk, n16, disk, cd_disk, clen;
	bool found;
	int rc;

	if ((rc = find_eocd(f, z->base, z->len, end, &eocd, &clen, err)))
		return rc;
	disk = le16(end + 4);
	cd_disk = le16(end + 6);
	n_disk = le16(end + 8);
	n16 = le16(end + 10);
	cd_size = le32(end + 12);
	cd_off = le32(end + 16);
	if (eocd + EOCD_LEN + clen < z->len)
		ckpt_file_add_finding(f, "zip-trailing-data", CKPT_SEV_ERROR,
		    NULL, (int64_t)(z->base + eocd + EOCD_LEN + clen), "%llu "
		    "bytes after the end of central directory record",
		    (unsigned long long)(z->len - eocd - EOCD_LEN - clen));
	if (disk || cd_disk || n_disk != n16)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)(z->base + eocd), "multi-disk zip archives are "
		    "not supported");
	n_total = n16;
	z->cd_size = cd_size;
	z->cd_offset = cd_off;
	limit = eocd;
	found = false;
	if (eocd >= LOC64_LEN) {
		if ((rc = rd(f, loc, LOC64_LEN, z->base + eocd - LOC64_LEN,
		    err)))
			return rc;
		found = le32(loc) == SIG_LOC64;
	}
	if (found) {
		uint64_t off64 = le64(loc + 8), rec;

		if (le32(loc + 4) != 0 || le32(loc + 16) != 1)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)(z->base + eocd - LOC64_LEN), "zip64 "
			    "locator names another disk");
		if (off64 > eocd - LOC64_LEN ||
		    eocd - LOC64_LEN - off64 < EOCD64_LEN)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)(z->base + eocd - LOC64_LEN), "zip64 "
			    "locator points outside the archive");
		if ((rc = rd(f, e64, EOCD64_LEN, z->base + off64, err)))
			return rc;
		rec = le64(e64 + 4);
		if (le32(e64) != SIG_EOCD64 || rec < 44 || rec > 16384)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)(z->base + off64), "no zip64 end of "
			    "central directory record where its locator "
			    "points");
		if (off64 + 12 + rec != eocd - LOC64_LEN)
			ckpt_file_add_finding(f, "zip-gap", CKPT_SEV_ERROR,
			    NULL, (int64_t)(z->base + off64), "zip64 end "
			    "record and its locator are not adjacent");
		if (le32(e64 + 16) || le32(e64 + 20) ||
		    le64(e64 + 24) != le64(e64 + 32))
			return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)(z->base + off64), "multi-disk zip "
			    "archives are not supported");
		if ((n16 != 0xffff && n16 != le64(e64 + 32)) ||
		    (cd_size != 0xffffffffu && cd_size != le64(e64 + 40)) ||
		    (cd_off != 0xffffffffu && cd_off != le64(e64 + 48)))
			ckpt_file_add_finding(f, "zip-header-mismatch",
			    CKPT_SEV_ERROR, NULL, (int64_t)(z->base + eocd),
			    "end of central directory record and its zip64 "
			    "record disagree");
		n_total = le64(e64 + 32);
		z->cd_size = le64(e64 + 40);
		z->cd_offset = le64(e64 + 48);
		z->zip64 = true;
		limit = off64;
	} else if (n16 == 0xffff || cd_size == 0xffffffffu ||
	    cd_off == 0xffffffffu) {
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)(z->base + eocd), "zip64 sentinels in the end "
		    "record but no zip64 locator");
	}
	if (z->cd_offset > limit || limit - z->cd_offset < z->cd_size)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)(z->base + eocd), "central directory (%llu bytes "
		    "at %llu) does not end before its end record; truncated "
		    "or not a zip", (unsigned long long)z->cd_size,
		    (unsigned long long)z->cd_offset);
	if (z->cd_offset + z->cd_size < limit)
		ckpt_file_add_finding(f, "zip-gap", CKPT_SEV_ERROR, NULL,
		    (int64_t)(z->base + z->cd_offset + z->cd_size), "%llu "
		    "bytes between the central directory and its end record",
		    (unsigned long long)(limit - z->cd_offset - z->cd_size));
	if (n_total > z->cd_size / CDH_LEN)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)(z->base + eocd), "%llu entries cannot fit in a "
		    "central directory of %llu bytes",
		    (unsigned long long)n_total,
		    (unsigned long long)z->cd_size);
	if (z->cd_size > MAX_CD_BYTES)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, f->path,
		    (int64_t)(z->base + z->cd_offset), "central directory of "
		    "%llu bytes is too large", (unsigned long long)z->cd_size);
	z->cd_offset += z->base;
	*count = n_total;
	return CKPT_OK;
}

int
ckpt_zip_locate(struct ckpt_file *f, uint64_t base, uint64_t len,
    uint64_t *start, struct ckpt_error *err)
{
	unsigned char rec[EOCD_LEN], loc[LOC64_LEN], e64[EOCD64_LEN];
	uint64_t eocd, limit, cd_off, cd_size;
	uint16_t clen;
	int rc;

	if ((rc = find_eocd(f, base, len, rec, &eocd, &clen, err)))
		return rc;
	cd_size = le32(rec + 12);
	cd_off = le32(rec + 16);
	limit = eocd;
	if (eocd >= LOC64_LEN + EOCD64_LEN &&
	    !rd(f, loc, LOC64_LEN, base + eocd - LOC64_LEN, NULL) &&
	    le32(loc) == SIG_LOC64) {
		uint64_t rec_end = eocd - LOC64_LEN;

		/* the locator's offset is relative to the archive's start,
		 * which is what we are looking for: find the record just
		 * before the locator instead */
		for (uint64_t back = EOCD64_LEN; back <= rec_end &&
		    back <= 16384; back++) {
			if (rd(f, e64, EOCD64_LEN, base + rec_end - back, NULL))
				break;
			if (le32(e64) == SIG_EOCD64 &&
			    le64(e64 + 4) + 12 == back) {
				cd_size = le64(e64 + 40);
				cd_off = le64(e64 + 48);
				limit = rec_end - back;
				break;
			}
		}
	}
	if (cd_off > limit || limit - cd_off < cd_size)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)(base + eocd), "central directory does not fit");
	*start = limit - cd_size - cd_off;
	return CKPT_OK;
}

int
ckpt_zip_open(struct ckpt_file *f, uint64_t base, uint64_t len,
    struct ckpt_zip **out, struct ckpt_error *err)
{
	struct ckpt_zip *z;
	struct window w = { 0 };
	unsigned char *cd = NULL;
	uint64_t count = 0;
	int rc;

	if (base > f->size || len > f->size - base)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path,
		    (int64_t)base, "zip slice beyond the end of the file");
	z = calloc(1, sizeof(*z));
	if (!z)
		return ckpt_error_nomem(err);
	z->base = base;
	z->len = len;
	if ((rc = read_end(f, z, &count, err)))
		goto fail;
	cd = malloc(z->cd_size ? (size_t)z->cd_size : 1);
	if (!cd) {
		rc = ckpt_error_nomem(err);
		goto fail;
	}
	if ((rc = rd(f, cd, (size_t)z->cd_size, z->cd_offset, err)) ||
	    (rc = read_central(f, z, cd, count, err)))
		goto fail;
	free(cd);
	cd = NULL;
	w.buf = malloc(WINDOW);		/* none: direct reads */
	for (size_t i = 0; i < z->n && !rc; i++)
		rc = read_local(f, z, &z->entries[i], &w, err);
	free(w.buf);
	if (rc)
		goto fail;
	z->sorted = calloc(z->n ? z->n : 1, sizeof(*z->sorted));
	if (!z->sorted) {
		rc = ckpt_error_nomem(err);
		goto fail;
	}
	check_layout(f, z, z->sorted);
	for (size_t i = 0; i < z->n; i++)
		z->sorted[i] = i;
	sort_idx(z->sorted, z->n, z->entries, by_name);
	for (size_t i = 1; i < z->n; i++) {
		const struct ckpt_zip_entry *a = &z->entries[z->sorted[i - 1]];
		const struct ckpt_zip_entry *b = &z->entries[z->sorted[i]];

		if (!cmp_name(a, b))
			ckpt_file_add_finding(f, "zip-duplicate-name",
			    CKPT_SEV_ERROR, b->name, (int64_t)b->lho, "member "
			    "name '%s' appears more than once; readers "
			    "disagree on which one counts", b->name);
	}
	if (z->n) {
		const char *slash = memchr(z->entries[0].name, '/',
		    z->entries[0].name_len);

		if (slash) {
			z->prefix = strndup(z->entries[0].name,
			    (size_t)(slash - z->entries[0].name));
			if (!z->prefix) {
				rc = ckpt_error_nomem(err);
				goto fail;
			}
		}
	}
	if (f->flags & CKPT_OPEN_CHECK_CRC)
		for (size_t i = 0; i < z->n; i++)
			if ((rc = check_crc(f, &z->entries[i], err)))
				goto fail;
	*out = z;
	return CKPT_OK;
fail:
	free(cd);
	ckpt_zip_free(z);
	return rc;
}

struct ckpt_zip_entry *
ckpt_zip_find(struct ckpt_zip *z, const char *name)
{
	struct ckpt_zip_entry key = { 0 };
	char small[256], *full = small;
	size_t lo = 0, hi = z->n, pl = z->prefix ? strlen(z->prefix) + 1 : 0;
	size_t nl = strlen(name), n = pl + nl;

	/* "<prefix>/<name>" by hand: a state dict looks up 40,000 */
	if (n >= sizeof(small) && !(full = malloc(n + 1)))
		return NULL;
	if (pl) {
		memcpy(full, z->prefix, pl - 1);
		full[pl - 1] = '/';
	}
	memcpy(full + pl, name, nl + 1);
	key.name = full;
	key.name_len = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_name(&z->entries[z->sorted[mid]], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < z->n && !cmp_name(&z->entries[z->sorted[lo]], &key)) {
		if (full != small)
			free(full);
		z->entries[z->sorted[lo]].referenced = true;
		return &z->entries[z->sorted[lo]];
	}
	if (full != small)
		free(full);
	return NULL;
}

/* Inflates a raw deflate stream by handing libarchive a gzip member. */
static int
inflate_member(struct ckpt_file *f, const struct ckpt_zip_entry *e,
    const unsigned char *in, size_t inlen, unsigned char *out,
    struct ckpt_error *err)
{
	static const unsigned char gz[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0,
	    0, 0xff };
	unsigned char *g;
	struct archive *a;
	struct archive_entry *ae;
	const struct ckpt_la *la;
	struct ckpt_error lerr;
	size_t glen = sizeof(gz) + inlen + 8, done = 0;
	int rc;

	if ((rc = ckpt_la_load(&la, &lerr)))
		return ckpt_error_set(err, rc, f->path,
		    (int64_t)e->data_offset, "cannot inflate '%s': %s",
		    e->name, lerr.message);
	g = malloc(glen);
	if (!g)
		return ckpt_error_nomem(err);
	memcpy(g, gz, sizeof(gz));
	memcpy(g + sizeof(gz), in, inlen);
	/* Trailer: CRC and size from the central directory; our own CRC
	 * check (CKPT_OPEN_CHECK_CRC) reports a mismatch by name. */
	for (int i = 0; i < 4; i++) {
		g[sizeof(gz) + inlen + i] = (unsigned char)(e->crc >> (8 * i));
		g[sizeof(gz) + inlen + 4 + i] =
		    (unsigned char)(e->usize >> (8 * i));
	}
	a = la->read_new();
	if (!a) {
		free(g);
		return ckpt_error_nomem(err);
	}
	la->read_support_filter_gzip(a);
	la->read_support_format_raw(a);
	if (la->read_open_memory(a, g, glen) != ARCHIVE_OK ||
	    la->read_next_header(a, &ae) != ARCHIVE_OK) {
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)e->data_offset, "cannot inflate '%s': %s",
		    e->name, la->error_string(a) ?
		    la->error_string(a) : "not a deflate stream");
		goto out;
	}
	for (;;) {
		unsigned char extra;
		la_ssize_t n;

		if (done < e->usize)
			n = la->read_data(a, out + done,
			    (size_t)(e->usize - done));
		else
			n = la->read_data(a, &extra, 1);
		if (n < 0) {
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)e->data_offset, "cannot inflate '%s': "
			    "%s", e->name, la->error_string(a) ?
			    la->error_string(a) : "damaged data");
			goto out;
		}
		if (n == 0)
			break;
		if (done >= e->usize) {
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
			    (int64_t)e->data_offset, "'%s' inflates to more "
			    "than its recorded %llu bytes", e->name,
			    (unsigned long long)e->usize);
			goto out;
		}
		done += (size_t)n;
	}
	if (done != e->usize)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    (int64_t)e->data_offset, "'%s' inflates to %zu bytes, not "
		    "its recorded %llu", e->name, done,
		    (unsigned long long)e->usize);
out:
	la->read_free(a);
	free(g);
	return rc;
}

int
ckpt_zip_read(struct ckpt_file *f, const struct ckpt_zip_entry *e,
    size_t max, unsigned char **out, size_t *len, struct ckpt_error *err)
{
	unsigned char *buf, *in;
	int rc;

	if (e->encrypted)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, f->path,
		    (int64_t)e->lho, "member '%s' is encrypted", e->name);
	if (e->method != 0 && e->method != 8)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, f->path,
		    (int64_t)e->lho, "member '%s': unsupported compression "
		    "method %u", e->name, e->method);
	if (e->usize > max || e->csize > max)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, f->path,
		    (int64_t)e->lho, "member '%s' is %llu bytes, more than "
		    "the %zu this reader holds in memory", e->name,
		    (unsigned long long)e->usize, max);
	buf = malloc((size_t)e->usize + 1);
	if (!buf)
		return ckpt_error_nomem(err);
	if (e->method == 0) {
		rc = rd(f, buf, (size_t)e->usize, e->data_offset, err);
	} else {
		in = malloc(e->csize ? (size_t)e->csize : 1);
		if (!in) {
			free(buf);
			return ckpt_error_nomem(err);
		}
		rc = rd(f, in, (size_t)e->csize, e->data_offset, err);
		if (!rc)
			rc = inflate_member(f, e, in, (size_t)e->csize, buf,
			    err);
		free(in);
	}
	if (rc) {
		free(buf);
		return rc;
	}
	buf[e->usize] = '\0';
	*out = buf;
	*len = (size_t)e->usize;
	return CKPT_OK;
}
