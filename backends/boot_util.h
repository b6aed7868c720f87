/* boot_util.h: small helpers shared by the guest loaders (file slurping, little-endian stores) */
#ifndef BOOT_UTIL_H
#define BOOT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct boot_file {
	uint8_t *data;
	size_t size;
};

/* Whole file into memory (loaders parse headers anywhere in it). */
int boot_file_read(struct vm *vm, const char *path, struct boot_file *f);
void boot_file_free(struct boot_file *f);

/* boot_vmlinux.c: if a bzImage payload is an ELF or xz-compressed ELF, load
 * its segments at their physical addresses and return 1 with the entry
 * and the end of the loaded image; 0 if the format is not one we unpack
 * (the caller then lets the kernel decompress itself); -1 on error. */
int boot_vmlinux_load(struct vm *vm, const char *name, const uint8_t *payload, size_t len,
		      uint64_t *entry, uint64_t *end);

static inline void boot_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void boot_put32(uint8_t *p, uint32_t v)
{
	boot_put16(p, (uint16_t)v);
	boot_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void boot_put64(uint8_t *p, uint64_t v)
{
	boot_put32(p, (uint32_t)v);
	boot_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t boot_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t boot_get32(const uint8_t *p)
{
	return (uint32_t)boot_get16(p) | (uint32_t)boot_get16(p + 2) << 16;
}

#endif
