/* personality.c: the registry of personalities and what a site holds under each */
#include "pvlibc.h"
#include "repatch_int.h"

/* Index order is stable: repatch_classify returns these indices. */
static const struct personality *const registry[] = {
	&personality_native,
	&personality_trap,
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

int repatch_classify(const struct pvsite *site, const uint8_t *bytes)
{
	uint8_t seq[PVSITES_LEN_MAX];

	for (unsigned i = 0; i < NREG; i++)
		if (personality_emit(registry[i], site, seq) == 0 &&
		    pv_same(seq, bytes, site->len))
			return (int)i;
	return -1;
}
