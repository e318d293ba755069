/* SPDX-License-Identifier: MIT */
/*
 * latest.c - "ckpt latest": the path of the newest committed checkpoint of
 * a run, for a restarted job.  "Newest" is the highest step read from the
 * manifests, never a file time; checkpoints marked failed (a failed load
 * test or validation) are skipped.  With --verified, each candidate from
 * the newest down is re-hashed against its manifest and the first that
 * matches is printed, so a job never resumes from a damaged checkpoint.
 * Exit 1 when there is none.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <sys/stat.h>

static const char *const latest_usage[] = {
	"ckpt latest [options] --run run",
	NULL
};

static int
cmp_off(const void *a, const void *b)
{
	const struct ckpt_range_digest *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Bytes of [0, size) covered by the union of the ranges. */
static uint64_t
ranges_cover(const struct ckpt_range_digest *r, size_t n, uint64_t size)
{
	struct ckpt_range_digest *c = xcalloc(n, sizeof(*c));
	uint64_t covered = 0, pos = 0;

	memcpy(c, r, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_off);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = c[i].offset > pos ? c[i].offset : pos;
		uint64_t b = c[i].end < size ? c[i].end : size;

		if (b > a) {
			covered += b - a;
			pos = b;
		}
	}
	free(c);
	return covered;
}

/*
 * Re-hashes a checkpoint against its manifest: every listed file present
 * with its size and the digests of its chunks and tensors (which together
 * cover every byte; when they do not, the whole-file digest too).
 * Returns true when everything matches; *why says what did not.
 */
static bool
checkpoint_verifies(const char *dir, char **why)
{
	struct ckpt_manifest *m;
	struct ckpt_hash_job *jobs;
	struct ckpt_error err;
	size_t n;
	bool ok = true;

	ckpt_error_clear(&err);
	if (ckpt_manifest_read(dir, &m, &err)) {
		*why = xasprintf("%s", err.message);
		return false;
	}
	n = ckpt_manifest_file_count(m);
	jobs = xcalloc(n, sizeof(*jobs));
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_manifest_file *f = ckpt_manifest_file(m, i);

		jobs[i].path = xasprintf("%s/%s", dir, f->path);
		jobs[i].nranges = f->nchunks + f->ntensors;
		jobs[i].ranges = xcalloc(jobs[i].nranges, sizeof(
		    *jobs[i].ranges));
		for (size_t k = 0; k < f->nchunks; k++) {
			jobs[i].ranges[k] = f->chunks[k];
		}
		for (size_t k = 0; k < f->ntensors; k++)
			jobs[i].ranges[f->nchunks + k] = f->tensors[k].bytes;
		/* The whole-file digest only when the ranges leave a gap. */
		jobs[i].whole = ranges_cover(jobs[i].ranges, jobs[i].nranges,
		    f->size) != f->size;
	}
	ckpt_hash_files(jobs, n, 0, NULL, NULL, &err);
	for (size_t i = 0; i < n && ok; i++) {
		const struct ckpt_manifest_file *f = ckpt_manifest_file(m, i);

		if (jobs[i].status) {
			*why = xasprintf("%s: %s", f->path,
			    jobs[i].err.message);
			ok = false;
		} else if (jobs[i].size != f->size) {
			*why = xasprintf("%s: size %llu, manifest says %llu",
			    f->path, (unsigned long long)jobs[i].size,
			    (unsigned long long)f->size);
			ok = false;
		} else if (jobs[i].whole && memcmp(jobs[i].sha256, f->sha256,
		    CKPT_SHA256_BYTES)) {
			*why = xasprintf("%s: SHA-256 differs", f->path);
			ok = false;
		}
		for (size_t k = 0; ok && k < f->nchunks; k++)
			if (memcmp(jobs[i].ranges[k].sha256,
			    f->chunks[k].sha256, CKPT_SHA256_BYTES)) {
				*why = xasprintf("%s: bytes %llu-%llu differ",
				    f->path, (unsigned long long)
				    f->chunks[k].offset, (unsigned long long)
				    f->chunks[k].end);
				ok = false;
			}
		for (size_t k = 0; ok && k < f->ntensors; k++)
			if (memcmp(jobs[i].ranges[f->nchunks + k].sha256,
			    f->tensors[k].bytes.sha256, CKPT_SHA256_BYTES)) {
				*why = xasprintf("%s: tensor %s differs",
				    f->path, f->tensors[k].name);
				ok = false;
			}
	}
	for (size_t i = 0; i < n; i++) {
		free((char *)jobs[i].path);
		free(jobs[i].ranges);
	}
	free(jobs);
	ckpt_manifest_free(m);
	return ok;
}

static int
cmd_latest_main(int argc, char **argv, struct ctx *ctx)
{
	const char *run = NULL;
	bool verified = false;
	const struct opt opts[] = {
		OPT_STRING('r', "run", &run, "run", "the run (required)"),
		OPT_BOOL(0, "verified", &verified,
		    "newest checkpoint whose files match its manifest"),
		OPT_END()
	};
	const struct ckpt_entry *found = NULL;
	struct ckpt_store *s;
	struct ckpt_list *l;
	struct ckpt_error err;
	size_t skipped = 0;

	if (parse_options(argc, argv, ctx, opts, latest_usage))
		usage_error(latest_usage, opts, "latest takes no arguments");
	if (!run)
		usage_error(latest_usage, opts, "--run is required");
	ckpt_error_clear(&err);
	if (ckpt_name_check(run, "run name", &err)) {
		error_ckpt(&err);
		return CKPT_EXIT_USAGE;
	}
	s = store_open(ctx, false);
	if (ckpt_store_list(s, run, 0, &l, &err))
		die_ckpt(&err);
	for (size_t i = ckpt_list_count(l); i-- > 0;) {
		const struct ckpt_entry *e = ckpt_list_entry(l, i);
		char *why = NULL;

		if (e->failed)
			continue;
		if (verified && !checkpoint_verifies(e->path, &why)) {
			warning("%s@%lld does not verify (%s); trying an older "
			    "one", e->run, (long long)e->step, why);
			free(why);
			skipped++;
			continue;
		}
		found = e;
		break;
	}
	if (!found) {
		if (ctx->verbosity)
			fprintf(stderr, "ckpt: run '%s' has no committed%s "
			    "checkpoint\n", run, verified ? ", verified" : "");
		ckpt_list_free(l);
		ckpt_store_free(s);
		return CKPT_EXIT_FINDING;
	}
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "run", json_string(found->run));
		json_object_set_new(doc, "step", json_integer(found->step));
		json_object_set_new(doc, "path", json_string(found->path));
		json_object_set_new(doc, "verified", json_boolean(verified));
		json_object_set_new(doc, "skipped", json_integer(
		    (json_int_t)skipped));
		json_doc_print(doc);
	} else {
		printf("%s\n", found->path);
	}
	ckpt_list_free(l);
	ckpt_store_free(s);
	return CKPT_EXIT_OK;
}

const struct cmd cmd_latest = {
	.name = "latest",
	.summary = "print the newest committed checkpoint of a run",
	.fn = cmd_latest_main,
};
