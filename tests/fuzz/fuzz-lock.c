/* SPDX-License-Identifier: MIT */
/*
 * fuzz-lock.c - the two readers of owner records that a store holds and
 * anyone with write access to it can forge: the store lock (as a file, and
 * as the symlink form taken on a full filesystem), read by
 * ckpt_store_lock_holder() and judged by ckpt_store_lock(); and a staging
 * directory's ckpt-staging.json, judged by a dry-run gc (a dry run never
 * moves files, so the record's source paths are never acted on).
 */
#include "fuzz.h"

#include <sys/stat.h>

static volatile size_t sink;
static struct ckpt_store *store;
static char root[PATH_MAX], lock[PATH_MAX + 32], rec[PATH_MAX + 128];

static void
setup(void)
{
	struct ckpt_error err;
	char dir[PATH_MAX + 64];
	const char *p = fuzz_write("probe", (const uint8_t *)"", 0);

	snprintf(root, sizeof(root), "%.*s/s", (int)(strrchr(p, '/') - p), p);
	if (ckpt_store_init(root, NULL, NULL, &store, &err))
		abort();
	snprintf(dir, sizeof(dir), "%s/runs/r/.tmp-step-1.1.fuzz", root);
	snprintf(lock, sizeof(lock), "%s/.ckpt/lock", root);
	snprintf(rec, sizeof(rec), "%s/ckpt-staging.json", dir);
	{
		char cmd[PATH_MAX + 80];

		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
		if (system(cmd))
			abort();
	}
}

static void
put(const char *path, const uint8_t *data, size_t size)
{
	FILE *fp = fopen(path, "w");

	if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp))
		abort();
}

static void
judge_lock(void)
{
	struct ckpt_lock_holder h, broken;
	struct ckpt_error err;

	if (!ckpt_store_lock_holder(store, &h, &err))
		sink += fuzz_touch(h.host) + fuzz_touch(h.purpose);
	if (!ckpt_store_lock(store, "fuzz", 0, &broken, &err))
		ckpt_store_unlock(store);
	else
		sink += fuzz_touch(err.message);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_gc_options go = {
	    .version = CKPT_GC_OPTIONS_VERSION, .older_than = 0, .dry_run = true };
	struct ckpt_gc_report *rep;
	struct ckpt_error err;
	char target[4096];

	if (!store)
		setup();
	unlink(lock);
	put(lock, data, size);
	judge_lock();
	/* The symlink form: the input as a link target. */
	unlink(lock);
	if (size && size < sizeof(target) && !memchr(data, '\0', size)) {
		memcpy(target, data, size);
		target[size] = '\0';
		if (!symlink(target, lock))
			judge_lock();
		unlink(lock);
	}
	put(rec, data, size);
	if (!ckpt_store_gc(store, &go, &rep, &err)) {
		for (size_t i = 0; i < ckpt_gc_report_count(rep); i++)
			sink += fuzz_touch(ckpt_gc_report_item(rep, i)->reason);
		ckpt_gc_report_free(rep);
	}
	return 0;
}
