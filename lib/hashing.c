/* SPDX-License-Identifier: MIT */
/*
 * hashing.c - the hashing engine of save and verify: whole-file SHA-256
 * and range digests (tensors, chunks) of many files on every core.
 *
 * A file's SHA-256 is a sequential chain, so each file gets one task for
 * it, and every range gets its own task.  Tasks are run longest first
 * (the whole-file ones first of all), so that with one big file a core
 * computes the file digest while the other cores digest its tensors and
 * chunks.  Because the chunks of a manifest cover only what small tensors
 * do not (ckpt_chunks_plan), the bytes of a typical weights file are
 * hashed twice in total (file + tensor-or-chunk), which on two cores costs
 * the wall time of one sha256sum pass.
 *
 * Memory is one fixed buffer per thread; reads are pread() so that tasks
 * on the same file share nothing.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE	((size_t)1 << 20)
#define PROGRESS_STEP	((uint64_t)64 << 20)
#define MAX_THREADS	256

struct task {
	size_t job;
	size_t range;		/* SIZE_MAX: the whole file */
	uint64_t len;
};

struct engine {
	struct ckpt_hash_job *jobs;
	struct task *tasks;
	size_t ntasks, next;
	pthread_mutex_t mu;
	uint64_t done, total, reported;
	ckpt_hash_progress_fn progress;
	void *data;
};

static void
job_fail(struct engine *en, struct ckpt_hash_job *job,
    const struct ckpt_error *e)
{
	pthread_mutex_lock(&en->mu);
	if (!job->status) {
		job->status = e->code ? e->code : CKPT_ERR_IO;
		job->err = *e;
	}
	pthread_mutex_unlock(&en->mu);
}

static void
account(struct engine *en, uint64_t n)
{
	pthread_mutex_lock(&en->mu);
	en->done += n;
	if (en->progress && (en->done - en->reported >= PROGRESS_STEP ||
	    en->done == en->total)) {
		en->reported = en->done;
		en->progress(en->done, en->total, en->data);
	}
	pthread_mutex_unlock(&en->mu);
}

static bool
job_failed(struct engine *en, struct ckpt_hash_job *job)
{
	bool f;

	pthread_mutex_lock(&en->mu);
	f = job->status != 0;
	pthread_mutex_unlock(&en->mu);
	return f;
}

/* Hashes [off, end) of fd (end UINT64_MAX: to EOF) into out. */
static int
hash_range(int fd, const char *path, uint64_t off, uint64_t end,
    unsigned char *buf, unsigned char *out, uint64_t *nread,
    struct engine *en, struct ckpt_error *err)
{
	struct ckpt_hash *h;
	uint64_t pos = off, pending = 0;
	int rc;

	if ((rc = ckpt_hash_new(CKPT_HASH_SHA256, &h, err)))
		return rc;
	while (pos < end) {
		size_t want = end - pos < BUF_SIZE ? (size_t)(end - pos) :
		    BUF_SIZE;
		ssize_t n = pread(fd, buf, want, (off_t)pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ckpt_hash_free(h);
			return ckpt_error_errno(err, path, "cannot read at "
			    "byte %llu", (unsigned long long)pos);
		}
		if (n == 0) {
			if (end == UINT64_MAX)
				break;
			ckpt_hash_free(h);
			return ckpt_error_set(err, CKPT_ERR_IO, path,
			    (int64_t)pos, "file ended at byte %llu while being "
			    "hashed (changed meanwhile?)",
			    (unsigned long long)pos);
		}
		ckpt_hash_update(h, buf, (size_t)n);
		pos += (uint64_t)n;
		pending += (uint64_t)n;
		if (pending >= 16 * BUF_SIZE) {
			account(en, pending);
			pending = 0;
		}
	}
	if (pending)
		account(en, pending);
	rc = ckpt_hash_final(h, out, err);
	ckpt_hash_free(h);
	if (nread)
		*nread = pos - off;
	return rc;
}

static void
run_task(struct engine *en, const struct task *t, unsigned char *buf)
{
	struct ckpt_hash_job *job = &en->jobs[t->job];
	struct ckpt_error e;
	uint64_t n;
	int fd;

	ckpt_error_clear(&e);
	if (job_failed(en, job)) {
		account(en, t->len);
		return;
	}
	fd = open(job->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ckpt_error_errno(&e, job->path, "cannot open");
		job_fail(en, job, &e);
		account(en, t->len);
		return;
	}
	if (t->range == SIZE_MAX) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		if (hash_range(fd, job->path, 0, UINT64_MAX, buf, job->sha256,
		    &n, en, &e))
			job_fail(en, job, &e);
		else if (n != job->size) {
			ckpt_error_set(&e, CKPT_ERR_IO, job->path, -1,
			    "file changed size while being hashed (%llu, "
			    "then %llu bytes)", (unsigned long long)job->size,
			    (unsigned long long)n);
			job_fail(en, job, &e);
		}
	} else {
		struct ckpt_range_digest *r = &job->ranges[t->range];

		if (hash_range(fd, job->path, r->offset, r->end, buf,
		    r->sha256, NULL, en, &e))
			job_fail(en, job, &e);
	}
	close(fd);
}

static void *
worker(void *arg)
{
	struct engine *en = arg;
	unsigned char *buf = malloc(BUF_SIZE);

	for (;;) {
		struct task t;

		pthread_mutex_lock(&en->mu);
		if (en->next >= en->ntasks) {
			pthread_mutex_unlock(&en->mu);
			break;
		}
		t = en->tasks[en->next++];
		pthread_mutex_unlock(&en->mu);
		if (!buf) {
			struct ckpt_error e;

			ckpt_error_nomem(&e);
			job_fail(en, &en->jobs[t.job], &e);
			continue;
		}
		run_task(en, &t, buf);
	}
	free(buf);
	return NULL;
}

static int
cmp_task(const void *a, const void *b)
{
	const struct task *x = a, *y = b;
	bool xw = x->range == SIZE_MAX, yw = y->range == SIZE_MAX;

	if (xw != yw)
		return xw ? -1 : 1;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	if (x->job != y->job)
		return x->job < y->job ? -1 : 1;
	return x->range < y->range ? -1 : x->range > y->range;
}

int
ckpt_hash_files(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_hash_progress_fn progress, void *data,
    struct ckpt_error *err)
{
	struct engine en;
	pthread_t th[MAX_THREADS];
	size_t ntasks = 0, started = 0;
	int rc = CKPT_OK;

	memset(&en, 0, sizeof(en));
	for (size_t i = 0; i < njobs; i++) {
		struct stat st;

		jobs[i].status = 0;
		ckpt_error_clear(&jobs[i].err);
		if (stat(jobs[i].path, &st)) {
			jobs[i].status = ckpt_error_errno(&jobs[i].err,
			    jobs[i].path, "cannot stat");
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			jobs[i].status = ckpt_error_set(&jobs[i].err,
			    CKPT_ERR_INVALID, jobs[i].path, -1,
			    "not a regular file");
			continue;
		}
		jobs[i].size = (uint64_t)st.st_size;
		for (size_t r = 0; r < jobs[i].nranges; r++) {
			const struct ckpt_range_digest *rg = &jobs[i].ranges[r];

			if (rg->offset > rg->end || rg->end > jobs[i].size) {
				jobs[i].status = ckpt_error_set(&jobs[i].err,
				    CKPT_ERR_FORMAT, jobs[i].path,
				    (int64_t)rg->offset, "byte range [%llu, "
				    "%llu) is outside the file of %llu bytes",
				    (unsigned long long)rg->offset,
				    (unsigned long long)rg->end,
				    (unsigned long long)jobs[i].size);
				break;
			}
		}
		if (jobs[i].status)
			continue;
		if (!ckpt_add_u64(ntasks, jobs[i].nranges + (jobs[i].whole ?
		    1 : 0), (uint64_t *)&ntasks))
			return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1,
			    "too many ranges");
	}
	en.tasks = calloc(ntasks ? ntasks : 1, sizeof(*en.tasks));
	if (!en.tasks)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].status)
			continue;
		if (jobs[i].whole) {
			en.tasks[en.ntasks++] = (struct task){ i, SIZE_MAX,
			    jobs[i].size };
			en.total += jobs[i].size;
		}
		for (size_t r = 0; r < jobs[i].nranges; r++) {
			uint64_t len = jobs[i].ranges[r].end -
			    jobs[i].ranges[r].offset;

			en.tasks[en.ntasks++] = (struct task){ i, r, len };
			en.total += len;
		}
	}
	qsort(en.tasks, en.ntasks, sizeof(*en.tasks), cmp_task);
	en.jobs = jobs;
	en.progress = progress;
	en.data = data;
	pthread_mutex_init(&en.mu, NULL);
	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (unsigned int)n : 1;
	}
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	if (nthreads > en.ntasks)
		nthreads = en.ntasks ? (unsigned int)en.ntasks : 1;
	/* The calling thread works too. */
	for (unsigned int i = 1; i < nthreads; i++) {
		if (pthread_create(&th[started], NULL, worker, &en))
			break;
		started++;
	}
	worker(&en);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&en.mu);
	free(en.tasks);
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
