/* test_rt_dev_fake.h: a fake window, guest RAM, TSC and host half of the channel, for host tests of rt_devices.c and rt_channel.c */
#ifndef TEST_RT_DEV_FAKE_H
#define TEST_RT_DEV_FAKE_H

/*
 * Included by exactly one file per test program (it defines the hooks
 * rt_channel.h declares under RT_HOST_TEST).  The fake TSC runs at 1 GHz
 * with tsc_mult = 2^32, so rt_now_ns() = FAKE_T0_NS + (tsc - FAKE_TSC0):
 * a test sets the host clock by setting rt_test_tsc.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "dp83820_regs.h"
#include "rt_channel.h"

#define FAKE_RAM_SIZE (16u << 20)
#define FAKE_T0_NS    1000000000ull /* host clock at boot */
#define FAKE_TSC0     5000000ull    /* guest TSC at boot */
#define FAKE_NIC_SLOT 3
#define FAKE_NIC_IRQ  11
#define FAKE_NIC_IO   0xc000u
#define FAKE_NIC_MEM  0xfebf0000u
#define FAKE_MAC      { 0x52, 0x54, 0x00, 0x83, 0x82, 0x01 }

uint8_t *rt_test_window, *rt_test_ram;
uint64_t rt_test_tsc;

/* What the fake host does when the doorbell rings. */
static struct fake_host {
	unsigned bells;             /* outl to the doorbell */
	uint32_t bell_or;           /* every bit ever rung */
	unsigned bells_timer;       /* bells with RT_BELL_TIMER */
	unsigned ignore;            /* ignore this many bells before acting */
	int drain_console, drain_tx; /* empty that ring when rung */
	char console[1 << 16];      /* bytes taken from the console ring */
	size_t console_len;
	unsigned tx_frames;         /* frames taken from the TX ring */
	uint8_t tx_first[256][64];  /* their first 64 bytes */
	uint32_t tx_len[256];
} host;

static struct rt_shared *fake_shared(void)
{
	return (struct rt_shared *)(rt_test_window + RT_OFF_SHARED);
}

static inline void fake_console_take(void)
{
	struct rt_shared *sh = fake_shared();
	uint32_t prod = __atomic_load_n(&sh->console.prod, __ATOMIC_ACQUIRE);

	while (sh->console.cons != prod) {
		if (host.console_len < sizeof host.console)
			host.console[host.console_len++] =
				(char)rt_test_window[RT_OFF_CONSOLE + (sh->console.cons & (RT_CONSOLE_SIZE - 1))];
		__atomic_store_n(&sh->console.cons, sh->console.cons + 1, __ATOMIC_RELEASE);
	}
}

static inline void fake_tx_take(void)
{
	struct rt_shared *sh = fake_shared();
	uint32_t prod = __atomic_load_n(&sh->net_tx.prod, __ATOMIC_ACQUIRE);

	while (sh->net_tx.cons != prod) {
		const struct rt_net_slot *s = (const struct rt_net_slot *)(rt_test_window + RT_OFF_NET_TX +
			(sh->net_tx.cons & (RT_NET_SLOTS - 1)) * RT_NET_SLOT_SIZE);

		if (host.tx_frames < 256) {
			host.tx_len[host.tx_frames] = s->len;
			memcpy(host.tx_first[host.tx_frames], s->data, s->len < 64 ? s->len : 64);
		}
		host.tx_frames++;
		__atomic_store_n(&sh->net_tx.cons, sh->net_tx.cons + 1, __ATOMIC_RELEASE);
	}
}

void rt_test_doorbell(uint32_t bits)
{
	__atomic_fetch_add(&host.bells, 1, __ATOMIC_RELAXED); /* two vCPU threads may ring */
	__atomic_fetch_or(&host.bell_or, bits, __ATOMIC_RELAXED);
	if (bits & RT_BELL_TIMER)
		host.bells_timer++;
	if (host.ignore) {
		host.ignore--;
		return;
	}
	if (host.drain_console && (bits & RT_BELL_CONSOLE))
		fake_console_take();
	if (host.drain_tx && (bits & RT_BELL_NET_TX))
		fake_tx_take();
}

/* The host's RX producer: 0, or -1 if the ring is full. */
static inline int fake_rx_push(const uint8_t *frame, uint32_t len)
{
	struct rt_shared *sh = fake_shared();
	struct rt_net_slot *s;

	if (sh->net_rx.prod - __atomic_load_n(&sh->net_rx.cons, __ATOMIC_ACQUIRE) >= RT_NET_SLOTS)
		return -1;
	s = (struct rt_net_slot *)(rt_test_window + RT_OFF_NET_RX +
				   (sh->net_rx.prod & (RT_NET_SLOTS - 1)) * RT_NET_SLOT_SIZE);
	s->len = len;
	memcpy(s->data, frame, len);
	__atomic_store_n(&sh->net_rx.prod, sh->net_rx.prod + 1, __ATOMIC_RELEASE);
	return 0;
}

static inline void fake_news(uint32_t bits)
{
	__atomic_fetch_or(&fake_shared()->news, bits, __ATOMIC_RELEASE);
}

/* Host clock in ns -> the guest TSC that reads as it. */
static inline void fake_set_now(uint64_t ns)
{
	rt_test_tsc = FAKE_TSC0 + (ns - FAKE_T0_NS);
}

/* A fresh window, RAM and host, then rt_dev_init() as the runtime's boot does. */
static inline void fake_boot(int nic)
{
	static const uint8_t mac[6] = FAKE_MAC;
	struct rt_boot *b;
	struct rt_shared *sh;

	if (!rt_test_window) {
		rt_test_window = aligned_alloc(4096, RT_WINDOW_SIZE);
		rt_test_ram = aligned_alloc(4096, FAKE_RAM_SIZE);
		if (!rt_test_window || !rt_test_ram)
			abort();
	}
	memset(rt_test_window, 0, RT_WINDOW_SIZE);
	memset(rt_test_ram, 0, FAKE_RAM_SIZE);
	memset(&host, 0, sizeof host);
	host.drain_console = host.drain_tx = 1;
	b = (struct rt_boot *)(rt_test_window + RT_OFF_BOOT);
	b->magic = RT_BOOT_MAGIC;
	b->abi_version = RT_ABI_VERSION;
	b->ncpus = 1;
	b->ram_size = FAKE_RAM_SIZE;
	b->tsc_khz = 1000000;
	b->clock_host_ns = FAKE_T0_NS;
	b->clock_guest_tsc = FAKE_TSC0;
	b->tsc_mult = 1ull << 32;
	b->nic_present = (uint8_t)nic;
	b->nic_slot = FAKE_NIC_SLOT;
	b->nic_irq = FAKE_NIC_IRQ;
	memcpy(b->mac, mac, 6);
	b->nic_bar_io = FAKE_NIC_IO;
	b->nic_bar_mem = FAKE_NIC_MEM;
	sh = fake_shared();
	sh->magic = RT_SHARED_MAGIC;
	sh->abi_version = RT_ABI_VERSION;
	sh->timer_deadline_ns = UINT64_MAX;
	rt_test_tsc = FAKE_TSC0;
	rt_dev_init();
}

/* ---- the guest's side: port and register accesses as sites make them */

static inline uint32_t g_in(unsigned port, unsigned size)
{
	uint32_t v = 0xdeadbeef;

	CHECK(rt_dev_pio(port, size, 0, &v) == 1, "port %#x is the runtime's", port);
	return v;
}

static inline void g_out(unsigned port, unsigned size, uint32_t v)
{
	CHECK(rt_dev_pio(port, size, 1, &v) == 1, "port %#x is the runtime's", port);
}

static inline uint32_t g_rd(uint32_t reg)
{
	uint64_t v = 0;

	CHECK(rt_dev_mmio(FAKE_NIC_MEM + reg, 4, 0, &v) == 1, "NIC register %#x", reg);
	return (uint32_t)v;
}

static inline void g_wr(uint32_t reg, uint32_t val)
{
	uint64_t v = val;

	CHECK(rt_dev_mmio(FAKE_NIC_MEM + reg, 4, 1, &v) == 1, "NIC register %#x", reg);
}

static inline void g_put32(uint64_t gpa, uint32_t v)
{
	memcpy(rt_test_ram + gpa, &v, 4);
}

static inline uint32_t g_get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, rt_test_ram + gpa, 4);
	return v;
}

/* The reference guest's PIC setup: vectors 0x20-0x2f, everything masked
 * except `unmask` (a 16-bit mask of lines to enable; 2 for the cascade). */
static inline void g_pic_init(uint16_t unmask)
{
	g_out(0x20, 1, 0x11);
	g_out(0x21, 1, 0x20);
	g_out(0x21, 1, 0x04);
	g_out(0x21, 1, 0x01);
	g_out(0xa0, 1, 0x11);
	g_out(0xa1, 1, 0x28);
	g_out(0xa1, 1, 0x02);
	g_out(0xa1, 1, 0x01);
	g_out(0x21, 1, (uint8_t)~unmask);
	g_out(0xa1, 1, (uint8_t)~(unmask >> 8));
}

/* ---- the NIC as the reference guest drives it: 64-bit descriptors at TXR
 * and RXR (circular), buffers at TXBUF and RXBUF, accept everything */

#define TXR	0x10000u  /* TX descriptors, 24 bytes each (64-bit layout) */
#define RXR	0x20000u  /* RX descriptors */
#define TXBUF	0x100000u /* 2 KiB per TX buffer */
#define RXBUF	0x200000u /* 2 KiB per RX buffer */
#define DESC	24u
#define NTX	128u
#define NRX	4u
#define RXSIZE	1536u


static inline void nic_setup(unsigned ntx)
{
	unsigned i;

	g_wr(CR, CR_RST);
	g_wr(CFG, g_rd(CFG) | CFG_M64ADDR);
	for (i = 0; i < ntx; i++) {
		uint64_t d = TXR + DESC * i;

		g_put32(d, TXR + DESC * ((i + 1) % ntx));
		g_put32(d + 4, 0);
		g_put32(d + 8, TXBUF + 2048 * i);
		g_put32(d + 12, 0);
		g_put32(d + 16, 0);
		g_put32(d + 20, 0);
	}
	for (i = 0; i < NRX; i++) {
		uint64_t d = RXR + DESC * i;

		g_put32(d, RXR + DESC * ((i + 1) % NRX));
		g_put32(d + 4, 0);
		g_put32(d + 8, RXBUF + 2048 * i);
		g_put32(d + 12, 0);
		g_put32(d + 20, 0);
		g_put32(d + 16, RXSIZE); /* OWN clear: the chip may fill it */
	}
	g_wr(TXDP_HI, 0);
	g_wr(TXDP, TXR);
	g_wr(RXDP_HI, 0);
	g_wr(RXDP, RXR);
	g_wr(RFCR, RFCR_RFEN | RFCR_AAB | RFCR_AAM | RFCR_AAU);
}

#endif
