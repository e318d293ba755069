/* SPDX-License-Identifier: MIT */
/*
 * keygen.c - "ckpt keygen": make an Ed25519 key pair for signing manifests
 * (formats in ckpt-signature(5)).  Writes PREFIX.pub and PREFIX.key, the
 * secret key mode 0600, never over an existing file; the default prefix is
 * $XDG_CONFIG_HOME/ckpt/ckpt (~/.config/ckpt/ckpt), which is also where
 * "ckpt sign" looks for its key.  A passphrase is asked on the terminal
 * unless --passphrase-file or --no-passphrase says otherwise: an
 * unprotected secret key has to be a decision, not an accident.  When a
 * store is given (-C or CKPT_STORE) the public key is also installed as
 * STORE/.ckpt/keys/KEYID.pub, where "ckpt verify" finds trusted keys.
 */
#include "ckpt.h"
#include "output.h"
#include "parse-options.h"
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const keygen_usage[] = {
	"ckpt keygen [-o prefix] [--passphrase-file file | --no-passphrase]",
	NULL
};

static char *
default_prefix(void)
{
	const char *cfg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *dir;

	if (cfg && *cfg == '/') {
		mkdir(cfg, 0700);	/* as ~/.config below, when missing */
		dir = xasprintf("%s/ckpt", cfg);
	} else if (home && *home == '/') {
		char *c = xasprintf("%s/.config", home);

		mkdir(c, 0700);
		free(c);
		dir = xasprintf("%s/.config/ckpt", home);
	} else {
		die_usage("no HOME: give -o PREFIX");
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		die_errno("cannot create '%s'", dir);
	{
		char *p = xasprintf("%s/ckpt", dir);

		free(dir);
		return p;
	}
}

/* Copies the public key into STORE/.ckpt/keys/KEYID.pub. */
static char *
install_in_store(const char *store, const char *pub, const char *keyid)
{
	char *dir = xasprintf("%s/.ckpt", store), *dst = NULL;
	char buf[4096];
	struct stat st;
	ssize_t n;
	int in, out;

	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		warning("'%s' is not a store; public key not installed",
		    store);
		free(dir);
		return NULL;
	}
	free(dir);
	dir = xasprintf("%s/.ckpt/keys", store);
	if (mkdir(dir, 0755) && errno != EEXIST)
		die_errno("cannot create '%s'", dir);
	dst = xasprintf("%s/%s.pub", dir, keyid);
	free(dir);
	in = open(pub, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		die_errno("cannot open '%s'", pub);
	n = read(in, buf, sizeof(buf));
	close(in);
	if (n <= 0)
		die_errno("cannot read '%s'", pub);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0)
		die_errno("cannot create '%s'", dst);
	if (write(out, buf, (size_t)n) != n || fsync(out) || close(out))
		die_errno("cannot write '%s'", dst);
	return dst;
}

static int
cmd_keygen_main(int argc, char **argv, struct ctx *ctx)
{
	const char *prefix = NULL;
	struct passphrase_src src = { .fd = -1 };
	bool nopass = false;
	char *pre, *pub, *sec, *pass = NULL, *installed = NULL;
	char keyid[CKPT_KEYID_HEX];
	struct ckpt_error e;
	size_t passlen = 0;
	int rc;
	const struct opt opts[] = {
		OPT_STRING('o', "output", &prefix, "prefix", "write "
		    "PREFIX.pub and PREFIX.key (default "
		    "~/.config/ckpt/ckpt)"),
		OPT_STRING(0, "passphrase-file", &src.file, "file",
		    "read the passphrase from the first line of file "
		    "(- for stdin; mode 0600)"),
		OPT_INT(0, "passphrase-fd", &src.fd, "n",
		    "read the passphrase from file descriptor n (for CI)"),
		OPT_BOOL(0, "insecure-permissions", &src.insecure,
		    "accept a passphrase file that others can read"),
		OPT_BOOL(0, "no-passphrase", &nopass, "leave the secret key "
		    "unencrypted"),
		OPT_END()
	};

	if (parse_options(argc, argv, ctx, opts, keygen_usage))
		usage_error(keygen_usage, opts, "keygen takes no arguments");
	die_for_incompatible_opts(src.file != NULL, "--passphrase-file",
	    nopass, "--no-passphrase");
	die_for_incompatible_opts(src.fd >= 0, "--passphrase-fd", nopass,
	    "--no-passphrase");
	die_for_incompatible_opts(src.fd >= 0, "--passphrase-fd",
	    src.file != NULL, "--passphrase-file");
	if (src.fd < -1)
		usage_error(keygen_usage, opts, "--passphrase-fd wants a "
		    "descriptor number");
	pre = prefix ? xstrdup(prefix) : default_prefix();
	pub = xasprintf("%s.pub", pre);
	sec = xasprintf("%s.key", pre);
	if (!nopass)
		pass = passphrase_read(&src, "Passphrase for the new "
		    "secret key: ", true, &passlen);
	ckpt_error_clear(&e);
	rc = ckpt_keygen(pub, sec, pass, passlen, keyid, &e);
	passphrase_free(pass);
	if (rc)
		die_ckpt(&e);
	if (ctx->store)
		installed = install_in_store(ctx->store, pub, keyid);
	if (ctx->json) {
		json_t *doc = json_doc_new();

		json_object_set_new(doc, "key_id", json_string(keyid));
		json_object_set_new(doc, "public_key", json_string(pub));
		json_object_set_new(doc, "secret_key", json_string(sec));
		json_object_set_new(doc, "encrypted", json_boolean(!nopass));
		json_object_set_new(doc, "store_key", installed ?
		    json_string(installed) : json_null());
		json_doc_print(doc);
	} else {
		printf("key id:     %s\npublic key: %s\nsecret key: %s%s\n",
		    keyid, pub, sec, nopass ? " (no passphrase)" : "");
		if (installed)
			printf("trusted by: %s\n", installed);
	}
	free(installed);
	free(pre);
	free(pub);
	free(sec);
	return CKPT_EXIT_OK;
}

const struct cmd cmd_keygen = {
	.name = "keygen",
	.summary = "make an Ed25519 key pair for signing manifests",
	.fn = cmd_keygen_main,
};
