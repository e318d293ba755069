/* SPDX-License-Identifier: MIT */
/*
 * secret.c - passphrase input for keygen and sign.  The passphrase never
 * lives in ordinary heap or stack buffers: it is read byte by byte into
 * sodium_malloc() memory (guarded pages, locked, wiped on free), and the
 * terminal's echo is restored whatever happens.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

static char *
alloc_secret(void)
{
	char *p;

	if (sodium_init() < 0)
		die("libsodium failed to initialise");
	p = sodium_malloc(PASSPHRASE_MAX + 1);
	if (!p)
		die("out of memory for the passphrase");
	return p;
}

/* Reads one line from fd into p; returns its length, -1 on error. */
static ssize_t
read_line(int fd, char *p)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || c == '\n')
			break;
		if (n == PASSPHRASE_MAX) {
			errno = E2BIG;
			return -1;
		}
		p[n++] = c;
	}
	if (n && p[n - 1] == '\r')
		n--;
	p[n] = '\0';
	return (ssize_t)n;
}

static ssize_t
ask(int tty, const char *prompt, char *p)
{
	struct termios old, quiet;
	ssize_t n;
	bool restore;

	if (write(tty, prompt, strlen(prompt)) < 0)
		return -1;
	restore = !tcgetattr(tty, &old);
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(tty, TCSAFLUSH, &quiet);
	}
	n = read_line(tty, p);
	if (restore)
		tcsetattr(tty, TCSAFLUSH, &old);
	return n;
}

void
check_private_file(const char *path, int fd, const char *what, bool insecure)
{
	struct stat st;

	if (fd >= 0 ? fstat(fd, &st) : stat(path, &st))
		die_errno("cannot stat %s '%s'", what, path);
	/* A pipe or a terminal holds nothing for others to read later. */
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 077))
		return;
	if (insecure) {
		warning("%s '%s' is readable by others (mode %04o)", what,
		    path, (unsigned)(st.st_mode & 07777));
		return;
	}
	fflush(stdout);
	fprintf(stderr, "ckpt: %s '%s' is accessible by group or others "
	    "(mode %04o); refusing to use it\n"
	    "hint: chmod 600 '%s', or give --insecure-permissions\n", what,
	    path, (unsigned)(st.st_mode & 07777), path);
	exit(CKPT_EXIT_USAGE);
}

char *
passphrase_read(const struct passphrase_src *src, const char *prompt,
    bool confirm, size_t *len)
{
	const char *file = src->file;
	char *p = alloc_secret();
	ssize_t n;

	if (src->fd >= 0) {
		if (src->fd > INT_MAX)
			die_usage("--passphrase-fd %lld: no such descriptor",
			    src->fd);
		n = read_line((int)src->fd, p);
		if (n < 0)
			die_errno("cannot read the passphrase from descriptor "
			    "%lld", src->fd);
	} else if (file) {
		int fd = !strcmp(file, "-") ? 0 : open(file,
		    O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			die_errno("cannot open passphrase file '%s'", file);
		if (fd)
			check_private_file(file, fd, "passphrase file",
			    src->insecure);
		n = read_line(fd, p);
		if (fd)
			close(fd);
		if (n < 0)
			die_errno("cannot read passphrase file '%s'", file);
	} else {
		int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);

		if (tty < 0)
			die_usage("no terminal to ask for a passphrase: give "
			    "--passphrase-file%s", confirm ?
			    " or --no-passphrase" : "");
		n = ask(tty, prompt, p);
		if (n >= 0 && confirm) {
			char *q = alloc_secret();
			ssize_t m = ask(tty, "Repeat the passphrase: ", q);

			if (m != n || sodium_memcmp(p, q, (size_t)n)) {
				sodium_free(q);
				sodium_free(p);
				close(tty);
				/* A refused request, not a usage error. */
				error("the passphrases do not match");
				exit(CKPT_EXIT_USAGE);
			}
			sodium_free(q);
		}
		close(tty);
		if (n < 0)
			die_errno("cannot read the passphrase");
	}
	if (n == 0) {
		sodium_free(p);
		die_usage("empty passphrase refused%s", confirm ? "; for a key "
		    "without one, give --no-passphrase" : "");
	}
	*len = (size_t)n;
	return p;
}

void
passphrase_free(char *p)
{
	if (p)
		sodium_free(p);
}

char *
default_seckey(void)
{
	const char *cfg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (cfg && *cfg == '/')
		return xasprintf("%s/ckpt/ckpt.key", cfg);
	if (home && *home == '/')
		return xasprintf("%s/.config/ckpt/ckpt.key", home);
	die_usage("no HOME: give -k SECKEY");
}
