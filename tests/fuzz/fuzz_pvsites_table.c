/* fuzz_pvsites_table.c: libFuzzer target for the patch-table parser (the table comes from guest memory) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t guest[1 << 16];

/* Every address maps somewhere in a small scratch guest, as long as it fits. */
static uint8_t *map(void *ctx, uint64_t addr, size_t len, int write)
{
	(void)ctx;
	(void)write;
	uint64_t off = addr % sizeof(guest);
	return len <= sizeof(guest) - off ? guest + off : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct repatch_err err;
	uint64_t table_addr = 0xffffffff82000000ull;

	/* The first 8 bytes choose where the table "lives", the rest is the table. */
	if (size >= 8) {
		memcpy(&table_addr, data, 8);
		data += 8;
		size -= 8;
	}
	long n = pvsites_count(data, size, &err);
	if (n <= 0)
		return 0;
	struct pvsite *s = malloc((size_t)n * sizeof(*s));
	long m = pvsites_decode(data, size, table_addr, s, (size_t)n, &err);
	if (m >= 0) {
		if (m != n)
			abort(); /* count and decode must agree on a valid table */
		for (long i = 1; i < m; i++)
			if (s[i - 1].addr + s[i - 1].len > s[i].addr)
				abort(); /* decode promised sorted, non-overlapping sites */
		uint64_t safe;
		for (long i = 0; i < m; i++) {
			if (pvsites_lookup(s, (size_t)m, s[i].addr + s[i].len / 2) != i)
				abort();
			repatch_safe_ip(s, (size_t)m, personality_find("native"), s[i].addr + 1, &safe,
					&err);
		}
		struct repatch_mem mem = {NULL, map};
		memset(guest, 0x90, sizeof(guest));
		repatch_rewrite(s, (size_t)m, &mem, personality_find("native"),
				personality_find("trap"), &err);
	}
	free(s);
	return 0;
}
