/* dp83820.c: DP83820 registers, descriptor rings (TX walk, RX delivery), receive filter, interrupts */
#include "dp83820.h"
#include "dp83820_regs.h"


#define R(off) regs[(off) / 4]
#define TX_WALK_MAX 65536u	/* a kick never spins forever on a corrupt ring */

/* A descriptor: link, bufptr, cmdsts, extsts.  With CFG_M64ADDR (always set
 * by a 64-bit kernel) link and bufptr are 64 bits wide. */
struct dp83820_desc {
	uint64_t link, buf;
	uint32_t cmdsts, extsts;
	unsigned cmdsts_off;	/* where cmdsts sits, for the write-back */
};

static uint32_t dp83820_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dp83820_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static bool dp83820_wide(const struct dp83820 *dev)
{
	return dev->R(CFG) & CFG_M64ADDR;
}

static bool dp83820_can_dma(const struct dp83820 *dev)
{
	return pci_func_command(&dev->pci) & PCI_COMMAND_MASTER;
}

static bool dp83820_desc_read(struct dp83820 *dev, uint64_t gpa, struct dp83820_desc *d)
{
	bool wide = dp83820_wide(dev);
	unsigned size = wide ? 24 : 16;
	const uint8_t *p = dev->env->dma(dev->env->ctx, gpa, size);

	if (!p)
		return false;
	if (wide) {
		d->link = dp83820_le32(p) | (uint64_t)dp83820_le32(p + 4) << 32;
		d->buf = dp83820_le32(p + 8) | (uint64_t)dp83820_le32(p + 12) << 32;
		d->cmdsts_off = 16;
	} else {
		d->link = dp83820_le32(p);
		d->buf = dp83820_le32(p + 4);
		d->cmdsts_off = 8;
	}
	d->cmdsts = dp83820_le32(p + d->cmdsts_off);
	d->extsts = dp83820_le32(p + d->cmdsts_off + 4);
	return true;
}

/* extsts first, cmdsts last: the OWN flip must publish a complete entry. */
static void dp83820_desc_status(struct dp83820 *dev, uint64_t gpa, const struct dp83820_desc *d,
				uint32_t cmdsts, uint32_t extsts)
{
	uint8_t *p = dev->env->dma(dev->env->ctx, gpa, d->cmdsts_off + 8);

	if (!p)
		return;
	dp83820_put_le32(p + d->cmdsts_off + 4, extsts);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	dp83820_put_le32(p + d->cmdsts_off, cmdsts);
}

/* INTA# = IER.IE && (ISR & IMR), routed to the line the config space names. */
static void dp83820_update_irq(struct dp83820 *dev)
{
	bool level = (dev->R(IER) & 1) && (dev->R(ISR) & dev->R(IMR)) &&
		     !(pci_func_command(&dev->pci) & PCI_COMMAND_INTX_DISABLE);
	uint8_t line = pci_func_irq_line(&dev->pci);

	if (line > 15)
		line = 0xff;
	pci_func_set_intx_status(&dev->pci, level);
	if (level == dev->irq_level && (!level || line == dev->irq_line))
		return;
	if (dev->irq_level && dev->irq_line != 0xff)
		dev->env->set_irq(dev->env->ctx, dev->irq_line, 0);
	if (level && line != 0xff)
		dev->env->set_irq(dev->env->ctx, line, 1);
	dev->irq_level = level;
	dev->irq_line = level ? line : 0xff;
}

static void dp83820_reset(struct dp83820 *dev)
{
	__builtin_memset(dev->regs, 0, sizeof(dev->regs));
	dev->R(SRR) = SRR_REV;
	dev->txdp = dev->rxdp = 0;
	dev->tx_on = dev->rx_on = false;
	dev->tx_at_null = dev->rx_at_null = false;
	dp83820_update_irq(dev);
}

void dp83820_init(struct dp83820 *dev, const struct dev_env *env, const uint8_t mac[6])
{
	struct pci_func_info info;

	__builtin_memset(dev, 0, sizeof(*dev));
	__builtin_memset(&info, 0, sizeof(info));
	dev->env = env;
	info.vendor_id = info.subsys_vendor_id = DP83820_VENDOR_ID;
	info.device_id = info.subsys_id = DP83820_DEVICE_ID;
	info.class_code = 0x02;	/* network controller, ethernet */
	info.irq_pin = 1;
	info.min_gnt = 0x0b;
	info.max_lat = 0x34;
	info.bar[DP83820_BAR_IO].type = PCI_BAR_IO;
	info.bar[DP83820_BAR_IO].size = DP83820_IO_SIZE;
	info.bar[DP83820_BAR_MEM].type = PCI_BAR_MEM32;
	info.bar[DP83820_BAR_MEM].size = DP83820_MEM_SIZE;
	pci_func_init(&dev->pci, &info);
	__builtin_memcpy(dev->mac, mac, 6);
	dev->link_up = true;
	dev->irq_line = 0xff;
	dp83820_reset(dev);
}

/* Follow a NULL link that the driver may since have filled in. */
static bool dp83820_resume(struct dp83820 *dev, uint64_t *dp, bool *at_null)
{
	struct dp83820_desc d;

	if (!*at_null)
		return true;
	if (!dp83820_desc_read(dev, *dp, &d) || !d.link)
		return false;
	*dp = d.link;
	*at_null = false;
	return true;
}

/* Walk the TX ring from TXDP while descriptors are OWNed by the chip,
 * gathering MORE chains into one frame.  A frame is handed back (OWN
 * cleared, OK set) only once it is complete and gone. */
static void dp83820_tx_run(struct dp83820 *dev)
{
	struct dp83820_desc d;
	uint64_t first = dev->txdp, at;
	size_t len = 0;
	unsigned walked, n = 0, i;
	bool intr = false, too_big = false;
	const uint8_t *src;

	if (!dp83820_can_dma(dev) || !dp83820_resume(dev, &dev->txdp, &dev->tx_at_null)) {
		dev->tx_on = false;
		dev->R(ISR) |= ISR_TXIDLE;
		return;
	}
	first = dev->txdp;
	for (walked = 0; walked < TX_WALK_MAX; walked++) {
		if (!dp83820_desc_read(dev, dev->txdp, &d)) {
			dev->R(ISR) |= ISR_RMABT | ISR_TXERR;
			dev->tx_on = false;
			return;
		}
		if (!(d.cmdsts & CMDSTS_OWN)) {
			/* Idle; a half-owned chain is retried from its start. */
			dev->txdp = first;
			dev->tx_on = false;
			dev->R(ISR) |= ISR_TXIDLE;
			return;
		}
		src = dev->env->dma(dev->env->ctx, d.buf, d.cmdsts & CMDSTS_LEN_MASK);
		if (len + (d.cmdsts & CMDSTS_LEN_MASK) > DP83820_MAX_FRAME || !src)
			too_big = true;
		else
			__builtin_memcpy(dev->frame + len, src, d.cmdsts & CMDSTS_LEN_MASK);
		len += d.cmdsts & CMDSTS_LEN_MASK;
		intr |= (d.cmdsts & CMDSTS_INTR) != 0;
		n++;
		if (!(d.cmdsts & CMDSTS_MORE)) {
			if (too_big) {
				dev->stats.tx_errors++;
			} else if (dev->env->net_tx(dev->env->ctx, dev->frame, len) == 0) {
				dev->stats.tx_frames++;
			} else {
				dev->stats.tx_errors++;	/* lost on the wire, as on a real link */
			}
			/* Hand the chain back, first to last. */
			for (i = 0, at = first; i < n; i++) {
				struct dp83820_desc w;

				if (!dp83820_desc_read(dev, at, &w))
					break;
				dp83820_desc_status(dev, at, &w,
						    (w.cmdsts & ~(CMDSTS_OWN | CMDSTS_OK | CMDSTS_ERR)) |
						    (too_big ? CMDSTS_ERR : CMDSTS_OK), w.extsts);
				at = w.link;
			}
			dev->R(ISR) |= too_big ? ISR_TXERR : ISR_TXOK;
			if (intr)
				dev->R(ISR) |= ISR_TXDESC;
			len = 0;
			n = 0;
			intr = too_big = false;
		}
		if (!d.link) {
			dev->tx_at_null = true;
			dev->tx_on = false;
			dev->R(ISR) |= ISR_TXIDLE;
			return;
		}
		dev->txdp = d.link;
		if (!n)
			first = dev->txdp;
	}
}

/* The receiver fetches the descriptor at RXDP as soon as it is enabled or
 * has advanced; one the host still owns (OWN set) sends it idle with
 * RXIDLE, and ns83820 answers that by rewriting RXDP and setting RXE. */
static void dp83820_rx_fetch(struct dp83820 *dev)
{
	struct dp83820_desc d;

	if (dp83820_desc_read(dev, dev->rxdp, &d) && !(d.cmdsts & CMDSTS_OWN))
		return;
	dev->rx_on = false;
	dev->R(ISR) |= ISR_RXIDLE;
}

static void dp83820_rx_enable(struct dp83820 *dev)
{
	dev->rx_on = true;
	if (!dp83820_resume(dev, &dev->rxdp, &dev->rx_at_null)) {
		dev->rx_on = false;
		dev->R(ISR) |= ISR_RXIDLE;
		return;
	}
	if (dp83820_can_dma(dev))
		dp83820_rx_fetch(dev);
}

static void dp83820_write_cr(struct dp83820 *dev, uint32_t v)
{
	if (v & CR_RST) {	/* completes at once: the driver polls RST clear */
		dp83820_reset(dev);
		return;
	}
	if (v & CR_TXR) {
		dev->tx_on = dev->tx_at_null = false;
		dev->R(ISR) |= ISR_TXRCMP;
	}
	if (v & CR_RXR) {
		dev->rx_on = dev->rx_at_null = false;
		dev->R(ISR) |= ISR_RXRCMP;
	}
	if (v & CR_TXD)
		dev->tx_on = false;
	if (v & CR_RXD)
		dev->rx_on = false;
	if ((v & CR_RXE) && !(v & CR_RXD))
		dp83820_rx_enable(dev);
	if ((v & CR_TXE) && !(v & CR_TXD)) {
		dev->tx_on = true;
		dp83820_tx_run(dev);
	}
	if (v & CR_SWI)
		dev->R(ISR) |= ISR_SWI;
}

/* BIST and EEPROM load finish instantly and pass; ns83820 polls for it. */
static void dp83820_write_ptscr(struct dp83820 *dev, uint32_t v)
{
	uint32_t st = dev->R(PTSCR) & (PTSCR_RBIST_DONE | PTSCR_RBIST_FAIL);

	if (v & PTSCR_RBIST_RST)
		st = 0;
	if (v & PTSCR_RBIST_EN)
		st = PTSCR_RBIST_DONE;
	dev->R(PTSCR) = st;	/* EEBIST/EELOAD enable bits clear when done */
}

static uint32_t dp83820_cfg(const struct dp83820 *dev)
{
	return (dev->R(CFG) & CFG_WMASK) | (dev->link_up ? CFG_LNKSTS | CFG_SPDSTS0 : 0);
}

uint32_t dp83820_io_read(struct dp83820 *dev, uint32_t offset, unsigned size)
{
	uint32_t off = offset & ~3u, v, a;

	if (offset >= DP83820_MEM_SIZE || !size)
		return 0xffffffffu;
	switch (off) {
	case CR:
		v = (dev->tx_on ? CR_TXE : 0) | (dev->rx_on ? CR_RXE : 0);
		break;
	case CFG:
		v = dp83820_cfg(dev);
		break;
	case MEAR:
		v = dev->R(MEAR) & ~MEAR_EEDO;
		break;
	case ISR:	/* read-to-clear: the driver's handler reads it once */
		v = dev->R(ISR);
		dev->R(ISR) = 0;
		dp83820_update_irq(dev);
		break;
	case TXDP:
		v = (uint32_t)dev->txdp;
		break;
	case TXDP_HI:
		v = (uint32_t)(dev->txdp >> 32);
		break;
	case RXDP:
		v = (uint32_t)dev->rxdp;
		break;
	case RXDP_HI:
		v = (uint32_t)(dev->rxdp >> 32);
		break;
	case RFDR:
		a = dev->R(RFCR) & RFCR_RFADDR & ~1u;
		v = a < 6 ? (uint32_t)(dev->mac[a] | dev->mac[a + 1] << 8) : 0;
		break;
	case TBISR:
		v = dev->link_up ? TBISR_MR_LINK_STATUS | TBISR_MR_AN_COMPLETE : 0;
		break;
	case TANLPAR:
		v = dev->link_up ? TANAR_FULL_DUP | TANAR_HALF_DUP : 0;
		break;
	default:	/* plain registers; MIB counters and beyond 0x100 read 0 */
		v = off < DP83820_IO_SIZE ? dev->regs[off / 4] : 0;
		break;
	}
	v >>= 8 * (offset & 3);
	return size >= 4 ? v : v & ((1u << (8 * size)) - 1);
}

void dp83820_io_write(struct dp83820 *dev, uint32_t offset, unsigned size, uint32_t value)
{
	uint32_t off = offset & ~3u, shift = 8 * (offset & 3), mask, v, a;

	if (off >= DP83820_IO_SIZE || !size)
		return;
	mask = size >= 4 ? 0xffffffffu : ((1u << (8 * size)) - 1) << shift;
	/* Narrow writes merge into plain registers; commands see only their bytes. */
	v = (dev->regs[off / 4] & ~mask) | ((value << shift) & mask);
	switch (off) {
	case CR:
		dp83820_write_cr(dev, (value << shift) & mask);
		break;
	case CFG:
		dev->R(CFG) = v & CFG_WMASK;
		break;
	case PTSCR:
		dp83820_write_ptscr(dev, (value << shift) & mask);
		break;
	case ISR:
	case SRR:
	case TBISR:
	case TANLPAR:
		break;	/* read-only */
	case IER:
		dev->R(IER) = v & 1;
		break;
	case TXDP:
		dev->txdp = (dev->txdp & ~0xffffffffull) | (v & ~3u);
		dev->tx_at_null = false;
		break;
	case TXDP_HI:
		dev->txdp = (dev->txdp & 0xffffffffull) | (uint64_t)v << 32;
		dev->tx_at_null = false;
		break;
	case RXDP:
		dev->rxdp = (dev->rxdp & ~0xffffffffull) | (v & ~3u);
		dev->rx_at_null = false;
		break;
	case RXDP_HI:
		dev->rxdp = (dev->rxdp & 0xffffffffull) | (uint64_t)v << 32;
		dev->rx_at_null = false;
		break;
	case RFDR:
		a = dev->R(RFCR) & RFCR_RFADDR & ~1u;
		if (a < 6) {
			dev->mac[a] = (uint8_t)value;
			dev->mac[a + 1] = (uint8_t)(value >> 8);
		}
		break;	/* hash and pattern memory are not modelled */
	case TBICR:
		dev->R(TBICR) = v & ~TBICR_MR_RESTART_AN;	/* autoneg is instant */
		break;
	default:
		dev->regs[off / 4] = v;
		break;
	}
	dp83820_update_irq(dev);
}

/* The receive filter as RFCR sets it; the multicast hash counts as a hit. */
static bool dp83820_accept(const struct dp83820 *dev, const uint8_t *f, uint32_t *dest)
{
	uint32_t rfcr = dev->R(RFCR);
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (!(rfcr & RFCR_RFEN))
		return false;
	if (!__builtin_memcmp(f, bcast, 6)) {
		*dest = CMDSTS_DEST_BCAST;
		return rfcr & RFCR_AAB;
	}
	if (f[0] & 1) {
		*dest = CMDSTS_DEST_MULTI;
		return rfcr & (RFCR_AAM | RFCR_MHEN);
	}
	*dest = CMDSTS_DEST_SELF;
	if ((rfcr & RFCR_APM) && !__builtin_memcmp(f, dev->mac, 6))
		return true;
	*dest = 0;
	return rfcr & RFCR_AAU;
}

bool dp83820_rx_ready(struct dp83820 *dev)
{
	struct dp83820_desc d;

	/* Receive descriptors belong to the chip while OWN is clear. */
	return dev->rx_on && !dev->rx_at_null && dp83820_can_dma(dev) &&
	       dp83820_desc_read(dev, dev->rxdp, &d) && !(d.cmdsts & CMDSTS_OWN);
}

int dp83820_rx(struct dp83820 *dev, const uint8_t *frame, size_t len)
{
	struct dp83820_desc d;
	uint32_t dest = 0;
	uint8_t *dst;

	if (len < 14 || len > CMDSTS_LEN_MASK) {
		dev->stats.rx_dropped++;
		return -1;
	}
	if (!dp83820_rx_ready(dev)) {
		dev->stats.rx_dropped++;
		if (dev->rx_on) {	/* the FIFO overflowed with no buffer to go to */
			dev->R(ISR) |= ISR_RXORN;
			dp83820_update_irq(dev);
		}
		return -1;
	}
	if (!dp83820_accept(dev, frame, &dest)) {
		dev->stats.rx_filtered++;
		return 0;
	}
	dp83820_desc_read(dev, dev->rxdp, &d);
	dst = len <= (d.cmdsts & CMDSTS_LEN_MASK) ? dev->env->dma(dev->env->ctx, d.buf, len) : NULL;
	if (!dst) {	/* too long for the buffer (jumbo frames are not spread) */
		dev->stats.rx_dropped++;
		dev->R(ISR) |= ISR_RXERR;
		dp83820_update_irq(dev);
		return -1;
	}
	__builtin_memcpy(dst, frame, len);
	dp83820_desc_status(dev, dev->rxdp, &d, CMDSTS_OWN | CMDSTS_OK | dest | (uint32_t)len, 0);
	dev->stats.rx_frames++;
	dev->R(ISR) |= ISR_RXOK | ((d.cmdsts & CMDSTS_INTR) ? ISR_RXDESC : 0);
	if (d.link) {
		dev->rxdp = d.link;
		dp83820_rx_fetch(dev);
	} else {
		dev->rx_at_null = true;
		dev->rx_on = false;
		dev->R(ISR) |= ISR_RXIDLE;
	}
	dp83820_update_irq(dev);
	return 0;
}

void dp83820_set_link(struct dp83820 *dev, bool up)
{
	if (dev->link_up == up)
		return;
	dev->link_up = up;
	if (dev->R(CFG) & CFG_PINT_LNKSTS)
		dev->R(ISR) |= ISR_PHY;
	dp83820_update_irq(dev);
}

void dp83820_save(const struct dp83820 *dev, struct dp83820_snap *snap)
{
	__builtin_memset(snap, 0, sizeof(*snap));
	__builtin_memcpy(snap->regs, dev->regs, sizeof(snap->regs));
	snap->txdp = dev->txdp;
	snap->rxdp = dev->rxdp;
	__builtin_memcpy(snap->mac, dev->mac, 6);
	snap->tx_on = dev->tx_on;
	snap->rx_on = dev->rx_on;
	snap->tx_at_null = dev->tx_at_null;
	snap->rx_at_null = dev->rx_at_null;
	snap->link_up = dev->link_up;
	snap->irq_level = dev->irq_level;
	snap->irq_line = dev->irq_line;
	snap->stats = dev->stats;
}

int dp83820_restore(struct dp83820 *dev, const struct dp83820_snap *snap)
{
	if ((snap->txdp & 3) || (snap->rxdp & 3) || snap->tx_on > 1 || snap->rx_on > 1 ||
	    snap->tx_at_null > 1 || snap->rx_at_null > 1 || snap->link_up > 1 ||
	    snap->irq_level > 1 || (snap->irq_line > 15 && snap->irq_line != 0xff) ||
	    (snap->irq_level && snap->irq_line == 0xff) ||
	    (snap->rx_on && snap->rx_at_null) || (snap->tx_on && snap->tx_at_null) ||
	    (snap->regs[CFG / 4] & ~CFG_WMASK) || snap->regs[IER / 4] > 1 ||
	    (snap->regs[ISR / 4] & 0x80000000u) || snap->regs[SRR / 4] != SRR_REV ||
	    (snap->regs[PTSCR / 4] & ~(uint32_t)(PTSCR_RBIST_DONE | PTSCR_RBIST_FAIL)))
		return DEV_RESTORE_EINVAL;
	__builtin_memcpy(dev->regs, snap->regs, sizeof(dev->regs));
	dev->txdp = snap->txdp;
	dev->rxdp = snap->rxdp;
	__builtin_memcpy(dev->mac, snap->mac, 6);
	dev->tx_on = snap->tx_on;
	dev->rx_on = snap->rx_on;
	dev->tx_at_null = snap->tx_at_null;
	dev->rx_at_null = snap->rx_at_null;
	dev->link_up = snap->link_up;
	dev->stats = snap->stats;
	/* Re-drive the saved line on the new host, then let the state speak. */
	dev->irq_level = snap->irq_level;
	dev->irq_line = snap->irq_line;
	if (dev->irq_level)
		dev->env->set_irq(dev->env->ctx, dev->irq_line, 1);
	return DEV_RESTORE_OK;
}
