/* smp.c: start a second CPU through the platform's AP start mailbox, or run on one when there is none */
#include "arch.h"
#include "guest.h"

/*
 * The AP start mailbox (README.md, "Secondary CPUs") is a platform device at
 * I/O port 0x510: a 32-bit write of the physical address of a request
 * { cpu, entry, stack, flags } starts that CPU at `entry` in the flat
 * 32-bit state a Multiboot loader leaves (EBX = the CPU index, ESP =
 * `stack`); a 32-bit read then answers 0 (started) or all ones (refused, or
 * no such CPU).  CPU 0 is never a valid request.
 *
 * So the probe is a request that must be refused (CPU 0) and then the real
 * one: only a device that answers all ones to the first and 0 to the second
 * is the mailbox.  A single read proves nothing: on QEMU's PC the port is
 * fw_cfg's selector, which ignores 32-bit accesses and reads them as 0,
 * exactly what the mailbox answers for "started".
 *
 * "Started" is still not trusted to mean "running": the AP must check in
 * within a second of ticks, and it checks in by moving its state from
 * STARTING to ALIVE with a compare-and-swap.  If the boot CPU gives up
 * first it moves the state to ABANDONED the same way, so exactly one of the
 * two decides, and a late AP sees that and halts instead of joining a
 * workload that has already been split for one CPU.
 *
 * No interrupt ever reaches an AP (the PIC only signals the boot CPU, and
 * there are no IPIs), so it never waits for one: it spins on memory.  The
 * boot CPU may sleep in hlt, since its timer wakes it every tick.
 */

#define AP_MAILBOX	0x510
#define AP_WAIT_TICKS	TIMER_HZ /* a second */

enum { AP_OFF, AP_STARTING, AP_ALIVE, AP_ABANDONED };

struct ap_request {
	uint32_t cpu;
	uint32_t entry; /* physical */
	uint32_t stack; /* physical: the AP's initial ESP */
	uint32_t flags; /* 0: 32-bit protected mode entry */
};

unsigned ncpus = 1;

static struct ap_request ap_req __attribute__((aligned(16)));
static uint32_t ap_state = AP_OFF;
static uint32_t ap_go;
/* the AP's stack until it enters ring 3 on its TSS stack */
static uint8_t ap_boot_stack[8192] __attribute__((aligned(16)));

/* Ask the mailbox to start `cpu`; returns its answer (0: started). */
static uint32_t mailbox_start(unsigned cpu)
{
	ap_req = (struct ap_request){
		.cpu = cpu,
		.entry = (uint32_t)(uint64_t)ap_start32,
		.stack = (uint32_t)(uint64_t)(ap_boot_stack + sizeof ap_boot_stack),
		.flags = 0,
	};
	/* the request must be in memory before the device reads it */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	outl(AP_MAILBOX, (uint32_t)(uint64_t)&ap_req);
	return inl(AP_MAILBOX);
}

/* Wait (interrupts on, the timer wakes us) for the AP to check in; 1 if it did. */
static int wait_alive(void)
{
	uint64_t t0 = ticks;
	uint64_t f = read_rflags();
	int alive = 0;

	sti();
	while (ticks - t0 < AP_WAIT_TICKS) {
		if (__atomic_load_n(&ap_state, __ATOMIC_ACQUIRE) == AP_ALIVE) {
			alive = 1;
			break;
		}
		hlt();
	}
	irq_restore(f);
	if (alive)
		return 1;
	uint32_t expect = AP_STARTING;
	/* the AP may win the race at the last moment: then it is alive after all */
	return !__atomic_compare_exchange_n(&ap_state, &expect, AP_ABANDONED, 0, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
}

void smp_init(void)
{
	uint32_t refused = mailbox_start(0);
	if (refused != 0xffffffffu) {
		kprintf("smp: 1 cpu (no AP start mailbox: a request for CPU 0 read 0x%x)\n",
			refused);
		return;
	}
	__atomic_store_n(&ap_state, AP_STARTING, __ATOMIC_RELEASE);
	uint32_t answer = mailbox_start(1);
	if (answer != 0) {
		__atomic_store_n(&ap_state, AP_OFF, __ATOMIC_RELEASE);
		kprintf("smp: 1 cpu (the AP start mailbox answered 0x%x: no CPU 1 to start)\n",
			answer);
		return;
	}
	if (!wait_alive()) {
		kprintf("smp: 1 cpu (CPU 1 was started but did not check in within %u ticks)\n",
			AP_WAIT_TICKS);
		return;
	}
	ncpus = 2;
	kprintf("smp: %u cpus\n", ncpus);
	/* ncpus and everything the boot CPU set up are visible to the AP after this */
	__atomic_store_n(&ap_go, 1, __ATOMIC_RELEASE);
}

static void __attribute__((noreturn)) halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

/* C entry of an AP, from ap_start64 in boot.S, on ap_boot_stack. */
void ap_main(uint32_t cpu)
{
	/* only CPU 1 was asked for; anything else must not touch shared state */
	if (cpu != 1)
		halt_forever();
	cpu_init(cpu);
	uint32_t expect = AP_STARTING;
	if (!__atomic_compare_exchange_n(&ap_state, &expect, AP_ALIVE, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		halt_forever(); /* too late: the boot CPU went on alone */
	while (!__atomic_load_n(&ap_go, __ATOMIC_ACQUIRE))
		cpu_relax();
	kprintf("smp: cpu %u up, entering ring 3\n", cpu);
	enter_user((uint64_t)user_main, USER_STACK_TOP - cpu * USER_STACK_STRIDE - 8);
}
