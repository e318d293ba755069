/* SPDX-License-Identifier: MIT */
/*
 * sys.c - facts about this host, user and process that the store records
 * (host name, boot id, process start times for lock and staging owners)
 * and the one ISO 8601 UTC time format of manifests and records.
 */
#include "util/internal.h"

#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

const char *
ckpt_hostname(void)
{
	static char host[256];

	if (!host[0] && gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	return host;
}

const char *
ckpt_boot_id(void)
{
	static char id[64];
	FILE *fp;

	if (id[0])
		return id;
	fp = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!fp)
		return "";
	if (!fgets(id, sizeof(id), fp))
		id[0] = '\0';
	fclose(fp);
	id[strcspn(id, "\n")] = '\0';
	return id;
}

const char *
ckpt_pid_ns(void)
{
	static char ns[64];
	ssize_t n;

	if (ns[0])
		return ns;
	/* Containers on one kernel share the boot id and may share a host
	 * name; a pid means something only within its pid namespace. */
	n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	return ns;
}

const char *
ckpt_machine_id(void)
{
	static char id[64];
	FILE *fp;

	if (id[0])
		return id;
	fp = fopen("/etc/machine-id", "re");
	if (!fp)
		return "";
	if (!fgets(id, sizeof(id), fp))
		id[0] = '\0';
	fclose(fp);
	id[strcspn(id, "\n \t")] = '\0';
	return id;
}

unsigned long long
ckpt_proc_start(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fp = fopen(path, "re");
	if (!fp)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Field 22 is starttime; after ')' come fields 3.. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	start = strtoull(p + 1, NULL, 10);
	return start;
}

bool
ckpt_proc_alive(long pid, unsigned long long start)
{
	unsigned long long now;

	if (pid <= 0)
		return false;
	if (kill((pid_t)pid, 0) && errno == ESRCH)
		return false;
	if (!start)
		return true;
	now = ckpt_proc_start(pid);
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
	struct passwd *pw = getpwuid(getuid());
	const char *u;

	if (pw && pw->pw_name)
		return pw->pw_name;
	u = getenv("USER");
	return u ? u : "unknown";
}
