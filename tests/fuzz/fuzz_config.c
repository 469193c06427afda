/* fuzz_config.c - libFuzzer target: any bytes as triaged.conf. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char *text = malloc(size + 1);
	FILE *null = fopen("/dev/null", "w");

	if (!text || !null)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_load_string(text, "fuzz.conf", &c, null) == 0)
		config_unref(c);
out:
	if (null)
		fclose(null);
	free(text);
	return 0;
}
