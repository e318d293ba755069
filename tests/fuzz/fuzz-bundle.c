/* SPDX-License-Identifier: MIT */
/*
 * fuzz-bundle.c - the bundle reader of ckpt import (ckpt_import) on
 * arbitrary bytes, into a private store.  Beyond not crashing it checks
 * the promise of import: a bundle that fails changes nothing, so no
 * staging directory (runs/RUN/.tmp-*, registry/.staging/ID) may be left
 * behind, and nothing is ever written beside the store.
 */
#include "fuzz.h"

#include <dirent.h>

#include <jansson.h>

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

/* Aborts when a failed import left a weights-only version staged. */
static void
check_no_weights_staged(const char *root)
{
	char stg[PATH_MAX + 32];
	struct dirent *de;
	DIR *d;

	snprintf(stg, sizeof(stg), "%s/registry/.staging", root);
	if (!(d = opendir(stg)))
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			abort();
	closedir(d);
}

/* A successful import's staged weights-only versions, discarded as the
 * importer would once promoted (here: not promoted). */
static void
discard_staged(const char *report)
{
	json_t *r = json_loads(report, 0, NULL), *v;
	struct ckpt_error err;
	size_t i;

	json_array_foreach(json_object_get(r, "models"), i, v) {
		const char *staged = json_string_value(json_object_get(v,
		    "staged"));

		if (staged && ckpt_import_discard(store, staged, &err))
			abort();
	}
	json_decref(r);
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
		check_no_weights_staged(root);
	} else {
		sink += fuzz_touch(report);
		discard_staged(report);
		check_no_weights_staged(root);
	}
	free(report);
	check_nothing_beside();
	return 0;
}
