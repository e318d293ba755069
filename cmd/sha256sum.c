/* SPDX-License-Identifier: MIT */
/*
 * sha256sum.c - "ckpt sha256sum": the whole-file SHA-256 of every file of
 * checkpoints, as sha256sum(1) prints it, computed on demand.  Manifest
 * schema 2 records whole-file digests only when the store asks for them
 * (ckpt-manifest(5)); this gives them to tools that want them (Git LFS,
 * model signing, "sha256sum -c") without making every save pay a
 * sequential pass per file.
 *
 * Choices: the files are those the manifest lists (a file argument is
 * hashed alone); the digests are computed, never copied from the manifest,
 * on every core (one file per core: each is one sequential digest); names
 * are printed as "DIR/FILE" for the argument as given (or the resolved
 * path of a reference), so that "sha256sum -c" run from the same directory
 * checks them, or relative to the checkpoint with --relative; names with a
 * newline or backslash are escaped as sha256sum escapes them.  A computed
 * digest that differs from one the manifest records is a warning and exit
 * 1, the lines are printed all the same.  Objects of a remote store
 * (s3://) are hashed by streaming GETs, one per file, nothing on disk.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "store.h"

#include <sys/stat.h>

static const char *const sha256sum_usage[] = {
	"ckpt sha256sum [options] ref|path ...",
	NULL
};

/* One file to hash: where it is, how to name it, what was recorded. */
struct sfile {
	char *path;
	char *name;
	const struct ckpt_manifest_file *entry;	/* NULL for a bare file */
};

struct work {
	struct sfile *v;
	size_t n;
	struct ckpt_manifest **mans;
	size_t nmans;
};

static void
add_file(struct work *w, char *path, char *name,
    const struct ckpt_manifest_file *entry)
{
	w->v = xreallocarray(w->v, w->n + 1, sizeof(*w->v));
	w->v[w->n].path = path;
	w->v[w->n].name = name;
	w->v[w->n].entry = entry;
	w->n++;
}

static bool
is_remote(const char *path)
{
	return !strncmp(path, "s3://", 5);
}

/* The files of one argument: a manifest's list, or the file itself. */
static void
add_arg(struct work *w, const char *path, const char *shown, bool relative)
{
	struct ckpt_manifest *m;
	struct ckpt_error err;
	struct stat st;

	ckpt_error_clear(&err);
	if (is_remote(path)) {
		/* A prefix with a manifest is a checkpoint; anything else
		 * is one object (whose GET says when there is none). */
		const char *base = strrchr(path, '/');
		int rc = strcmp(base + 1, CKPT_MANIFEST_NAME) ?
		    ckpt_manifest_read_location(path, &m, &err) :
		    CKPT_ERR_NOTFOUND;

		if (rc == CKPT_ERR_NOTFOUND) {
			add_file(w, xstrdup(path), xstrdup(shown), NULL);
			return;
		}
		if (rc)
			die_ckpt(&err);
	} else if (stat(path, &st)) {
		die_errno("%s", path);
	} else if (!S_ISDIR(st.st_mode)) {
		add_file(w, xstrdup(path), xstrdup(shown), NULL);
		return;
	} else if (ckpt_manifest_read(path, &m, &err)) {
		die_ckpt(&err);
	}
	w->mans = xreallocarray(w->mans, w->nmans + 1, sizeof(*w->mans));
	w->mans[w->nmans++] = m;
	for (size_t i = 0; i < ckpt_manifest_file_count(m); i++) {
		const struct ckpt_manifest_file *f = ckpt_manifest_file(m, i);
		size_t l = strlen(shown);
		bool slash = l && shown[l - 1] == '/';

		add_file(w, xasprintf("%.*s/%s", (int)(strlen(path) -
		    (path[strlen(path) - 1] == '/')), path, f->path), relative ?
		    xstrdup(f->path) : xasprintf("%s%s%s", shown, slash ? "" :
		    "/", f->path), f);
	}
}

/* As sha256sum: a name with a newline or backslash gets a leading
 * backslash on the line, and \n and \\ inside. */
static void
print_line(const char *hex, const char *name)
{
	if (!strpbrk(name, "\\\n")) {
		printf("%s  %s\n", hex, name);
		return;
	}
	printf("\\%s  ", hex);
	for (; *name; name++)
		if (*name == '\n')
			fputs("\\n", stdout);
		else if (*name == '\\')
			fputs("\\\\", stdout);
		else
			putchar(*name);
	putchar('\n');
}

static int
cmd_sha256sum_main(int argc, char **argv, struct ctx *ctx)
{
	bool relative = false;
	const struct opt opts[] = {
		OPT_BOOL(0, "relative", &relative, "name files relative to "
		    "their checkpoint directory"),
		OPT_END()
	};
	struct ckpt_store *s = NULL;
	struct ckpt_hash_job *hj;
	struct ckpt_error err;
	struct work w = { 0 };
	json_t *doc = NULL, *list = NULL;
	int status = CKPT_EXIT_OK, n;

	n = parse_options(argc, argv, ctx, opts, sha256sum_usage);
	if (n < 1)
		usage_error(sha256sum_usage, opts, "name a checkpoint");
	for (int i = 0; i < n; i++) {
		char *path = resolve_checkpoint_arg(ctx, &s, argv[i], NULL,
		    CKPT_METRIC_MIN, NULL);
		struct stat st;

		/* A path is named as given; a reference by where it is. */
		add_arg(&w, path, stat(argv[i], &st) ? path : argv[i],
		    relative);
		free(path);
	}
	ckpt_store_free(s);
	hj = xcalloc(w.n + 1, sizeof(*hj));
	for (size_t i = 0; i < w.n; i++) {
		hj[i].path = w.v[i].path;
		hj[i].whole = true;
	}
	ckpt_error_clear(&err);
	if (ckpt_hash_locations(hj, w.n, ctx->jobs, NULL, NULL, &err))
		die_ckpt(&err);
	if (ctx->json) {
		doc = json_doc_new();
		list = json_array();
	}
	for (size_t i = 0; i < w.n; i++) {
		const struct ckpt_manifest_file *e = w.v[i].entry;
		char hex[2 * CKPT_SHA256_BYTES + 1];

		ckpt_hex(hj[i].sha256, CKPT_SHA256_BYTES, hex);
		if (e && e->has_sha256 && memcmp(e->sha256, hj[i].sha256,
		    CKPT_SHA256_BYTES)) {
			warning("%s: SHA-256 differs from the one its manifest "
			    "records", w.v[i].path);
			status = CKPT_EXIT_FINDING;
		}
		if (list) {
			char *d = xasprintf("sha256:%s", hex);

			json_array_append_new(list, json_pack("{s:s, s:s}",
			    "path", w.v[i].name, "sha256", d));
			free(d);
		} else
			print_line(hex, w.v[i].name);
	}
	if (doc) {
		json_object_set_new(doc, "files", list);
		json_doc_print(doc);
	}
	for (size_t i = 0; i < w.n; i++) {
		free(w.v[i].path);
		free(w.v[i].name);
	}
	for (size_t i = 0; i < w.nmans; i++)
		ckpt_manifest_free(w.mans[i]);
	free(w.mans);
	free(w.v);
	free(hj);
	return status;
}

const struct cmd cmd_sha256sum = {
	.name = "sha256sum",
	.summary = "print the SHA-256 of a checkpoint's files (sha256sum)",
	.fn = cmd_sha256sum_main,
	.flags = CMD_JOBS,
};
