/* SPDX-License-Identifier: MIT */
/*
 * fuzz-s3.c - the S3 client's two parsers, which read what a remote
 * service or a user's ~/.aws files say: the XML reader (as such and as
 * the ListObjectsV2 page reader) and the INI reader of the shared
 * credentials and config files, also through ckpt_s3_config_load() with
 * the input as both files, and the ListMultipartUploads page reader
 * (gc's view of unfinished uploads).  The input is handed over without a NUL, so
 * that ASan sees any read past its end.
 */
#include "fuzz.h"

#include "store/s3int.h"

static volatile size_t sink;

static int
on_xml(void *arg, const char *path, const char *text, size_t len)
{
	(void)arg;
	sink += fuzz_touch(path) + len;
	if (text && len)
		sink += (unsigned char)text[len - 1];
	return 0;
}

static int
on_entry(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	(void)arg;
	sink += fuzz_touch(key) + (obj ? obj->size + fuzz_touch(obj->etag) : 0);
	return 0;
}

static int
on_upload(void *arg, const struct ckpt_s3_upload *u)
{
	(void)arg;
	sink += fuzz_touch(u->key) + fuzz_touch(u->upload_id) +
	    (size_t)u->initiated;
	return 0;
}

static int
on_ini(void *arg, const char *section, const char *key, const char *value)
{
	(void)arg;
	sink += fuzz_touch(section) + fuzz_touch(key) + fuzz_touch(value);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_s3_config cfg;
	struct ckpt_error err;
	char *copy, *token;
	const char *path;
	bool truncated;

	/* An exact-size heap copy: a read past the end is an ASan error. */
	if (!(copy = malloc(size ? size : 1)))
		return 0;
	memcpy(copy, data, size);
	ckpt_s3_xml_parse(copy, size, "fuzz.xml", on_xml, NULL, &err);
	if (!ckpt_s3_list_parse(copy, size, "fuzz.xml", on_entry, NULL,
	    &truncated, &token, &err)) {
		sink += fuzz_touch(token) + truncated;
		free(token);
	}
	{
		char *km, *im;

		if (!ckpt_s3_uploads_parse(copy, size, "fuzz.xml", on_upload,
		    NULL, &truncated, &km, &im, &err)) {
			sink += fuzz_touch(km) + fuzz_touch(im) + truncated;
			free(km);
			free(im);
		}
	}
	ckpt_s3_ini_parse(copy, size, "fuzz.ini", on_ini, NULL, &err);
	free(copy);

	path = fuzz_write("aws", data, size);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_CONFIG_FILE", path, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	ckpt_s3_config_init(&cfg);
	if (!ckpt_s3_config_load(&cfg, &err))
		sink += fuzz_touch(cfg.endpoint) + fuzz_touch(cfg.region) +
		    fuzz_touch(cfg.access_key) + fuzz_touch(cfg.secret_key);
	ckpt_s3_config_release(&cfg);
	return 0;
}
