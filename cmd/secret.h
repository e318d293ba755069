/* SPDX-License-Identifier: MIT */
/*
 * secret.h - passphrases for keygen and sign: read from a file or from the
 * terminal with echo off, kept in guarded memory (libsodium) and wiped.
 */
#ifndef CKPT_SECRET_H
#define CKPT_SECRET_H

#include "ckpt.h"

#define PASSPHRASE_MAX 1024

/*
 * Returns the passphrase in sodium_malloc() memory (NUL-terminated, *len
 * bytes without the NUL): the first line of file (without its newline), or,
 * when file is NULL, typed on /dev/tty after prompt (twice when confirm).
 * Dies with exit 2 when there is no terminal to ask, or 3 on I/O errors.
 */
char *passphrase_read(const char *file, const char *prompt, bool confirm,
    size_t *len);
void passphrase_free(char *p);

/* ~/.config/ckpt/ckpt.key (or under $XDG_CONFIG_HOME), newly allocated;
 * dies with exit 2 when there is no HOME. */
char *default_seckey(void);

#endif /* CKPT_SECRET_H */
