/* rt_internal.h: the runtime's internal seams: CPU side (boot, sites, interrupts, parking) and device side (models, host channel) */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

/*
 * The runtime is freestanding and runs at guest CPL 0 with the real IF
 * clear (the guest's IF is virtual: struct rt_cpu_state.vif).  Two halves:
 *
 *   CPU side    rt_entry.S, rt_boot.c, rt_site.c, rt_cpu.c: entry stubs,
 *               boot (rewrite native -> kvm, enter the guest), the site
 *               dispatcher, virtual IF/IDT, delivery, iret/sysret, parking.
 *   device side rt_devices.c (+ runtime/kvm/rt_channel.c): the PIC, PIT,
 *               UART, PCI and DP83820 models and the host channel.
 *
 * The device side is called only through the functions below.  It takes
 * its own lock, so any CPU may call rt_dev_pio/rt_dev_mmio; rt_dev_poll
 * and the interrupt functions are called by CPU 0 only (the PIC signals
 * CPU 0, as in virtual-wire mode).
 */
#include <stddef.h>
#include <stdint.h>

#include "rt_abi.h"

#define RT_BOOT   ((struct rt_boot *)(RT_WINDOW_BASE + RT_OFF_BOOT))
#define RT_SHARED ((struct rt_shared *)(RT_WINDOW_BASE + RT_OFF_SHARED))

/* ---- device side (rt_devices.c, runtime/kvm/rt_channel.c) */

/* Once, on the BSP, after the boot block was checked and before the guest runs. */
void rt_dev_init(void);
/* Port I/O the guest did through an in/out/ins/outs site.  1 if a runtime
 * model answered (*val read or written), 0 if the port is not the
 * runtime's: the CPU side then forwards it to the host with a real in/out. */
int rt_dev_pio(unsigned port, unsigned size, int is_write, uint32_t *val);
/* An mmio-read/mmio-write site at guest-physical `gpa`: 1 handled, 0 not ours. */
int rt_dev_mmio(uint64_t gpa, unsigned size, int is_write, uint64_t *val);
/* Catch up with the world: host news, time (PIT), frames from the RX ring
 * into the NIC.  Cheap when nothing changed; CPU 0 calls it at every site
 * boundary and upcall. */
void rt_dev_poll(void);
/* The PIC has an unmasked request for the CPU / the INTA cycle (its vector). */
int rt_dev_irq_pending(void);
uint8_t rt_dev_irq_ack(void);
/* Ring the doorbell for anything batched (console bytes, TX frames).
 * Called before the CPU idles or parks, so nothing waits on a sleeping CPU. */
void rt_dev_flush(void);
/* A CPU in its park loop, no other CPU inside the runtime outside its park
 * (rt_site.c): serve rt_shared.state_req (save the models into the window's
 * device-state area, or restore them from it), then ring RT_BELL_STATE.
 * One load when nothing is asked. */
void rt_dev_state_serve(void);
/* The host clock in ns, from the TSC and the boot block's clock pair. */
uint64_t rt_now_ns(void);

/* ---- CPU side (rt_cpu.c), for the device side */

/* This CPU's number (from sidt: the real IDT base is RT_PERCPU_ADDR(n)). */
unsigned rt_cpu_id(void);
struct rt_cpu_state *rt_cpu_state(unsigned cpu);

/* ---- tiny freestanding helpers (rt_lib.c) */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t rt_strlcpy(char *d, const char *s, size_t n);

static inline void rt_outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint64_t rt_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* A spinlock for the device side (two CPUs share the models). */
static inline void rt_lock(volatile uint32_t *l)
{
	while (__atomic_exchange_n(l, 1u, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}
static inline void rt_unlock(volatile uint32_t *l) { __atomic_store_n(l, 0u, __ATOMIC_RELEASE); }

#endif
