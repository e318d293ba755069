/* SPDX-License-Identifier: MIT */
/*
 * secret.h - passphrases for keygen and sign: read from a file or from the
 * terminal with echo off, kept in guarded memory (libsodium) and wiped.
 */
#ifndef CKPT_SECRET_H
#define CKPT_SECRET_H

#include "ckpt.h"

#define PASSPHRASE_MAX 1024

/* Where a passphrase comes from, as keygen and sign take it. */
struct passphrase_src {
	const char *file;	/* --passphrase-file (- for stdin) */
	long long fd;		/* --passphrase-fd, -1 when not given */
	bool insecure;		/* --insecure-permissions */
};

/*
 * Returns the passphrase in sodium_malloc() memory (NUL-terminated, *len
 * bytes without the NUL): the first line of src->file or of file
 * descriptor src->fd (without its newline), or, when neither is given,
 * typed on /dev/tty after prompt (twice when confirm).  Dies with exit 2
 * when there is no terminal to ask, when the passphrase is empty, or when
 * the file is readable by group or others (unless src->insecure), and 3
 * on I/O errors.
 */
char *passphrase_read(const struct passphrase_src *src, const char *prompt,
    bool confirm, size_t *len);

/*
 * Dies (exit 2) when the secret file at path (a key, a passphrase file)
 * can be read or written by group or others, as ssh refuses such a key,
 * unless insecure; a warning then.  0600 or tighter passes.
 */
void check_private_file(const char *path, int fd, const char *what,
    bool insecure);
void passphrase_free(char *p);

#endif /* CKPT_SECRET_H */
