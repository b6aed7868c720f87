/* rt_lib.c: the runtime's few freestanding helpers: memcpy, memset, memcmp and string building for error texts */
#include "rt_cpu.h"

/*
 * gcc may emit calls to memcpy/memset/memcmp even in freestanding code
 * (struct copies, the repatch library's __builtin_memcpy).  Every guest
 * ring-0 instruction is emulated here, so the string instructions win
 * over a loop; but a rep string instruction is emulated iteration by
 * iteration, at about the cost of an instruction each (~1 us on a
 * kvm-pvm host), so the bulk moves 8 bytes an iteration: the 8 KiB
 * device-state area of a freeze took 9 ms to clear byte by byte
 * (docs/BENCHMARKS.md, "Where a kvm freeze's time goes").
 */
void *memcpy(void *d, const void *s, size_t n)
{
	void *ret = d;
	size_t q = n >> 3, r = n & 7;

	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(q) : : "memory");
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(r) : : "memory");
	return ret;
}

void *memset(void *d, int c, size_t n)
{
	void *ret = d;
	uint64_t v = (uint64_t)(uint8_t)c * 0x0101010101010101ull;
	size_t q = n >> 3, r = n & 7;

	__asm__ volatile("rep stosq" : "+D"(d), "+c"(q) : "a"(v) : "memory");
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(r) : "a"(v) : "memory");
	return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t rt_strlcpy(char *d, const char *s, size_t n)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (i + 1 < n)
			d[i] = s[i];
	if (n)
		d[i < n ? i : n - 1] = 0;
	return i;
}

size_t rt_strlcat(char *d, const char *s, size_t n)
{
	size_t l = 0;
	while (l < n && d[l])
		l++;
	if (l == n)
		return l;
	return l + rt_strlcpy(d + l, s, n - l);
}

void rt_strlcat_hex(char *d, uint64_t v, size_t n)
{
	char tmp[19];
	int i = 18;
	tmp[i] = 0;
	do
		tmp[--i] = "0123456789abcdef"[v & 15];
	while ((v >>= 4) && i > 2);
	tmp[--i] = 'x';
	tmp[--i] = '0';
	rt_strlcat(d, tmp + i, n);
}
