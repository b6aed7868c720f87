/* platform_devices.c: the PC's device models on trapped PIO: 8259 pair (interrupt source), 8254 (timer), 16550 COM1, PCI mechanism #1 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "platform.h"

/*
 * The models are the freestanding ones of runtime/common/dev, so their
 * state is ours to serialize (no in-kernel irqchip or PIT).  Every call
 * into a model happens with vm->dev_lock held: vm.c takes it around PIO
 * and MMIO dispatch and timer polls, platform_nic.c around received
 * frames.  The dev_env callbacks below therefore run under it too.
 */

enum port_kind { PORT_PIC, PORT_PIT, PORT_SYSCTL, PORT_UART, PORT_PCI };

/* ---- dev_env: what the models ask of their host */

static void env_set_irq(void *ctx, unsigned irq, int level)
{
	struct platform *p = ctx;
	bool before = i8259_has_interrupt(&p->pic);

	i8259_set_irq(&p->pic, irq, level);
	/* Only a new INTR edge needs the BSP's attention: a halted BSP
	 * sleeps, a running one sits in KVM_RUN with IF=1.  A raise on the
	 * BSP's own thread costs a self-signal, not another exit. */
	if (!before && i8259_has_interrupt(&p->pic))
		vm__notify_irq(p->vm);
}

static uint8_t *env_dma(void *ctx, uint64_t gpa, size_t len)
{
	struct platform *p = ctx;
	uint8_t *h = vm__gpa(p->vm, gpa, len);

	/* Models read and write through the same pointer, so every access
	 * counts as a write: a page migration re-sends is cheaper than one
	 * it misses. */
	if (h)
		vm__mark_dirty(p->vm, gpa, len);
	return h;
}

static uint64_t env_now(void *ctx)
{
	return vm__now_ns();
}

static int env_net_tx(void *ctx, const uint8_t *frame, size_t len)
{
	return platform_nic__net_tx(ctx, frame, len);
}

static void env_console_tx(void *ctx, uint8_t byte)
{
	struct platform *p = ctx;

	if (p->console_fd >= 0 && write(p->console_fd, &byte, 1) < 0)
		p->console_fd = -1; /* console gone: keep the guest running */
}

/* COM1 input: one byte if one is waiting; EOF or an error ends input. */
static int uart_input(void *ctx)
{
	struct platform *p = ctx;
	struct pollfd pfd = { .fd = p->input_fd, .events = POLLIN };
	uint8_t c;
	ssize_t n;

	if (p->input_fd < 0 || poll(&pfd, 1, 0) != 1)
		return -1;
	n = read(p->input_fd, &c, 1);
	if (n == 1)
		return c;
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		p->input_fd = -1;
	return -1;
}

/* ---- ISA ports: one ops pair, the range's platform_port says who answers */

static uint64_t port_read(void *opaque, uint64_t off, unsigned size)
{
	struct platform_port *pp = opaque;
	struct platform *p = pp->p;
	uint32_t port = pp->base + (uint32_t)off;

	switch (pp->kind) {
	case PORT_PIC:
		return i8259_io_read(&p->pic, port, size);
	case PORT_PIT:
		return i8254_io_read(&p->pit, port, size);
	case PORT_SYSCTL:
		/* Bit 5 is OUT2: how Linux and BIOSes calibrate against the PIT. */
		return (p->sysctl & 0x0f) | (i8254_get_out(&p->pit, 2) ? 0x20 : 0);
	case PORT_UART:
		return uart16550_io_read(&p->uart, port, size);
	case PORT_PCI:
		return pci_io_read(&p->pci, port, size);
	}
	return ~0ull;
}

static void port_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct platform_port *pp = opaque;
	struct platform *p = pp->p;
	uint32_t port = pp->base + (uint32_t)off;

	switch (pp->kind) {
	case PORT_PIC:
		i8259_io_write(&p->pic, port, size, (uint32_t)val);
		break;
	case PORT_PIT:
		i8254_io_write(&p->pit, port, size, (uint32_t)val);
		break;
	case PORT_SYSCTL:
		p->sysctl = (uint8_t)val;
		i8254_set_gate(&p->pit, 2, val & 1);
		break;
	case PORT_UART:
		uart16550_io_write(&p->uart, port, size, (uint32_t)val);
		break;
	case PORT_PCI:
		pci_io_write(&p->pci, port, size, (uint32_t)val);
		break;
	}
}

static const struct vm_io_ops port_ops = { port_read, port_write };

static int port_add(struct platform *p, uint16_t base, uint16_t len, enum port_kind kind)
{
	struct platform_port *pp;

	if (p->nr_ports == sizeof p->ports / sizeof p->ports[0])
		return vm__fail(p->vm, "platform: too many port ranges");
	pp = &p->ports[p->nr_ports++];
	pp->p = p;
	pp->base = base;
	pp->kind = (uint8_t)kind;
	return vm__register_pio(p->vm, base, len, &port_ops, pp);
}

/* ---- the PIC as the vm's interrupt source, the PIT as its timer */

static int pic_pending(void *opaque)
{
	return i8259_has_interrupt(&((struct platform *)opaque)->pic);
}

static int pic_ack(void *opaque)
{
	return i8259_ack(&((struct platform *)opaque)->pic);
}

static const struct vm_irq_ops pic_irq_ops = { pic_pending, pic_ack };

static uint64_t pit_poll(void *opaque, uint64_t now)
{
	struct platform *p = opaque;
	uint64_t next = i8254_next_deadline_ns(&p->pit);

	if (next != I8254_NO_DEADLINE && now >= next) {
		i8254_tick(&p->pit);
		next = i8254_next_deadline_ns(&p->pit);
	}
	/* Console input has no fd watcher of its own: look at it here. */
	if (p->input_fd >= 0) {
		uart16550_poll(&p->uart);
		if (now + PLATFORM_UART_POLL_NS < next)
			next = now + PLATFORM_UART_POLL_NS;
	}
	return next;
}

static const struct vm_timer_ops pit_timer_ops = { pit_poll };

int platform_devices__init(struct platform *p)
{
	static const struct pci_func_info hostbridge = {
		.vendor_id = 0x8086, .device_id = 0x1237, /* an i440FX, as QEMU's pc */
		.class_code = 0x06, .subclass = 0x00,
	};
	struct vm *vm = p->vm;

	p->env.ctx = p;
	p->env.set_irq = env_set_irq;
	p->env.dma = env_dma;
	p->env.now_ns = env_now;
	p->env.net_tx = env_net_tx;
	p->env.console_tx = env_console_tx;

	i8259_init(&p->pic, &p->env);
	i8254_init(&p->pit, &p->env);
	uart16550_init(&p->uart, &p->env, UART16550_COM1_BASE, UART16550_COM1_IRQ, uart_input, p);
	pci_init(&p->pci, &p->env);
	pci_func_init(&p->hostbridge, &hostbridge);
	if (pci_attach(&p->pci, PLATFORM_HOSTBRIDGE_SLOT, &p->hostbridge) < 0)
		return vm__fail(vm, "platform: PCI slot %d taken", PLATFORM_HOSTBRIDGE_SLOT);

	if (port_add(p, I8259_MASTER_BASE, 2, PORT_PIC) < 0 ||
	    port_add(p, I8259_SLAVE_BASE, 2, PORT_PIC) < 0 ||
	    port_add(p, I8259_ELCR_BASE, 2, PORT_PIC) < 0 ||
	    port_add(p, I8254_BASE, 4, PORT_PIT) < 0 ||
	    port_add(p, PLATFORM_PORT_SYSCTL, 1, PORT_SYSCTL) < 0 ||
	    port_add(p, UART16550_COM1_BASE, 8, PORT_UART) < 0 ||
	    port_add(p, PCI_CONFIG_ADDRESS, 8, PORT_PCI) < 0 ||
	    vm__register_timer(vm, &pit_timer_ops, p) < 0)
		return -1;
	vm__set_irq_source(vm, &pic_irq_ops, p);
	return 0;
}
