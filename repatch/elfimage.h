/* elfimage.h: an ELF64 x86-64 executable loaded into memory, checked, mapped by guest address */
#ifndef ELFIMAGE_H
#define ELFIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "repatch.h"

/* One section header, validated: a non-NOBITS section lies inside the file. */
struct elf_section {
	const char *name; /* NUL-terminated inside the section name table */
	uint32_t index;	  /* section header index (symbols refer to it) */
	uint32_t type;	  /* SHT_* */
	uint64_t flags;	  /* SHF_* */
	uint64_t addr;	  /* guest virtual address (0 if not allocated) */
	uint64_t offset;  /* file offset */
	uint64_t size;
	uint32_t link;	  /* sh_link: a symbol table's name table */
	uint64_t entsize;
};

/* A code symbol from .symtab (FUNC or NOTYPE, defined in a section). */
struct elf_symbol {
	const char *name;
	uint64_t value;
	uint32_t shndx;
	int is_func; /* STT_FUNC rather than STT_NOTYPE */
};

struct elfimage {
	const char *path;
	uint8_t *data; /* the whole file; patching writes into this copy */
	size_t size;
	unsigned mode; /* permission bits, kept by elfimage_write */
	struct elf_section *sections;
	size_t nsections;
	const struct elf_section *pvsites; /* the .pvsites table, or NULL */
	struct elf_symbol *symbols;	   /* sorted by value; NULL if no .symtab */
	size_t nsymbols;
};

/*
 * Read and check `path`.  On failure returns -1 and leaves a one-line
 * reason ("not an ELF file", ...) in `why`; `img` then owns nothing.
 */
int elfimage_load(struct elfimage *img, const char *path, char *why, size_t whylen);
void elfimage_free(struct elfimage *img);

/* The file bytes of a section (never NULL for a section that passed loading). */
const uint8_t *elfimage_section_bytes(const struct elfimage *img, const struct elf_section *sec);

/* True for a section whose bytes are code (allocated, executable, in the file). */
int elfimage_is_code(const struct elf_section *sec);

/*
 * The accessor repatch_rewrite and repatch_classify read sites through:
 * guest addresses of allocated sections map to the in-memory copy.
 */
struct repatch_mem elfimage_mem(struct elfimage *img);

/* The section holding [addr, addr+len), or NULL. */
const struct elf_section *elfimage_section_at(const struct elfimage *img, uint64_t addr,
					      size_t len);

/*
 * The nearest code symbol at or before `addr` inside section `sec`, or
 * NULL; *off receives addr minus the symbol's value.
 */
const struct elf_symbol *elfimage_symbol_before(const struct elfimage *img,
						const struct elf_section *sec, uint64_t addr,
						uint64_t *off);

/*
 * Write the in-memory copy to `out` atomically (a temporary file beside it,
 * then rename), with the input's permission bits.  0, or -1 with `why`.
 */
int elfimage_write(const struct elfimage *img, const char *out, char *why, size_t whylen);

#endif
