/* pvas.h: private interfaces of the annotating assembler wrapper (pvas) */
#ifndef PVAS_H
#define PVAS_H

#include <stddef.h>
#include <stdio.h>

#include "pvsites_abi.h"

/*
 * The wrapper works on the whole input in memory.  pvas_scan() walks it
 * statement by statement and records, for each sensitive instruction, a
 * site plus a text replacement of the instruction's bytes in the input.
 * Everything not replaced is copied verbatim by pvas_write(), so the
 * output has the same lines as the input and gas diagnostics still point
 * at the right line numbers.
 */

/* One input file's slice of the concatenated buffer, for diagnostics. */
struct pvas_input {
	const char *name;
	size_t start; /* offset of its first byte in pvas_unit.src */
};

/* What the classifier found out about one instruction. */
struct pvas_insn {
	int kind;	/* enum pvsite_kind, or -1: not sensitive */
	unsigned flags; /* PVSITE_F_* */
	unsigned reg;	/* GPR number or PVSITES_NONE */
	unsigned aux;
	unsigned width;
};

struct pvas_site {
	struct pvas_insn insn;
	unsigned len;	/* LEN from site_kinds.def */
	int cond;	/* inside .if: the site may not exist, its record is guarded */
	char *copy;	/* instruction text as assembled in the record */
};

/* Replace src[start, end) by text in the output. */
struct pvas_repl {
	size_t start, end;
	char *text;
};

struct pvas_unit {
	const char *src; /* all inputs, concatenated, NUL terminated */
	size_t len;
	struct pvas_input *inputs;
	size_t ninputs;
	int mode;	/* 16, 32 or 64: the .codeNN in effect (at the end: for restore) */
	int code16gcc;	/* the 16-bit mode came from .code16gcc */
	int start_mode; /* mode at the start of the input */
	int cond_depth; /* .if nesting at the statement being scanned */
	struct pvas_site *sites;
	size_t nsites, capsites;
	struct pvas_repl *repls;
	size_t nrepls, caprepls;
	unsigned warnings;
};

/* pvas_parse.c: statements, directives and sections. */
int pvas_scan(struct pvas_unit *u);
/* "name:line" of an offset, for diagnostics (static buffer). */
const char *pvas_where(const struct pvas_unit *u, size_t off);

/*
 * pvas_insn.c: instruction classification.
 * `mn` is the lowercase mnemonic, `ops` its operand text (comments removed),
 * `prefixes` the lowercase prefixes (space separated) that apply to it.
 */
void pvas_classify(const char *mn, const char *ops, const char *prefixes, int mode,
		   struct pvas_insn *out);
/* The same for the mov after a "# pvsite: KIND" marker (kind is that KIND). */
void pvas_classify_manual(int kind, const char *mn, const char *ops, int mode,
			  struct pvas_insn *out);
/* Kind number of a manual "# pvsite: NAME" marker, or -1. */
int pvas_manual_kind(const char *name, size_t n);
/* pvas_emit.c: sites, replacements and output. */
/*
 * Make a site of the instruction whose text is src[start, end) (prefix
 * text, if any, included in `text`), replacing it in the output.
 */
int pvas_add_site(struct pvas_unit *u, size_t start, size_t end, const char *text,
		  const struct pvas_insn *insn);
int pvas_add_repl(struct pvas_unit *u, size_t start, size_t end, const char *text);
/* Write the annotated input and the table chunk. */
int pvas_write(const struct pvas_unit *u, FILE *out);

/* pvas_main.c: small helpers shared by all files. */
void *pvas_xrealloc(void *p, size_t n);
char *pvas_xstrndup(const char *s, size_t n);
void pvas_die(const char *action, const char *reason);

#endif
