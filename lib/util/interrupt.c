/* SPDX-License-Identifier: MIT */
/*
 * interrupt.c - SIGINT, SIGTERM and SIGHUP in the middle of a store
 * operation (ckpt_interrupt_install(3) in ckpt.h).
 *
 * A program that opts in gets a handler that does one of two things, both
 * async-signal-safe: outside a held section it restores the default
 * action and re-raises, so the process dies of the signal as it would
 * have; inside one (the store lock is held, or a --move save has the
 * user's files in its staging directory) it only records the signal.  The
 * code in the section polls ckpt_interrupt_pending() between steps and in
 * its long loops (copy, hash, lock wait), unwinds as a failure does (moves
 * back, marks the staging record, removes the lock), and the release of
 * the outermost section re-raises the recorded signal: the exit status is
 * the conventional one (130 for SIGINT in a shell).
 *
 * No self-pipe is needed: nothing in a held section blocks without a
 * timeout (the lock wait sleeps in short steps; nanosleep returns EINTR).
 */
#include "util/internal.h"

#include <signal.h>

#include "util/util.h"

static volatile sig_atomic_t hold_depth;
static volatile sig_atomic_t pending;

static const int caught[] = { SIGINT, SIGTERM, SIGHUP };

static void
die_of(int sig)
{
	/* signal() and raise() are async-signal-safe. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
on_signal(int sig)
{
	int saved = errno;

	if (hold_depth > 0)
		pending = sig;
	else
		die_of(sig);
	errno = saved;
}

void
ckpt_interrupt_install(void)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(caught); i++)
		sigaddset(&sa.sa_mask, caught[i]);
	/* No SA_RESTART: a sleep in a lock wait returns early, and loops
	 * retry EINTR anyway. */
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(caught); i++) {
		/* nohup(1) and friends ignore SIGHUP: keep it ignored. */
		if (!sigaction(caught[i], NULL, &old) &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(caught[i], &sa, NULL);
	}
}

void
ckpt_interrupt_hold(void)
{
	hold_depth = hold_depth + 1;
}

void
ckpt_interrupt_release(void)
{
	int sig;

	if (hold_depth > 0)
		hold_depth = hold_depth - 1;
	if (hold_depth > 0 || !(sig = pending))
		return;
	pending = 0;
	die_of(sig);
}

int
ckpt_interrupt_pending(void)
{
	return pending;
}

int
ckpt_error_interrupted(struct ckpt_error *err, const char *what)
{
	int sig = ckpt_interrupt_pending();
	int rc = ckpt_error_set(err, CKPT_ERR_IO, NULL, -1, "%s: interrupted "
	    "by %s", what, sig == SIGINT ? "SIGINT" : sig == SIGTERM ?
	    "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal");

	if (err)
		err->sys_errno = EINTR;
	return rc;
}
