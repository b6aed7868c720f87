/* console.c: the 16550 UART on COM1 as console, and a small kprintf */
#include <stdarg.h>

#include "arch.h"
#include "guest.h"

#define COM1	 0x3f8
#define UART_THR 0 /* transmit holding (DLAB=0) */
#define UART_DLL 0 /* divisor low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20
#define LCR_DLAB 0x80
#define LCR_8N1	 0x03

/* gcc may turn loops into calls to these even with -ffreestanding. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	/* word stores where possible: alloc_page() clears the whole workload buffer */
	uint64_t w = 0x0101010101010101ull * (unsigned char)c;
	while (n && ((uintptr_t)p & 7))
		*p++ = (unsigned char)c, n--;
	for (; n >= 8; n -= 8, p += 8)
		*(uint64_t *)(void *)p = w;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

void *kmemset(void *d, int c, size_t n) { return memset(d, c, n); }
void *kmemcpy(void *d, const void *s, size_t n) { return memcpy(d, s, n); }

void console_init(void)
{
	outb(COM1 + UART_IER, 0);	  /* polled: no UART interrupts */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 1);	  /* 115200 baud */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, LCR_8N1);
	outb(COM1 + UART_FCR, 0xc7);	  /* FIFOs on and cleared */
	outb(COM1 + UART_MCR, 0x03);	  /* DTR, RTS */
}

static void uart_tx(char c)
{
	/* A missing UART reads 0xff: do not spin forever on it. */
	for (unsigned spins = 0; spins < 100000; spins++)
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
	outb(COM1 + UART_THR, (uint8_t)c);
}

void console_putc(char c) { uart_tx(c); }

/*
 * Whole lines stay together even when an interrupt handler or another CPU
 * prints: interrupts off against the first, a spinlock against the second.
 * Nobody takes the lock with interrupts on, so a handler never spins on a
 * lock its own CPU holds.
 */
static uint32_t console_lock;

void console_write(const char *s, size_t n)
{
	uint64_t f = irq_save();
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&console_lock, __ATOMIC_RELAXED))
			cpu_relax();
	while (n--)
		uart_tx(*s++);
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
	irq_restore(f);
}

/* A line buffer: kprintf formats into it and writes it in one go. */
struct out {
	char buf[256];
	size_t n;
};

static void out_c(struct out *o, char c)
{
	if (o->n == sizeof o->buf) {
		console_write(o->buf, o->n);
		o->n = 0;
	}
	o->buf[o->n++] = c;
}

static void out_num(struct out *o, unsigned long long v, unsigned base, int neg, int width,
		    char pad)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width-- > n)
		out_c(o, pad);
	while (n)
		out_c(o, tmp[--n]);
}

/* Enough of printf for this kernel: %s %c %d %u %x %p, 0 and width, l/ll/z. */
void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

void kvprintf(const char *fmt, va_list ap)
{
	struct out o = {.n = 0};
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			out_c(&o, *p);
			continue;
		}
		p++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*p == '0')
			pad = '0', p++;
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		while (*p == 'l' || *p == 'z')
			lng++, p++;
		switch (*p) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len = 0;
			for (const char *q = s; *q; q++)
				len++;
			while (width-- > len)
				out_c(&o, ' ');
			while (*s)
				out_c(&o, *s++);
			break;
		}
		case 'c':
			out_c(&o, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			out_num(&o, v < 0 ? -(unsigned long long)v : (unsigned long long)v, 10, v < 0,
				width, pad);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng ? va_arg(ap, unsigned long long)
						   : va_arg(ap, unsigned int);
			out_num(&o, v, *p == 'x' ? 16 : 10, 0, width, pad);
			break;
		}
		case 'p':
			out_c(&o, '0');
			out_c(&o, 'x');
			out_num(&o, (uintptr_t)va_arg(ap, void *), 16, 0, 0, ' ');
			break;
		case '%':
			out_c(&o, '%');
			break;
		default: /* unknown: print it as written */
			out_c(&o, '%');
			if (!*p)
				p--;
			else
				out_c(&o, *p);
		}
	}
	console_write(o.buf, o.n);
}
