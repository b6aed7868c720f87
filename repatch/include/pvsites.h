/* pvsites.h: manual site annotations for page-table and device-register accesses in guest code */
#ifndef PVSITES_H
#define PVSITES_H

/*
 * Privileged instructions are found by the annotating assembler on its own;
 * plain memory accesses are not, because nothing in a mov says that it
 * touches a page table or a device.  These helpers mark such an access:
 * each is one mov preceded by a "# pvsite: KIND" comment, which the
 * wrapper (gcc -B<builddir>/repatch/as, or pvcc) turns into a site of that
 * kind.  Without the wrapper the marker is an ordinary assembler comment
 * and the code is the same single mov, so guests build either way.
 *
 * Only the value register and the memory operand are left to the
 * compiler: the "r"/"q" constraints keep immediates out, since a site
 * records the register that carries the value.
 */

#ifdef __ASSEMBLER__

/* Bracket a region of a .S file that the wrapper must leave alone. */
#define PVSITES_OFF .pvsites_noannotate
#define PVSITES_ON  .pvsites_annotate

#else /* !__ASSEMBLER__ */

#include <stdint.h>

/*
 * One marked access.  The marker and the mov share one asm statement so
 * the compiler cannot schedule anything between them.
 */
#define PVSITE_STORE_(kind, sfx, cons, ptr, val)                                   \
	__asm__ __volatile__("# pvsite: " kind "\n\tmov" sfx " %1, %0"            \
			     : "=m"(*(ptr))                                       \
			     : cons(val)                                          \
			     : "memory")
#define PVSITE_LOAD_(kind, sfx, ptr, res)                                          \
	__asm__ __volatile__("# pvsite: " kind "\n\tmov" sfx " %1, %0"            \
			     : "=r"(res)                                          \
			     : "m"(*(ptr))                                        \
			     : "memory")

/* --- device registers (MMIO) ------------------------------------------------ */

static inline uint8_t pv_mmio_read8(const volatile void *a)
{
	uint8_t v;
	__asm__ __volatile__("# pvsite: mmio-read\n\tmovb %1, %0"
			     : "=q"(v)
			     : "m"(*(const volatile uint8_t *)a)
			     : "memory");
	return v;
}

static inline uint16_t pv_mmio_read16(const volatile void *a)
{
	uint16_t v;
	PVSITE_LOAD_("mmio-read", "w", (const volatile uint16_t *)a, v);
	return v;
}

static inline uint32_t pv_mmio_read32(const volatile void *a)
{
	uint32_t v;
	PVSITE_LOAD_("mmio-read", "l", (const volatile uint32_t *)a, v);
	return v;
}

static inline void pv_mmio_write8(volatile void *a, uint8_t v)
{
	PVSITE_STORE_("mmio-write", "b", "q", (volatile uint8_t *)a, v);
}

static inline void pv_mmio_write16(volatile void *a, uint16_t v)
{
	PVSITE_STORE_("mmio-write", "w", "r", (volatile uint16_t *)a, v);
}

static inline void pv_mmio_write32(volatile void *a, uint32_t v)
{
	PVSITE_STORE_("mmio-write", "l", "r", (volatile uint32_t *)a, v);
}

#ifdef __x86_64__
/* A 64-bit access is a single instruction only in long mode. */
static inline uint64_t pv_mmio_read64(const volatile void *a)
{
	uint64_t v;
	PVSITE_LOAD_("mmio-read", "q", (const volatile uint64_t *)a, v);
	return v;
}

static inline void pv_mmio_write64(volatile void *a, uint64_t v)
{
	PVSITE_STORE_("mmio-write", "q", "r", (volatile uint64_t *)a, v);
}
#endif

/* --- page-table entries --------------------------------------------------------- */

#ifdef __x86_64__
static inline void pv_pte_write(uint64_t *p, uint64_t v)
{
	PVSITE_STORE_("pte-write", "q", "r", p, v);
}

static inline uint64_t pv_pte_read(const uint64_t *p)
{
	uint64_t v;
	PVSITE_LOAD_("pte-read", "q", p, v);
	return v;
}
#endif

/* 32-bit entries (non-PAE paging); also usable from 32-bit guests. */
static inline void pv_pte_write32(uint32_t *p, uint32_t v)
{
	PVSITE_STORE_("pte-write", "l", "r", p, v);
}

static inline uint32_t pv_pte_read32(const uint32_t *p)
{
	uint32_t v;
	PVSITE_LOAD_("pte-read", "l", p, v);
	return v;
}

#endif /* __ASSEMBLER__ */

#endif /* PVSITES_H */
