/* rt_abi.h: the guest-image ABI of the in-guest runtime: window layout, boot block, host channel, per-CPU blocks */
#ifndef RT_ABI_H
#define RT_ABI_H

/*
 * Shared by the runtime (freestanding, inside the guest) and the host
 * (backends/, pvhost, later the daemon).  Everything here is a fixed
 * address or a fixed layout: patched guest code and the host reach the
 * runtime only through these, never through addresses that one runtime
 * build alone knows (the site contract, rule 5).  Bump RT_ABI_VERSION on
 * any change; docs/RUNTIME.md explains every field.
 *
 * The window: 2 MiB at guest-physical == guest-virtual RT_WINDOW_BASE.  It
 * is NOT guest RAM: the host backs it with its own memory slot, reports it
 * as reserved in the boot memory map, never sends it as pages in a
 * migration stream (its meaning is carried by the runtime's state, and the
 * target loads its own runtime there).  Guests must map it identity, with
 * write and execute, supervisor only; the reference guest's 1 GiB identity
 * map covers it.  So guest RAM must end below RT_WINDOW_BASE (1022 MiB).
 */
#include <stdint.h>

#define RT_ABI_VERSION 1u
#define RT_WINDOW_BASE 0x3fe00000ull
#define RT_WINDOW_SIZE 0x00200000ull

/* Offsets inside the window. */
#define RT_OFF_IMAGE	0x000000u /* the runtime ELF, linked here; text starts with the entry table */
#define RT_IMAGE_MAX	0x0c0000u /* image incl. bss must end below RT_OFF_BOOT */
#define RT_OFF_BOOT	0x0c0000u /* struct rt_boot, 4 KiB: host -> runtime at boot, status back */
#define RT_OFF_SHARED	0x0c1000u /* struct rt_shared, 4 KiB: the host channel */
#define RT_OFF_CONSOLE	0x0c2000u /* console byte ring, RT_CONSOLE_SIZE bytes */
#define RT_OFF_HOSTPT	0x0c4000u /* host-built boot page tables (PML4, PDPT, PD): 3 pages */
#define RT_OFF_HOSTGDT	0x0c7000u /* host-built boot GDT, 1 page */
#define RT_OFF_DEVSTATE	0x0c8000u /* struct rt_dev_state (rt_devstate_abi.h), up to RT_DEVSTATE_MAX */
#define RT_DEVSTATE_MAX	0x008000u
#define RT_OFF_PERCPU	0x0d0000u /* RT_MAX_CPUS blocks of RT_PERCPU_SIZE */
#define RT_OFF_NET_TX	0x110000u /* guest -> host frames: RT_NET_SLOTS slots */
#define RT_OFF_NET_RX	0x160000u /* host -> guest frames */

/* Entry points: fixed offsets at the start of the image's text (.rt_entry). */
#define RT_ENTRY_BOOT64	  (RT_WINDOW_BASE + 0x000) /* host starts the BSP here: long mode, host page tables */
#define RT_ENTRY_SITE	  (RT_WINDOW_BASE + 0x040) /* kvm site sequences call here */
#define RT_ENTRY_UPCALL	  (RT_WINDOW_BASE + 0x080) /* IDT gate of RT_UPCALL_VECTOR on every CPU */
/* The host enters every started vCPU here to install the runtime beneath
 * a guest that is already running (RT_BOOTF_ADOPT): CPL 0 on the guest's
 * page tables and GDT, RSP = the CPU's rt_frame (RT_PERCPU_FRAME), IF = 0,
 * IDTR = the CPU's per-CPU block; the guest's own state is in the CPU's
 * rt_cpu_state (registers, vif, virtual IDTR, cs/ss). */
#define RT_ENTRY_ADOPT	  (RT_WINDOW_BASE + 0x0c0)

/*
 * A kvm site that calls the runtime holds:
 *
 *   e8 <rel32>                       call RT_ENTRY_SITE
 *   kind len reg aux width flags     the site's record fields (6 bytes)
 *   cc ...                           int3 up to the site's length
 *
 * The runtime reads the 6 bytes at the return address, does the work and
 * resumes the guest at the site's end (site + len), never inside it.
 * Other kinds keep the original instruction under kvm (hardware
 * virtualization runs them without leaving the guest), padded with
 * multi-byte NOPs instead of native's 0x90s so the two are told apart.
 */
/* Kinds that call the runtime (64-bit sites only; .code32 sites run before
 * the runtime is reachable and keep the original instruction). */
#define RT_CALL_KINDS(X) X(CLI) X(STI) X(PUSHF) X(POPF) X(HLT) X(IN) X(OUT) X(INS) X(OUTS) \
	X(LIDT) X(SIDT) X(IRET) X(SYSRET) X(MMIO_READ) X(MMIO_WRITE)
#define RT_SITE_CALL_LEN  5u
#define RT_SITE_ARGS_LEN  6u

/*
 * The host interrupts the runtime with this vector (KVM_INTERRUPT), only
 * ever when it has news (struct rt_shared.news).  The runtime's per-CPU IDT
 * is a copy of the guest's gates except this one, so the guest must not
 * use vector 0xff (the reference guest does not).
 */
#define RT_UPCALL_VECTOR 0xffu

/* Host ports the runtime uses (PIO exits; everything else stays inside). */
#define RT_PORT_DOORBELL 0x518 /* outl: RT_BELL_* bits, one exit per batch */
#define RT_BELL_CONSOLE	 0x1u  /* console ring has bytes */
#define RT_BELL_NET_TX	 0x2u  /* net TX ring has frames and host_draining_tx was 0 */
#define RT_BELL_TIMER	 0x4u  /* timer_deadline_ns moved earlier than the host knows */
#define RT_BELL_BOOTED	 0x8u  /* rt_boot.status is final (rewrite done or failed) */
#define RT_BELL_STATE	 0x10u /* a state request was served: state_req is NONE again */

/* ---- the boot block: the host fills it before the BSP enters RT_ENTRY_BOOT64 */

#define RT_BOOT_MAGIC 0x54525650u /* "PVRT" */

struct rt_boot {
	uint32_t magic, abi_version; /* RT_BOOT_MAGIC, RT_ABI_VERSION */
	uint32_t ncpus;              /* vCPUs the host created (<= RT_MAX_CPUS) */
	uint32_t flags;              /* RT_BOOTF_* */
	uint64_t guest_entry32;      /* the image's Multiboot entry (physical, 32-bit code) */
	uint64_t mbi;                /* Multiboot info block the host wrote (EBX at entry) */
	uint64_t table_addr, table_size; /* the retained .pvsites table in guest memory */
	uint64_t ram_size;           /* guest RAM: gpa 0 .. ram_size-1 */
	uint64_t tsc_khz;            /* guest TSC frequency */
	/* Clock: host_ns = clock_host_ns + ((guest_tsc - clock_guest_tsc) * tsc_mult) >> 32 */
	uint64_t clock_host_ns, clock_guest_tsc, tsc_mult;
	/* The NIC, as the host's PCI layout has it (same as under native). */
	uint8_t nic_present, nic_slot, nic_irq, pad0;
	uint8_t mac[6], pad1[2];
	uint32_t nic_bar_io, nic_bar_mem; /* BAR0 (I/O port base), BAR1 (MMIO base) */
	/* Written by the runtime before RT_BELL_BOOTED. */
	int32_t status;              /* 0 ok, <0 failed: error[] says why */
	uint32_t sites;              /* sites in the table */
	uint32_t sites_rewritten;    /* sites whose bytes changed native -> kvm */
	uint32_t pad2;
	char error[192];
	/* Added at the end (ABI 1 stays valid).  RT_BOOTF_ADOPT: CPU 0 sets
	 * it once the runtime is ready; the other CPUs wait for it. */
	volatile uint32_t adopt_ready;
	uint32_t pad3;
};
#define RT_BOOTF_NONE 0u
/*
 * Adopt a running guest instead of booting one: the host has written the
 * guest's RAM (its sites already rewritten to kvm by the host), every
 * started vCPU's state block, and the device models' snapshots into the
 * device-state area (rt_devstate_abi.h).  The runtime decodes the table
 * (it needs the sites), restores its models from the area, and every CPU
 * resumes the guest from its state block with iretq.  guest_entry32 and
 * mbi are unused.  See docs/RUNTIME.md, "Installing beneath a running guest".
 */
#define RT_BOOTF_ADOPT 0x1u

/* ---- the host channel */

#define RT_SHARED_MAGIC 0x48435652u /* "RVCH" */
#define RT_CONSOLE_SIZE 4096u       /* power of two */
#define RT_NET_SLOTS	32u         /* per direction, power of two */
#define RT_NET_SLOT_SIZE 0x2600u    /* u32 len, u32 pad, then up to RT_NET_FRAME_MAX bytes */
#define RT_NET_FRAME_MAX 9216u

/* news bits: host -> runtime, the runtime takes them with an atomic exchange */
#define RT_NEWS_TIMER 0x1u /* the host clock passed timer_deadline_ns */
#define RT_NEWS_RX    0x2u /* frames in the RX ring */
#define RT_NEWS_PARK  0x4u /* park_req changed */

/* A single-producer single-consumer ring: indices run freely, slot = index % size. */
struct rt_ring {
	volatile uint32_t prod; /* written by the producer only */
	volatile uint32_t cons; /* written by the consumer only */
};

struct rt_net_slot {
	uint32_t len;
	uint32_t pad;
	uint8_t data[RT_NET_FRAME_MAX];
};

struct rt_shared {
	uint32_t magic, abi_version; /* set by the host */
	volatile uint32_t news;      /* RT_NEWS_* (host sets, runtime clears) */
	volatile uint32_t park_req;  /* host: 1 = park every vCPU at its next safe point */
	/* Runtime -> host: the next time the runtime's PIT needs the CPU (host
	 * clock, ns; UINT64_MAX = none).  The host sets RT_NEWS_TIMER then. */
	volatile uint64_t timer_deadline_ns;
	/* Host -> runtime: nonzero while the host drains the TX ring on its
	 * own (no doorbell needed); the runtime rings only when it is zero. */
	volatile uint32_t host_draining_tx;
	/* Runtime -> host: nonzero while the runtime wants RT_NEWS_RX for new
	 * frames (it polls the RX ring at every site boundary anyway). */
	volatile uint32_t want_rx_news;
	struct rt_ring console; /* bytes at RT_OFF_CONSOLE, runtime produces */
	struct rt_ring net_tx;  /* slots at RT_OFF_NET_TX, runtime produces */
	struct rt_ring net_rx;  /* slots at RT_OFF_NET_RX, host produces */
	/* Counters the runtime keeps, for --stats and bench/ (never reset). */
	uint64_t site_calls;     /* calls into RT_ENTRY_SITE */
	uint64_t upcalls;        /* RT_UPCALL_VECTOR taken */
	uint64_t deliveries;     /* virtual interrupts delivered to the guest */
	uint64_t doorbells;      /* outl to RT_PORT_DOORBELL */
	uint64_t passthrough_io; /* in/out the runtime forwarded to the host (exits) */
	uint64_t frames_tx, frames_rx, frames_rx_held;
	uint64_t kind_calls[64]; /* site calls per site kind */
	/* Added at the end (ABI 1 stays valid: a host that never sets
	 * state_req sees no change).  Host -> runtime, only together with
	 * park_req (set before it, withdrawn no later than it): RT_STATE_REQ_*
	 * for the park loop, where a parked CPU serves it once no other CPU is
	 * inside the runtime outside its park (a CPU entering the runtime
	 * meanwhile parks before it touches anything).  The CPU that swaps it
	 * to RT_STATE_REQ_TAKEN serves it, answers in state_status, clears
	 * state_req and rings RT_BELL_STATE (only ever for a host that asked,
	 * so ABI 1 stays valid); it holds nothing after the clear.  The host
	 * clears the device-state area before a SAVE: the runtime writes its
	 * models' fields only. */
	volatile uint32_t state_req;
	volatile int32_t state_status; /* RT_STATE_* */
};

/* state_req / state_status: the device-state area at RT_OFF_DEVSTATE */
#define RT_STATE_REQ_NONE    0u
#define RT_STATE_REQ_SAVE    1u /* write every model into the area (the host zeroed it) */
#define RT_STATE_REQ_RESTORE 2u /* restore every model from it (all or none) */
#define RT_STATE_REQ_TAKEN   3u /* runtime: a CPU took the request (compare-and-swap) and serves it */
#define RT_STATE_PENDING     1  /* set by the host with the request */
#define RT_STATE_OK          0
#define RT_STATE_FAILED      (-1) /* the models refused the area: none changed */

/* ---- per-CPU blocks: IDT, state block, runtime stack */

#define RT_MAX_CPUS	   8u
#define RT_PERCPU_SIZE	   0x8000u
#define RT_PERCPU_IDT	   0x0000u /* 256 x 16-byte gates: the CPU's real IDT under kvm */
#define RT_PERCPU_STATE	   0x1000u /* struct rt_cpu_state */
#define RT_PERCPU_STACK_TOP 0x8000u /* the runtime's stack for this CPU grows down from here */
#define RT_PERCPU_FRAME    0x7f60u /* the CPU's struct rt_frame, at the top of its stack */
#define RT_PERCPU_IRETF    0x1f00u /* adopt: the 5-word iretq frame the CPU resumes the guest with */
#define RT_PERCPU_ADDR(cpu) (RT_WINDOW_BASE + RT_OFF_PERCPU + (uint64_t)(cpu) * RT_PERCPU_SIZE)

/*
 * The runtime finds its CPU number with `sidt`: CPU n's real IDTR base is
 * RT_PERCPU_ADDR(n).  The host sets it for the BSP (the runtime's boot
 * page) and for every AP it starts while the guest runs under kvm.
 */

/*
 * The CPU model of one vCPU, in a fixed layout the host reads and writes
 * (it converts it to the personality-independent protobuf form).  The
 * guest registers are valid while `parked` is nonzero: the vCPU is
 * stopped at a safe point and `rip` is where the guest resumes (never
 * inside the window or inside a non-native site).
 */
#define RT_CPU_PARKED_NO   0u
#define RT_CPU_PARKED_REQ  1u /* parked because the host asked (park_req) */
#define RT_CPU_PARKED_IDLE 2u /* parked in the idle loop (guest hlt with vIF=1) */
#define RT_CPU_PARKED_DOWN 3u /* guest hlt with vIF=0: this CPU is offline for good */

struct rt_cpu_state {
	uint32_t version;  /* RT_ABI_VERSION */
	volatile uint32_t parked; /* RT_CPU_PARKED_* */
	uint32_t vif;      /* virtual IF */
	uint32_t online;   /* the CPU entered the guest */
	/* Virtual IDTR: what the guest loaded with lidt (sidt returns it). */
	uint64_t idt_base;
	uint16_t idt_limit, pad0[3];
	/* Guest registers at the park point (struct order of the kernel's pt_regs is not used). */
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags; /* rflags.IF = vif at the park point */
	/* Snapshots of hardware state the runtime does not virtualize on this
	 * host (it reads them when it parks): control registers and GDTR. */
	uint64_t cr0, cr2, cr3, cr4;
	uint64_t gdt_base;
	uint16_t gdt_limit, pad1[3];
	uint64_t site_calls; /* this CPU's calls into the runtime */
	/* Added at the end: host -> runtime, set with a restored idt_base and
	 * idt_limit; the CPU rebuilds its real IDT from them when it leaves
	 * its park, and clears it. */
	volatile uint32_t reload_idt;
	uint32_t pad2;
	/* Added at the end: the guest's CS and SS selectors at the park point
	 * (runtime -> host; a park from user mode has the user's), and where
	 * an adopting CPU resumes the guest (host -> runtime). */
	uint16_t cs, ss;
	uint32_t pad3;
};

#endif
