/* SPDX-License-Identifier: MIT */
/*
 * save.c - placeholder for the commit protocol (being written).
 */
#include "internal.h"

int
ckpt_save_begin(struct ckpt_store *s, const struct ckpt_save_opts *opts,
    struct ckpt_save **out, struct ckpt_error *err)
{
	(void)s;
	(void)opts;
	(void)out;
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
	    "saving is not implemented yet");
}

int
ckpt_save_finish(struct ckpt_save *sv, struct ckpt_lock_holder *broken,
    struct ckpt_error *err)
{
	(void)sv;
	(void)broken;
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
	    "saving is not implemented yet");
}

void
ckpt_save_free(struct ckpt_save *sv)
{
	(void)sv;
}

const char *
ckpt_save_path(const struct ckpt_save *sv)
{
	(void)sv;
	return NULL;
}

const char *
ckpt_save_manifest_digest(const struct ckpt_save *sv)
{
	(void)sv;
	return NULL;
}

void
ckpt_save_mark_failed(struct ckpt_save *sv, const char *msg)
{
	(void)sv;
	(void)msg;
}

int
ckpt_status_write(const char *dir, const char *json, struct ckpt_error *err)
{
	(void)dir;
	(void)json;
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
	    "not implemented yet");
}

int
ckpt_config_to_json(const char *path, char **json, struct ckpt_error *err)
{
	(void)json;
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, path, -1,
	    "not implemented yet");
}
