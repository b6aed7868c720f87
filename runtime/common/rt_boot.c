/* rt_boot.c: BSP boot (check the boot block, set up every CPU, decode the guest's table, rewrite it native -> kvm) and adopting a running guest */
#include "rt_channel.h"
#include "rt_cpu.h"

/*
 * rt_entry.S calls rt_boot_main on the host's page tables (guest RAM
 * identity mapped, the guest image already loaded) and, if it returns,
 * drops to 32-bit protected mode and jumps to the guest's Multiboot entry.
 * Any failure is final: rt_boot.status < 0 with the reason in
 * rt_boot.error, the BOOTED doorbell, then power-off with status 1.
 */

static __attribute__((noreturn)) void boot_fail(const char *what, const char *detail)
{
	struct rt_boot *b = RT_BOOT;
	rt_strlcpy(b->error, "runtime boot: ", sizeof b->error);
	rt_strlcat(b->error, what, sizeof b->error);
	if (detail) {
		rt_strlcat(b->error, ": ", sizeof b->error);
		rt_strlcat(b->error, detail, sizeof b->error);
	}
	b->status = -1;
	rt_outl(RT_PORT_DOORBELL, RT_BELL_BOOTED);
	rt_hw_out(0x501, 1, 1);
	rt_hw_halt_down();
}

/* Guest memory for the rewriter: identity mapped RAM only. */
static uint8_t *map_ram(void *ctx, uint64_t addr, size_t len, int write)
{
	(void)ctx;
	(void)write;
	if (addr == 0 || addr >= rt_ram_size || len > rt_ram_size - addr)
		return NULL;
	return (uint8_t *)(uintptr_t)addr;
}

/* Sites whose bytes differ between the two personalities (a 0/1-byte pad does not). */
static uint32_t count_changed(const struct personality *from, const struct personality *to)
{
	uint8_t a[PVSITES_LEN_MAX], b[PVSITES_LEN_MAX];
	uint32_t n = 0;
	for (size_t i = 0; i < rt_nsites; i++)
		if (personality_emit(from, &rt_sites[i], a) == 0 &&
		    personality_emit(to, &rt_sites[i], b) == 0 && memcmp(a, b, rt_sites[i].len) != 0)
			n++;
	return n;
}

static void check_boot_block(const struct rt_boot *b, int adopt)
{
	if (b->magic != RT_BOOT_MAGIC)
		boot_fail("bad boot block magic", NULL);
	if (b->abi_version != RT_ABI_VERSION)
		boot_fail("boot block ABI version differs from the runtime's", NULL);
	if (b->ncpus == 0 || b->ncpus > RT_MAX_CPUS)
		boot_fail("bad CPU count in the boot block", NULL);
	if (b->ram_size == 0 || b->ram_size > RT_WINDOW_BASE)
		boot_fail("guest RAM must end below the runtime window", NULL);
	if (!adopt && (b->guest_entry32 == 0 || b->guest_entry32 >= b->ram_size))
		boot_fail("the guest's 32-bit entry is not in RAM", NULL);
	if (!adopt && b->mbi >= b->ram_size)
		boot_fail("the Multiboot info block is not in RAM", NULL);
	if (b->table_size == 0 || b->table_addr >= b->ram_size ||
	    b->table_size > b->ram_size - b->table_addr)
		boot_fail("the site table is not in guest RAM", NULL);
}

/* The retained table into rt_sites, and the memory-operand sites decoded. */
static void decode_sites(const struct rt_boot *b)
{
	struct repatch_err err = {0};
	const void *table = (const void *)(uintptr_t)b->table_addr;
	long count = pvsites_count(table, b->table_size, &err);
	if (count < 0)
		boot_fail("the guest's site table is malformed", err.msg);
	if (count > (long)RT_SITES_MAX)
		boot_fail("the guest's site table has more sites than the runtime's limit (4096)",
			  NULL);
	long n = pvsites_decode(table, b->table_size, b->table_addr, rt_sites, RT_SITES_MAX, &err);
	if (n < 0)
		boot_fail("the guest's site table is malformed", err.msg);
	rt_nsites = (size_t)n;
	const char *why;
	uint64_t where;
	if (rt_memsites_build(&why, &where) < 0) {
		char msg[96] = "a memory-operand site cannot be emulated at ";
		rt_strlcat_hex(msg, where, sizeof msg);
		boot_fail(msg, why);
	}
}

void rt_boot_main(void)
{
	struct rt_boot *b = RT_BOOT;
	struct repatch_err err = {0};
	const struct personality *from = personality_find("native"), *to = personality_find("kvm");
	const struct repatch_mem mem = {NULL, map_ram};

	check_boot_block(b, 0);
	rt_ram_size = b->ram_size;
	for (unsigned cpu = 0; cpu < RT_MAX_CPUS; cpu++) {
		struct rt_cpu_state *st = rt_cpu_state(cpu);
		memset(st, 0, sizeof *st);
		st->version = RT_ABI_VERSION;
		rt_idt_init(cpu);
	}
	if (!from || !to)
		boot_fail("the runtime was built without the native or kvm personality", NULL);
	decode_sites(b);
	uint32_t changed = count_changed(from, to);
	if (repatch_rewrite(rt_sites, rt_nsites, &mem, from, to, &err) < 0)
		boot_fail("rewriting the guest native -> kvm failed", err.msg);

	/* the device side reports its own failures in the boot block too, so
	 * it runs before the status is declared final */
	rt_dev_init();
	if (b->status < 0) {
		char why[sizeof b->error];
		rt_strlcpy(why, b->error, sizeof why);
		boot_fail("the device side failed", why);
	}
	rt_dev_ready = 1;
	b->sites = (uint32_t)rt_nsites;
	b->sites_rewritten = changed;
	b->status = 0;
	rt_outl(RT_PORT_DOORBELL, RT_BELL_BOOTED);
	rt_cpu_state(0)->online = 1;
}

/*
 * RT_ENTRY_ADOPT (rt_entry.S) on every started CPU, f = its rt_frame:
 * CPU 0 readies the runtime (table, models restored from the host's
 * snapshots), the others wait for it; then each CPU takes the guest's
 * gates into its real IDT and resumes the guest from its state block
 * with iretq, so user mode and kernel mode resume alike.  The host
 * rewrote the sites before, and the window is freshly loaded, so bss is
 * zero.  A failure is final, as at boot: status < 0, then power-off.
 */
int rt_adopt_main(struct rt_frame *f)
{
	struct rt_boot *b = RT_BOOT;
	unsigned cpu = rt_frame_cpu(f);
	struct rt_cpu_state *st = rt_cpu_state(cpu);

	if (cpu == 0) {
		if (!(b->flags & RT_BOOTF_ADOPT))
			boot_fail("entered to adopt a guest, but the boot block does not say so", NULL);
		check_boot_block(b, 1);
		rt_ram_size = b->ram_size;
		decode_sites(b);
		rt_dev_init();
		if (b->status < 0) {
			char why[sizeof b->error];
			rt_strlcpy(why, b->error, sizeof why);
			boot_fail("the device side failed", why);
		}
		/* CPUs the host left outside (not started, or on their way up):
		 * the upcall gate only, until their lidt site, as at boot */
		for (unsigned c = 1; c < RT_MAX_CPUS; c++)
			if (!rt_cpu_state(c)->online)
				rt_idt_init(c);
		if (rt_dev_restore((const void *)(uintptr_t)(RT_WINDOW_BASE + RT_OFF_DEVSTATE),
				   sizeof(struct rt_dev_state)) < 0)
			boot_fail("the device models refused the host's snapshots", NULL);
		rt_dev_ready = 1;
		b->sites = (uint32_t)rt_nsites;
		b->sites_rewritten = 0; /* the host rewrote them */
		b->status = 0;
		__atomic_store_n(&b->adopt_ready, 1, __ATOMIC_RELEASE);
		rt_outl(RT_PORT_DOORBELL, RT_BELL_BOOTED);
	} else {
		while (!__atomic_load_n(&b->adopt_ready, __ATOMIC_ACQUIRE))
			__builtin_ia32_pause();
	}
	rt_idt_load(cpu, st->idt_base, st->idt_limit);
	st->online = 1;
	st->parked = RT_CPU_PARKED_NO;
	memcpy(f, &st->rax, RT_FRAME_WORDS * 8);
	uint64_t *hw = (uint64_t *)(uintptr_t)(RT_PERCPU_ADDR(cpu) + RT_PERCPU_IRETF);
	hw[0] = st->rip;
	hw[1] = st->cs;
	hw[2] = (st->rflags & ~RF_IF) | (st->vif ? RF_IF : 0) | RF_FIXED;
	hw[3] = st->rsp;
	hw[4] = st->ss;
	f->rsp = (uint64_t)(uintptr_t)hw;
	return RT_EXIT_IRET;
}
