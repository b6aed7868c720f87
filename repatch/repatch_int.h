/* repatch_int.h: what the repatch sources share with each other and with no one else */
#ifndef REPATCH_INT_H
#define REPATCH_INT_H

#include "repatch.h"

/* Fill `err` (if any) with "what (site N at 0x..): detail"; returns -1. */
int repatch_fail(struct repatch_err *err, int code, long site, uint64_t addr, const char *what,
		 const char *detail);

/* The personalities, one per personality_*.c file. */
extern const struct personality personality_native;
extern const struct personality personality_trap;
extern const struct personality personality_kvm;

#endif
