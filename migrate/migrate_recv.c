/* migrate_recv.c: the target side: decode the stream into a fresh VM, apply vCPU and device state only after END, then confirm or refuse */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devstate.h"
#include "personality_kvm_adopt.h"
#include "migrate.h"

/*
 * What the decoder hands out is kept until END has been read and checked:
 * a stream cut short after MACHINE_STATE must not leave a half-restored
 * machine that someone might run.  Pages are the exception: they go
 * straight into guest RAM, which nobody looks at before the state is set.
 */
struct receiver {
	struct vm *vm;
	struct vm_vcpu_state *vcpus;
	unsigned nr_vcpus;
	uint8_t *devices;
	size_t devices_len;
	uint8_t *held;		/* NIC_HELD body, checked */
	uint64_t held_len;
	uint64_t pages;
	struct stream_patch patch;
	int has_patch;
	struct migrate_share *share; /* the connection a shared RAM's file may come on */
	int shared;		     /* the RAM is the source's (migrate_shared.c) */
};

static int on_header(void *ctx, const struct stream_info *info, char *why, size_t whylen)
{
	struct receiver *r = ctx;

	if (info->shared.present) {
		if (migrate_shared_map(r->vm, info, r->share, why, whylen) < 0)
			return -1;
		r->shared = 1;
	}

	if (info->ram_size != r->vm->mem_size) {
		snprintf(why, whylen, "guest RAM is %llu bytes, the target VM has %llu",
			 (unsigned long long)info->ram_size, (unsigned long long)r->vm->mem_size);
		return -1;
	}
	if (info->nr_vcpus != r->vm->nr_vcpus) {
		snprintf(why, whylen, "guest has %u vCPUs, the target VM %u", info->nr_vcpus,
			 r->vm->nr_vcpus);
		return -1;
	}
	return 0;
}

static int on_pages(void *ctx, const uint64_t *gfns, uint32_t count, const uint8_t *data,
		    char *why, size_t whylen)
{
	struct receiver *r = ctx;
	uint32_t i;
	void *dst;

	for (i = 0; i < count; i++) {
		/* the decoder checked gfns against the header's RAM size, which
		 * on_header matched to ours; vm__gpa checks once more anyway */
		dst = vm__gpa(r->vm, gfns[i] * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);
		if (!dst) {
			snprintf(why, whylen, "gfn %#llx outside the target's RAM",
				 (unsigned long long)gfns[i]);
			return -1;
		}
		memcpy(dst, data + (size_t)i * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);
	}
	r->pages += count;
	return 0;
}

static int on_machine(void *ctx, const struct stream_machine *m, char *why, size_t whylen)
{
	struct receiver *r = ctx;

	if (m->patch) {
		r->patch = *m->patch;
		r->has_patch = 1;
	}
	r->vcpus = malloc(m->nr_vcpus * sizeof *r->vcpus);
	r->devices = m->devices_len ? malloc(m->devices_len) : NULL;
	if (!r->vcpus || (m->devices_len && !r->devices)) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	memcpy(r->vcpus, m->vcpus, m->nr_vcpus * sizeof *r->vcpus);
	r->nr_vcpus = m->nr_vcpus;
	if (m->devices_len)
		memcpy(r->devices, m->devices, m->devices_len);
	r->devices_len = m->devices_len;
	return 0;
}

/* Walk a NIC_HELD body, checked whole first; with vm NULL only check it. */
static int held_walk(const uint8_t *b, uint64_t len, struct vm *vm, char *why, size_t whylen)
{
	const uint8_t *f;
	uint64_t off = 0;
	uint32_t i, count;
	size_t flen;

	if (stream_frames_check(b, len, &count, why, whylen) < 0)
		return -1;
	for (i = 0; vm && i < count; i++) {
		f = stream_frames_next(b, &off, &flen);
		if (vm__platform_nic_hold_frame(vm, f, flen) < 0) {
			snprintf(why, whylen, "frame %u: %s", i, vm->err);
			return -1;
		}
	}
	return 0;
}

static int on_optional(void *ctx, uint32_t type, const uint8_t *body, uint64_t len, char *why,
		       size_t whylen)
{
	struct receiver *r = ctx;
	struct vm_nic_stats st;

	if (type != STREAM_REC_NIC_HELD)
		return 0;
	if (!vm__platform_nic_stats(r->vm, &st)) {
		snprintf(why, whylen, "the guest had a NIC, this target VM has none");
		return -1;
	}
	if (r->held) {
		snprintf(why, whylen, "second NIC_HELD record");
		return -1;
	}
	if (held_walk(body, len, NULL, why, whylen) < 0)
		return -1;
	if (!(r->held = malloc(len))) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	memcpy(r->held, body, len);
	r->held_len = len;
	return 0;
}

/* kvm: the runtime beneath the guest, from the guest's view (its sites
 * were rewritten to kvm already). */
static int adopt(struct receiver *r, char *why, size_t whylen)
{
	struct vm_kvm_adopt a = {
		.table_addr = r->vm->sites_addr, .table_size = r->vm->sites_size,
		.vcpus = r->vcpus, .devices = r->devices, .devices_len = r->devices_len,
	};

	if (vm__kvm_host_adopt(r->vm, &a) < 0) {
		snprintf(why, whylen, "%s", r->vm->err);
		return -1;
	}
	return r->held ? held_walk(r->held, r->held_len, r->vm, why, whylen) : 0;
}

/* END was read: make the VM the guest.  The sites first (the table must
 * match its digest and every vCPU stand at a safe point), then device
 * state, the other part that can still refuse (models present, field
 * ranges), then the vCPUs. */
static int apply(struct receiver *r, char *why, size_t whylen)
{
	struct devset set;
	unsigned i;
	int rc;

	if (r->nr_vcpus != r->vm->nr_vcpus) {
		snprintf(why, whylen, "%u vCPU states for %u vCPUs", r->nr_vcpus, r->vm->nr_vcpus);
		return -1;
	}
	if (migrate_repatch(r->vm, r->has_patch ? &r->patch : NULL, r->vcpus, why, whylen) < 0)
		return -1;
	if (r->vm->rt)
		return adopt(r, why, whylen);
	vm__platform_devset(r->vm, &set);
	pthread_mutex_lock(&r->vm->dev_lock);
	rc = devstate_restore(&set, r->devices, r->devices_len, why, whylen);
	pthread_mutex_unlock(&r->vm->dev_lock);
	if (rc < 0)
		return -1;
	if (r->held && held_walk(r->held, r->held_len, r->vm, why, whylen) < 0)
		return -1;
	for (i = 0; i < r->nr_vcpus; i++)
		if (vm__set_vcpu_state(r->vm, i, &r->vcpus[i]) < 0) {
			snprintf(why, whylen, "vCPU %u: %s", i, r->vm->err);
			return -1;
		}
	return 0;
}

static void local_host(struct stream_host *h, const struct vm *vm)
{
	/* any source personality: the sites are re-patched to ours */
	static const char *const pers[] = { "native", "kvm" };

	memset(h, 0, sizeof *h);
	if (stream_cpu_local(&h->cpu) < 0)
		memset(&h->cpu, 0, sizeof h->cpu); /* every CPU check then refuses */
	h->personalities = pers;
	h->nr_personalities = 2;
	h->max_ram = vm->mem_size;
	h->max_vcpus = vm->nr_vcpus;
	h->image_abi = MIGRATE_IMAGE_ABI;
	h->patch_table_version = MIGRATE_PATCH_TABLE_VERSION;
}

/*
 * Copied RAM, everything applied and nothing run: READY, GO, OK.  Without
 * GO the source keeps (or resumes) the guest, so ours never runs.  After
 * GO the guest is ours; if our OK cannot be written we still do not run
 * it: on a direct socket the source reads the end without OK as "never
 * ran" and resumes; through pvmigrated the daemon, which knows we did not
 * run it, answers the source's question the same way.  -1: refused (an
 * ERROR went where there was someone to tell).
 */
static int commit_copy(const struct stream_io *in, struct migrate_share *sh, char *why,
		       size_t whylen)
{
	int rc = migrate_commit_await(in, sh ? sh->test_hook : NULL, sh ? sh->test_ctx : NULL,
				      sh ? &sh->t_ready : NULL, why, whylen);

	if (rc > 0)
		migrate_reply_send(in, MIGRATE_REPLY_ERROR, why); /* best effort */
	if (rc)
		return -1;
	if (sh) {
		sh->t_go = vm__now_ns();
		if (sh->on_go)
			sh->on_go(sh->on_go_ctx);
	}
	if (migrate_reply_send(in, MIGRATE_REPLY_OK, NULL) < 0) {
		snprintf(why, whylen, "GO taken, but the OK could not be written: the guest is not "
			 "run here");
		return -1;
	}
	return 0;
}

int migrate_receive(struct vm *dst, const struct stream_io *in, char *why, size_t whylen)
{
	return migrate_receive_ex(dst, in, NULL, why, whylen);
}

int migrate_receive_ex(struct vm *dst, const struct stream_io *in, struct migrate_share *share,
		       char *why, size_t whylen)
{
	struct receiver r = { .vm = dst, .share = share };
	struct stream_sink sink = { &r, on_header, on_pages, on_machine, on_optional };
	struct stream_host host;
	char reason[400];
	int rc = -1;

	local_host(&host, dst);
	/* The target's own NIC must not feed its queue before the source's
	 * held frames are in it, nor write a frame into RAM being loaded. */
	vm__platform_nic_freeze(dst);
	if (stream_decode(in, &host, &sink, reason, sizeof reason) < 0) {
		snprintf(why, whylen, "migrate: receive: %s", reason);
	} else if (apply(&r, reason, sizeof reason) < 0) {
		snprintf(why, whylen, "migrate: restore: %s", reason);
	} else if (r.shared && migrate_shared_commit_recv(dst, in, share, r.has_patch ? &r.patch
							   : NULL, r.vcpus, reason, sizeof reason) < 0) {
		snprintf(why, whylen, "migrate: commit: %s", reason);
		goto out; /* refused already, if the source still listens */
	} else if (!r.shared && commit_copy(in, share, reason, sizeof reason) < 0) {
		snprintf(why, whylen, "migrate: commit: %s", reason);
		goto out; /* refused already, where there was someone to tell */
	} else {
		vm__platform_nic_thaw(dst);
		migrate_late_note(dst, r.devices, r.devices_len); /* the announce's MAC */
		rc = 0;
		goto out;
	}
	migrate_reply_send(in, MIGRATE_REPLY_ERROR, why); /* best effort: it may be gone */
out:
	free(r.vcpus);
	free(r.devices);
	free(r.held);
	return rc;
}
