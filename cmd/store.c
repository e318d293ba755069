/* SPDX-License-Identifier: MIT */
/*
 * store.c - see store.h: the store and references as commands reach them.
 */
#include "store.h"

#include <dirent.h>
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

/*
 * The commands that work on a remote store (s3://...).  Every other
 * command is refused there, before it does anything, rather than half
 * working on a store it cannot fully read.
 */
static const char *const remote_commands[] = {
	"init", "save", "ls", "latest", "pin", "unpin", "prune", "gc",
	"inspect", "verify", "push", "pull",
	"diff", "convert", "sha256sum",	/* read through ranged GETs */
	"sign",		/* refuses a remote checkpoint itself, saying why */
	"promote", "alias", "log", "models",
	"export", "import",
	"keygen",	/* never touches a store */
};

void
store_refuse_remote(const struct ctx *ctx)
{
	const char *name = ctx->cmd ? ctx->cmd->name : "?";

	if (!ctx->store || !strstr(ctx->store, "://"))
		return;
	for (size_t i = 0; i < sizeof(remote_commands) /
	    sizeof(remote_commands[0]); i++)
		if (!strcmp(name, remote_commands[i]))
			return;
	error("%s: 'ckpt %s' does not work on a remote store yet (see "
	    "ckpt(1), REMOTE STORES, for the commands that do)", ctx->store,
	    name);
	exit(CKPT_EXIT_USAGE);
}

struct ckpt_store *
store_open(const struct ctx *ctx, bool create)
{
	struct ckpt_error err;
	struct ckpt_store *s;
	int rc;

	store_refuse_remote(ctx);
	ckpt_error_clear(&err);
	rc = open_store(ctx, create, &s, &err);
	/* a missing store, bad credentials or a remote store of an
	 * unknown kind: a refused request */
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
cmd_store(struct ctx *ctx)
{
	unsigned int flags = ctx->cmd ? ctx->cmd->flags : 0;

	if (!(flags & CMD_STORE))
		die("internal error: '%s' is not declared CMD_STORE",
		    ctx->cmd ? ctx->cmd->name : "?");
	if (!ctx->opened)
		ctx->opened = store_open(ctx, flags & CMD_CREATE_STORE);
	return ctx->opened;
}

bool
store_not_created_yet(const struct ctx *ctx)
{
	struct dirent *de;
	DIR *d;
	bool empty = true;

	if (!ctx->store)
		return false;
	if (strstr(ctx->store, "://")) {
		/* A remote store: no marker object yet (any other error is
		 * left for the command's own open to report). */
		struct ckpt_store *s = NULL;
		struct ckpt_error err;
		int rc = ckpt_store_open(ctx->store, 0, &s, &err);

		ckpt_store_free(s);
		return rc == CKPT_ERR_NOTFOUND;
	}
	d = opendir(ctx->store);
	if (!d)
		return errno == ENOENT;
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	return empty;
}

void
hint_run_name(struct ckpt_store *s, const char *run)
{
	struct ckpt_list *l;
	const char **names = NULL, *near;
	size_t n = 0;

	if (ckpt_store_list(s, NULL, 0, &l, NULL))
		return;
	for (size_t i = 0; i < ckpt_list_count(l); i++) {
		const char *r = ckpt_list_entry(l, i)->run;

		if (n && !strcmp(names[n - 1], r))
			continue;	/* the list is sorted by run */
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = r;
	}
	near = closest_name(run, names, n);
	if (near)
		fprintf(stderr, "hint: did you mean '%s'?\n", near);
	else if (!n)
		fprintf(stderr, "hint: the store holds no checkpoint yet\n");
	free(names);
	ckpt_list_free(l);
}

void
warn_broken_lock(const struct ckpt_lock_holder *b)
{
	if (b && b->pid)
		warning("broke a stale store lock of pid %ld on %s (%s)",
		    b->pid, b->host, b->purpose);
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

int
resolve_checkpoint(const struct ctx *ctx, struct ckpt_store **storep,
    const char *arg, const char *metric, enum ckpt_metric_mode mode,
    struct ckpt_ref *ref, char **path_out)
{
	struct ckpt_ref r;
	struct ckpt_error err;
	struct stat st;
	char *policy_metric = NULL;
	int rc;

	*path_out = NULL;
	if (ref)
		memset(ref, 0, sizeof(*ref));
	if (!stat(arg, &st) || !ckpt_ref_syntax_ok(arg)) {
		*path_out = xstrdup(arg);
		return CKPT_EXIT_OK;
	}
	ckpt_error_clear(&err);
	if (!*storep) {
		rc = open_store(ctx, false, storep, &err);
		if (rc) {
			*storep = NULL;
			error_ckpt(&err);
			fprintf(stderr, "ckpt: '%s' is neither a file nor a "
			    "reference into a store\n", arg);
			/* bad credentials or store location: as store_open */
			return rc == CKPT_ERR_REFUSED || rc == CKPT_ERR_INVALID
			    || rc == CKPT_ERR_UNSUPPORTED ? CKPT_EXIT_USAGE :
			    CKPT_EXIT_ERROR;
		}
	}
	if (!metric) {
		/* RUN@best without --metric: the run's policy metric. */
		size_t n = strlen(arg);
		struct ckpt_policy_config *cfg = NULL;
		char *run;

		if (n > 5 && !strcmp(arg + n - 5, "@best") &&
		    !ckpt_store_config_load(*storep, &cfg, NULL)) {
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
	}
	rc = ckpt_store_resolve(*storep, arg, metric, mode, &r, &err);
	free(policy_metric);
	if (rc) {
		error_ckpt(&err);
		/* A malformed request is the caller's; a reference that
		 * names nothing could not be checked. */
		return rc == CKPT_ERR_INVALID ? CKPT_EXIT_USAGE :
		    CKPT_EXIT_ERROR;
	}
	*path_out = xstrdup(r.path);
	if (ref)
		*ref = r;
	else
		ckpt_ref_release(&r);
	return CKPT_EXIT_OK;
}

char *
resolve_checkpoint_arg(const struct ctx *ctx, struct ckpt_store **storep,
    const char *arg, const char *metric, enum ckpt_metric_mode mode,
    struct ckpt_ref *ref)
{
	char *path;
	int rc = resolve_checkpoint(ctx, storep, arg, metric, mode, ref,
	    &path);

	if (rc)
		exit(rc);
	return path;
}
