/* SPDX-License-Identifier: MIT */
/*
 * fuzz-config.c - ckpt_config_to_json(), which reads a training config in
 * YAML or JSON (save --config) and converts it to JSON; plus the duration
 * and size parsers of the policy, fed the first line of the input.
 */
#include "fuzz.h"

static volatile size_t sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("conf.yaml", data, size);
	struct ckpt_error err;
	char line[256], buf[64];
	int64_t v;
	size_t n;
	char *json;

	if (!ckpt_config_to_json(path, &json, &err)) {
		sink += fuzz_touch(json);
		free(json);
	}
	n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!ckpt_duration_parse(line, &v, &err))
		sink += fuzz_touch(ckpt_duration_format(v, buf, sizeof(buf)));
	if (!ckpt_size_parse(line, &v, &err))
		sink += (size_t)v;
	return 0;
}
