/* mm.c: physical page allocator and run-time page-table building through pv_pte_write */
#include <pvsites.h>

#include "arch.h"
#include "guest.h"

/*
 * Pages come from a bump allocator between the end of the image and the
 * top of the RAM region the kernel was loaded into (capped at the 1 GiB
 * identity map, so every page is reachable at its physical address).
 * Nothing is ever freed: the kernel maps its user task once.
 *
 * Every store into a live page table goes through pv_pte_write and every
 * load through pv_pte_read: those are the manual sites a shadow-paging or
 * para-virtual personality needs to see.  Zeroing a fresh page before it
 * is linked into the hierarchy is an ordinary store.
 */

extern char __image_end[];

static uint64_t next_free, ram_limit;

void mm_init(uint64_t ram_top)
{
	next_free = ((uint64_t)__image_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	ram_limit = ram_top < IDENTITY_LIMIT ? ram_top & ~(PAGE_SIZE - 1) : IDENTITY_LIMIT;
	if (ram_limit <= next_free)
		panic("mm: no RAM above the kernel image");
}

uint64_t mm_free_bytes(void) { return ram_limit - next_free; }

uint64_t alloc_page(void)
{
	if (next_free + PAGE_SIZE > ram_limit)
		panic("mm: out of memory");
	uint64_t pa = next_free;
	next_free += PAGE_SIZE;
	kmemset((void *)pa, 0, PAGE_SIZE);
	return pa;
}

/* The table one level down from entry `e`, allocating it if absent. */
static uint64_t *next_level(uint64_t *e, uint64_t flags)
{
	uint64_t v = pv_pte_read(e);
	if (!(v & PTE_P)) {
		v = alloc_page() | PTE_P | PTE_W | (flags & PTE_U);
		pv_pte_write(e, v);
	} else if (v & PTE_PS) {
		panic("mm: a large page is in the way of a 4 KiB mapping");
	} else if ((flags & PTE_U) && !(v & PTE_U)) {
		/* user pages need U at every level; the leaves keep the kernel's safe */
		v |= PTE_U;
		pv_pte_write(e, v);
	}
	return (uint64_t *)(v & PTE_ADDR);
}

void map_page(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *t = (uint64_t *)(read_cr3() & PTE_ADDR);
	for (int shift = 39; shift > 12; shift -= 9)
		t = next_level(&t[(va >> shift) & 511], flags);
	pv_pte_write(&t[(va >> 12) & 511], (pa & PTE_ADDR) | flags | PTE_P);
	invlpg((const void *)va);
}

/*
 * The fill region (fill=SIZE): 2 MiB pages, and not zeroed.  Zeroing and
 * mapping hundreds of MiB 4 KiB at a time runs in ring 0, which the kvm-pvm
 * host emulates at about 1 us per instruction: minutes.  With large pages it
 * is one entry per 2 MiB, and the ring-3 task writes every word before it
 * reads one, so what the pages held before does not matter.
 */
uint64_t alloc_large_unzeroed(uint64_t bytes)
{
	uint64_t pa = (next_free + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1);
	bytes = (bytes + LARGE_PAGE_SIZE - 1) & ~(LARGE_PAGE_SIZE - 1);
	if (pa + bytes > ram_limit || pa + bytes < pa)
		panic("mm: out of memory for the fill region");
	next_free = pa + bytes;
	return pa;
}

void map_large_page(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *t = (uint64_t *)(read_cr3() & PTE_ADDR);
	for (int shift = 39; shift > 21; shift -= 9)
		t = next_level(&t[(va >> shift) & 511], flags);
	if (pv_pte_read(&t[(va >> 21) & 511]) & PTE_P)
		panic("mm: a 2 MiB mapping over one already there");
	pv_pte_write(&t[(va >> 21) & 511], (pa & PTE_ADDR) | flags | PTE_PS | PTE_P);
	invlpg((const void *)va);
}

/* Device registers: a supervisor, uncached window above the user range. */
void *map_mmio(uint64_t pa, uint64_t len)
{
	static uint64_t window = MMIO_WINDOW;
	uint64_t off = pa & (PAGE_SIZE - 1), va = window + off;
	for (uint64_t p = 0; p < off + len; p += PAGE_SIZE)
		map_page(window + p, (pa & ~(PAGE_SIZE - 1)) + p, PTE_W | PTE_PCD | PTE_PWT);
	window += (off + len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	return (void *)va;
}
