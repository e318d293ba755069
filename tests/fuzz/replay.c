/* SPDX-License-Identifier: MIT */
/*
 * replay.c - main() for the fuzz harnesses outside libFuzzer: feeds each
 * file named on the command line (directories are walked, one level) to
 * LLVMFuzzerTestOneInput().  "make check" runs it over the seed corpus and
 * the saved crashers under the plain and the sanitizer builds, so a fixed
 * crash stays fixed without clang.  -v names each file before it runs, so
 * the last name printed is the culprit of a crash.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static int verbose;

static int
replay_file(const char *path)
{
	unsigned char *buf;
	struct stat st;
	size_t len;
	FILE *fp;

	if (!(fp = fopen(path, "rb")) || fstat(fileno(fp), &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	len = (size_t)st.st_size;
	if (!(buf = malloc(len ? len : 1)) || fread(buf, 1, len, fp) != len) {
		fprintf(stderr, "replay: %s: cannot read\n", path);
		fclose(fp);
		free(buf);
		return -1;
	}
	fclose(fp);
	if (verbose)
		fprintf(stderr, "replay: %s\n", path);
	/* A hang is a bug too: the harness has 10 s per input. */
	alarm(10);
	LLVMFuzzerTestOneInput(buf, len);
	alarm(0);
	free(buf);
	return 0;
}

static int
replay(const char *path, int *count)
{
	struct dirent **names;
	char sub[PATH_MAX];
	struct stat st;
	int n, rc = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	if ((n = scandir(path, &names, NULL, alphasort)) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path,
			    names[i]->d_name);
			if (!stat(sub, &st) && S_ISREG(st.st_mode)) {
				(*count)++;
				if (replay_file(sub))
					rc = -1;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	int count = 0, rc = 0, i = 1;

	if (i < argc && !strcmp(argv[i], "-v")) {
		verbose = 1;
		i++;
	}
	for (; i < argc; i++)
		if (replay(argv[i], &count))
			rc = 1;
	printf("%d inputs\n", count);
	return rc;
}
