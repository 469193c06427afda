/*
 * dest.c - the table of destination types (dicom, folder, dicomweb) and
 * the lookup by the name a [destination NAME] section gives as "type".
 */
#include "dest.h"

#include <stddef.h>
#include <strings.h>

static const struct dest_type *const dest_types[] = {
	&dest_dicom,
	&dest_folder,
	&dest_dicomweb,
};

const struct dest_type *
dest_type_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(dest_types) / sizeof(dest_types[0]); i++)
		if (strcasecmp(dest_types[i]->name, name) == 0)
			return dest_types[i];
	return NULL;
}
