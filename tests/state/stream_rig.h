/* stream_rig.h: the stream test's guest (RAM, two vCPUs, devices, patch state) and its receiving side, which checks what it is handed */
#ifndef STREAM_RIG_H
#define STREAM_RIG_H

#include "devstate_rig.h"
#include "stream.h"
#include "vcpustate.h"

#define BIG_PAGES 256	/* the round trip's guest: 1 MiB */
#define SMALL_PAGES 16	/* the refusal tests' guest: 64 KiB */

static uint8_t src_ram[BIG_PAGES * STREAM_PAGE_SIZE], dst_ram[BIG_PAGES * STREAM_PAGE_SIZE];
static struct vm_vcpu_state vcpus[2];
static struct stream_patch patch = { .personality = "kvm", .nr_sites = 7714 };
static uint8_t *devs;
static size_t devs_len;
static const char *const pers[] = { "native", "kvm" };
static uint64_t seed = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* A vCPU of a 64-bit guest in the middle of things, every field in range. */
static void fill_vcpu(struct vm_vcpu_state *st, unsigned cpu)
{
	struct vm_segment code = { 0, 0xffffffff, 0x10, 11, 1, 0, 0, 1, 1, 1, 0, 0 };
	struct vm_segment data = { 0, 0xffffffff, 0x18, 3, 1, 0, 1, 1, 0, 1, 0, 0 };
	unsigned i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < VM_NR_GPRS; i++)
		st->gpr[i] = rnd();
	st->rip = 0xffffffff81000000ull + (rnd() & 0xffffff);
	st->rflags = 0x246 | (cpu ? 0x200000 : 0);
	st->cs = code;
	st->ds = st->es = st->ss = data;
	st->fs = data;
	st->fs.base = 0x00007f1234560000ull;
	st->gs = data;
	st->gs.base = 0xffff888000000000ull + cpu * 0x10000;
	st->tr = (struct vm_segment){ 0xfffffe0000003000ull, 0x4087, 0x40, 11, 1, 0, 0, 0, 0, 0, 0, 0 };
	st->ldt = (struct vm_segment){ .unusable = 1 };
	st->gdt = (struct vm_dtable){ 0xfffffe0000001000ull, 0x7f };
	st->idt = (struct vm_dtable){ 0xfffffe0000000000ull, 0xfff };
	st->cr0 = 0x80050033;
	st->cr2 = rnd();
	st->cr3 = rnd() & 0x000ffffffffff000ull;
	st->cr4 = 0x3606f0;
	st->cr8 = cpu;
	st->efer = 0xd01;
	st->apic_base = 0xfee00800ull | (cpu ? 0 : 0x100);
	for (i = 0; i < 4; i++)
		st->dr[i] = rnd();
	st->dr6 = 0xffff0ff0;
	st->dr7 = 0x400;
	st->fs_base = st->fs.base;
	st->gs_base = st->gs.base;
	st->kernel_gs_base = 0x00007ffff7fd0000ull;
	st->star = 0x0023001000000000ull;
	st->lstar = 0xffffffff81a00080ull;
	st->cstar = 0xffffffff81a01000ull;
	st->sfmask = 0x47700;
	st->sysenter_cs = 0x10;
	st->sysenter_esp = 0xfffffe0000003000ull;
	st->sysenter_eip = 0xffffffff81a01500ull;
	st->tsc = rnd();
	st->tsc_aux = cpu;
	st->pat = 0x0007040600070406ull;
	st->misc_enable = 0x850089;
	st->xcr0 = 7;
	for (i = 0; i < VM_XSAVE_SIZE; i++)
		st->xsave[i] = (uint8_t)rnd();
	st->events = (struct vm_events){ 1, 0, 14, 1, 2, 0, 0x31, 0, 1, 0, 1, 1, 0x9a };
	st->pending_irq_bitmap[cpu + 1] = 1ull << 5;
	st->mp_state = cpu ? 3 : 0;
	st->started = 1;
}

/* ---- the receiving side ---- */

static struct {
	unsigned headers, batches, pages, machines, stats;
	uint64_t ram_pages;
	uint64_t stat[3];
	int vcpus_equal, devs_equal, patch_equal, recode, vcpu_recode, restored;
	char restore_why[160];
} got;

static int on_header(void *ctx, const struct stream_info *info, char *why, size_t whylen)
{
	got.headers++;
	got.ram_pages = info->ram_size / STREAM_PAGE_SIZE;
	if (got.ram_pages > BIG_PAGES) {
		snprintf(why, whylen, "no room for %llu pages", (unsigned long long)got.ram_pages);
		return -1;
	}
	return 0;
}

static int on_pages(void *ctx, const uint64_t *gfns, uint32_t count, const uint8_t *data,
		    char *why, size_t whylen)
{
	uint32_t i;

	got.batches++;
	for (i = 0; i < count; i++) {
		if (gfns[i] >= got.ram_pages)
			abort(); /* the decoder promised */
		memcpy(dst_ram + gfns[i] * STREAM_PAGE_SIZE, data + (size_t)i * STREAM_PAGE_SIZE,
		       STREAM_PAGE_SIZE);
		got.pages++;
	}
	return 0;
}

/* As CRIU's crit-recode: what was decoded encodes to the very same bytes. */
static int packs_to(const ProtobufCMessage *msg, const uint8_t *want, size_t want_len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *b = malloc(n ? n : 1);
	int same = b && n == want_len && protobuf_c_message_pack(msg, b) == n && !memcmp(b, want, n);

	free(b);
	return same;
}

static int on_machine(void *ctx, const struct stream_machine *m, char *why, size_t whylen)
{
	static struct host hb;
	struct vcpu_wire w;
	size_t n;
	uint8_t *b;
	unsigned i;

	got.machines++;
	got.vcpus_equal = m->nr_vcpus == 2 && !memcmp(m->vcpus, vcpus, sizeof(vcpus));
	got.devs_equal = m->devices && m->devices_len == devs_len &&
			 !memcmp(m->devices, devs, devs_len);
	got.patch_equal = m->patch && !memcmp(m->patch, &patch, sizeof(patch));
	got.recode = packs_to(&m->msg->base, m->raw, m->raw_len);
	/* and the decoded struct converts back to the message it came from */
	got.vcpu_recode = 1;
	for (i = 0; i < m->nr_vcpus; i++) {
		vcpustate_to_wire(&m->vcpus[i], &w);
		n = protobuf_c_message_get_packed_size(&m->msg->vcpus[i]->base);
		b = malloc(n);
		got.vcpu_recode &= b && protobuf_c_message_pack(&m->msg->vcpus[i]->base, b) == n &&
				   packs_to(&w.msg.base, b, n);
		free(b);
	}
	if (m->devices) {
		host_init(&hb, 5000000000ull, (const uint8_t *)"\0\0\0\0\0\0");
		got.restored = devstate_restore(&hb.set, m->devices, m->devices_len, got.restore_why,
						sizeof(got.restore_why)) == 0;
	}
	return 0;
}

static int on_optional(void *ctx, uint32_t type, const uint8_t *body, uint64_t len, char *why,
		       size_t whylen)
{
	unsigned i;

	if (type != STREAM_REC_STATISTICS || len < 24)
		return 0;
	got.stats++;
	for (i = 0; i < 3; i++)
		memcpy(&got.stat[i], body + 8 * i, 8); /* little-endian host */
	return 0;
}

static const struct stream_sink sink = { NULL, on_header, on_pages, on_machine, on_optional };

static struct stream_host host_local, host_fake;

static int decode(const uint8_t *buf, size_t len, const struct stream_host *h, char *why,
		  size_t whylen)
{
	struct stream_mem m = { (uint8_t *)buf, len, len, 0 };
	struct stream_io io;

	memset(&got, 0, sizeof(got));
	memset(dst_ram, 0, sizeof(dst_ram));
	stream_io_mem(&io, &m);
	why[0] = '\0';
	return stream_decode(&io, h, &sink, why, whylen);
}

#endif
