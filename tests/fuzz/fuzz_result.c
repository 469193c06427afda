/* fuzz_result.c - libFuzzer target: any bytes as a backend's result JSON.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTRIAGED_FUZZ=ON */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "result.h"

static const struct result_image images[] = {
	{ "1.2.3.1", 2048, 2500, 1 },
	{ "1.2.3.2", 1000, 800, 3 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct triaged_result *r = result_new(images, 2);
	char msg[512];

	if (!r)
		return 0;
	if (result_parse_json(r, (const char *)data, size, msg, sizeof(msg)) == TRIAGED_OK &&
	    result_finish(r) == 0) {
		char *json = result_to_json(r);
		free(json);
	}
	result_free(r);
	return 0;
}
