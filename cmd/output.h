/* SPDX-License-Identifier: MIT */
/*
 * output.h - rendering helpers shared by the commands: human sizes, aligned
 * tables, colour, the --json envelope, progress on stderr.
 */
#ifndef CKPT_OUTPUT_H
#define CKPT_OUTPUT_H

#include <jansson.h>

#include "ckpt.h"

/* "0 B", "512 B", "1.5 KiB", "12.0 GiB" into buf (>= 16 bytes). */
const char *human_size(uint64_t n, char *buf, size_t len);
/* "1,234,567" into buf (>= 32 bytes). */
const char *human_count(uint64_t n, char *buf, size_t len);
/* "2026-11-27 15:04:05Z" (UTC) into buf (>= 32 bytes). */
const char *human_time(int64_t unix_seconds, char *buf, size_t len);

/* --json times: "2026-11-27T15:04:05Z" (ISO 8601, UTC); null for 0. */
json_t *json_time(int64_t unix_seconds);

/* A table of strings printed with aligned columns. */
enum col_align { COL_LEFT = 0, COL_RIGHT = 1 };

struct table {
	size_t ncols;
	const char **headers;
	enum col_align *align;
	char **cells;		/* nrows * ncols, owned */
	size_t nrows;
	size_t *width;		/* of each column so far */
};

void table_init(struct table *t, size_t ncols, const char **headers,
    const enum col_align *align);
/* Adds a row; takes ncols strings (copied); NULL prints as "". */
void table_add(struct table *t, ...);
void table_add_row(struct table *t, const char **cells);
/* Prints the header (bold on a colour tty) and the rows to fp. */
void table_print(const struct table *t, FILE *fp, const struct ctx *ctx);
void table_release(struct table *t);
/*
 * A long table without keeping its rows: table_measure() every row, then
 * table_print_header() and table_print_row() each row again, as
 * table_print() would have printed them.
 */
void table_measure(struct table *t, const char *const *cells);
void table_print_header(const struct table *t, FILE *fp,
    const struct ctx *ctx);
void table_print_row(const struct table *t, FILE *fp,
    const char *const *cells);

/* ANSI colour around s when ctx->color, else s; returns a static buffer
 * for one use at a time per colour. */
enum color { COLOR_NONE, COLOR_RED, COLOR_GREEN, COLOR_YELLOW, COLOR_BOLD,
    COLOR_DIM };
void fputs_color(const struct ctx *ctx, enum color c, const char *s,
    FILE *fp);

/* A real as the shortest text that reads back the same ("0.9"). */
void print_real(FILE *fp, double v);

/* A new JSON object with "schema": 1. */
json_t *json_doc_new(void);
/* Prints doc as one sorted, indented document on stdout and frees it. */
void json_doc_print(json_t *doc);
/* Prints v on stdout as json_doc_print would at nesting depth (for a
 * document streamed piece by piece); does not free it. */
void json_print_value(json_t *v, int depth);
/*
 * A document streamed a member at a time in json_doc_print's layout (the
 * caller gives the keys in sorted order): json_stream_begin, then for
 * each member json_stream_key (or json_stream_item in an array) and its
 * value printed at depth + 1 (json_print_value, json_print_text or a
 * nested stream), or json_stream_put; then json_stream_end.
 */
struct json_stream {
	int depth;
	bool array, any;
};

void json_stream_begin(struct json_stream *s, int depth, bool array);
void json_stream_key(struct json_stream *s, const char *key);
void json_stream_item(struct json_stream *s);
/* A member (key ignored in an array) whose value v is printed and freed. */
void json_stream_put(struct json_stream *s, const char *key, json_t *v);
/* Members of plain values, printed as json_stream_put would print the
 * jansson value (a NULL string and a NaN print null). */
void json_stream_string(struct json_stream *s, const char *key,
    const char *v);
void json_stream_int(struct json_stream *s, const char *key, json_int_t v);
void json_stream_bool(struct json_stream *s, const char *key, bool v);
void json_stream_real(struct json_stream *s, const char *key, double v);
/* A member whose value is the array of the n strings v. */
void json_stream_strings(struct json_stream *s, const char *key,
    const char *const *v, size_t n);
void json_stream_end(struct json_stream *s);
/*
 * Prints a JSON text as json_print_value(json_loads(text, JSON_DECODE_ANY),
 * depth) would, without building it; returns false, having printed
 * nothing, for a text it does not handle that way (the caller then parses
 * it).
 */
bool json_print_text(const char *text, int depth);
/*
 * Reading such a text without a parse: whether json_print_text handles it
 * (a valid JSON text whose parse jansson would give the same way); then
 * the members of the object (or items of the array) at offset at, each as
 * the offsets of its key's quote (SIZE_MAX in an array), its value and
 * the end of its value, in text order, *out malloc'd; and the string at a
 * key's or value's quote, decoded, malloc'd.
 */
struct json_text_child {
	size_t key, value, end;
};

bool json_text_valid(const char *text);
size_t json_text_children(const char *text, size_t at,
    struct json_text_child **out);
char *json_text_string(const char *text, size_t at);
/* "sha256:<hex>" */
json_t *json_digest(const char *algo, const unsigned char *d, size_t len);

/*
 * Progress on stderr: shown only when stderr is a terminal that takes
 * escapes (ctx->progress), verbosity >= 1, and the work has taken more
 * than about a second.
 */
struct progress {
	const char *label;
	uint64_t total, done;
	double start, last;
	bool enabled, shown;
};

void progress_start(struct progress *p, const struct ctx *ctx,
    const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_stop(struct progress *p);
/* The library's ckpt_progress_fn, data a struct progress: takes the
 * total the library reports (it may grow) and updates. */
void progress_callback(uint64_t done, uint64_t total, void *data);

/* Monotonic seconds. */
double now_seconds(void);

#endif /* CKPT_OUTPUT_H */
