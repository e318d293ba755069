/* SPDX-License-Identifier: MIT */
/*
 * fuzz-bundle.c - the bundle reader of ckpt import (ckpt_import) on
 * arbitrary bytes, into a private store.  Beyond not crashing it checks
 * the promise of import: a bundle that fails changes nothing, so no
 * staging directory (runs/RUN/.tmp-*) may be left behind, and nothing is
 * ever written beside the store.
 */
#include "fuzz.h"

#include <dirent.h>

static volatile size_t sink;
static struct ckpt_store *store;

/* Aborts when a staging directory survived a failed import. */
static void
check_no_staging(const char *root)
{
	char runs[PATH_MAX + 16], sub[2 * PATH_MAX + 32];
	struct dirent *de, *se;
	DIR *d, *sd;

	snprintf(runs, sizeof(runs), "%s/runs", root);
	if (!(d = opendir(runs)))
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", runs, de->d_name);
		if (!(sd = opendir(sub)))
			continue;
		while ((se = readdir(sd)))
			if (!strncmp(se->d_name, ".tmp-", 5))
				abort();
		closedir(sd);
	}
	closedir(d);
}

/* Nothing but the store and the input in the private directory. */
static void
check_nothing_beside(void)
{
	struct dirent *de;
	DIR *d = opendir(fuzz_dir);

	if (!d)
		abort();
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "store") && strcmp(de->d_name, "in"))
			abort();
	closedir(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("in", data, size);
	struct ckpt_import_options o = {
	    .version = CKPT_IMPORT_OPTIONS_VERSION, .name = "in" };
	struct ckpt_error err;
	char *report = NULL, root[PATH_MAX + 8];
	int fd, rc;

	snprintf(root, sizeof(root), "%s/store", fuzz_dir);
	if (!store && ckpt_store_init(root, NULL, NULL, &store, &err))
		abort();
	fd = open(path, O_RDONLY);
	if (fd < 0)
		abort();
	rc = ckpt_import(store, fd, &o, &report, &err);
	close(fd);
	if (rc) {
		sink += fuzz_touch(err.message);
		check_no_staging(root);
	} else {
		sink += fuzz_touch(report);
	}
	free(report);
	check_nothing_beside();
	return 0;
}
