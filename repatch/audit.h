/* audit.h: `pvsites audit`, find sensitive instructions that no site covers */
#ifndef AUDIT_H
#define AUDIT_H

#include <stdio.h>

#include "elfimage.h"
#include "table_print.h"

/*
 * Disassemble every executable section of `img` and report each sensitive
 * instruction outside the sites of `t` (t->n may be 0: an unannotated
 * image), as text or JSON on `out`.  Returns the number of uncovered
 * instructions, or -1 after printing why the audit could not run.
 */
long audit_image(FILE *out, struct elfimage *img, const struct site_table *t, int json);

#endif
