/* SPDX-License-Identifier: MIT */
/*
 * hashing.c - the hashing engine of save and verify: whole-file SHA-256
 * and range digests (tensors, chunks) of many files on every core, each
 * byte read once.
 *
 * Every thread drives two lanes, two SHA-256 streams that advance together
 * through ckpt_sha256_update2 (two interleaved streams cost a core about
 * 1.35 times one).  A lane holds either a file pass, the whole-file
 * digest, which is a sequential chain, or a range (a tensor or chunk).
 *
 *  - A thread with a file pass takes as passenger the range that starts
 *    where the pass stands: both digest the same buffer, one read for two
 *    digests.  That is how the bytes of a weights file, hashed twice by
 *    the manifest's design (file + tensor), are read once.
 *  - A thread with no file pass left to start steals ranges, two at a
 *    time, from just ahead of the running passes.  While any thread
 *    steals, passes stop taking passengers and run alone: the pass of the
 *    largest file is the critical path, and one stream alone runs faster.
 *
 * So a checkpoint of many files keeps every core on two streams, and one
 * big file costs one sequential SHA-256 pass while the other cores digest
 * its tensors.  Identical ranges (tied weights) are hashed once.  Memory
 * is two fixed buffers per thread; reads are pread() on each lane's own
 * descriptor.
 *
 * A copy (ckpt_hash_copy_files, save --copy) writes the buffers it
 * digested to the destination at the same offsets: each byte is read
 * once for the copy and its digests.  The lane that writes a byte is the
 * file's pass where it has one (it reads every byte), else the lane of
 * the range holding it, so the ranges must cover the file without
 * overlap; a file whose ranges do not is given a pass.
 *
 * The writes are not the hashing threads' own: a lane reads a step into
 * a slot of its worker's ring, queues the slot to the writer threads,
 * and digests the slot while a writer writes it.  So the digest of a
 * block and its write overlap instead of following each other, and the
 * bytes digested are the bytes written (the slot is not reused before
 * its write is done).  Memory stays bounded: RING_SLOTS slots per
 * hashing thread.
 *
 * A copy's whole blocks are written with O_DIRECT where the caller
 * opened the copy so too (ckpt_hash_copy.dfd): the disk gets each block
 * as soon as it is digested, so that the writeback a save must wait for
 * before its commit runs from the first byte instead of after the copy,
 * and the CPUs, which digest, copy nothing into the page cache (a save
 * --copy of 1 GiB takes about 40% less CPU so, measured here).  The
 * partial blocks at either end of a write go through the buffered
 * descriptor; every byte is written once, so a block is written one way
 * or the other, never both.  A step is read into its slot at the same
 * offset within a block as in the file, so its whole blocks are aligned
 * in memory, and a lane's steps end on blocks.  An O_DIRECT write waits
 * for the disk: MAX_WRITERS writer threads keep that many in flight, of
 * DIRECT_STEP bytes each, and the copy's blocks are reserved first
 * (fallocate), so that a filesystem does not serialize writes that
 * extend the file.  A filesystem or device that refuses a write
 * (EINVAL) gets the rest of that copy buffered.
 *
 * Buffered (no O_DIRECT), steps are COPY_STEP bytes, and the writers
 * ask the kernel to start writing back what they wrote
 * (sync_file_range), so that the disk works while the CPUs digest and
 * the fsync of the commit protocol finds little left to do.  Without a
 * writer thread (pthread_create failed) the hashing threads write
 * themselves, buffered, as before.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/hashing.h"
#include "util/util.h"

#define BUF_SIZE	((size_t)1 << 20)
#define PROGRESS_STEP	((uint64_t)64 << 20)
#define MAX_THREADS	256
#define PASS		SIZE_MAX	/* lane.r of a file pass */
#define KICK_STEP	((uint64_t)8 << 20)	/* copy: writeback asked per */
#define COPY_STEP	((uint64_t)256 << 10)	/* copy: bytes per step */
#define RING_SLOTS	8	/* copy: a worker's steps queued or in write */
#define DIO_ALIGN	((size_t)4096)	/* copy: O_DIRECT blocks and buffers */
#define DIRECT_STEP	((size_t)1 << 20)	/* copy: O_DIRECT bytes per step */
#define MAX_WRITERS	4	/* copy: writer threads (O_DIRECT in flight) */

/* One file of the job list, with its ranges in offset order. */
struct fstate {
	struct ckpt_hash_job *job;
	size_t *order;		/* canonical range indices by (offset, end) */
	size_t norder;
	size_t *canon;		/* per range: the index it copies, or itself */
	bool *claimed;		/* per order position */
	int pass;		/* 0: none, 1: pending, 2: running, 3: done */
	uint64_t pass_pos;	/* where the running pass stands */
	size_t pass_cursor;	/* its next candidate passenger */
	size_t steal_cursor;	/* below it (and ahead of the pass): claimed */
	size_t low_cursor;	/* below it: all claimed */
	const struct ckpt_hash_copy *copy;	/* NULL: hash only */
	bool pass_writes;	/* the pass writes the copy, not the ranges */
	bool direct;		/* whole blocks go through copy->dfd (atomic
				 * once the writers run) */
};

/* A step's buffer in a worker's ring (copy with writer threads). */
struct slot {
	unsigned char *buf;	/* a block more than a step, aligned */
	bool busy;		/* queued or being written (copier.mu) */
};

/* One write for a writer thread: n bytes at data, at off of f's copy. */
struct witem {
	struct slot *slot;
	const unsigned char *data;	/* in slot: byte off at off % DIO_ALIGN */
	struct fstate *f;
	uint64_t off;
	size_t n;
	uint64_t kick_from, kick_to;	/* kick_to > kick_from: writeback */
};

/* The writer threads and their one FIFO of writes (mu). */
struct copier {
	struct engine *en;
	pthread_mutex_t mu;
	pthread_cond_t work;	/* an item, or stop */
	pthread_cond_t freed;	/* a slot's write is done */
	struct witem *v;
	size_t cap, head, n;
	pthread_t th[MAX_WRITERS];
	size_t nth;		/* writer threads running */
	bool stop;
};

struct engine {
	struct fstate *files;
	size_t nfiles;
	size_t *pass_order;	/* files with a pass, largest first */
	size_t npasses, next_pass;
	size_t steal_file;	/* files before it have nothing to steal */
	unsigned int stealers;
	pthread_mutex_t mu;
	uint64_t done, total, reported;
	ckpt_progress_fn progress;
	void *data;
	struct copier *cp;	/* copy: the writer threads, or NULL */
	struct ckpt_hash_job *jobs;	/* the caller's: job index for observe */
	ckpt_hash_observe_fn observe;	/* NULL: nobody looks at the bytes */
	void *oarg;
};

struct lane {
	struct fstate *f;	/* NULL: the lane is empty */
	size_t r;		/* range index, or PASS */
	uint64_t off, end;
	bool shared;		/* passenger: digests lane 0's buffer */
	struct ckpt_sha256 s;
	int fd;
	const struct fstate *fd_of;
	unsigned char *buf;
	uint64_t kick;		/* copy: written back up to here (asked) */
};

/* Called with en->mu held. */
static void
account_locked(struct engine *en, uint64_t n)
{
	en->done += n;
	if (en->progress && (en->done - en->reported >= PROGRESS_STEP ||
	    en->done == en->total)) {
		en->reported = en->done;
		en->progress(en->done, en->total, en->data);
	}
}

/* Called with en->mu held: the first failure of a job is the one kept. */
static void
job_fail_locked(struct ckpt_hash_job *job, const struct ckpt_error *e)
{
	if (!job->status) {
		job->status = e->code ? e->code : CKPT_ERR_IO;
		job->err = *e;
	}
}

static int
read_exact(int fd, const char *path, unsigned char *buf, size_t n,
    uint64_t off, struct ckpt_error *err)
{
	size_t got = 0;

	/* A save holding off SIGINT stops at its next read (interrupt.c);
	 * elsewhere nothing is ever pending. */
	if (ckpt_interrupt_pending())
		return ckpt_error_interrupted(err, "hashing");
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ckpt_error_errno(err, path, "cannot read at "
			    "byte %llu", (unsigned long long)(off + got));
		if (r == 0)
			return ckpt_error_set(err, CKPT_ERR_IO, path,
			    (int64_t)(off + got), "file ended at byte %llu "
			    "while being hashed (changed meanwhile?)",
			    (unsigned long long)(off + got));
		got += (size_t)r;
	}
	return CKPT_OK;
}

/* A pass ends at the size stat() gave; a byte beyond means it grew. */
static int
check_pass_end(int fd, const struct ckpt_hash_job *job,
    struct ckpt_error *err)
{
	unsigned char c;
	ssize_t r;

	do
		r = pread(fd, &c, 1, (off_t)job->size);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return ckpt_error_errno(err, job->path, "cannot read at byte "
		    "%llu", (unsigned long long)job->size);
	if (r > 0)
		return ckpt_error_set(err, CKPT_ERR_IO, job->path, -1, "file "
		    "changed size while being hashed (%llu bytes, then more)",
		    (unsigned long long)job->size);
	return CKPT_OK;
}

/* Whether lane l writes the bytes it reads to the file's copy. */
static bool
lane_writes(const struct lane *l)
{
	return l->f->copy && !l->shared && (l->r == PASS ||
	    !l->f->pass_writes);
}

/*
 * Writes n bytes at off to fd, looping on short writes and EINTR; *put
 * gets the bytes written.  With direct (fd is the O_DIRECT descriptor)
 * it stops early and leaves the rest to the caller: at EINVAL, the
 * filesystem (or device) refusing O_DIRECT, which clears *direct, and
 * after a short write that leaves the block grid.
 */
static int
write_loop(const struct ckpt_hash_copy *c, int fd, const unsigned char *buf,
    size_t n, uint64_t off, bool *direct, size_t *put,
    struct ckpt_error *err)
{
	for (*put = 0; *put < n && !(direct && *put % DIO_ALIGN);) {
		ssize_t w = pwrite(fd, buf + *put, n - *put,
		    (off_t)(off + *put));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL && direct) {
			*direct = false;
			break;
		}
		if (w < 0)
			return ckpt_error_errno(err, c->path, "cannot write at "
			    "byte %llu", (unsigned long long)(off + *put));
		if (w == 0)
			return ckpt_error_set(err, CKPT_ERR_IO, c->path,
			    (int64_t)(off + *put), "cannot write at byte %llu "
			    "(no progress)", (unsigned long long)(off + *put));
		*put += (size_t)w;
	}
	return CKPT_OK;
}

static int
write_exact(const struct ckpt_hash_copy *c, int fd, const unsigned char *buf,
    size_t n, uint64_t off, struct ckpt_error *err)
{
	size_t put;

	return write_loop(c, fd, buf, n, off, NULL, &put, err);
}

/*
 * Writes lane l's n bytes just read (at l->off) to the copy, and every
 * KICK_STEP bytes (and at the lane's end) starts their writeback: only a
 * hint, errors are the commit's fsync's to report.
 */
static int
lane_write(struct lane *l, const unsigned char *buf, size_t n,
    struct ckpt_error *err)
{
	const struct ckpt_hash_copy *c = l->f->copy;
	uint64_t to = l->off + n;
	int rc;

	if ((rc = write_exact(c, c->fd, buf, n, l->off, err)))
		return rc;
	if (to - l->kick >= KICK_STEP || to == l->end) {
		(void)sync_file_range(c->fd, (off_t)l->kick,
		    (off_t)(to - l->kick), SYNC_FILE_RANGE_WRITE);
		l->kick = to;
	}
	return CKPT_OK;
}

static void
lane_close(struct lane *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->fd_of = NULL;
}

/* Drops the lane's work (after a failure); keeps its descriptor. */
static void
lane_drop(struct lane *l)
{
	ckpt_sha256_release(&l->s);
	l->f = NULL;
	l->shared = false;
}

static int
lane_start(struct lane *l, struct fstate *f, size_t r, bool shared,
    struct ckpt_error *err)
{
	const struct ckpt_hash_job *job = f->job;
	int rc;

	l->f = f;
	l->r = r;
	l->shared = shared;
	l->off = r == PASS ? 0 : job->ranges[r].offset;
	l->end = r == PASS ? job->size : job->ranges[r].end;
	l->kick = l->off;
	if ((rc = ckpt_sha256_init(&l->s, err))) {
		l->f = NULL;
		return rc;
	}
	if (shared || l->fd_of == f)
		return CKPT_OK;
	lane_close(l);
	l->fd = open(job->path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0) {
		rc = ckpt_error_errno(err, job->path, "cannot open");
		lane_drop(l);
		return rc;
	}
	l->fd_of = f;
	if (r == PASS)
		posix_fadvise(l->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return CKPT_OK;
}

static size_t
lower_bound(const struct fstate *f, uint64_t off)
{
	size_t lo = 0, hi = f->norder;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->job->ranges[f->order[mid]].offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first unclaimed order position at or after i, or norder. */
static size_t
skip_claimed(const struct fstate *f, size_t i)
{
	while (i < f->norder && f->claimed[i])
		i++;
	return i;
}

/*
 * Locked.  A range for a stealing thread: from just ahead of a running
 * pass (the bytes it is about to read), else the first unclaimed one.
 */
static bool
steal(struct engine *en, struct fstate **fp, size_t *rp)
{
	for (size_t k = 0; k < en->npasses; k++) {
		struct fstate *f = &en->files[en->pass_order[k]];
		size_t i, lb;

		if (f->pass != 2 || f->job->status)
			continue;
		lb = lower_bound(f, f->pass_pos);
		i = skip_claimed(f, lb > f->steal_cursor ? lb :
		    f->steal_cursor);
		if (i < f->norder) {
			f->claimed[i] = true;
			f->steal_cursor = i + 1;
			*fp = f;
			*rp = f->order[i];
			return true;
		}
	}
	for (; en->steal_file < en->nfiles; en->steal_file++) {
		struct fstate *f = &en->files[en->steal_file];
		size_t i = skip_claimed(f, f->low_cursor);

		f->low_cursor = i;
		if (i < f->norder && !f->job->status) {
			f->claimed[i] = true;
			f->low_cursor = i + 1;
			*fp = f;
			*rp = f->order[i];
			return true;
		}
	}
	return false;
}

/*
 * Locked.  For a pass at f->pass_pos with lane 1 free: claims the range
 * that starts exactly there as passenger (returns true), else sets *cap
 * to where the next one starts, so that the pass stops there to meet it.
 */
static bool
passenger(struct fstate *f, size_t *rp, uint64_t *cap)
{
	size_t i = f->pass_cursor;

	while (i < f->norder && (f->claimed[i] ||
	    f->job->ranges[f->order[i]].offset < f->pass_pos))
		i++;
	f->pass_cursor = i;
	if (i == f->norder)
		return false;
	if (f->job->ranges[f->order[i]].offset == f->pass_pos) {
		f->claimed[i] = true;
		f->pass_cursor = i + 1;
		*rp = f->order[i];
		return true;
	}
	*cap = f->job->ranges[f->order[i]].offset;
	return false;
}

struct worker {
	struct engine *en;
	struct lane lane[2];
	bool stealing;
	uint64_t pending;	/* bytes digested since the last account */
	struct slot ring[RING_SLOTS];	/* copy with writer threads */
	unsigned int next;	/* the ring's next slot */
};

/* Locked: drops lanes whose job failed meanwhile. */
static void
drop_failed_locked(struct worker *w)
{
	for (int i = 0; i < 2; i++)
		if (w->lane[i].f && w->lane[i].f->job->status)
			lane_drop(&w->lane[i]);
	if (!w->lane[0].f && w->lane[1].f) {
		struct lane t = w->lane[0];

		/* Lane 0 leads: a passenger never outlives its pass. */
		w->lane[0] = w->lane[1];
		w->lane[1] = t;
		w->lane[0].shared = false;
	}
}

/* Locked: gives empty lanes work; false when the worker is done. */
static bool
refill_locked(struct worker *w, uint64_t *cap)
{
	struct engine *en = w->en;
	struct ckpt_error e;

	*cap = UINT64_MAX;
	for (;;) {
		struct lane *a = &w->lane[0], *b = &w->lane[1];
		struct fstate *f;
		size_t r;

		drop_failed_locked(w);
		if (!a->f && !w->stealing && en->next_pass < en->npasses) {
			f = &en->files[en->pass_order[en->next_pass++]];
			f->pass = 2;
			f->pass_pos = 0;
			ckpt_error_clear(&e);
			if (lane_start(a, f, PASS, false, &e)) {
				job_fail_locked(f->job, &e);
				f->pass = 3;
			}
			continue;
		}
		if (a->f && a->r == PASS) {
			if (!b->f && !en->stealers &&
			    passenger(a->f, &r, cap)) {
				ckpt_error_clear(&e);
				if (lane_start(b, a->f, r, true, &e))
					job_fail_locked(a->f->job, &e);
				continue;
			}
			if (en->stealers)
				*cap = UINT64_MAX;
			return true;
		}
		/* No pass to run: steal, two ranges at a time. */
		if (!w->stealing) {
			w->stealing = true;
			en->stealers++;
		}
		if (a->f && b->f)
			return true;
		if (!steal(en, &f, &r))
			return a->f != NULL;
		ckpt_error_clear(&e);
		if (lane_start(a->f ? b : a, f, r, false, &e))
			job_fail_locked(f->job, &e);
	}
}

/* Locked: a lane reached its end; its digest goes to the job. */
static void
lane_finish_locked(struct lane *l, struct ckpt_error *e)
{
	struct ckpt_hash_job *job = l->f->job;
	int rc = CKPT_OK;

	if (l->r == PASS) {
		if (l->fd_of == l->f)
			rc = check_pass_end(l->fd, job, e);
		if (!rc)
			rc = ckpt_sha256_final(&l->s, job->sha256, e);
		l->f->pass = 3;
	} else {
		rc = ckpt_sha256_final(&l->s, job->ranges[l->r].sha256, e);
	}
	if (rc) {
		ckpt_sha256_release(&l->s);
		job_fail_locked(job, e);
	}
	l->f = NULL;
	l->shared = false;
}

/* ---- Writer threads (copy) ---- */

/* Unlocked: the ring's i-th next slot, once its last write is done. */
static struct slot *
ring_wait(struct worker *w, unsigned int i)
{
	struct copier *cp = w->en->cp;
	struct slot *sl = &w->ring[(w->next + i) % RING_SLOTS];

	pthread_mutex_lock(&cp->mu);
	while (sl->busy)
		pthread_cond_wait(&cp->freed, &cp->mu);
	pthread_mutex_unlock(&cp->mu);
	return sl;
}

/* Where a step at file offset off is read into slot sl: at the same
 * offset within a block, so that its whole blocks are aligned in memory
 * as O_DIRECT wants them. */
static unsigned char *
slot_data(const struct slot *sl, uint64_t off)
{
	return sl->buf + off % DIO_ALIGN;
}

/*
 * Unlocked: queues lane l's n bytes just read into sl (at l->off) to the
 * writer threads, with the writeback to start after them every
 * KICK_STEP bytes and at the lane's end (as lane_write does).
 */
static void
ring_queue(struct worker *w, struct slot *sl, struct lane *l, size_t n)
{
	struct copier *cp = w->en->cp;
	struct witem it = { sl, slot_data(sl, l->off), l->f, l->off, n, 0,
	    0 };
	uint64_t to = l->off + n;

	if (to - l->kick >= KICK_STEP || to == l->end) {
		it.kick_from = l->kick;
		it.kick_to = to;
		l->kick = to;
	}
	w->next = (w->next + 1) % RING_SLOTS;
	pthread_mutex_lock(&cp->mu);
	/* cap is every slot of every worker: never full. */
	cp->v[(cp->head + cp->n) % cp->cap] = it;
	cp->n++;
	sl->busy = true;
	pthread_cond_signal(&cp->work);
	pthread_mutex_unlock(&cp->mu);
}

/*
 * Writes n bytes at off through the O_DIRECT descriptor (off, n and buf
 * on DIO_ALIGN), the rest buffered after a short write that leaves the
 * blocks.  EINVAL is a filesystem (or device) refusing O_DIRECT: *direct
 * is cleared and the bytes go through the buffered descriptor.
 */
static int
write_direct(const struct ckpt_hash_copy *c, const unsigned char *buf,
    size_t n, uint64_t off, bool *direct, struct ckpt_error *err)
{
	size_t put;
	int rc = write_loop(c, c->dfd, buf, n, off, direct, &put, err);

	if (rc || put == n)
		return rc;
	return write_exact(c, c->fd, buf + put, n - put, off + put, err);
}

/*
 * A writer's write of n bytes at off: the whole blocks through O_DIRECT
 * while *direct (the disk gets them now, with no copy into the page
 * cache and nothing left for the fsync but the metadata), the partial
 * blocks at either end through the buffered descriptor.  Every byte is
 * written once, so an O_DIRECT block never overlaps a buffered one.
 */
static int
copy_write(const struct ckpt_hash_copy *c, const unsigned char *buf,
    size_t n, uint64_t off, bool *direct, struct ckpt_error *err)
{
	uint64_t a = (off + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN;
	uint64_t b = (off + n) / DIO_ALIGN * DIO_ALIGN;
	int rc;

	if (!*direct || c->dfd < 0 || a >= b)
		return write_exact(c, c->fd, buf, n, off, err);
	if (a > off && (rc = write_exact(c, c->fd, buf, (size_t)(a - off),
	    off, err)))
		return rc;
	if ((rc = write_direct(c, buf + (a - off), (size_t)(b - a), a, direct,
	    err)))
		return rc;
	return off + n > b ? write_exact(c, c->fd, buf + (b - off),
	    (size_t)(off + n - b), b, err) : CKPT_OK;
}

/*
 * A writer thread: takes the queue's writes in order, writes them,
 * starts their writeback, frees the slots.  A write error fails the
 * file's job (the hashing threads then drop it); the writes still
 * queued for it are done all the same, as the copy is discarded anyway.
 * Several writers run so that several O_DIRECT writes are in flight
 * (each waits for the disk); they never write the same bytes.
 */
static void *
writer_main(void *arg)
{
	struct copier *cp = arg;

	pthread_mutex_lock(&cp->mu);
	for (;;) {
		struct ckpt_error e;
		struct witem it;
		const struct ckpt_hash_copy *c;
		bool direct;

		while (!cp->n && !cp->stop)
			pthread_cond_wait(&cp->work, &cp->mu);
		if (!cp->n)
			break;
		it = cp->v[cp->head];
		cp->head = (cp->head + 1) % cp->cap;
		cp->n--;
		pthread_mutex_unlock(&cp->mu);
		direct = __atomic_load_n(&it.f->direct, __ATOMIC_RELAXED);
		c = it.f->copy;
		ckpt_error_clear(&e);
		if (copy_write(c, it.data, it.n, it.off, &direct, &e)) {
			pthread_mutex_lock(&cp->en->mu);
			job_fail_locked(it.f->job, &e);
			pthread_mutex_unlock(&cp->en->mu);
		} else if (it.kick_to > it.kick_from) {
			/* Only a hint: errors are the commit's fsync's. */
			(void)sync_file_range(c->fd, (off_t)it.kick_from,
			    (off_t)(it.kick_to - it.kick_from),
			    SYNC_FILE_RANGE_WRITE);
		}
		if (!direct)
			__atomic_store_n(&it.f->direct, false,
			    __ATOMIC_RELAXED);
		pthread_mutex_lock(&cp->mu);
		it.slot->busy = false;
		pthread_cond_broadcast(&cp->freed);
	}
	pthread_mutex_unlock(&cp->mu);
	return NULL;
}

/* Waits for every queued write and ends the writer threads. */
static void
copier_stop(struct copier *cp)
{
	pthread_mutex_lock(&cp->mu);
	cp->stop = true;
	pthread_cond_broadcast(&cp->work);
	pthread_mutex_unlock(&cp->mu);
	for (size_t i = 0; i < cp->nth; i++)
		pthread_join(cp->th[i], NULL);
	pthread_cond_destroy(&cp->work);
	pthread_cond_destroy(&cp->freed);
	pthread_mutex_destroy(&cp->mu);
	free(cp->v);
	cp->v = NULL;
	cp->nth = 0;
}

/*
 * Prepares a copy for O_DIRECT writes: its blocks reserved at its final
 * size first (fallocate), so that the writes are not extending ones,
 * which a filesystem (ext4) serializes on the inode for the whole write,
 * disk time included: with the blocks there, writes of different blocks
 * of one file are in flight together.  Only a hint where refused.
 */
static void
copy_prepare(struct fstate *f)
{
	f->direct = f->copy->dfd >= 0;
	if (f->direct && f->job->size)
		(void)fallocate(f->copy->dfd, 0, 0, (off_t)f->job->size);
}

/*
 * Starts up to MAX_WRITERS writer threads for the engine's copies, with
 * room in the queue for every slot of nworkers rings.  false: no writer
 * thread (no memory, no thread); the hashing threads then write
 * themselves, buffered.
 */
static bool
copier_start(struct copier *cp, struct engine *en, size_t nworkers)
{
	size_t ncopies = 0, nwriters = MAX_WRITERS;

	memset(cp, 0, sizeof(*cp));
	for (size_t i = 0; i < en->nfiles; i++)
		ncopies += en->files[i].copy != NULL;
	if (!ncopies)
		return false;
	cp->cap = nworkers * RING_SLOTS;
	if (nwriters > cp->cap)
		nwriters = cp->cap;
	if (!(cp->v = calloc(cp->cap, sizeof(*cp->v))))
		return false;
	cp->en = en;
	pthread_mutex_init(&cp->mu, NULL);
	pthread_cond_init(&cp->work, NULL);
	pthread_cond_init(&cp->freed, NULL);
	for (size_t i = 0; i < nwriters; i++) {
		if (pthread_create(&cp->th[cp->nth], NULL, writer_main, cp))
			break;
		cp->nth++;
	}
	if (!cp->nth) {
		copier_stop(cp);
		return false;
	}
	for (size_t i = 0; i < en->nfiles; i++)
		if (en->files[i].copy)
			copy_prepare(&en->files[i]);
	return true;
}

/*
 * The bytes of a writing lane's step: with O_DIRECT, large writes (each
 * is a request the disk serves whole, and a wait: measured, 1 MiB steps
 * took about a quarter less CPU than 256 KiB ones); buffered,
 * steps that stay in the cache for the read, the digest and the write's
 * copy (measured: 1 MiB steps cost about 40% more system time than 256
 * KiB ones).
 */
static size_t
lane_step(const struct worker *w, const struct lane *l)
{
	return w->en->cp && __atomic_load_n(&l->f->direct, __ATOMIC_RELAXED) ?
	    DIRECT_STEP : COPY_STEP;
}

/* Shows the step's k bytes of the range lanes to the observer. */
static void
observe_step(const struct engine *en, const struct lane *a,
    const struct lane *b, const unsigned char *abuf,
    const unsigned char *bbuf, size_t k)
{
	if (!en->observe || !k)
		return;
	if (a->r != PASS)
		en->observe(en->oarg, (size_t)(a->f->job - en->jobs), a->r, abuf,
		    k);
	if (b->f && b->r != PASS)
		en->observe(en->oarg, (size_t)(b->f->job - en->jobs), b->r,
		    b->shared ? abuf : bbuf, k);
}

/* Unlocked: one read (or two) and the digests of up to BUF_SIZE bytes. */
static int
step(struct worker *w, uint64_t cap, struct lane **failed,
    struct ckpt_error *err)
{
	struct lane *a = &w->lane[0], *b = &w->lane[1];
	bool aw = lane_writes(a), bw = b->f && lane_writes(b);
	struct slot *as = NULL, *bs = NULL;
	unsigned char *abuf = a->buf, *bbuf = b->buf;
	uint64_t k = a->end - a->off;
	int rc;

	*failed = NULL;
	if (k > BUF_SIZE)
		k = BUF_SIZE;
	/* A copy's bytes are read, digested and written in steps of
	 * lane_step's size ... */
	if (aw || bw) {
		const struct lane *wl = aw ? a : b;

		if (k > lane_step(w, wl))
			k = lane_step(w, wl);
		/* ... ending on a block of the file, so that the writing
		 * lane's next step has whole blocks for O_DIRECT. */
		if (k > DIO_ALIGN && wl->off + k < wl->end)
			k -= (wl->off + k) % DIO_ALIGN;
	}
	if (cap != UINT64_MAX && a->r == PASS && cap > a->off &&
	    cap - a->off < k)
		k = cap - a->off;
	if (b->f && b->end - b->off < k)
		k = b->end - b->off;
	/* With a writer thread, a writing lane reads into a ring slot. */
	if (k && aw && w->en->cp)
		abuf = slot_data(as = ring_wait(w, 0), a->off);
	if (k && bw && w->en->cp)
		bbuf = slot_data(bs = ring_wait(w, as ? 1 : 0), b->off);
	if (k && (rc = read_exact(a->fd, a->f->job->path, abuf, k, a->off,
	    err))) {
		*failed = a;
		return rc;
	}
	if (b->f && !b->shared && k && (rc = read_exact(b->fd,
	    b->f->job->path, bbuf, k, b->off, err))) {
		*failed = b;
		return rc;
	}
	/* Queued before they are digested: written while digested. */
	if (as)
		ring_queue(w, as, a, k);
	else if (k && aw && (rc = lane_write(a, abuf, k, err))) {
		*failed = a;
		return rc;
	}
	if (bs)
		ring_queue(w, bs, b, k);
	else if (k && bw && (rc = lane_write(b, bbuf, k, err))) {
		*failed = b;
		return rc;
	}
	observe_step(w->en, a, b, abuf, bbuf, k);
	if (b->f) {
		ckpt_sha256_update2(&a->s, abuf, &b->s, b->shared ? abuf :
		    bbuf, k);
		b->off += k;
		w->pending += k;
	} else {
		ckpt_sha256_update(&a->s, abuf, k);
	}
	a->off += k;
	w->pending += k;
	return CKPT_OK;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct engine *en = w->en;

	w->lane[0].fd = w->lane[1].fd = -1;
	pthread_mutex_lock(&en->mu);
	for (;;) {
		struct ckpt_error e;
		struct lane *failed;
		uint64_t cap;

		if (!refill_locked(w, &cap))
			break;
		pthread_mutex_unlock(&en->mu);
		ckpt_error_clear(&e);
		step(w, cap, &failed, &e);
		pthread_mutex_lock(&en->mu);
		account_locked(en, w->pending);
		w->pending = 0;
		if (w->lane[0].f && w->lane[0].r == PASS)
			w->lane[0].f->pass_pos = w->lane[0].off;
		if (failed) {
			job_fail_locked(failed->f->job, &e);
			continue;	/* drop_failed_locked clears the
					 * lanes */
		}
		for (int i = 1; i >= 0; i--) {
			struct lane *l = &w->lane[i];

			if (l->f && l->off == l->end) {
				ckpt_error_clear(&e);
				lane_finish_locked(l, &e);
			}
		}
	}
	if (w->stealing)
		en->stealers--;
	pthread_mutex_unlock(&en->mu);
	for (int i = 0; i < 2; i++) {
		if (w->lane[i].f)
			ckpt_sha256_release(&w->lane[i].s);
		lane_close(&w->lane[i]);
	}
	return NULL;
}

static int
cmp_range_ptr(const void *a, const void *b, void *ctx)
{
	const struct ckpt_range_digest *r = ctx;
	const struct ckpt_range_digest *x = &r[*(const size_t *)a];
	const struct ckpt_range_digest *y = &r[*(const size_t *)b];

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Checks a job's file and ranges; sets job->size, or job->status. */
static void
check_job(struct ckpt_hash_job *job)
{
	struct stat st;

	job->status = 0;
	ckpt_error_clear(&job->err);
	if (stat(job->path, &st)) {
		job->status = ckpt_error_errno(&job->err, job->path,
		    "cannot stat");
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		job->status = ckpt_error_set(&job->err, CKPT_ERR_INVALID,
		    job->path, -1, "not a regular file");
		return;
	}
	job->size = (uint64_t)st.st_size;
	for (size_t r = 0; r < job->nranges; r++) {
		const struct ckpt_range_digest *rg = &job->ranges[r];

		if (rg->offset > rg->end || rg->end > job->size) {
			job->status = ckpt_error_set(&job->err,
			    CKPT_ERR_FORMAT, job->path, (int64_t)rg->offset,
			    "byte range [%llu, %llu) is outside the file of "
			    "%llu bytes", (unsigned long long)rg->offset,
			    (unsigned long long)rg->end,
			    (unsigned long long)job->size);
			return;
		}
	}
}

/* Orders a job's ranges and folds identical ones; adds to en->total. */
static int
plan_file(struct engine *en, struct fstate *f, struct ckpt_error *err)
{
	struct ckpt_hash_job *job = f->job;
	size_t n = job->nranges;

	f->pass = job->whole ? 1 : 0;
	if (job->whole)
		en->total += job->size;
	if (!n)
		return CKPT_OK;
	f->order = calloc(n, sizeof(*f->order));
	f->canon = calloc(n, sizeof(*f->canon));
	f->claimed = calloc(n, sizeof(*f->claimed));
	if (!f->order || !f->canon || !f->claimed)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < n; i++)
		f->order[i] = i;
	qsort_r(f->order, n, sizeof(*f->order), cmp_range_ptr, job->ranges);
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_range_digest *r = &job->ranges[f->order[i]];

		if (f->norder) {
			size_t c = f->order[f->norder - 1];

			if (job->ranges[c].offset == r->offset &&
			    job->ranges[c].end == r->end) {
				f->canon[f->order[i]] = c;
				continue;
			}
		}
		f->canon[f->order[i]] = f->order[i];
		f->order[f->norder++] = f->order[i];
		en->total += r->end - r->offset;
	}
	return CKPT_OK;
}

/* Whether the file's distinct ranges cover it end to end, no overlap. */
static bool
ranges_tile(const struct fstate *f)
{
	uint64_t pos = 0;

	for (size_t i = 0; i < f->norder; i++) {
		const struct ckpt_range_digest *r;

		r = &f->job->ranges[f->order[i]];
		if (r->offset != pos)
			return false;
		pos = r->end;
	}
	return pos == f->job->size;
}

/* A copy is written by the pass, or by ranges that tile the file. */
static void
plan_copy(struct engine *en, struct fstate *f)
{
	if (!f->copy)
		return;
	if (!f->pass && !ranges_tile(f)) {
		f->pass = 1;
		en->total += f->job->size;
	}
	f->pass_writes = f->pass != 0;
}

static void
engine_free(struct engine *en)
{
	for (size_t i = 0; i < en->nfiles; i++) {
		free(en->files[i].order);
		free(en->files[i].canon);
		free(en->files[i].claimed);
	}
	free(en->files);
	free(en->pass_order);
}

static int
cmp_pass(const void *a, const void *b, void *ctx)
{
	const struct engine *en = ctx;
	uint64_t x = en->files[*(const size_t *)a].job->size;
	uint64_t y = en->files[*(const size_t *)b].job->size;

	if (x != y)
		return x > y ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int
engine_plan(struct engine *en, struct ckpt_hash_job *jobs,
    const struct ckpt_hash_copy *copies, size_t njobs, struct ckpt_error *err)
{
	int rc;

	en->files = calloc(njobs ? njobs : 1, sizeof(*en->files));
	en->pass_order = calloc(njobs ? njobs : 1, sizeof(*en->pass_order));
	if (!en->files || !en->pass_order)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < njobs; i++) {
		check_job(&jobs[i]);
		if (jobs[i].status)
			continue;
		en->files[en->nfiles].job = &jobs[i];
		en->files[en->nfiles].copy = copies && copies[i].fd >= 0 ?
		    &copies[i] : NULL;
		if ((rc = plan_file(en, &en->files[en->nfiles], err))) {
			en->nfiles++;
			return rc;
		}
		plan_copy(en, &en->files[en->nfiles]);
		if (en->files[en->nfiles].pass)
			en->pass_order[en->npasses++] = en->nfiles;
		en->nfiles++;
	}
	qsort_r(en->pass_order, en->npasses, sizeof(*en->pass_order),
	    cmp_pass, en);
	return CKPT_OK;
}

/* Identical ranges were hashed once: their twins get the digest. */
static void
copy_twins(struct engine *en)
{
	for (size_t i = 0; i < en->nfiles; i++) {
		struct fstate *f = &en->files[i];

		for (size_t r = 0; f->canon && r < f->job->nranges; r++)
			if (f->canon[r] != r)
				memcpy(f->job->ranges[r].sha256,
				    f->job->ranges[f->canon[r]].sha256,
				    CKPT_SHA256_BYTES);
	}
}

/*
 * The copy rings of n workers, or NULL (no memory: no writer threads).
 * A slot holds a step at its offset within a block (slot_data): one
 * block more than the largest step, DIRECT_STEP where a copy has an
 * O_DIRECT descriptor.
 */
static unsigned char **
ring_alloc(struct worker *ws, unsigned int n,
    const struct ckpt_hash_copy *copies, size_t ncopies)
{
	unsigned char **rings = calloc(n, sizeof(*rings));
	size_t slot = DIO_ALIGN + COPY_STEP;

	for (size_t i = 0; i < ncopies; i++)
		if (copies[i].fd >= 0 && copies[i].dfd >= 0)
			slot = DIO_ALIGN + DIRECT_STEP;
	for (unsigned int i = 0; rings && i < n; i++) {
		void *p;

		if (posix_memalign(&p, DIO_ALIGN, RING_SLOTS * slot)) {
			while (i--)
				free(rings[i]);
			free(rings);
			return NULL;
		}
		rings[i] = p;
		for (unsigned int k = 0; k < RING_SLOTS; k++)
			ws[i].ring[k].buf = rings[i] + k * slot;
	}
	return rings;
}

static int hash_run(struct ckpt_hash_job *jobs,
    const struct ckpt_hash_copy *copies, size_t njobs, unsigned int nthreads,
    ckpt_progress_fn progress, void *data, ckpt_hash_observe_fn observe,
    void *oarg, struct ckpt_error *err);

int
ckpt_hash_files(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    struct ckpt_error *err)
{
	return hash_run(jobs, NULL, njobs, nthreads, progress, data, NULL,
	    NULL, err);
}

int
ckpt_hash_files_observed(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    ckpt_hash_observe_fn observe, void *oarg, struct ckpt_error *err)
{
	return hash_run(jobs, NULL, njobs, nthreads, progress, data, observe,
	    oarg, err);
}

int
ckpt_hash_copy_files(struct ckpt_hash_job *jobs,
    const struct ckpt_hash_copy *copies, size_t njobs, unsigned int nthreads,
    ckpt_progress_fn progress, void *data, struct ckpt_error *err)
{
	return hash_run(jobs, copies, njobs, nthreads, progress, data, NULL,
	    NULL, err);
}

static int
hash_run(struct ckpt_hash_job *jobs, const struct ckpt_hash_copy *copies,
    size_t njobs, unsigned int nthreads, ckpt_progress_fn progress,
    void *data, ckpt_hash_observe_fn observe, void *oarg,
    struct ckpt_error *err)
{
	struct engine en;
	struct worker *ws;
	unsigned char **bufs, **rings = NULL;
	pthread_t th[MAX_THREADS];
	struct copier cp;
	size_t nwork = 0;
	int rc;

	memset(&en, 0, sizeof(en));
	if ((rc = engine_plan(&en, jobs, copies, njobs, err))) {
		engine_free(&en);
		return rc;
	}
	for (size_t i = 0; i < en.nfiles; i++)
		nwork += en.files[i].norder + (en.files[i].pass ? 1 : 0);
	en.progress = progress;
	en.data = data;
	en.jobs = jobs;
	en.observe = observe;
	en.oarg = oarg;
	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (unsigned int)n : 1;
	}
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	if (nthreads > nwork)
		nthreads = nwork ? (unsigned int)nwork : 1;
	ws = calloc(nthreads, sizeof(*ws));
	bufs = calloc(nthreads, sizeof(*bufs));
	for (unsigned int i = 0; ws && bufs && i < nthreads; i++) {
		bufs[i] = malloc(2 * BUF_SIZE);
		if (!bufs[i]) {
			nthreads = i;	/* fewer threads, then */
			break;
		}
		ws[i].en = &en;
		ws[i].lane[0].buf = bufs[i];
		ws[i].lane[1].buf = bufs[i] + BUF_SIZE;
	}
	if (!ws || !bufs || !nthreads) {
		free(ws);
		free(bufs);
		engine_free(&en);
		return ckpt_error_nomem(err);
	}
	pthread_mutex_init(&en.mu, NULL);
	if (copies && (rings = ring_alloc(ws, nthreads, copies, njobs)) &&
	    copier_start(&cp, &en, nthreads))
		en.cp = &cp;
	ckpt_workers_run(nthreads, worker_main, ws, sizeof(*ws), th);
	if (en.cp)
		copier_stop(en.cp);
	pthread_mutex_destroy(&en.mu);
	for (unsigned int i = 0; i < nthreads; i++) {
		free(bufs[i]);
		if (rings)
			free(rings[i]);
	}
	free(bufs);
	free(rings);
	free(ws);
	copy_twins(&en);
	engine_free(&en);
	rc = CKPT_OK;
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i].status) {
			if (err)
				*err = jobs[i].err;
			rc = jobs[i].status;
			break;
		}
	return rc;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct ckpt_range_digest *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

int
ckpt_chunks_plan(uint64_t size, const struct ckpt_range_digest *tensors,
    size_t ntensors, uint64_t chunk_size, struct ckpt_range_digest **out,
    size_t *n, struct ckpt_error *err)
{
	struct ckpt_range_digest *cov = NULL, *res = NULL;
	size_t ncov = 0, nres = 0, cap = 0;
	uint64_t pos = 0;

	*out = NULL;
	*n = 0;
	if (!chunk_size)
		chunk_size = CKPT_CHUNK_SIZE;
	if (ntensors) {
		cov = calloc(ntensors, sizeof(*cov));
		if (!cov)
			return ckpt_error_nomem(err);
	}
	for (size_t i = 0; i < ntensors; i++) {
		const struct ckpt_range_digest *t = &tensors[i];

		if (t->end <= t->offset || t->end > size ||
		    t->end - t->offset > chunk_size)
			continue;
		cov[ncov++] = *t;
	}
	if (ncov)
		qsort(cov, ncov, sizeof(*cov), cmp_range);
	for (size_t i = 0; i <= ncov; i++) {
		uint64_t gap_end = i < ncov ? cov[i].offset : size;

		while (pos < gap_end) {
			uint64_t e = gap_end - pos > chunk_size ?
			    pos + chunk_size : gap_end;

			if (nres == cap) {
				size_t c = cap ? 2 * cap : 16;
				struct ckpt_range_digest *p = reallocarray(res,
				    c, sizeof(*p));

				if (!p) {
					free(res);
					free(cov);
					return ckpt_error_nomem(err);
				}
				res = p;
				cap = c;
			}
			memset(&res[nres], 0, sizeof(res[nres]));
			res[nres].offset = pos;
			res[nres].end = e;
			nres++;
			pos = e;
		}
		if (i < ncov && cov[i].end > pos)
			pos = cov[i].end;
	}
	free(cov);
	*out = res;
	*n = nres;
	return CKPT_OK;
}

/* A growing array of ranges, for the planners. */
struct range_list {
	struct ckpt_range_digest *v;
	size_t n, cap;
};

static int
range_push(struct range_list *l, uint64_t off, uint64_t end)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? 2 * l->cap : 16;
		struct ckpt_range_digest *p = reallocarray(l->v, c,
		    sizeof(*p));

		if (!p)
			return -1;
		l->v = p;
		l->cap = c;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	l->v[l->n].offset = off;
	l->v[l->n].end = end;
	l->n++;
	return 0;
}

/* [off, end) in pieces of at most cs bytes. */
static int
range_push_cut(struct range_list *l, uint64_t off, uint64_t end, uint64_t cs)
{
	while (off < end) {
		uint64_t e = end - off > cs ? off + cs : end;

		if (range_push(l, off, e))
			return -1;
		off = e;
	}
	return 0;
}

struct kspan {
	uint64_t offset, end;
	bool keep;
};

static int
cmp_kspan(const void *a, const void *b)
{
	const struct kspan *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

int
ckpt_ranges_plan(uint64_t size, const struct ckpt_range_digest *spans,
    const bool *keep, size_t nspans, uint64_t chunk_size,
    struct ckpt_range_digest **out, size_t *n, struct ckpt_error *err)
{
	struct range_list l = { NULL, 0, 0 };
	struct kspan *v = NULL;
	size_t nv = 0, i = 0;
	uint64_t pos = 0;

	*out = NULL;
	*n = 0;
	if (!chunk_size)
		chunk_size = CKPT_CHUNK_SIZE;
	if (nspans && !(v = calloc(nspans, sizeof(*v))))
		return ckpt_error_nomem(err);
	for (size_t k = 0; k < nspans; k++)
		if (spans[k].offset < spans[k].end && spans[k].end <= size) {
			v[nv].offset = spans[k].offset;
			v[nv].end = spans[k].end;
			v[nv++].keep = keep && keep[k];
		}
	if (nv)
		qsort(v, nv, sizeof(*v), cmp_kspan);
	while (i < nv) {
		uint64_t a = v[i].offset, b = v[i].end;
		bool exact = true, kept = v[i].keep;

		/* One region: every span that overlaps it, transitively. */
		for (i++; i < nv && v[i].offset < b; i++) {
			exact &= v[i].offset == a && v[i].end == b;
			kept |= v[i].keep;
			if (v[i].end > b)
				b = v[i].end;
		}
		if (range_push_cut(&l, pos, a, chunk_size) || (exact && kept ?
		    range_push(&l, a, b) : range_push_cut(&l, a, b,
		    chunk_size))) {
			free(v);
			free(l.v);
			return ckpt_error_nomem(err);
		}
		pos = b;
	}
	free(v);
	if (range_push_cut(&l, pos, size, chunk_size)) {
		free(l.v);
		return ckpt_error_nomem(err);
	}
	*out = l.v;
	*n = l.n;
	return CKPT_OK;
}
