/* SPDX-License-Identifier: MIT */
/* namejson.c: a VM name as a JSON string (namejson.h). */
#include <stdlib.h>

#include "cmdline.h"
#include "namejson.h"

json_t *name_json(const char *s)
{
	json_t *j = json_string(s);
	char *valid;

	if (j)
		return j;
	valid = name_utf8_repair(s);
	j = valid ? json_string(valid) : NULL;
	free(valid);
	return j;
}
