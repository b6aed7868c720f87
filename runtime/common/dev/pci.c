/* pci.c: PCI configuration mechanism #1, config space write masks, BAR sizing and BAR window reports */
#include "pci.h"

#define CFG_ADDR_ENABLE 0x80000000u
#define CFG_ADDR_BUS(a)  (((a) >> 16) & 0xff)
#define CFG_ADDR_SLOT(a) (((a) >> 11) & 0x1f)
#define CFG_ADDR_FUNC(a) (((a) >> 8) & 0x7)
#define CFG_ADDR_REG(a)  ((a) & 0xfc)

#define COMMAND_WMASK (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
		       PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

static uint32_t pci_get(const uint8_t *cfg, unsigned off, unsigned size)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < size; i++)
		v |= (uint32_t)cfg[off + i] << (8 * i);
	return v;
}

static void pci_put(uint8_t *cfg, unsigned off, unsigned size, uint32_t v)
{
	unsigned i;

	for (i = 0; i < size; i++)
		cfg[off + i] = (uint8_t)(v >> (8 * i));
}

/* Bits of the BAR the guest may write: the address bits above the size. */
static uint32_t pci_bar_wmask(const struct pci_bar_info *b)
{
	if (b->type == PCI_BAR_IO)
		return ~(b->size - 1) & ~3u;
	if (b->type == PCI_BAR_MEM32)
		return ~(b->size - 1) & ~15u;
	return 0;
}

/* Which bits of config byte off are guest-writable.  Everything else is
 * read-only identity or status; restore uses the same mask to tell a
 * plausible snapshot from a forged one. */
/* No byte from here on is writable (pci_wmask returns 0 past it). */
#define PCI_WMASK_END 0x40
_Static_assert(PCI_INTERRUPT_LINE < PCI_WMASK_END &&
		       PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS <= PCI_WMASK_END &&
		       PCI_CFG_SIZE % 8 == 0 && PCI_WMASK_END % 8 == 0,
	       "pci_restore compares bytes from PCI_WMASK_END on 8 at a time");

static uint8_t pci_wmask(const struct pci_func *fn, unsigned off)
{
	if (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS)
		return (uint8_t)(pci_bar_wmask(&fn->bar[(off - PCI_BASE_ADDRESS_0) / 4]) >>
				 (8 * (off & 3)));
	switch (off) {
	case PCI_COMMAND:
		return COMMAND_WMASK & 0xff;
	case PCI_COMMAND + 1:
		return COMMAND_WMASK >> 8;
	case PCI_CACHE_LINE:
	case PCI_LATENCY_TIMER:
	case PCI_INTERRUPT_LINE:
		return 0xff;
	default:
		return 0;
	}
}

static void pci_bar_type_bits(const struct pci_bar_info *b, uint8_t *cfg, unsigned off)
{
	uint32_t v = 0;

	if (b->type == PCI_BAR_IO)
		v = PCI_BASE_ADDRESS_SPACE_IO;
	else if (b->type == PCI_BAR_MEM32 && b->prefetch)
		v = PCI_BASE_ADDRESS_MEM_PREFETCH;
	pci_put(cfg, off, 4, v);
}

void pci_func_init(struct pci_func *fn, const struct pci_func_info *info)
{
	unsigned i;

	__builtin_memset(fn, 0, sizeof(*fn));
	pci_put(fn->cfg, PCI_VENDOR_ID, 2, info->vendor_id);
	pci_put(fn->cfg, PCI_DEVICE_ID, 2, info->device_id);
	fn->cfg[PCI_REVISION_ID] = info->revision;
	fn->cfg[PCI_CLASS_PROG] = info->prog_if;
	fn->cfg[PCI_CLASS_PROG + 1] = info->subclass;
	fn->cfg[PCI_CLASS_PROG + 2] = info->class_code;
	pci_put(fn->cfg, PCI_SUBSYSTEM_VENDOR_ID, 2, info->subsys_vendor_id);
	pci_put(fn->cfg, PCI_SUBSYSTEM_ID, 2, info->subsys_id);
	fn->cfg[PCI_INTERRUPT_LINE] = 0xff;	/* not routed until firmware says */
	fn->cfg[PCI_INTERRUPT_PIN] = info->irq_pin;
	fn->cfg[PCI_MIN_GNT] = info->min_gnt;
	fn->cfg[PCI_MAX_LAT] = info->max_lat;
	for (i = 0; i < PCI_NUM_BARS; i++) {
		fn->bar[i] = info->bar[i];
		if (fn->bar[i].type != PCI_BAR_NONE &&
		    (fn->bar[i].size & (fn->bar[i].size - 1) ||
		     fn->bar[i].size < (fn->bar[i].type == PCI_BAR_IO ? 4u : 16u)))
			fn->bar[i].type = PCI_BAR_NONE;	/* refuse an impossible BAR */
		pci_bar_type_bits(&fn->bar[i], fn->cfg, PCI_BASE_ADDRESS_0 + 4 * i);
	}
}

void pci_func_set_map(struct pci_func *fn, pci_bar_map_fn map, void *ctx)
{
	fn->map = map;
	fn->map_ctx = ctx;
}

uint16_t pci_func_command(const struct pci_func *fn)
{
	return (uint16_t)pci_get(fn->cfg, PCI_COMMAND, 2);
}

uint8_t pci_func_irq_line(const struct pci_func *fn)
{
	return fn->cfg[PCI_INTERRUPT_LINE];
}

void pci_func_set_intx_status(struct pci_func *fn, bool level)
{
	if (level)
		fn->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		fn->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
}

/* Report every BAR whose decoded window differs from what was last said.
 * A BAR still holding the all-ones sizing pattern decodes nothing. */
static void pci_update_maps(struct pci_func *fn, bool force)
{
	uint16_t cmd = pci_func_command(fn);
	unsigned i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar_info *b = &fn->bar[i];
		uint32_t mask = pci_bar_wmask(b), base;
		bool io = b->type == PCI_BAR_IO, on;

		if (b->type == PCI_BAR_NONE)
			continue;
		base = pci_get(fn->cfg, PCI_BASE_ADDRESS_0 + 4 * i, 4) & mask;
		on = (cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) && base != 0 &&
		     base != mask && !(io && base + b->size - 1 > 0xffff);
		if (!on)
			base = 0;
		if (!force && on == fn->mapped[i] && base == fn->mapped_base[i])
			continue;
		fn->mapped[i] = on;
		fn->mapped_base[i] = base;
		if (fn->map && (on || !force))
			fn->map(fn->map_ctx, i, base, b->size, io, on);
	}
}

uint32_t pci_func_cfg_read(const struct pci_func *fn, unsigned off, unsigned size)
{
	if (off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off)
		return 0xffffffffu;
	return pci_get(fn->cfg, off, size);
}

void pci_func_cfg_write(struct pci_func *fn, unsigned off, unsigned size, uint32_t value)
{
	bool remap = false;
	unsigned i;

	if (off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off)
		return;
	for (i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t m = pci_wmask(fn, o), v = (uint8_t)(value >> (8 * i));

		fn->cfg[o] = (uint8_t)((fn->cfg[o] & ~m) | (v & m));
		if (o == PCI_COMMAND || o == PCI_COMMAND + 1 ||
		    (o >= PCI_BASE_ADDRESS_0 && o < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS))
			remap = true;
	}
	if (remap)
		pci_update_maps(fn, false);
}

void pci_init(struct pci_bus *bus, const struct dev_env *env)
{
	__builtin_memset(bus, 0, sizeof(*bus));
	bus->env = env;
}

int pci_attach(struct pci_bus *bus, unsigned slot, struct pci_func *fn)
{
	if (slot >= PCI_MAX_SLOTS || bus->slot[slot])
		return -1;
	bus->slot[slot] = fn;
	return 0;
}

/* The function the current CONFIG_ADDRESS selects, or NULL (reads ~0). */
static struct pci_func *pci_selected(const struct pci_bus *bus)
{
	uint32_t a = bus->config_address;

	if (!(a & CFG_ADDR_ENABLE) || CFG_ADDR_BUS(a) != 0 || CFG_ADDR_FUNC(a) != 0)
		return NULL;
	return bus->slot[CFG_ADDR_SLOT(a)];
}

uint32_t pci_io_read(struct pci_bus *bus, uint32_t port, unsigned size)
{
	struct pci_func *fn;
	unsigned off;

	if (port == PCI_CONFIG_ADDRESS && size == 4)
		return bus->config_address;
	if (port < PCI_CONFIG_DATA || port + size > PCI_CONFIG_DATA + 4 || !size)
		return 0xffffffffu;
	fn = pci_selected(bus);
	if (!fn)
		return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	off = CFG_ADDR_REG(bus->config_address) + (port - PCI_CONFIG_DATA);
	return pci_func_cfg_read(fn, off, size);
}

void pci_io_write(struct pci_bus *bus, uint32_t port, unsigned size, uint32_t value)
{
	struct pci_func *fn;

	if (port == PCI_CONFIG_ADDRESS && size == 4) {
		bus->config_address = value & 0x80fffffcu;
		return;
	}
	if (port < PCI_CONFIG_DATA || port + size > PCI_CONFIG_DATA + 4 || !size)
		return;
	fn = pci_selected(bus);
	if (fn)
		pci_func_cfg_write(fn, CFG_ADDR_REG(bus->config_address) + (port - PCI_CONFIG_DATA),
				   size, value);
}

void pci_save_over(const struct pci_bus *bus, struct pci_snap *snap)
{
	unsigned i;

	snap->config_address = bus->config_address;
	snap->present = 0;
	for (i = 0; i < PCI_MAX_SLOTS; i++) {
		if (!bus->slot[i])
			continue;
		snap->present |= 1u << i;
		__builtin_memcpy(snap->cfg[i], bus->slot[i]->cfg, PCI_CFG_SIZE);
	}
}

void pci_save(const struct pci_bus *bus, struct pci_snap *snap)
{
	__builtin_memset(snap, 0, sizeof(*snap));
	pci_save_over(bus, snap);
}

int pci_restore(struct pci_bus *bus, const struct pci_snap *snap)
{
	unsigned i, o;

	if (snap->config_address & ~0x80fffffcu)
		return DEV_RESTORE_EINVAL;
	for (i = 0; i < PCI_MAX_SLOTS; i++) {
		const struct pci_func *fn = bus->slot[i];

		if (!!(snap->present & (1u << i)) != !!fn)
			return DEV_RESTORE_EINVAL;
		if (!fn)
			continue;
		/* Read-only bytes must match the device attached here. */
		for (o = 0; o < PCI_WMASK_END; o++) {
			uint8_t ro = (uint8_t)~pci_wmask(fn, o);

			if (o == PCI_STATUS)
				ro &= (uint8_t)~PCI_STATUS_INTERRUPT;
			if ((snap->cfg[i][o] & ro) != (fn->cfg[o] & ro))
				return DEV_RESTORE_EINVAL;
		}
		/* The rest is read-only whole: 8 bytes a step, since under kvm
		 * this runs in emulated ring 0 at ~1 us an instruction and the
		 * byte loop was most of a restore (docs/BENCHMARKS.md). */
		for (; o < PCI_CFG_SIZE; o += 8) {
			uint64_t a, b;

			__builtin_memcpy(&a, &snap->cfg[i][o], 8);
			__builtin_memcpy(&b, &fn->cfg[o], 8);
			if (a != b)
				return DEV_RESTORE_EINVAL;
		}
	}
	bus->config_address = snap->config_address;
	for (i = 0; i < PCI_MAX_SLOTS; i++) {
		struct pci_func *fn = bus->slot[i];

		if (!fn)
			continue;
		__builtin_memcpy(fn->cfg, snap->cfg[i], PCI_CFG_SIZE);
		pci_update_maps(fn, true);	/* tell the new host where BARs live */
	}
	return DEV_RESTORE_OK;
}
