/* SPDX-License-Identifier: MIT */
/*
 * check_policy.c - the retention engine and ckpt.yaml: the edge-case matrix
 * of reference/retention-and-anchors.md §2.7 (ties, NaN, missing metrics,
 * keep_last 0, keep_best with keep_last, stale higher steps of another run,
 * calendar buckets across DST and year boundaries, the disk budget,
 * refusals) and the policy file's errors.
 */
#include "unit.h"
#include "policy/policy.h"

#include <math.h>
#include <time.h>

/* 2026-11-27 12:00:00Z */
#define T0 INT64_C(1795780800)
#define DAY INT64_C(86400)
#define HOUR INT64_C(3600)

struct spec {
	const char *run;
	int64_t step;
	int64_t created;
	uint64_t size;
	double metric;
	bool pinned, registry;
};

static const char *const metric_names[] = { "val_loss" };

static struct ckpt_candidate cands[20000];
static double values[20000];

static void
build(const struct spec *s, size_t n)
{
	ck_assert_uint_le(n, CKPT_ARRAY_SIZE(cands));
	for (size_t i = 0; i < n; i++) {
		memset(&cands[i], 0, sizeof(cands[i]));
		cands[i].run = s[i].run ? s[i].run : "r";
		cands[i].step = s[i].step;
		cands[i].created = s[i].created;
		cands[i].size = s[i].size;
		values[i] = s[i].metric;
		cands[i].nmetrics = 1;
		cands[i].metric_names = metric_names;
		cands[i].metric_values = &values[i];
		cands[i].pinned = s[i].pinned;
		cands[i].registry = s[i].registry;
		cands[i].registry_ref = s[i].registry ? "m@v1" : NULL;
	}
}

/* Candidate i of cands, copied into buf (ckpt_policy_plan_fn's way). */
static const struct ckpt_candidate *
cand_copy(void *arg, size_t i, struct ckpt_candidate *buf)
{
	*buf = ((const struct ckpt_candidate *)arg)[i];
	return buf;
}

/* a and b (n candidates) give the same verdicts with the same reasons. */
static void
assert_same_plan(const struct ckpt_plan *a, const struct ckpt_plan *b,
    size_t n)
{
	ck_assert_uint_eq(ckpt_plan_run_count(a), ckpt_plan_run_count(b));
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_verdict *x = ckpt_plan_verdict(a, i);
		const struct ckpt_verdict *y = ckpt_plan_verdict(b, i);

		ck_assert_int_eq(x->keep, y->keep);
		ck_assert_int_eq(x->invariant, y->invariant);
		ck_assert_uint_eq(x->nreasons, y->nreasons);
		for (size_t k = 0; k < x->nreasons; k++)
			ck_assert_str_eq(x->reasons[k], y->reasons[k]);
	}
}

/*
 * The plan of cands[0..n) as build() and the test's own edits left them;
 * the same plan again through ckpt_policy_plan_fn (prune's way) must
 * agree with it.
 */
static struct ckpt_plan *
plan_cands(const struct ckpt_policy *p, size_t n, int64_t now)
{
	struct ckpt_plan *plan = NULL, *again = NULL;
	struct ckpt_error err;
	int rc;

	rc = ckpt_policy_plan(p, cands, n, now, &plan, &err);
	ck_assert_msg(rc == 0, "plan failed: %s", err.message);
	rc = ckpt_policy_plan_fn(p, cand_copy, cands, n, now, &again, &err);
	ck_assert_msg(rc == 0, "plan_fn failed: %s", err.message);
	assert_same_plan(plan, again, n);
	ckpt_plan_free(again);
	return plan;
}

static struct ckpt_plan *
plan_of(const struct ckpt_policy *p, const struct spec *s, size_t n)
{
	build(s, n);
	return plan_cands(p, n, 0);
}

static int
plan_rc(const struct ckpt_policy *p, const struct spec *s, size_t n,
    struct ckpt_error *err)
{
	struct ckpt_plan *plan = NULL;
	int rc;

	build(s, n);
	rc = ckpt_policy_plan(p, cands, n, 0, &plan, err);
	ckpt_plan_free(plan);
	return rc;
}

/* The kept steps of a run, newest first by step: "50 40 10". */
static const char *
kept(const struct ckpt_plan *plan, const struct spec *s, size_t n,
    const char *run)
{
	static char buf[4096];
	int64_t steps[512];
	size_t m = 0, o = 0;

	for (size_t i = 0; i < n; i++)
		if (ckpt_plan_verdict(plan, i)->keep &&
		    !strcmp(s[i].run ? s[i].run : "r", run ? run : "r")) {
			ck_assert_uint_lt(m, 512);
			steps[m++] = s[i].step;
		}
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && steps[j - 1] < steps[j]; j--) {
			int64_t t = steps[j];

			steps[j] = steps[j - 1];
			steps[j - 1] = t;
		}
	buf[0] = '\0';
	for (size_t i = 0; i < m; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%lld",
		    i ? " " : "", (long long)steps[i]);
	return buf;
}

/* The reasons of candidate i joined with "; ". */
static const char *
why(const struct ckpt_plan *plan, size_t i)
{
	static char buf[2048];
	const struct ckpt_verdict *v = ckpt_plan_verdict(plan, i);
	size_t o = 0;

	buf[0] = '\0';
	for (size_t j = 0; j < v->nreasons; j++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
		    j ? "; " : "", v->reasons[j]);
	return buf;
}

static size_t
find(const struct spec *s, size_t n, const char *run, int64_t step)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].step == step && !strcmp(s[i].run ? s[i].run : "r",
		    run ? run : "r"))
			return i;
	ck_abort_msg("no step %lld", (long long)step);
	return 0;
}

/* Ten checkpoints, steps 10..100, one hour apart, 1 MiB each. */
static struct spec ten[10];

static void
make_ten(void)
{
	for (int i = 0; i < 10; i++) {
		ten[i] = (struct spec){ NULL, (i + 1) * 10, T0 + i * HOUR,
		    1 << 20, NAN, false, false };
	}
}

START_TEST(test_empty_policy_refused)
{
	struct ckpt_policy p;
	struct ckpt_error err;

	make_ten();
	ckpt_policy_init(&p);
	ck_assert(ckpt_policy_is_empty(&p));
	ck_assert_int_eq(plan_rc(&p, ten, 10, &err), CKPT_ERR_REFUSED);
	ck_assert_ptr_nonnull(strstr(err.message, "empty"));

	/* keep_last 0 is a rule that keeps nothing: still empty */
	p.keep_last = 0;
	ck_assert(ckpt_policy_is_empty(&p));
	ck_assert_int_eq(plan_rc(&p, ten, 10, &err), CKPT_ERR_REFUSED);
}
END_TEST

START_TEST(test_keep_last_by_step)
{
	struct ckpt_policy p;
	struct ckpt_plan *plan;
	struct spec s[10];

	/* input order shuffled and times reversed: only the step counts */
	make_ten();
	for (int i = 0; i < 10; i++) {
		s[i] = ten[(i * 7) % 10];
		s[i].created = T0 - s[i].step * HOUR;
	}
	ckpt_policy_init(&p);
	p.keep_last = 3;
	plan = plan_of(&p, s, 10);
	ck_assert_str_eq(kept(plan, s, 10, NULL), "100 90 80");
	ck_assert_str_eq(why(plan, find(s, 10, NULL, 100)), "newest; last");
	ck_assert_str_eq(why(plan, find(s, 10, NULL, 90)), "last");
	ck_assert(ckpt_plan_verdict(plan, find(s, 10, NULL, 100))->invariant);
	ck_assert(!ckpt_plan_verdict(plan, find(s, 10, NULL, 90))->invariant);
	ck_assert_uint_eq(ckpt_plan_verdict(plan, find(s, 10, NULL, 10))->nreasons, 0);
	ck_assert_uint_eq(ckpt_plan_run_count(plan), 1);
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->kept, 3);
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->removed, 7);
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->removed_bytes, 7u << 20);
	ckpt_plan_free(plan);

	p.keep_last = CKPT_KEEP_ALL;
	plan = plan_of(&p, s, 10);
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->kept, 10);
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_keep_last_zero_with_other_rule)
{
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	make_ten();
	ckpt_policy_init(&p);
	p.keep_last = 0;
	p.keep_every = 50;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 50");
	ck_assert_str_eq(why(plan, 9), "newest; every 50");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_runs_are_independent)
{
	/* A stale run with higher steps and older times must not make the
	 * fresh run's checkpoints look old (unsloth-zoo#782). */
	struct spec s[] = {
		{ "old", 1000, T0 - 30 * DAY, 1, NAN, false, false },
		{ "old", 2000, T0 - 29 * DAY, 1, NAN, false, false },
		{ "old", 3000, T0 - 28 * DAY, 1, NAN, false, false },
		{ "new", 10, T0, 1, NAN, false, false },
		{ "new", 20, T0 + HOUR, 1, NAN, false, false },
		{ "new", 30, T0 + 2 * HOUR, 1, NAN, false, false },
	};
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	ckpt_policy_init(&p);
	p.keep_last = 2;
	plan = plan_of(&p, s, 6);
	ck_assert_str_eq(kept(plan, s, 6, "old"), "3000 2000");
	ck_assert_str_eq(kept(plan, s, 6, "new"), "30 20");
	ck_assert_str_eq(why(plan, 5), "newest; last");
	ck_assert_str_eq(why(plan, 2), "newest; last");
	ck_assert_uint_eq(ckpt_plan_run_count(plan), 2);
	ck_assert_str_eq(ckpt_plan_run(plan, 0)->run, "old");
	ck_assert_str_eq(ckpt_plan_run(plan, 1)->run, "new");
	ckpt_plan_free(plan);

	/* keep_within is relative to each run's own newest checkpoint */
	ckpt_policy_init(&p);
	p.keep_within = 36 * HOUR;
	plan = plan_of(&p, s, 6);
	ck_assert_str_eq(kept(plan, s, 6, "old"), "3000 2000");
	ck_assert_str_eq(kept(plan, s, 6, "new"), "30 20 10");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_keep_best_ties_keep_newer)
{
	struct spec s[] = {
		{ NULL, 10, T0, 1, 0.3, false, false },
		{ NULL, 20, T0 + 1, 1, 0.2, false, false },
		{ NULL, 30, T0 + 2, 1, 0.3, false, false },
		{ NULL, 40, T0 + 3, 1, 0.3, false, false },
		{ NULL, 50, T0 + 4, 1, 0.9, false, false },
	};
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	ckpt_policy_init(&p);
	p.keep_best = 2;
	p.metric = "val_loss";
	plan = plan_of(&p, s, 5);
	/* 20 is best; of the three 0.3s the newest (40) wins; 50 is newest */
	ck_assert_str_eq(kept(plan, s, 5, NULL), "50 40 20");
	ck_assert_str_eq(why(plan, 1), "best val_loss=0.2 (1/2)");
	ck_assert_str_eq(why(plan, 3), "best val_loss=0.3 (2/2)");
	ck_assert_str_eq(why(plan, 4), "newest");
	ckpt_plan_free(plan);

	/* mode max: 0.9 is best, then the newest 0.3 */
	p.mode = CKPT_POLICY_MAX;
	plan = plan_of(&p, s, 5);
	ck_assert_str_eq(kept(plan, s, 5, NULL), "50 40");
	ck_assert_str_eq(why(plan, 4), "newest; best val_loss=0.9 (1/2)");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_keep_best_nan_and_missing)
{
	struct spec s[] = {
		{ NULL, 10, T0, 1, NAN, false, false },		/* NaN */
		{ NULL, 20, T0 + 1, 1, 0.5, false, false },
		{ NULL, 30, T0 + 2, 1, 0.1, false, false },
		{ NULL, 40, T0 + 3, 1, 0.7, false, false },
		{ NULL, 50, T0 + 4, 1, 0.8, false, false },
	};
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	ckpt_policy_init(&p);
	p.keep_best = 1;
	p.metric = "val_loss";
	build(s, 5);
	cands[3].nmetrics = 0;		/* 40: no metric at all */
	plan = plan_cands(&p, 5, 0);
	/* NaN is never best; missing and NaN are kept by default */
	ck_assert_str_eq(kept(plan, s, 5, NULL), "50 40 30 10");
	ck_assert_str_eq(why(plan, 0), "no-metric val_loss");
	ck_assert_str_eq(why(plan, 3), "no-metric val_loss");
	ck_assert_str_eq(why(plan, 2), "best val_loss=0.1 (1/1)");
	ckpt_plan_free(plan);

	p.missing = CKPT_MISSING_DROP;
	plan = plan_cands(&p, 5, 0);
	ck_assert_str_eq(kept(plan, s, 5, NULL), "50 30");
	ckpt_plan_free(plan);

	/* -inf is a value, and the best one for mode min */
	s[0].metric = -INFINITY;
	p.missing = CKPT_MISSING_UNSET;
	plan = plan_of(&p, s, 5);
	ck_assert_str_eq(kept(plan, s, 5, NULL), "50 10");
	ck_assert_str_eq(why(plan, 0), "best val_loss=-inf (1/1)");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_keep_best_with_keep_last)
{
	struct spec s[6];
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	/* the best is old; keep_last must not be displaced by it (orbax#526)
	 * and it must not displace keep_last either: a union */
	for (int i = 0; i < 6; i++)
		s[i] = (struct spec){ NULL, (i + 1) * 100, T0 + i * HOUR, 1,
		    1.0 + i, false, false };
	ckpt_policy_init(&p);
	p.keep_last = 2;
	p.keep_best = 1;
	p.metric = "val_loss";
	plan = plan_of(&p, s, 6);
	ck_assert_str_eq(kept(plan, s, 6, NULL), "600 500 100");
	ck_assert_str_eq(why(plan, 0), "best val_loss=1 (1/1)");
	ck_assert_str_eq(why(plan, 5), "newest; last");
	ckpt_plan_free(plan);

	/* the best inside the last window carries both reasons */
	s[4].metric = 0.5;
	plan = plan_of(&p, s, 6);
	ck_assert_str_eq(kept(plan, s, 6, NULL), "600 500");
	ck_assert_str_eq(why(plan, 4), "last; best val_loss=0.5 (1/1)");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_keep_every_and_within)
{
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	make_ten();
	ckpt_policy_init(&p);
	p.keep_every = 30;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 90 60 30");
	ckpt_plan_free(plan);

	/* within 2h of the newest (9h): strictly after 7h, so 8h and 9h */
	ckpt_policy_init(&p);
	p.keep_within = 2 * HOUR;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 90");
	ck_assert_str_eq(why(plan, 8), "within 2h");
	ckpt_plan_free(plan);

	/* a checkpoint dated in the future does not define "newest" when
	 * "now" is given (restic) */
	build(ten, 10);
	cands[0].created = T0 + 1000 * DAY;	/* step 10, clock skew */
	plan = plan_cands(&p, 10, T0 + 10 * HOUR);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 90 10");
	ckpt_plan_free(plan);
	plan = plan_cands(&p, 10, 0);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 10");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_invariants)
{
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	make_ten();
	ten[2].pinned = true;		/* step 30 */
	ten[4].registry = true;		/* step 50 */
	ckpt_policy_init(&p);
	p.keep_last = 1;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 50 30");
	ck_assert_str_eq(why(plan, 2), "pinned");
	ck_assert_str_eq(why(plan, 4), "registry m@v1");
	ck_assert(ckpt_plan_verdict(plan, 2)->invariant);
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_refuse_rules_keep_nothing)
{
	struct ckpt_policy p;
	struct ckpt_error err;
	struct ckpt_plan *plan;

	make_ten();
	ckpt_policy_init(&p);
	p.keep_every = 1000;		/* matches no step */
	ck_assert_int_eq(plan_rc(&p, ten, 10, &err), CKPT_ERR_REFUSED);
	ck_assert_ptr_nonnull(strstr(err.message, "run 'r'"));

	/* ... unless nothing unprotected is there to delete */
	plan = plan_of(&p, ten + 9, 1);
	ck_assert_str_eq(kept(plan, ten + 9, 1, NULL), "100");
	ckpt_plan_free(plan);

	/* keep_best of a metric nobody has, missing drop */
	ckpt_policy_init(&p);
	p.keep_best = 3;
	p.metric = "accuracy";
	p.missing = CKPT_MISSING_DROP;
	ck_assert_int_eq(plan_rc(&p, ten, 10, &err), CKPT_ERR_REFUSED);

	/* one refused run refuses the whole plan */
	{
		struct spec s[] = {
			{ "a", 1000, T0, 1, NAN, false, false },
			{ "a", 2000, T0 + 1, 1, NAN, false, false },
			{ "b", 1, T0, 1, NAN, false, false },
			{ "b", 2, T0 + 1, 1, NAN, false, false },
		};

		ckpt_policy_init(&p);
		p.keep_every = 1000;
		ck_assert_int_eq(plan_rc(&p, s, 4, &err), CKPT_ERR_REFUSED);
		ck_assert_ptr_nonnull(strstr(err.message, "run 'b'"));
	}

	/* keep_best without a metric is a usage error */
	ckpt_policy_init(&p);
	p.keep_best = 1;
	ck_assert_int_eq(plan_rc(&p, ten, 10, &err), CKPT_ERR_INVALID);
}
END_TEST

START_TEST(test_max_size)
{
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	make_ten();
	ten[1].pinned = true;		/* step 20 */
	ckpt_policy_init(&p);
	p.keep_last = 6;		/* 100..50: 6 MiB, plus pinned 20 */
	p.max_size = 4 << 20;		/* room for 4 */
	plan = plan_of(&p, ten, 10);
	/* the cap removes the oldest unprotected: 50, 60, 70 */
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 90 80 20");
	ck_assert_str_eq(why(plan, 4), "max-size");
	ck_assert(!ckpt_plan_verdict(plan, 4)->keep);
	ck_assert_str_eq(why(plan, 7), "last");
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->kept_bytes, 4u << 20);
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->over_budget, 0);
	ckpt_plan_free(plan);

	/* max_size alone: keep what fits, newest first */
	ckpt_policy_init(&p);
	p.max_size = (3 << 20) + 5;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 90 20");
	ck_assert_str_eq(why(plan, 8), "max-size");
	ck_assert_str_eq(why(plan, 9), "newest");
	ckpt_plan_free(plan);

	/* the protected ones alone exceed the budget: kept, and reported */
	p.max_size = 1 << 20;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 20");
	ck_assert_uint_eq(ckpt_plan_run(plan, 0)->over_budget, 1u << 20);
	ckpt_plan_free(plan);

	/* a zero budget with rules: everything unprotected goes */
	ckpt_policy_init(&p);
	p.keep_last = 3;
	p.max_size = 0;
	plan = plan_of(&p, ten, 10);
	ck_assert_str_eq(kept(plan, ten, 10, NULL), "100 20");
	ckpt_plan_free(plan);
}
END_TEST

/* Checkpoints at the given UTC times, steps 1, 2, 3... */
static size_t
at_times(struct spec *s, const int64_t *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = (struct spec){ NULL, (int64_t)i + 1, t[i], 1, NAN,
		    false, false };
	return n;
}

START_TEST(test_bucket_labels_and_iso_weeks)
{
	char l[64];

	/* 2020-12-31 (Thu) is in 2020-W53, so are 2021-01-01..03 */
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1609416000, l, sizeof(l));
	ck_assert_str_eq(l, "2020-W53");
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1609718399, l, sizeof(l));
	ck_assert_str_eq(l, "2020-W53");		/* 2021-01-03 23:59:59 */
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1609718400, l, sizeof(l));
	ck_assert_str_eq(l, "2021-W01");		/* 2021-01-04 00:00:00 */
	ck_assert_int_eq(ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1609416000,
	    NULL, 0), ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1609718399, NULL,
	    0));
	/* 2024-12-30 (Mon) starts 2025-W01 */
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1735560000, l, sizeof(l));
	ck_assert_str_eq(l, "2025-W01");
	/* 2026 starts on a Thursday: 2026-12-31 is in 2026-W53 */
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 1798718400, l, sizeof(l));
	ck_assert_str_eq(l, "2026-W53");
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, T0, l, sizeof(l));
	ck_assert_str_eq(l, "2026-W48");
	ckpt_bucket_key(CKPT_BUCKET_HOURLY, T0 + 3 * HOUR + 59, l, sizeof(l));
	ck_assert_str_eq(l, "2026-11-27 15h");
	ckpt_bucket_key(CKPT_BUCKET_MONTHLY, T0, l, sizeof(l));
	ck_assert_str_eq(l, "2026-11");
	ckpt_bucket_key(CKPT_BUCKET_YEARLY, 1609459199, l, sizeof(l));
	ck_assert_str_eq(l, "2020");
	ckpt_bucket_key(CKPT_BUCKET_YEARLY, 1609459200, l, sizeof(l));
	ck_assert_str_eq(l, "2021");
	/* before the epoch: floor, not truncation */
	ckpt_bucket_key(CKPT_BUCKET_DAILY, -1, l, sizeof(l));
	ck_assert_str_eq(l, "1969-12-31");
	ckpt_bucket_key(CKPT_BUCKET_HOURLY, -1, l, sizeof(l));
	ck_assert_str_eq(l, "1969-12-31 23h");
	ckpt_bucket_key(CKPT_BUCKET_WEEKLY, 0, l, sizeof(l));
	ck_assert_str_eq(l, "1970-W01");
}
END_TEST

START_TEST(test_year_boundary_buckets)
{
	/* 2020-12-31 12:00, 2021-01-01 12:00, 2021-01-03 12:00: one ISO week
	 * (2020-W53), two years */
	int64_t t[] = { 1609416000, 1609502400, 1609675200 };
	struct spec s[3];
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	at_times(s, t, 3);
	ckpt_policy_init(&p);
	p.keep_bucket[CKPT_BUCKET_WEEKLY] = 1;
	plan = plan_of(&p, s, 3);
	ck_assert_str_eq(kept(plan, s, 3, NULL), "3");
	ck_assert_str_eq(why(plan, 2), "newest; weekly 2020-W53");
	ckpt_plan_free(plan);

	ckpt_policy_init(&p);
	p.keep_bucket[CKPT_BUCKET_YEARLY] = 2;
	plan = plan_of(&p, s, 3);
	ck_assert_str_eq(kept(plan, s, 3, NULL), "3 1");
	ck_assert_str_eq(why(plan, 0), "yearly 2020");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_buckets_restic_semantics)
{
	/* One checkpoint a day at noon, 2026-10-01 .. 2026-11-27 (a
	 * Friday), plus an earlier one on the last day. */
	struct spec s[60];
	size_t n = 0;
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	for (int d = 0; d < 58; d++)
		s[n++] = (struct spec){ NULL, (d + 1) * 100, T0 - (57 - d) * DAY,
		    1, NAN, false, false };
	s[n++] = (struct spec){ NULL, 5750, T0 - 2 * HOUR, 1, NAN, false,
	    false };
	ckpt_policy_init(&p);
	p.keep_bucket[CKPT_BUCKET_DAILY] = 7;
	p.keep_bucket[CKPT_BUCKET_WEEKLY] = 5;
	plan = plan_of(&p, s, n);
	/* dailies: Nov 21..27 (steps 5200..5800; the 10:00 one on the 27th
	 * loses to noon); weeklies: Nov 27 (W48, shared), Nov 22 (W47,
	 * shared), and the Sundays Nov 15, Nov 8, Nov 1: 7 + 3 */
	ck_assert_str_eq(kept(plan, s, n, NULL),
	    "5800 5700 5600 5500 5400 5300 5200 4600 3900 3200");
	ck_assert_str_eq(why(plan, 57),
	    "newest; daily 2026-11-27; weekly 2026-W48");
	ck_assert_str_eq(why(plan, 52), "daily 2026-11-22; weekly 2026-W47");
	ck_assert_str_eq(why(plan, 45), "weekly 2026-W46");
	ckpt_plan_free(plan);

	/* one checkpoint fills daily, weekly and monthly at once */
	ckpt_policy_init(&p);
	p.keep_bucket[CKPT_BUCKET_MONTHLY] = 1;
	p.keep_bucket[CKPT_BUCKET_DAILY] = 1;
	plan = plan_of(&p, s, n);
	ck_assert_str_eq(kept(plan, s, n, NULL), "5800");
	ck_assert_str_eq(why(plan, 57),
	    "newest; daily 2026-11-27; monthly 2026-11");
	ckpt_plan_free(plan);

	/* unlimited monthly: the newest of each month, and (restic) the
	 * oldest, as an unlimited bucket always has counts left */
	p.keep_bucket[CKPT_BUCKET_DAILY] = CKPT_POLICY_UNSET;
	p.keep_bucket[CKPT_BUCKET_MONTHLY] = CKPT_KEEP_ALL;
	plan = plan_of(&p, s, n);
	ck_assert_str_eq(kept(plan, s, n, NULL), "5800 3100 100");
	ck_assert_str_eq(why(plan, 0), "oldest monthly 2026-10");
	ckpt_plan_free(plan);
}
END_TEST

START_TEST(test_buckets_oldest_rule)
{
	/* restic keeps the oldest checkpoint while a bucket has counts
	 * left, with the reason "oldest <rule>" */
	int64_t t[] = { T0 - DAY - 2 * HOUR, T0 - DAY, T0 };
	struct spec s[3];
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	at_times(s, t, 3);
	ckpt_policy_init(&p);
	p.keep_bucket[CKPT_BUCKET_DAILY] = 10;
	plan = plan_of(&p, s, 3);
	ck_assert_str_eq(kept(plan, s, 3, NULL), "3 2 1");
	ck_assert_str_eq(why(plan, 0), "oldest daily 2026-11-26");
	ckpt_plan_free(plan);

	/* counts used up: the oldest goes */
	p.keep_bucket[CKPT_BUCKET_DAILY] = 2;
	plan = plan_of(&p, s, 3);
	ck_assert_str_eq(kept(plan, s, 3, NULL), "3 2");
	ckpt_plan_free(plan);
}
END_TEST

/* Runs the daily+hourly plan and returns the kept steps (copied). */
static char *
dst_plan(const struct spec *s, size_t n)
{
	struct ckpt_policy p;
	struct ckpt_plan *plan;
	char *r, buf[4096];
	size_t o = 0;

	ckpt_policy_init(&p);
	p.keep_bucket[CKPT_BUCKET_DAILY] = 10;
	p.keep_bucket[CKPT_BUCKET_HOURLY] = 2;
	plan = plan_of(&p, s, n);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s|%s\n",
		    kept(plan, s, n, NULL), why(plan, i));
	r = strdup(buf);
	ckpt_plan_free(plan);
	return r;
}

START_TEST(test_buckets_immune_to_dst)
{
	/* Around the EU spring-forward (2026-03-29 01:00Z) and the US one
	 * (2026-03-08 07:00Z): 23:30Z and 00:30Z are different UTC days but
	 * the same local day in Berlin; 00:59Z, 01:00Z are both in Berlin's
	 * skipped/shifted hours.  Periods are UTC, so TZ changes nothing. */
	int64_t t[] = {
		1774740600,	/* 2026-03-28 23:30Z */
		1774744200,	/* 2026-03-29 00:30Z */
		1774745940,	/* 2026-03-29 00:59Z */
		1774746000,	/* 2026-03-29 01:00Z */
		1772953200,	/* 2026-03-08 07:00Z */
		1772951400,	/* 2026-03-08 06:30Z */
	};
	const char *zones[] = { "CET-1CEST,M3.5.0,M10.5.0/3",
		"EST5EDT,M3.2.0,M11.1.0", "Europe/Berlin", "America/New_York" };
	struct spec s[6];
	char *utc, *other;
	char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	at_times(s, t, 6);
	setenv("TZ", "UTC0", 1);
	tzset();
	utc = dst_plan(s, 6);
	/* both days survive, and the hourly picks 01:00Z and 00:59Z */
	ck_assert_ptr_nonnull(strstr(utc, "daily 2026-03-28"));
	ck_assert_ptr_nonnull(strstr(utc, "daily 2026-03-29"));
	ck_assert_ptr_nonnull(strstr(utc, "hourly 2026-03-29 00h"));
	ck_assert_ptr_nonnull(strstr(utc, "hourly 2026-03-29 01h"));
	for (size_t z = 0; z < CKPT_ARRAY_SIZE(zones); z++) {
		setenv("TZ", zones[z], 1);
		tzset();
		other = dst_plan(s, 6);
		ck_assert_str_eq(other, utc);
		free(other);
	}
	free(utc);
	if (saved) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}
END_TEST

START_TEST(test_durations_and_sizes)
{
	int64_t v;
	char buf[64];

	ck_assert_int_eq(ckpt_duration_parse("2d12h", &v, NULL), 0);
	ck_assert_int_eq(v, 2 * DAY + 12 * HOUR);
	ck_assert_int_eq(ckpt_duration_parse("36h", &v, NULL), 0);
	ck_assert_int_eq(v, 36 * HOUR);
	ck_assert_int_eq(ckpt_duration_parse("1w", &v, NULL), 0);
	ck_assert_int_eq(v, 7 * DAY);
	ck_assert_int_eq(ckpt_duration_parse("90", &v, NULL), 0);
	ck_assert_int_eq(v, 90);
	ck_assert_int_eq(ckpt_duration_parse("1h30m5s", &v, NULL), 0);
	ck_assert_int_eq(v, 5405);
	ck_assert_int_eq(ckpt_duration_parse("", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_duration_parse("h", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_duration_parse("1y", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_duration_parse("-1d", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_duration_parse("1d2", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_duration_parse("99999999999999999999s", &v,
	    NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_duration_parse("9999999999999999w", &v, NULL),
	    CKPT_ERR_INVALID);
	ck_assert_str_eq(ckpt_duration_format(2 * DAY + 12 * HOUR, buf,
	    sizeof(buf)), "2d12h");
	ck_assert_str_eq(ckpt_duration_format(7 * DAY, buf, sizeof(buf)),
	    "1w");
	ck_assert_str_eq(ckpt_duration_format(0, buf, sizeof(buf)), "0s");
	ck_assert_str_eq(ckpt_duration_format(61, buf, sizeof(buf)), "1m1s");

	ck_assert_int_eq(ckpt_size_parse("512M", &v, NULL), 0);
	ck_assert_int_eq(v, 512 << 20);
	ck_assert_int_eq(ckpt_size_parse("10GiB", &v, NULL), 0);
	ck_assert_int_eq(v, INT64_C(10) << 30);
	ck_assert_int_eq(ckpt_size_parse("1.5K", &v, NULL), 0);
	ck_assert_int_eq(v, 1536);
	ck_assert_int_eq(ckpt_size_parse("100", &v, NULL), 0);
	ck_assert_int_eq(v, 100);
	ck_assert_int_eq(ckpt_size_parse("1X", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_size_parse("G", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_size_parse("1.G", &v, NULL), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_size_parse("9000P", &v, NULL), CKPT_ERR_INVALID);
}
END_TEST

START_TEST(test_describe_and_merge)
{
	struct ckpt_policy a, b;
	char *d;

	ckpt_policy_init(&a);
	a.keep_last = 5;
	a.keep_best = 2;
	a.metric = "val_loss";
	a.keep_within = 2 * DAY;
	a.keep_bucket[CKPT_BUCKET_DAILY] = 7;
	ckpt_policy_init(&b);
	b.keep_last = 3;
	b.mode = CKPT_POLICY_MAX;
	ckpt_policy_merge(&a, &b);
	ck_assert_int_eq(a.keep_last, 3);
	ck_assert_int_eq(a.keep_best, 2);
	d = ckpt_policy_describe(&a);
	ck_assert_str_eq(d, "keep 3 last, 2 best by val_loss (max), within "
	    "2d of the newest, 7 daily");
	free(d);
	a.max_size = INT64_C(500) << 30;
	a.missing = CKPT_MISSING_DROP;
	d = ckpt_policy_describe(&a);
	ck_assert_str_eq(d, "keep 3 last, 2 best by val_loss (max), within "
	    "2d of the newest, 7 daily; drop missing metrics; max size 500G");
	free(d);
	ckpt_policy_init(&b);
	b.max_size = 1000;
	d = ckpt_policy_describe(&b);
	ck_assert_str_eq(d, "max size 1000 bytes");
	free(d);
	ckpt_policy_init(&b);
	d = ckpt_policy_describe(&b);
	ck_assert_str_eq(d, "empty policy");
	free(d);
}
END_TEST

START_TEST(test_large_plan)
{
	/* 10,000 checkpoints in 10 runs, the bench's shape, fast and sane */
	static struct spec s[10000];
	struct ckpt_policy p;
	struct ckpt_plan *plan;
	static const char *const runs[] = { "r0", "r1", "r2", "r3", "r4",
		"r5", "r6", "r7", "r8", "r9" };

	for (int i = 0; i < 10000; i++)
		s[i] = (struct spec){ runs[i % 10], i, T0 + i * 600, 1,
		    (double)(i % 97), false, false };
	ckpt_policy_init(&p);
	p.keep_last = 5;
	p.keep_best = 3;
	p.metric = "val_loss";
	p.keep_bucket[CKPT_BUCKET_DAILY] = 7;
	plan = plan_of(&p, s, 10000);
	ck_assert_uint_eq(ckpt_plan_run_count(plan), 10);
	for (size_t r = 0; r < 10; r++)
		ck_assert_uint_eq(ckpt_plan_run(plan, r)->count, 1000);
	ckpt_plan_free(plan);
}
END_TEST

/*
 * The plan does not depend on the order of its input: candidates given
 * by ascending step (the engine reverses them), descending (already in
 * order), shuffled (sorted) and interleaved with another run (grouped)
 * get the same verdicts and reasons, ties of time and metric included.
 */
static void
order_case(const struct ckpt_policy *p, const struct spec *base, size_t n,
    const size_t *perm, char (*expect)[160], bool record)
{
	static struct spec s[400];
	struct ckpt_plan *plan;

	for (size_t i = 0; i < n; i++)
		s[i] = base[perm[i]];
	plan = plan_of(p, s, n);
	for (size_t i = 0; i < n; i++) {
		char got[160];

		snprintf(got, sizeof(got), "%s %s", ckpt_plan_verdict(plan,
		    i)->keep ? "keep" : "remove", why(plan, i));
		if (record)
			snprintf(expect[perm[i]], sizeof(expect[0]), "%s", got);
		else
			ck_assert_msg(!strcmp(got, expect[perm[i]]),
			    "step %lld of run %s: '%s', expected '%s'",
			    (long long)s[i].step, s[i].run, got,
			    expect[perm[i]]);
	}
	ckpt_plan_free(plan);
}

START_TEST(test_plan_independent_of_order)
{
	static struct spec base[400];
	static char expect[400][160];
	static size_t perm[400];
	struct ckpt_policy p;
	uint32_t x = 12345;

	/* run r: steps 0..299, times in runs of three equal ones, metric
	 * values with ties; run q: 100 more, interleaved below */
	for (int i = 0; i < 300; i++)
		base[i] = (struct spec){ "r", i * 10, T0 + (i / 3) * 7 * HOUR,
		    1, (double)(i % 13), false, false };
	for (int i = 0; i < 100; i++)
		base[300 + i] = (struct spec){ "q", i, T0 + i * HOUR, 1,
		    (double)(i % 7), false, false };
	ckpt_policy_init(&p);
	p.keep_last = 5;
	p.keep_best = 3;
	p.metric = "val_loss";
	p.keep_every = 70;
	p.keep_bucket[CKPT_BUCKET_DAILY] = 7;
	p.keep_bucket[CKPT_BUCKET_WEEKLY] = 2;

	for (size_t i = 0; i < 300; i++)	/* ascending */
		perm[i] = i;
	order_case(&p, base, 300, perm, expect, true);
	for (size_t i = 0; i < 300; i++)	/* descending */
		perm[i] = 299 - i;
	order_case(&p, base, 300, perm, expect, false);
	for (size_t i = 299; i > 0; i--) {	/* shuffled */
		size_t j, t;

		x = x * 1103515245u + 12345u;
		j = (x >> 8) % (i + 1);
		t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	order_case(&p, base, 300, perm, expect, false);

	/* two runs interleaved: r's verdicts as alone, q's by its own */
	for (size_t i = 0; i < 100; i++)
		perm[i] = 300 + i;
	order_case(&p, base, 100, perm, expect, true);
	for (size_t i = 0, a = 0, b = 300; i < 400; i++)
		perm[i] = i % 4 == 3 ? b++ : a++;
	order_case(&p, base, 400, perm, expect, false);
}
END_TEST

/* ckpt.yaml ---------------------------------------------------------- */

static struct ckpt_policy_config *
cfg_of(const char *text)
{
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_error err;
	int rc = ckpt_policy_config_parse(text, strlen(text), "ckpt.yaml",
	    &cfg, &err);

	ck_assert_msg(rc == 0, "parse failed: %s", err.message);
	return cfg;
}

static const char *
cfg_error(const char *text)
{
	static struct ckpt_error err;
	struct ckpt_policy_config *cfg = NULL;
	int rc = ckpt_policy_config_parse(text, strlen(text), "ckpt.yaml",
	    &cfg, &err);

	ck_assert_int_ne(rc, 0);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err.path, "ckpt.yaml");
	return err.message;
}

START_TEST(test_config_full)
{
	struct ckpt_policy_config *cfg = cfg_of(
	    "# store policy\n"
	    "version: 1\n"
	    "prune_on_save: true\n"
	    "trash: keep\n"
	    "gc:\n"
	    "  older_than: 2d\n"
	    "default:\n"
	    "  keep_last: 5\n"
	    "  keep_best: 2\n"
	    "  metric: val_loss\n"
	    "  mode: min\n"
	    "  keep_every: 1000\n"
	    "  keep_within: 2d12h\n"
	    "  keep_hourly: 24\n"
	    "  keep_daily: 7\n"
	    "  keep_weekly: 4\n"
	    "  keep_monthly: 12\n"
	    "  keep_yearly: unlimited\n"
	    "  max_size: 500G\n"
	    "  missing: keep\n"
	    "runs:\n"
	    "  \"llama-*\":\n"
	    "    keep_last: 2\n"
	    "    mode: max\n"
	    "    metric: accuracy\n"
	    "  llama-7b:\n"
	    "    keep_best: 0\n"
	    "  \"*\":\n"
	    "    missing: drop\n");
	struct ckpt_policy p;

	ck_assert(ckpt_policy_config_prune_on_save(cfg));
	ck_assert_int_eq(ckpt_policy_config_trash(cfg), CKPT_TRASH_KEEP);
	ck_assert_int_eq(ckpt_policy_config_gc_age(cfg), 2 * DAY);

	ckpt_policy_config_lookup(cfg, "other", &p);
	/* "*" matches everything not matched before it */
	ck_assert_int_eq(p.keep_last, 5);
	ck_assert_int_eq(p.missing, CKPT_MISSING_DROP);
	ck_assert_int_eq(p.keep_within, 2 * DAY + 12 * HOUR);
	ck_assert_int_eq(p.keep_bucket[CKPT_BUCKET_YEARLY], CKPT_KEEP_ALL);
	ck_assert_int_eq(p.max_size, INT64_C(500) << 30);
	ck_assert_str_eq(p.metric, "val_loss");

	/* the first glob in file order wins among globs */
	ckpt_policy_config_lookup(cfg, "llama-13b", &p);
	ck_assert_int_eq(p.keep_last, 2);
	ck_assert_int_eq(p.mode, CKPT_POLICY_MAX);
	ck_assert_str_eq(p.metric, "accuracy");
	ck_assert_int_eq(p.keep_best, 2);
	ck_assert_int_eq(p.missing, CKPT_MISSING_KEEP);

	/* an exact name wins over globs listed before it */
	ckpt_policy_config_lookup(cfg, "llama-7b", &p);
	ck_assert_int_eq(p.keep_last, 5);
	ck_assert_int_eq(p.keep_best, 0);
	ck_assert_int_eq(p.mode, CKPT_POLICY_MIN);
	ckpt_policy_config_free(cfg);
}
END_TEST

START_TEST(test_config_empty_and_defaults)
{
	struct ckpt_policy_config *cfg = cfg_of("");
	struct ckpt_policy p;

	ck_assert(!ckpt_policy_config_prune_on_save(cfg));
	ck_assert(!ckpt_policy_config_file_sha256(cfg));
	ck_assert_int_eq(ckpt_policy_config_trash(cfg), CKPT_TRASH_DELETE);
	ck_assert_int_eq(ckpt_policy_config_gc_age(cfg), CKPT_GC_DEFAULT_AGE);
	ckpt_policy_config_lookup(cfg, "x", &p);
	ck_assert(ckpt_policy_is_empty(&p));
	ckpt_policy_config_free(cfg);

	cfg = cfg_of("# only a comment\n");
	ckpt_policy_config_free(cfg);

	cfg = cfg_of("manifest:\n  file_sha256: true\n");
	ck_assert(ckpt_policy_config_file_sha256(cfg));
	ckpt_policy_config_free(cfg);
}
END_TEST

START_TEST(test_config_errors)
{
	ck_assert_str_eq(cfg_error("default:\n  keep_lst: 3\n"),
	    "line 2, column 3: unknown key 'keep_lst' in default (did you "
	    "mean 'keep_last'?)");
	ck_assert_str_eq(cfg_error("version: 1\nfrobnicate: 2\n"),
	    "line 2, column 1: unknown key 'frobnicate' in the policy file");
	ck_assert_str_eq(cfg_error("runs:\n  a:\n    keep_daily: -3\n"),
	    "line 3, column 17: keep_daily: '-3' is not a count (an integer "
	    ">= 0 or unlimited)");
	ck_assert_str_eq(cfg_error("default:\n  keep_within: 3 days\n"),
	    "line 2, column 16: keep_within: bad duration '3 days' (use e.g. "
	    "36h, 2d12h, 1w; units w d h m s)");
	ck_assert_str_eq(cfg_error("default:\n  keep_best: 2\n"),
	    "line 2, column 3: default: keep_best needs a metric");
	ck_assert_str_eq(cfg_error("default:\n  keep_last: 2\n  keep_last: 3\n"),
	    "line 3, column 3: duplicate key 'keep_last' in default");
	ck_assert_str_eq(cfg_error("default: [1, 2]\n"),
	    "line 1, column 10: default must be a mapping (key: value)");
	ck_assert_str_eq(cfg_error("version: 2\n"),
	    "line 1, column 10: version 2 is not supported (this ckpt reads "
	    "version 1)");
	ck_assert_str_eq(cfg_error("trash: shred\n"),
	    "line 1, column 8: trash: 'shred' is not delete or keep");
	ck_assert_str_eq(cfg_error("gc:\n  older_thn: 1d\n"),
	    "line 2, column 3: unknown key 'older_thn' in gc (did you mean "
	    "'older_than'?)");
	ck_assert_str_eq(cfg_error("default:\n  mode: median\n"),
	    "line 2, column 9: mode: 'median' is not min or max");
	ck_assert_str_eq(cfg_error("default:\n  max_size: lots\n"),
	    "line 2, column 13: max_size: bad size 'lots' (use e.g. 512M, "
	    "10GiB, 1.5T)");
	ck_assert_str_eq(cfg_error("default:\n  keep_last:\n"),
	    "line 2, column 13: keep_last needs a value");
	ck_assert_str_eq(cfg_error("manifest:\n  file_sha265: true\n"),
	    "line 2, column 3: unknown key 'file_sha265' in manifest (did you "
	    "mean 'file_sha256'?)");
	ck_assert_str_eq(cfg_error("manifest:\n  file_sha256: 1\n"),
	    "line 2, column 16: file_sha256: '1' is not true or false");
	ck_assert_str_eq(cfg_error("prune_on_save: maybe\n"),
	    "line 1, column 16: prune_on_save: 'maybe' is not true or false");
	ck_assert_str_eq(cfg_error("- a\n- b\n"),
	    "line 1, column 1: the policy file must be a mapping (key: value)");
	ck_assert_str_eq(cfg_error("default: {keep_last: 1}\n---\nx: 1\n"),
	    "line 2: a second YAML document");
	/* libyaml's own errors carry the position too */
	ck_assert_ptr_nonnull(strstr(cfg_error("default:\n  keep_last: [1\n"),
	    "line 3, column 1: "));
	ck_assert_ptr_nonnull(strstr(cfg_error("a: b: c\n"), "line 1, "));
	/* an override may take its metric from the default, not from nowhere */
	ck_assert_str_eq(cfg_error("runs:\n  x:\n    keep_best: 1\n"),
	    "line 3, column 5: runs.x: keep_best needs a metric");
}
END_TEST

START_TEST(test_config_many_runs)
{
	/* 4096 overrides are fine, one more is an error; neither is slow */
	size_t cap = 5000 * 40, o = 0;
	char *buf = malloc(cap);
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_policy p;
	struct ckpt_error err;

	ck_assert_ptr_nonnull(buf);
	o += (size_t)snprintf(buf + o, cap - o, "runs:\n");
	for (int i = 0; i < 4096; i++)
		o += (size_t)snprintf(buf + o, cap - o,
		    "  r%d: {keep_last: %d}\n", i, i + 1);
	ck_assert_int_eq(ckpt_policy_config_parse(buf, o, "x", &cfg, &err), 0);
	ckpt_policy_config_lookup(cfg, "r4095", &p);
	ck_assert_int_eq(p.keep_last, 4096);
	ckpt_policy_config_free(cfg);
	o += (size_t)snprintf(buf + o, cap - o, "  r4096: {keep_last: 1}\n");
	ck_assert_int_eq(ckpt_policy_config_parse(buf, o, "x", &cfg, &err),
	    CKPT_ERR_FORMAT);
	ck_assert_str_eq(err.message, "line 2, column 3: runs has more than "
	    "4096 entries");
	free(buf);
}
END_TEST

START_TEST(test_config_override_inherits_metric)
{
	struct ckpt_policy_config *cfg = cfg_of(
	    "runs:\n  x:\n    keep_best: 1\n"
	    "default:\n  keep_last: 1\n  metric: loss\n");
	struct ckpt_policy p;

	ckpt_policy_config_lookup(cfg, "x", &p);
	ck_assert_int_eq(p.keep_best, 1);
	ck_assert_str_eq(p.metric, "loss");
	ckpt_policy_config_free(cfg);
}
END_TEST

START_TEST(test_config_load_missing_file)
{
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_error err;
	char path[4200];
	const char *p;

	snprintf(path, sizeof(path), "%s/none.yaml", unit_tmpdir);
	ck_assert_int_eq(ckpt_policy_config_load(path, &cfg, &err), 0);
	ck_assert_ptr_nonnull(cfg);
	ckpt_policy_config_free(cfg);

	p = unit_write_file("ckpt.yaml", "default:\n  keep_last: x\n", 24);
	ck_assert_int_eq(ckpt_policy_config_load(p, &cfg, &err),
	    CKPT_ERR_FORMAT);
	ck_assert_str_eq(err.path, p);
	ck_assert_ptr_nonnull(strstr(err.message, "line 2, column 14"));
}
END_TEST

/* Failed checkpoints fill no slot; the best by the metric is kept. */
START_TEST(test_failed_and_best_invariants)
{
	static const struct spec s[] = {
		{ NULL, 10, T0, 1, 0.5, false, false },
		{ NULL, 20, T0, 1, 0.1, false, false },
		{ NULL, 30, T0, 1, 0.4, false, false },
		{ NULL, 40, T0, 1, 0.3, false, false },
		{ NULL, 50, T0, 1, 0.05, false, false },
	};
	struct ckpt_policy p;
	struct ckpt_plan *plan;

	ckpt_policy_init(&p);
	p.keep_last = 1;
	p.metric = "val_loss";
	/* 50 failed: 40 is newest and last; 20 (not 50) is best */
	build(s, CKPT_ARRAY_SIZE(s));
	cands[4].failed = true;
	plan = plan_cands(&p, 5, 0);
	ck_assert_str_eq(kept(plan, s, 5, NULL), "40 20");
	ck_assert_str_eq(why(plan, 3), "newest; last");
	ck_assert_str_eq(why(plan, 1), "best");
	ck_assert(ckpt_plan_verdict(plan, 1)->invariant);
	ckpt_plan_free(plan);

	/* keep_best ranks only what did not fail; the best stays */
	p.keep_last = CKPT_POLICY_UNSET;
	p.keep_best = 1;
	build(s, CKPT_ARRAY_SIZE(s));
	cands[1].failed = true;
	plan = plan_cands(&p, 5, 0);
	ck_assert_str_eq(kept(plan, s, 5, NULL), "50");
	ck_assert_str_eq(why(plan, 4), "newest; best val_loss=0.05 (1/1)");
	ckpt_plan_free(plan);

	/* max_size never removes the best */
	p.keep_best = CKPT_POLICY_UNSET;
	p.keep_last = CKPT_KEEP_ALL;
	p.max_size = 2;
	build(s, CKPT_ARRAY_SIZE(s));
	cands[4].failed = true;
	plan = plan_cands(&p, 5, 0);
	ck_assert_str_eq(kept(plan, s, 5, NULL), "40 20");
	ckpt_plan_free(plan);
}
END_TEST

Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");

	TCASE(s, "engine", NULL, NULL, test_empty_policy_refused,
	    test_keep_last_by_step, test_keep_last_zero_with_other_rule,
	    test_runs_are_independent, test_keep_best_ties_keep_newer,
	    test_keep_best_nan_and_missing, test_keep_best_with_keep_last,
	    test_keep_every_and_within, test_invariants,
	    test_refuse_rules_keep_nothing, test_max_size,
	    test_describe_and_merge, test_large_plan,
	    test_durations_and_sizes, test_failed_and_best_invariants,
	    test_plan_independent_of_order);
	TCASE(s, "buckets", NULL, NULL, test_bucket_labels_and_iso_weeks,
	    test_year_boundary_buckets, test_buckets_restic_semantics,
	    test_buckets_oldest_rule, test_buckets_immune_to_dst);
	TCASE(s, "config", NULL, NULL, test_config_full,
	    test_config_empty_and_defaults, test_config_errors,
	    test_config_override_inherits_metric, test_config_many_runs);
	{
		/* TCASE's "if (setup)" trips -Waddress with a function */
		TCase *tc = tcase_create("config-file");

		tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
		tcase_add_test(tc, test_config_load_missing_file);
		suite_add_tcase(s, tc);
	}
	return s;
}
