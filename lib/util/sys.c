/* SPDX-License-Identifier: MIT */
/*
 * sys.c - facts about this host, user and process that the store records
 * (host name, boot id, process start times for lock and staging owners)
 * and the one ISO 8601 UTC time format of manifests and records; and
 * the one way work is spread over threads (ckpt_workers_run).
 */
#include "util/internal.h"

#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/*
 * Host, boot, namespace and machine ids are read once per process, under
 * pthread_once, so that threads of an embedding program may call into the
 * store concurrently: a cache filled lazily without it is a data race.
 */
static char host_cache[256];
static char boot_cache[64];
static char pidns_cache[64];
static char machine_cache[64];
static char user_cache[256];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;
static pthread_once_t pidns_once = PTHREAD_ONCE_INIT;
static pthread_once_t machine_once = PTHREAD_ONCE_INIT;
static pthread_once_t user_once = PTHREAD_ONCE_INIT;

/* The first line of a small file, up to the first of stop; "" on error. */
static void
read_first_line(const char *path, const char *stop, char *buf, size_t len)
{
	FILE *fp = fopen(path, "re");

	buf[0] = '\0';
	if (!fp)
		return;
	if (!fgets(buf, (int)len, fp))
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, stop)] = '\0';
}

static void
load_host(void)
{
	if (gethostname(host_cache, sizeof(host_cache) - 1))
		snprintf(host_cache, sizeof(host_cache), "unknown");
	host_cache[sizeof(host_cache) - 1] = '\0';
}

static void
load_boot(void)
{
	read_first_line("/proc/sys/kernel/random/boot_id", "\n", boot_cache,
	    sizeof(boot_cache));
}

static void
load_pidns(void)
{
	ssize_t n;

	/* Containers on one kernel share the boot id and may share a host
	 * name; a pid means something only within its pid namespace. */
	n = readlink("/proc/self/ns/pid", pidns_cache, sizeof(pidns_cache) - 1);
	pidns_cache[n > 0 ? n : 0] = '\0';
}

static void
load_machine(void)
{
	read_first_line("/etc/machine-id", "\n \t", machine_cache,
	    sizeof(machine_cache));
}

/* getpwuid_r, never getpwuid, whose static result another thread may
 * overwrite; then $USER; then "unknown". */
static void
load_user(void)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	const char *u;

	if (!getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) && res &&
	    res->pw_name)
		u = res->pw_name;
	else
		u = getenv("USER");
	snprintf(user_cache, sizeof(user_cache), "%s", u ? u : "unknown");
}

const char *
ckpt_hostname(void)
{
	pthread_once(&host_once, load_host);
	return host_cache;
}

const char *
ckpt_boot_id(void)
{
	pthread_once(&boot_once, load_boot);
	return boot_cache;
}

const char *
ckpt_pid_ns(void)
{
	pthread_once(&pidns_once, load_pidns);
	return pidns_cache;
}

const char *
ckpt_machine_id(void)
{
	pthread_once(&machine_once, load_machine);
	return machine_cache;
}

/*
 * Fields 3 (state) and 22 (starttime) of /proc/PID/stat; false when
 * there is no such file (no /proc, or no such process).
 */
static bool
proc_stat(long pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return false;
	*state = p[2];
	/* Field 22 is starttime; after ')' come fields 3.. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	*start = p ? strtoull(p + 1, NULL, 10) : 0;
	return true;
}

unsigned long long
ckpt_proc_start(long pid)
{
	unsigned long long start;
	char state;

	return proc_stat(pid, &state, &start) ? start : 0;
}

bool
ckpt_proc_alive(long pid, unsigned long long start)
{
	unsigned long long now = 0;
	char state = 0;

	if (pid <= 0)
		return false;
	if (kill((pid_t)pid, 0) && errno == ESRCH)
		return false;
	/*
	 * A zombie has exited: it holds nothing and writes nothing more,
	 * though its pid stays until its parent reaps it, which a
	 * container's init may never do for a detached save.
	 */
	if (proc_stat(pid, &state, &now) && (state == 'Z' || state == 'X'))
		return false;
	if (!start)
		return true;
	/* A pid reused by another process has another start time. */
	return !now || now == start;
}

void
ckpt_iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ",
	    &tm))
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

int64_t
ckpt_parse_iso_time(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if (!s)
		return -1;
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	if (*end == '.')	/* fractional seconds are allowed, ignored */
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (strcmp(end, "Z"))
		return -1;
	return (int64_t)timegm(&tm);
}

const char *
ckpt_user_name(void)
{
	pthread_once(&user_once, load_user);
	return user_cache;
}

bool
ckpt_cpu_kernel_pick(int *state, const char *env, bool (*cpu_has)(void))
{
	int k = __atomic_load_n(state, __ATOMIC_RELAXED);

	if (!k) {
		const char *e = getenv(env);

		k = cpu_has && !(e && !strcmp(e, "portable")) && cpu_has() ?
		    1 : 2;
		__atomic_store_n(state, k, __ATOMIC_RELAXED);
	}
	return k == 1;
}

void
ckpt_workers_run(unsigned int n, void *(*fn)(void *), void *args,
    size_t size, pthread_t *th)
{
	unsigned int started = 0;

	if (n > 1)
		while (started < n && !pthread_create(&th[started], NULL, fn,
		    (char *)args + started * size))
			started++;
	if (started < 2)
		fn((char *)args + started * size);
	for (unsigned int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}
