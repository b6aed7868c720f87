/* rt_double.c: a TEST DOUBLE of the kvm runtime: checks the boot block and exercises each channel service of pvhost's host half */
#include <stddef.h>
#include <stdint.h>

#include "rt_abi.h"

/*
 * Not the runtime (runtime/ is): this image only tests the host half of the
 * kvm personality (backends/personality_kvm_*.c) on the real /dev/kvm.  It
 * never enters the guest.  What it does is chosen by words on the guest's
 * command line, which it reads through the Multiboot info block the host
 * names in rt_boot.mbi:
 *
 *   (always)        check every boot block and channel field the host
 *                   fills, report through rt_boot.status/error and
 *                   RT_BELL_BOOTED, print through the console ring
 *   double.exit=N   power off with status N (default 0)
 *   double.fail     report a failed boot (status < 0, error text)
 *   double.nic=0|1  what rt_boot.nic_present must be
 *   double.timer    set a deadline 20 ms ahead, idle in sti;hlt until
 *                   RT_NEWS_TIMER arrives by upcall, check the clock pair
 *   double.net=N    echo N frames from the RX ring to the TX ring, taking
 *                   them only when the ring is full (the host must hold
 *                   the rest) or when the last ones are in
 *   double.park=MS  spin inside the window for MS ms, parking on request
 *                   with the entry as the guest RIP
 *   double.badpark  ... but publish a RIP inside the window (unsafe)
 *   double.smp      start CPU 1 through the mailbox; check its IDTR
 */

#define WIN(off) ((void *)(uintptr_t)(RT_WINDOW_BASE + (off)))
#define BOOT ((struct rt_boot *)WIN(RT_OFF_BOOT))
#define SH ((struct rt_shared *)WIN(RT_OFF_SHARED))
#define CON ((volatile uint8_t *)WIN(RT_OFF_CONSOLE))
#define STATE0 ((struct rt_cpu_state *)(uintptr_t)(RT_PERCPU_ADDR(0) + RT_PERCPU_STATE))
#define PORT_EXIT 0x501
#define PORT_AP 0x510
#define AP_REQ_GPA 0x6000u /* free RAM below the loader's low area */

extern char double_upcall[], double_ap32[];
/* written by CPU 1 in double_ap32 (32-bit code, absolute addresses) */
struct __attribute__((packed)) ap_idtr {
	uint16_t limit;
	uint32_t base;
};
extern volatile uint32_t double_ap_seen, double_ap_cpu;
extern volatile struct ap_idtr double_ap_idtr;
volatile uint32_t double_ap_seen, double_ap_cpu;
volatile struct ap_idtr double_ap_idtr;

void double_main(void) __attribute__((noreturn));
void double_on_upcall(void);

/* gcc may call these for struct copies even when freestanding */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *a = d;
	const uint8_t *b = s;
	while (n--)
		*a++ = *b++;
	return d;
}
void *memset(void *d, int c, size_t n)
{
	uint8_t *a = d;
	while (n--)
		*a++ = (uint8_t)c;
	return d;
}

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void idle(void) { __asm__ volatile("sti\n\thlt\n\tcli" ::: "memory"); }

static void bell(uint32_t bits)
{
	SH->doorbells++;
	outl(RT_PORT_DOORBELL, bits);
}

static void __attribute__((noreturn)) poweroff(unsigned status)
{
	outb(PORT_EXIT, (uint8_t)status);
	for (;;)
		__asm__ volatile("cli\n\thlt");
}

/* ---- the console ring */

static uint32_t con_prod;

static void putch(char c)
{
	while (con_prod - __atomic_load_n(&SH->console.cons, __ATOMIC_ACQUIRE) >= RT_CONSOLE_SIZE)
		bell(RT_BELL_CONSOLE);
	CON[con_prod % RT_CONSOLE_SIZE] = (uint8_t)c;
	__atomic_store_n(&SH->console.prod, ++con_prod, __ATOMIC_RELEASE);
	if (c == '\n')
		bell(RT_BELL_CONSOLE);
}

static void puts_(const char *s)
{
	while (*s)
		putch(*s++);
}

static void putnum(uint64_t v, unsigned base)
{
	char buf[24];
	int i = 0;

	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		puts_("0x");
	while (i)
		putch(buf[--i]);
}

/* ---- the guest command line */

static const char *cmdline(void)
{
	const uint32_t *mbi = (const uint32_t *)(uintptr_t)BOOT->mbi;

	return (mbi[0] & 4) ? (const char *)(uintptr_t)mbi[4] : "";
}

/* The value after "word" (a whole word, or "word=N"); -1 if absent, 1 if bare. */
static long arg(const char *word)
{
	const char *p = cmdline();

	while (*p) {
		const char *w = word, *q = p;
		while (*w && *q == *w)
			q++, w++;
		if (!*w && (*q == ' ' || *q == '\0'))
			return 1;
		if (!*w && *q == '=') {
			long v = 0;
			for (q++; *q >= '0' && *q <= '9'; q++)
				v = v * 10 + (*q - '0');
			return v;
		}
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return -1;
}

/* ---- the boot report */

static void __attribute__((noreturn)) boot_fail(const char *what, uint64_t value)
{
	static const char pre[] = "test double: ";
	char *e = BOOT->error;
	unsigned i = 0, n;
	char hex[18];

	for (n = 0; pre[n] && i < sizeof BOOT->error - 1; n++)
		e[i++] = pre[n];
	for (n = 0; what[n] && i < sizeof BOOT->error - 1; n++)
		e[i++] = what[n];
	if (value != (uint64_t)-1 && i + 20 < sizeof BOOT->error) {
		e[i++] = ' ';
		for (n = 0; n < 16; n++)
			hex[n] = "0123456789abcdef"[(value >> (60 - 4 * n)) & 0xf];
		e[i++] = '0';
		e[i++] = 'x';
		for (n = 0; n < 16; n++)
			e[i++] = hex[n];
	}
	e[i] = '\0';
	BOOT->status = -1;
	bell(RT_BELL_BOOTED);
	for (;;)
		__asm__ volatile("cli\n\thlt");
}

#define CHECK(cond, what, value) do { if (!(cond)) boot_fail("check failed: " what, (uint64_t)(value)); } while (0)

/* ---- the clock pair */

static uint64_t now_ns(void)
{
	__extension__ typedef unsigned __int128 u128;
	uint64_t tsc = rdtsc();

	return BOOT->clock_host_ns +
	       (uint64_t)(((u128)(tsc - BOOT->clock_guest_tsc) * BOOT->tsc_mult) >> 32);
}

static void check_boot_block(void)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x83, 0x82, 0x01 };
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr;
	struct rt_boot *b = BOOT;
	uint64_t cr3, rsp, t;
	long nic = arg("double.nic");
	unsigned i;

	__asm__ volatile("sidt %0" : "=m"(idtr));
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	__asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
	CHECK(b->magic == RT_BOOT_MAGIC, "boot magic", b->magic);
	CHECK(b->abi_version == RT_ABI_VERSION, "boot abi_version", b->abi_version);
	CHECK(b->ncpus >= 1 && b->ncpus <= RT_MAX_CPUS, "ncpus", b->ncpus);
	CHECK(b->flags == RT_BOOTF_NONE, "flags", b->flags);
	CHECK(b->ram_size >= (4u << 20) && b->ram_size <= RT_WINDOW_BASE &&
	      b->ram_size % (2u << 20) == 0, "ram_size", b->ram_size);
	CHECK(b->guest_entry32 >= 0x100000 && b->guest_entry32 < b->ram_size, "guest_entry32",
	      b->guest_entry32);
	CHECK(b->mbi == 0x8000, "mbi", b->mbi);
	CHECK(b->table_size >= 16 && b->table_addr >= 0x100000 &&
	      b->table_addr + b->table_size <= b->ram_size, "table_addr/size", b->table_addr);
	CHECK(*(const uint32_t *)(uintptr_t)b->table_addr == 0x54535650u, "table magic at table_addr",
	      *(const uint32_t *)(uintptr_t)b->table_addr);
	CHECK(b->tsc_khz >= 100000 && b->tsc_khz < 100000000, "tsc_khz", b->tsc_khz);
	CHECK(b->tsc_mult == (1000000ull << 32) / b->tsc_khz, "tsc_mult", b->tsc_mult);
	t = now_ns();
	CHECK(t >= b->clock_host_ns && t - b->clock_host_ns < 60000000000ull,
	      "clock pair (host ns now minus clock_host_ns)", t - b->clock_host_ns);
	CHECK(b->nic_slot == 3 && b->nic_irq == 11, "nic slot/irq", b->nic_slot);
	CHECK(b->nic_bar_io == 0xc000 && b->nic_bar_mem == 0xfebf0000u, "nic BARs", b->nic_bar_mem);
	for (i = 0; i < 6; i++)
		CHECK(b->mac[i] == mac[i], "mac", b->mac[i]);
	if (nic >= 0)
		CHECK(b->nic_present == (uint8_t)nic, "nic_present", b->nic_present);
	CHECK(SH->magic == RT_SHARED_MAGIC && SH->abi_version == RT_ABI_VERSION, "shared magic",
	      SH->magic);
	CHECK(SH->timer_deadline_ns == UINT64_MAX, "timer_deadline_ns", SH->timer_deadline_ns);
	CHECK(SH->park_req == 0 && SH->host_draining_tx == 0, "park_req/host_draining_tx",
	      SH->park_req);
	CHECK(SH->console.prod == 0 && SH->console.cons == 0 && SH->net_rx.cons == 0 &&
	      SH->net_tx.prod == 0, "ring indices", SH->console.prod);
	CHECK(idtr.base == RT_PERCPU_ADDR(0) && idtr.limit == 0xfff, "IDTR", idtr.base);
	CHECK(cr3 == RT_WINDOW_BASE + RT_OFF_HOSTPT, "cr3", cr3);
	CHECK(rsp < RT_PERCPU_ADDR(0) + RT_PERCPU_STACK_TOP && rsp > RT_PERCPU_ADDR(0) + 0x4000,
	      "rsp", rsp);
}

/* ---- upcalls */

static volatile uint32_t seen_news;

void double_on_upcall(void)
{
	uint32_t n = __atomic_exchange_n(&SH->news, 0, __ATOMIC_ACQ_REL);

	__atomic_fetch_or(&seen_news, n, __ATOMIC_RELAXED);
	SH->upcalls++;
}

static void upcall_gate(void)
{
	uint64_t *idt = (uint64_t *)(uintptr_t)RT_PERCPU_ADDR(0);
	uint64_t off = (uint64_t)(uintptr_t)double_upcall;
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[2 * RT_UPCALL_VECTOR] = (off & 0xffff) | (uint64_t)cs << 16 | 0x8eull << 40 |
				    ((off >> 16) & 0xffff) << 48;
	idt[2 * RT_UPCALL_VECTOR + 1] = off >> 32;
}

/* ---- the modes */

static void timer_test(void)
{
	uint64_t deadline = now_ns() + 20000000u, t;

	upcall_gate();
	__atomic_store_n(&SH->timer_deadline_ns, deadline, __ATOMIC_RELEASE);
	bell(RT_BELL_TIMER);
	while (!(seen_news & RT_NEWS_TIMER) && now_ns() < deadline + 5000000000ull) {
		__atomic_store_n(&STATE0->parked, RT_CPU_PARKED_IDLE, __ATOMIC_SEQ_CST);
		idle();
		__atomic_store_n(&STATE0->parked, RT_CPU_PARKED_NO, __ATOMIC_SEQ_CST);
	}
	t = now_ns();
	SH->timer_deadline_ns = UINT64_MAX;
	if (!(seen_news & RT_NEWS_TIMER)) {
		puts_("rt-double: FAIL: no timer news within 5 s\n");
		poweroff(3);
	}
	if (t < deadline) {
		puts_("rt-double: FAIL: timer news ");
		putnum(deadline - t, 10);
		puts_(" ns before the deadline\n");
		poweroff(3);
	}
	puts_("rt-double: timer news ");
	putnum((t - deadline) / 1000, 10);
	puts_(" us after the deadline, upcalls ");
	putnum(SH->upcalls, 10);
	putch('\n');
}

static struct rt_net_slot *slot(uint32_t off, uint32_t i)
{
	return WIN(off + (i % RT_NET_SLOTS) * RT_NET_SLOT_SIZE);
}

static void net_test(uint32_t frames)
{
	uint32_t rx_cons = 0, tx_prod = 0, done = 0, peak = 0;

	upcall_gate();
	SH->want_rx_news = 1;
	while (done < frames) {
		uint32_t avail = __atomic_load_n(&SH->net_rx.prod, __ATOMIC_ACQUIRE) - rx_cons;

		if (avail > peak)
			peak = avail;
		/* take them only in full rings (the host holds the rest) or the tail */
		if (avail == 0 || (avail < RT_NET_SLOTS && done + avail < frames)) {
			idle();
			continue;
		}
		while (avail--) {
			struct rt_net_slot *r = slot(RT_OFF_NET_RX, rx_cons), *t;
			uint32_t len = r->len, i;

			while (tx_prod - __atomic_load_n(&SH->net_tx.cons, __ATOMIC_ACQUIRE) >= RT_NET_SLOTS)
				bell(RT_BELL_NET_TX);
			t = slot(RT_OFF_NET_TX, tx_prod);
			for (i = 0; i < len && i < RT_NET_FRAME_MAX; i++)
				t->data[i] = r->data[i];
			t->len = len;
			__atomic_store_n(&SH->net_tx.prod, ++tx_prod, __ATOMIC_RELEASE);
			__atomic_store_n(&SH->net_rx.cons, ++rx_cons, __ATOMIC_RELEASE);
			SH->frames_rx++;
			SH->frames_tx++;
			done++;
		}
		bell(RT_BELL_NET_TX);
	}
	puts_("rt-double: echoed ");
	putnum(done, 10);
	puts_(" frames, ring peak ");
	putnum(peak, 10);
	putch('\n');
}

static void park_test(long ms, int bad)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
	uint32_t parks = 0;
	volatile uint64_t spin;

	upcall_gate();
	while (now_ns() < end) {
		for (spin = 0; spin < 50; spin++)
			;
		if (!__atomic_load_n(&SH->park_req, __ATOMIC_SEQ_CST))
			continue;
		/* the guest would resume at its entry: a safe point outside the window */
		STATE0->rip = bad ? (uint64_t)(uintptr_t)double_upcall : BOOT->guest_entry32;
		STATE0->parked = RT_CPU_PARKED_REQ;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		for (;;) {
			if (!__atomic_load_n(&SH->park_req, __ATOMIC_SEQ_CST)) {
				__atomic_store_n(&STATE0->parked, RT_CPU_PARKED_NO, __ATOMIC_SEQ_CST);
				if (!__atomic_load_n(&SH->park_req, __ATOMIC_SEQ_CST))
					break;
			}
			__atomic_store_n(&STATE0->parked, RT_CPU_PARKED_REQ, __ATOMIC_SEQ_CST);
			idle();
		}
		parks++;
	}
	puts_("rt-double: parked ");
	putnum(parks, 10);
	puts_(" times\n");
}

static void smp_test(void)
{
	volatile uint32_t *req = (volatile uint32_t *)(uintptr_t)AP_REQ_GPA;
	uint64_t t0;
	uint32_t answer;

	req[0] = 0; /* CPU 0: must be refused */
	req[1] = (uint32_t)(uintptr_t)double_ap32;
	req[2] = (uint32_t)(RT_PERCPU_ADDR(1) + RT_PERCPU_STACK_TOP);
	req[3] = 0;
	outl(PORT_AP, AP_REQ_GPA);
	answer = inl(PORT_AP);
	if (answer != 0xffffffffu) {
		puts_("rt-double: FAIL: the mailbox took CPU 0\n");
		poweroff(3);
	}
	req[0] = 1;
	outl(PORT_AP, AP_REQ_GPA);
	answer = inl(PORT_AP);
	if (answer != 0) {
		puts_("rt-double: FAIL: the mailbox refused CPU 1\n");
		poweroff(3);
	}
	t0 = now_ns();
	while (!double_ap_seen && now_ns() - t0 < 5000000000ull)
		__asm__ volatile("pause");
	if (!double_ap_seen) {
		puts_("rt-double: FAIL: CPU 1 did not run within 5 s\n");
		poweroff(3);
	}
	puts_("rt-double: AP ");
	putnum(double_ap_cpu, 10);
	puts_(" started, its IDTR base ");
	putnum(double_ap_idtr.base, 16);
	puts_(" limit ");
	putnum(double_ap_idtr.limit, 16);
	puts_(double_ap_idtr.base == RT_PERCPU_ADDR(1) && double_ap_idtr.limit == 0xfff &&
		      double_ap_cpu == 1 ? " (ok)\n" : " (WRONG)\n");
}

void double_main(void)
{
	long v;

	check_boot_block();
	if (arg("double.fail") > 0) {
		puts_("rt-double: failing on request\n");
		BOOT->status = -22;
		memcpy(BOOT->error, "test double: failing on request", 32);
		bell(RT_BELL_BOOTED);
		for (;;)
			__asm__ volatile("cli\n\thlt");
	}
	BOOT->sites = 0;
	BOOT->sites_rewritten = 0;
	BOOT->status = 0;
	bell(RT_BELL_BOOTED);
	puts_("rt-double: boot block ok (test double, not the runtime): table ");
	putnum(BOOT->table_size, 10);
	puts_(" bytes, tsc ");
	putnum(BOOT->tsc_khz, 10);
	puts_(" kHz, ");
	putnum(BOOT->ncpus, 10);
	puts_(" cpus\n");
	if (arg("double.timer") > 0)
		timer_test();
	if ((v = arg("double.net")) > 0)
		net_test((uint32_t)v);
	if ((v = arg("double.park")) > 0)
		park_test(v, arg("double.badpark") > 0);
	if (arg("double.smp") > 0)
		smp_test();
	v = arg("double.exit");
	puts_("rt-double: powering off\n");
	poweroff(v > 0 ? (unsigned)v : 0);
}
