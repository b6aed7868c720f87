/* vm_sites.c: a guest's retained site table read from its RAM, and every site rewritten there from one personality to another with the vCPUs moved to safe points */
#include <stdlib.h>

#include "vm_sites.h"

static uint8_t *ram_map(void *ctx, uint64_t addr, size_t len, int write)
{
	(void)write;
	return vm__gpa(ctx, addr, len);
}

int vm__sites_load(struct vm *vm, uint64_t addr, uint64_t size, struct pvsite **sites, size_t *n)
{
	struct repatch_err err = { 0 };
	const void *t = vm__gpa(vm, addr, size);
	long count;

	*sites = NULL;
	*n = 0;
	if (!size || !t)
		return vm__fail(vm, "sites: the table %#llx+%#llx is not in guest RAM",
				(unsigned long long)addr, (unsigned long long)size);
	count = pvsites_count(t, size, &err);
	if (count < 0)
		return vm__fail(vm, "sites: the table in guest RAM: %s", err.msg);
	if (!(*sites = calloc(count ? (size_t)count : 1, sizeof **sites)))
		return vm__fail(vm, "sites: out of memory");
	count = pvsites_decode(t, size, addr, *sites, (size_t)count, &err);
	if (count < 0) {
		free(*sites);
		*sites = NULL;
		return vm__fail(vm, "sites: the table in guest RAM: %s", err.msg);
	}
	*n = (size_t)count;
	return 0;
}

int vm__sites_repatch(struct vm *vm, const struct pvsite *sites, size_t n, const char *from,
		      const char *to, struct vm_vcpu_state *vcpus)
{
	const struct personality *pf = personality_find(from), *pt = personality_find(to);
	const struct repatch_mem mem = { vm, ram_map };
	struct repatch_err err = { 0 };
	uint64_t safe[VM_MAX_VCPUS];
	unsigned i;

	if (!pf || !pt)
		return vm__fail(vm, "sites: personality '%s' is not built in", pf ? to : from);
	/* Every vCPU must stand where the target's bytes have an instruction
	 * boundary: in a NOP pad of `from` it moves to the site's end. */
	for (i = 0; i < vm->nr_vcpus; i++) {
		safe[i] = vcpus[i].rip;
		if (!vcpus[i].started || vcpus[i].cs.dpl == 3)
			continue;
		if (repatch_safe_ip(sites, n, pf, vcpus[i].rip, &safe[i], &err) < 0)
			return vm__fail(vm, "sites: vCPU %u at %#llx is not at a safe point: %s", i,
					(unsigned long long)vcpus[i].rip, err.msg);
	}
	if (repatch_rewrite(sites, n, &mem, pf, pt, &err) < 0)
		return vm__fail(vm, "sites: rewriting %s -> %s: %s", from, to, err.msg);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpus[i].rip = safe[i];
	return 0;
}
