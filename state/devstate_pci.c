/* devstate_pci.c: the PCI bus (config space of every slot) and the DP83820 between snapshot structs and protobuf */
#include <string.h>

#include "devstate_int.h"

/* ---- pci ---- */

void ds_pci_to_wire(struct ds_wire *w)
{
	static const Pvmigrate__PciBusState init = PVMIGRATE__PCI_BUS_STATE__INIT;
	static const Pvmigrate__PciFunctionState fn_init = PVMIGRATE__PCI_FUNCTION_STATE__INIT;
	struct pci_snap *s = &w->pci_snap;
	unsigned i, n = 0;

	w->pci = init;
	DS_SET(&w->pci, config_address, s->config_address);
	for (i = 0; i < PCI_MAX_SLOTS; i++) {
		Pvmigrate__PciFunctionState *f = &w->pci_fn[n];

		if (!(s->present & (1u << i)))
			continue;
		*f = fn_init;
		DS_SET(f, slot, i);
		f->has_config = 1;
		f->config.len = PCI_CFG_SIZE;
		f->config.data = s->cfg[i];
		w->pci_fnp[n++] = f;
	}
	w->pci.n_function = n;
	w->pci.function = w->pci_fnp;
	w->set.pci = &w->pci;
}

int ds_pci_from_wire(struct ds_ctx *c, const Pvmigrate__PciBusState *m, struct pci_snap *s)
{
	size_t i;
	unsigned slot;

	memset(s, 0, sizeof(*s));
	ds_path(c, "pci");
	s->config_address = ds_u32(c, DS_F(m, config_address));
	if (!c->failed && m->n_function > PCI_MAX_SLOTS)
		ds_fail(c, "pci.function: %zu entries, at most %u", m->n_function, PCI_MAX_SLOTS);
	for (i = 0; i < m->n_function && !c->failed; i++) {
		const Pvmigrate__PciFunctionState *f = m->function[i];

		ds_path(c, "pci");
		if (ds_present(c, "function", f))
			break;
		ds_path(c, "pci.function[%zu]", i);
		slot = (unsigned)ds_uint(c, DS_F(f, slot), 0, PCI_MAX_SLOTS - 1);
		if (c->failed)
			break;
		if (s->present & (1u << slot)) {
			ds_fail(c, "%s.slot: slot %u listed twice", c->path, slot);
			break;
		}
		s->present |= 1u << slot;
		ds_bytes(c, DS_F(f, config), s->cfg[slot], PCI_CFG_SIZE);
	}
	return c->failed ? -1 : 0;
}

/* ---- dp83820 ---- */

void ds_dp83820_to_wire(struct ds_wire *w)
{
	static const Pvmigrate__Dp83820State init = PVMIGRATE__DP83820_STATE__INIT;
	static const Pvmigrate__Dp83820Stats stats_init = PVMIGRATE__DP83820_STATS__INIT;
	Pvmigrate__Dp83820State *m = &w->nic;
	Pvmigrate__Dp83820Stats *st = &w->nic_stats;
	struct dp83820_snap *s = &w->nic_snap;

	*m = init;
	m->n_regs = DP83820_NREGS;
	m->regs = s->regs;
	DS_SET(m, txdp, s->txdp);
	DS_SET(m, rxdp, s->rxdp);
	m->has_mac = 1;
	m->mac.len = sizeof(s->mac);
	m->mac.data = s->mac;
	DS_SET(m, tx_on, s->tx_on != 0);
	DS_SET(m, rx_on, s->rx_on != 0);
	DS_SET(m, tx_at_null, s->tx_at_null != 0);
	DS_SET(m, rx_at_null, s->rx_at_null != 0);
	DS_SET(m, link_up, s->link_up != 0);
	DS_SET(m, irq_level, s->irq_level != 0);
	DS_SET(m, irq_line, s->irq_line);
	*st = stats_init;
	DS_SET(st, tx_frames, s->stats.tx_frames);
	DS_SET(st, tx_errors, s->stats.tx_errors);
	DS_SET(st, rx_frames, s->stats.rx_frames);
	DS_SET(st, rx_filtered, s->stats.rx_filtered);
	DS_SET(st, rx_dropped, s->stats.rx_dropped);
	m->stats = st;
	w->set.dp83820 = m;
}

/* A ring pointer: any 64-bit guest address, dword-aligned as TXDP/RXDP force. */
static uint64_t nic_ring_ptr(struct ds_ctx *c, const char *field, protobuf_c_boolean has,
			     uint64_t v)
{
	uint64_t p = ds_u64(c, field, has, v);

	if (!c->failed && (p & 3)) {
		ds_fail(c, "%s.%s: not 4-aligned (%#llx)", c->path, field, (unsigned long long)p);
		return 0;
	}
	return p;
}

int ds_dp83820_from_wire(struct ds_ctx *c, const Pvmigrate__Dp83820State *m,
			 struct dp83820_snap *s)
{
	const Pvmigrate__Dp83820Stats *st = m->stats;

	memset(s, 0, sizeof(*s));
	ds_path(c, "dp83820");
	if (ds_count(c, "regs", m->n_regs, DP83820_NREGS) == 0)
		memcpy(s->regs, m->regs, sizeof(s->regs));
	s->txdp = nic_ring_ptr(c, DS_F(m, txdp));
	s->rxdp = nic_ring_ptr(c, DS_F(m, rxdp));
	ds_bytes(c, DS_F(m, mac), s->mac, sizeof(s->mac));
	s->tx_on = ds_flag(c, DS_F(m, tx_on));
	s->rx_on = ds_flag(c, DS_F(m, rx_on));
	s->tx_at_null = ds_flag(c, DS_F(m, tx_at_null));
	s->rx_at_null = ds_flag(c, DS_F(m, rx_at_null));
	s->link_up = ds_flag(c, DS_F(m, link_up));
	s->irq_level = ds_flag(c, DS_F(m, irq_level));
	s->irq_line = ds_u8(c, DS_F(m, irq_line));
	if (!c->failed && s->irq_line > 15 && s->irq_line != 0xff)
		ds_fail(c, "%s.irq_line: out of range (%u, want 0..15 or 255)", c->path,
			s->irq_line);
	if (ds_present(c, "stats", st))
		return -1;
	ds_path(c, "dp83820.stats");
	s->stats.tx_frames = ds_u32(c, DS_F(st, tx_frames));
	s->stats.tx_errors = ds_u32(c, DS_F(st, tx_errors));
	s->stats.rx_frames = ds_u32(c, DS_F(st, rx_frames));
	s->stats.rx_filtered = ds_u32(c, DS_F(st, rx_filtered));
	s->stats.rx_dropped = ds_u32(c, DS_F(st, rx_dropped));
	return c->failed ? -1 : 0;
}
