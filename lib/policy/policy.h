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

/* Floor division and modulo for possibly negative times. */
static inline int64_t
ckpt_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#endif /* CKPT_POLICY_H */
