/* SPDX-License-Identifier: MIT */
/*
 * store.c - see store.h: the store and references as commands reach them.
 */
#include "store.h"

#include <errno.h>
#include <sys/stat.h>

static int
open_store(const struct ctx *ctx, bool create, struct ckpt_store **s,
    struct ckpt_error *err)
{
	if (ctx->store)
		return ckpt_store_open(ctx->store, create ? CKPT_STORE_CREATE :
		    0, s, err);
	return ckpt_store_find(NULL, s, err);
}

struct ckpt_store *
store_open(const struct ctx *ctx, bool create)
{
	struct ckpt_error err;
	struct ckpt_store *s;
	int rc;

	ckpt_error_clear(&err);
	rc = open_store(ctx, create, &s, &err);
	/* a remote store (s3://...) is not supported yet: a refused
	 * request, like a missing store */
	if (rc == CKPT_ERR_NOTFOUND || rc == CKPT_ERR_REFUSED ||
	    rc == CKPT_ERR_INVALID || rc == CKPT_ERR_UNSUPPORTED) {
		error_ckpt(&err);
		exit(CKPT_EXIT_USAGE);
	}
	if (rc)
		die_ckpt(&err);
	return s;
}

struct ckpt_store *
store_open_gently(const struct ctx *ctx)
{
	struct ckpt_store *s;

	if (open_store(ctx, false, &s, NULL))
		return NULL;
	return s;
}

enum ckpt_metric_mode
parse_metric_mode(const char *s)
{
	if (!s || !strcmp(s, "min"))
		return CKPT_METRIC_MIN;
	if (!strcmp(s, "max"))
		return CKPT_METRIC_MAX;
	die_usage("mode must be 'min' or 'max', not '%s'", s);
}

char *
resolve_checkpoint_arg(const struct ctx *ctx, struct ckpt_store **storep,
    const char *arg, const char *metric, enum ckpt_metric_mode mode,
    struct ckpt_ref *ref)
{
	struct ckpt_ref r;
	struct ckpt_error err;
	struct stat st;
	char *path, *policy_metric = NULL;
	int rc;

	if (ref)
		memset(ref, 0, sizeof(*ref));
	if (!stat(arg, &st) || !ckpt_ref_syntax_ok(arg))
		return xstrdup(arg);
	if (!*storep)
		*storep = store_open(ctx, false);
	ckpt_error_clear(&err);
	if (!metric) {
		/* RUN@best without --metric: the run's policy metric. */
		size_t n = strlen(arg);
		struct ckpt_policy_config *cfg = NULL;
		char *yaml = ckpt_store_path(*storep, "ckpt.yaml");
		char *run;

		if (n > 5 && !strcmp(arg + n - 5, "@best") && yaml &&
		    !ckpt_policy_config_load(yaml, &cfg, NULL)) {
			struct ckpt_policy p;

			run = xstrdup(arg);
			run[n - 5] = '\0';
			ckpt_policy_config_lookup(cfg, run, &p);
			if (p.metric) {
				policy_metric = xstrdup(p.metric);
				metric = policy_metric;
				mode = p.mode == CKPT_POLICY_MAX ?
				    CKPT_METRIC_MAX : CKPT_METRIC_MIN;
			}
			free(run);
		}
		if (cfg)
			ckpt_policy_config_free(cfg);
		free(yaml);
	}
	rc = ckpt_store_resolve(*storep, arg, metric, mode, &r, &err);
	free(policy_metric);
	if (rc == CKPT_ERR_NOTFOUND || rc == CKPT_ERR_INVALID) {
		error_ckpt(&err);
		exit(CKPT_EXIT_USAGE);
	}
	if (rc)
		die_ckpt(&err);
	path = xstrdup(r.path);
	if (ref)
		*ref = r;
	else
		ckpt_ref_release(&r);
	return path;
}
