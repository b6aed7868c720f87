/* desc.c: corpus: descriptor tables, task register, segment registers */
#include "corpus.h"

static struct desc_ptr gdt_descr, idt_descr;

void load_gdt(const struct desc_ptr *d) { __asm__ volatile("lgdt %0" : : "m"(*d)); }
void load_idt(const struct desc_ptr *d) { __asm__ volatile("lidt %0" : : "m"(*d)); }
void store_gdt(struct desc_ptr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
void store_idt(struct desc_ptr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }
/* Globals make the operand rip-relative: the record's copy must be moved. */
void load_static_gdt(void) { __asm__ volatile("lgdt %0" : : "m"(gdt_descr)); }
void load_static_idt(void) { __asm__ volatile("lidt %0" : : "m"(idt_descr)); }
void save_static_idt(void) { __asm__ volatile("sidt %0" : "=m"(idt_descr)); }

void load_tr(unsigned short sel) { __asm__ volatile("ltr %0" : : "r"(sel)); }
void load_ldt(unsigned short sel) { __asm__ volatile("lldt %0" : : "r"(sel)); }
unsigned short store_tr(void) { unsigned short v; __asm__ volatile("str %0" : "=r"(v)); return v; }
unsigned short store_ldt(void) { unsigned short v; __asm__ volatile("sldt %0" : "=r"(v)); return v; }

void load_ds(unsigned short sel) { __asm__ volatile("movw %0,%%ds" : : "r"(sel)); }
void load_es(unsigned short sel) { __asm__ volatile("mov %0,%%es" : : "rm"(sel)); }
void load_ss(unsigned short sel) { __asm__ volatile("movl %k0,%%ss" : : "r"((unsigned)sel)); }
void load_fs(unsigned short sel) { __asm__ volatile("mov %0,%%fs" : : "r"(sel)); }
void load_gs_index(unsigned short sel) { __asm__ volatile("movw %0,%%gs" : : "r"(sel)); }
unsigned short read_cs(void) { unsigned short v; __asm__ volatile("mov %%cs,%0" : "=r"(v)); return v; }
unsigned short read_ds(void) { unsigned short v; __asm__ volatile("movw %%ds,%0" : "=rm"(v)); return v; }
void push_pop_fs(void) { __asm__ volatile("pushq %%fs\n\tpopq %%fs" ::: "memory"); }
void push_pop_gs(void) { __asm__ volatile("push %%gs; pop %%gs" ::: "memory"); }

struct farptr { uint32_t off; uint16_t sel; } __attribute__((packed));
void far_loads(struct farptr *p)
{
	__asm__ volatile("lssl %0, %%eax\n\tlfsl %0, %%eax\n\tlgsl %0, %%eax" : : "m"(*p) : "eax", "memory");
}

/* Reload CS through a far return, as boot code does after lgdt. */
void reload_cs(unsigned long sel)
{
	__asm__ volatile("pushq %0\n\tleaq 1f(%%rip),%%rax\n\tpushq %%rax\n\tlretq\n1:"
			 : : "r"(sel) : "rax", "memory");
}

void far_jump_indirect(struct farptr *p) { __asm__ volatile("ljmp *%0" : : "m"(*p)); }
