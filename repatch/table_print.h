/* table_print.h: `pvsites list` output, one site per line as text or JSON */
#ifndef TABLE_PRINT_H
#define TABLE_PRINT_H

#include <stdio.h>

#include "elfimage.h"
#include "repatch.h"

/* A decoded table and where it came from. */
struct site_table {
	uint64_t addr; /* guest address of .pvsites */
	struct pvsite *sites;
	size_t n;
};

/* Write `s` as a JSON string literal, quotes included. */
void print_json_string(FILE *out, const char *s);

/* The name of the personality a site currently holds in `img`, "mixed/unknown" or "unmapped". */
const char *site_personality(struct elfimage *img, const struct pvsite *site);

void table_print_text(FILE *out, struct elfimage *img, const struct site_table *t);
void table_print_json(FILE *out, struct elfimage *img, const struct site_table *t);

#endif
