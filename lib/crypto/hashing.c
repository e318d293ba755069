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
 * a slot of its worker's ring, queues the slot to the writer thread of
 * the file, and digests the slot while the writer writes it.  So the
 * digest of a block and its write (a copy into the page cache, the
 * filesystem's block reservation) overlap instead of following each
 * other, and the bytes digested are the bytes written (the slot is not
 * reused before its write is done).  Each file has one writer, as the
 * filesystem serializes buffered writes to one file anyway (a second
 * thread would only wait on the inode's lock); there are at most as
 * many writers as hashing threads.  Memory stays bounded: RING_SLOTS
 * slots per hashing thread.  Each writer asks the kernel to start
 * writing back what it wrote (sync_file_range), so that the disk works
 * while the CPUs digest and the fsync of the commit protocol finds
 * little left to do.  Without a writer thread (pthread_create failed)
 * the hashing threads write themselves, as before.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define BUF_SIZE	((size_t)1 << 20)
#define PROGRESS_STEP	((uint64_t)64 << 20)
#define MAX_THREADS	256
#define PASS		SIZE_MAX	/* lane.r of a file pass */
#define KICK_STEP	((uint64_t)8 << 20)	/* copy: writeback asked per */
#define COPY_STEP	((uint64_t)256 << 10)	/* copy: bytes per step */
#define RING_SLOTS	8	/* copy: a worker's steps queued or in write */

struct wqueue;

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
	struct wqueue *wq;	/* the copy's writer, or NULL: lanes write */
};

/* A step's buffer in a worker's ring (copy with writer threads). */
struct slot {
	unsigned char *buf;	/* COPY_STEP bytes */
	bool busy;		/* queued or being written (copier.mu) */
};

/* One write for a writer thread: a slot's n bytes at off of f's copy. */
struct witem {
	struct slot *slot;
	struct fstate *f;
	uint64_t off;
	size_t n;
	uint64_t kick_from, kick_to;	/* kick_to > kick_from: writeback */
};

/* A writer thread and its FIFO of writes (copier.mu). */
struct wqueue {
	struct copier *cp;
	struct witem *v;
	size_t cap, head, n;
	pthread_cond_t work;	/* an item, or stop */
	pthread_t th;
};

struct copier {
	struct engine *en;
	pthread_mutex_t mu;
	pthread_cond_t freed;	/* a slot's write is done */
	struct wqueue *q;
	size_t nq;		/* writer threads running */
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

static int
write_exact(const struct ckpt_hash_copy *c, const unsigned char *buf,
    size_t n, uint64_t off, struct ckpt_error *err)
{
	size_t put = 0;

	while (put < n) {
		ssize_t w = pwrite(c->fd, buf + put, n - put,
		    (off_t)(off + put));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return ckpt_error_errno(err, c->path, "cannot write at "
			    "byte %llu", (unsigned long long)(off + put));
		if (w == 0)
			return ckpt_error_set(err, CKPT_ERR_IO, c->path,
			    (int64_t)(off + put), "cannot write at byte %llu "
			    "(no progress)", (unsigned long long)(off + put));
		put += (size_t)w;
	}
	return CKPT_OK;
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

	if ((rc = write_exact(c, buf, n, l->off, err)))
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

/*
 * Unlocked: queues lane l's n bytes just read into sl (at l->off) to the
 * writer of l's file, with the writeback to start after them every
 * KICK_STEP bytes and at the lane's end (as lane_write does).
 */
static void
ring_queue(struct worker *w, struct slot *sl, struct lane *l, size_t n)
{
	struct copier *cp = w->en->cp;
	struct wqueue *q = l->f->wq;
	struct witem it = { sl, l->f, l->off, n, 0, 0 };
	uint64_t to = l->off + n;

	if (to - l->kick >= KICK_STEP || to == l->end) {
		it.kick_from = l->kick;
		it.kick_to = to;
		l->kick = to;
	}
	w->next = (w->next + 1) % RING_SLOTS;
	pthread_mutex_lock(&cp->mu);
	/* cap is every slot of every worker: never full. */
	q->v[(q->head + q->n) % q->cap] = it;
	q->n++;
	sl->busy = true;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&cp->mu);
}

/*
 * A writer thread: writes its queue's slots in order, starts their
 * writeback, frees the slots.  A write error fails the file's job (the
 * hashing threads then drop it); the writes still queued for it are
 * done all the same, as the copy is discarded anyway.
 */
static void *
writer_main(void *arg)
{
	struct wqueue *q = arg;
	struct copier *cp = q->cp;

	pthread_mutex_lock(&cp->mu);
	for (;;) {
		struct ckpt_error e;
		struct witem it;
		const struct ckpt_hash_copy *c;

		while (!q->n && !cp->stop)
			pthread_cond_wait(&q->work, &cp->mu);
		if (!q->n)
			break;
		it = q->v[q->head];
		pthread_mutex_unlock(&cp->mu);
		c = it.f->copy;
		ckpt_error_clear(&e);
		if (write_exact(c, it.slot->buf, it.n, it.off, &e)) {
			pthread_mutex_lock(&cp->en->mu);
			job_fail_locked(it.f->job, &e);
			pthread_mutex_unlock(&cp->en->mu);
		} else if (it.kick_to > it.kick_from) {
			/* Only a hint: errors are the commit's fsync's. */
			(void)sync_file_range(c->fd, (off_t)it.kick_from,
			    (off_t)(it.kick_to - it.kick_from),
			    SYNC_FILE_RANGE_WRITE);
		}
		pthread_mutex_lock(&cp->mu);
		q->head = (q->head + 1) % q->cap;
		q->n--;
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
	for (size_t i = 0; i < cp->nq; i++)
		pthread_cond_signal(&cp->q[i].work);
	pthread_mutex_unlock(&cp->mu);
	for (size_t i = 0; i < cp->nq; i++)
		pthread_join(cp->q[i].th, NULL);
	for (size_t i = 0; i < cp->nq; i++) {
		pthread_cond_destroy(&cp->q[i].work);
		free(cp->q[i].v);
	}
	pthread_cond_destroy(&cp->freed);
	pthread_mutex_destroy(&cp->mu);
	free(cp->q);
	cp->q = NULL;
	cp->nq = 0;
}

/*
 * Starts up to nwriters writer threads for the engine's copies, each
 * file given to one (round robin), with room in each queue for every
 * slot of nworkers rings.  false: no writer thread (no memory, no
 * thread); the hashing threads then write themselves.
 */
static bool
copier_start(struct copier *cp, struct engine *en, size_t nwriters,
    size_t nworkers)
{
	size_t ncopies = 0, k = 0;

	memset(cp, 0, sizeof(*cp));
	for (size_t i = 0; i < en->nfiles; i++)
		ncopies += en->files[i].copy != NULL;
	if (nwriters > ncopies)
		nwriters = ncopies;
	if (!nwriters || !(cp->q = calloc(nwriters, sizeof(*cp->q))))
		return false;
	cp->en = en;
	pthread_mutex_init(&cp->mu, NULL);
	pthread_cond_init(&cp->freed, NULL);
	for (size_t i = 0; i < nwriters; i++) {
		struct wqueue *q = &cp->q[cp->nq];

		q->cp = cp;
		q->cap = nworkers * RING_SLOTS;
		if (!(q->v = calloc(q->cap, sizeof(*q->v))))
			break;
		pthread_cond_init(&q->work, NULL);
		if (pthread_create(&q->th, NULL, writer_main, q)) {
			pthread_cond_destroy(&q->work);
			free(q->v);
			break;
		}
		cp->nq++;
	}
	if (!cp->nq) {
		copier_stop(cp);
		return false;
	}
	for (size_t i = 0; i < en->nfiles; i++)
		if (en->files[i].copy)
			en->files[i].wq = &cp->q[k++ % cp->nq];
	return true;
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
	/* A copy's bytes are read, digested and written: in steps that
	 * stay in the cache for the three (measured: 1 MiB steps cost
	 * about 40% more system time than 256 KiB ones). */
	if ((aw || bw) && k > COPY_STEP)
		k = COPY_STEP;
	if (cap != UINT64_MAX && a->r == PASS && cap > a->off &&
	    cap - a->off < k)
		k = cap - a->off;
	if (b->f && b->end - b->off < k)
		k = b->end - b->off;
	/* With a writer thread, a writing lane reads into a ring slot. */
	if (k && aw && a->f->wq)
		abuf = (as = ring_wait(w, 0))->buf;
	if (k && bw && b->f->wq)
		bbuf = (bs = ring_wait(w, as ? 1 : 0))->buf;
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

/* The copy rings of n workers, or NULL (no memory: no writer threads). */
static unsigned char **
ring_alloc(struct worker *ws, unsigned int n)
{
	unsigned char **rings = calloc(n, sizeof(*rings));

	for (unsigned int i = 0; rings && i < n; i++) {
		if (!(rings[i] = malloc(RING_SLOTS * COPY_STEP))) {
			while (i--)
				free(rings[i]);
			free(rings);
			return NULL;
		}
		for (unsigned int k = 0; k < RING_SLOTS; k++)
			ws[i].ring[k].buf = rings[i] + k * COPY_STEP;
	}
	return rings;
}

int
ckpt_hash_files(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    struct ckpt_error *err)
{
	return ckpt_hash_copy_files(jobs, NULL, njobs, nthreads, progress,
	    data, err);
}

int
ckpt_hash_copy_files(struct ckpt_hash_job *jobs,
    const struct ckpt_hash_copy *copies, size_t njobs, unsigned int nthreads,
    ckpt_progress_fn progress, void *data, struct ckpt_error *err)
{
	struct engine en;
	struct worker *ws;
	unsigned char **bufs, **rings = NULL;
	pthread_t th[MAX_THREADS];
	struct copier cp;
	size_t started = 0, nwork = 0;
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
	if (copies && (rings = ring_alloc(ws, nthreads)) &&
	    copier_start(&cp, &en, nthreads, nthreads))
		en.cp = &cp;
	/* The calling thread works too. */
	for (unsigned int i = 1; i < nthreads; i++) {
		if (pthread_create(&th[started], NULL, worker_main,
		    &ws[started + 1]))
			break;
		started++;
	}
	worker_main(&ws[0]);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
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
