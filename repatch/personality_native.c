/* personality_native.c: `native`, the original instruction followed by its NOP pad */
#include "pvlibc.h"
#include "repatch_int.h"

/*
 * Exactly what the annotator assembled: the instruction, then 0x90 up to
 * the site's length.  Real hardware and trap-and-emulate (VT-x/SVM) run it.
 */
static int native_emit(const struct pvsite *s, uint8_t *out)
{
	/* Fixed sizes compile to a few vector stores; orig is already NOP-filled. */
	pv_memset(out, 0x90, PVSITES_LEN_MAX);
	pv_memcpy(out, s->orig, sizeof(s->orig));
	return 0;
}

const struct personality personality_native = {
	.name = "native",
	.summary = "original instructions (bare metal, hardware virtualization)",
	.emit = {
#define PVSITE_KIND(id, name, len) [PVSITE_##id] = native_emit,
#include "site_kinds.def"
#undef PVSITE_KIND
	},
};
