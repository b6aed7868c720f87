/* test_rt_dev_platform.c: the runtime's PC next to the host's: PCI config space and ELCR as pvhost gives native guests, PIT IRQ0 edges on the host clock, port 0x61, BAR moves */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "test_rt_dev_fake.h"

/*
 * The host side is the real one: backends/platform_devices.c and
 * platform_nic.c on a struct vm whose backend does nothing (no /dev/kvm
 * needed: the platform only registers port and MMIO ranges, which
 * vm__pio/vm__mmio dispatch).  The guest's view of both is compared
 * through the same accesses a guest makes.
 */

static int fake_create(struct vm *vm) { return 0; }
static void fake_destroy(struct vm *vm) {}
static const struct vm_ops fake_ops = { .name = "none", .create = fake_create, .destroy = fake_destroy };

static uint32_t host_in(struct vm *vm, unsigned port, unsigned size)
{
	uint8_t b[4] = { 0 };

	vm__pio(vm, (uint16_t)port, 0, size, b);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void host_out(struct vm *vm, unsigned port, unsigned size, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	vm__pio(vm, (uint16_t)port, 1, size, b);
}

static uint32_t host_mmio_rd(struct vm *vm, uint64_t gpa)
{
	uint8_t b[4] = { 0 };

	vm__mmio(vm, gpa, 0, 4, b);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static struct vm *host_platform(int *lfd, char *path, size_t pathlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cause[256], spec[128];
	struct vm *vm;

	snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/test_rt_dev_platform.%d.sock", (int)getpid());
	snprintf(path, pathlen, "%s", sa.sun_path);
	unlink(sa.sun_path);
	*lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(*lfd, 1) < 0) {
		perror("test_rt_dev_platform: peer socket");
		return NULL;
	}
	vm = vm__create(&fake_ops, 64ull << 20, 1, cause, sizeof cause);
	if (!vm) {
		fprintf(stderr, "test_rt_dev_platform: vm__create: %s\n", cause);
		return NULL;
	}
	snprintf(spec, sizeof spec, "socket:%s", sa.sun_path);
	if (vm__platform_init(vm, -1) < 0 || vm__platform_add_nic(vm, spec) < 0) {
		fprintf(stderr, "test_rt_dev_platform: host platform: %s\n", vm->err);
		vm__destroy(vm);
		return NULL;
	}
	return vm;
}

static void test_pci_like_host(void)
{
	static const uint8_t mac[6] = FAKE_MAC;
	unsigned slot, reg, diff = 0, i;
	char path[108];
	int lfd = -1;
	struct vm *vm;
	uint32_t a, h, r;

	fake_boot(1);
	vm = host_platform(&lfd, path, sizeof path);
	CHECK(vm != NULL, "host platform with a NIC");
	if (!vm)
		return;
	/* Every dword of every slot's config space, as a guest's bus scan reads it. */
	for (slot = 0; slot < 32; slot++)
		for (reg = 0; reg < 256; reg += 4) {
			a = 0x80000000u | slot << 11 | reg;
			host_out(vm, 0xcf8, 4, a);
			g_out(0xcf8, 4, a);
			h = host_in(vm, 0xcfc, 4);
			r = g_in(0xcfc, 4);
			if (h != r && diff++ < 5)
				fprintf(stderr, "slot %u reg %#x: host %#x runtime %#x\n", slot, reg, h, r);
		}
	CHECK(diff == 0, "config space of all 32 slots identical (%u dwords differ)", diff);
	/* Narrow reads at the data port's other bytes. */
	for (i = 0; i < 4; i++) {
		host_out(vm, 0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | 0x3c);
		g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | 0x3c);
		CHECK(host_in(vm, 0xcfc + i, 1) == g_in(0xcfc + i, 1), "byte %u of dword 0x3c", i);
	}
	g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11);
	CHECK(g_in(0xcfc, 4) == 0x0022100bu, "100b:0022 at slot %d", FAKE_NIC_SLOT);
	g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | 0x10);
	CHECK(g_in(0xcfc, 4) == (FAKE_NIC_IO | 1), "BAR0: I/O at %#x", FAKE_NIC_IO);
	g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | 0x14);
	CHECK(g_in(0xcfc, 4) == FAKE_NIC_MEM, "BAR1: memory at %#x", FAKE_NIC_MEM);
	g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | 0x3c);
	CHECK((g_in(0xcfc, 4) & 0xffff) == (0x100 | FAKE_NIC_IRQ), "INTA# on IRQ %d", FAKE_NIC_IRQ);
	g_out(0xcf8, 4, 0x80000000u);
	CHECK(g_in(0xcfc, 4) == 0x12378086u, "i440FX host bridge at slot 0");
	CHECK(g_in(0x4d0, 1) == host_in(vm, 0x4d0, 1) && g_in(0x4d1, 1) == host_in(vm, 0x4d1, 1),
	      "ELCR as the host's");
	CHECK(g_in(0x4d1, 1) == 1u << (FAKE_NIC_IRQ - 8), "IRQ 11 level-triggered, nothing else");

	/* The NIC's registers before any driver: same through either BAR. */
	for (reg = 0; reg < 0x100; reg += 4)
		if (reg != 0x10) /* ISR reads clear; both are 0 anyway */
			CHECK(host_mmio_rd(vm, FAKE_NIC_MEM + reg) == g_rd(reg), "register %#x", reg);
	for (i = 0; i < 3; i++) {
		g_wr(0x48, i * 2);
		r = g_rd(0x4c);
		CHECK(r == (uint32_t)(mac[2 * i] | mac[2 * i + 1] << 8), "MAC word %u from the filter RAM", i);
		CHECK(g_in(FAKE_NIC_IO + 0x4c, 4) == r, "the I/O BAR reads the same register");
	}
	/* Ports that are not the runtime's go to the host. */
	a = 0;
	CHECK(rt_dev_pio(0x501, 1, 1, &a) == 0 && rt_dev_pio(0x510, 4, 0, &a) == 0 &&
	      rt_dev_pio(0x80, 1, 1, &a) == 0 && rt_dev_pio(FAKE_NIC_IO + 0x100, 4, 0, &a) == 0,
	      "exit, AP mailbox, port 0x80 and ports past the NIC are forwarded");
	{
		uint64_t v = 0;

		CHECK(rt_dev_mmio(0xfec00000u, 4, 0, &v) == 0 && rt_dev_mmio(0x1000, 4, 0, &v) == 0,
		      "MMIO outside the NIC's BAR is forwarded");
	}
	vm__destroy(vm);
	close(lfd);
	unlink(path);
}

/* BAR sizing and moves, as firmware or an OS does them. */
static void test_bar_moves(void)
{
	uint64_t v = 0;
	uint32_t a = 0x80000000u | FAKE_NIC_SLOT << 11;

	fake_boot(1);
	g_out(0xcf8, 4, a | 0x14);
	g_out(0xcfc, 4, 0xffffffffu);
	CHECK(g_in(0xcfc, 4) == 0xfffff000u, "BAR1 sizes as 4 KiB");
	CHECK(rt_dev_mmio(FAKE_NIC_MEM, 4, 0, &v) == 0, "all-ones BAR decodes nothing");
	g_out(0xcfc, 4, 0xfebe0000u);
	CHECK(rt_dev_mmio(FAKE_NIC_MEM, 4, 0, &v) == 0, "old window gone");
	CHECK(rt_dev_mmio(0xfebe0000u + 0x58, 4, 0, &v) == 1 && v == 0x0103, "SRR at the new window");
	g_out(0xcf8, 4, a | 0x10);
	g_out(0xcfc, 4, 0xd000);
	CHECK(rt_dev_pio(FAKE_NIC_IO + 0x58, 4, 0, &a) == 0, "old I/O window gone");
	CHECK(g_in(0xd000 + 0x58, 4) == 0x0103, "SRR at the new I/O window");
	g_out(0xcf8, 4, 0x80000000u | FAKE_NIC_SLOT << 11 | 0x04);
	g_out(0xcfc, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	CHECK(rt_dev_mmio(0xfebe0000u + 0x58, 4, 0, &v) == 0, "memory decode off: not ours");
	CHECK(g_in(0xd000 + 0x58, 4) == 0x0103, "I/O decode still on");
}

/* Edge k of a count of `count` ticks comes at ceil(k * count * 1e9 / HZ) ns. */
static uint64_t pit_edge_ns(uint64_t k, uint64_t count)
{
	__extension__ unsigned __int128 t = (unsigned __int128)k * count * 1000000000u;

	return (uint64_t)((t + I8254_HZ - 1) / I8254_HZ);
}

static void test_pit_100hz(void)
{
	struct rt_shared *sh;
	uint64_t load, d, k, early_irq = 0, late_irq = 0, wrong_deadline = 0;

	fake_boot(0);
	sh = fake_shared();
	g_pic_init(1u << 0 | 1u << 2);
	CHECK(sh->timer_deadline_ns == UINT64_MAX, "no deadline before the PIT runs");
	load = FAKE_T0_NS + 1234567;
	fake_set_now(load);
	g_out(0x43, 1, 0x34); /* the reference guest: channel 0, lo/hi, mode 2 */
	g_out(0x40, 1, 11932 & 0xff);
	g_out(0x40, 1, 11932 >> 8);
	CHECK(sh->timer_deadline_ns == load + pit_edge_ns(1, 11932), "first deadline %llu",
	      (unsigned long long)(sh->timer_deadline_ns - load));
	CHECK(host.bells_timer == 1, "one timer bell: the deadline moved earlier than none");

	for (k = 1; k <= 300; k++) {
		d = load + pit_edge_ns(k, 11932);
		if (sh->timer_deadline_ns != d)
			wrong_deadline++;
		/* News well before the deadline (a stale one): no edge yet. */
		fake_set_now(d - 150000);
		fake_news(RT_NEWS_TIMER);
		rt_dev_poll();
		if (rt_dev_irq_pending())
			early_irq++;
		/* Every 3rd tick the host's clock leads ours by 40 us: its word counts. */
		fake_set_now(k % 3 ? d : d - 40000);
		fake_news(RT_NEWS_TIMER);
		rt_dev_poll();
		if (!rt_dev_irq_pending() || rt_dev_irq_ack() != 0x20)
			late_irq++;
		g_out(0x20, 1, 0x20);
	}
	CHECK(wrong_deadline == 0, "300 deadlines at k * 11932 PIT ticks (%llu wrong)",
	      (unsigned long long)wrong_deadline);
	CHECK(early_irq == 0 && late_irq == 0, "IRQ0 exactly at each deadline (%llu early, %llu missing)",
	      (unsigned long long)early_irq, (unsigned long long)late_irq);
	CHECK(host.bells_timer == 1, "no bell per tick: the host re-reads after its news (%u)",
	      host.bells_timer);

	/* 1000 Hz: earlier than the host's deadline -> bell; 10 Hz: later -> none. */
	d = sh->timer_deadline_ns;
	load = d - 5000000; /* mid-period */
	fake_set_now(load);
	g_out(0x43, 1, 0x34);
	g_out(0x40, 1, 1193 & 0xff);
	g_out(0x40, 1, 1193 >> 8);
	CHECK(sh->timer_deadline_ns == load + pit_edge_ns(1, 1193) && host.bells_timer == 2,
	      "faster rate: earlier deadline, one bell");
	d = sh->timer_deadline_ns;
	g_out(0x43, 1, 0x34);
	g_out(0x40, 1, 0);
	g_out(0x40, 1, 0); /* 65536: 18.2 Hz */
	CHECK(sh->timer_deadline_ns == load + pit_edge_ns(1, 65536) && host.bells_timer == 2,
	      "slower rate: later deadline, no bell");
	fake_set_now(d); /* the host's old deadline fires */
	fake_news(RT_NEWS_TIMER);
	rt_dev_poll();
	CHECK(!rt_dev_irq_pending() && sh->timer_deadline_ns == load + pit_edge_ns(1, 65536),
	      "a stale deadline's news raises nothing and republishes");
	/* A host that was late by 3.5 periods: one edge (coalesced), next in the future. */
	fake_set_now(load + pit_edge_ns(4, 65536) - 1000000);
	fake_news(RT_NEWS_TIMER);
	rt_dev_poll();
	CHECK(rt_dev_irq_pending() && sh->timer_deadline_ns == load + pit_edge_ns(4, 65536),
	      "late news: one edge, the next deadline after now");
}

/* Port 0x61: gate 2 and OUT2, what Linux calibrates the TSC against. */
static void test_port61(void)
{
	fake_boot(0);
	fake_set_now(FAKE_T0_NS + 1000);
	g_out(0x61, 1, 0x01);
	g_out(0x43, 1, 0xb0); /* channel 2, lo/hi, mode 0 */
	g_out(0x42, 1, 1000 & 0xff);
	g_out(0x42, 1, 1000 >> 8);
	CHECK(!(g_in(0x61, 1) & 0x20), "OUT2 low while counting");
	fake_set_now(FAKE_T0_NS + 1000 + pit_edge_ns(1, 1000) - 1);
	CHECK(!(g_in(0x61, 1) & 0x20), "still low a ns before terminal count");
	fake_set_now(FAKE_T0_NS + 1000 + pit_edge_ns(1, 1000));
	CHECK((g_in(0x61, 1) & 0x21) == 0x21, "OUT2 high at terminal count, gate bit reads back");
}

int main(void)
{
	test_pci_like_host();
	test_bar_moves();
	test_pit_100hz();
	test_port61();
	return tap_done("test_rt_dev_platform");
}
