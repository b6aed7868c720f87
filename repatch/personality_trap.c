/* personality_trap.c: `trap`, a test personality that turns every site into a tagged ud2 */
#include "pvlibc.h"
#include "repatch_int.h"

/*
 * A test double of a hypervisor personality, named as such: it has no
 * runtime behind it.  Each site becomes `ud2` followed by the site kind and
 * the operand bytes, then NOPs; a SIGILL handler (tests) or a #UD handler can
 * read the tag at RIP+2 and emulate, then resume at the site's end.  It
 * exercises every code path of rewriting with sequences that differ from
 * native in every site kind.
 */
static int trap_emit(const struct pvsite *s, uint8_t *out)
{
	if (s->len < 6)
		return REPATCH_ESPACE;
	out[0] = 0x0f;
	out[1] = 0x0b; /* ud2 */
	out[2] = s->kind;
	out[3] = s->reg;
	out[4] = s->aux;
	out[5] = s->len;
	pv_memset(out + 6, 0x90, PVSITES_LEN_MAX - 6);
	return 0;
}

const struct personality personality_trap = {
	.name = "trap",
	.summary = "test double: every site a tagged ud2 (no runtime, for tests)",
	.emit = {
#define PVSITE_KIND(id, name, len) [PVSITE_##id] = trap_emit,
#include "site_kinds.def"
#undef PVSITE_KIND
	},
};
