/* SPDX-License-Identifier: MIT */
/*
 * util.h - the bottom layer's helpers (util/fs.c, util/sys.c): small file
 * helpers that get durability right once (write-temp, fsync, rename,
 * fsync the directory), path joins, and facts about this host and
 * process.  Every layer above may use them.
 */
#ifndef CKPT_UTIL_H
#define CKPT_UTIL_H

#include "util/internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * buffer (caller frees).  CKPT_ERR_LIMIT when larger. */
/*
 * Reads all of the regular file open on fd, of at most max bytes, into a
 * NUL-terminated buffer (caller frees); fd stays open.  0, or -1 with
 * errno: EINVAL not a regular file, EFBIG larger than max, ENOMEM, or
 * the errno of fstat or read.  A file that shrinks meanwhile gives what
 * is there.  The one read loop of ckpt_read_file, the listing and the
 * POSIX backend.
 */
int ckpt_read_fd(int fd, size_t max, char **out, size_t *len);
int ckpt_read_file(const char *path, size_t max, char **out, size_t *len,
    struct ckpt_error *err);
/*
 * Creates a new file beside path, named path.tmp.XXXXXX with six random
 * characters, with O_CREAT|O_EXCL|O_NOFOLLOW (so never an existing file
 * nor a planted symlink) and mode less the umask.  Returns the open
 * descriptor (>= 0) and *tmp (caller frees), or a negative CKPT_ERR_*.
 * Every temporary file of libckpt is made here.
 */
int ckpt_tempfile(const char *path, mode_t mode, char **tmp,
    struct ckpt_error *err);
/* Writes data to path atomically and durably: a ckpt_tempfile (0644),
 * write, fsync, rename, fsync the directory.  Any fsync error fails. */
int ckpt_write_file_atomic(const char *path, const void *data, size_t len,
    struct ckpt_error *err);
/* The same, durable or not: without the fsyncs it is atomic only (a crash
 * may leave the old content), and never waits for other files' data to
 * reach the disk, as an fsync on ext4 (data=ordered) can. */
int ckpt_write_file_replace(const char *path, const void *data, size_t len,
    bool durable, struct ckpt_error *err);
/* Writes all of buf to fd (loops on short writes and EINTR). */
int ckpt_write_all(int fd, const void *buf, size_t len, const char *path,
    struct ckpt_error *err);
/*
 * A new file written sequentially with O_DIRECT (util/dwrite.c): the
 * bytes given to ckpt_dwrite() are gathered into aligned buffers that a
 * thread of its own writes while the next fills (memory: three buffers
 * of 16 MiB).  ckpt_dwrite_start() takes an empty regular file open for
 * writing at offset 0, or says CKPT_ERR_UNSUPPORTED (nothing changed)
 * when its filesystem cannot do O_DIRECT: write it as usual then.  A
 * filesystem that refuses a direct write later gets the rest buffered.
 * ckpt_dwrite_finish() writes what is left, waits, cuts the file to the
 * bytes given and clears O_DIRECT on fd (complete; the caller still
 * fsyncs), or only stops (!complete, after a failure); it frees w.
 */
struct ckpt_dwrite;
int ckpt_dwrite_start(int fd, const char *path, struct ckpt_dwrite **w,
    struct ckpt_error *err);
int ckpt_dwrite(struct ckpt_dwrite *w, const void *buf, size_t len,
    struct ckpt_error *err);
/* Or without a copy: the free space of the buffer being filled (*room >
 * 0 bytes; NULL when out of memory), then how much of it was filled. */
unsigned char *ckpt_dwrite_space(struct ckpt_dwrite *w, size_t *room,
    struct ckpt_error *err);
int ckpt_dwrite_commit(struct ckpt_dwrite *w, size_t n,
    struct ckpt_error *err);
int ckpt_dwrite_finish(struct ckpt_dwrite *w, bool complete,
    struct ckpt_error *err);
/* fsync of a directory by path. */
int ckpt_fsync_dir(const char *path, struct ckpt_error *err);
/* Parent directory of path, newly allocated. */
char *ckpt_dirname(const char *path);
/* "a" + "/" + "b", newly allocated (NULL on ENOMEM). */
char *ckpt_join(const char *a, const char *b);
/* This host's name (static buffer). */
const char *ckpt_hostname(void);
/* The kernel boot id, "" when unknown (static buffer). */
const char *ckpt_boot_id(void);
/* Start time of a process in clock ticks since boot, 0 when unknown. */
unsigned long long ckpt_proc_start(long pid);
/* Whether pid on this host is alive (a zombie is not) and started at
 * start (0: any). */
bool ckpt_proc_alive(long pid, unsigned long long start);
/* "2026-11-27T15:04:05Z" into buf (>= 32 bytes). */
void ckpt_iso_time(int64_t t, char *buf, size_t len);
/* Parses that form back; -1 when malformed. */
int64_t ckpt_parse_iso_time(const char *s);
/* Sets err (CKPT_ERR_IO, sys_errno EINTR) to "what: interrupted by SIGx"
 * for the pending signal (interrupt.c); returns the code. */
int ckpt_error_interrupted(struct ckpt_error *err, const char *what);
/* /proc/self/ns/pid as "pid:[4026531836]", "" when unknown (static). */
const char *ckpt_pid_ns(void);
/* /etc/machine-id, "" when unknown (static). */
const char *ckpt_machine_id(void);
/* Login name of the user, static or from getenv. */
const char *ckpt_user_name(void);
/* Whether to run a CPU-specific kernel, decided once per process: yes
 * when cpu_has (may be NULL: not built) says the CPU has it and the
 * environment variable env does not say "portable".  *state is the
 * caller's: 0 not decided, 1 fast, 2 portable; storing 0 asks again
 * (the tests' way to switch kernels). */
bool ckpt_cpu_kernel_pick(int *state, const char *env, bool (*cpu_has)(void));
/*
 * Runs fn on n workers and returns when all are done: worker i gets
 * args + i * size (size 0: every worker gets args).  With n > 1 the
 * caller only starts them and waits, th (room for n) holding their
 * ids: Linux places a new thread on its creator's CPU, and a creator
 * that went on to work kept it waiting there for the load balancer,
 * about 2 ms on a 2-core VM, before it moved to the idle core.  The
 * caller works itself with n <= 1, or when fewer than two threads
 * could start: then as worker "started" (alone, or beside the one).
 */
void ckpt_workers_run(unsigned int n, void *(*fn)(void *), void *args,
    size_t size, pthread_t *th);

#endif /* CKPT_UTIL_H */
