/* rt_devices.c: the runtime's PC: 8259 pair + ELCR, 8254 + port 0x61, COM1, PCI bus with host bridge and DP83820, wired as the host wires them for native guests */
#include <stdbool.h>

#include "dp83820.h"
#include "i8254.h"
#include "i8259.h"
#include "pci.h"
#include "rt_channel.h"
#include "rt_internal.h"
#include "uart16550.h"

/*
 * The same models and the same wiring as backends/platform_devices.c and
 * platform_nic.c (slot numbers, BARs, IRQ line and ELCR come from the boot
 * block, where the host put its platform's values), so a guest sees the
 * same machine under native and kvm (tests/runtime/test_rt_dev_platform.c
 * compares the two), and the models' snapshots mean the same under both.
 *
 * Every model call happens under dev_lock (CPU 1 uses the UART too).  The
 * dev_env callbacks therefore run under it as well, and so does the
 * channel (rt_channel.h), which only collects doorbell bits: dev_unlock()
 * rings them after dropping the lock.
 *
 * The hot path is rt_dev_poll() with no news, and rt_dev_irq_pending():
 * one load and a branch each.  The PIC's output is cached in irq_out,
 * recomputed at unlock only when something touched the PIC.
 */

#define SYSCTL_PORT	 0x61 /* port B: PIT gate 2 (bit 0), OUT2 read-back (bit 5) */
#define HOSTBRIDGE_SLOT	 0
#define RT_TIMER_SLACK_NS 100000u /* how far the host's clock may lead ours at a timer news */
#define NIC_IRQ_OK(irq)  ((irq) != 0 && (irq) != 1 && (irq) != 2 && (irq) <= 15)

enum dev_port { PORT_NONE, PORT_PIC, PORT_PIT, PORT_SYSCTL, PORT_UART, PORT_PCI, PORT_NIC };

/*
 * RT_LAYOUT_ALT builds pvruntime-kvm-alt.elf, a second runtime whose
 * internal device state is laid out differently (another field order, a
 * spare page in front): an upgrade between runtime builds must carry the
 * guest through the fixed ABI and the guest view only, never through
 * these internals (tests/migrate/test_migrate.c, kvm -> kvm).
 */
#ifndef RT_LAYOUT_ALT
#define RT_LAYOUT_ALT 0
#endif

static struct {
#if RT_LAYOUT_ALT
	uint8_t spare[4096];
	struct dp83820 nic;
#endif
	struct dev_env env;
	struct i8259 pic;
	struct i8254 pit;
	struct uart16550 uart;
	struct pci_bus pci;
	struct pci_func hostbridge;
#if !RT_LAYOUT_ALT
	struct dp83820 nic;
#endif
	uint64_t ram_size;
	uint64_t last_now;	/* now_ns never goes back, whichever CPU reads the TSC */
	uint32_t nic_io_base, nic_mem_base;
	bool nic_present, nic_io_on, nic_mem_on;
	bool irq_dirty;		/* PIC touched since irq_out was computed */
	bool rx_blocked;	/* the host sends no RX news: retry on NIC writes */
	uint8_t sysctl;		/* port 0x61 as last written */
} dev;

static volatile uint32_t dev_lock;
static volatile uint8_t irq_out; /* the PIC's INTR output, for CPU 0's site boundaries */

static void dev_lock_take(void)
{
	rt_lock(&dev_lock);
}

static void dev_unlock(void)
{
	uint32_t bells;

	if (dev.irq_dirty) {
		dev.irq_dirty = false;
		irq_out = i8259_has_interrupt(&dev.pic);
	}
	bells = rt_chan_take_bells();
	rt_unlock(&dev_lock);
	if (bells)
		rt_chan_ring(bells);
}

/* ---- dev_env */

static void env_set_irq(void *ctx, unsigned irq, int level)
{
	i8259_set_irq(&dev.pic, irq, level);
	dev.irq_dirty = true;
}

static uint8_t *env_dma(void *ctx, uint64_t gpa, size_t len)
{
	/* Guest RAM is identity-mapped for the runtime; the window and
	 * anything above RAM are not DMA targets. */
	if (gpa >= dev.ram_size || len > dev.ram_size - gpa)
		return NULL;
	return RT_GPA(gpa);
}

static uint64_t env_now(void *ctx)
{
	uint64_t t = rt_now_ns();

	if (t < dev.last_now)
		t = dev.last_now;
	dev.last_now = t;
	return t;
}

static int env_net_tx(void *ctx, const uint8_t *frame, size_t len)
{
	return rt_chan_net_tx(frame, len);
}

static void env_console_tx(void *ctx, uint8_t byte)
{
	rt_chan_console_tx(byte);
}

/* ---- the PIT's deadline and the NIC's receive side */

/* After PIT programming (from_news 0) or the host's timer news (1). */
static void dev_timer(int from_news)
{
	uint64_t next = i8254_next_deadline_ns(&dev.pit), now;

	if (from_news && next != I8254_NO_DEADLINE) {
		now = env_now(NULL);
		/* The host says the deadline passed.  Within RT_TIMER_SLACK_NS
		 * its clock wins: otherwise a host a hair ahead of the TSC
		 * formula would post the same news again and again until ours
		 * caught up.  The PIT's phase is unaffected (edges count from
		 * load_ns); only this tick comes that much earlier. */
		if (now < next && next - now <= RT_TIMER_SLACK_NS)
			dev.last_now = now = next;
		if (now >= next) {
			i8254_tick(&dev.pit);
			next = i8254_next_deadline_ns(&dev.pit);
		}
	}
	rt_chan_set_deadline(next, from_news);
}

/* Frames from the RX ring into the NIC while it has descriptors.  What it
 * cannot take stays in the ring (held, never dropped). */
static void dev_rx_drain(void)
{
	const uint8_t *frame;
	size_t len;

	if (!dev.nic_present) {
		/* No NIC, no link: what the host sends has nowhere to go. */
		while (rt_chan_rx_peek(&len))
			rt_chan_rx_pop();
		return;
	}
	for (;;) {
		while ((frame = rt_chan_rx_peek(&len)) != NULL) {
			if (!dp83820_rx_ready(&dev.nic)) {
				rt_chan_rx_held();
				dev.rx_blocked = true;
				return;
			}
			dp83820_rx(&dev.nic, frame, len); /* -1: the chip's own drop, as on the wire */
			rt_chan_rx_pop();
		}
		if (!dp83820_rx_ready(&dev.nic)) {
			rt_chan_rx_held(); /* nothing to count; stop the news */
			dev.rx_blocked = true;
			return;
		}
		dev.rx_blocked = false;
		if (!rt_chan_rx_idle())
			return;
	}
}

/* ---- the NIC's BARs, wherever the guest (or a restore) puts them */

static void nic_bar_map(void *ctx, unsigned bar, uint32_t base, uint32_t size, bool io,
			bool enabled)
{
	if (bar == DP83820_BAR_IO) {
		dev.nic_io_base = base;
		dev.nic_io_on = enabled;
	} else if (bar == DP83820_BAR_MEM) {
		dev.nic_mem_base = base;
		dev.nic_mem_on = enabled;
	}
}

static uint32_t nic_read(uint32_t off, unsigned size)
{
	return dp83820_io_read(&dev.nic, off, size);
}

static void nic_write(uint32_t off, unsigned size, uint32_t val)
{
	dp83820_io_write(&dev.nic, off, size, val);
	/* A register write is how a NIC that could not receive becomes able
	 * to (CR.RXE after a refill, RXDP): look at the held frames again. */
	if (dev.rx_blocked)
		dev_rx_drain();
}

/* ---- port I/O */

static enum dev_port dev_port_of(unsigned port)
{
	if (port - UART16550_COM1_BASE < 8)
		return PORT_UART;
	if (port - PCI_CONFIG_ADDRESS < 8)
		return PORT_PCI;
	if (port - I8259_MASTER_BASE < 2 || port - I8259_SLAVE_BASE < 2 ||
	    port - I8259_ELCR_BASE < 2)
		return PORT_PIC;
	if (port - I8254_BASE < 4)
		return PORT_PIT;
	if (port == SYSCTL_PORT)
		return PORT_SYSCTL;
	if (dev.nic_io_on && port - dev.nic_io_base < DP83820_IO_SIZE)
		return PORT_NIC;
	return PORT_NONE;
}

static uint32_t dev_pio_read(enum dev_port kind, unsigned port, unsigned size)
{
	switch (kind) {
	case PORT_PIC:
		dev.irq_dirty = true; /* OCW3 poll mode acknowledges on read */
		return i8259_io_read(&dev.pic, port, size);
	case PORT_PIT:
		return i8254_io_read(&dev.pit, port, size);
	case PORT_SYSCTL:
		return (dev.sysctl & 0x0f) | (i8254_get_out(&dev.pit, 2) ? 0x20 : 0);
	case PORT_UART:
		return uart16550_io_read(&dev.uart, port, size);
	case PORT_PCI:
		return pci_io_read(&dev.pci, port, size);
	case PORT_NIC:
		return nic_read(port - dev.nic_io_base, size);
	case PORT_NONE:
		break;
	}
	return 0xffffffffu;
}

static void dev_pio_write(enum dev_port kind, unsigned port, unsigned size, uint32_t val)
{
	switch (kind) {
	case PORT_PIC:
		i8259_io_write(&dev.pic, port, size, val);
		dev.irq_dirty = true;
		break;
	case PORT_PIT:
		i8254_io_write(&dev.pit, port, size, val);
		dev_timer(0);
		break;
	case PORT_SYSCTL:
		dev.sysctl = (uint8_t)val;
		i8254_set_gate(&dev.pit, 2, val & 1);
		break;
	case PORT_UART:
		uart16550_io_write(&dev.uart, port, size, val);
		break;
	case PORT_PCI:
		pci_io_write(&dev.pci, port, size, val);
		if (dev.rx_blocked) /* bus mastering may just have come on */
			dev_rx_drain();
		break;
	case PORT_NIC:
		nic_write(port - dev.nic_io_base, size, val);
		break;
	case PORT_NONE:
		break;
	}
}

int rt_dev_pio(unsigned port, unsigned size, int is_write, uint32_t *val)
{
	enum dev_port kind;

	if (size != 1 && size != 2 && size != 4)
		return 0;
	dev_lock_take();
	kind = dev_port_of(port); /* under the lock: the NIC's BAR may move */
	if (kind == PORT_NONE) {
		rt_unlock(&dev_lock);
		return 0;
	}
	if (is_write)
		dev_pio_write(kind, port, size, *val);
	else
		*val = dev_pio_read(kind, port, size) & (size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
	dev_unlock();
	return 1;
}

/* ---- MMIO: only the DP83820's memory BAR is the runtime's */

int rt_dev_mmio(uint64_t gpa, unsigned size, int is_write, uint64_t *val)
{
	uint32_t off;

	if (size != 1 && size != 2 && size != 4 && size != 8)
		return 0;
	dev_lock_take();
	if (!dev.nic_mem_on || gpa - dev.nic_mem_base >= DP83820_MEM_SIZE ||
	    gpa - dev.nic_mem_base + size > DP83820_MEM_SIZE) {
		rt_unlock(&dev_lock);
		return 0;
	}
	off = (uint32_t)(gpa - dev.nic_mem_base);
	/* The chip's registers are dwords; a qword access is two of them,
	 * low first, as a 32-bit bus would split it. */
	if (is_write) {
		nic_write(off, size > 4 ? 4 : size, (uint32_t)*val);
		if (size == 8)
			nic_write(off + 4, 4, (uint32_t)(*val >> 32));
	} else {
		*val = nic_read(off, size > 4 ? 4 : size);
		if (size == 8)
			*val |= (uint64_t)nic_read(off + 4, 4) << 32;
	}
	dev_unlock();
	return 1;
}

/* ---- CPU 0's calls: news, interrupts, flush */

void rt_dev_poll(void)
{
	uint32_t news;

	/* New frames are taken without news too: the host holds its news
	 * back while the runtime keeps looking (backends/personality_kvm_channel.c).
	 * Frames the NIC could not take wait for its next register write. */
	int rx = !dev.rx_blocked && rt_chan_rx_new();
	/* The same for time: a runtime that passes site boundaries reads the
	 * clock itself, and the host kicks only one that does not. */
	int due = rt_now_ns() >= RT_SHARED->timer_deadline_ns;

	if (!(rt_chan_news_peek() & (RT_NEWS_TIMER | RT_NEWS_RX)) && !rx && !due)
		return;
	dev_lock_take();
	news = rt_chan_take_news();
	if ((news & RT_NEWS_TIMER) || due)
		dev_timer(1);
	if ((news & RT_NEWS_RX) || rx)
		dev_rx_drain();
	dev_unlock();
}

int rt_dev_irq_pending(void)
{
	return irq_out;
}

uint8_t rt_dev_irq_ack(void)
{
	uint8_t vec;

	dev_lock_take();
	vec = i8259_ack(&dev.pic);
	dev.irq_dirty = true;
	dev_unlock();
	return vec;
}

void rt_dev_flush(void)
{
	dev_lock_take();
	rt_chan_flush();
	dev_unlock();
}

/* ---- boot */

static void dev_fail(const char *why)
{
	struct rt_boot *b = RT_BOOT;
	size_t i;

	for (i = 0; why[i] && i + 1 < sizeof b->error; i++)
		b->error[i] = why[i];
	b->error[i] = 0;
	b->status = -1;
}

/* What a BIOS does before the OS looks, exactly as platform_nic.c does it
 * for native: windows assigned and decoded, bus mastering on, INTA# routed
 * to an ISA line set level-triggered in the ELCR. */
static void dev_init_nic(const struct rt_boot *b)
{
	unsigned elcr_port = I8259_ELCR_BASE + (b->nic_irq >= 8);
	uint32_t elcr;

	if (b->nic_slot == HOSTBRIDGE_SLOT || b->nic_slot >= PCI_MAX_SLOTS ||
	    !NIC_IRQ_OK(b->nic_irq) || !b->nic_bar_io || b->nic_bar_io & (DP83820_IO_SIZE - 1) ||
	    b->nic_bar_io > 0x10000 - DP83820_IO_SIZE || !b->nic_bar_mem ||
	    b->nic_bar_mem & (DP83820_MEM_SIZE - 1) || b->nic_bar_mem < b->ram_size) {
		dev_fail("devices: boot block's NIC slot, IRQ or BARs are not usable");
		return;
	}
	dp83820_init(&dev.nic, &dev.env, b->mac);
	pci_func_set_map(&dev.nic.pci, nic_bar_map, NULL);
	pci_attach(&dev.pci, b->nic_slot, &dev.nic.pci);
	pci_func_cfg_write(&dev.nic.pci, PCI_BASE_ADDRESS_0 + 4 * DP83820_BAR_IO, 4, b->nic_bar_io);
	pci_func_cfg_write(&dev.nic.pci, PCI_BASE_ADDRESS_0 + 4 * DP83820_BAR_MEM, 4, b->nic_bar_mem);
	pci_func_cfg_write(&dev.nic.pci, PCI_INTERRUPT_LINE, 1, b->nic_irq);
	pci_func_cfg_write(&dev.nic.pci, PCI_COMMAND, 2,
			   PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	elcr = i8259_io_read(&dev.pic, elcr_port, 1);
	i8259_io_write(&dev.pic, elcr_port, 1, elcr | 1u << (b->nic_irq & 7));
	dp83820_set_link(&dev.nic, true);
	dev.nic_present = true;
	if (!dev.nic_io_on || !dev.nic_mem_on)
		dev_fail("devices: the NIC's BARs did not decode after assignment");
}

void rt_dev_init(void)
{
	static const struct pci_func_info hostbridge = {
		.vendor_id = 0x8086, .device_id = 0x1237, /* an i440FX, as the host's platform */
		.class_code = 0x06, .subclass = 0x00,
	};
	const struct rt_boot *b = RT_BOOT;

	memset(&dev, 0, sizeof dev);
	dev_lock = 0;
	dev.env.set_irq = env_set_irq;
	dev.env.dma = env_dma;
	dev.env.now_ns = env_now;
	dev.env.net_tx = env_net_tx;
	dev.env.console_tx = env_console_tx;
	dev.ram_size = b->ram_size;

	i8259_init(&dev.pic, &dev.env);
	i8254_init(&dev.pit, &dev.env);
	/* No console input channel in the kvm ABI yet: COM1 receives nothing. */
	uart16550_init(&dev.uart, &dev.env, UART16550_COM1_BASE, UART16550_COM1_IRQ, NULL, NULL);
	pci_init(&dev.pci, &dev.env);
	pci_func_init(&dev.hostbridge, &hostbridge);
	pci_attach(&dev.pci, HOSTBRIDGE_SLOT, &dev.hostbridge);
	if (b->nic_present)
		dev_init_nic(b);

	rt_chan_init();
	dev_lock_take();
	dev.irq_dirty = true;
	dev_rx_drain(); /* sets want_rx_news from the NIC's state */
	dev_unlock();
}

/* ---- device state: every model's snapshot in one versioned layout */

static struct rt_dev_state dev_backup; /* rollback copy for rt_dev_restore */

/*
 * Writes every field but clears nothing: (s) is zero or holds an earlier
 * save of this runtime (the same fields, the same bytes left untouched).
 * The device-state area is cleared by the host before it asks for a save
 * (backends/personality_kvm_state.c), dev_backup is bss.  In emulated
 * ring 0 a clear is ~1 us per 8 bytes: the PCI snapshot's 31 empty slots
 * alone cost ~1.2 ms of every kvm freeze and of every kvm target's
 * restore (docs/BENCHMARKS.md, "In place after the freeze cuts 3-5").
 */
static void dev_save_locked(struct rt_dev_state *s)
{
	s->magic = RT_DEV_STATE_MAGIC;
	s->version = RT_DEV_STATE_VERSION;
	s->size = sizeof *s;
	s->flags = dev.nic_present ? RT_DEV_STATE_NIC : 0;
	s->sysctl = dev.sysctl;
	i8259_save(&dev.pic, &s->pic);
	i8254_save(&dev.pit, &s->pit);
	uart16550_save(&dev.uart, &s->uart);
	pci_save_over(&dev.pci, &s->pci);
	if (dev.nic_present)
		dp83820_save(&dev.nic, &s->nic);
}

/* Every model validates its own snapshot; 0 only if all of them took it. */
static int dev_restore_locked(const struct rt_dev_state *s)
{
	if (s->magic != RT_DEV_STATE_MAGIC || s->version != RT_DEV_STATE_VERSION ||
	    s->size != sizeof *s || s->flags != (dev.nic_present ? RT_DEV_STATE_NIC : 0u))
		return -1;
	dev.last_now = 0; /* the PIT's ages rebase onto this host's clock */
	if (i8259_restore(&dev.pic, &s->pic) != DEV_RESTORE_OK ||
	    i8254_restore(&dev.pit, &s->pit) != DEV_RESTORE_OK ||
	    uart16550_restore(&dev.uart, &s->uart) != DEV_RESTORE_OK ||
	    pci_restore(&dev.pci, &s->pci) != DEV_RESTORE_OK || /* re-reports the BARs */
	    (dev.nic_present && dp83820_restore(&dev.nic, &s->nic) != DEV_RESTORE_OK))
		return -1;
	dev.sysctl = s->sysctl;
	return 0;
}

int rt_dev_save(void *buf, size_t cap)
{
	if (cap < sizeof(struct rt_dev_state) || ((uintptr_t)buf & 7))
		return -1;
	dev_lock_take();
	dev_save_locked(buf);
	dev_unlock();
	return (int)sizeof(struct rt_dev_state);
}

int rt_dev_restore(const void *buf, size_t len)
{
	int rc;

	if (len != sizeof(struct rt_dev_state) || ((uintptr_t)buf & 7))
		return -1;
	dev_lock_take();
	dev_save_locked(&dev_backup);
	rc = dev_restore_locked(buf);
	if (rc < 0 && dev_restore_locked(&dev_backup) < 0)
		dev_fail("devices: restore failed and so did the rollback"); /* cannot happen */
	if (rc == 0) {
		/* The PIC's output, the timer and the RX ring as the restored models
		 * see them (port 0x61's gate travels in the PIT's snapshot). */
		dev.irq_dirty = true;
		dev_timer(0);
		dev_rx_drain();
	}
	dev_unlock();
	return rc;
}

/* The host's request through the channel (rt_abi.h, state_req), from a
 * CPU's park loop with no other CPU busy in the runtime (rt_site.c).  The
 * swap to TAKEN picks one server; after the clear it holds nothing, so
 * the host may stop it there (state_req NONE ends the pause's wait). */
void rt_dev_state_serve(void)
{
	struct rt_shared *sh = RT_SHARED;
	uint32_t req = __atomic_load_n(&sh->state_req, __ATOMIC_ACQUIRE);
	int rc = -1;

	if ((req != RT_STATE_REQ_SAVE && req != RT_STATE_REQ_RESTORE) ||
	    !__atomic_compare_exchange_n(&sh->state_req, &req, RT_STATE_REQ_TAKEN, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	if (req == RT_STATE_REQ_SAVE)
		rc = rt_dev_save(RT_WIN(RT_OFF_DEVSTATE), RT_DEVSTATE_MAX) < 0 ? -1 : 0;
	else
		rc = rt_dev_restore(RT_WIN(RT_OFF_DEVSTATE), sizeof(struct rt_dev_state));
	__atomic_store_n(&sh->state_status, rc == 0 ? RT_STATE_OK : RT_STATE_FAILED,
			 __ATOMIC_RELEASE);
	__atomic_store_n(&sh->state_req, RT_STATE_REQ_NONE, __ATOMIC_SEQ_CST);
	/* the host waits for this exit instead of polling state_req */
	rt_chan_ring(RT_BELL_STATE);
}
