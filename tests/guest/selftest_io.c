/* selftest_io.c: selftest=1 checks of port I/O: PIC masks, UART scratch, PIT read-back, port 0x61, string I/O, PCI config */
#include "arch.h"
#include "guest.h"
#include "selftest.h"

/*
 * Only registers whose read-back is defined by the write are used, so the
 * values are the same on any PC model (pvhost's, the kvm runtime's, QEMU's):
 * the 8259 masks, the 16550 scratch register, the 8254's read-back status
 * (mode bits only: OUT and "null count" depend on time), the gate and
 * speaker bits of port 0x61, and the host bridge's ID through 0xcf8/0xcfc.
 * Every register is restored.  Interrupts are off throughout.
 */

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1
#define PIT_CH0	  0x40
#define PIT_CMD	  0x43
#define PORT_B	  0x61
#define UART_SCR  0x3ff
#define PCI_ADDR  0xcf8
#define PCI_DATA  0xcfc
#define PIT_DIV	  ((1193182u + TIMER_HZ / 2) / TIMER_HZ) /* what pit_init programmed */

static void check_pic(void)
{
	uint8_t m1 = inb(PIC1_DATA), m2 = inb(PIC2_DATA);
	outb(PIC1_DATA, 0xa5);
	uint8_t r1 = inb(PIC1_DATA);
	outb(PIC2_DATA, 0x5a);
	uint8_t r2 = inb(PIC2_DATA);
	outb(PIC1_DATA, m1);
	outb(PIC2_DATA, m2);
	int ok = r1 == 0xa5 && r2 == 0x5a && inb(PIC1_DATA) == m1 && inb(PIC2_DATA) == m2;
	st_check("in/out", ok, "pic-imr=0x%x,0x%x", r1, r2);
}

static void check_uart(void)
{
	uint8_t s = inb(UART_SCR);
	outb(UART_SCR, 0x5a);
	uint8_t r1 = inb(UART_SCR);
	outb(UART_SCR, 0xa5);
	uint8_t r2 = inb(UART_SCR);
	outb(UART_SCR, s);
	st_check("in/out", r1 == 0x5a && r2 == 0xa5, "uart-scr=0x%x,0x%x", r1, r2);
}

/*
 * Read-back command for counter 0, status only (0xe2): access lobyte/hibyte
 * and mode 2 as pit_init programmed them (0x34 under the mask).  Then a
 * counter latch: the count must lie in 1..divisor.
 */
static void check_pit(void)
{
	outb(PIT_CMD, 0xe2);
	uint8_t status = inb(PIT_CH0) & 0x3f;
	outb(PIT_CMD, 0x00);
	uint8_t lo = inb(PIT_CH0), hi = inb(PIT_CH0);
	unsigned count = lo | hi << 8;
	uint64_t in_range = count >= 1 && count <= PIT_DIV;
	st_check("in/out", status == 0x34 && in_range, "pit-readback-status=0x%x count-in-range=0x%lx",
		 status, in_range);
}

/* Port B: bit 0 gates PIT counter 2, bit 1 the speaker; both read back. */
static void check_port_b(void)
{
	uint8_t saved = inb(PORT_B) & 0x0f;
	outb(PORT_B, 0x00);
	uint8_t r0 = inb(PORT_B) & 0x03;
	outb(PORT_B, 0x01);
	uint8_t r1 = inb(PORT_B) & 0x03;
	outb(PORT_B, saved);
	st_check("in/out", r0 == 0 && r1 == 1, "port61-gate2=0x%x,0x%x", r0, r1);
}

/*
 * Strings: outsb then insb on the UART scratch register, once plain and
 * once with rep (RCX must count down to 0 and RSI/RDI move forward); rep
 * insl of the host bridge's ID register twice, against a plain inl.
 */
static void check_string_io(void)
{
	static const uint8_t pattern[4] = {0x11, 0x22, 0x33, 0x44};
	static const uint8_t one = 0x55;
	uint8_t back[4] = {0, 0, 0, 0}, single = 0;
	uint32_t ids[2] = {0, 0};
	uint8_t saved = inb(UART_SCR);

	const void *src = &one;
	void *dst = &single;
	__asm__ volatile("outsb" : "+S"(src) : "d"(UART_SCR) : "memory");
	__asm__ volatile("insb" : "+D"(dst) : "d"(UART_SCR) : "memory");
	int ok = single == 0x55 && src == &one + 1 && dst == &single + 1;

	uint64_t n = 4;
	src = pattern;
	__asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(UART_SCR) : "memory");
	ok &= n == 0 && src == pattern + 4;
	uint8_t last = inb(UART_SCR);
	n = 4;
	dst = back;
	__asm__ volatile("rep insb" : "+D"(dst), "+c"(n) : "d"(UART_SCR) : "memory");
	ok &= n == 0 && dst == back + 4;
	uint32_t word = back[0] | back[1] << 8 | back[2] << 16 | (uint32_t)back[3] << 24;
	ok &= last == 0x44 && word == 0x44444444u;
	outb(UART_SCR, saved);

	outl(PCI_ADDR, 0x80000000u); /* 00:00.0, register 0: vendor and device */
	n = 2;
	dst = ids;
	__asm__ volatile("rep insl" : "+D"(dst), "+c"(n) : "d"(PCI_DATA) : "memory");
	uint32_t id = inl(PCI_DATA);
	ok &= n == 0 && ids[0] == id && ids[1] == id && id != 0xffffffffu;

	st_check("ins/outs", ok, "uart-scr-outsb=0x%x insb=0x%x rep-outsb-last=0x%x rep-insb=0x%x pci-id=0x%x,0x%x",
		 one, single, last, word, ids[0], ids[1]);
}

void selftest_io(void)
{
	check_pic();
	check_uart();
	check_pit();
	check_port_b();
	check_string_io();
}
