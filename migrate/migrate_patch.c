/* migrate_patch.c: which personality a VM runs, the guest's patch state for the stream, and the target's re-patching from the source's personality to its own */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "vm_sites.h"

const char *migrate_personality(const struct vm *vm)
{
	return vm->rt ? "kvm" : "native";
}

/* SHA-256 of the table as it is in guest RAM now. */
static int table_digest(struct vm *vm, uint64_t addr, uint64_t size,
			uint8_t digest[STREAM_DIGEST_LEN])
{
	const uint8_t *t = vm__gpa(vm, addr, size);

	if (!t)
		return -1;
	SHA256(t, size, digest);
	return 0;
}

int migrate_patch_state(struct vm *vm, struct stream_patch *p, char *why, size_t whylen)
{
	struct pvsite *sites;
	size_t n;

	memset(p, 0, sizeof *p);
	snprintf(p->personality, sizeof p->personality, "%s", migrate_personality(vm));
	if (!vm->sites_size)
		return 0; /* no sites known: nr_sites 0, no table */
	if (vm__sites_load(vm, vm->sites_addr, vm->sites_size, &sites, &n) < 0 ||
	    table_digest(vm, vm->sites_addr, vm->sites_size, p->digest) < 0) {
		snprintf(why, whylen, "patch state: %s", vm->err);
		return -1;
	}
	free(sites);
	p->nr_sites = (uint32_t)n;
	p->table_addr = vm->sites_addr;
	p->table_size = vm->sites_size;
	return 0;
}

int migrate_repatch(struct vm *vm, const struct stream_patch *p, struct vm_vcpu_state *vcpus,
		    char *why, size_t whylen)
{
	const char *to = migrate_personality(vm);
	uint8_t digest[STREAM_DIGEST_LEN];
	struct pvsite *sites = NULL;
	size_t n;
	int rc = -1;

	if (!p || !p->table_size) {
		if (p && p->nr_sites && strcmp(p->personality, to)) {
			snprintf(why, whylen, "the guest's sites hold '%s', this target runs '%s', and "
				 "the stream does not say where the site table is", p->personality, to);
			return -1;
		}
		if (vm->rt) {
			snprintf(why, whylen, "the guest has no site table: the kvm runtime could not "
				 "find its sensitive instructions");
			return -1;
		}
		vm->sites_addr = vm->sites_size = 0;
		return 0;
	}
	if (table_digest(vm, p->table_addr, p->table_size, digest) < 0 ||
	    memcmp(digest, p->digest, sizeof digest)) {
		snprintf(why, whylen, "the site table at %#llx+%#llx in the received RAM does not "
			 "match the stream's digest", (unsigned long long)p->table_addr,
			 (unsigned long long)p->table_size);
		return -1;
	}
	if (vm__sites_load(vm, p->table_addr, p->table_size, &sites, &n) < 0) {
		snprintf(why, whylen, "%s", vm->err);
		return -1;
	}
	if (n != p->nr_sites) {
		snprintf(why, whylen, "the site table has %zu sites, the stream says %u", n,
			 p->nr_sites);
	} else if (vm__sites_repatch(vm, sites, n, p->personality, to, vcpus) < 0) {
		snprintf(why, whylen, "%s", vm->err);
	} else {
		vm->sites_addr = p->table_addr;
		vm->sites_size = p->table_size;
		rc = 0;
	}
	free(sites);
	return rc;
}
