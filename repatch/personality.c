/* personality.c: the registry of personalities and what a site holds under each */
#include "pvlibc.h"
#include "repatch_int.h"

/* Index order is stable: repatch_classify returns these indices. */
static const struct personality *const registry[] = {
	&personality_native, /* 0 */
	&personality_trap,   /* 1 */
	&personality_kvm,    /* 2 */
};

#define NREG (sizeof(registry) / sizeof(registry[0]))

const struct personality *personality_at(unsigned i)
{
	return i < NREG ? registry[i] : NULL;
}

const struct personality *personality_find(const char *name)
{
	for (unsigned i = 0; i < NREG; i++) {
		const char *a = registry[i]->name, *b = name;
		while (*a && *a == *b)
			a++, b++;
		if (*a == 0 && *b == 0)
			return registry[i];
	}
	return NULL;
}

int personality_emit(const struct personality *p, const struct pvsite *site, uint8_t *out)
{
	if (site->kind >= PVSITE_KIND_COUNT || !p->emit[site->kind])
		return REPATCH_EUNSUPP;
	return p->emit[site->kind](site, out);
}

_Static_assert(NREG <= 32, "repatch_classify_all returns a 32-bit mask");

/*
 * The lowest index wins: where two personalities emit the same bytes (kvm
 * keeps a site with a pad of 0 or 1 byte as native has it), the site is
 * reported as the one with the lower index, native first.
 */
int repatch_classify(const struct pvsite *site, const uint8_t *bytes)
{
	uint8_t seq[PVSITES_LEN_MAX];

	for (unsigned i = 0; i < NREG; i++)
		if (personality_emit(registry[i], site, seq) == 0 &&
		    pv_same(seq, bytes, site->len))
			return (int)i;
	return -1;
}

int repatch_classify_all(const struct pvsite *site, const uint8_t *bytes, unsigned *mask)
{
	uint8_t seq[PVSITES_LEN_MAX];
	int first = -1;

	*mask = 0;
	for (unsigned i = 0; i < NREG; i++)
		if (personality_emit(registry[i], site, seq) == 0 &&
		    pv_same(seq, bytes, site->len)) {
			*mask |= 1u << i;
			if (first < 0)
				first = (int)i;
		}
	return first;
}
