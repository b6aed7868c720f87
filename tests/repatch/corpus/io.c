/* io.c: corpus: port I/O in every form a driver uses (immediate and %dx ports, string I/O) */
#include "corpus.h"

uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(port)); return v; }
uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(port)); return v; }
uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(port)); return v; }
void outb(uint8_t v, uint16_t port) { __asm__ volatile("outb %0,%1" : : "a"(v), "Nd"(port)); }
void outw(uint16_t v, uint16_t port) { __asm__ volatile("outw %0,%1" : : "a"(v), "Nd"(port)); }
void outl(uint32_t v, uint16_t port) { __asm__ volatile("outl %0,%1" : : "a"(v), "Nd"(port)); }

/* Constant ports become immediates: out %al,$0x80 is the classic I/O delay. */
void io_delay(void) { __asm__ volatile("outb %%al,$0x80" : : : "memory"); }
uint8_t cmos_read(uint8_t reg)
{
	uint8_t v;
	__asm__ volatile("outb %1,$0x70\n\tinb $0x71,%0" : "=a"(v) : "a"(reg));
	return v;
}

void insw(uint16_t port, void *buf, unsigned long count)
{
	__asm__ volatile("rep; insw" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
}

void outsb(uint16_t port, const void *buf, unsigned long count)
{
	__asm__ volatile("rep outsb" : "+S"(buf), "+c"(count) : "d"(port));
}

void insl_one(uint16_t port, void *buf)
{
	__asm__ volatile("insl" : "+D"(buf) : "d"(port) : "memory");
}

void outsl_one(uint16_t port, const void *buf)
{
	__asm__ volatile("outsl" : "+S"(buf) : "d"(port));
}
