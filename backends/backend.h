/* backend.h: the host-backend contract (one small ops table, a generic struct vm, opaque backend state) */
#ifndef BACKEND_H
#define BACKEND_H

/*
 * A host backend drives one hypervisor from the host side.  The generic
 * struct vm below holds what every backend shares: guest RAM as one host
 * mapping, the PIO/MMIO dispatch tables, the interrupt source and timers of
 * the device models, and the run/pause bookkeeping.  What a backend needs
 * beyond that lives behind the opaque `b` pointer, whose type only that
 * backend's own header defines (backends/kvm/kvm_int.h for kvm).
 *
 * Callers use the vm__* functions; they forward to the ops table where the
 * work is backend-specific.  Threads: vm__run() runs every vCPU on its own
 * pthread and returns when the guest powers off or fails.  vm__pause() and
 * vm__resume() may be called from any other thread while vm__run() runs;
 * vCPU state and the dirty bitmap MUST only be read or written while the VM
 * is paused (or before vm__run() / after it returned).
 *
 * Errors: functions that can fail return 0 or -1 and leave a readable reason
 * in vm->err (and return NULL from vm__create with the reason in *cause).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define VM_PAGE_SIZE 4096u
#define VM_MAX_VCPUS 16
#define VM_MAX_IO 64
#define VM_MAX_TIMERS 4

struct vm;

/* ---- vCPU state (struct vm_vcpu_state): its own header, so state/ can carry
 * it across hosts without the rest of this contract */
#include "vm_vcpu_state.h"

/* ---- device I/O: a model registers a port or address range it answers */

struct vm_io_ops {
	/* (offset) from the range base, (size) 1, 2, 4 or 8 bytes. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t val);
};

struct vm_io_range {
	uint64_t base, len;
	const struct vm_io_ops *ops;
	void *opaque;
};

/*
 * The interrupt controller in our process (the i8259 model): pending()
 * says whether an interrupt waits for the CPU, ack() performs the INTA
 * cycle and returns its vector.  Delivered to vCPU 0 only, as a PIC in
 * virtual-wire mode does.
 */
struct vm_irq_ops {
	int (*pending)(void *opaque);
	int (*ack)(void *opaque);
};

/*
 * A device that needs time (the PIT): poll() runs on the BSP before each
 * guest entry with the device lock held; it updates the device for (now)
 * and returns the next deadline in ns (UINT64_MAX: none).  A halted BSP
 * sleeps until the earliest deadline.
 */
struct vm_timer_ops {
	uint64_t (*poll)(void *opaque, uint64_t now_ns);
};

/*
 * The parking protocol of a personality whose runtime lives inside the
 * guest (kvm, personality_kvm_host.c).  A vCPU that left KVM_RUN inside the
 * runtime is not at a safe point: the runtime must park it first (it
 * publishes the guest's registers and waits in hlt).  Without these ops
 * (native) every exit is a safe point, as before.
 */
struct vm_park_ops {
	/* vm__pause begins (pause_req is set): ask the runtime to park. */
	void (*request)(void *opaque);
	/* vCPU (cpu) left the guest at (rip): 1 if it may stop for a pause there. */
	int (*safe)(void *opaque, unsigned cpu, uint64_t rip);
	/* vCPU (cpu) executed HLT at (rip): 1 if that is the runtime's park or
	 * idle loop, which the host wakes (so neither offline nor a hang). */
	int (*halted)(void *opaque, unsigned cpu, uint64_t rip);
	/* A vCPU halted that way: 1 while it must stay halted, 0 once it
	 * must go back in (the request it parked for was withdrawn, even
	 * before its HLT ran).  Looked at after every wake. */
	int (*waits)(void *opaque, unsigned cpu);
	/* vm__resume: withdraw the request before the vCPUs go on. */
	void (*release)(void *opaque);
	/* Optional: the vector to inject into AP (cpu) before it enters the
	 * guest, or -1.  The PIC's interrupts reach vCPU 0 only, but a park
	 * must reach every vCPU: an AP spinning in user mode meets no site. */
	int (*ap_kick)(void *opaque, unsigned cpu);
	/* Optional: a pause found vCPU (cpu) halted that way: 1 if it must go
	 * back in once more before it stops (the runtime has work for its
	 * park loop: a device-state request asked with the pause). */
	int (*wake)(void *opaque, unsigned cpu);
};

/* Every return from KVM_RUN (or a backend's equivalent), by reason. */
struct vm_exit_counts {
	uint64_t io, mmio, hlt, window, intr, other;
};

/* A guest clock sample (vm_ops.clock): the guest's TSC next to the host's
 * CLOCK_MONOTONIC, and the TSC's rate. */
struct vm_clock {
	uint64_t tsc_khz, guest_tsc, host_ns;
};

/* How the guest ended. */
enum vm_exit_kind {
	VM_EXIT_NONE = 0,
	VM_EXIT_POWEROFF, /* status in vm->exit_status */
	VM_EXIT_CRASH,    /* triple fault, internal error: reason in vm->err */
	VM_EXIT_HALTED,   /* every started vCPU halted with interrupts off */
};

/* ---- the ops table a backend fills */

struct vm_ops {
	const char *name;
	int (*create)(struct vm *vm);
	void (*destroy)(struct vm *vm);
	/* Put (cpu) in the Multiboot-style 32-bit flat state at (entry). */
	int (*reset_vcpu32)(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t esp);
	/* Real mode at (entry) (CS = entry >> 4), SS:SP from (sp). */
	int (*reset_vcpu16)(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t sp);
	/* 64-bit long mode with identity page tables at (cr3). */
	int (*reset_vcpu64)(struct vm *vm, unsigned cpu, uint64_t entry, uint64_t cr3, uint64_t gdt);
	int (*run)(struct vm *vm);
	void (*kick_all)(struct vm *vm); /* make every vCPU leave the guest soon */
	void (*wake)(struct vm *vm);     /* a halted vCPU should look again */
	int (*get_state)(struct vm *vm, unsigned cpu, struct vm_vcpu_state *st);
	int (*set_state)(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *st);
	int (*dirty_start)(struct vm *vm);
	int (*dirty_fetch)(struct vm *vm, uint64_t *bitmap); /* OR into bitmap */
	int (*dirty_stop)(struct vm *vm);
	/* Back the runtime window (vm->window) with its own memory slot. */
	int (*map_window)(struct vm *vm);
	/* Sample the guest clock (vCPU 0's TSC) against the host's. */
	int (*clock)(struct vm *vm, struct vm_clock *c);
	/* Optional: every vCPU is outside the guest at a vm__pause; undo
	 * anything the backend keeps in guest memory that must not be seen
	 * from outside (RAM copies, migration). */
	void (*paused)(struct vm *vm);
};

/* ---- the generic VM */

struct vm {
	const struct vm_ops *ops;
	void *b; /* backend-private state */

	uint8_t *mem;      /* guest RAM: gpa 0 .. mem_size-1 */
	uint64_t mem_size; /* multiple of 2 MiB, at most VM_MAX_RAM */
	int mem_fd;        /* the memory file behind mem (memfd), -1 once given up */
	unsigned nr_vcpus;

	/* Device lock: held around every device callback (I/O, irq, timer).
	 * Recursive, so callbacks may (un)register I/O ranges. */
	pthread_mutex_t dev_lock;
	struct vm_io_range pio[VM_MAX_IO], mmio[VM_MAX_IO];
	unsigned nr_pio, nr_mmio;
	uint64_t nr_pio_exits, nr_mmio_exits; /* accesses dispatched, for benchmarks */
	/* Host-defect fixups (kvm: ring-3 syscalls without the switch to
	 * ring 0, docs/KVM-HOST.md): system calls completed by the host, other
	 * faults passed on through the hook, hooks placed, handlers declined. */
	uint64_t nr_sysfix_completed, nr_sysfix_passed, nr_sysfix_hooks, nr_sysfix_refused;
	int sysfix_off; /* set before vm__run: leave such faults to the guest */
	const struct vm_irq_ops *irq;
	void *irq_opaque;
	struct { const struct vm_timer_ops *ops; void *opaque; } timers[VM_MAX_TIMERS];
	unsigned nr_timers;

	/* Pages the host wrote while dirty tracking runs (DMA, loaders). */
	uint64_t *host_dirty;
	int dirty_on;

	/* Run state, guarded by run_lock. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	int pause_req, nr_parked, running;
	unsigned wake_gen;               /* bumped by vm__notify_irq */
	uint8_t started[VM_MAX_VCPUS];   /* AP started by the doorbell */
	enum vm_exit_kind exit_kind;
	int exit_status;
	void *platform; /* platform_pc.c's devices, torn down by vm__destroy */

	/* The runtime window (runtime/include/rt_abi.h): RT_WINDOW_SIZE bytes
	 * of host memory behind their own memory slot at RT_WINDOW_BASE while
	 * a personality with an in-guest runtime runs (kvm); NULL otherwise.
	 * Not RAM: never in vm__gpa, the dirty log or a RAM copy. */
	uint8_t *window;
	void *rt; /* personality_kvm_host.c's channel state, torn down by vm__destroy */
	/* The guest's retained .pvsites table (guest-physical): where the
	 * loader found it in the image, or where a migration stream said it
	 * is.  Size 0: none known (a guest without sites, or not loaded). */
	uint64_t sites_addr, sites_size;
	const struct vm_park_ops *park;
	void *park_opaque;
	/* Where each vCPU last left the guest while a pause waited for it to
	 * park (for the error when it never does). */
	uint64_t park_rip[VM_MAX_VCPUS];
	struct vm_exit_counts exits; /* atomic adds */
	char err[256];
};

#define VM_MAX_RAM (3ull << 30) /* one slot below the 32-bit PCI hole */
/* How long vm__pause waits for a runtime to park every vCPU: ring 0 is
 * emulated on this host (~1 us per instruction) and a runtime that is
 * rewriting a large table at boot parks only when it is done. */
#define VM_PARK_TIMEOUT_NS (10ull * 1000000000u)

/* Guest-visible platform ports (see docs/KVM-HOST.md). */
#define VM_PORT_EXIT 0x501     /* outb v: power off, exit status v */
#define VM_PORT_AP_START 0x510 /* outl gpa of struct vm_ap_start; inl: 0 or -1 */
#define VM_PORT_CONSOLE 0x3f8

/* What a guest writes to VM_PORT_AP_START points at. */
struct vm_ap_start {
	uint32_t cpu;   /* 1 .. nr_vcpus-1 */
	uint32_t entry; /* physical entry */
	uint32_t stack; /* initial ESP / SP */
	uint32_t flags; /* VM_AP_REAL_MODE: enter in 16-bit real mode */
};
#define VM_AP_REAL_MODE 1u

/* Backends compiled in. */
extern const struct vm_ops vm_kvm_ops;

#include <stdio.h>
/* kvm/kvm_caps.c: print KVM_CHECK_EXTENSION answers; -1 with errno. */
int kvm__report_caps(FILE *out);

/* vm.c: lifecycle, memory, dispatch */
struct vm *vm__create(const struct vm_ops *ops, uint64_t mem_size, unsigned nr_vcpus,
		      char *cause, size_t causelen);
void vm__destroy(struct vm *vm);
/* Host pointer for [gpa, gpa+len), NULL if not all of it is RAM. */
void *vm__gpa(struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * Guest RAM is a memfd mapped MAP_SHARED (vm->mem_fd), so that another
 * process can run the very same pages (in-place moves, migrate_shared.c).
 * vm__ram_share maps the memory file fd (mem_size bytes) at vm->mem in
 * place of what was there (same address: the memory slot follows) and
 * takes fd; private_view maps it copy-on-write, so that nothing written
 * here reaches the file (a target before its commit).  vm__ram_detach puts
 * fresh anonymous memory there and closes the file: nothing this VM does
 * afterwards can touch the guest (a source after the move, a target that
 * failed).  0, or -1 with vm->err.
 */
int vm__ram_share(struct vm *vm, int fd, int private_view);
void vm__ram_detach(struct vm *vm);
/*
 * Whether guest page gfn may hold data: 0 only if it is a hole of the
 * memory file (never written, reads as zero), known without reading it.
 * e caches the extent found last; zero it before the first call.
 */
struct vm_ram_extent {
	uint64_t first, end; /* gfns [first, end) */
	int data;
};
int vm__ram_touched(struct vm *vm, uint64_t gfn, struct vm_ram_extent *e);
/* Create the runtime window (zeroed) and its memory slot; RAM must end
 * at or below RT_WINDOW_BASE.  Before vm__run. */
int vm__window_create(struct vm *vm);
/* Host pointer for [gpa, gpa+len) inside the window, NULL if not all of it is. */
void *vm__window(struct vm *vm, uint64_t gpa, uint64_t len);
/* RAM or window: for the backend's own reads of guest structures (page
 * tables, IDTs, stacks), which under kvm may live in the window. */
void *vm__guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len);
/* Copy into guest RAM, marking the pages dirty for tracking. */
int vm__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len);
void vm__mark_dirty(struct vm *vm, uint64_t gpa, uint64_t len);
int vm__register_pio(struct vm *vm, uint64_t base, uint64_t len,
		     const struct vm_io_ops *ops, void *opaque);
int vm__register_mmio(struct vm *vm, uint64_t base, uint64_t len,
		      const struct vm_io_ops *ops, void *opaque);
/* Undo a registration (a PCI BAR moved); may be called from a device callback. */
void vm__unregister_pio(struct vm *vm, uint64_t base, void *opaque);
void vm__unregister_mmio(struct vm *vm, uint64_t base, void *opaque);
void vm__set_irq_source(struct vm *vm, const struct vm_irq_ops *ops, void *opaque);
int vm__register_timer(struct vm *vm, const struct vm_timer_ops *ops, void *opaque);
/* Tell a halted vCPU that a device raised a line (any thread). */
void vm__notify_irq(struct vm *vm);
/* Called by backends on an exit; return 0 if a device answered. */
int vm__pio(struct vm *vm, uint16_t port, int is_write, unsigned size, uint8_t *data);
int vm__mmio(struct vm *vm, uint64_t gpa, int is_write, unsigned size, uint8_t *data);
uint64_t vm__now_ns(void);
int vm__fail(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* vm_run.c: running, pausing, state */
int vm__run(struct vm *vm);      /* blocks until the guest ends */
int vm__pause(struct vm *vm);    /* returns with every vCPU outside the guest */
void vm__resume(struct vm *vm);
void vm__poweroff(struct vm *vm, enum vm_exit_kind kind, int status);
int vm__get_vcpu_state(struct vm *vm, unsigned cpu, struct vm_vcpu_state *st);
int vm__set_vcpu_state(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *st);
/* Start AP (cpu) at (entry) with stack (stack); see struct vm_ap_start. */
int vm__start_ap(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t stack, uint32_t flags);

/* vm_run.c: dirty tracking (bitmap: one bit per 4 KiB page, mem_size/4096 bits) */
int vm__dirty_start(struct vm *vm);
int vm__dirty_fetch(struct vm *vm, uint64_t *bitmap); /* fetch and clear */
int vm__dirty_stop(struct vm *vm);
size_t vm__dirty_bitmap_bytes(const struct vm *vm);

/* vm_run.c: for backends only: what a vCPU thread calls */
/* Nonzero when the thread should leave the guest (pause or end). */
int vm__vcpu_should_stop(struct vm *vm);
/* Block while a pause is requested, or until the pause has work for vCPU
 * (cpu)'s park loop (vm_park_ops.wake); -1 when the VM is ending. */
int vm__vcpu_park(struct vm *vm, unsigned cpu);
/* A halted vCPU: block until (deadline_ns), a vm__notify_irq after (gen),
 * or a pause (returns 0 after resume, or at once when the pause has work
 * for vCPU (cpu)'s park loop: vm_park_ops.wake); -1 when the VM is ending. */
int vm__vcpu_halt(struct vm *vm, unsigned cpu, uint64_t deadline_ns, unsigned gen);
/* An AP not (or no longer) started: block until the doorbell starts it. */
int vm__vcpu_wait_start(struct vm *vm, unsigned cpu);
void vm__vcpu_stopped(struct vm *vm, unsigned cpu); /* AP went offline */
unsigned vm__wake_gen(struct vm *vm);
/* Run the timers, then tell whether an interrupt waits; returns the next
 * timer deadline.  Takes the device lock. */
uint64_t vm__poll_devices(struct vm *vm, int *irq_pending);
/* INTA: vector of the pending interrupt, -1 if none.  Device lock taken. */
int vm__ack_irq(struct vm *vm);
void vm__vcpu_exited(struct vm *vm); /* thread leaves for good */
/* The parking protocol (struct vm_park_ops).  safe: vCPU (cpu) left the
 * guest at (rip); may it stop for the pause?  1 without ops and once the
 * VM is ending.  hlt_parked: its HLT at (rip) is a park (0 without ops).
 * park_waits: a vCPU halted by a park must stay halted. */
int vm__vcpu_safe(struct vm *vm, unsigned cpu, uint64_t rip);
int vm__vcpu_hlt_parked(struct vm *vm, unsigned cpu, uint64_t rip);
int vm__vcpu_park_waits(struct vm *vm, unsigned cpu);
int vm__vcpu_park_wake(struct vm *vm, unsigned cpu);
void vm__set_park_ops(struct vm *vm, const struct vm_park_ops *ops, void *opaque);
uint64_t vm__exit_total(const struct vm *vm);

/* boot_multiboot.c, boot_linux.c: loaders; they leave vCPU 0 ready to run */
int vm__load_multiboot(struct vm *vm, const char *path, const char *cmdline);
/* The Multiboot loader's work without touching a vCPU: image, info block,
 * memory map and command line in RAM; the entry state it would set. */
struct vm_multiboot {
	uint32_t entry; /* 32-bit physical entry */
	uint32_t mbi;   /* EBX at entry: the info block */
	uint32_t esp;   /* the courtesy stack */
};
int vm__place_multiboot(struct vm *vm, const char *path, const char *cmdline,
			struct vm_multiboot *mb);
int vm__load_linux(struct vm *vm, const char *kernel, const char *initrd, const char *cmdline);
/* 1 if the file is a Linux bzImage ("HdrS" at 0x202), else 0: then it is Multiboot. */
int vm__is_bzimage(const char *path);

/*
 * platform_*.c: the PC every guest sees: power-off and AP doorbell ports,
 * the device models (8259 pair as the interrupt source, 8254 as a timer,
 * 16550 COM1 on console_fd, PCI mechanism #1 with a host bridge), and
 * optionally a DP83820 on PCI slot 3 behind a host network backend.
 */
int vm__platform_init(struct vm *vm, int console_fd);
/* The same PC for a guest whose runtime holds the device models (kvm):
 * only the host's own ports (power-off, AP doorbell) trap. */
int vm__platform_init_ports(struct vm *vm);
/* Feed COM1 from (fd) (non-blocking reads; EOF stops input).  Before vm__run. */
void vm__platform_console_input(struct vm *vm, int fd);
/* Attach the DP83820; (spec) "socket:PATH" or "tap:IFNAME".  Before vm__run. */
int vm__platform_add_nic(struct vm *vm, const char *spec);
/* The device models, for state/devstate.h (a struct devset).  Read or
 * restore them with vm->dev_lock held, and the VM paused. */
struct devset;
void vm__platform_devset(struct vm *vm, struct devset *set);
/* One line of NIC figures (frames each way, held, dropped), or nothing. */
void vm__platform_report(struct vm *vm, FILE *out);
/* NIC host-side counters; 0 if there is no NIC. */
struct vm_nic_stats {
	uint64_t rx_frames, tx_frames, held_max, dropped, tx_errors;
};
int vm__platform_nic_stats(struct vm *vm, struct vm_nic_stats *st);
/*
 * Migration (platform_nic.c).  freeze stops the NIC's receive thread, so no
 * frame reaches the guest or the hold queue any more (new ones wait in the
 * backend); thaw restarts it.  held calls fn for each frame in the hold
 * queue, oldest first, without taking it (1: NIC present, 0: none, -1: fn
 * failed, or the queue could not be read: vm->err says why).  hold_frame appends a frame to a frozen NIC's queue (a target
 * taking over the source's held frames); -1 when the queue is full.
 */
int vm__platform_nic_freeze(struct vm *vm);
void vm__platform_nic_thaw(struct vm *vm);
int vm__platform_nic_held(struct vm *vm, int (*fn)(void *ctx, const uint8_t *frame, size_t len),
			  void *ctx);
int vm__platform_nic_hold_frame(struct vm *vm, const uint8_t *frame, size_t len);
/*
 * A move to another host (migrate_late.c).  recv_frozen reads the frozen
 * NIC's backend itself (the source forwarding its late frames): waits at
 * most timeout_ms; the frame's length (more than cap: it was cut, drop
 * it), 0 when none came, -1 when the backend ended (errno EPIPE: the far
 * end closed it) or failed.  send puts a frame of the host's own (the
 * target's announce) on the NIC's wire; 0, or -1 with vm->err.
 */
ssize_t vm__platform_nic_recv_frozen(struct vm *vm, void *buf, size_t cap, int timeout_ms);
int vm__platform_nic_send(struct vm *vm, const void *frame, size_t len);
/*
 * Same-host migration: the target's NIC takes over the source's host
 * backend (the socket the peer already talks to), so frames that arrived
 * after the freeze are read by the target, in order, after the held ones.
 * The source's NIC must be frozen and its VM never run again; the
 * target's own backend is closed.
 */
int vm__platform_nic_move_backend(struct vm *dst, struct vm *src);
void vm__platform_destroy(struct vm *vm); /* vm__destroy calls it */

/* personality_kvm.h: the host half of the kvm personality (vm->rt). */
void vm__kvm_host_destroy(struct vm *vm); /* vm__destroy calls it */

#endif
