/* mm.c: corpus: page-table and device-register accesses, annotated by hand through <pvsites.h> */
#include <pvsites.h>
#include "corpus.h"

void set_pte(uint64_t *ptep, uint64_t pte) { pv_pte_write(ptep, pte); }
uint64_t get_pte(const uint64_t *ptep) { return pv_pte_read(ptep); }

uint32_t nic_read_isr(const volatile void *regs) { return pv_mmio_read32((const volatile char *)regs + 0x10); }
void nic_write_cr(volatile void *regs, uint32_t v) { pv_mmio_write32(regs, v); }
uint8_t mmio_rd8(const volatile void *a) { return pv_mmio_read8(a); }
void mmio_wr16(volatile void *a, uint16_t v) { pv_mmio_write16(a, v); }
uint64_t mmio_rd64(const volatile void *a) { return pv_mmio_read64(a); }
