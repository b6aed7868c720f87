/* personality_kvm.c: `kvm`, our KVM host: runtime-call sites call the window, the rest keep the instruction */
#include "pvlibc.h"
#include "repatch_int.h"
#include "rt_abi.h"

/*
 * Under kvm a site holds one of two sequences (rt_abi.h is the contract):
 *
 *  - kinds in RT_CALL_KINDS, 64-bit sites only:
 *	e8 <rel32>			call RT_ENTRY_SITE
 *	kind len reg aux width flags	the record's fields, read by the runtime
 *	cc ...				int3 to the site's length (never executed:
 *					the runtime resumes at site + len)
 *    .code32 sites run before the runtime is reachable and keep the
 *    instruction, as every other kind does;
 *
 *  - every other kind (and code32 call kinds): the original instruction,
 *    then multi-byte NOPs (Intel's recommended 2..9 byte forms) instead of
 *    native's 0x90s, so that classify tells kvm from native and a vCPU
 *    steps over the pad in a few instructions, not one per byte (each
 *    costs ~1 us under this host's CPL-0 emulator).  A pad of 0 or 1 byte
 *    cannot differ from native (the only 1-byte NOP is 0x90): such sites
 *    hold the same bytes under both, and classify reports them as native
 *    (repatch_classify_all reports both).
 *
 * Speed: every store below is fixed-size (out has PVSITES_LEN_MAX bytes,
 * those past len are scratch), so gcc emits a few vector moves per site.
 */

_Static_assert(PVSITE_KIND_COUNT <= 64, "the call-kind mask is a 64-bit word");
_Static_assert(RT_SITE_CALL_LEN + RT_SITE_ARGS_LEN == 11, "call + 6 operand bytes");

#define KVM_CALL_BIT(k) | (1ull << PVSITE_##k)
#define KVM_CALL_MASK	(0ull RT_CALL_KINDS(KVM_CALL_BIT))

/* The recommended NOPs: nopw; nopl (%rax); nopl 0(%rax); nopl 0(%rax,%rax); ... */
#define N2 0x66, 0x90
#define N3 0x0f, 0x1f, 0x00
#define N4 0x0f, 0x1f, 0x40, 0x00
#define N5 0x0f, 0x1f, 0x44, 0x00, 0x00
#define N6 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00
#define N7 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00
#define N8 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00
#define N9 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00

#define Q0
#define Q1 N9,
#define Q2 Q1 N9,
#define Q3 Q2 N9,
#define Q4 Q3 N9,
#define Q5 Q4 N9,
#define Q6 Q5 N9,
#define Q7 Q6 N9,

/*
 * Pad of 9q + r bytes: the r-byte NOP then q 9-byte ones; r = 1 (with
 * q > 0) becomes 8 + 2 so that no plain 0x90 appears.
 */
#define ROWS(q, Qq, Qless)                                                                      \
	[9 * q + 0] = {Qq}, [9 * q + 1] = {N8, N2, Qless}, [9 * q + 2] = {N2, Qq},             \
	[9 * q + 3] = {N3, Qq}, [9 * q + 4] = {N4, Qq}, [9 * q + 5] = {N5, Qq},                \
	[9 * q + 6] = {N6, Qq}, [9 * q + 7] = {N7, Qq}, [9 * q + 8] = {N8, Qq},

/* nop_pad[p]: p bytes of NOP instructions, then zeros (scratch when copied). */
static const uint8_t nop_pad[PVSITES_LEN_MAX][PVSITES_LEN_MAX] = {
	[0] = {0}, [1] = {0x90}, [2] = {N2}, [3] = {N3}, [4] = {N4},
	[5] = {N5}, [6] = {N6},	 [7] = {N7}, [8] = {N8},
	ROWS(1, Q1, Q0) ROWS(2, Q2, Q1) ROWS(3, Q3, Q2) ROWS(4, Q4, Q3) ROWS(5, Q5, Q4)
	ROWS(6, Q6, Q5) [63] = {Q7},
};

static int kvm_emit_inline(const struct pvsite *s, uint8_t *out)
{
	unsigned pad = (unsigned)s->len - s->orig_len;
	const uint8_t *row;

	/* The decoder guarantees these; a hand-made pvsite may not. */
	if (s->len > PVSITES_LEN_MAX || s->orig_len > PVSITES_ORIG_MAX || s->orig_len > s->len)
		return REPATCH_ESPACE;
	row = nop_pad[pad];
	pv_memcpy(out, s->orig, sizeof(s->orig)); /* already moved to the site (riprel) */
	pv_memcpy(out + s->orig_len, row, 32);	  /* orig_len + 32 <= 47: inside out */
	if (pad > 32)				  /* only for lengths beyond every kind's */
		pv_memcpy(out + s->len - 32, row + pad - 32, 32);
	return 0;
}

static int kvm_emit_call(const struct pvsite *s, uint8_t *out)
{
	if (s->flags & PVSITE_F_CODE32)
		return kvm_emit_inline(s, out);
	/* rel32 is relative to the call's end; computed in 64 bits, then checked. */
	int64_t rel = (int64_t)(RT_ENTRY_SITE - (s->addr + RT_SITE_CALL_LEN));
	if (rel != (int32_t)rel || s->len < RT_SITE_CALL_LEN + RT_SITE_ARGS_LEN ||
	    s->len > PVSITES_LEN_MAX)
		return REPATCH_ESPACE;
	int32_t rel32 = (int32_t)rel;
	pv_memset(out, 0xcc, PVSITES_LEN_MAX);
	out[0] = 0xe8;
	pv_memcpy(out + 1, &rel32, 4);
	out[5] = s->kind;
	out[6] = s->len;
	out[7] = s->reg;
	out[8] = s->aux;
	out[9] = s->width;
	out[10] = s->flags;
	return 0;
}

const struct personality personality_kvm = {
	.name = "kvm",
	.summary = "pre-virtualized for our KVM host: runtime calls through the window at 0x3fe00000",
	.emit = {
#define PVSITE_KIND(id, name, len)                                                      \
	[PVSITE_##id] = (KVM_CALL_MASK >> PVSITE_##id & 1) ? kvm_emit_call : kvm_emit_inline,
#include "site_kinds.def"
#undef PVSITE_KIND
	},
};
