/* SPDX-License-Identifier: MIT */
/*
 * ckpt-cli.h - helpers the ckpt command line shares with libckpt but that
 * are not part of the library's API: parsing of option values ("2d12h",
 * "10G"), reading a YAML/JSON file given on the command line, and the
 * repair of Python's JSON.  Not installed (the Makefile installs ckpt.h
 * only), and not exported from libckpt.so (no CKPT_API: the library is
 * built with -fvisibility=hidden).  The ckpt binary, the unit tests and
 * the fuzz harnesses link libckpt.a, where these ckpt_-prefixed symbols
 * are present.  They may change or go at any release.
 */
#ifndef CKPT_CLI_H
#define CKPT_CLI_H

#include "ckpt.h"

/**
 * Parses a duration: one or more <integer><unit> with units s, m (minutes),
 * h, d, w, e.g. "2d12h", "36h", "1w".  A bare integer is seconds.
 */
CKPT_MUST_CHECK
int ckpt_duration_parse(const char *s, int64_t *seconds,
    struct ckpt_error *err);
/** Writes the shortest form ("2d12h", "0s") into buf; returns buf. */
const char *ckpt_duration_format(int64_t seconds, char *buf,
    size_t len);
/**
 * Parses a size: a number, optionally with a fraction, and an optional
 * binary unit B, K, M, G, T, P (KiB, KB and K are the same).
 */
CKPT_MUST_CHECK
int ckpt_size_parse(const char *s, int64_t *bytes,
    struct ckpt_error *err);

/**
 * Python's json module writes NaN, Infinity and -Infinity as bare words,
 * which strict JSON refuses (Hugging Face's trainer_state.json has them
 * when a loss or gradient norm overflowed).  Returns a copy of the len
 * bytes at in with each such word outside strings replaced by null
 * (caller frees; *outlen gets its length), or NULL when out of memory.
 * *first gets the byte offset of the first word replaced, or -1.
 */
char *ckpt_json_from_python(const char *in, size_t len,
    size_t *outlen, int64_t *first);

/**
 * Reads a YAML or JSON file (chosen by content: JSON when the first
 * non-space byte is '{' or '[') and returns it as compact JSON text, newly
 * allocated (caller frees).  YAML scalars become strings, except plain
 * scalars that read as integers, floats, true/false or null.  Errors give
 * the line and column ("conf.yaml:3:5: mapping values are not allowed").
 */
CKPT_MUST_CHECK
int ckpt_config_to_json(const char *path, char **json,
    struct ckpt_error *err);

#endif
