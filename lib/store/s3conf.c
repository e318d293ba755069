/* SPDX-License-Identifier: MIT */
/*
 * s3conf.c - where the S3 client's endpoint, region and credentials come
 * from: the environment variables and the shared ~/.aws/credentials and
 * ~/.aws/config files that the AWS CLI, boto3 and the SDKs use, so that a
 * user's existing setup works unchanged.  The INI reader is strict: a
 * line it cannot read is an error naming the file and byte offset, never
 * a silently different profile.
 */
#include "util/internal.h"

#include <sodium.h>

#include "store/s3.h"
#include "store/store.h"

#define INI_LINE_MAX 4096
#define INI_FILE_MAX (1024 * 1024)

void
ckpt_s3_config_init(struct ckpt_s3_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

static void
free_secret(char **s)
{
	if (*s) {
		sodium_memzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
ckpt_s3_config_release(struct ckpt_s3_config *cfg)
{
	free(cfg->endpoint);
	free(cfg->region);
	free_secret(&cfg->access_key);
	free_secret(&cfg->secret_key);
	free_secret(&cfg->session_token);
	ckpt_s3_config_init(cfg);
}

static int
ini_fail(struct ckpt_error *err, const char *path, const char *text,
    const char *at, const char *what)
{
	return ckpt_error_set(err, CKPT_ERR_FORMAT, path, (int64_t)(at - text),
	    "%s", what);
}

static const char *
trim_left(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static const char *
trim_right(const char *s, const char *e)
{
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	return e;
}

static bool
key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* One "[section]" line; s..e is the line without its end. */
static int
ini_section(const char *text, const char *s, const char *e, const char *path,
    char *section, struct ckpt_error *err)
{
	const char *a, *b;

	if (e[-1] != ']')
		return ini_fail(err, path, text, e - 1, "section header "
		    "without ']'");
	a = trim_left(s + 1, e - 1);
	b = trim_right(a, e - 1);
	if (a == b)
		return ini_fail(err, path, text, s, "empty section name");
	for (const char *c = a; c < b; c++)
		if (*c == '[' || *c == ']')
			return ini_fail(err, path, text, c, "bracket inside a "
			    "section name");
	memcpy(section, a, (size_t)(b - a));
	section[b - a] = '\0';
	return 0;
}

/*
 * One "key = value" line: fills key (with the nested block's parent and a
 * dot in front when nested) and value.
 */
static int
ini_pair(const char *text, const char *s, const char *e, const char *path,
    const char *parent, char *key, char *value, struct ckpt_error *err)
{
	const char *eq = memchr(s, '=', (size_t)(e - s));
	const char *k, *ke, *v;
	size_t pl = parent ? strlen(parent) + 1 : 0;

	if (!eq)
		return ini_fail(err, path, text, s, "line is not "
		    "'key = value', a [section] or a comment");
	k = trim_left(s, eq);
	ke = trim_right(k, eq);
	if (k == ke)
		return ini_fail(err, path, text, s, "empty key");
	for (const char *c = k; c < ke; c++)
		if (!key_char(*c))
			return ini_fail(err, path, text, c, "bad character in "
			    "a key");
	if (pl) {
		memcpy(key, parent, pl - 1);
		key[pl - 1] = '.';
	}
	memcpy(key + pl, k, (size_t)(ke - k));
	key[pl + (size_t)(ke - k)] = '\0';
	v = trim_left(eq + 1, e);
	memcpy(value, v, (size_t)(trim_right(v, e) - v));
	value[trim_right(v, e) - v] = '\0';
	return 0;
}

int
ckpt_s3_ini_parse(const char *text, size_t len, const char *path,
    ckpt_s3_ini_fn fn, void *arg, struct ckpt_error *err)
{
	char section[INI_LINE_MAX], key[2 * INI_LINE_MAX], value[INI_LINE_MAX];
	char parent[INI_LINE_MAX];
	const char *p = text, *end = text + len;
	bool have_section = false, nested = false;
	int rc;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *s;
		bool indented;

		if ((size_t)(e - p) >= INI_LINE_MAX)
			return ini_fail(err, path, text, p, "line too long");
		if (e > p && e[-1] == '\r')
			e--;
		for (s = p; s < e; s++)
			if ((unsigned char)*s < 0x20 && *s != '\t')
				return ini_fail(err, path, text, s, "control "
				    "character or NUL");
		indented = p < e && (*p == ' ' || *p == '\t');
		s = trim_left(p, e);
		e = trim_right(s, e);
		rc = 0;
		if (s == e || *s == '#' || *s == ';') {
			/* blank or comment */
		} else if (*s == '[' && !indented) {
			rc = ini_section(text, s, e, path, section, err);
			have_section = true;
			nested = false;
		} else if (!have_section) {
			rc = ini_fail(err, path, text, s, "setting before the "
			    "first [section]");
		} else if (indented && !nested) {
			rc = ini_fail(err, path, text, s, "indented line "
			    "outside a nested block ('key =' with no value)");
		} else if ((rc = ini_pair(text, s, e, path,
		    indented ? parent : NULL, key, value, err))) {
			/* rc set */
		} else if (!indented && !*value) {
			/* "s3 =": the indented lines after it belong to it */
			nested = true;
			memcpy(parent, key, strlen(key) + 1);
		} else {
			if (!indented)
				nested = false;
			rc = fn(arg, section, key, value);
		}
		if (rc)
			return rc;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/* What one profile says, gathered from the two files. */
struct profile {
	const char *want_cred;		/* "dev" in credentials */
	const char *want_conf;		/* "profile dev" (or "default") */
	bool in_conf;
	char *access_key, *secret_key, *session_token;
	char *region, *endpoint, *addressing;
	char *threshold, *chunksize;	/* s3.multipart_*: sizes */
	struct ckpt_error *err;
};

static int
set_field(char **field, const char *value, struct ckpt_error *err)
{
	char *v = strdup(value);

	if (!v)
		return ckpt_error_nomem(err);
	free_secret(field);
	*field = v;
	return 0;
}

static int
profile_line(void *arg, const char *section, const char *key,
    const char *value)
{
	struct profile *pr = arg;
	struct {
		const char *key;
		char **field;
	} keys[] = {
		{ "aws_access_key_id", &pr->access_key },
		{ "aws_secret_access_key", &pr->secret_key },
		{ "aws_session_token", &pr->session_token },
		{ "region", &pr->region },
		{ "endpoint_url", &pr->endpoint },
		{ "s3.endpoint_url", &pr->endpoint },
		{ "s3.addressing_style", &pr->addressing },
		{ "s3.multipart_threshold", &pr->threshold },
		{ "s3.multipart_chunksize", &pr->chunksize },
	};

	if (strcmp(section, pr->in_conf ? pr->want_conf : pr->want_cred))
		return 0;
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(keys); i++) {
		if (strcmp(key, keys[i].key))
			continue;
		/* The credentials file wins over the config file. */
		if (pr->in_conf && *keys[i].field && i < 3)
			return 0;
		return set_field(keys[i].field, value, pr->err);
	}
	return 0;
}

static int
read_profile_file(const char *path, struct profile *pr,
    struct ckpt_error *err)
{
	char *text;
	size_t len;
	int rc;

	rc = ckpt_read_file(path, INI_FILE_MAX, &text, &len, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		ckpt_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	rc = ckpt_s3_ini_parse(text, len, path, profile_line, pr, err);
	free(text);
	return rc;
}

/* $HOME/.aws/NAME, or the file the environment names; NULL: none. */
static char *
aws_file(const char *env, const char *name)
{
	const char *v = getenv(env), *home = getenv("HOME");
	char *dir, *path;

	if (v && *v)
		return strdup(v);
	if (!home || !*home)
		return NULL;
	if (!(dir = ckpt_join(home, ".aws")))
		return NULL;
	path = ckpt_join(dir, name);
	free(dir);
	return path;
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Path-style for IP addresses and localhost: they have no bucket DNS. */
static bool
endpoint_needs_path_style(const char *endpoint)
{
	const char *h = strstr(endpoint, "://");
	size_t n;

	h = h ? h + 3 : endpoint;
	if (*h == '[')
		return true;
	n = strcspn(h, ":/");
	if (n == 9 && !strncmp(h, "localhost", 9))
		return true;
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
			return false;
	return n > 0;
}

static int
dup_or_keep(char **field, const char *value, struct ckpt_error *err)
{
	return value ? set_field(field, value, err) : 0;
}

static void
profile_release(struct profile *pr)
{
	free_secret(&pr->access_key);
	free_secret(&pr->secret_key);
	free_secret(&pr->session_token);
	free(pr->region);
	free(pr->endpoint);
	free(pr->addressing);
	free(pr->threshold);
	free(pr->chunksize);
}

/*
 * A size as the AWS CLI's S3 settings take it: bytes, or a number with
 * KB, MB, GB, TB (or KiB ... TiB), powers of 1024 as there.
 */
static int
parse_size(const char *what, const char *s, uint64_t *out,
    struct ckpt_error *err)
{
	static const char *const units[] = { "KB", "MB", "GB", "TB" };
	static const char *const iunits[] = { "KiB", "MiB", "GiB", "TiB" };
	uint64_t v = 0, mul = 1;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++)
		if (!ckpt_mul_u64(v, 10, &v) ||
		    !ckpt_add_u64(v, (uint64_t)(*p - '0'), &v))
			goto bad;
	if (p == s)
		goto bad;
	if (*p) {
		size_t i;

		for (i = 0; i < 4; i++)
			if (!strcasecmp(p, units[i]) ||
			    !strcasecmp(p, iunits[i]))
				break;
		if (i == 4)
			goto bad;
		mul = (uint64_t)1024 << (10 * i);
	}
	if (!ckpt_mul_u64(v, mul, &v) || !v)
		goto bad;
	*out = v;
	return 0;
bad:
	return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1, "s3 setting %s "
	    "'%s' is not a size (bytes, or with KB, MB, GB, TB)", what, s);
}

int
ckpt_s3_config_load(struct ckpt_s3_config *cfg, struct ckpt_error *err)
{
	const char *name = env_nonempty("AWS_PROFILE");
	const char *style = env_nonempty("CKPT_S3_ADDRESSING_STYLE");
	char conf_section[INI_LINE_MAX];
	struct profile pr = { .err = err };
	char *cred_path = NULL, *conf_path = NULL;
	uint64_t thr = 0, chunk = 0;
	int n, rc;

	if (!name)
		name = "default";
	n = snprintf(conf_section, sizeof(conf_section), "%s%s",
	    strcmp(name, "default") ? "profile " : "", name);
	if (n < 0 || (size_t)n >= sizeof(conf_section))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "AWS_PROFILE is too long");
	pr.want_cred = name;
	pr.want_conf = conf_section;
	cred_path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	conf_path = aws_file("AWS_CONFIG_FILE", "config");
	rc = 0;
	if (cred_path)
		rc = read_profile_file(cred_path, &pr, err);
	pr.in_conf = true;
	if (!rc && conf_path)
		rc = read_profile_file(conf_path, &pr, err);
	free(cred_path);
	free(conf_path);
	if (rc)
		goto out;

	/* The environment wins over the files, keys as a pair. */
	if (env_nonempty("AWS_ACCESS_KEY_ID") ||
	    env_nonempty("AWS_SECRET_ACCESS_KEY")) {
		free_secret(&pr.access_key);
		free_secret(&pr.secret_key);
		free_secret(&pr.session_token);
	}
	if ((rc = dup_or_keep(&pr.access_key, env_nonempty("AWS_ACCESS_KEY_ID"),
	    err)) ||
	    (rc = dup_or_keep(&pr.secret_key,
	    env_nonempty("AWS_SECRET_ACCESS_KEY"), err)) ||
	    (rc = dup_or_keep(&pr.session_token,
	    env_nonempty("AWS_SESSION_TOKEN"), err)) ||
	    (rc = dup_or_keep(&pr.region, env_nonempty("AWS_DEFAULT_REGION"),
	    err)) ||
	    (rc = dup_or_keep(&pr.region, env_nonempty("AWS_REGION"), err)) ||
	    (rc = dup_or_keep(&pr.endpoint, env_nonempty("AWS_ENDPOINT_URL"),
	    err)) ||
	    (rc = dup_or_keep(&pr.endpoint,
	    env_nonempty("AWS_ENDPOINT_URL_S3"), err)))
		goto out;
	if ((rc = dup_or_keep(&pr.region, pr.region ? NULL : "us-east-1", err)))
		goto out;
	if (!pr.endpoint) {
		char buf[256];

		n = snprintf(buf, sizeof(buf), "https://s3.%s.amazonaws.com",
		    pr.region);
		if (n < 0 || (size_t)n >= sizeof(buf)) {
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "region name too long");
			goto out;
		}
		if ((rc = set_field(&pr.endpoint, buf, err)))
			goto out;
	}
	if (!style)
		style = pr.addressing;
	if (style && strcmp(style, "path") && strcmp(style, "virtual") &&
	    strcmp(style, "auto")) {
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "addressing style '%s' is not path, virtual or auto",
		    style);
		goto out;
	}
	if (pr.threshold && (rc = parse_size("multipart_threshold",
	    pr.threshold, &thr, err)))
		goto out;
	if (pr.chunksize && (rc = parse_size("multipart_chunksize",
	    pr.chunksize, &chunk, err)))
		goto out;
	ckpt_s3_config_release(cfg);
	/* As for the AWS CLI: above the threshold, uploads and copies go
	 * in parts of the chunk size (ckpt_s3_open checks the limits). */
	cfg->multipart_threshold = thr;
	cfg->part_size = chunk;
	cfg->copy_part_size = chunk;
	cfg->path_style = style && !strcmp(style, "path") ? true :
	    style && !strcmp(style, "virtual") ? false :
	    endpoint_needs_path_style(pr.endpoint);
	/* Hand the strings over. */
	cfg->endpoint = pr.endpoint;
	cfg->region = pr.region;
	cfg->access_key = pr.access_key;
	cfg->secret_key = pr.secret_key;
	cfg->session_token = pr.session_token;
	pr.endpoint = pr.region = NULL;
	pr.access_key = pr.secret_key = pr.session_token = NULL;
out:
	profile_release(&pr);
	return rc;
}
