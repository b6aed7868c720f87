/* pvsites_abi.h: binary layout of the retained patch table (.pvsites), shared by guest and host */
#ifndef PVSITES_ABI_H
#define PVSITES_ABI_H

#include <stdint.h>

/*
 * The table is the contents of the allocated section .pvsites.  Every
 * assembled object contributes one chunk: a header followed by `count`
 * records.  The linker concatenates chunks; alignment padding between
 * them is zero bytes, which readers skip in 8-byte steps.  The layout
 * is position independent (self-relative offsets only), so the table is
 * valid wherever the image is loaded and is read straight from guest
 * memory.  pvsites(5) documents it.  Bump PVSITES_VERSION on any change.
 */
#define PVSITES_MAGIC	 0x54535650u /* "PVST" */
#define PVSITES_VERSION	 1u
#define PVSITES_ORIG_MAX 15u /* an x86 instruction is at most 15 bytes */
#define PVSITES_LEN_MAX	 64u /* longest site (instruction + pad) */
#define PVSITES_NONE	 0xffu /* "no register" in pvsite_rec.reg */

struct pvsites_chunk {
	uint32_t magic;
	uint16_t version;
	uint16_t rec_size; /* sizeof(struct pvsite_rec) */
	uint32_t count;
	uint32_t reserved; /* zero */
};

struct pvsite_rec {
	int64_t where;	   /* site address minus the address of this field */
	uint8_t kind;	   /* enum pvsite_kind */
	uint8_t len;	   /* bytes of the site: instruction plus pad */
	uint8_t orig_len;  /* bytes of the original instruction */
	uint8_t flags;	   /* PVSITE_F_* */
	uint8_t reg;	   /* general register operand 0..15, or PVSITES_NONE */
	uint8_t aux;	   /* crN, drN, segment, port or access width: see kind */
	uint8_t width;	   /* operand size in bytes (1, 2, 4, 8), 0 if none */
	uint8_t reserved;  /* zero */
	uint8_t orig[16];  /* the original instruction, zero filled */
};

/* Flags. */
#define PVSITE_F_CODE32 0x01u /* assembled under .code32 */
#define PVSITE_F_RIPREL 0x02u /* orig's last 4 bytes are a rip-relative disp32
				 assembled at &rec->orig, not at the site */
#define PVSITE_F_MEM	0x04u /* the instruction has a memory operand */
#define PVSITE_F_IMM	0x08u /* aux holds an immediate port number */
#define PVSITE_F_REP	0x10u /* rep-prefixed string I/O */
#define PVSITE_F_MANUAL 0x20u /* annotated by hand through <pvsites.h> */
#define PVSITE_F_KNOWN	0x3fu

/* Segment numbers in `aux` for segment kinds (the hardware sreg order). */
enum pvsite_seg { PVSEG_ES, PVSEG_CS, PVSEG_SS, PVSEG_DS, PVSEG_FS, PVSEG_GS };

enum pvsite_kind {
#define PVSITE_KIND(id, name, len) PVSITE_##id,
#include "site_kinds.def"
#undef PVSITE_KIND
	PVSITE_KIND_COUNT
};

#endif
