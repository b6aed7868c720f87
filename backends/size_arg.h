/* size_arg.h: a size on a command line ("512", "64K", "256M", "1G"), shared by pvhost and the pvmigrate client */
#ifndef SIZE_ARG_H
#define SIZE_ARG_H

#include <stdint.h>

/* Decimal bytes, or with a K, M or G suffix (either case, powers of 1024).
 * -1 for anything else (signs and blanks included) or a value past 2^64 - 1. */
int size_arg__parse(const char *s, uint64_t *out);

#endif
