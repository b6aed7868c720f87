/* table_print.h: `pvsites list` output, one site per line as text or JSON */
#ifndef TABLE_PRINT_H
#define TABLE_PRINT_H

#include <stdio.h>

#include "elfimage.h"
#include "repatch.h"

/* A decoded table and where it came from. */
struct site_table {
	uint64_t addr; /* guest address of .pvsites */
	struct pvsite *sites;
	size_t n;
};

/*
 * Where `list` reads the bytes the sites hold: the image file itself, or a
 * running or saved guest's memory (pvsites_ram.h).  The table is the same.
 */
struct site_source {
	const char *image;    /* the ELF image's path */
	const char *kind;     /* "image", "RAM dump" or "stream" */
	const char *path;     /* the file the bytes come from */
	struct repatch_mem mem;
};

/* A site matching no personality, and one outside the source's memory. */
#define SITE_FOREIGN  "HALF-WRITTEN/FOREIGN"
#define SITE_UNMAPPED "unmapped"
#define TALLY_MAX     64

/* How many sites hold what, filled by the printers. */
struct site_tally {
	struct {
		unsigned mask; /* personality_at() indices the bytes match */
		size_t n;
	} held[TALLY_MAX]; /* in order of first appearance */
	size_t nheld;
	size_t foreign, unmapped;
	long first_bad[5]; /* the first foreign or unmapped sites, -1 past the end */
};

/* Write `s` as a JSON string literal, quotes included. */
void print_json_string(FILE *out, const char *s);

/*
 * What a site holds in `mem`: the names of every matching personality
 * joined by '|' ("kvm", "native|kvm": a 0- or 1-byte pad is both),
 * SITE_FOREIGN or SITE_UNMAPPED, in buf.  Returns the match mask, 0 for
 * foreign, -1 for unmapped.
 */
long site_personality(const struct repatch_mem *mem, const struct pvsite *site, char *buf,
		      size_t cap);

/* Both print every site and the summary, and fill `tally` (may be NULL). */
void table_print_text(FILE *out, const struct site_source *src, const struct site_table *t,
		      struct site_tally *tally);
void table_print_json(FILE *out, const struct site_source *src, const struct site_table *t,
		      struct site_tally *tally);

#endif
