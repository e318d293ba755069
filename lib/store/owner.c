/* SPDX-License-Identifier: MIT */
/*
 * owner.c - is the process that owns a staging area alive?  One rule for
 * every reader of a staging record: gc (prune.c), which removes what a
 * dead owner left, and ls (list.c), which labels a staging area
 * in-progress or abandoned.  It is the store lock's rule (store.c): only
 * a process of this host and pid namespace can be checked, by pid and
 * start time; a reboot (another boot id on the same machine id) ended
 * it too; anything else cannot be told from here.
 */
#include "util/internal.h"

#include <jansson.h>

#include "store/store.h"

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

void
ckpt_owner_from_record(const struct json_t *rec, struct ckpt_owner *o)
{
	json_t *v;

	memset(o, 0, sizeof(*o));
	v = json_object_get(rec, "pid");
	o->pid = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (long)json_integer_value(v) : 0;
	v = json_object_get(rec, "start");
	o->start = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (unsigned long long)json_integer_value(v) : 0;
	o->host = jstr(rec, "host");
	o->boot = jstr(rec, "boot");
	o->pidns = jstr(rec, "pidns");
	o->machine = jstr(rec, "machine");
}

enum ckpt_owner_state
ckpt_owner_state(const struct ckpt_owner *o)
{
	/* A record without a pid namespace is from before it was written:
	 * taken for ours, as the store lock does. */
	const char *ns = o->pidns && *o->pidns ? o->pidns : ckpt_pid_ns();

	if (!o->host || strcmp(o->host, ckpt_hostname()) || o->pid <= 0 ||
	    strcmp(ns, ckpt_pid_ns()))
		return CKPT_OWNER_UNKNOWN;
	if (o->boot && *o->boot && ckpt_boot_id()[0] && strcmp(o->boot,
	    ckpt_boot_id()))
		return o->machine && *o->machine && ckpt_machine_id()[0] &&
		    !strcmp(o->machine, ckpt_machine_id()) ? CKPT_OWNER_GONE :
		    CKPT_OWNER_UNKNOWN;
	return ckpt_proc_alive(o->pid, o->start) ? CKPT_OWNER_ALIVE :
	    CKPT_OWNER_GONE;
}
