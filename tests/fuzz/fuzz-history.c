/* SPDX-License-Identifier: MIT */
/*
 * fuzz-history.c - the registry's history reader (ckpt_registry_parse):
 * the hash chain, every record's fields and their replay into versions
 * and aliases, strict and lenient, then every accessor.
 */
#include "fuzz.h"

static volatile size_t sink;

static void
touch_all(const struct ckpt_registry *r)
{
	for (size_t i = 0; i < ckpt_registry_record_count(r); i++) {
		const struct ckpt_reg_record *x = ckpt_registry_record(r, i);

		/* the reader refuses a record with an unknown action */
		if (x->action == CKPT_REG_UNKNOWN)
			abort();
		sink += fuzz_touch(x->digest) + fuzz_touch(x->prev) +
		    fuzz_touch(ckpt_reg_action_name(x->action)) +
		    fuzz_touch(x->time) +
		    fuzz_touch(x->user) + fuzz_touch(x->host) +
		    fuzz_touch(x->model) + fuzz_touch(x->alias) +
		    fuzz_touch(x->run) + fuzz_touch(x->manifest) +
		    fuzz_touch(x->note) + fuzz_touch(x->json) +
		    (size_t)(x->seq + x->version + x->from + x->to + x->step);
	}
	for (size_t i = 0; i < ckpt_registry_version_count(r); i++) {
		const struct ckpt_reg_version *v = ckpt_registry_version(r, i);

		sink += fuzz_touch(v->model) + fuzz_touch(v->run) +
		    fuzz_touch(v->manifest) + fuzz_touch(v->path) +
		    fuzz_touch(v->storage_raw) + fuzz_touch(v->record) +
		    fuzz_touch(v->scope) + fuzz_touch(v->source_manifest) +
		    fuzz_touch(v->imported_record) +
		    (size_t)(v->size + v->imported_version) + v->storage;
		if (ckpt_registry_find_version(r, v->model, v->version) != v)
			abort();
	}
	for (size_t i = 0; i < ckpt_registry_alias_count(r); i++) {
		const struct ckpt_reg_alias *a = ckpt_registry_alias(r, i);

		for (size_t k = 0; k < a->nprevious; k++)
			sink += (size_t)a->previous[k];
		if (ckpt_registry_find_alias(r, a->model, a->name) != a ||
		    !ckpt_registry_find_version(r, a->model, a->version))
			abort();
	}
	for (size_t i = 0; i < ckpt_registry_problem_count(r); i++)
		sink += fuzz_touch(ckpt_registry_problem(r, i)->message);
	sink += fuzz_touch(ckpt_registry_head(r));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int modes[] = { 0, CKPT_REGISTRY_LENIENT };
	struct ckpt_registry *r;
	struct ckpt_error err;

	for (size_t m = 0; m < 2; m++) {
		if (ckpt_registry_parse((const char *)data, size, "history",
		    modes[m], &r, &err)) {
			sink += fuzz_touch(err.message);
			continue;
		}
		touch_all(r);
		ckpt_registry_free(r);
	}
	return 0;
}
