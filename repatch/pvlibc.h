/* pvlibc.h: the few memory helpers the freestanding repatch sources use */
#ifndef PVLIBC_H
#define PVLIBC_H

#include <stddef.h>
#include <stdint.h>

/*
 * gcc and clang expand these inline for small constant sizes and otherwise
 * call memcpy/memset/memcmp, which every freestanding environment gcc
 * targets must provide (the runtime does).  No <string.h> needed.
 */
#define pv_memcpy __builtin_memcpy
#define pv_memset __builtin_memset
#define pv_memcmp __builtin_memcmp

/*
 * Sites are short (at most 64 bytes) and their lengths vary, where libc's
 * variable-length paths (rep stosb, the memcmp dispatcher) cost more than the
 * work.  These use 8-byte accesses, the last one overlapping, for n >= 8.
 */
static inline void pv_fill_nops(uint8_t *p, size_t n)
{
	const uint64_t nops = 0x9090909090909090ull;
	if (n < 8) {
		while (n--)
			*p++ = 0x90;
		return;
	}
	for (size_t i = 0; i + 8 < n; i += 8)
		pv_memcpy(p + i, &nops, 8);
	pv_memcpy(p + n - 8, &nops, 8);
}

static inline void pv_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
	if (n < 8) {
		while (n--)
			*dst++ = *src++;
		return;
	}
	for (size_t i = 0; i + 8 < n; i += 8)
		pv_memcpy(dst + i, src + i, 8);
	pv_memcpy(dst + n - 8, src + n - 8, 8);
}

static inline int pv_same(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t x, y, diff = 0;
	if (n < 8) {
		while (n--)
			diff |= (uint64_t)(*a++ ^ *b++);
		return diff == 0;
	}
	for (size_t i = 0; i + 8 < n; i += 8) {
		pv_memcpy(&x, a + i, 8);
		pv_memcpy(&y, b + i, 8);
		diff |= x ^ y;
	}
	pv_memcpy(&x, a + n - 8, 8);
	pv_memcpy(&y, b + n - 8, 8);
	return (diff | (x ^ y)) == 0;
}

#endif
