/* vm_sites.h: the guest's patch sites in its RAM, for moves between personalities */
#ifndef VM_SITES_H
#define VM_SITES_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "repatch.h"

/*
 * The table is the guest's retained .pvsites (guest-physical, identity
 * mapped), at the address the loader found in the image or the migration
 * stream carried.  load decodes it from RAM (untrusted: the decoder checks
 * every record) into a malloc'd array the caller frees.  repatch rewrites
 * every site from `from`'s bytes to `to`'s, all or nothing, after moving
 * each started vCPU in guest kernel code that stands in a NOP pad of `from`
 * to the site's end (vcpus[].rip is updated); a vCPU anywhere else inside
 * a site refuses the whole rewrite.  0, or -1 with vm->err.
 */
int vm__sites_load(struct vm *vm, uint64_t addr, uint64_t size, struct pvsite **sites, size_t *n);
int vm__sites_repatch(struct vm *vm, const struct pvsite *sites, size_t n, const char *from,
		      const char *to, struct vm_vcpu_state *vcpus);

#endif
