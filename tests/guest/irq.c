/* irq.c: the 8259 pair remapped to vectors 0x20-0x2f, the 8254 PIT on IRQ0, IRQ dispatch */
#include "arch.h"
#include "guest.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI	  0x20
#define PIC_READ_ISR 0x0b /* OCW3: next read of the command port returns ISR */

#define PIT_CH0	  0x40
#define PIT_CMD	  0x43
#define PIT_HZ	  1193182u

static irq_handler handlers[16];
static uint16_t irq_mask = 0xffff & ~(1u << 2); /* everything off but the cascade */

void pic_init(void)
{
	/* ICW1: edge triggered, cascade, ICW4 follows. */
	outb(PIC1_CMD, 0x11);
	outb(PIC2_CMD, 0x11);
	/* ICW2: vector bases, away from the CPU exceptions. */
	outb(PIC1_DATA, IRQ_BASE);
	outb(PIC2_DATA, IRQ_BASE + 8);
	/* ICW3: slave on IRQ2 of the master. */
	outb(PIC1_DATA, 1u << 2);
	outb(PIC2_DATA, 2);
	/* ICW4: 8086 mode, normal EOI. */
	outb(PIC1_DATA, 0x01);
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, (uint8_t)irq_mask);
	outb(PIC2_DATA, (uint8_t)(irq_mask >> 8));
}

void pic_unmask(unsigned irq)
{
	uint64_t f = irq_save();
	irq_mask &= (uint16_t)~(1u << irq);
	if (irq < 8)
		outb(PIC1_DATA, (uint8_t)irq_mask);
	else
		outb(PIC2_DATA, (uint8_t)(irq_mask >> 8));
	irq_restore(f);
}

void irq_register(unsigned irq, irq_handler h)
{
	handlers[irq] = h;
	pic_unmask(irq);
}

static void timer_irq(void)
{
	ticks++;
	/* The NIC is also polled here, in case its interrupt line is not wired. */
	dp83820_poll();
}

void pit_init(unsigned hz)
{
	uint32_t div = (PIT_HZ + hz / 2) / hz;
	outb(PIT_CMD, 0x34); /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
	outb(PIT_CH0, (uint8_t)div);
	outb(PIT_CH0, (uint8_t)(div >> 8));
	irq_register(0, timer_irq);
}

/* Is `irq` really in service?  IRQ7 and IRQ15 also arrive spuriously. */
static int in_service(unsigned irq)
{
	uint16_t cmd = irq < 8 ? PIC1_CMD : PIC2_CMD;
	outb(cmd, PIC_READ_ISR);
	return inb(cmd) & (1u << (irq & 7));
}

/*
 * Where interrupts taken in kernel mode landed (RIP of the interrupted
 * frame): the first IRQLOG_MAX distinct addresses and a count of all.  A
 * runtime that delivers virtual interrupts only at site boundaries must
 * show only site ends here; natively they land wherever IF was 1.  Only
 * the boot CPU takes interrupts, so plain variables do.
 */
#define IRQLOG_MAX 64
static uint64_t irqlog_rip[IRQLOG_MAX];
static unsigned irqlog_distinct;
static uint64_t irqlog_kernel, irqlog_unkept;

static void irqlog_note(uint64_t rip)
{
	irqlog_kernel++;
	for (unsigned i = 0; i < irqlog_distinct; i++)
		if (irqlog_rip[i] == rip)
			return;
	if (irqlog_distinct < IRQLOG_MAX)
		irqlog_rip[irqlog_distinct++] = rip;
	else
		irqlog_unkept++;
}

void irqlog_report(void)
{
	uint64_t f = irq_save(); /* a consistent snapshot: no interrupt adds to it meanwhile */
	for (unsigned i = 0; i < irqlog_distinct; i++)
		kprintf("irqlog: rip=0x%lx\n", irqlog_rip[i]);
	kprintf("irqlog: %lu kernel-mode interrupts, %u distinct%s\n", irqlog_kernel, irqlog_distinct,
		irqlog_unkept ? " (more not kept)" : "");
	irq_restore(f);
}

void irq_dispatch(unsigned irq, struct trapframe *tf)
{
	if (!(tf->cs & 3))
		irqlog_note(tf->rip);
	if ((irq == 7 || irq == 15) && !in_service(irq)) {
		if (irq == 15)
			outb(PIC1_CMD, PIC_EOI); /* the master did see the cascade */
		return;
	}
	if (handlers[irq])
		handlers[irq]();
	if (irq >= 8)
		outb(PIC2_CMD, PIC_EOI);
	outb(PIC1_CMD, PIC_EOI);
}
