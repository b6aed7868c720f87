/* test_devstate_refuse.c: truncated, corrupted, mismatched and random DeviceSets are refused and change nothing */
#include "../lib/tap.h"
#include "devstate_rig.h"

#include "devices.pb-c.h"

static struct host hc;
static uint8_t *good;
static size_t good_len;

/* The set test_devstate.c round-trips, saved here from the same busy guest. */
static int make_good(void)
{
	static struct host src;
	static uint8_t held[90];
	char *cause = NULL;
	int rc;

	host_init(&src, 123456789, rig_mac);
	busy_guest(&src, held, sizeof(held));
	rc = devstate_save(&src.set, &good, &good_len, &cause);
	CHECK(rc == 0, "save: %s", cause ? cause : "");
	free(cause);
	return rc;
}

/* A fresh target host, and what it looked like before a refused restore. */
static struct all_snaps before;

static void target_reset(void)
{
	host_init(&hc, 42, (const uint8_t *)"\x02\x01\x02\x03\x04\x05");
	snap_all(&hc, &before);
}

/* 1: restored; 0: refused with nothing changed and a "devstate: " message;
 * -1: refused, but the target changed or the message is wrong. */
static int restore_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	static struct all_snaps after;

	if (devstate_restore(&hc.set, buf, len, why, whylen) == 0)
		return 1;
	snap_all(&hc, &after);
	if (memcmp(&before, &after, sizeof(before)))
		return -1;
	return whylen <= 10 || !strncmp(why, "devstate: ", 10) ? 0 : -1;
}

static int refused_untouched(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	return restore_check(buf, len, why, whylen) == 0;
}

static void test_truncated(void)
{
	char why[160];
	size_t n, bad = 0;

	target_reset();
	for (n = 0; n < good_len; n++)
		if (!refused_untouched(good, n, why, sizeof(why)))
			bad++;
	CHECK(bad == 0, "%zu of %zu prefixes not refused cleanly", bad, good_len);
	CHECK(!refused_untouched(good, good_len, why, sizeof(why)), "the whole buffer restores");
	target_reset();
	CHECK(refused_untouched(good, DEVSTATE_MAX_LEN + 1, why, sizeof(why)) &&
	      strstr(why, "limit"), "oversized length: %s", why);
	CHECK(refused_untouched(good, good_len / 2, why, 8) && !strcmp(why, "devstat"),
	      "a short why buffer is truncated, terminated");
}

/* Unpack the good set, damage it, pack it again into out. */
typedef void (*damage_fn)(Pvmigrate__DeviceSet *m, int undo);

static size_t damaged(damage_fn fn, uint8_t *out)
{
	Pvmigrate__DeviceSet *m = pvmigrate__device_set__unpack(NULL, good_len, good);
	size_t n;

	if (!m)
		return 0;
	fn(m, 0);
	n = pvmigrate__device_set__pack(m, out);
	fn(m, 1);
	pvmigrate__device_set__free_unpacked(m, NULL);
	return n;
}

static void short_regs(Pvmigrate__DeviceSet *m, int undo)
{
	m->dp83820->n_regs = undo ? DP83820_NREGS : DP83820_NREGS - 1;
}

static void pit_mode9(Pvmigrate__DeviceSet *m, int undo)
{
	m->i8254->counter[1]->mode = undo ? 0 : 9;
}

static void wide_dll(Pvmigrate__DeviceSet *m, int undo)
{
	m->uart16550->dll = undo ? 1 : 0x101;
}

static void no_txdp(Pvmigrate__DeviceSet *m, int undo)
{
	m->dp83820->has_txdp = undo;
}

static void odd_rxdp(Pvmigrate__DeviceSet *m, int undo)
{
	m->dp83820->rxdp ^= 2;
}

static void two_counters(Pvmigrate__DeviceSet *m, int undo)
{
	m->i8254->n_counter = undo ? 3 : 2;
}

static void short_fifo(Pvmigrate__DeviceSet *m, int undo)
{
	m->uart16550->rx_fifo.len = undo ? UART16550_FIFO_SIZE : UART16550_FIFO_SIZE - 1;
}

static void dup_slot(Pvmigrate__DeviceSet *m, int undo)
{
	static uint32_t was;

	if (!undo)
		was = m->pci->function[1]->slot;
	m->pci->function[1]->slot = undo ? was : m->pci->function[0]->slot;
}

static void slot_40(Pvmigrate__DeviceSet *m, int undo)
{
	static uint32_t was;

	if (!undo)
		was = m->pci->function[0]->slot;
	m->pci->function[0]->slot = undo ? was : 40;
}

static void no_nic(Pvmigrate__DeviceSet *m, int undo)
{
	static Pvmigrate__Dp83820State *was;

	if (!undo)
		was = m->dp83820;
	m->dp83820 = undo ? was : NULL;
}

static void no_slave(Pvmigrate__DeviceSet *m, int undo)
{
	static Pvmigrate__I8259ChipState *was;

	if (!undo)
		was = m->i8259->slave;
	m->i8259->slave = undo ? was : NULL;
}

/* Fits every width, but a model's own rule refuses it. */
static void pic_vector_0x21(Pvmigrate__DeviceSet *m, int undo)
{
	m->i8259->master->vector_base = undo ? 0x20 : 0x21;
}

static void nic_revision(Pvmigrate__DeviceSet *m, int undo)
{
	m->dp83820->regs[SRR / 4] = undo ? SRR_REV : 0x0203;
}

static void vga_vendor(Pvmigrate__DeviceSet *m, int undo)
{
	unsigned i;

	for (i = 0; i < m->pci->n_function; i++)
		if (m->pci->function[i]->slot == VGA_SLOT)
			m->pci->function[i]->config.data[0] ^= 0xff;
}

static void test_corrupted(void)
{
	static const struct {
		damage_fn fn;
		const char *want;
	} cases[] = {
		{ short_regs, "devstate: dp83820.regs: 63 entries, want 64" },
		{ pit_mode9, "devstate: i8254.counter[1].mode: out of range (9, want 0..5)" },
		{ wide_dll, "devstate: uart16550.dll: out of range (257, want 0..255)" },
		{ no_txdp, "devstate: dp83820.txdp: missing" },
		{ odd_rxdp, "devstate: dp83820.rxdp: not 4-aligned" },
		{ two_counters, "devstate: i8254.counter: 2 entries, want 3" },
		{ short_fifo, "devstate: uart16550.rx_fifo: 15 bytes, want 16" },
		{ dup_slot, "listed twice" },
		{ slot_40, "devstate: pci.function[0].slot: out of range (40, want 0..31)" },
		{ no_nic, "devstate: dp83820: missing from the stream" },
		{ no_slave, "devstate: i8259.slave: missing" },
		{ pic_vector_0x21, "devstate: i8259: refused by the model" },
		{ nic_revision, "devstate: dp83820: refused by the model" },
		{ vga_vendor, "devstate: pci: refused by the model" },
	};
	static uint8_t out[DEVSTATE_MAX_LEN];
	char why[160];
	unsigned i;
	size_t n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		target_reset();
		n = damaged(cases[i].fn, out);
		CHECK(n > 0 && refused_untouched(out, n, why, sizeof(why)),
		      "case %u refused, nothing changed: %s", i, why);
		CHECK(strstr(why, cases[i].want) != NULL, "case %u: \"%s\", want \"%s\"", i, why,
		      cases[i].want);
	}

	/* the set must match: a host without the NIC, or without the bus */
	target_reset();
	hc.set.nic = NULL;
	CHECK(refused_untouched(good, good_len, why, sizeof(why)) &&
	      strstr(why, "dp83820: in the stream, but this host has no such model"), "%s", why);
	hc.set.pci = NULL;
	CHECK(refused_untouched(good, good_len, why, sizeof(why)) && strstr(why, "pci:"), "%s", why);
	/* another device attached where the NIC was */
	target_reset();
	hc.bus.slot[NIC_SLOT] = NULL;
	pci_attach(&hc.bus, NIC_SLOT + 1, &hc.nic.pci);
	snap_all(&hc, &before);
	CHECK(refused_untouched(good, good_len, why, sizeof(why)) && strstr(why, "pci: refused"),
	      "%s", why);
}

static uint32_t rng = 0x2545f491u;

static uint32_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void test_garbage(void)
{
	static uint8_t buf[1024];
	char why[160];
	unsigned i, j, bad = 0, flipped_ok = 0, flipped_bad = 0;
	size_t n;

	target_reset();
	for (i = 0; i < 3000; i++) {
		n = xorshift() % sizeof(buf);
		for (j = 0; j < n; j++)
			buf[j] = (uint8_t)xorshift();
		if (!refused_untouched(buf, n, why, sizeof(why)))
			bad++;
	}
	CHECK(bad == 0, "%u random buffers not refused cleanly", bad);

	/* single-byte damage anywhere in a good set: refused untouched, or a
	 * state the models accept (a changed counter or scratch byte) */
	for (i = 0; i < 3000; i++) {
		static uint8_t copy[DEVSTATE_MAX_LEN];

		memcpy(copy, good, good_len);
		copy[xorshift() % good_len] ^= (uint8_t)(1u << (xorshift() % 8));
		target_reset();
		switch (restore_check(copy, good_len, why, sizeof(why))) {
		case 1:
			flipped_ok++;
			break;
		case -1:
			flipped_bad++;
			break;
		}
	}
	CHECK(flipped_bad == 0, "%u damaged sets not refused cleanly (%u accepted)", flipped_bad,
	      flipped_ok);
}

int main(void)
{
	if (make_good() == 0) {
		test_truncated();
		test_corrupted();
		test_garbage();
	}
	free(good);
	return tap_done("devstate-refuse");
}
