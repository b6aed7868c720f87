/* pvsites_ram.h: guest memory for `pvsites list --ram/--stream`: a RAM dump or the pages of a saved stream */
#ifndef PVSITES_RAM_H
#define PVSITES_RAM_H

#include <stddef.h>
#include <stdint.h>

#include "elfimage.h"
#include "repatch.h"

/* One PT_LOAD segment of the image: where its addresses live in guest-physical memory. */
struct ram_segment {
	uint64_t vaddr, paddr, memsz;
};

/*
 * Guest-physical memory from gpa 0, read-only.  Site and table addresses
 * are guest-virtual: an address inside one of the image's PT_LOAD segments
 * is moved to that segment's p_paddr (the reference guest's user task runs
 * at 1 GiB but is stored after the kernel), anything else is taken as
 * guest-physical == guest-virtual (the kernel's identity map).
 */
struct guest_ram {
	const char *path;  /* the dump or the stream */
	const char *what;  /* "RAM dump" or "stream" */
	uint8_t *bytes;
	size_t size;
	int mapped;	   /* bytes is an mmap of the dump (else malloc'd) */
	struct ram_segment *segs;
	size_t nsegs;
	/* From a stream's header and MACHINE_STATE (empty for a dump). */
	char personality[32];	   /* the personality the sender said the guest ran */
	char patch_personality[32]; /* PatchState.personality, "" if none */
	uint32_t patch_sites;
};

/* Each returns 0, or -1 after printing "pvsites: PATH: why" to stderr. */
int guest_ram_load_dump(struct guest_ram *ram, const char *path);
int guest_ram_load_stream(struct guest_ram *ram, const char *path);
/* Take the image's PT_LOAD segments for address translation. */
int guest_ram_segments(struct guest_ram *ram, const struct elfimage *img);
void guest_ram_free(struct guest_ram *ram);

/* Guest-physical address of `vaddr`, see above. */
uint64_t guest_ram_gpa(const struct guest_ram *ram, uint64_t vaddr);

/* A read-only accessor: NULL for ranges outside the RAM (and for writes). */
struct repatch_mem guest_ram_mem(struct guest_ram *ram);

#endif
