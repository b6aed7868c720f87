/* personality_kvm_host.c: the host half of the kvm personality: window, runtime ELF, boot block, host page tables, the BSP's start in the runtime */
#include <errno.h> /* program_invocation_short_name: pvhost or pvguest */
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot_util.h"
#include "elfimage.h"
#include "personality_kvm_host.h"
#include "platform.h"

/*
 * docs/RUNTIME.md: the guest image is loaded exactly as under native (the
 * Multiboot loader), but vCPU 0 starts in the runtime, in long mode on
 * page tables the host builds in the window, with the boot block saying
 * where the guest's entry, info block and retained .pvsites table are.
 * The runtime rewrites the sites, then enters the guest's Multiboot entry
 * itself.
 */

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull

void kvm_host__fail(struct kvm_host *h, const char *fmt, ...)
{
	struct vm *vm = h->vm;
	va_list ap;

	pthread_mutex_lock(&vm->run_lock);
	if (vm->exit_kind == VM_EXIT_NONE) { /* the first cause wins */
		va_start(ap, fmt);
		vsnprintf(vm->err, sizeof vm->err, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->run_lock);
	vm__poweroff(vm, VM_EXIT_CRASH, 0);
}

/* ---- the runtime ELF: PT_LOAD segments into the image area of the window */

static int load_runtime(struct vm *vm, const char *path)
{
	const uint64_t lo = RT_WINDOW_BASE + RT_OFF_IMAGE, hi = RT_WINDOW_BASE + RT_IMAGE_MAX;
	struct boot_file f;
	const Elf64_Ehdr *e;
	unsigned i, loaded = 0, entry_loaded = 0;
	int rc = -1;

	if (boot_file_read(vm, path, &f) < 0) {
		char why[sizeof vm->err];

		memcpy(why, vm->err, sizeof why); /* vm__fail writes vm->err */
		return vm__fail(vm, "runtime: %s", why);
	}
	e = (const void *)f.data;
	if (f.size < sizeof *e || memcmp(e->e_ident, ELFMAG, SELFMAG) != 0 ||
	    e->e_ident[EI_CLASS] != ELFCLASS64 || e->e_machine != EM_X86_64) {
		vm__fail(vm, "runtime %s: not an x86-64 ELF64 file", path);
		goto out;
	}
	if (e->e_phentsize != sizeof(Elf64_Phdr) || e->e_phoff > f.size ||
	    (uint64_t)e->e_phnum * sizeof(Elf64_Phdr) > f.size - e->e_phoff) {
		vm__fail(vm, "runtime %s: program headers out of bounds", path);
		goto out;
	}
	for (i = 0; i < e->e_phnum; i++) {
		const Elf64_Phdr *p = (const void *)(f.data + e->e_phoff + i * sizeof(Elf64_Phdr));
		uint8_t *dst;

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_filesz > p->p_memsz || p->p_offset > f.size ||
		    p->p_filesz > f.size - p->p_offset) {
			vm__fail(vm, "runtime %s: segment %u lies outside the file", path, i);
			goto out;
		}
		/* Only the image area: the rest of the window is the boot
		 * block, the channel and the rings, which the host owns. */
		if (p->p_paddr < lo || p->p_paddr > hi || p->p_memsz > hi - p->p_paddr) {
			vm__fail(vm, "runtime %s: segment %u at %#llx+%#llx lies outside the window's "
				 "image area %#llx..%#llx", path, i, (unsigned long long)p->p_paddr,
				 (unsigned long long)p->p_memsz, (unsigned long long)lo,
				 (unsigned long long)hi);
			goto out;
		}
		dst = vm__window(vm, p->p_paddr, p->p_memsz);
		memcpy(dst, f.data + p->p_offset, p->p_filesz);
		memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
		loaded++;
		if (p->p_paddr <= RT_ENTRY_BOOT64 && RT_ENTRY_UPCALL < p->p_paddr + p->p_filesz)
			entry_loaded = 1;
	}
	if (!loaded)
		vm__fail(vm, "runtime %s: no loadable segment", path);
	else if (!entry_loaded)
		vm__fail(vm, "runtime %s: its entry table (%#llx..%#llx) is not loaded from the file",
			 path, (unsigned long long)RT_ENTRY_BOOT64,
			 (unsigned long long)RT_ENTRY_UPCALL);
	else
		rc = 0;
out:
	boot_file_free(&f);
	return rc;
}

/* The runtime ELF: the one named, else $PVMIGRATE_RUNTIME, else this
 * build tree's (a program run from its build directory), else the
 * installed one; NULL when none exists. */
static const char *runtime_lookup(const char *given)
{
	const char *env = getenv("PVMIGRATE_RUNTIME");

	if (given)
		return given;
	if (env && *env)
		return env;
	if (access(PVHOST_RUNTIME_BUILD, R_OK) == 0)
		return PVHOST_RUNTIME_BUILD;
	if (access(PVHOST_RUNTIME_INSTALLED, R_OK) == 0)
		return PVHOST_RUNTIME_INSTALLED;
	return NULL;
}

int vm__kvm_host_attach(struct vm *vm, const struct vm_kvm_host_cfg *cfg)
{
	const char *runtime = runtime_lookup(cfg->runtime);
	struct kvm_host *h;
	char err[160];

	if (vm->rt)
		return vm__fail(vm, "kvm: a runtime is attached already");
	if (vm->nr_vcpus > RT_MAX_CPUS)
		return vm__fail(vm, "kvm: the runtime has per-CPU blocks for %u vCPUs, not %u",
				RT_MAX_CPUS, vm->nr_vcpus);
	if (!vm->ops->clock)
		return vm__fail(vm, "kvm: the %s backend cannot read the guest clock", vm->ops->name);
	if (!runtime)
		return vm__fail(vm, "no runtime: neither %s nor %s exists (build it, or name one "
				"with --runtime or PVMIGRATE_RUNTIME)", PVHOST_RUNTIME_BUILD,
				PVHOST_RUNTIME_INSTALLED);
	if (vm__window_create(vm) < 0 || load_runtime(vm, runtime) < 0)
		return -1;
	h = calloc(1, sizeof *h);
	if (!h)
		return vm__fail(vm, "out of memory");
	h->vm = vm;
	pthread_mutex_init(&h->state_lock, NULL);
	pthread_cond_init(&h->state_cond, NULL);
	h->console_fd = cfg->console_fd;
	h->stop[0] = h->stop[1] = -1;
	h->net.fd = -1;
	h->boot = vm__window(vm, RT_WINDOW_BASE + RT_OFF_BOOT, sizeof *h->boot);
	h->sh = vm__window(vm, RT_WINDOW_BASE + RT_OFF_SHARED, sizeof *h->sh);
	h->console = vm__window(vm, RT_WINDOW_BASE + RT_OFF_CONSOLE, RT_CONSOLE_SIZE);
	vm->rt = h;

	h->sh->magic = RT_SHARED_MAGIC;
	h->sh->abi_version = RT_ABI_VERSION;
	h->sh->timer_deadline_ns = UINT64_MAX;
	if (cfg->net) {
		if (net_backend__open(&h->net, cfg->net, err, sizeof err) < 0)
			return vm__fail(vm, "%s", err);
		h->nic = 1;
	}
	return kvm_channel__init(h);
}

/* ---- the guest image and the boot block */

/*
 * The retained table, where the runtime will read it: the section's link
 * address, which must also be where the loader put it in RAM (the runtime
 * runs on an identity map, and the table's offsets are relative to it).
 */
static int find_table(struct vm *vm, struct kvm_host *h, const char *image)
{
	struct elfimage img;
	struct repatch_err rerr;
	const uint8_t *bytes, *ram;
	char why[200];
	long n;
	int rc = -1;

	if (elfimage_load(&img, image, why, sizeof why) < 0)
		return vm__fail(vm, "kvm: %s: %s (the kvm personality needs the guest's ELF and "
				"its .pvsites table)", image, why);
	if (!img.pvsites || img.pvsites->size == 0) {
		vm__fail(vm, "kvm: %s has no .pvsites table: nothing the runtime could rewrite "
			 "(build it with pvcc)", image);
		goto out;
	}
	bytes = elfimage_section_bytes(&img, img.pvsites);
	n = pvsites_count(bytes, img.pvsites->size, &rerr);
	if (n < 0) {
		vm__fail(vm, "kvm: %s: .pvsites: %s", image, rerr.msg);
		goto out;
	}
	ram = vm__gpa(vm, img.pvsites->addr, img.pvsites->size);
	if (!ram || memcmp(ram, bytes, img.pvsites->size) != 0) {
		vm__fail(vm, "kvm: %s: the .pvsites table (%#llx) is not at its link address in "
			 "guest RAM; the runtime reads it there, identity mapped", image,
			 (unsigned long long)img.pvsites->addr);
		goto out;
	}
	h->table_addr = img.pvsites->addr;
	h->table_size = img.pvsites->size;
	rc = 0;
out:
	elfimage_free(&img);
	return rc;
}

/* Identity map of the first 1 GiB (2 MiB pages), which covers the window;
 * the GDT has what reset_vcpu64 loads (0x10 code64, 0x18 data) and a flat
 * 32-bit code segment at 0x08 for the runtime's way down to the guest. */
static void host_tables(struct vm *vm)
{
	uint64_t *pml4 = vm__window(vm, RT_WINDOW_BASE + RT_OFF_HOSTPT, 0x3000);
	uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024, *gdt;
	uint64_t base = RT_WINDOW_BASE + RT_OFF_HOSTPT;
	unsigned i;

	memset(pml4, 0, 0x3000);
	pml4[0] = (base + 0x1000) | PTE_P | PTE_RW;
	pdpt[0] = (base + 0x2000) | PTE_P | PTE_RW;
	for (i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_P | PTE_RW | PTE_PS;
	gdt = vm__window(vm, RT_WINDOW_BASE + RT_OFF_HOSTGDT, 0x1000);
	memset(gdt, 0, 0x1000);
	gdt[1] = 0x00cf9b000000ffffull; /* 0x08: code, 32-bit, flat */
	gdt[2] = 0x00af9b000000ffffull; /* 0x10: code, 64-bit */
	gdt[3] = 0x00cf93000000ffffull; /* 0x18: data, flat */
}

/* Everything but the guest's entry (boot) or state (adopt): the table, RAM, the clock, the NIC. */
int kvm_host__fill_boot(struct vm *vm, struct kvm_host *h, uint32_t flags)
{
	static const uint8_t mac[6] = PLATFORM_NIC_MAC;
	struct rt_boot *b = h->boot;
	struct vm_clock clk;

	if (vm->ops->clock(vm, &clk) < 0)
		return -1;
	memset(b, 0, sizeof *b);
	b->magic = RT_BOOT_MAGIC;
	b->abi_version = RT_ABI_VERSION;
	b->ncpus = vm->nr_vcpus;
	b->flags = flags;
	b->table_addr = h->table_addr;
	b->table_size = h->table_size;
	b->ram_size = vm->mem_size;
	b->tsc_khz = clk.tsc_khz;
	b->clock_host_ns = clk.host_ns;
	b->clock_guest_tsc = clk.guest_tsc;
	b->tsc_mult = (1000000ull << 32) / clk.tsc_khz;
	/* The same PCI layout the native platform gives (platform_nic.c). */
	b->nic_present = (uint8_t)h->nic;
	b->nic_slot = PLATFORM_NIC_SLOT;
	b->nic_irq = PLATFORM_NIC_IRQ;
	memcpy(b->mac, mac, sizeof mac);
	b->nic_bar_io = PLATFORM_NIC_IO_BASE;
	b->nic_bar_mem = PLATFORM_NIC_MMIO_BASE;
	b->status = 1; /* not final until RT_BELL_BOOTED */
	return 0;
}

int vm__kvm_host_boot(struct vm *vm, const char *image, const char *cmdline)
{
	static _Thread_local struct vm_vcpu_state st; /* 4 KiB of XSAVE: not on the stack */
	struct kvm_host *h = kvm_host_of(vm);
	struct vm_multiboot mb;

	if (!h)
		return vm__fail(vm, "kvm: no runtime attached");
	if (vm__place_multiboot(vm, image, cmdline, &mb) < 0 || find_table(vm, h, image) < 0 ||
	    kvm_host__fill_boot(vm, h, RT_BOOTF_NONE) < 0)
		return -1;
	h->boot->guest_entry32 = mb.entry;
	h->boot->mbi = mb.mbi;
	vm->sites_addr = h->table_addr;
	vm->sites_size = h->table_size;
	host_tables(vm);

	if (vm->ops->reset_vcpu64(vm, 0, RT_ENTRY_BOOT64, RT_WINDOW_BASE + RT_OFF_HOSTPT,
				  RT_WINDOW_BASE + RT_OFF_HOSTGDT) < 0 ||
	    vm__get_vcpu_state(vm, 0, &st) < 0)
		return -1;
	st.gpr[VM_RSP] = RT_PERCPU_ADDR(0) + RT_PERCPU_STACK_TOP;
	st.idt.base = RT_PERCPU_ADDR(0);
	st.idt.limit = 0xfff;
	return vm__set_vcpu_state(vm, 0, &st);
}

/* ---- reports and accessors */

void vm__kvm_host_finish(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (h)
		kvm_channel__drain(h);
}

void vm__kvm_host_counters(struct vm *vm, char *buf, size_t len)
{
	struct kvm_host *h = kvm_host_of(vm);
	const struct rt_shared *s;

	if (!h) {
		snprintf(buf, len, "%s", "");
		return;
	}
	s = h->sh;
	snprintf(buf, len,
		 " site_calls=%llu upcalls=%llu deliveries=%llu doorbells=%llu passthrough_io=%llu"
		 " frames_tx=%llu frames_rx=%llu frames_rx_held=%llu",
		 (unsigned long long)s->site_calls, (unsigned long long)s->upcalls,
		 (unsigned long long)s->deliveries, (unsigned long long)s->doorbells,
		 (unsigned long long)s->passthrough_io, (unsigned long long)s->frames_tx,
		 (unsigned long long)s->frames_rx, (unsigned long long)s->frames_rx_held);
}

void vm__kvm_host_report(struct vm *vm, FILE *out)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (!h)
		return;
	if (h->booted)
		fprintf(out, "%s: runtime: booted: %u sites, %u rewritten native -> kvm; "
			"%llu timer news, %llu doorbells, %llu console bytes\n",
			program_invocation_short_name, h->sites,
			h->rewritten, (unsigned long long)h->timer_news,
			(unsigned long long)h->bells, (unsigned long long)h->console_bytes);
	else
		fprintf(out, "%s: runtime: it never reported its boot (no RT_BELL_BOOTED)\n",
			program_invocation_short_name);
	if (h->nic)
		fprintf(out,
			"%s: net: %llu frames to the guest (%llu RX news), %llu from it (%llu polled "
			"by the host, %llu lost "
			"on send, %llu malformed), host queue peak %llu of %u (%llu waits for ring "
			"room), %llu still held, %llu too long for a slot\n", program_invocation_short_name,
			(unsigned long long)__atomic_load_n(&h->rx_frames, __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&h->rx_news, __ATOMIC_RELAXED),
			(unsigned long long)h->tx_frames, (unsigned long long)h->tx_polled,
			(unsigned long long)h->tx_lost, (unsigned long long)h->tx_bad,
			(unsigned long long)__atomic_load_n(&h->rx_held_peak, __ATOMIC_RELAXED),
			KH_RX_QUEUE,
			(unsigned long long)__atomic_load_n(&h->rx_held_waits, __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&h->qcount, __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&h->rx_too_long, __ATOMIC_RELAXED));
}

int vm__kvm_host_booted(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	return !h || __atomic_load_n(&h->booted, __ATOMIC_ACQUIRE);
}

int vm__kvm_host_table(struct vm *vm, uint64_t *addr, uint64_t *size)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (!h || !h->table_size)
		return vm__fail(vm, "kvm: no runtime attached");
	*addr = h->table_addr;
	*size = h->table_size;
	return 0;
}

int vm__kvm_host_cpu_state(struct vm *vm, unsigned cpu, struct rt_cpu_state *out)
{
	const void *p;

	if (!vm->rt || cpu >= RT_MAX_CPUS)
		return -1;
	p = vm__window(vm, RT_PERCPU_ADDR(cpu) + RT_PERCPU_STATE, sizeof *out);
	memcpy(out, p, sizeof *out);
	return 0;
}

void vm__kvm_host_destroy(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (!h)
		return;
	kvm_channel__stop(h);
	if (h->stop[0] >= 0) {
		close(h->stop[0]);
		close(h->stop[1]);
	}
	net_backend__close(&h->net);
	free(h->q);
	pthread_cond_destroy(&h->state_cond);
	pthread_mutex_destroy(&h->state_lock);
	free(h);
	vm->rt = NULL;
	vm__set_park_ops(vm, NULL, NULL);
}
