/* SPDX-License-Identifier: MIT */
/*
 * sign.c - "ckpt sign": write a detached Ed25519 signature over a
 * checkpoint's manifest, next to it as ckpt-manifest.json.sig (format in
 * ckpt-signature(5)).  The manifest binds the size and SHA-256 of every
 * file and the digest of every tensor, so signing it signs the checkpoint;
 * "ckpt verify" checks the signature whenever it is present.  The secret
 * key defaults to ~/.config/ckpt/ckpt.key (see ckpt-keygen(1)); a
 * passphrase is asked once for all the checkpoints named.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "secret.h"
#include "store.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const sign_usage[] = {
	"ckpt sign [-k seckey] [--passphrase-file file] ref|path ...",
	NULL
};

static bool
is_remote(const char *path)
{
	return !strncmp(path, "s3://", 5);
}

/*
 * A checkpoint in an object store is signed through its store
 * (ckpt_store_sign_checkpoint): the store named by -C or $CKPT_STORE,
 * which the checkpoint must be in.  Refused before anything is asked.
 */
static struct ckpt_store *
remote_store(struct ctx *ctx, struct ckpt_store *store, const char *arg,
    const char *path)
{
	if (!store && ctx->store && is_remote(ctx->store))
		store = store_open(ctx, false);
	if (!store || !is_remote(ckpt_store_root(store)) ||
	    strncmp(path, ckpt_store_root(store),
	    strlen(ckpt_store_root(store))) ||
	    path[strlen(ckpt_store_root(store))] != '/') {
		error("%s: a remote checkpoint is signed in its store: name "
		    "it as RUN@STEP with -C s3://BUCKET/PREFIX (see "
		    "ckpt-sign(1))", arg);
		exit(CKPT_EXIT_USAGE);
	}
	return store;
}

/* The manifest of a checkpoint directory, or the manifest file given. */
static char *
manifest_of(const char *arg)
{
	struct stat st;
	char *m;

	if (stat(arg, &st))
		die_errno("cannot sign '%s'", arg);
	if (!S_ISDIR(st.st_mode))
		return xstrdup(arg);
	m = xasprintf("%s/%s", arg, CKPT_MANIFEST_NAME);
	if (stat(m, &st))
		die("'%s' has no manifest (%s): only committed checkpoints "
		    "can be signed", arg, m);
	return m;
}

static int
cmd_sign_main(int argc, char **argv, struct ctx *ctx)
{
	const char *key = NULL;
	struct passphrase_src src = { .fd = -1 };
	char *keypath, *pass = NULL, tc[256], when[32], **paths;
	struct ckpt_error e;
	struct ckpt_store *store = NULL;
	json_t *doc = NULL, *list = NULL;
	struct ckpt_lock_holder broken = { 0 };
	size_t passlen = 0;
	int nremote = 0;
	bool encrypted;
	struct tm tm;
	time_t now;
	int n;
	const struct opt opts[] = {
		OPT_STRING('k', "key", &key, "seckey", "secret key file "
		    "(default ~/.config/ckpt/ckpt.key)"),
		OPT_STRING(0, "passphrase-file", &src.file, "file",
		    "read the passphrase from the first line of file "
		    "(- for stdin; mode 0600)"),
		OPT_INT(0, "passphrase-fd", &src.fd, "n",
		    "read the passphrase from file descriptor n (for CI)"),
		OPT_BOOL(0, "insecure-permissions", &src.insecure,
		    "accept a secret key or passphrase file that others can "
		    "read"),
		OPT_END()
	};

	n = parse_options(argc, argv, ctx, opts, sign_usage);
	if (!n)
		usage_error(sign_usage, opts, "nothing to sign");
	die_for_incompatible_opts(src.fd >= 0, "--passphrase-fd",
	    src.file != NULL, "--passphrase-file");
	/* Every checkpoint is found (a remote one in its store) before a
	 * passphrase is asked for. */
	paths = xcalloc((size_t)n, sizeof(*paths));
	for (int i = 0; i < n; i++) {
		paths[i] = resolve_checkpoint_arg(ctx, &store, argv[i], NULL,
		    CKPT_METRIC_MIN, NULL);
		if (is_remote(paths[i])) {
			store = remote_store(ctx, store, argv[i], paths[i]);
			nremote++;
		}
	}
	keypath = key ? xstrdup(key) : default_seckey();
	ckpt_error_clear(&e);
	if (ckpt_seckey_encrypted(keypath, &encrypted, &e))
		die_ckpt(&e);
	check_private_file(keypath, -1, "secret key", src.insecure);
	if (encrypted)
		pass = passphrase_read(&src, "Passphrase for the secret "
		    "key: ", false, &passlen);
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The store lock, after the passphrase (never held while one is
	 * typed): no prune removes a remote manifest while it is signed. */
	if (nremote) {
		if (ckpt_store_lock(store, "sign", ctx->lock_timeout_ms,
		    &broken, &e)) {
			passphrase_free(pass);
			die_ckpt(&e);
		}
		warn_broken_lock(&broken);
	}
	if (ctx->json) {
		doc = json_doc_new();
		list = json_array();
	}
	for (int i = 0; i < n; i++) {
		char *path = paths[i];
		bool remote = is_remote(path);
		char *man = remote ? xasprintf("%s/%s", path,
		    CKPT_MANIFEST_NAME) : manifest_of(path);
		char *sig = remote ? NULL : xasprintf("%s.sig", man);
		char keyid[CKPT_KEYID_HEX];
		int rc;

		snprintf(tc, sizeof(tc), "time:%s file:%s", when, argv[i]);
		for (char *c = tc; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = '?';
		if (remote)
			rc = ckpt_store_sign_checkpoint(store, path, keypath,
			    pass, passlen, tc, keyid, &sig, &e);
		else
			rc = ckpt_sign_manifest(keypath, pass, passlen, man,
			    sig, tc, keyid, &e);
		if (rc) {
			if (nremote)
				ckpt_store_unlock(store);
			passphrase_free(pass);
			json_decref(doc);
			json_decref(list);
			die_ckpt(&e);
		}
		if (list) {
			json_t *o = json_object();

			json_object_set_new(o, "manifest", json_string(man));
			json_object_set_new(o, "signature", json_string(sig));
			json_object_set_new(o, "key_id", json_string(keyid));
			json_array_append_new(list, o);
		} else {
			printf("%s: signed by key %s\n", sig, keyid);
		}
		free(man);
		free(sig);
		free(path);
	}
	free(paths);
	if (nremote)
		ckpt_store_unlock(store);
	ckpt_store_free(store);
	passphrase_free(pass);
	free(keypath);
	if (doc) {
		json_object_set_new(doc, "signed", list);
		json_doc_print(doc);
	}
	return CKPT_EXIT_OK;
}

const struct cmd cmd_sign = {
	.name = "sign",
	.summary = "sign checkpoint manifests (Ed25519)",
	.fn = cmd_sign_main,
	.flags = CMD_LOCK,	/* a checkpoint of a remote store */
};
