/* repatch.h: the site rewriter library: parse the retained table, plan, verify and rewrite sites */
#ifndef REPATCH_H
#define REPATCH_H

/*
 * Freestanding: no libc beyond <stddef.h>/<stdint.h>, no allocation.  The
 * same sources build into host tools (pvsites, the daemon) and, later, into
 * the in-guest runtime.  Every function reports failure through a
 * struct repatch_err that names what went wrong; nothing prints.
 */
#include <stddef.h>
#include <stdint.h>

#include "pvsites_abi.h"

/* One decoded site: absolute addresses, RIP-relative bytes already moved to the site. */
struct pvsite {
	uint64_t addr;	  /* where the site starts (guest virtual) */
	uint8_t kind;	  /* enum pvsite_kind */
	uint8_t len;	  /* instruction + pad */
	uint8_t orig_len;
	uint8_t flags;
	uint8_t reg;
	uint8_t aux;
	uint8_t width;
	uint8_t orig[16];  /* exact bytes of the instruction at addr, then 0x90 */
};

struct repatch_err {
	int code;	/* enum repatch_code */
	long site;	/* index of the offending site, or -1 */
	uint64_t addr;	/* its address, or the offending table offset */
	char msg[160];
};

enum repatch_code {
	REPATCH_OK = 0,
	REPATCH_ETABLE,	   /* the table is malformed */
	REPATCH_EMISMATCH, /* a site does not hold the source personality's bytes */
	REPATCH_EMAP,	   /* the memory accessor refused an address */
	REPATCH_EUNSUPP,   /* the personality has no sequence for a site */
	REPATCH_ESPACE,	   /* a sequence does not fit the site */
	REPATCH_EUNSAFE,   /* an instruction pointer cannot be made safe */
};

/* --- table.c: the parser of untrusted table bytes ------------------------------ */

/*
 * Count the sites in a raw .pvsites image of `size` bytes (validating every
 * chunk header).  Returns the number of sites, or -1 with `err` filled.
 */
long pvsites_count(const void *table, size_t size, struct repatch_err *err);

/*
 * Decode and validate all sites of the table, which lives at guest address
 * `table_addr`, into `out` (room for `cap` sites, see pvsites_count).  The
 * result is sorted by address; overlapping sites, unknown kinds or flags,
 * impossible lengths and non-zero reserved fields are refused.  Returns the
 * number of sites or -1.
 */
long pvsites_decode(const void *table, size_t size, uint64_t table_addr,
		    struct pvsite *out, size_t cap, struct repatch_err *err);

/* Index of the site containing `addr` in a sorted array, or -1. */
long pvsites_lookup(const struct pvsite *sites, size_t n, uint64_t addr);

/* Name of a kind ("cli", "pte-write", ...) or NULL; and back (-1 if unknown). */
const char *pvsite_kind_name(unsigned kind);
int pvsite_kind_by_name(const char *name);
/* Length the annotator reserves for a kind (0 if unknown). */
unsigned pvsite_kind_len(unsigned kind);

/* --- personality.c: sequences per hypervisor, as data ------------------------- */

/*
 * A personality emits, for one site, the `site->len` bytes the site holds
 * under it into `out`, which has room for PVSITES_LEN_MAX bytes (those past
 * `len` are scratch, so emitters can use fixed-size stores).  Returns 0, or a repatch_code when it has no sequence for
 * the site (REPATCH_EUNSUPP) or the sequence does not fit (REPATCH_ESPACE).
 */
typedef int (*pvseq_emit_fn)(const struct pvsite *site, uint8_t *out);

struct personality {
	const char *name;		     /* "native", "kvm", ... */
	const char *summary;		     /* one line for help texts */
	pvseq_emit_fn emit[PVSITE_KIND_COUNT]; /* NULL: no sequence for the kind */
};

const struct personality *personality_find(const char *name);
/* The i-th registered personality, NULL past the end. */
const struct personality *personality_at(unsigned i);
/* Fill `out` with the personality's bytes for `site`; 0 or a repatch_code. */
int personality_emit(const struct personality *p, const struct pvsite *site, uint8_t *out);

/* --- rewrite.c: all-or-nothing rewriting through a memory accessor -------------- */

/*
 * Access to guest memory: return a host pointer to `len` bytes at guest
 * address `addr`, writable if `write`, or NULL if the range is not mapped.
 */
struct repatch_mem {
	void *ctx;
	uint8_t *(*map)(void *ctx, uint64_t addr, size_t len, int write);
};

/*
 * Rewrite every site from personality `from` to `to`.  First every site is
 * checked to hold exactly `from`'s bytes and `to` is asked for each
 * sequence; only if all succeed is anything written.  On failure nothing is
 * written and `err` names the first offending site.  Returns 0 or -1.
 */
int repatch_rewrite(const struct pvsite *sites, size_t n, const struct repatch_mem *mem,
		    const struct personality *from, const struct personality *to,
		    struct repatch_err *err);

/*
 * Which personality the site currently holds: index for personality_at(),
 * or -1 if its bytes match none (half-written or foreign).
 */
int repatch_classify(const struct pvsite *site, const uint8_t *bytes);
/*
 * Every personality the bytes match, as a bitmask of personality_at()
 * indices in *mask (a site with a 0- or 1-byte pad is native and kvm at
 * once).  Returns the lowest matching index, as repatch_classify, or -1.
 */
int repatch_classify_all(const struct pvsite *site, const uint8_t *bytes, unsigned *mask);

/*
 * Map an instruction pointer to a safe one under personality `cur`: outside
 * every site or at a site's start it is returned unchanged; under `native`
 * an IP inside the NOP pad moves to the site's end.  Anything else (inside
 * a non-native sequence, or in the middle of the original instruction) is
 * not a safe point: returns -1 with err.  On success stores the IP in *safe.
 */
int repatch_safe_ip(const struct pvsite *sites, size_t n, const struct personality *cur,
		    uint64_t ip, uint64_t *safe, struct repatch_err *err);

/* True if `addr` lies inside a site whose personality `cur` is not native. */
int repatch_in_nonnative(const struct pvsite *sites, size_t n, const struct personality *cur,
			 uint64_t addr);

#endif
