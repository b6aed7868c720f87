/* rewrite.c: all-or-nothing site rewriting and the safe-point helpers */
#include "pvlibc.h"
#include "repatch_int.h"

static const char *kind_or(unsigned kind)
{
	const char *n = pvsite_kind_name(kind);
	return n ? n : "?";
}

/*
 * Phase 1 proves, for every site, that it is mapped writable, holds exactly
 * `from`'s bytes, and that `to` has a sequence for it.  Only then does
 * phase 2 write.  Sequences are emitted again in phase 2 rather than kept:
 * emitting is cheaper than the memory a plan for every site would need, and
 * it is deterministic.  (Prefetching a few sites ahead was measured and
 * gained nothing: see docs/BENCHMARKS.md.)
 */
int repatch_rewrite(const struct pvsite *sites, size_t n, const struct repatch_mem *mem,
		    const struct personality *from, const struct personality *to,
		    struct repatch_err *err)
{
	uint8_t seq[PVSITES_LEN_MAX];

	for (size_t i = 0; i < n; i++) {
		const struct pvsite *s = &sites[i];
		uint8_t *at = mem->map(mem->ctx, s->addr, s->len, 1);
		/* The emitters are looked up here, not through personality_emit,
		 * because this loop is the hot path of every rewrite. */
		pvseq_emit_fn fe = s->kind < PVSITE_KIND_COUNT ? from->emit[s->kind] : NULL;
		pvseq_emit_fn te = s->kind < PVSITE_KIND_COUNT ? to->emit[s->kind] : NULL;
		int rc;

		if (!at)
			return repatch_fail(err, REPATCH_EMAP, (long)i, s->addr,
					    "site is not mapped writable", kind_or(s->kind));
		if ((rc = fe ? fe(s, seq) : REPATCH_EUNSUPP) != 0)
			return repatch_fail(err, rc, (long)i, s->addr,
					    "source personality has no sequence for site",
					    kind_or(s->kind));
		if (!pv_same(seq, at, s->len))
			return repatch_fail(err, REPATCH_EMISMATCH, (long)i, s->addr,
					    "site does not hold the source personality's bytes",
					    kind_or(s->kind));
		if ((rc = te ? te(s, seq) : REPATCH_EUNSUPP) != 0)
			return repatch_fail(err, rc, (long)i, s->addr,
					    rc == REPATCH_ESPACE
						    ? "target sequence does not fit site (too short "
						      "or out of reach)"
						    : "target personality has no sequence for site",
					    kind_or(s->kind));
	}
	if (from == to)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct pvsite *s = &sites[i];
		to->emit[s->kind](s, seq); /* phase 1 proved the kind has a sequence */
		pv_copy(mem->map(mem->ctx, s->addr, s->len, 1), seq, s->len);
	}
	return 0;
}

/*
 * Whether `cur` keeps the site's original instruction at its start (native
 * always; kvm for the kinds hardware virtualization runs in the guest):
 * then only NOPs follow it and an IP after the instruction may skip them.
 */
static int keeps_original(const struct personality *cur, const struct pvsite *s)
{
	uint8_t seq[PVSITES_LEN_MAX];

	if (cur == &personality_native)
		return 1;
	return personality_emit(cur, s, seq) == 0 && pv_same(seq, s->orig, s->orig_len);
}

int repatch_safe_ip(const struct pvsite *sites, size_t n, const struct personality *cur,
		    uint64_t ip, uint64_t *safe, struct repatch_err *err)
{
	long i = pvsites_lookup(sites, n, ip);

	if (i < 0 || ip == sites[i].addr) {
		*safe = ip;
		return 0;
	}
	const struct pvsite *s = &sites[i];
	if (!keeps_original(cur, s))
		return repatch_fail(err, REPATCH_EUNSAFE, i, s->addr,
				    "instruction pointer inside a non-native sequence", cur->name);
	if (ip < s->addr + s->orig_len)
		return repatch_fail(err, REPATCH_EUNSAFE, i, s->addr,
				    "instruction pointer inside the original instruction",
				    kind_or(s->kind));
	*safe = s->addr + s->len; /* only NOPs are skipped */
	return 0;
}

int repatch_in_nonnative(const struct pvsite *sites, size_t n, const struct personality *cur,
			 uint64_t addr)
{
	long i = pvsites_lookup(sites, n, addr);

	return i >= 0 && !keeps_original(cur, &sites[i]);
}
