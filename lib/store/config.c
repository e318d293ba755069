/* SPDX-License-Identifier: MIT */
/*
 * config.c - a training config (YAML or JSON) as JSON text, for the
 * manifest.  YAML goes through libyaml's event parser with a depth limit;
 * plain scalars that read as numbers, booleans or null become those (the
 * YAML 1.2 core schema), everything else a string.  Anchors and aliases
 * are refused rather than expanded (no billion-laughs).  Errors carry the
 * line and column.
 */
#include "util/internal.h"

#include <math.h>

#include <jansson.h>
#include <yaml.h>

#include "store/store.h"

#define CONFIG_MAX	((size_t)16 << 20)
#define DEPTH_MAX	64

static json_t *
plain_scalar(const char *s, size_t n)
{
	char *end;
	long long ll;
	double d;

	if (!n || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null")
	    || !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s,
	    "FALSE"))
		return json_false();
	if ((s[0] >= '0' && s[0] <= '9') || ((s[0] == '-' || s[0] == '+') &&
	    n > 1)) {
		errno = 0;
		ll = strtoll(s, &end, 10);
		if (!errno && !*end)
			return json_integer(ll);
		errno = 0;
		d = strtod(s, &end);
		if (!errno && !*end && isfinite(d))
			return json_real(d);
	}
	return json_stringn(s, n);
}

static int
yaml_fail(struct ckpt_error *err, const char *path, const yaml_mark_t *m,
    const char *what)
{
	return ckpt_error_set(err, CKPT_ERR_FORMAT, path, (int64_t)m->index,
	    "line %zu, column %zu: %s", m->line + 1, m->column + 1, what);
}

static int
parse_node(yaml_parser_t *p, yaml_event_t *ev, int depth, json_t **out,
    const char *path, struct ckpt_error *err)
{
	yaml_event_t e;
	json_t *c;
	int rc;

	if (depth > DEPTH_MAX)
		return yaml_fail(err, path, &ev->start_mark,
		    "nested too deeply");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return yaml_fail(err, path, &ev->start_mark,
		    "aliases are not supported");
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return yaml_fail(err, path, &ev->start_mark,
			    "anchors are not supported");
		*out = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ?
		    plain_scalar((const char *)ev->data.scalar.value,
		    ev->data.scalar.length) : json_stringn((const char *)
		    ev->data.scalar.value, ev->data.scalar.length);
		return *out ? CKPT_OK : yaml_fail(err, path, &ev->start_mark,
		    "scalar is not valid UTF-8");
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool map = ev->type == YAML_MAPPING_START_EVENT;

		c = map ? json_object() : json_array();
		for (;;) {
			json_t *k = NULL, *v = NULL;

			if (!yaml_parser_parse(p, &e)) {
				json_decref(c);
				return yaml_fail(err, path, &p->problem_mark,
				    p->problem ? p->problem : "syntax error");
			}
			if (e.type == YAML_SEQUENCE_END_EVENT ||
			    e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			if (map && e.type == YAML_SCALAR_EVENT &&
			    !e.data.scalar.anchor) {
				/* Keys stay text: "1:" and "true:" too. */
				k = json_stringn((const char *)
				    e.data.scalar.value, e.data.scalar.length);
				rc = k ? CKPT_OK : yaml_fail(err, path,
				    &e.start_mark, "key is not valid UTF-8");
			} else {
				rc = parse_node(p, &e, depth + 1, map ? &k : &v,
				    path, err);
			}
			yaml_event_delete(&e);
			if (rc) {
				json_decref(c);
				return rc;
			}
			if (!map) {
				json_array_append_new(c, v);
				continue;
			}
			if (!json_is_string(k)) {
				yaml_mark_t m = p->mark;

				json_decref(k);
				json_decref(c);
				return yaml_fail(err, path, &m,
				    "mapping keys must be strings");
			}
			if (!yaml_parser_parse(p, &e)) {
				json_decref(k);
				json_decref(c);
				return yaml_fail(err, path, &p->problem_mark,
				    p->problem ? p->problem : "syntax error");
			}
			rc = parse_node(p, &e, depth + 1, &v, path, err);
			if (!rc && json_object_get(c, json_string_value(k)))
				rc = yaml_fail(err, path, &e.start_mark,
				    "duplicate key");
			yaml_event_delete(&e);
			if (rc) {
				json_decref(v);	/* parsed, then a duplicate */
				json_decref(k);
				json_decref(c);
				return rc;
			}
			json_object_set_new(c, json_string_value(k), v);
			json_decref(k);
		}
		*out = c;
		return CKPT_OK;
	}
	default:
		return yaml_fail(err, path, &ev->start_mark,
		    "unexpected YAML event");
	}
}

static int
yaml_to_json(const char *text, size_t len, const char *path, json_t **out,
    struct ckpt_error *err)
{
	yaml_parser_t p;
	yaml_event_t e;
	json_t *doc = NULL;
	int rc = CKPT_OK;
	bool done = false;

	if (!yaml_parser_initialize(&p))
		return ckpt_error_nomem(err);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && !rc) {
		if (!yaml_parser_parse(&p, &e)) {
			rc = yaml_fail(err, path, &p.problem_mark, p.problem ?
			    p.problem : "syntax error");
			break;
		}
		switch (e.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		default:
			if (doc) {
				rc = yaml_fail(err, path, &e.start_mark,
				    "more than one YAML document");
				break;
			}
			rc = parse_node(&p, &e, 0, &doc, path, err);
			break;
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	if (rc) {
		json_decref(doc);
		return rc;
	}
	*out = doc ? doc : json_null();
	return CKPT_OK;
}

int
ckpt_config_to_json(const char *path, char **json, struct ckpt_error *err)
{
	json_error_t je;
	json_t *doc = NULL;
	size_t len, i = 0;
	char *text;
	int rc;

	if ((rc = ckpt_read_file(path, CONFIG_MAX, &text, &len, err)))
		return rc;
	if (memchr(text, '\0', len)) {
		free(text);
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
		    "binary file, not YAML or JSON");
	}
	while (i < len && (text[i] == ' ' || text[i] == '\t' ||
	    text[i] == '\n' || text[i] == '\r'))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '[')) {
		doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!doc)
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT, path,
			    (int64_t)je.position, "line %d, column %d: %s",
			    je.line, je.column, je.text);
	} else {
		rc = yaml_to_json(text, len, path, &doc, err);
	}
	free(text);
	if (rc)
		return rc;
	*json = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY);
	json_decref(doc);
	return *json ? CKPT_OK : ckpt_error_nomem(err);
}
