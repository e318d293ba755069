/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the retention engine and the store's policy file.
 *
 * The engine is pure: an array of candidates (committed checkpoints with
 * step, time, size, metrics, pin and registry marks) and a policy in, a
 * verdict with its reasons per candidate out.  It never touches the disk,
 * so that "prune --dry-run" and the real prune decide identically and the
 * whole edge-case matrix is unit-testable.
 *
 * Decisions, after SPEC §4 and reference/retention-and-anchors.md §2.7:
 *  - Runs are independent: candidates are grouped by run and nothing in
 *    one run affects another (a stale step 1000 of an old run never makes a
 *    fresh step 10 look old).
 *  - Order is the step (an integer), ties broken by commit time; never
 *    mtime.  Calendar rules walk by commit time, as restic does.
 *  - Rules are a union (restic), each kept checkpoint lists every rule that
 *    kept it.  Calendar buckets copy restic's ApplyPolicy exactly: newest
 *    in each period, a counter per bucket so one checkpoint may fill
 *    several, and the oldest checkpoint kept while a bucket has counts
 *    left ("oldest daily ...").  Periods are computed in UTC: a checkpoint's
 *    day does not depend on the TZ of whoever runs prune, and DST changes
 *    nothing.  Weeks are ISO 8601 weeks (Monday to Sunday; 2020-W53 and
 *    2021-W01 straddle new year).
 *  - keep_best: ties keep the newer step; NaN or a missing metric is "no
 *    value", never best, kept ("no-metric K") unless missing is drop; ±inf
 *    are values.
 *  - max_size is a cap applied after the union: the oldest (by step)
 *    checkpoints that are not protected are removed until the run fits.  It
 *    may remove what a rule kept -- a budget is a budget -- but never the
 *    newest, a pinned one or a registry source; if those alone exceed the
 *    budget the plan says by how much.  max_size alone means "keep what
 *    fits, newest first".
 *  - Refusals: an empty policy (restic keeps everything instead; we say so
 *    with exit 2), and a policy whose rules keep nothing at all in a run
 *    that has something unprotected to delete (keep_last 0, keep_every
 *    that matches no step, keep_best of an absent metric with missing
 *    drop): that is a configuration mistake, not a wish to empty the run.
 *
 * The policy file is YAML, read with libyaml's document loader: only this
 * file includes yaml.h.  The schema is fixed and shallow (three levels), so
 * the walk needs no recursion; unknown keys are errors with line and
 * column, like every other error in the file.
 */
#include "util/internal.h"
#include "policy/policy.h"

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include <yaml.h>

/* ------------------------------------------------------------------ */
/* Policies                                                            */
/* ------------------------------------------------------------------ */

static const char *const bucket_names[CKPT_BUCKET_COUNT] = {
	"hourly", "daily", "weekly", "monthly", "yearly"
};

const char *
ckpt_bucket_name(enum ckpt_bucket b)
{
	return (unsigned int)b < CKPT_BUCKET_COUNT ? bucket_names[b] : NULL;
}

void
ckpt_policy_init(struct ckpt_policy *p)
{
	p->keep_last = CKPT_POLICY_UNSET;
	p->keep_best = CKPT_POLICY_UNSET;
	p->metric = NULL;
	p->mode = CKPT_POLICY_MODE_UNSET;
	p->missing = CKPT_MISSING_UNSET;
	p->keep_every = CKPT_POLICY_UNSET;
	p->keep_within = CKPT_POLICY_UNSET;
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
		p->keep_bucket[b] = CKPT_POLICY_UNSET;
	p->max_size = CKPT_POLICY_UNSET;
}

#define MERGE(f, unset) do { if (src->f != (unset)) dst->f = src->f; } while (0)

void
ckpt_policy_merge(struct ckpt_policy *dst, const struct ckpt_policy *src)
{
	MERGE(keep_last, CKPT_POLICY_UNSET);
	MERGE(keep_best, CKPT_POLICY_UNSET);
	MERGE(metric, NULL);
	MERGE(mode, CKPT_POLICY_MODE_UNSET);
	MERGE(missing, CKPT_MISSING_UNSET);
	MERGE(keep_every, CKPT_POLICY_UNSET);
	MERGE(keep_within, CKPT_POLICY_UNSET);
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
		MERGE(keep_bucket[b], CKPT_POLICY_UNSET);
	MERGE(max_size, CKPT_POLICY_UNSET);
}

#undef MERGE

/* A count rule that can keep something. */
static bool
count_active(int64_t n)
{
	return n > 0 || n == CKPT_KEEP_ALL;
}

/* Does any keep rule (everything but max_size) keep something? */
static bool
has_keep_rule(const struct ckpt_policy *p)
{
	if (count_active(p->keep_last) || count_active(p->keep_best) ||
	    p->keep_every > 0 || p->keep_within > 0)
		return true;
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
		if (count_active(p->keep_bucket[b]))
			return true;
	return false;
}

bool
ckpt_policy_is_empty(const struct ckpt_policy *p)
{
	return !has_keep_rule(p) && p->max_size < 0;
}

static bool
count_valid(int64_t n)
{
	return n >= 0 || n == CKPT_KEEP_ALL || n == CKPT_POLICY_UNSET;
}

int
ckpt_policy_check(const struct ckpt_policy *p, struct ckpt_error *err)
{
	if (!count_valid(p->keep_last) || !count_valid(p->keep_best))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "a keep count must be a non-negative integer");
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
		if (!count_valid(p->keep_bucket[b]))
			return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "keep_%s must be a non-negative integer",
			    bucket_names[b]);
	if (p->keep_every != CKPT_POLICY_UNSET && p->keep_every < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "keep_every must be a non-negative number of steps");
	if (p->keep_within != CKPT_POLICY_UNSET && p->keep_within < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "keep_within must be a non-negative duration");
	if (p->max_size != CKPT_POLICY_UNSET && p->max_size < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "max_size must be a non-negative size");
	if (count_active(p->keep_best) && (!p->metric || !*p->metric))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "keep_best needs a metric");
	if ((unsigned int)p->mode > CKPT_POLICY_MAX ||
	    (unsigned int)p->missing > CKPT_MISSING_DROP)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "bad mode or missing value");
	return 0;
}

/* A growable string for describe(). */
struct sbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void CKPT_PRINTF(2, 3)
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)n + 64;
			char *s = realloc(b->s, cap);

			if (!s) {
				b->failed = true;
				return;
			}
			b->s = s;
			b->cap = cap;
		}
	}
}

static void
describe_count(struct sbuf *b, bool *first, int64_t n, const char *what)
{
	if (n == CKPT_POLICY_UNSET)
		return;
	sb_printf(b, "%s", *first ? "keep " : ", ");
	*first = false;
	if (n == CKPT_KEEP_ALL)
		sb_printf(b, "all %s", what);
	else
		sb_printf(b, "%lld %s", (long long)n, what);
}

char *
ckpt_policy_describe(const struct ckpt_policy *p)
{
	struct sbuf b = { NULL, 0, 0, false };
	bool first = true;
	char dur[64], what[256];

	sb_printf(&b, "%s", "");
	describe_count(&b, &first, p->keep_last, "last");
	if (p->keep_best != CKPT_POLICY_UNSET) {
		snprintf(what, sizeof(what), "best by %s (%s)",
		    p->metric ? p->metric : "?",
		    p->mode == CKPT_POLICY_MAX ? "max" : "min");
		describe_count(&b, &first, p->keep_best, what);
	}
	if (p->keep_every != CKPT_POLICY_UNSET) {
		sb_printf(&b, "%severy %lld steps", first ? "keep " : ", ",
		    (long long)p->keep_every);
		first = false;
	}
	if (p->keep_within != CKPT_POLICY_UNSET) {
		sb_printf(&b, "%swithin %s of the newest", first ? "keep " :
		    ", ", ckpt_duration_format(p->keep_within, dur,
		    sizeof(dur)));
		first = false;
	}
	for (int k = 0; k < CKPT_BUCKET_COUNT; k++)
		describe_count(&b, &first, p->keep_bucket[k], bucket_names[k]);
	if (p->keep_best != CKPT_POLICY_UNSET &&
	    p->missing == CKPT_MISSING_DROP)
		sb_printf(&b, "%s", "; drop missing metrics");
	if (p->max_size != CKPT_POLICY_UNSET) {
		/* in the units it was most likely written in: 500G */
		static const char units[] = "KMGTP";
		long long v = p->max_size;
		int u = -1;

		while (v && v % 1024 == 0 && u + 1 < 5) {
			v /= 1024;
			u++;
		}
		if (u >= 0)
			sb_printf(&b, "%smax size %lld%c", first ? "" : "; ", v,
			    units[u]);
		else
			sb_printf(&b, "%smax size %lld bytes", first ? "" :
			    "; ", v);
	}
	if (first && p->max_size == CKPT_POLICY_UNSET)
		sb_printf(&b, "%s", "empty policy");
	if (b.failed) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* ------------------------------------------------------------------ */
/* Durations and sizes                                                 */
/* ------------------------------------------------------------------ */

static const struct {
	char unit;
	int64_t seconds;
} dur_units[] = {
	{ 'w', 7 * 86400 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 },
	{ 's', 1 },
};

int
ckpt_duration_parse(const char *s, int64_t *out, struct ckpt_error *err)
{
	const char *p = s;
	int64_t total = 0;

	if (!s || !*s)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "empty duration");
	while (*p) {
		int64_t n = 0, mul = 0;

		if (!isdigit((unsigned char)*p))
			goto bad;
		while (isdigit((unsigned char)*p)) {
			if (__builtin_mul_overflow(n, 10, &n) ||
			    __builtin_add_overflow(n, *p - '0', &n))
				goto big;
			p++;
		}
		if (!*p) {
			if (p == s + strlen(s) && total == 0 && mul == 0) {
				/* a bare integer is seconds */
				mul = 1;
			} else {
				goto bad;
			}
		} else {
			for (size_t i = 0; i < CKPT_ARRAY_SIZE(dur_units); i++)
				if (*p == dur_units[i].unit)
					mul = dur_units[i].seconds;
			if (!mul)
				goto bad;
			p++;
		}
		if (__builtin_mul_overflow(n, mul, &n) ||
		    __builtin_add_overflow(total, n, &total))
			goto big;
	}
	*out = total;
	return 0;
bad:
	return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
	    "bad duration '%s' (use e.g. 36h, 2d12h, 1w; units w d h m s)", s);
big:
	return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
	    "duration '%s' is too large", s);
}

const char *
ckpt_duration_format(int64_t secs, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (secs <= 0) {
		snprintf(buf, len, "%llds", (long long)secs);
		return buf;
	}
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(dur_units) && o < len; i++) {
		int64_t n = secs / dur_units[i].seconds;
		int w;

		if (!n)
			continue;
		secs -= n * dur_units[i].seconds;
		w = snprintf(buf + o, len - o, "%lld%c", (long long)n,
		    dur_units[i].unit);
		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
	}
	return buf;
}

int
ckpt_size_parse(const char *s, int64_t *out, struct ckpt_error *err)
{
	static const char units[] = "BKMGTP";
	const char *p = s;
	double v = 0, scale = 1;
	int shift = 0;

	if (!s || !isdigit((unsigned char)*p))
		goto bad;
	while (isdigit((unsigned char)*p))
		v = v * 10 + (*p++ - '0');
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		while (isdigit((unsigned char)*p)) {
			scale /= 10;
			v += scale * (*p++ - '0');
		}
	}
	if (*p) {
		const char *u = strchr(units, toupper((unsigned char)*p));

		if (!u)
			goto bad;
		shift = 10 * (int)(u - units);
		p++;
		if (shift && (!strcmp(p, "iB") || !strcmp(p, "B") ||
		    !strcmp(p, "ib") || !strcmp(p, "b")))
			p += strlen(p);
		if (*p)
			goto bad;
	}
	v = ldexp(v, shift);
	if (!(v < 9223372036854775807.0))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "size '%s' is too large", s);
	*out = (int64_t)v;
	return 0;
bad:
	return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
	    "bad size '%s' (use e.g. 512M, 10GiB, 1.5T)", s ? s : "");
}

/* ------------------------------------------------------------------ */
/* Calendar buckets                                                    */
/* ------------------------------------------------------------------ */

/* Civil date of a day number since 1970-01-01 (Howard Hinnant's
 * algorithm: exact for every int64 day we can meet, no libc, no TZ). */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = ckpt_floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = ckpt_floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t
ckpt_bucket_key(enum ckpt_bucket b, int64_t t, char *label, size_t len)
{
	int64_t day = ckpt_floor_div(t, 86400), y, key;
	int m, d;

	/* Limit t to what civil_from_days and the labels handle: ±292e9
	 * years is far past anything a manifest should say. */
	civil_from_days(day, &y, &m, &d);
	switch (b) {
	case CKPT_BUCKET_HOURLY:
		key = ckpt_floor_div(t, 3600);
		if (label)
			snprintf(label, len, "%04lld-%02d-%02d %02lldh",
			    (long long)y, m, d, (long long)(key -
			    day * 24));
		return key;
	case CKPT_BUCKET_DAILY:
		if (label)
			snprintf(label, len, "%04lld-%02d-%02d", (long long)y,
			    m, d);
		return day;
	case CKPT_BUCKET_WEEKLY: {
		/* 1970-01-01 was a Thursday; Monday = 0.  The ISO year is the
		 * year of the week's Thursday; the week number counts from the
		 * week holding that year's first Thursday. */
		int64_t wday = ((day + 3) % 7 + 7) % 7, thu, monday, iy;
		int im, id;

		monday = day - wday;
		thu = monday + 3;
		civil_from_days(thu, &iy, &im, &id);
		if (label)
			snprintf(label, len, "%04lld-W%02lld", (long long)iy,
			    (long long)((thu - days_from_civil(iy, 1, 1)) /
			    7 + 1));
		return monday;
	}
	case CKPT_BUCKET_MONTHLY:
		if (label)
			snprintf(label, len, "%04lld-%02d", (long long)y, m);
		return y * 12 + m - 1;
	case CKPT_BUCKET_YEARLY:
	default:
		if (label)
			snprintf(label, len, "%04lld", (long long)y);
		return y;
	}
}

/* ------------------------------------------------------------------ */
/* The engine                                                          */
/* ------------------------------------------------------------------ */

#define MAX_REASONS 16

/* Strings of a plan live in chunks freed with the plan. */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
};

/*
 * A candidate's reasons are chained while the plan is made (most
 * candidates of a large run have none or one), then laid out in one
 * array that the verdicts point into: 32 bytes per candidate, not room
 * for MAX_REASONS pointers in each.  Link positions fit in 31 bits
 * (MAX_LINKS), the other one is rule_kept.
 */
#define MAX_LINKS	((uint32_t)INT32_MAX)

struct reason_link {
	const char *s;
	uint32_t next;			/* position + 1 in links, 0: none */
};

struct verdict_slot {
	struct ckpt_verdict v;
	uint32_t head;			/* of its chain in links */
	uint32_t tail : 31;
	uint32_t rule_kept : 1;
};

struct ckpt_plan {
	size_t n;
	struct verdict_slot *slots;
	size_t nruns;
	struct ckpt_plan_run *runs;
	struct chunk *chunks;
	const char *last_str;		/* plan_strdup's last: reasons of one
					 * rule repeat ("last", "within 7d") */
	struct reason_link *links;	/* while planning */
	size_t nlinks, links_cap;
	const char **reasons;		/* every verdict's, in order */
};

static const char *
plan_strdup(struct ckpt_plan *plan, const char *s)
{
	size_t len = strlen(s) + 1;
	struct chunk *c = plan->chunks;

	if (plan->last_str && !strcmp(plan->last_str, s))
		return plan->last_str;
	if (!c || c->cap - c->used < len) {
		size_t cap = len > 16384 ? len : 16384;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = plan->chunks;
		c->used = 0;
		c->cap = cap;
		plan->chunks = c;
	}
	memcpy(c->data + c->used, s, len);
	c->used += len;
	plan->last_str = c->data + c->used - len;
	return plan->last_str;
}

static int
add_reason(struct ckpt_plan *plan, struct verdict_slot *slot,
    struct ckpt_error *err, const char *fmt, ...) CKPT_PRINTF(4, 5);

static int
add_reason(struct ckpt_plan *plan, struct verdict_slot *slot,
    struct ckpt_error *err, const char *fmt, ...)
{
	char buf[512];
	const char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (slot->v.nreasons >= MAX_REASONS)
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL, -1,
		    "too many reasons");
	if (plan->nlinks >= MAX_LINKS)
		return ckpt_error_nomem(err);
	if (plan->nlinks == plan->links_cap) {
		size_t cap = plan->links_cap ? 2 * plan->links_cap : 256;
		struct reason_link *l = reallocarray(plan->links, cap,
		    sizeof(*l));

		if (!l)
			return ckpt_error_nomem(err);
		plan->links = l;
		plan->links_cap = cap;
	}
	s = plan_strdup(plan, buf);
	if (!s)
		return ckpt_error_nomem(err);
	plan->links[plan->nlinks].s = s;
	plan->links[plan->nlinks].next = 0;
	plan->nlinks++;
	if (slot->tail)
		plan->links[slot->tail - 1].next = (uint32_t)plan->nlinks;
	else
		slot->head = (uint32_t)plan->nlinks;
	slot->tail = (uint32_t)plan->nlinks & MAX_LINKS;
	slot->v.nreasons++;
	return 0;
}

/* Forgets a candidate's reasons (max-size replaces them). */
static void
clear_reasons(struct verdict_slot *slot)
{
	slot->head = slot->tail = 0;
	slot->v.nreasons = 0;
}

/* Lays the chains out in one array the verdicts point into. */
static int
lay_out_reasons(struct ckpt_plan *plan, struct ckpt_error *err)
{
	size_t total = 0, at = 0;

	for (size_t i = 0; i < plan->n; i++)
		total += plan->slots[i].v.nreasons;
	plan->reasons = calloc(total ? total : 1, sizeof(*plan->reasons));
	if (!plan->reasons)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < plan->n; i++) {
		struct verdict_slot *slot = &plan->slots[i];

		slot->v.reasons = plan->reasons + at;
		for (uint32_t k = slot->head; k; k = plan->links[k - 1].next)
			plan->reasons[at++] = plan->links[k - 1].s;
	}
	free(plan->links);
	plan->links = NULL;
	plan->nlinks = plan->links_cap = 0;
	return 0;
}

void
ckpt_plan_free(struct ckpt_plan *plan)
{
	if (!plan)
		return;
	while (plan->chunks) {
		struct chunk *next = plan->chunks->next;

		free(plan->chunks);
		plan->chunks = next;
	}
	free(plan->slots);
	free(plan->runs);
	free(plan->links);
	free(plan->reasons);
	free(plan);
}

const struct ckpt_verdict *
ckpt_plan_verdict(const struct ckpt_plan *plan, size_t i)
{
	return plan && i < plan->n ? &plan->slots[i].v : NULL;
}

size_t
ckpt_plan_run_count(const struct ckpt_plan *plan)
{
	return plan ? plan->nruns : 0;
}

const struct ckpt_plan_run *
ckpt_plan_run(const struct ckpt_plan *plan, size_t i)
{
	return plan && i < plan->nruns ? &plan->runs[i] : NULL;
}

/* One candidate of a run, with its sort keys (24 bytes: a run of
 * 100,000 has one each).  idx < 2^32: ckpt_policy_plan checks. */
struct item {
	int64_t step, created;
	uint32_t idx;
};

/* A candidate ranked by keep_best: negated for mode max. */
struct ranked {
	struct item it;
	double value;
};

/* Newest first by step, then by time, then by input position. */
static int
cmp_step_desc(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? 1 : -1;
	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return x->idx < y->idx ? 1 : x->idx > y->idx ? -1 : 0;
}

/* Newest first by time, then by step: the walk of the calendar rules. */
static int
cmp_time_desc(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return cmp_step_desc(a, b);
}

/* Best first; the caller has negated values for mode max, so lower is
 * better here.  Ties: the newer step wins. */
static int
cmp_value_asc(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return cmp_step_desc(&x->it, &y->it);
}

struct run_ref {
	const char *run;
	size_t idx;
};

static int
cmp_run(const void *a, const void *b)
{
	const struct run_ref *x = a, *y = b;
	int c = strcmp(x->run, y->run);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

struct group {
	size_t start, pos;
};

static int
cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Where a plan's candidates come from: an array (ckpt_policy_plan), or a
 * function that fills one at a time (ckpt_policy_plan_fn: prune, which
 * holds no candidate array beside its report, 72 bytes a checkpoint).
 */
struct cand_src {
	const struct ckpt_candidate *c;
	ckpt_candidate_fn get;
	void *arg;
};

/* Candidate i; valid until the next call with the same buf. */
static const struct ckpt_candidate *
cand(const struct cand_src *src, size_t i, struct ckpt_candidate *buf)
{
	return src->c ? &src->c[i] : src->get(src->arg, i, buf);
}

static double
metric_of(const struct ckpt_candidate *c, const char *name)
{
	for (size_t i = 0; i < c->nmetrics; i++)
		if (c->metric_names[i] && !strcmp(c->metric_names[i], name))
			return c->metric_values ? c->metric_values[i] : NAN;
	return NAN;
}

/*
 * The position in items (sorted newest first) of the best checkpoint by
 * the policy's metric: not failed, with a value (NaN is none); ties go to
 * the newer step, as keep_best's do.  n when there is none.
 */
static size_t
best_index(const struct ckpt_policy *p, const struct cand_src *src,
    const struct item *items, size_t n)
{
	struct ckpt_candidate buf;
	size_t best = n;
	double bv = 0;

	if (!p->metric)
		return n;
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_candidate *c = cand(src, items[i].idx, &buf);
		double v = metric_of(c, p->metric);

		if (c->failed || isnan(v))
			continue;
		if (p->mode == CKPT_POLICY_MAX)
			v = -v;
		/* strictly better: items go newest first, ties stay */
		if (best == n || v < bv) {
			best = i;
			bv = v;
		}
	}
	return best;
}

/* Whether items[0, n) is in cmp's order already. */
static bool
items_ordered(const struct item *v, size_t n,
    int (*cmp)(const void *, const void *))
{
	for (size_t i = 1; i < n; i++)
		if (cmp(&v[i - 1], &v[i]) > 0)
			return false;
	return true;
}

/*
 * Sorts items by cmp (a total order: every comparator here ends on the
 * input position), as qsort would, but leaves an array already in that
 * order alone and reverses one in the opposite order: a run's checkpoints
 * mostly come by ascending step and time, and qsort's merge sort would
 * take a copy of the whole array (24 bytes a checkpoint) to find that.
 */
static void
sort_items(struct item *v, size_t n, int (*cmp)(const void *, const void *))
{
	bool reversed = true;

	if (items_ordered(v, n, cmp))
		return;
	for (size_t i = 1; i < n && reversed; i++)
		reversed = cmp(&v[i - 1], &v[i]) > 0;
	if (reversed) {
		for (size_t i = 0, j = n - 1; i < j; i++, j--) {
			struct item t = v[i];

			v[i] = v[j];
			v[j] = t;
		}
		return;
	}
	qsort(v, n, sizeof(*v), cmp);
}

/* Sifts h[at] down the heap h[0, n), the worst (by cmp_value_asc) on top. */
static void
rank_sift_down(struct ranked *h, size_t at, size_t n)
{
	struct ranked v = h[at];

	for (;;) {
		size_t c = 2 * at + 1;

		if (c >= n)
			break;
		if (c + 1 < n && cmp_value_asc(&h[c], &h[c + 1]) < 0)
			c++;
		if (cmp_value_asc(&v, &h[c]) >= 0)
			break;
		h[at] = h[c];
		at = c;
	}
	h[at] = v;
}

/*
 * Offers r to the k best so far, h[0, *n) (a heap, the worst on top):
 * keep_best ranks only the checkpoints it keeps, so its memory is k
 * entries, not one per checkpoint of the run.
 */
static void
rank_offer(struct ranked *h, size_t *n, size_t k, const struct ranked *r)
{
	size_t at;

	if (*n < k) {
		/* sift up */
		for (at = (*n)++; at > 0 && cmp_value_asc(&h[(at - 1) / 2],
		    r) < 0; at = (at - 1) / 2)
			h[at] = h[(at - 1) / 2];
		h[at] = *r;
		return;
	}
	if (k && cmp_value_asc(r, &h[0]) < 0) {
		h[0] = *r;
		rank_sift_down(h, 0, *n);
	}
}

/* h[0, n) from a heap into best-first order, in place. */
static void
rank_sort(struct ranked *h, size_t n)
{
	for (size_t end = n; end-- > 1;) {
		struct ranked t = h[0];

		h[0] = h[end];
		h[end] = t;
		rank_sift_down(h, 0, end);
	}
}

/* Applies the policy to one run: items[0..n) of the same run. */
static int
plan_run(struct ckpt_plan *plan, const struct ckpt_policy *p,
    const struct cand_src *src, struct item *items, size_t n,
    int64_t now, struct ckpt_plan_run *rs, struct ckpt_error *err)
{
	struct verdict_slot *slots = plan->slots;
	struct ckpt_candidate buf;
	struct item *by_time = NULL, *scratch = NULL;
	struct ranked *top = NULL;
	char label[96], dur[64];
	bool any_rule = false, unprotected = false, newest_seen = false;
	int64_t newest_time = INT64_MIN;
	size_t best;
	int rc = 0;

#define SLOT(it) (&slots[(it)->idx])
#define CAND(it) cand(src, (it)->idx, &buf)
#define REASON(it, ...) do { \
		if ((rc = add_reason(plan, SLOT(it), err, __VA_ARGS__))) \
			goto out; \
	} while (0)

	sort_items(items, n, cmp_step_desc);

	/* The best by the policy's metric (not failed, with a value) is
	 * kept whatever the rules say, like the newest. */
	best = best_index(p, src, items, n);

	/* Invariants: the newest by step that is not failed (what "ckpt
	 * latest" returns), the best, pinned, registry sources. */
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_candidate *c = CAND(&items[i]);
		struct verdict_slot *s = SLOT(&items[i]);

		if (!c->failed && !newest_seen) {
			newest_seen = true;
			REASON(&items[i], "newest");
		}
		if (i == best && !(count_active(p->keep_best) &&
		    p->keep_best != 0)) {
			REASON(&items[i], "best");
			s->v.invariant = true;
		}
		if (c->pinned)
			REASON(&items[i], "pinned");
		if (c->registry)
			REASON(&items[i], "registry%s%s", c->registry_ref ?
			    " " : "", c->registry_ref ? c->registry_ref : "");
		s->v.invariant = s->v.nreasons > 0 || i == best;
		if (!s->v.invariant)
			unprotected = true;
		if (c->created > newest_time && (now == 0 || c->created <= now))
			newest_time = c->created;
	}

	/* keep_last, by step; failed checkpoints fill no slot. */
	for (size_t i = 0, k = 0; i < n && (p->keep_last == CKPT_KEEP_ALL ||
	    (p->keep_last > 0 && k < (size_t)p->keep_last)); i++) {
		if (CAND(&items[i])->failed)
			continue;
		k++;
		SLOT(&items[i])->rule_kept = true;
		REASON(&items[i], "last");
	}

	/* keep_best, by metric; ties keep the newer step.  Only the k
	 * ranked are held (all of them for "all"). */
	if (p->keep_best != CKPT_POLICY_UNSET && p->metric) {
		size_t nv = 0, k = 0;

		for (size_t i = 0; i < n; i++) {
			double v = metric_of(CAND(&items[i]), p->metric);

			if (CAND(&items[i])->failed)
				continue;	/* never ranked */
			if (isnan(v)) {
				if (p->missing != CKPT_MISSING_DROP &&
				    count_active(p->keep_best)) {
					SLOT(&items[i])->rule_kept = true;
					REASON(&items[i], "no-metric %s",
					    p->metric);
				}
				continue;
			}
			nv++;
		}
		if (p->keep_best == CKPT_KEEP_ALL)
			k = nv;
		else if (p->keep_best > 0)
			k = (uint64_t)p->keep_best < nv ?
			    (size_t)p->keep_best : nv;
		if (k && !(top = reallocarray(NULL, k, sizeof(*top)))) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		nv = 0;
		for (size_t i = 0; i < n && k; i++) {
			struct ranked r = { items[i], metric_of(
			    CAND(&items[i]), p->metric) };

			if (CAND(&items[i])->failed || isnan(r.value))
				continue;
			if (p->mode == CKPT_POLICY_MAX)
				r.value = -r.value;
			rank_offer(top, &nv, k, &r);
		}
		rank_sort(top, nv);
		for (size_t i = 0; i < nv; i++) {
			double v = p->mode == CKPT_POLICY_MAX ?
			    -top[i].value : top[i].value;

			SLOT(&top[i].it)->rule_kept = true;
			if (p->keep_best == CKPT_KEEP_ALL)
				REASON(&top[i].it, "best %s=%.6g (%zu)",
				    p->metric, v, i + 1);
			else
				REASON(&top[i].it, "best %s=%.6g (%zu/%lld)",
				    p->metric, v, i + 1,
				    (long long)p->keep_best);
		}
		free(top);
		top = NULL;
	}

	/* keep_every, by step. */
	if (p->keep_every > 0)
		for (size_t i = 0; i < n; i++)
			if (items[i].step % p->keep_every == 0) {
				SLOT(&items[i])->rule_kept = true;
				REASON(&items[i], "every %lld",
				    (long long)p->keep_every);
			}

	/* keep_within, relative to the newest time (restic: strictly after
	 * newest - d). */
	if (p->keep_within >= 0) {
		int64_t limit;

		ckpt_duration_format(p->keep_within, dur, sizeof(dur));
		if (newest_time == INT64_MIN ||
		    __builtin_sub_overflow(newest_time, p->keep_within, &limit))
			limit = INT64_MIN;
		for (size_t i = 0; i < n; i++)
			if (items[i].created > limit ||
			    newest_time == INT64_MIN) {
				SLOT(&items[i])->rule_kept = true;
				REASON(&items[i], "within %s", dur);
			}
	}

	/* Calendar buckets: restic's walk, newest first by time (mostly
	 * the order by step already: then no copy). */
	by_time = items;
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
		if (count_active(p->keep_bucket[b])) {
			if (items_ordered(items, n, cmp_time_desc))
				break;
			if (!(scratch = reallocarray(NULL, n ? n : 1,
			    sizeof(*scratch)))) {
				rc = ckpt_error_nomem(err);
				goto out;
			}
			memcpy(scratch, items, n * sizeof(*items));
			sort_items(scratch, n, cmp_time_desc);
			by_time = scratch;
			break;
		}
	for (int b = 0; b < CKPT_BUCKET_COUNT; b++) {
		int64_t count = p->keep_bucket[b], last = 0;
		bool have_last = false;

		if (!count_active(count))
			continue;
		for (size_t i = 0; i < n && (count > 0 || count ==
		    CKPT_KEEP_ALL); i++) {
			int64_t val;
			bool oldest = i == n - 1;

			/* the same time is the same period (no label yet) */
			if (have_last && i && !oldest && by_time[i].created ==
			    by_time[i - 1].created)
				continue;
			val = ckpt_bucket_key((enum ckpt_bucket)b,
			    by_time[i].created, NULL, 0);
			if (have_last && val == last && !oldest)
				continue;
			ckpt_bucket_key((enum ckpt_bucket)b, by_time[i].created,
			    label, sizeof(label));
			SLOT(&by_time[i])->rule_kept = true;
			REASON(&by_time[i], "%s%s %s", have_last && val ==
			    last ? "oldest " : "", bucket_names[b], label);
			last = val;
			have_last = true;
			if (count > 0)
				count--;
		}
	}

	for (size_t i = 0; i < n; i++)
		if (SLOT(&items[i])->rule_kept)
			any_rule = true;
	free(scratch);
	scratch = NULL;
	if (has_keep_rule(p) && !any_rule && unprotected)
		return ckpt_error_set(err, CKPT_ERR_REFUSED, NULL, -1,
		    "refusing a policy that keeps no checkpoint of run '%s' "
		    "(only the newest, pinned and registry ones would stay)",
		    CAND(&items[0])->run);

	/* The union, or everything when max_size is the only rule. */
	for (size_t i = 0; i < n; i++) {
		struct verdict_slot *s = SLOT(&items[i]);

		s->v.keep = s->v.invariant || s->rule_kept ||
		    !has_keep_rule(p);
	}

	/* max_size: a cap on the union, oldest unprotected first. */
	if (p->max_size >= 0) {
		uint64_t total = 0;

		for (size_t i = 0; i < n; i++)
			if (SLOT(&items[i])->v.keep)
				total += CAND(&items[i])->size;
		for (size_t i = n; i-- > 0;) {
			struct verdict_slot *s = SLOT(&items[i]);

			if (total <= (uint64_t)p->max_size)
				break;
			if (!s->v.keep || s->v.invariant)
				continue;
			s->v.keep = false;
			total -= CAND(&items[i])->size;
			/* the rule reasons no longer apply: say why it goes */
			clear_reasons(s);
			REASON(&items[i], "max-size");
		}
		if (total > (uint64_t)p->max_size)
			rs->over_budget = total - (uint64_t)p->max_size;
		if (!has_keep_rule(p))
			for (size_t i = 0; i < n; i++) {
				struct verdict_slot *s = SLOT(&items[i]);

				if (s->v.keep && !s->v.invariant)
					REASON(&items[i], "max-size");
			}
	}

	for (size_t i = 0; i < n; i++) {
		struct verdict_slot *s = SLOT(&items[i]);
		uint64_t size = CAND(&items[i])->size;

		rs->count++;
		if (s->v.keep) {
			rs->kept++;
			rs->kept_bytes += size;
		} else {
			rs->removed++;
			rs->removed_bytes += size;
		}
	}
out:
	free(top);
	free(scratch);
	return rc;
#undef SLOT
#undef CAND
#undef REASON
}

/* Whether every candidate is of the same run (ckpt prune plans a run at
 * a time): then refs are in order already, with no sort and its copy. */
static bool
one_run(const struct cand_src *src, size_t n)
{
	struct ckpt_candidate b0, bi;
	const char *run0 = n ? cand(src, 0, &b0)->run : NULL;

	for (size_t i = 1; i < n; i++) {
		const char *run = cand(src, i, &bi)->run;

		if (run != run0 && strcmp(run, run0))
			return false;
	}
	return true;
}

/* Candidate k of the run-ordered sequence (refs, or the input itself). */
#define REF_IDX(k) (refs ? refs[k].idx : (k))
#define REF_RUN(k, b) (cand(src, REF_IDX(k), (b))->run)
#define REF_CAND(k) cand(src, REF_IDX(k), &b1)

static int
plan_all(const struct ckpt_policy *p, const struct cand_src *src,
    size_t n, int64_t now, struct ckpt_plan **out, struct ckpt_error *err)
{
	struct ckpt_candidate b1, b2;
	struct ckpt_plan *plan;
	struct run_ref *refs = NULL;
	struct item *items = NULL;
	struct group *first = NULL;
	bool single;
	int rc;

	if ((rc = ckpt_policy_check(p, err)))
		return rc;
	if (ckpt_policy_is_empty(p))
		return ckpt_error_set(err, CKPT_ERR_REFUSED, NULL, -1,
		    "the policy is empty: give at least one keep rule or "
		    "max_size (ckpt-policy(5))");
	if (n > UINT32_MAX)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, NULL, -1,
		    "%zu candidates: at most %lu at once", n,
		    (unsigned long)UINT32_MAX);
	for (size_t i = 0; i < n; i++)
		if (!cand(src, i, &b1)->run)
			return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "candidate %zu has no run", i);
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return ckpt_error_nomem(err);
	plan->n = n;
	plan->slots = calloc(n ? n : 1, sizeof(*plan->slots));
	/* one run: the candidates in their order are the group */
	single = one_run(src, n);
	refs = single ? NULL : calloc(n ? n : 1, sizeof(*refs));
	items = calloc(n ? n : 1, sizeof(*items));
	first = calloc(n && !single ? n : 1, sizeof(*first));
	plan->runs = calloc(n && !single ? n : 1, sizeof(*plan->runs));
	if (!plan->slots || (!single && !refs) || !items ||
	    !first || !plan->runs) {
		rc = ckpt_error_nomem(err);
		goto fail;
	}
	for (size_t i = 0; i < n && refs; i++) {
		refs[i].run = cand(src, i, &b1)->run;
		refs[i].idx = i;
	}
	if (refs)
		qsort(refs, n, sizeof(*refs), cmp_run);

	/* Groups are contiguous in refs, each starting with its smallest
	 * input position; order them by it (first appearance). */
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && !strcmp(REF_RUN(j, &b1), REF_RUN(i, &b2)))
			j++;
		first[plan->nruns].start = i;
		first[plan->nruns++].pos = REF_IDX(i);
		i = j;
	}
	qsort(first, plan->nruns, sizeof(*first), cmp_group);
	for (size_t g = 0; g < plan->nruns; g++) {
		size_t s = first[g].start, e = s, m = 0;
		struct ckpt_plan_run *rs = &plan->runs[g];

		while (e < n && !strcmp(REF_RUN(e, &b1), REF_RUN(s, &b2)))
			e++;
		for (size_t k = s; k < e; k++) {
			const struct ckpt_candidate *c = REF_CAND(k);

			items[m].idx = (uint32_t)REF_IDX(k);
			items[m].step = c->step;
			items[m].created = c->created;
			m++;
		}
		rs->run = plan_strdup(plan, REF_RUN(s, &b1));
		if (!rs->run) {
			rc = ckpt_error_nomem(err);
			goto fail;
		}
		rc = plan_run(plan, p, src, items, m, now, rs, err);
		if (rc)
			goto fail;
	}
	free(refs);
	free(items);
	free(first);
	if ((rc = lay_out_reasons(plan, err))) {
		ckpt_plan_free(plan);
		return rc;
	}
	*out = plan;
	return 0;
fail:
	free(refs);
	free(items);
	free(first);
	ckpt_plan_free(plan);
	return rc;
}
#undef REF_IDX
#undef REF_RUN
#undef REF_CAND

int
ckpt_policy_plan(const struct ckpt_policy *p, const struct ckpt_candidate *c,
    size_t n, int64_t now, struct ckpt_plan **out, struct ckpt_error *err)
{
	struct cand_src src = { c, NULL, NULL };

	if (!p || !out || (n && !c))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no policy or candidates");
	return plan_all(p, &src, n, now, out, err);
}

int
ckpt_policy_plan_fn(const struct ckpt_policy *p, ckpt_candidate_fn get,
    void *arg, size_t n, int64_t now, struct ckpt_plan **out,
    struct ckpt_error *err)
{
	struct cand_src src = { NULL, get, arg };

	if (!p || !out || !get)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no policy or candidates");
	return plan_all(p, &src, n, now, out, err);
}

/* ------------------------------------------------------------------ */
/* ckpt.yaml                                                           */
/* ------------------------------------------------------------------ */

struct run_override {
	char *pattern;
	bool glob;
	struct ckpt_policy policy;
};

struct ckpt_policy_config {
	struct ckpt_policy def;
	struct run_override *runs;
	size_t nruns;
	enum ckpt_trash_mode trash;
	int64_t gc_age;
	bool prune_on_save;
	char **strings;			/* owned metric names */
	size_t nstrings;
	char **allow_globals;		/* verify.allow_globals */
	size_t nallow_globals;
	bool file_sha256;		/* manifest.file_sha256 */
};

/* What the walk needs: the document, the file name and the error. */
struct yctx {
	yaml_document_t *doc;
	const char *name;
	struct ckpt_error *err;
	struct ckpt_policy_config *cfg;
};

static int CKPT_PRINTF(3, 4)
yerr(struct yctx *y, const yaml_node_t *node, const char *fmt, ...)
{
	char msg[CKPT_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!node)
		return ckpt_error_set(y->err, CKPT_ERR_FORMAT, y->name, -1,
		    "%s", msg);
	return ckpt_error_set(y->err, CKPT_ERR_FORMAT, y->name, -1,
	    "line %zu, column %zu: %s", node->start_mark.line + 1,
	    node->start_mark.column + 1, msg);
}

static yaml_node_t *
ynode(struct yctx *y, int id)
{
	return yaml_document_get_node(y->doc, id);
}

/* The text of a scalar node; NULL (with an error) for anything else. */
static const char *
yscalar(struct yctx *y, yaml_node_t *node, const char *key, int *rc)
{
	if (!node || node->type != YAML_SCALAR_NODE) {
		*rc = yerr(y, node, "%s needs a single value", key);
		return NULL;
	}
	if (strlen((const char *)node->data.scalar.value) !=
	    node->data.scalar.length) {
		*rc = yerr(y, node, "%s contains a NUL byte", key);
		return NULL;
	}
	if (node->data.scalar.length == 0 ||
	    (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (!strcmp((const char *)node->data.scalar.value, "~") ||
	    !strcmp((const char *)node->data.scalar.value, "null")))) {
		*rc = yerr(y, node, "%s needs a value", key);
		return NULL;
	}
	return (const char *)node->data.scalar.value;
}

static size_t
levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (lb >= CKPT_ARRAY_SIZE(row) || la >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j],
			    best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

static int
unknown_key(struct yctx *y, yaml_node_t *node, const char *key,
    const char *where, const char *const *known)
{
	const char *best = NULL;
	size_t bd = 3;

	for (size_t i = 0; known[i]; i++) {
		size_t d = levenshtein(key, known[i]);

		if (d < bd) {
			bd = d;
			best = known[i];
		}
	}
	if (best)
		return yerr(y, node, "unknown key '%s' in %s (did you mean "
		    "'%s'?)", key, where, best);
	return yerr(y, node, "unknown key '%s' in %s", key, where);
}

static int
parse_count(struct yctx *y, yaml_node_t *node, const char *key, int64_t *out)
{
	const char *s;
	char *end;
	long long v;
	int rc = 0;

	if (!(s = yscalar(y, node, key, &rc)))
		return rc;
	if (!strcmp(s, "unlimited") || !strcmp(s, "all") || !strcmp(s, "-1")) {
		*out = CKPT_KEEP_ALL;
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v < 0)
		return yerr(y, node, "%s: '%s' is not a count (an integer >= 0 "
		    "or unlimited)", key, s);
	*out = v;
	return 0;
}

static int
parse_steps(struct yctx *y, yaml_node_t *node, const char *key, int64_t *out)
{
	const char *s;
	char *end;
	long long v;
	int rc = 0;

	if (!(s = yscalar(y, node, key, &rc)))
		return rc;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v <= 0)
		return yerr(y, node, "%s: '%s' is not a positive number of "
		    "steps", key, s);
	*out = v;
	return 0;
}

static int
parse_with(struct yctx *y, yaml_node_t *node, const char *key, int64_t *out,
    int (*fn)(const char *, int64_t *, struct ckpt_error *))
{
	struct ckpt_error e;
	const char *s;
	int rc = 0;

	if (!(s = yscalar(y, node, key, &rc)))
		return rc;
	if (fn(s, out, &e))
		return yerr(y, node, "%s: %s", key, e.message);
	return 0;
}

static int
parse_bool(struct yctx *y, yaml_node_t *node, const char *key, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	const char *s;
	int rc = 0;

	if (!(s = yscalar(y, node, key, &rc)))
		return rc;
	for (size_t i = 0; yes[i]; i++)
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*out = !strcmp(s, yes[i]);
			return 0;
		}
	return yerr(y, node, "%s: '%s' is not true or false", key, s);
}

/*
 * A scalar that must be one of two words: *second is whether it is the
 * second (so that callers map it to their enum).
 */
static int
parse_either(struct yctx *y, yaml_node_t *node, const char *key,
    const char *first, const char *second_word, bool *second)
{
	const char *s;
	int rc = 0;

	if (!(s = yscalar(y, node, key, &rc)))
		return rc;
	if (strcmp(s, first) && strcmp(s, second_word))
		return yerr(y, node, "%s: '%s' is not %s or %s", key, s,
		    first, second_word);
	*second = !strcmp(s, second_word);
	return 0;
}

static char *
keep_string(struct yctx *y, const char *s)
{
	struct ckpt_policy_config *cfg = y->cfg;
	char **v, *d;

	v = realloc(cfg->strings, (cfg->nstrings + 1) * sizeof(*v));
	if (!v)
		return NULL;
	cfg->strings = v;
	d = strdup(s);
	if (!d)
		return NULL;
	cfg->strings[cfg->nstrings++] = d;
	return d;
}

#define MAPPING_MAX 4096		/* run overrides; the rest have < 16 */

struct keyref {
	const char *key;
	yaml_node_t *node;
	size_t pos;
};

static int
cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Checks that node is a mapping with scalar keys and no duplicates
 * (sorted, so that a hostile file cannot make this quadratic). */
static int
check_mapping(struct yctx *y, yaml_node_t *node, const char *what)
{
	struct keyref *keys;
	size_t n = 0;
	int rc = 0;

	if (!node || node->type != YAML_MAPPING_NODE)
		return yerr(y, node, "%s must be a mapping (key: value)", what);
	if (node->data.mapping.pairs.top - node->data.mapping.pairs.start >
	    MAPPING_MAX)
		return yerr(y, node, "%s has more than %d entries", what,
		    MAPPING_MAX);
	keys = calloc(MAPPING_MAX + 1, sizeof(*keys));
	if (!keys)
		return ckpt_error_nomem(y->err);
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = ynode(y, p->key);

		if (!yscalar(y, k, "a key", &rc))
			goto out;
		keys[n].key = (const char *)k->data.scalar.value;
		keys[n].node = k;
		keys[n].pos = n;
		n++;
	}
	qsort(keys, n, sizeof(*keys), cmp_keyref);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(keys[i - 1].key, keys[i].key)) {
			rc = yerr(y, keys[i].node, "duplicate key '%s' in %s",
			    keys[i].key, what);
			break;
		}
out:
	free(keys);
	return rc;
}

static const char *const policy_keys[] = {
	"keep_last", "keep_best", "metric", "mode", "missing", "keep_every",
	"keep_within", "keep_hourly", "keep_daily", "keep_weekly",
	"keep_monthly", "keep_yearly", "max_size", NULL
};

static int
parse_policy(struct yctx *y, yaml_node_t *node, const char *what,
    struct ckpt_policy *p)
{
	struct ckpt_error e;
	int rc;

	ckpt_policy_init(p);
	if ((rc = check_mapping(y, node, what)))
		return rc;
	for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
	    pr < node->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = ynode(y, pr->key), *v = ynode(y, pr->value);
		const char *k = (const char *)kn->data.scalar.value, *s;
		int b;

		rc = 0;
		if (!strcmp(k, "keep_last")) {
			rc = parse_count(y, v, k, &p->keep_last);
		} else if (!strcmp(k, "keep_best")) {
			rc = parse_count(y, v, k, &p->keep_best);
		} else if (!strcmp(k, "metric")) {
			if (!(s = yscalar(y, v, k, &rc)))
				return rc;
			if (!(p->metric = keep_string(y, s)))
				return ckpt_error_nomem(y->err);
		} else if (!strcmp(k, "mode")) {
			bool max;

			if ((rc = parse_either(y, v, k, "min", "max", &max)))
				return rc;
			p->mode = max ? CKPT_POLICY_MAX : CKPT_POLICY_MIN;
		} else if (!strcmp(k, "missing")) {
			bool drop;

			if ((rc = parse_either(y, v, k, "keep", "drop", &drop)))
				return rc;
			p->missing = drop ? CKPT_MISSING_DROP :
			    CKPT_MISSING_KEEP;
		} else if (!strcmp(k, "keep_every")) {
			rc = parse_steps(y, v, k, &p->keep_every);
		} else if (!strcmp(k, "keep_within")) {
			rc = parse_with(y, v, k, &p->keep_within,
			    ckpt_duration_parse);
		} else if (!strcmp(k, "max_size")) {
			rc = parse_with(y, v, k, &p->max_size,
			    ckpt_size_parse);
		} else {
			for (b = 0; b < CKPT_BUCKET_COUNT; b++)
				if (!strncmp(k, "keep_", 5) &&
				    !strcmp(k + 5, bucket_names[b]))
					break;
			if (b == CKPT_BUCKET_COUNT)
				return unknown_key(y, kn, k, what, policy_keys);
			rc = parse_count(y, v, k, &p->keep_bucket[b]);
		}
		if (rc)
			return rc;
	}
	/* keep_best may take its metric from the default: checked merged */
	{
		struct ckpt_policy m;

		ckpt_policy_init(&m);
		if (p != &y->cfg->def)
			ckpt_policy_merge(&m, &y->cfg->def);
		ckpt_policy_merge(&m, p);
		if (ckpt_policy_check(&m, &e))
			return yerr(y, node, "%s: %s", what, e.message);
	}
	return 0;
}

static int
parse_runs(struct yctx *y, yaml_node_t *node)
{
	struct ckpt_policy_config *cfg = y->cfg;
	size_t n;
	int rc;

	if ((rc = check_mapping(y, node, "runs")))
		return rc;
	n = (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
	cfg->runs = calloc(n ? n : 1, sizeof(*cfg->runs));
	if (!cfg->runs)
		return ckpt_error_nomem(y->err);
	for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
	    pr < node->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = ynode(y, pr->key);
		const char *k = (const char *)kn->data.scalar.value;
		struct run_override *o = &cfg->runs[cfg->nruns];
		char what[160];

		snprintf(what, sizeof(what), "runs.%s", k);
		if (!(o->pattern = strdup(k)))
			return ckpt_error_nomem(y->err);
		cfg->nruns++;
		o->glob = strpbrk(k, "*?[") != NULL;
		if ((rc = parse_policy(y, ynode(y, pr->value), what,
		    &o->policy)))
			return rc;
	}
	return 0;
}

static const char *const top_keys[] = {
	"version", "default", "runs", "trash", "gc", "prune_on_save", "verify",
	"manifest", NULL
};
static const char *const manifest_keys[] = { "file_sha256", NULL };
static const char *const gc_keys[] = { "older_than", NULL };
static const char *const verify_keys[] = { "allow_globals", NULL };

/* verify: {allow_globals: [module.name | module.*, ...]} */
static int
parse_verify(struct yctx *y, yaml_node_t *v)
{
	struct ckpt_policy_config *cfg = y->cfg;
	int rc;

	if ((rc = check_mapping(y, v, "verify")))
		return rc;
	for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
	    q < v->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = ynode(y, q->key), *list = ynode(y, q->value);
		const char *k = (const char *)kn->data.scalar.value;

		if (strcmp(k, "allow_globals"))
			return unknown_key(y, kn, k, "verify", verify_keys);
		if (!list || list->type != YAML_SEQUENCE_NODE)
			return yerr(y, list, "allow_globals needs a list of "
			    "module.name or module.* entries");
		for (yaml_node_item_t *it = list->data.sequence.items.start;
		    it < list->data.sequence.items.top; it++) {
			yaml_node_t *e = ynode(y, *it);
			struct ckpt_error why;
			const char *g;
			char **p;

			if (!(g = yscalar(y, e, "an allow_globals entry", &rc)))
				return rc;
			ckpt_error_clear(&why);
			if (ckpt_allow_global_check(g, &why))
				return yerr(y, e, "allow_globals: %s",
				    why.message);
			p = reallocarray(cfg->allow_globals,
			    cfg->nallow_globals + 1, sizeof(*p));
			if (!p)
				return ckpt_error_nomem(y->err);
			cfg->allow_globals = p;
			if (!(p[cfg->nallow_globals] = strdup(g)))
				return ckpt_error_nomem(y->err);
			cfg->nallow_globals++;
		}
	}
	return 0;
}

/* manifest: {file_sha256: BOOL} */
static int
parse_manifest(struct yctx *y, yaml_node_t *v)
{
	int rc;

	if ((rc = check_mapping(y, v, "manifest")))
		return rc;
	for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
	    q < v->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = ynode(y, q->key);
		const char *k = (const char *)kn->data.scalar.value;

		if (strcmp(k, "file_sha256"))
			return unknown_key(y, kn, k, "manifest",
			    manifest_keys);
		if ((rc = parse_bool(y, ynode(y, q->value), k,
		    &y->cfg->file_sha256)))
			return rc;
	}
	return 0;
}

static int
parse_root(struct yctx *y, yaml_node_t *root)
{
	struct ckpt_policy_config *cfg = y->cfg;
	int rc;

	if (!root)
		return 0;		/* an empty file */
	if ((rc = check_mapping(y, root, "the policy file")))
		return rc;
	/* "default" first: the overrides are checked merged over it */
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	    pr < root->data.mapping.pairs.top; pr++)
		if (!strcmp((const char *)ynode(y, pr->key)->data.scalar.value,
		    "default") && (rc = parse_policy(y, ynode(y, pr->value),
		    "default", &cfg->def)))
			return rc;
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	    pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = ynode(y, pr->key), *v = ynode(y, pr->value);
		const char *k = (const char *)kn->data.scalar.value, *s;

		rc = 0;
		if (!strcmp(k, "default")) {
			continue;
		} else if (!strcmp(k, "version")) {
			if (!(s = yscalar(y, v, k, &rc)))
				return rc;
			if (strcmp(s, "1"))
				return yerr(y, v, "version %s is not supported "
				    "(this ckpt reads version 1)", s);
		} else if (!strcmp(k, "runs")) {
			rc = parse_runs(y, v);
		} else if (!strcmp(k, "trash")) {
			bool keep;

			if ((rc = parse_either(y, v, k, "delete", "keep", &keep)))
				return rc;
			cfg->trash = keep ? CKPT_TRASH_KEEP : CKPT_TRASH_DELETE;
		} else if (!strcmp(k, "prune_on_save")) {
			rc = parse_bool(y, v, k, &cfg->prune_on_save);
		} else if (!strcmp(k, "verify")) {
			rc = parse_verify(y, v);
		} else if (!strcmp(k, "manifest")) {
			rc = parse_manifest(y, v);
		} else if (!strcmp(k, "gc")) {
			if ((rc = check_mapping(y, v, "gc")))
				return rc;
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
			    q < v->data.mapping.pairs.top; q++) {
				yaml_node_t *gk = ynode(y, q->key);
				const char *g =
				    (const char *)gk->data.scalar.value;

				if (strcmp(g, "older_than"))
					return unknown_key(y, gk, g, "gc",
					    gc_keys);
				if ((rc = parse_with(y, ynode(y, q->value), g,
				    &cfg->gc_age, ckpt_duration_parse)))
					return rc;
			}
		} else {
			return unknown_key(y, kn, k, "the policy file",
			    top_keys);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static struct ckpt_policy_config *
config_new(void)
{
	struct ckpt_policy_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	ckpt_policy_init(&cfg->def);
	cfg->trash = CKPT_TRASH_DELETE;
	cfg->gc_age = CKPT_GC_DEFAULT_AGE;
	return cfg;
}

void
ckpt_policy_config_free(struct ckpt_policy_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nruns; i++)
		free(cfg->runs[i].pattern);
	free(cfg->runs);
	for (size_t i = 0; i < cfg->nstrings; i++)
		free(cfg->strings[i]);
	free(cfg->strings);
	for (size_t i = 0; i < cfg->nallow_globals; i++)
		free(cfg->allow_globals[i]);
	free(cfg->allow_globals);
	free(cfg);
}

int
ckpt_policy_config_parse(const char *buf, size_t len, const char *name,
    struct ckpt_policy_config **out, struct ckpt_error *err)
{
	struct ckpt_policy_config *cfg;
	yaml_parser_t parser;
	yaml_document_t doc;
	struct yctx y;
	int rc;

	if (!out || (len && !buf))
		return ckpt_error_set(err, CKPT_ERR_INVALID, name, -1,
		    "no buffer");
	if (len > CKPT_POLICY_FILE_MAX)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, name, -1,
		    "policy file is larger than %d bytes",
		    CKPT_POLICY_FILE_MAX);
	if (!(cfg = config_new()))
		return ckpt_error_nomem(err);
	if (!yaml_parser_initialize(&parser)) {
		ckpt_policy_config_free(cfg);
		return ckpt_error_nomem(err);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (parser.error == YAML_MEMORY_ERROR)
			rc = ckpt_error_nomem(err);
		else
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, name, -1,
			    "line %zu, column %zu: %s%s%s",
			    parser.problem_mark.line + 1,
			    parser.problem_mark.column + 1,
			    parser.problem ? parser.problem : "bad YAML",
			    parser.context ? " " : "",
			    parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		ckpt_policy_config_free(cfg);
		return rc;
	}
	y.doc = &doc;
	y.name = name;
	y.err = err;
	y.cfg = cfg;
	rc = parse_root(&y, yaml_document_get_root_node(&doc));
	if (!rc) {
		/* a second document is a mistake worth reporting */
		yaml_document_t doc2;

		if (!yaml_parser_load(&parser, &doc2)) {
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, name, -1,
			    "line %zu, column %zu: %s",
			    parser.problem_mark.line + 1,
			    parser.problem_mark.column + 1,
			    parser.problem ? parser.problem : "bad YAML");
		} else {
			if (yaml_document_get_root_node(&doc2))
				rc = ckpt_error_set(err, CKPT_ERR_FORMAT, name,
				    -1, "line %zu: a second YAML document",
				    doc2.start_mark.line + 1);
			yaml_document_delete(&doc2);
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc) {
		ckpt_policy_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

int
ckpt_policy_config_load(const char *path, struct ckpt_policy_config **out,
    struct ckpt_error *err)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	size_t len;
	int rc;

	if (!fp) {
		if (errno == ENOENT) {
			if (!(*out = config_new()))
				return ckpt_error_nomem(err);
			return 0;
		}
		return ckpt_error_errno(err, path, "cannot open");
	}
	buf = malloc(CKPT_POLICY_FILE_MAX + 1);
	if (!buf) {
		fclose(fp);
		return ckpt_error_nomem(err);
	}
	len = fread(buf, 1, CKPT_POLICY_FILE_MAX + 1, fp);
	if (ferror(fp)) {
		rc = ckpt_error_errno(err, path, "cannot read");
		fclose(fp);
		free(buf);
		return rc;
	}
	fclose(fp);
	rc = ckpt_policy_config_parse(buf, len, path, out, err);
	free(buf);
	return rc;
}

void
ckpt_policy_config_lookup(const struct ckpt_policy_config *cfg,
    const char *run, struct ckpt_policy *out)
{
	const struct run_override *hit = NULL;

	ckpt_policy_init(out);
	if (!cfg)
		return;
	ckpt_policy_merge(out, &cfg->def);
	for (size_t i = 0; run && i < cfg->nruns && !hit; i++)
		if (!cfg->runs[i].glob && !strcmp(cfg->runs[i].pattern, run))
			hit = &cfg->runs[i];
	for (size_t i = 0; run && i < cfg->nruns && !hit; i++)
		if (cfg->runs[i].glob &&
		    !fnmatch(cfg->runs[i].pattern, run, 0))
			hit = &cfg->runs[i];
	if (hit)
		ckpt_policy_merge(out, &hit->policy);
}

enum ckpt_trash_mode
ckpt_policy_config_trash(const struct ckpt_policy_config *cfg)
{
	return cfg ? cfg->trash : CKPT_TRASH_DELETE;
}

int64_t
ckpt_policy_config_gc_age(const struct ckpt_policy_config *cfg)
{
	return cfg ? cfg->gc_age : CKPT_GC_DEFAULT_AGE;
}

bool
ckpt_policy_config_prune_on_save(const struct ckpt_policy_config *cfg)
{
	return cfg && cfg->prune_on_save;
}

bool
ckpt_policy_config_file_sha256(const struct ckpt_policy_config *cfg)
{
	return cfg && cfg->file_sha256;
}

const char *const *
ckpt_policy_config_allow_globals(const struct ckpt_policy_config *cfg,
    size_t *n)
{
	*n = cfg ? cfg->nallow_globals : 0;
	return cfg ? (const char *const *)cfg->allow_globals : NULL;
}
