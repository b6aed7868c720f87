/* uart16550.c: the 16550A UART: registers, DLAB, RX FIFO, IIR priorities, loopback, IRQ gated by OUT2 */
#include "uart16550.h"

/* Register offsets (DLAB=0 / DLAB=1) */
#define UART_RBR 0	/* read; THR on write; DLL with DLAB */
#define UART_IER 1	/* DLM with DLAB */
#define UART_IIR 2	/* read; FCR on write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI  0x01	/* received data available */
#define IER_THRI 0x02	/* transmitter holding register empty */
#define IER_RLSI 0x04	/* receiver line status */
#define IER_MSI  0x08	/* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0c	/* character timeout: data below the trigger level */
#define IIR_FIFO   0xc0	/* "FIFOs enabled": what identifies a 16550A */

#define FCR_ENABLE    0x01
#define FCR_CLEAR_RCV 0x02
#define FCR_CLEAR_XMT 0x04
#define FCR_TRIGGER(v) (((v) >> 6) & 3)

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08	/* on a PC, gates the UART's interrupt onto the ISA line */
#define MCR_LOOP 0x10

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80
#define MSR_DELTA 0x0f

static const uint8_t uart16550_trigger[4] = { 1, 4, 8, 14 };

static unsigned uart16550_fifo_cap(const struct uart16550 *dev)
{
	return (dev->fcr & FCR_ENABLE) ? UART16550_FIFO_SIZE : 1;
}

/* Interrupt identification, highest priority first. */
static uint8_t uart16550_iir(const struct uart16550 *dev)
{
	if ((dev->ier & IER_RLSI) && (dev->lsr & LSR_OE))
		return IIR_RLSI;
	if ((dev->ier & IER_RDI) && dev->rx_count) {
		if (!(dev->fcr & FCR_ENABLE) ||
		    dev->rx_count >= uart16550_trigger[FCR_TRIGGER(dev->fcr)])
			return IIR_RDI;
		return IIR_CTI;	/* no timer: the timeout is taken as expired */
	}
	if ((dev->ier & IER_THRI) && dev->thri_pending)
		return IIR_THRI;
	if ((dev->ier & IER_MSI) && (dev->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void uart16550_update_irq(struct uart16550 *dev)
{
	bool level = uart16550_iir(dev) != IIR_NO_INT && (dev->mcr & MCR_OUT2);

	if (level != dev->irq_level) {
		dev->irq_level = level;
		dev->env->set_irq(dev->env->ctx, dev->irq, level);
	}
}

static void uart16550_rx_push(struct uart16550 *dev, uint8_t byte)
{
	if (dev->rx_count >= uart16550_fifo_cap(dev)) {
		dev->lsr |= LSR_OE;	/* overrun: the byte is lost */
		return;
	}
	dev->rx_fifo[(dev->rx_head + dev->rx_count) % UART16550_FIFO_SIZE] = byte;
	dev->rx_count++;
	dev->lsr |= LSR_DR;
}

/* Input is pulled only while there is room, so the host never loses bytes. */
static void uart16550_fill(struct uart16550 *dev)
{
	int c;

	if (!dev->input || (dev->mcr & MCR_LOOP))
		return;
	while (dev->rx_count < uart16550_fifo_cap(dev)) {
		c = dev->input(dev->input_ctx);
		if (c < 0)
			break;
		uart16550_rx_push(dev, (uint8_t)c);
	}
}

void uart16550_poll(struct uart16550 *dev)
{
	uart16550_fill(dev);
	uart16550_update_irq(dev);
}

void uart16550_init(struct uart16550 *dev, const struct dev_env *env, uint16_t base,
		    unsigned irq, uart16550_input_fn input, void *input_ctx)
{
	__builtin_memset(dev, 0, sizeof(*dev));
	dev->env = env;
	dev->base = base;
	dev->irq = (uint8_t)irq;
	dev->input = input;
	dev->input_ctx = input_ctx;
	dev->lsr = LSR_THRE | LSR_TEMT;
	dev->msr = MSR_DCD | MSR_DSR | MSR_CTS;	/* a terminal is attached */
	dev->dll = 12;	/* 9600 baud, the usual firmware default */
}

/* In loopback the modem outputs feed the modem inputs. */
static uint8_t uart16550_loop_msr(uint8_t mcr)
{
	return (uint8_t)(((mcr & MCR_RTS) ? MSR_CTS : 0) | ((mcr & MCR_DTR) ? MSR_DSR : 0) |
			 ((mcr & MCR_OUT1) ? MSR_RI : 0) | ((mcr & MCR_OUT2) ? MSR_DCD : 0));
}

static void uart16550_set_mcr(struct uart16550 *dev, uint8_t v)
{
	uint8_t old = dev->msr, now;

	dev->mcr = v & 0x1f;
	now = (dev->mcr & MCR_LOOP) ? uart16550_loop_msr(dev->mcr) : (MSR_DCD | MSR_DSR | MSR_CTS);
	dev->msr = (uint8_t)((old & MSR_DELTA) | now);
	if ((old ^ now) & MSR_CTS)
		dev->msr |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		dev->msr |= MSR_DDSR;
	if ((old ^ now) & MSR_DCD)
		dev->msr |= MSR_DDCD;
	if ((old & MSR_RI) && !(now & MSR_RI))
		dev->msr |= MSR_TERI;
}

uint32_t uart16550_io_read(struct uart16550 *dev, uint32_t port, unsigned size)
{
	uint8_t v = 0xff;

	(void)size;
	switch (port - dev->base) {
	case UART_RBR:
		if (dev->lcr & LCR_DLAB) {
			v = dev->dll;
			break;
		}
		uart16550_fill(dev);
		v = 0;
		if (dev->rx_count) {
			v = dev->rx_fifo[dev->rx_head];
			dev->rx_head = (uint8_t)((dev->rx_head + 1) % UART16550_FIFO_SIZE);
			dev->rx_count--;
			uart16550_fill(dev);
		}
		if (!dev->rx_count)
			dev->lsr &= (uint8_t)~LSR_DR;
		break;
	case UART_IER:
		v = (dev->lcr & LCR_DLAB) ? dev->dlm : dev->ier;
		break;
	case UART_IIR:
		uart16550_fill(dev);
		v = uart16550_iir(dev);
		/* Reading IIR while it names THRE is what clears that source. */
		if (v == IIR_THRI)
			dev->thri_pending = false;
		if (dev->fcr & FCR_ENABLE)
			v |= IIR_FIFO;
		break;
	case UART_LCR:
		v = dev->lcr;
		break;
	case UART_MCR:
		v = dev->mcr;
		break;
	case UART_LSR:
		uart16550_fill(dev);
		v = dev->lsr;
		dev->lsr &= (uint8_t)~LSR_OE;	/* error bits clear on read */
		break;
	case UART_MSR:
		v = dev->msr;
		dev->msr &= (uint8_t)~MSR_DELTA;
		break;
	case UART_SCR:
		v = dev->scr;
		break;
	default:
		break;
	}
	uart16550_update_irq(dev);
	return v;
}

void uart16550_io_write(struct uart16550 *dev, uint32_t port, unsigned size, uint32_t value)
{
	uint8_t v = (uint8_t)value, old;

	(void)size;
	switch (port - dev->base) {
	case UART_RBR:
		if (dev->lcr & LCR_DLAB) {
			dev->dll = v;
			break;
		}
		/* Transmission is instant: THR is empty again straight away, which
		 * re-arms the THRE interrupt the write just cleared. */
		if (dev->mcr & MCR_LOOP)
			uart16550_rx_push(dev, v);
		else if (dev->env->console_tx)
			dev->env->console_tx(dev->env->ctx, v);
		dev->thri_pending = true;
		break;
	case UART_IER:
		if (dev->lcr & LCR_DLAB) {
			dev->dlm = v;
			break;
		}
		old = dev->ier;
		dev->ier = v & 0x0f;
		/* Enabling THRI with THR empty interrupts at once (drivers rely on it). */
		if ((dev->ier & IER_THRI) && !(old & IER_THRI))
			dev->thri_pending = true;
		break;
	case UART_IIR: /* FCR */
		if ((v ^ dev->fcr) & FCR_ENABLE || (v & FCR_CLEAR_RCV)) {
			/* Toggling the FIFO mode or clearing it empties the receiver. */
			dev->rx_head = dev->rx_count = 0;
			dev->lsr &= (uint8_t)~LSR_DR;
		}
		dev->fcr = v & (FCR_ENABLE | 0xc0);
		if (!(dev->fcr & FCR_ENABLE))
			dev->fcr = 0;
		break;
	case UART_LCR:
		dev->lcr = v;
		break;
	case UART_MCR:
		uart16550_set_mcr(dev, v);
		break;
	case UART_SCR:
		dev->scr = v;
		break;
	default: /* LSR, MSR: writes are factory test only */
		break;
	}
	uart16550_fill(dev);
	uart16550_update_irq(dev);
}

void uart16550_save(const struct uart16550 *dev, struct uart16550_snap *snap)
{
	__builtin_memset(snap, 0, sizeof(*snap));
	snap->dll = dev->dll;
	snap->dlm = dev->dlm;
	snap->ier = dev->ier;
	snap->lcr = dev->lcr;
	snap->mcr = dev->mcr;
	snap->lsr = dev->lsr;
	snap->msr = dev->msr;
	snap->scr = dev->scr;
	snap->fcr = dev->fcr;
	__builtin_memcpy(snap->rx_fifo, dev->rx_fifo, sizeof(snap->rx_fifo));
	snap->rx_head = dev->rx_head;
	snap->rx_count = dev->rx_count;
	snap->thri_pending = dev->thri_pending;
	snap->irq_level = dev->irq_level;
}

int uart16550_restore(struct uart16550 *dev, const struct uart16550_snap *snap)
{
	unsigned cap = (snap->fcr & FCR_ENABLE) ? UART16550_FIFO_SIZE : 1;

	if (snap->rx_head >= UART16550_FIFO_SIZE || snap->rx_count > cap ||
	    (snap->fcr & ~(FCR_ENABLE | 0xc0)) || (snap->ier & 0xf0) || (snap->mcr & 0xe0) ||
	    snap->thri_pending > 1 || snap->irq_level > 1 ||
	    !(snap->lsr & LSR_DR) != !snap->rx_count)
		return DEV_RESTORE_EINVAL;
	dev->dll = snap->dll;
	dev->dlm = snap->dlm;
	dev->ier = snap->ier;
	dev->lcr = snap->lcr;
	dev->mcr = snap->mcr;
	dev->lsr = snap->lsr | LSR_THRE | LSR_TEMT;
	dev->msr = snap->msr;
	dev->scr = snap->scr;
	dev->fcr = snap->fcr;
	__builtin_memcpy(dev->rx_fifo, snap->rx_fifo, sizeof(dev->rx_fifo));
	dev->rx_head = snap->rx_head;
	dev->rx_count = snap->rx_count;
	dev->thri_pending = snap->thri_pending;
	/* Re-drive the line on the new host from the restored state. */
	dev->irq_level = false;
	uart16550_update_irq(dev);
	return DEV_RESTORE_OK;
}
