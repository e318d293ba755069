/* SPDX-License-Identifier: MIT */
/*
 * check_backend.c - the storage-backend seam (lib/store/backend.h): the
 * POSIX backend's operations and guarantees (links are foreign, absent is
 * CKPT_ERR_NOTFOUND and nothing else, create-if-absent has one winner,
 * unlock removes only its own lock), the store refusing a table of
 * another version and remote locations, and an in-memory fake backend
 * under which pins, registry protection and the lock work as on disk --
 * which shows that the store reaches those objects only through the
 * seam.  (The listing, list.c, is not routed yet: see backend.h.)
 */
#include "unit.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "store/backend.h"
#include "store/store.h"

static const struct ckpt_backend_ops *posix = &ckpt_backend_posix;

static void *
posix_be(void)
{
	char cmd[4400];
	void *be;

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/root/.ckpt' '%s/root/runs/a' "
	    "'%s/elsewhere'", unit_tmpdir, unit_tmpdir, unit_tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/root", unit_tmpdir);
	ck_assert_int_eq(posix->open(cmd, &be, NULL), 0);
	return be;
}

static void
sh(const char *fmt, const char *arg)
{
	char cmd[8800];

	snprintf(cmd, sizeof(cmd), "cd '%s' && ", unit_tmpdir);
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), fmt, arg);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_posix_put_read_stat_remove)
{
	void *be = posix_be();
	struct ckpt_be_info info;
	struct ckpt_error err;
	char *data;
	size_t len;

	ck_assert_int_eq(posix->read(be, "runs/a/x.json", 100, &data, &len,
	    &err), CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(posix->put(be, "runs/a/x.json", "{}", 2, 0, &err),
	    0);
	ck_assert_int_eq(posix->read(be, "runs/a/x.json", 100, &data, &len,
	    &err), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_str_eq(data, "{}");
	free(data);
	ck_assert_int_eq(posix->read(be, "runs/a/x.json", 1, &data, NULL,
	    &err), CKPT_ERR_LIMIT);
	ck_assert_int_eq(posix->read(be, "runs/a", 100, &data, NULL, &err),
	    CKPT_ERR_FORMAT);
	/* create-if-absent: the second creator loses, the first's bytes stay */
	ck_assert_int_eq(posix->put(be, "runs/a/x.json", "[1]", 3,
	    CKPT_BE_IF_ABSENT, &err), CKPT_ERR_EXISTS);
	ck_assert_int_eq(posix->put(be, "runs/a/y", "1", 1, CKPT_BE_IF_ABSENT,
	    &err), 0);
	ck_assert_int_eq(posix->stat(be, "runs/a/x.json", &info, &err), 0);
	ck_assert_int_eq(info.type, CKPT_BE_FILE);
	ck_assert_uint_eq(info.size, 2);
	ck_assert_int_gt(info.mtime, 0);
	ck_assert_int_eq(posix->stat(be, "runs/a", &info, &err), 0);
	ck_assert_int_eq(info.type, CKPT_BE_DIR);
	ck_assert_int_eq(posix->remove(be, "runs/a/x.json", &err), 0);
	ck_assert_int_eq(posix->remove(be, "runs/a/x.json", &err), 0);
	ck_assert_int_eq(posix->stat(be, "runs/a/x.json", &info, &err),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(posix->stat(be, "runs/b/x.json", &info, &err),
	    CKPT_ERR_NOTFOUND);
	posix->close(be);
}
END_TEST

struct seen {
	char names[16][64];
	enum ckpt_be_type types[16];
	size_t n;
};

static int
collect(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, 16);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->types[s->n++] = info->type;
	return 0;
}

static enum ckpt_be_type
seen_type(const struct seen *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return s->types[i];
	return 0;
}

START_TEST(test_posix_links_are_foreign)
{
	void *be = posix_be();
	struct ckpt_be_info info;
	struct ckpt_error err;
	struct seen seen = { 0 };
	char *data = NULL;

	sh("echo secret >elsewhere/f.json && mkdir elsewhere/d && "
	    "ln -s ../../elsewhere root/runs/link && "
	    "ln -s ../../../elsewhere/f.json root/runs/a/f.json%s", "");
	/* a link in the middle of a key, or as its last part: never read */
	ck_assert_int_eq(posix->read(be, "runs/link/f.json", 100, &data, NULL,
	    &err), CKPT_ERR_UNSAFE);
	ck_assert_ptr_nonnull(strstr(err.message, "symbolic link"));
	ck_assert_int_eq(posix->read(be, "runs/a/f.json", 100, &data, NULL,
	    &err), CKPT_ERR_UNSAFE);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(posix->stat(be, "runs/link", &info, &err), 0);
	ck_assert_int_eq(info.type, CKPT_BE_LINK);
	ck_assert_int_eq(posix->list(be, "runs/link", collect, &seen, &err),
	    CKPT_ERR_UNSAFE);
	ck_assert_uint_eq(seen.n, 0);
	ck_assert_int_eq(posix->list(be, "runs", collect, &seen, &err), 0);
	ck_assert_int_eq(seen_type(&seen, "link"), CKPT_BE_LINK);
	ck_assert_int_eq(seen_type(&seen, "a"), CKPT_BE_DIR);
	ck_assert_int_eq(posix->list(be, "runs/none", collect, &seen, &err),
	    CKPT_ERR_NOTFOUND);
	/* neither moved to the trash nor removed through a link */
	ck_assert_int_eq(posix->trash(be, "runs/link", "x", &err),
	    CKPT_ERR_UNSAFE);
	ck_assert_int_eq(posix->remove_tree(be, "runs/link/d", &err),
	    CKPT_ERR_UNSAFE);
	sh("test -f elsewhere/f.json && test -d elsewhere/d%s", "");
	posix->close(be);
}
END_TEST

START_TEST(test_posix_lock)
{
	void *be = posix_be();
	struct ckpt_error err;
	bool fb = true;
	char *text;
	int64_t mtime = 0;

	ck_assert_int_eq(posix->lock_read(be, ".ckpt/lock", &text, NULL,
	    &err), CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(posix->lock(be, ".ckpt/lock", "pid 1\n", "c1", &fb,
	    &err), 0);
	ck_assert(!fb);
	ck_assert_int_eq(posix->lock(be, ".ckpt/lock", "pid 2\n", "c2", &fb,
	    &err), CKPT_ERR_EXISTS);
	ck_assert_int_eq(posix->lock_read(be, ".ckpt/lock", &text, &mtime,
	    &err), 0);
	ck_assert_str_eq(text, "pid 1\n");
	ck_assert_int_gt(mtime, 0);
	free(text);
	/* someone else's lock stays */
	ck_assert_int_eq(posix->unlock(be, ".ckpt/lock", "pid 2\n", &err),
	    CKPT_ERR_EXISTS);
	ck_assert_int_eq(posix->unlock(be, ".ckpt/lock", "pid 1\n", &err), 0);
	ck_assert_int_eq(posix->unlock(be, ".ckpt/lock", "pid 1\n", &err),
	    CKPT_ERR_NOTFOUND);
	/* the compact (symlink) form reads back as its target */
	sh("ln -s ckpt1.9.9.9.-.-.0 root/.ckpt/lock%s", "");
	ck_assert_int_eq(posix->lock_read(be, ".ckpt/lock", &text, NULL,
	    &err), 0);
	ck_assert_str_eq(text, "ckpt1.9.9.9.-.-.0");
	free(text);
	posix->close(be);
}
END_TEST

START_TEST(test_posix_commit_trash_remove)
{
	void *be = posix_be();
	struct ckpt_error err;
	struct seen seen = { 0 };

	sh("mkdir root/runs/a/.tmp-1 root/runs/a/.tmp-2 && "
	    "echo 12345 >root/runs/a/.tmp-1/ckpt-manifest.json && "
	    "echo 1 >root/runs/a/.tmp-2/ckpt-manifest.json%s", "");
	ck_assert_int_eq(posix->commit_if_absent(be, "runs/a/.tmp-1",
	    "runs/a/step-1", &err), 0);
	ck_assert_int_eq(posix->commit_if_absent(be, "runs/a/.tmp-2",
	    "runs/a/step-1", &err), CKPT_ERR_EXISTS);
	ck_assert_int_eq(posix->flush(be, "runs/a", &err), 0);
	sh("grep -q 12345 root/runs/a/step-1/ckpt-manifest.json && "
	    "test -d root/runs/a/.tmp-2%s", "");
	ck_assert_uint_eq(posix->usage(be, "runs/a/step-1"), 6);
	/* the trash is made on first use */
	ck_assert_int_eq(posix->trash(be, "runs/a/step-1", "a@step-1.1", &err),
	    0);
	ck_assert_int_eq(posix->list(be, ".ckpt/trash", collect, &seen, &err),
	    0);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_str_eq(seen.names[0], "a@step-1.1");
	ck_assert_int_eq(posix->trash(be, "runs/a/step-1", "a@step-1.2", &err),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(posix->remove_tree(be, ".ckpt/trash/a@step-1.1",
	    &err), 0);
	ck_assert_int_eq(posix->remove_tree(be, ".ckpt/trash/a@step-1.1",
	    &err), 0);
	sh("test ! -e root/.ckpt/trash/a@step-1.1%s", "");
	posix->close(be);
}
END_TEST

/* Version 3: copy links (shared) or copies, never replaces, never
 * follows a link, and makes the parents of its target. */
START_TEST(test_posix_copy)
{
	void *be = posix_be();
	struct ckpt_be_info a, b;
	struct ckpt_error err;
	bool shared = false;

	sh("mkdir -p root/runs/a/step-1/sub && "
	    "echo weights >root/runs/a/step-1/sub/w.bin && "
	    "echo secret >elsewhere/s.bin && "
	    "ln -s ../../../elsewhere/s.bin root/runs/a/step-1/l.bin%s", "");
	ck_assert_int_eq(posix->copy(be, "runs/a/step-1/sub/w.bin",
	    "registry/.staging/x/v/sub/w.bin", 0, &shared, &err), 0);
	ck_assert(shared);
	ck_assert_int_eq(posix->stat(be, "runs/a/step-1/sub/w.bin", &a, &err),
	    0);
	ck_assert_int_eq(posix->stat(be, "registry/.staging/x/v/sub/w.bin",
	    &b, &err), 0);
	ck_assert_uint_eq(a.ino, b.ino);
	ck_assert(a.owned);
	ck_assert_uint_eq(a.uid, (uint32_t)geteuid());
	/* an independent copy: same bytes, another inode */
	ck_assert_int_eq(posix->copy(be, "runs/a/step-1/sub/w.bin",
	    "registry/.staging/x/c/w.bin", CKPT_BE_COPY_INDEPENDENT, &shared,
	    &err), 0);
	ck_assert(!shared);
	ck_assert_int_eq(posix->stat(be, "registry/.staging/x/c/w.bin", &b,
	    &err), 0);
	ck_assert_uint_ne(a.ino, b.ino);
	sh("cmp root/runs/a/step-1/sub/w.bin "
	    "root/registry/.staging/x/c/w.bin%s", "");
	/* never replaces; absent is NOTFOUND; a link is never followed */
	ck_assert_int_eq(posix->copy(be, "runs/a/step-1/sub/w.bin",
	    "registry/.staging/x/c/w.bin", 0, NULL, &err), CKPT_ERR_EXISTS);
	ck_assert_int_eq(posix->copy(be, "runs/a/step-1/none.bin",
	    "registry/.staging/x/c/none.bin", 0, NULL, &err),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(posix->copy(be, "runs/a/step-1/l.bin",
	    "registry/.staging/x/c/l.bin", 0, NULL, &err), CKPT_ERR_UNSAFE);
	sh("test ! -e root/registry/.staging/x/c/l.bin%s", "");
	posix->close(be);
}
END_TEST

static void
fake_close_nothing(void *be)
{
	(void)be;
}

START_TEST(test_store_refuses_other_versions_and_remotes)
{
	struct ckpt_backend_ops other = ckpt_backend_posix;
	struct ckpt_store *s = NULL;
	struct ckpt_error err;

	other.version = CKPT_BACKEND_VERSION + 1;
	other.close = fake_close_nothing;
	ck_assert_int_eq(ckpt_store_open_backend(&other, NULL, "/x", &s,
	    &err), CKPT_ERR_INTERNAL);
	ck_assert_ptr_null(s);
	/* a table of this version with an operation missing */
	other.version = CKPT_BACKEND_VERSION;
	other.stage_untake = NULL;
	ck_assert_int_eq(ckpt_store_open_backend(&other, NULL, "/x", &s,
	    &err), CKPT_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.message, "no stage_untake"));
	ck_assert_ptr_null(s);
	/* version 3's copy is required as well */
	other.stage_untake = ckpt_backend_posix.stage_untake;
	other.copy = NULL;
	ck_assert_int_eq(ckpt_store_open_backend(&other, NULL, "/x", &s,
	    &err), CKPT_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.message, "no copy operation"));
	ck_assert_ptr_null(s);
	/* s3:// is the S3 backend (tests/t70xx); other schemes are not. */
	ck_assert_int_eq(ckpt_store_open("gs://bucket/prefix", 0, &s, &err),
	    CKPT_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(err.message, "s3://BUCKET/PREFIX"));
	ck_assert_int_eq(ckpt_store_open("gs://bucket", CKPT_STORE_CREATE, &s,
	    &err), CKPT_ERR_UNSUPPORTED);
	/* a malformed s3:// URL is refused before any request */
	ck_assert_int_eq(ckpt_store_open("s3:///prefix", 0, &s, &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_store_open("s3://bucket/a//b", 0, &s, &err),
	    CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_store_open("s3://bucket/a/../b", 0, &s, &err),
	    CKPT_ERR_INVALID);
}
END_TEST

/* ------------------------------------------------------------------ */
/* An in-memory backend: a sorted-free array of key -> bytes           */
/* ------------------------------------------------------------------ */

struct fobj {
	char *key;
	char *data;
	size_t len;
};

struct fake {
	struct fobj o[256];
	size_t n;
	unsigned calls;		/* operations the store made */
	/* Staging as an object store would do it (backend.h stage_begin):
	 * the record is an object at once, the files wait in a local spool
	 * directory, uploaded by commit_if_absent with the manifest last. */
	char spool[4200];
	unsigned nstage;
	bool fail_list;		/* every list fails (an I/O error) */
	/* copy (version 3) also writes what it copies to mirror/KEY:
	 * promote verifies its staged copy by path (backend.h: reading a
	 * checkpoint's files is not through the seam). */
	char mirror[4200];
	unsigned ncopies;
};

static struct fobj *
ffind(struct fake *f, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->o[i].key, key))
			return &f->o[i];
	return NULL;
}

/* Whether key is a prefix ("dir") of some object. */
static bool
fdir(struct fake *f, const char *key)
{
	size_t n = strlen(key);

	if (!n)
		return true;
	for (size_t i = 0; i < f->n; i++)
		if (!strncmp(f->o[i].key, key, n) && f->o[i].key[n] == '/')
			return true;
	return false;
}

static void
fset(struct fake *f, const char *key, const char *data)
{
	struct fobj *o = ffind(f, key);

	if (!o) {
		ck_assert_uint_lt(f->n, 256);
		o = &f->o[f->n++];
		o->key = strdup(key);
	} else {
		free(o->data);
	}
	o->data = strdup(data);
	o->len = strlen(data);
}

static void
fdel(struct fake *f, struct fobj *o)
{
	free(o->key);
	free(o->data);
	*o = f->o[--f->n];
}

static int
fake_read(void *be, const char *key, size_t max, char **data, size_t *len,
    struct ckpt_error *err)
{
	struct fake *f = be;
	struct fobj *o = ffind(f, key);

	f->calls++;
	*data = NULL;
	if (!o)
		return fdir(f, key) ? ckpt_error_set(err, CKPT_ERR_FORMAT, key,
		    -1, "not a regular file") : ckpt_error_set(err,
		    CKPT_ERR_NOTFOUND, key, -1, "no such object");
	if (o->len > max)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, key, -1, "large");
	*data = strdup(o->data);
	if (len)
		*len = o->len;
	return 0;
}

static int
fake_stat(void *be, const char *key, struct ckpt_be_info *out,
    struct ckpt_error *err)
{
	struct fake *f = be;
	struct fobj *o = ffind(f, key);

	f->calls++;
	memset(out, 0, sizeof(*out));
	out->mtime = 1000;
	if (o) {
		out->type = CKPT_BE_FILE;
		out->size = o->len;
		return 0;
	}
	if (fdir(f, key)) {
		out->type = CKPT_BE_DIR;
		return 0;
	}
	return ckpt_error_set(err, CKPT_ERR_NOTFOUND, key, -1, "no object");
}

static int
fake_list(void *be, const char *prefix, ckpt_be_list_fn fn, void *arg,
    struct ckpt_error *err)
{
	struct fake *f = be;
	size_t n = strlen(prefix), count = 0;
	char (*names)[128] = calloc(f->n, sizeof(*names));
	int rc = 0;

	f->calls++;
	ck_assert_ptr_nonnull(names);
	if (f->fail_list) {
		free(names);
		return ckpt_error_set(err, CKPT_ERR_IO, prefix, -1, "EIO");
	}
	if (!fdir(f, prefix)) {
		free(names);
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, prefix, -1,
		    "no such prefix");
	}
	/* the children, once each: a name then ends at '/' or the key */
	for (size_t i = 0; i < f->n; i++) {
		const char *k = f->o[i].key, *rest, *slash;
		bool dup = false;

		if (n && (strncmp(k, prefix, n) || k[n] != '/'))
			continue;
		rest = n ? k + n + 1 : k;
		slash = strchr(rest, '/');
		char name[128];

		snprintf(name, sizeof(name), "%.*s", slash ? (int)(slash - rest)
		    : (int)strlen(rest), rest);
		for (size_t j = 0; j < count; j++)
			dup |= !strcmp(names[j], name);
		if (!dup)
			snprintf(names[count++], sizeof(names[0]), "%s", name);
	}
	for (size_t j = 0; j < count && !rc; j++) {
		char key[300];
		struct ckpt_be_info info;

		snprintf(key, sizeof(key), "%s%s%s", prefix, n ? "/" : "",
		    names[j]);
		fake_stat(f, key, &info, NULL);
		rc = fn(arg, names[j], &info);
	}
	free(names);
	return rc;
}

static int
fake_put(void *be, const char *key, const void *data, size_t len,
    unsigned int flags, struct ckpt_error *err)
{
	struct fake *f = be;
	char *copy = strndup(data, len);

	f->calls++;
	if ((flags & CKPT_BE_IF_ABSENT) && ffind(f, key)) {
		free(copy);
		return ckpt_error_set(err, CKPT_ERR_EXISTS, key, -1, "exists");
	}
	fset(f, key, copy);
	free(copy);
	return 0;
}

static int
fake_remove(void *be, const char *key, struct ckpt_error *err)
{
	struct fake *f = be;
	struct fobj *o = ffind(f, key);

	(void)err;
	f->calls++;
	if (o)
		fdel(f, o);
	return 0;
}

static int
fake_lock(void *be, const char *key, const char *content,
    const char *fallback, bool *used_fallback, struct ckpt_error *err)
{
	(void)fallback;
	*used_fallback = false;
	return fake_put(be, key, content, strlen(content), CKPT_BE_IF_ABSENT,
	    err);
}

static int
fake_lock_read(void *be, const char *key, char **text, int64_t *mtime,
    struct ckpt_error *err)
{
	if (mtime)
		*mtime = 1000;
	return fake_read(be, key, 1 << 16, text, NULL, err);
}

static int
fake_unlock(void *be, const char *key, const char *expected,
    struct ckpt_error *err)
{
	struct fake *f = be;
	struct fobj *o = ffind(f, key);

	if (!o)
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, key, -1, "free");
	if (strcmp(o->data, expected))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, key, -1, "not ours");
	fdel(f, o);
	return 0;
}

/* Renames every object under from/ to to/. */
static void
fmove(struct fake *f, const char *from, const char *to)
{
	size_t n = strlen(from);

	for (size_t i = 0; i < f->n; i++) {
		char *k = f->o[i].key, *nk;

		if (strncmp(k, from, n) || k[n] != '/')
			continue;
		ck_assert_int_ge(asprintf(&nk, "%s%s", to, k + n), 0);
		free(k);
		f->o[i].key = nk;
	}
}

static void fake_upload(struct fake *f, const char *stage,
    const char *final);
static void fake_local(const struct fake *f, const char *stage, char *out,
    size_t size);

static int
fake_commit_if_absent(void *be, const char *stage, const char *final,
    struct ckpt_error *err)
{
	struct fake *f = be;

	char local[4400];

	f->calls++;
	if (fdir(f, final))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, final, -1, "exists");
	fake_local(f, stage, local, sizeof(local));
	/* a save's area has a spool; promote's copies are objects already */
	if (f->spool[0] && !access(local, F_OK))
		fake_upload(f, stage, final);
	fmove(f, stage, final);
	return 0;
}

static int
fake_trash(void *be, const char *key, const char *name,
    struct ckpt_error *err)
{
	struct fake *f = be;
	char *to;

	f->calls++;
	if (!fdir(f, key))
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, key, -1, "gone");
	ck_assert_int_ge(asprintf(&to, ".ckpt/trash/%s", name), 0);
	fmove(f, key, to);
	free(to);
	return 0;
}

static int
fake_remove_tree(void *be, const char *key, struct ckpt_error *err)
{
	struct fake *f = be;
	size_t n = strlen(key);

	(void)err;
	f->calls++;
	for (size_t i = 0; i < f->n;)
		if (!strncmp(f->o[i].key, key, n) && (f->o[i].key[n] == '/' ||
		    !f->o[i].key[n]))
			fdel(f, &f->o[i]);
		else
			i++;
	return 0;
}

static int
fake_flush(void *be, const char *prefix, struct ckpt_error *err)
{
	(void)be;
	(void)prefix;
	(void)err;
	return 0;
}

static uint64_t
fake_usage(void *be, const char *key)
{
	struct fake *f = be;
	size_t n = strlen(key);
	uint64_t total = 0;

	for (size_t i = 0; i < f->n; i++)
		if (!strncmp(f->o[i].key, key, n) && f->o[i].key[n] == '/')
			total += f->o[i].len;
	return total;
}

static void
fake_close(void *be)
{
	struct fake *f = be;

	while (f->n)
		fdel(f, &f->o[0]);
	free(f);
}

/* ---- version 2: prefixes and staging ---- */

static int
fake_mkprefix(void *be, const char *key, bool *made, struct ckpt_error *err)
{
	struct fake *f = be;

	(void)key;
	(void)err;
	f->calls++;
	if (made)
		*made = false;	/* prefixes are implicit */
	return 0;
}

static int
fake_rmprefix(void *be, const char *key, struct ckpt_error *err)
{
	struct fake *f = be;

	f->calls++;
	return fdir(f, key) ? ckpt_error_set(err, CKPT_ERR_EXISTS, key, -1,
	    "not empty") : 0;
}

/* The spool directory of a staging key: SPOOL/<its last component>. */
static void
fake_local(const struct fake *f, const char *stage, char *out, size_t size)
{
	const char *slash = strrchr(stage, '/');

	snprintf(out, size, "%s/%s", f->spool, slash ? slash + 1 : stage);
}

static int
fake_stage_record(void *be, const char *stage, const char *record,
    size_t len, bool durable, struct ckpt_error *err)
{
	struct fake *f = be;
	char key[512];
	struct fobj *o;

	(void)durable;
	(void)err;
	f->calls++;
	snprintf(key, sizeof(key), "%s/%s", stage, CKPT_STAGING_NAME);
	if (record) {
		char *copy = strndup(record, len);

		fset(f, key, copy);
		free(copy);
	} else if ((o = ffind(f, key))) {
		fdel(f, o);
	}
	return 0;
}

static int
fake_stage_begin(void *be, const char *dir, const char *name,
    const char *record, size_t len, char **stage, char **local,
    struct ckpt_error *err)
{
	struct fake *f = be;
	char path[4400];

	f->calls++;
	ck_assert_int_ge(asprintf(stage, "%s/%s%s.%u", dir,
	    CKPT_STAGING_PREFIX, name, ++f->nstage), 0);
	fake_local(f, *stage, path, sizeof(path));
	ck_assert_int_eq(mkdir(path, 0700), 0);
	*local = strdup(path);
	return fake_stage_record(be, *stage, record, len, true, err);
}

static int
fake_stage_file(void *be, const char *stage, const char *rel,
    const char *src, unsigned int flags, bool *taken,
    struct ckpt_error *err)
{
	struct fake *f = be;
	char dst[4600], dir[4400];

	f->calls++;
	fake_local(f, stage, dir, sizeof(dir));
	snprintf(dst, sizeof(dst), "%s/%s", dir, rel);
	*taken = false;
	if (flags & CKPT_BE_STAGE_SHARE_ONLY)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, src, -1,
		    "an object store shares no storage with a file");
	if (flags & CKPT_BE_STAGE_TAKE) {
		if (rename(src, dst))
			return ckpt_error_errno(err, src, "cannot take");
		*taken = true;
		return 0;
	}
	return ckpt_copy_file(src, dst, err);
}

static int
fake_stage_untake(void *be, const char *stage, const char *rel,
    const char *dst, struct ckpt_error *err)
{
	struct fake *f = be;
	char from[4600], dir[4400];

	f->calls++;
	fake_local(f, stage, dir, sizeof(dir));
	snprintf(from, sizeof(from), "%s/%s", dir, rel);
	if (access(from, F_OK))
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, from, -1, "back");
	if (!access(dst, F_OK))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, dst, -1, "exists");
	return rename(from, dst) ? ckpt_error_errno(err, dst, "cannot") : 0;
}

static int
fake_stage_sync(void *be, const char *stage, struct ckpt_error *err)
{
	(void)stage;
	(void)err;
	((struct fake *)be)->calls++;
	return 0;
}

/* Removes the spool of stage (flat: save's sources here are files). */
static void
fake_spool_remove(struct fake *f, const char *stage)
{
	char dir[4400], cmd[4500];

	fake_local(f, stage, dir, sizeof(dir));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int
fake_remove_tree(void *be, const char *key, struct ckpt_error *err);

static int
fake_stage_abort(void *be, const char *stage, struct ckpt_error *err)
{
	fake_spool_remove(be, stage);
	return fake_remove_tree(be, stage, err);
}

/* Uploads the spool of stage as final/..., the manifest last. */
static void
fake_upload(struct fake *f, const char *stage, const char *final)
{
	char dir[4400], path[4700], key[600];
	struct dirent *de;
	DIR *d;

	fake_local(f, stage, dir, sizeof(dir));
	for (int manifest = 0; manifest < 2; manifest++) {
		ck_assert_ptr_nonnull(d = opendir(dir));
		while ((de = readdir(d))) {
			char *text;
			size_t len;

			if (de->d_name[0] == '.' || manifest != !strcmp(
			    de->d_name, CKPT_MANIFEST_NAME))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			snprintf(key, sizeof(key), "%s/%s", final, de->d_name);
			ck_assert_int_eq(ckpt_read_file(path, 1 << 20, &text,
			    &len, NULL), 0);
			fset(f, key, text);
			free(text);
		}
		closedir(d);
	}
	fake_spool_remove(f, stage);
}

static int
fake_commit_if_absent(void *be, const char *stage, const char *final,
    struct ckpt_error *err);
static int
fake_trash(void *be, const char *key, const char *name,
    struct ckpt_error *err);

static int
fake_commit_replace(void *be, const char *stage, const char *final,
    const char *trash_name, struct ckpt_error *err)
{
	struct fake *f = be;
	int rc;

	if (fdir(f, final) && (rc = fake_trash(be, final, trash_name, err)))
		return rc;
	return fake_commit_if_absent(be, stage, final, err);
}

/* Version 3: an object copied to another key (and to the mirror). */
static int
fake_copy(void *be, const char *from, const char *to, unsigned int flags,
    bool *shared, struct ckpt_error *err)
{
	struct fake *f = be;
	struct fobj *o = ffind(f, from);
	char path[4600], cmd[9300];

	(void)flags;
	f->calls++;
	f->ncopies++;
	if (shared)
		*shared = false;
	if (!o)
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, from, -1,
		    "absent");
	if (ffind(f, to))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, to, -1, "exists");
	fset(f, to, o->data);
	if (f->mirror[0]) {
		snprintf(path, sizeof(path), "%s/%s", f->mirror, to);
		snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"",
		    path);
		ck_assert_int_eq(system(cmd), 0);
		ck_assert_int_eq(ckpt_write_file_atomic(path, o->data, o->len,
		    NULL), 0);
	}
	return 0;
}

/* The fake backend's operations; close_fn decides what closing does. */
#define FAKE_OPS(close_fn) { \
	.version = CKPT_BACKEND_VERSION, \
	.name = "fake", \
	.close = (close_fn), \
	.read = fake_read, \
	.stat = fake_stat, \
	.list = fake_list, \
	.put = fake_put, \
	.remove = fake_remove, \
	.lock = fake_lock, \
	.lock_read = fake_lock_read, \
	.unlock = fake_unlock, \
	.commit_if_absent = fake_commit_if_absent, \
	.trash = fake_trash, \
	.remove_tree = fake_remove_tree, \
	.flush = fake_flush, \
	.usage = fake_usage, \
	.mkprefix = fake_mkprefix, \
	.rmprefix = fake_rmprefix, \
	.stage_begin = fake_stage_begin, \
	.stage_file = fake_stage_file, \
	.stage_untake = fake_stage_untake, \
	.stage_record = fake_stage_record, \
	.stage_sync = fake_stage_sync, \
	.stage_abort = fake_stage_abort, \
	.commit_replace = fake_commit_replace, \
	.copy = fake_copy, \
}

static const struct ckpt_backend_ops fake_ops = FAKE_OPS(fake_close);

/* The same objects under a second store handle (which does not own them). */
static const struct ckpt_backend_ops fake_ops_noclose =
    FAKE_OPS(fake_close_nothing);

/* A committed checkpoint as save leaves it (summary + manifest). */
static void
fake_ckpt(struct fake *f, const char *run, long step, bool failed)
{
	char key[256], doc[1024];

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"run\":\"%s\",\"step\":%ld,"
	    "\"created\":\"2026-01-01T00:00:%02ldZ\",\"metrics\":{},"
	    "\"size\":10,\"nfiles\":1,\"tags\":[],"
	    "\"validation\":{\"result\":\"%s\"}}", run, step, step % 60,
	    failed ? "failed" : "ok");
	snprintf(key, sizeof(key), "runs/%s/step-%ld/%s", run, step,
	    CKPT_SUMMARY_NAME);
	fset(f, key, doc);
	snprintf(key, sizeof(key), "runs/%s/step-%ld/%s", run, step,
	    CKPT_MANIFEST_NAME);
	fset(f, key, "{\"schema\":1,\"run\":\"x\",\"step\":0,\"files\":[]}");
	snprintf(key, sizeof(key), "runs/%s/step-%ld/model.bin", run, step);
	fset(f, key, "0123456789");
}

/* A path of the fake store's that no filesystem holds. */
#define FAKE_ROOT "/nonexistent/ckpt-unit-fake-store"

START_TEST(test_fake_backend_lock_pins_protection)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct ckpt_protection prot;
	struct ckpt_lock_holder h;
	struct ckpt_store *s, *t;
	struct ckpt_error err;
	const char *why;

	ck_assert_ptr_nonnull(f);
	fake_ckpt(f, "a", 1, false);
	fset(f, "registry/m/v1.json", "{\"run\":\"a\",\"step\":3}");
	fset(f, "registry/m/v2.json", "{\"run\":\"a\"}");
	ck_assert_int_eq(ckpt_store_open_backend(&fake_ops, f, FAKE_ROOT, &s,
	    &err), 0);
	/* pins: written, read back and removed as objects */
	ck_assert_int_eq(ckpt_store_pin(s, "a", 1, "keep", &err), 0);
	ck_assert_ptr_nonnull(ffind(f, ".ckpt/pins/a@1"));
	ck_assert(ckpt_store_is_pinned(s, "a", 1));
	ck_assert(!ckpt_store_is_pinned(s, "a", 2));
	ck_assert_int_eq(ckpt_protection_recheck(s, "a", 1, &why, &err), 0);
	ck_assert_str_eq(why, "pinned");
	/* the registry: v1 protects a@3; v2 (no step) protects all of a */
	ck_assert_int_eq(ckpt_protection_load(s, &prot, &err), 0);
	ck_assert(ckpt_protection_pinned(&prot, "a", 1));
	ck_assert_ptr_nonnull(ckpt_protection_registry(&prot, "a", 3));
	ck_assert_ptr_nonnull(ckpt_protection_registry(&prot, "a", 7));
	ck_assert_ptr_null(ckpt_protection_registry(&prot, "b", 7));
	ckpt_protection_release(&prot);
	ck_assert_int_eq(ckpt_store_unpin(s, "a", 1, &err), 0);
	ck_assert_int_eq(ckpt_store_unpin(s, "a", 1, &err), CKPT_ERR_NOTFOUND);
	ck_assert(!ckpt_store_is_pinned(s, "a", 1));

	/* the lock: an object created if absent, read, removed if ours */
	ck_assert_int_eq(ckpt_store_lock(s, "fake test", 0, NULL, &err), 0);
	ck_assert_ptr_nonnull(ffind(f, ".ckpt/lock"));
	ck_assert_int_eq(ckpt_store_lock_holder(s, &h, &err), 0);
	ck_assert_int_eq(h.pid, getpid());
	ck_assert_str_eq(h.purpose, "fake test");
	{
		/* a second handle on the same objects: held by a live pid */
		struct fake *g = f;

		ck_assert_int_eq(ckpt_store_open_backend(&fake_ops_noclose, g,
		    FAKE_ROOT, &t, &err), 0);
		ck_assert_int_eq(ckpt_store_lock(t, "other", 20, NULL, &err),
		    CKPT_ERR_LOCKED);
		ck_assert_ptr_nonnull(strstr(err.message, "fake test"));
		ckpt_store_free(t);
	}
	ckpt_store_unlock(s);
	ck_assert_ptr_null(ffind(f, ".ckpt/lock"));
	ck_assert_uint_gt(f->calls, 10);
	ckpt_store_free(s);
}
END_TEST

/*
 * A whole save through the fake: staged from a local file (taken, given
 * back on failure, taken again), committed by the fake's upload, then
 * listed and found as the newest, every call through the ops table.
 */
static int
take_step(const struct ckpt_entry *e, void *arg)
{
	*(int64_t *)arg = e->step;
	return 1;
}

START_TEST(test_fake_backend_save_list_latest)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct ckpt_save_options o = CKPT_SAVE_OPTIONS_INIT;
	struct ckpt_save *sv;
	struct ckpt_store *s;
	struct ckpt_list *l;
	struct ckpt_error err;
	const char *src;
	const char *srcs[1];
	int64_t newest = -1;
	size_t moved, stranded;

	ck_assert_ptr_nonnull(f);
	snprintf(f->spool, sizeof(f->spool), "%s/spool", unit_tmpdir);
	ck_assert_int_eq(mkdir(f->spool, 0700), 0);
	fake_ckpt(f, "a", 1, false);
	src = unit_write_file("weights.txt", "tensor bytes\n", 13);
	srcs[0] = src;
	ck_assert_int_eq(ckpt_store_open_backend(&fake_ops, f, FAKE_ROOT, &s,
	    &err), 0);
	o.run = "a";
	o.step = 2;
	o.sources = srcs;
	o.nsources = 1;
	o.transfer = CKPT_TRANSFER_MOVE;
	o.nthreads = 1;

	/* a failure gives the taken file back (stage_untake) */
	ck_assert_int_eq(ckpt_save_begin(s, &o, &sv, &err), 0);
	ck_assert_int_ne(access(src, F_OK), 0);
	{
		/* the record is an object from the start */
		bool record = false;

		for (size_t i = 0; i < f->n; i++)
			record |= !strncmp(f->o[i].key, "runs/a/.tmp-step-2.",
			    19) && strstr(f->o[i].key, CKPT_STAGING_NAME);
		ck_assert(record);
	}
	ckpt_save_mark_failed(sv, "test");
	ckpt_save_moves(sv, &moved, &stranded);
	ck_assert_uint_eq(moved, 1);
	ck_assert_uint_eq(stranded, 0);
	ck_assert_int_eq(access(src, F_OK), 0);
	ckpt_save_abort(sv);
	ckpt_save_free(sv);

	/* committed: uploaded, listed, the newest; the source taken */
	ck_assert_int_eq(ckpt_save_begin(s, &o, &sv, &err), 0);
	ck_assert_msg(ckpt_save_finish(sv, NULL, &err) == 0, "%s",
	    err.message);
	ckpt_save_free(sv);
	ck_assert_int_ne(access(src, F_OK), 0);
	ck_assert_ptr_nonnull(ffind(f, "runs/a/step-2/weights.txt"));
	ck_assert_str_eq(ffind(f, "runs/a/step-2/weights.txt")->data,
	    "tensor bytes\n");
	ck_assert_ptr_nonnull(ffind(f, "runs/a/step-2/" CKPT_MANIFEST_NAME));
	ck_assert_ptr_null(ffind(f, "runs/a/step-2/" CKPT_STAGING_NAME));
	for (size_t i = 0; i < f->n; i++)
		ck_assert_msg(!strstr(f->o[i].key, CKPT_STAGING_PREFIX),
		    "left behind: %s", f->o[i].key);
	ck_assert_int_eq(ckpt_store_list(s, "a", CKPT_LIST_STAGING, &l,
	    &err), 0);
	ck_assert_uint_eq(ckpt_list_count(l), 2);
	ck_assert_int_eq(ckpt_list_entry(l, 1)->step, 2);
	ck_assert_uint_eq(ckpt_list_staging_count(l), 0);
	ckpt_list_free(l);
	ck_assert_int_eq(ckpt_store_newest(s, "a", take_step, &newest, &err),
	    1);
	ck_assert_int_eq(newest, 2);

	/* --force through commit_replace: the old one goes to the trash */
	src = unit_write_file("weights.txt", "other bytes\n", 12);
	o.force = true;
	ck_assert_int_eq(ckpt_save_begin(s, &o, &sv, &err), 0);
	ck_assert_msg(ckpt_save_finish(sv, NULL, &err) == 0, "%s",
	    err.message);
	ckpt_save_free(sv);
	ck_assert_str_eq(ffind(f, "runs/a/step-2/weights.txt")->data,
	    "other bytes\n");
	ck_assert(fdir(f, ".ckpt/trash"));

	/* a listing error is an error, never "no checkpoints" */
	f->fail_list = true;
	ck_assert_int_eq(ckpt_store_list(s, "a", 0, &l, &err), CKPT_ERR_IO);
	ck_assert_int_eq(ckpt_store_list(s, NULL, 0, &l, &err), CKPT_ERR_IO);
	ck_assert_int_eq(ckpt_store_newest(s, "a", take_step, &newest, &err),
	    CKPT_ERR_IO);
	f->fail_list = false;
	ckpt_store_free(s);
}
END_TEST

/*
 * The registry through the fake: a save, then a promote with an alias
 * (staged with copy, verified from the mirror, committed with
 * commit_if_absent, vN.json and the history put as objects), an alias
 * move, and a second promote of the same manifest that mints nothing.
 */
START_TEST(test_fake_backend_promote_alias)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct ckpt_save_options o = CKPT_SAVE_OPTIONS_INIT;
	struct ckpt_promote_options po = CKPT_PROMOTE_OPTIONS_INIT;
	struct ckpt_alias_options ao = CKPT_ALIAS_OPTIONS_INIT;
	struct ckpt_promote_result *res = NULL;
	struct ckpt_registry *r = NULL;
	const struct ckpt_reg_alias *a;
	struct ckpt_alias_move mv;
	struct ckpt_save *sv;
	struct ckpt_store *s;
	struct ckpt_error err;
	const char *srcs[1], *aliases[] = { "prod" };
	char src[4400];

	ck_assert_ptr_nonnull(f);
	snprintf(f->spool, sizeof(f->spool), "%s/spool", unit_tmpdir);
	snprintf(f->mirror, sizeof(f->mirror), "%s/fakeroot", unit_tmpdir);
	ck_assert_int_eq(mkdir(f->spool, 0700), 0);
	ck_assert_int_eq(mkdir(f->mirror, 0700), 0);
	srcs[0] = unit_write_file("weights.txt", "tensor bytes\n", 13);
	ck_assert_int_eq(ckpt_store_open_backend(&fake_ops, f, f->mirror, &s,
	    &err), 0);
	o.run = "a";
	o.step = 2;
	o.sources = srcs;
	o.nsources = 1;
	o.transfer = CKPT_TRANSFER_COPY;
	o.nthreads = 1;
	ck_assert_int_eq(ckpt_save_begin(s, &o, &sv, &err), 0);
	ck_assert_msg(ckpt_save_finish(sv, NULL, &err) == 0, "%s",
	    err.message);
	ckpt_save_free(sv);

	po.model = "m";
	po.aliases = aliases;
	po.naliases = 1;
	snprintf(src, sizeof(src), "%s/runs/a/step-2", f->mirror);
	ck_assert_msg(ckpt_promote(s, src, &po, &res, &err) == 0, "%s",
	    err.message);
	ck_assert(res->verified);
	ck_assert(res->created);
	ck_assert_int_eq(res->version, 1);
	ckpt_promote_result_free(res);
	/* the version, its state files and the history: objects */
	ck_assert_str_eq(ffind(f, "registry/m/v1/weights.txt")->data,
	    "tensor bytes\n");
	ck_assert_ptr_nonnull(ffind(f, "registry/m/v1/" CKPT_MANIFEST_NAME));
	ck_assert_ptr_nonnull(ffind(f, "registry/m/v1.json"));
	ck_assert_ptr_nonnull(strstr(ffind(f, "registry/m/aliases.json")->data,
	    "\"prod\""));
	ck_assert_ptr_nonnull(strstr(ffind(f, "registry/.history.jsonl")->data,
	    "\"promote\""));
	ck_assert_uint_ge(f->ncopies, 2);
	for (size_t i = 0; i < f->n; i++)
		ck_assert_msg(strncmp(f->o[i].key, "registry/.staging/", 18),
		    "left behind: %s", f->o[i].key);

	/* an alias set through the same objects */
	ao.op = CKPT_ALIAS_SET;
	ao.model = "m";
	ao.alias = "staging";
	ao.model_version = 1;
	ck_assert_msg(ckpt_registry_alias_op(s, &ao, &mv, &err) == 0, "%s",
	    err.message);
	ck_assert(mv.changed);
	ck_assert_ptr_nonnull(strstr(ffind(f, "registry/m/aliases.json")->data,
	    "\"staging\""));
	ck_assert_int_eq(ckpt_registry_load(s, 0, &r, &err), 0);
	ck_assert_uint_eq(ckpt_registry_record_count(r), 3);
	ck_assert_ptr_nonnull(a = ckpt_registry_find_alias(r, "m", "staging"));
	ck_assert_int_eq(a->version, 1);
	ck_assert_int_eq(ckpt_registry_check_files(s, r, &err), 0);
	ck_assert_uint_eq(ckpt_registry_problem_count(r), 0);
	ckpt_registry_free(r);

	/* the same manifest again: v1 already, nothing new */
	f->ncopies = 0;
	ck_assert_int_eq(ckpt_promote(s, src, &po, &res, &err), 0);
	ck_assert(!res->created);
	ck_assert_int_eq(res->version, 1);
	ckpt_promote_result_free(res);
	ck_assert_uint_eq(f->ncopies, 0);
	ck_assert_ptr_null(ffind(f, "registry/m/v2.json"));
	ckpt_store_free(s);
}
END_TEST

/* The owner rule ls and gc share (owner.c). */
START_TEST(test_owner_state_rule)
{
	struct ckpt_owner o = { 0 };
	json_t *rec;
	pid_t child;

	o.pid = (long)getpid();
	o.start = ckpt_proc_start(o.pid);
	o.host = ckpt_hostname();
	o.boot = ckpt_boot_id();
	o.pidns = ckpt_pid_ns();
	o.machine = ckpt_machine_id();
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_ALIVE);
	o.pidns = NULL;		/* an old record: taken for ours */
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_ALIVE);
	o.pidns = "pid:[1]";	/* another pid namespace: cannot tell */
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_UNKNOWN);
	o.pidns = ckpt_pid_ns();
	o.host = "some-other-host";
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_UNKNOWN);
	o.host = ckpt_hostname();
	o.start = o.start + 1;	/* the pid was reused */
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_GONE);
	o.start = ckpt_proc_start(o.pid);
	if (ckpt_boot_id()[0]) {
		o.boot = "another-boot";
		/* this machine rebooted: gone; another machine: unknown */
		ck_assert_int_eq(ckpt_owner_state(&o), ckpt_machine_id()[0] ?
		    CKPT_OWNER_GONE : CKPT_OWNER_UNKNOWN);
		o.machine = "another-machine";
		ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_UNKNOWN);
		o.boot = ckpt_boot_id();
		o.machine = ckpt_machine_id();
	}
	child = fork();
	ck_assert_int_ge(child, 0);
	if (!child)
		_exit(0);
	ck_assert_int_eq(waitpid(child, NULL, 0), child);
	o.pid = (long)child;
	o.start = 0;
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_GONE);
	o.pid = 0;
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_UNKNOWN);

	/* read from a staging record as save writes it */
	rec = json_pack("{s:I, s:s, s:s, s:s, s:I}", "pid",
	    (json_int_t)getpid(), "host", ckpt_hostname(), "boot",
	    ckpt_boot_id(), "pidns", ckpt_pid_ns(), "start",
	    (json_int_t)ckpt_proc_start((long)getpid()));
	ck_assert_ptr_nonnull(rec);
	ckpt_owner_from_record((const struct json_t *)rec, &o);
	ck_assert_int_eq(o.pid, getpid());
	ck_assert_ptr_null(o.machine);
	ck_assert_int_eq(ckpt_owner_state(&o), CKPT_OWNER_ALIVE);
	json_decref(rec);
}
END_TEST

Suite *
backend_suite(void)
{
	Suite *s = suite_create("backend");

	TCase *tc = tcase_create("posix");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_posix_put_read_stat_remove);
	tcase_add_test(tc, test_posix_links_are_foreign);
	tcase_add_test(tc, test_posix_lock);
	tcase_add_test(tc, test_posix_commit_trash_remove);
	tcase_add_test(tc, test_posix_copy);
	tcase_add_test(tc, test_store_refuses_other_versions_and_remotes);
	suite_add_tcase(s, tc);
	tc = tcase_create("fake");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_fake_backend_lock_pins_protection);
	tcase_add_test(tc, test_owner_state_rule);
	tcase_add_test(tc, test_fake_backend_save_list_latest);
	tcase_add_test(tc, test_fake_backend_promote_alias);
	suite_add_tcase(s, tc);
	return s;
}
