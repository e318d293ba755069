/* SPDX-License-Identifier: MIT */
/*
 * policy.h - internals of the retention engine (lib/policy/policy.c) shared
 * with the store-level prune (lib/store/prune.c) and the unit tests: calendar
 * bucket keys and the names of the rules.
 */
#ifndef CKPT_POLICY_H
#define CKPT_POLICY_H

#include "util/internal.h"

/*
 * The calendar period of a time in UTC, as an integer that differs between
 * periods and grows with time: the hour or day number since the epoch, the
 * day number of the ISO week's Monday, year * 12 + month - 1, the year.
 * When label is not NULL it receives the period as people write it:
 * "2026-11-27 15h", "2026-11-27", "2026-W48", "2026-11", "2026".
 */
int64_t ckpt_bucket_key(enum ckpt_bucket b, int64_t t, char *label,
    size_t len);

/* "hourly", "daily", "weekly", "monthly", "yearly". */
const char *ckpt_bucket_name(enum ckpt_bucket b);

/*
 * ckpt_policy_plan() with the candidates given one at a time: get fills
 * candidate i into buf (or returns one of its own) and the result stays
 * valid until the next call with the same buf.  For a caller that has
 * the candidates' data in another form (prune: its report items), so
 * that no array of candidates is made.
 */
typedef const struct ckpt_candidate *(*ckpt_candidate_fn)(void *arg,
    size_t i, struct ckpt_candidate *buf);
int ckpt_policy_plan_fn(const struct ckpt_policy *p, ckpt_candidate_fn get,
    void *arg, size_t n, int64_t now, struct ckpt_plan **out,
    struct ckpt_error *err);

/* Floor division and modulo for possibly negative times. */
static inline int64_t
ckpt_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#endif /* CKPT_POLICY_H */
