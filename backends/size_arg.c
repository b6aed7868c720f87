/* size_arg.c: a size on a command line: decimal bytes with an optional K/M/G suffix */
#include <errno.h>
#include <stdlib.h>

#include "size_arg.h"

int size_arg__parse(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (*s < '0' || *s > '9') /* strtoull would take " -1" as 2^64 - 1 */
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 'G': case 'g': shift = 30; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'K': case 'k': shift = 10; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end || v > UINT64_MAX >> shift) /* "20000000000G" would wrap, not fail */
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}
