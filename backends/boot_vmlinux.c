/* boot_vmlinux.c: unpack the vmlinux ELF inside a bzImage on the host and load its segments */
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#include "boot_util.h"

/*
 * Why: on the kvm-pvm host, guest ring-0 code runs through an instruction
 * emulator at about 1 us per instruction, and a bzImage's decompressor
 * spends minutes (hundreds of millions of instructions) unpacking an xz
 * kernel.  The host does the same work in well under a second, so we do
 * it here and enter the kernel proper at its 64-bit entry, as the
 * decompressor would after extract_kernel().
 *
 * The payload (setup header fields payload_offset/payload_length, from
 * the start of the protected-mode part) is the compressed vmlinux with
 * its uncompressed size appended as a 32-bit little-endian word (the
 * kernel build's size_append).  We load the ELF's PT_LOAD segments at
 * p_paddr, which is where a non-relocated kernel runs: the kernel proper
 * works out its own physical offset, so no relocation records are needed
 * as long as we do not move it (nokaslr is implied).
 */
#define VMLINUX_MAX (512u << 20)

static const uint8_t xz_magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)boot_get32(p) | (uint64_t)boot_get32(p + 4) << 32;
}

static int unxz(struct vm *vm, const char *name, const uint8_t *in, size_t in_len,
		uint8_t **out, size_t *out_len)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;
	size_t want;

	if (in_len < 4 + sizeof xz_magic)
		return vm__fail(vm, "%s: xz payload too short", name);
	want = boot_get32(in + in_len - 4);
	if (want == 0 || want > VMLINUX_MAX)
		return vm__fail(vm, "%s: payload claims %zu bytes uncompressed", name, want);
	*out = malloc(want);
	if (!*out)
		return vm__fail(vm, "%s: out of memory for the kernel", name);
	/* One stream only: the size word after it is not xz data. */
	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
		free(*out);
		return vm__fail(vm, "%s: liblzma init failed", name);
	}
	s.next_in = in;
	s.avail_in = in_len - 4;
	s.next_out = *out;
	s.avail_out = want;
	r = lzma_code(&s, LZMA_FINISH);
	*out_len = want - s.avail_out;
	lzma_end(&s);
	if (r != LZMA_STREAM_END || *out_len != want) {
		free(*out);
		return vm__fail(vm, "%s: xz payload does not decode (liblzma %d, %zu of %zu bytes)",
				name, (int)r, *out_len, want);
	}
	return 0;
}

/* PT_LOAD segments at their physical addresses; everything bounds-checked
 * against the file and guest RAM, since the image is untrusted input. */
static int load_elf(struct vm *vm, const char *name, const uint8_t *e, size_t len,
		    uint64_t *entry, uint64_t *end)
{
	uint64_t phoff, i, hi = 0;
	unsigned phnum, phentsize;

	if (len < 64 || memcmp(e, elf_magic, 4) != 0 || e[4] != 2 /* ELFCLASS64 */ ||
	    e[5] != 1 /* little-endian */ || boot_get16(e + 18) != 62 /* x86-64 */)
		return vm__fail(vm, "%s: payload is not an x86-64 ELF", name);
	phoff = get64(e + 32);
	phentsize = boot_get16(e + 54);
	phnum = boot_get16(e + 56);
	if (phentsize < 56 || phoff > len || (uint64_t)phnum * phentsize > len - phoff)
		return vm__fail(vm, "%s: vmlinux program headers out of bounds", name);
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = e + phoff + i * phentsize;
		uint64_t off = get64(ph + 8), pa = get64(ph + 24);
		uint64_t fsz = get64(ph + 32), msz = get64(ph + 40);

		if (boot_get32(ph) != 1 /* PT_LOAD */)
			continue;
		if (fsz > msz || off > len || fsz > len - off || !vm__gpa(vm, pa, msz))
			return vm__fail(vm, "%s: vmlinux segment %llu (%#llx+%#llx) does not fit in "
					"%llu MiB of RAM", name, (unsigned long long)i,
					(unsigned long long)pa, (unsigned long long)msz,
					(unsigned long long)(vm->mem_size >> 20));
		if (vm__write(vm, pa, e + off, fsz) < 0)
			return -1;
		/* The tail (bss) may hold loader data from an earlier boot. */
		memset((uint8_t *)vm__gpa(vm, pa, msz) + fsz, 0, msz - fsz);
		vm__mark_dirty(vm, pa, msz);
		if (pa + msz > hi)
			hi = pa + msz;
	}
	if (!hi)
		return vm__fail(vm, "%s: vmlinux has no PT_LOAD segment", name);
	*entry = get64(e + 24);
	*end = hi;
	return 0;
}

int boot_vmlinux_load(struct vm *vm, const char *name, const uint8_t *payload, size_t len,
		      uint64_t *entry, uint64_t *end)
{
	uint8_t *elf = NULL;
	size_t elf_len = 0;
	int rc;

	if (len >= 4 && memcmp(payload, elf_magic, 4) == 0)
		return load_elf(vm, name, payload, len, entry, end) < 0 ? -1 : 1;
	if (len < sizeof xz_magic || memcmp(payload, xz_magic, sizeof xz_magic) != 0)
		return 0; /* gzip, zstd, ...: the kernel's own decompressor does it */
	if (unxz(vm, name, payload, len, &elf, &elf_len) < 0)
		return -1;
	rc = load_elf(vm, name, elf, elf_len, entry, end);
	free(elf);
	return rc < 0 ? -1 : 1;
}
