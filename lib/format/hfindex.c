/* SPDX-License-Identifier: MIT */
/*
 * hfindex.c - JSON files: Hugging Face shard indexes (*.index.json, whose
 * weight_map is later checked against the shards by checkpoint.c) and
 * plain JSON documents (config.json, trainer_state.json), whose content
 * becomes the file's metadata.  Parsed with jansson, duplicate keys
 * refused; the byte offset of a syntax error is jansson's.  Python's
 * NaN and Infinity are read as null, with an info finding.
 */
#include "util/internal.h"

#include <jansson.h>

#include "format/file.h"

/* Larger JSON files are listed but not parsed. */
#define JSON_MAX_BYTES (64u << 20)

char *
ckpt_json_from_python(const char *in, size_t len, size_t *outlen,
    int64_t *first)
{
	static const char *const words[] = { "NaN", "-Infinity", "Infinity" };
	/* "NaN" (3 bytes) becomes "null" (4): at most 4/3 the length. */
	char *out = malloc(len + len / 3 + 1);
	bool in_string = false;
	size_t o = 0;

	*first = -1;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		size_t k;

		if (in_string) {
			out[o++] = in[i];
			if (in[i] == '\\' && i + 1 < len)
				out[o++] = in[++i];
			else if (in[i] == '"')
				in_string = false;
			continue;
		}
		in_string = in[i] == '"';
		for (k = 0; k < CKPT_ARRAY_SIZE(words); k++)
			if (len - i >= strlen(words[k]) &&
			    !memcmp(in + i, words[k], strlen(words[k])))
				break;
		if (k == CKPT_ARRAY_SIZE(words)) {
			out[o++] = in[i];
			continue;
		}
		if (*first < 0)
			*first = (int64_t)i;
		memcpy(out + o, "null", 4);
		o += 4;
		i += strlen(words[k]) - 1;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/*
 * Parses f as JSON; a document that is JSON only once Python's NaN and
 * Infinity are read as null gets an info finding and is returned so.
 */
static int
load(struct ckpt_file *f, json_t **out, json_error_t *jerr,
    struct ckpt_error *err)
{
	char *buf, *py;
	size_t pylen;
	int64_t first;
	int rc;

	if (f->size > JSON_MAX_BYTES)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, f->path, -1,
		    "JSON file of %llu bytes is larger than the %u-byte limit",
		    (unsigned long long)f->size, JSON_MAX_BYTES);
	buf = malloc(f->size ? (size_t)f->size : 1);
	if (!buf)
		return ckpt_error_nomem(err);
	if ((rc = ckpt_file_pread(f, buf, (size_t)f->size, 0, err))) {
		free(buf);
		return rc;
	}
	*out = json_loadb(buf, (size_t)f->size, JSON_REJECT_DUPLICATES, jerr);
	if (*out) {
		free(buf);
		return CKPT_OK;
	}
	py = ckpt_json_from_python(buf, (size_t)f->size, &pylen, &first);
	free(buf);
	if (!py)
		return ckpt_error_nomem(err);
	if (first >= 0) {
		json_error_t pyerr;

		*out = json_loadb(py, pylen, JSON_REJECT_DUPLICATES, &pyerr);
		if (*out && (rc = ckpt_file_add_finding(f, "json-python-number",
		    CKPT_SEV_INFO, NULL, first, "NaN or Infinity at byte "
		    "%lld: Python's json extension, not standard JSON; read "
		    "as null", (long long)first))) {
			json_decref(*out);
			*out = NULL;
			free(py);
			return rc;
		}
	}
	free(py);
	return *out ? CKPT_OK : CKPT_ERR_FORMAT;
}

static int
set_metadata(struct ckpt_file *f, json_t *doc, struct ckpt_error *err)
{
	/* JSON_PRESERVE_ORDER is the default since jansson 2.8. */
	char *s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s)
		return ckpt_error_nomem(err);
	ckpt_file_set_metadata(f, s);
	return CKPT_OK;
}

int
ckpt_hfindex_read(struct ckpt_file *f, struct ckpt_error *err)
{
	json_error_t jerr;
	json_t *doc = NULL, *wm, *md, *ts;
	const char *k;
	json_t *v;
	int rc;

	rc = load(f, &doc, &jerr, err);
	if (rc == CKPT_ERR_FORMAT)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, f->path,
		    jerr.position, "invalid JSON in index: %s", jerr.text);
	if (rc)
		return rc;
	rc = CKPT_ERR_FORMAT;
	if (!json_is_object(doc)) {
		ckpt_error_set(err, rc, f->path, 0, "index is not a JSON "
		    "object");
		goto out;
	}
	wm = json_object_get(doc, "weight_map");
	if (!json_is_object(wm)) {
		ckpt_error_set(err, rc, f->path, -1, "index has no "
		    "\"weight_map\" object");
		goto out;
	}
	json_object_foreach(wm, k, v)
		if (!json_is_string(v)) {
			ckpt_error_set(err, rc, f->path, -1, "weight_map entry "
			    "'%s' is not a file name", k);
			goto out;
		}
	md = json_object_get(doc, "metadata");
	if (md && !json_is_object(md) && !json_is_null(md)) {
		ckpt_error_set(err, rc, f->path, -1, "index \"metadata\" is "
		    "not an object");
		goto out;
	}
	ts = md ? json_object_get(md, "total_size") : NULL;
	if (ts && !(json_is_integer(ts) && json_integer_value(ts) >= 0)) {
		/* Some writers store it as a float: a lint, not an error. */
		if ((rc = ckpt_file_add_finding(f, "index-total-size-type",
		    CKPT_SEV_WARNING, NULL, -1, "metadata.total_size is not "
		    "a non-negative integer")))
			goto out;
	}
	rc = set_metadata(f, doc, err);
out:
	json_decref(doc);
	return rc;
}

int
ckpt_json_file_read(struct ckpt_file *f, struct ckpt_error *err)
{
	json_error_t jerr;
	json_t *doc = NULL;
	int rc;

	if (f->size > JSON_MAX_BYTES)
		return ckpt_file_add_finding(f, "json-not-parsed",
		    CKPT_SEV_INFO, NULL, -1, "JSON file larger than %u bytes "
		    "was not parsed", JSON_MAX_BYTES);
	rc = load(f, &doc, &jerr, err);
	/* A broken config file is worth a finding, not a failure to open:
	 * the weights beside it are still readable. */
	if (rc == CKPT_ERR_FORMAT)
		return ckpt_file_add_finding(f, "invalid-json",
		    CKPT_SEV_WARNING, NULL, jerr.position, "invalid JSON: %s",
		    jerr.text);
	if (rc)
		return rc;
	rc = set_metadata(f, doc, err);
	json_decref(doc);
	return rc;
}
