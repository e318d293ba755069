/* SPDX-License-Identifier: MIT */
/*
 * fuzz-policy.c - the store's ckpt.yaml parser (ckpt_policy_config_parse)
 * on arbitrary bytes, then the lookups a prune makes and the one-line
 * description of the resulting policies.
 */
#include "fuzz.h"

static volatile size_t sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const runs[] = { "run", "llama-7b", "exp.1", "" };
	struct ckpt_policy_config *cfg;
	struct ckpt_error err;

	if (ckpt_policy_config_parse((const char *)data, size, "ckpt.yaml",
	    &cfg, &err)) {
		sink += fuzz_touch(err.message);
		return 0;
	}
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct ckpt_policy p;
		char *s;

		ckpt_policy_init(&p);
		ckpt_policy_config_lookup(cfg, runs[i], &p);
		sink += fuzz_touch(p.metric);
		if (!ckpt_policy_check(&p, &err) && (s = ckpt_policy_describe(&p))) {
			sink += fuzz_touch(s);
			free(s);
		}
	}
	sink += (size_t)ckpt_policy_config_trash(cfg) +
	    (size_t)ckpt_policy_config_gc_age(cfg) +
	    ckpt_policy_config_prune_on_save(cfg);
	ckpt_policy_config_free(cfg);
	return 0;
}
