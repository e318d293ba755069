/* SPDX-License-Identifier: MIT */
/*
 * dwrite.c - writing a new file from its first byte to its last with
 * O_DIRECT: the bytes are gathered into a few aligned buffers, and a
 * thread of its own writes each full buffer to the disk while the next
 * one fills.
 *
 * Why: a buffered write of a large file costs a core as much as the
 * disk's time (page allocation, the copy into the page cache, block
 * reservation, then writeback), and leaves the fsync of the commit
 * waiting for the writeback of what is still dirty.  With O_DIRECT the
 * disk reads the buffers themselves: no page cache, no copy, and when the
 * last write returns the data are on the device, so the fsync has only
 * the metadata and the device's cache to flush.  The caller still fsyncs
 * (and renames): durability is unchanged.
 *
 * Every write is of whole aligned blocks at an aligned offset; the tail
 * is padded with zeros to a block and the file cut back to its length.
 * Where the filesystem cannot do O_DIRECT (statx says so, fcntl refuses
 * the flag, or a write fails with EINVAL), the same writes go on
 * buffered: a slower path, never a failure.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define DW_ALIGN	((size_t)4096)	/* offsets, lengths, addresses */
#define DW_CHUNK	((size_t)16 << 20)	/* bytes per write */
#define DW_SLOTS	3		/* one filling, two for the writer */

struct slot {
	unsigned char *buf;	/* DW_CHUNK bytes, aligned */
	size_t len;		/* bytes queued */
	uint64_t off;		/* their place in the file */
	bool queued;		/* the writer's until it clears it (mu) */
};

struct ckpt_dwrite {
	int fd;
	const char *path;
	bool direct;		/* O_DIRECT still set on fd (writer's) */
	struct slot slot[DW_SLOTS];
	size_t cur;		/* the slot being filled */
	uint64_t off;		/* the file offset of its first byte */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t work;	/* a slot queued, or stop */
	pthread_cond_t freed;	/* a slot written (or failed) */
	bool stop;
	int werrno;		/* the writer's first failure (mu) */
};

/* Leaves O_DIRECT: the rest is written through the page cache. */
static void
go_buffered(struct ckpt_dwrite *w)
{
	int fl = fcntl(w->fd, F_GETFL);

	if (fl >= 0)
		(void)fcntl(w->fd, F_SETFL, fl & ~O_DIRECT);
	w->direct = false;
}

/* n bytes at off; 0 or an errno. */
static int
put(struct ckpt_dwrite *w, const unsigned char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(w->fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL && w->direct) {
			/* This file cannot be written directly after all. */
			go_buffered(w);
			continue;
		}
		if (k < 0)
			return errno;
		if (!k)
			return EIO;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
		/* A short write leaves the rest unaligned. */
		if (n && w->direct)
			go_buffered(w);
	}
	return 0;
}

/* The writer: the queued slots in order, each written whole. */
static void *
writer_main(void *arg)
{
	struct ckpt_dwrite *w = arg;
	size_t i = 0;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct slot *s = &w->slot[i];
		bool failed;
		size_t n;
		int e;

		while (!s->queued && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		if (!s->queued)
			break;
		failed = w->werrno != 0;
		pthread_mutex_unlock(&w->mu);
		n = s->len;
		if (w->direct && n % DW_ALIGN) {
			/* The tail: zeros to a whole block, cut off after. */
			size_t pad = DW_ALIGN - n % DW_ALIGN;

			memset(s->buf + n, 0, pad);
			n += pad;
		}
		e = failed ? 0 : put(w, s->buf, n, s->off);
		pthread_mutex_lock(&w->mu);
		if (e && !w->werrno)
			w->werrno = e;
		s->queued = false;
		pthread_cond_broadcast(&w->freed);
		i = (i + 1) % DW_SLOTS;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Whether fd's filesystem can write it directly in DW_ALIGN units;
 * without an answer from statx, fcntl and the first write tell. */
static bool
direct_possible(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx sx;

	if (!statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) &&
	    (sx.stx_mask & STATX_DIOALIGN))
		return sx.stx_dio_offset_align &&
		    sx.stx_dio_offset_align <= DW_ALIGN &&
		    DW_ALIGN % sx.stx_dio_offset_align == 0 &&
		    sx.stx_dio_mem_align <= DW_ALIGN &&
		    (!sx.stx_dio_mem_align ||
		    DW_ALIGN % sx.stx_dio_mem_align == 0);
#else
	(void)fd;
#endif
	return true;
}

int
ckpt_dwrite_start(int fd, const char *path, struct ckpt_dwrite **out,
    struct ckpt_error *err)
{
	struct ckpt_dwrite *w;
	struct stat st;
	int fl;

	*out = NULL;
	/* A new, empty file, written from its start. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size ||
	    lseek(fd, 0, SEEK_CUR) || !direct_possible(fd) ||
	    (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_DIRECT))
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, path, -1,
		    "cannot be written with O_DIRECT");
	if (!(w = calloc(1, sizeof(*w)))) {
		(void)fcntl(fd, F_SETFL, fl);
		return ckpt_error_nomem(err);
	}
	w->fd = fd;
	w->path = path;
	w->direct = true;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->freed, NULL);
	if (pthread_create(&w->th, NULL, writer_main, w)) {
		pthread_cond_destroy(&w->freed);
		pthread_cond_destroy(&w->work);
		pthread_mutex_destroy(&w->mu);
		free(w);
		(void)fcntl(fd, F_SETFL, fl);
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, path, -1,
		    "no thread to write with O_DIRECT");
	}
	*out = w;
	return CKPT_OK;
}

/* The writer's failure as the caller's error. */
static int
writer_error(struct ckpt_dwrite *w, struct ckpt_error *err)
{
	errno = w->werrno;
	return ckpt_error_errno(err, w->path, "cannot write");
}

/* Queues the slot being filled and waits for the next to be free. */
static int
queue_slot(struct ckpt_dwrite *w, struct ckpt_error *err)
{
	struct slot *s = &w->slot[w->cur];
	struct slot *next;
	int rc = CKPT_OK;

	pthread_mutex_lock(&w->mu);
	s->off = w->off;
	s->queued = true;
	pthread_cond_signal(&w->work);
	w->off += s->len;
	w->cur = (w->cur + 1) % DW_SLOTS;
	next = &w->slot[w->cur];
	while (next->queued && !w->werrno)
		pthread_cond_wait(&w->freed, &w->mu);
	if (w->werrno)
		rc = writer_error(w, err);
	pthread_mutex_unlock(&w->mu);
	next->len = 0;
	return rc;
}

unsigned char *
ckpt_dwrite_space(struct ckpt_dwrite *w, size_t *room, struct ckpt_error *err)
{
	struct slot *s = &w->slot[w->cur];

	if (!s->buf && !(s->buf = aligned_alloc(DW_ALIGN, DW_CHUNK))) {
		ckpt_error_nomem(err);
		return NULL;
	}
	/* Never full: a full slot is queued at once. */
	*room = DW_CHUNK - s->len;
	return s->buf + s->len;
}

int
ckpt_dwrite_commit(struct ckpt_dwrite *w, size_t n, struct ckpt_error *err)
{
	struct slot *s = &w->slot[w->cur];

	s->len += n;
	return s->len == DW_CHUNK ? queue_slot(w, err) : CKPT_OK;
}

int
ckpt_dwrite(struct ckpt_dwrite *w, const void *buf, size_t len,
    struct ckpt_error *err)
{
	const unsigned char *p = buf;

	while (len) {
		size_t room, n;
		unsigned char *dst = ckpt_dwrite_space(w, &room, err);
		int rc;

		if (!dst)
			return CKPT_ERR_NOMEM;
		n = room < len ? room : len;
		memcpy(dst, p, n);
		p += n;
		len -= n;
		if ((rc = ckpt_dwrite_commit(w, n, err)))
			return rc;
	}
	return CKPT_OK;
}

int
ckpt_dwrite_finish(struct ckpt_dwrite *w, bool complete,
    struct ckpt_error *err)
{
	int rc = CKPT_OK;

	if (!w)
		return CKPT_OK;
	if (complete && w->slot[w->cur].len)
		rc = queue_slot(w, err);
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	if (complete && !rc && w->werrno)
		rc = writer_error(w, err);
	/* The padding of the tail goes. */
	if (complete && !rc && ftruncate(w->fd, (off_t)w->off))
		rc = ckpt_error_errno(err, w->path, "cannot truncate");
	if (w->direct)
		go_buffered(w);
	for (size_t i = 0; i < DW_SLOTS; i++)
		free(w->slot[i].buf);
	pthread_cond_destroy(&w->freed);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return rc;
}
