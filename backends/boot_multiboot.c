/* boot_multiboot.c: load an ELF (or a.out-kludge) guest image and enter it as a Multiboot v1 loader would */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "boot_util.h"
#include "elfimage.h"
#include "rt_abi.h"

/*
 * The same image must boot under `qemu-system-x86_64 -kernel IMAGE`, so we
 * do what QEMU's and GRUB's Multiboot loaders do: find the header in the
 * first 8 KiB, load the a.out-kludge ranges if flag 16 is set (QEMU only
 * accepts an ELF64 image that way), else the ELF PT_LOAD segments at their
 * physical addresses; enter at the entry in 32-bit protected mode, flat
 * segments, paging off, EAX = 0x2BADB002, EBX = the info block.
 *
 * Low memory used by the loader (the image must stay clear of it):
 *   0x7000..0x7fff  initial stack (ESP = 0x7ff0; Multiboot leaves it
 *                   undefined, this is only a courtesy)
 *   0x8000          struct multiboot_info
 *   0x8100          memory map
 *   0x8400..0x9bff  command line
 *
 * The memory map reports the runtime window (rt_abi.h) as reserved under
 * every personality, so a guest booted `native` can later have a runtime
 * installed beneath it; RAM never overlaps it.  A native guest with more
 * RAM than fits below the window keeps its one RAM range and gets no
 * window entry (it can never run under a runtime).
 */
#define MB_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_SEARCH 8192
#define MB_FLAG_AOUT (1u << 16)
#define MB_INFO_MEM (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)

#define LOW_BASE 0x7000u
#define INFO_ADDR 0x8000u
#define MMAP_ADDR 0x8100u
#define CMDLINE_ADDR 0x8400u
#define LOW_END 0x9c00u

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

static int place(struct vm *vm, uint64_t paddr, const uint8_t *src, uint64_t filesz,
		 uint64_t memsz)
{
	uint8_t *dst;

	if (memsz < filesz)
		return vm__fail(vm, "segment at %#llx: memsz < filesz", (unsigned long long)paddr);
	if (paddr < LOW_END && paddr + memsz > LOW_BASE)
		return vm__fail(vm, "segment at %#llx overlaps the loader's low memory",
				(unsigned long long)paddr);
	dst = vm__gpa(vm, paddr, memsz);
	if (!dst)
		return vm__fail(vm, "segment %#llx+%#llx is outside guest RAM",
				(unsigned long long)paddr, (unsigned long long)memsz);
	memcpy(dst, src, filesz);
	memset(dst + filesz, 0, memsz - filesz);
	vm__mark_dirty(vm, paddr, memsz);
	return 0;
}

static int load_aout(struct vm *vm, const struct boot_file *f, size_t hoff,
		     const struct mb_header *h, uint32_t *entry)
{
	uint64_t start, filesz, memsz;

	if (h->header_addr < h->load_addr || h->header_addr - h->load_addr > hoff)
		return vm__fail(vm, "multiboot header: load_addr after header_addr");
	start = hoff - (h->header_addr - h->load_addr);
	filesz = h->load_end_addr ? (uint64_t)h->load_end_addr - h->load_addr : f->size - start;
	if (h->load_end_addr && h->load_end_addr < h->load_addr)
		return vm__fail(vm, "multiboot header: load_end_addr before load_addr");
	if (filesz > f->size - start)
		return vm__fail(vm, "multiboot header: image shorter than load_end_addr says");
	memsz = filesz;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < h->load_addr + filesz)
			return vm__fail(vm, "multiboot header: bss_end_addr inside the image");
		memsz = (uint64_t)h->bss_end_addr - h->load_addr;
	}
	*entry = h->entry_addr;
	return place(vm, h->load_addr, f->data + start, filesz, memsz);
}

static void find_sites(struct vm *vm, const char *path);

static int load_elf(struct vm *vm, const struct boot_file *f, uint32_t *entry)
{
	const unsigned char *id = f->data;
	uint64_t phoff, e_entry, off, filesz, memsz, paddr;
	unsigned phnum, phentsize, i, type, is64;

	if (f->size < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0)
		return vm__fail(vm, "not an ELF file and no a.out kludge in its multiboot header");
	is64 = id[EI_CLASS] == ELFCLASS64;
	if (is64 ? f->size < sizeof(Elf64_Ehdr) : f->size < sizeof(Elf32_Ehdr))
		return vm__fail(vm, "ELF header truncated");
	if (is64) {
		const Elf64_Ehdr *e = (const void *)f->data;

		if (e->e_machine != EM_X86_64)
			return vm__fail(vm, "ELF64 image is not x86-64");
		phoff = e->e_phoff;
		phnum = e->e_phnum;
		phentsize = e->e_phentsize;
		e_entry = e->e_entry;
	} else {
		const Elf32_Ehdr *e = (const void *)f->data;

		if (e->e_machine != EM_386)
			return vm__fail(vm, "ELF32 image is not i386");
		phoff = e->e_phoff;
		phnum = e->e_phnum;
		phentsize = e->e_phentsize;
		e_entry = e->e_entry;
	}
	if (phentsize != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    phoff > f->size || (uint64_t)phnum * phentsize > f->size - phoff)
		return vm__fail(vm, "ELF program headers out of bounds");
	if (e_entry > UINT32_MAX)
		return vm__fail(vm, "ELF entry %#llx is not a 32-bit physical address",
				(unsigned long long)e_entry);
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = f->data + phoff + (uint64_t)i * phentsize;

		if (is64) {
			const Elf64_Phdr *p = (const void *)ph;

			type = p->p_type;
			off = p->p_offset;
			filesz = p->p_filesz;
			memsz = p->p_memsz;
			paddr = p->p_paddr;
		} else {
			const Elf32_Phdr *p = (const void *)ph;

			type = p->p_type;
			off = p->p_offset;
			filesz = p->p_filesz;
			memsz = p->p_memsz;
			paddr = p->p_paddr;
		}
		if (type != PT_LOAD || memsz == 0)
			continue;
		if (off > f->size || filesz > f->size - off)
			return vm__fail(vm, "ELF segment %u lies outside the file", i);
		if (place(vm, paddr, f->data + off, filesz, memsz) < 0)
			return -1;
	}
	*entry = (uint32_t)e_entry;
	return 0;
}

static const struct mb_header *mb_find(const struct boot_file *f, size_t *hoff)
{
	size_t off, lim = f->size < MB_SEARCH ? f->size : MB_SEARCH;

	for (off = 0; off + sizeof(struct mb_header) <= lim; off += 4) {
		const struct mb_header *h = (const void *)(f->data + off);

		if (h->magic == MB_MAGIC && (uint32_t)(h->magic + h->flags + h->checksum) == 0) {
			*hoff = off;
			return h;
		}
	}
	return NULL;
}

/* The info block, memory map and command line in low memory. */
static int mb_info(struct vm *vm, const char *cmdline)
{
	uint8_t info[120];
	uint8_t mmap[5 * 24];
	size_t len = strlen(cmdline) + 1;
	uint64_t upper = vm->mem_size - 0x100000;
	struct { uint64_t base, len; uint32_t type; } map[5] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x400, 2 },
		{ 0xf0000, 0x10000, 2 },
		{ 0x100000, upper, 1 },
		{ RT_WINDOW_BASE, RT_WINDOW_SIZE, 2 },
	};
	unsigned i, n = vm->mem_size <= RT_WINDOW_BASE ? 5 : 4;

	if (len > LOW_END - CMDLINE_ADDR)
		return vm__fail(vm, "guest command line longer than %u bytes",
				LOW_END - CMDLINE_ADDR - 1);
	memset(info, 0, sizeof info);
	boot_put32(info + 0, MB_INFO_MEM | MB_INFO_CMDLINE | MB_INFO_MMAP);
	boot_put32(info + 4, 639);
	boot_put32(info + 8, (uint32_t)(upper / 1024 > UINT32_MAX ? UINT32_MAX : upper / 1024));
	boot_put32(info + 16, CMDLINE_ADDR);
	boot_put32(info + 44, n * 24);
	boot_put32(info + 48, MMAP_ADDR);
	for (i = 0; i < n; i++) {
		/* Each entry: size (of the rest, 20), base, length, type. */
		boot_put32(mmap + i * 24, 20);
		boot_put64(mmap + i * 24 + 4, map[i].base);
		boot_put64(mmap + i * 24 + 12, map[i].len);
		boot_put32(mmap + i * 24 + 20, map[i].type);
	}
	if (vm__write(vm, INFO_ADDR, info, sizeof info) < 0 ||
	    vm__write(vm, MMAP_ADDR, mmap, n * 24) < 0 ||
	    vm__write(vm, CMDLINE_ADDR, cmdline, len) < 0)
		return -1;
	return 0;
}

int vm__place_multiboot(struct vm *vm, const char *path, const char *cmdline,
			struct vm_multiboot *mb)
{
	struct boot_file f;
	const struct mb_header *h;
	uint32_t entry = 0;
	size_t hoff = 0;
	int rc;

	if (boot_file_read(vm, path, &f) < 0)
		return -1;
	h = mb_find(&f, &hoff);
	if (!h) {
		boot_file_free(&f);
		return vm__fail(vm, "%s: no Multiboot header in its first 8 KiB", path);
	}
	rc = (h->flags & MB_FLAG_AOUT) ? load_aout(vm, &f, hoff, h, &entry)
				       : load_elf(vm, &f, &entry);
	boot_file_free(&f);
	if (rc < 0 || mb_info(vm, cmdline) < 0)
		return -1;
	find_sites(vm, path);
	mb->entry = entry;
	mb->mbi = INFO_ADDR;
	mb->esp = LOW_BASE + 0xff0;
	return 0;
}

/* Remember where the retained .pvsites table landed (moves between
 * personalities re-patch through it); an image without one, or one that
 * is not an ELF, simply has no known sites. */
static void find_sites(struct vm *vm, const char *path)
{
	struct elfimage img;
	char why[160];

	vm->sites_addr = vm->sites_size = 0;
	if (elfimage_load(&img, path, why, sizeof why) < 0)
		return;
	if (img.pvsites && img.pvsites->size && vm__gpa(vm, img.pvsites->addr, img.pvsites->size) &&
	    !memcmp(vm__gpa(vm, img.pvsites->addr, img.pvsites->size),
		    elfimage_section_bytes(&img, img.pvsites), img.pvsites->size)) {
		vm->sites_addr = img.pvsites->addr;
		vm->sites_size = img.pvsites->size;
	}
	elfimage_free(&img);
}

int vm__load_multiboot(struct vm *vm, const char *path, const char *cmdline)
{
	struct vm_multiboot mb;
	struct vm_vcpu_state st;

	if (vm__place_multiboot(vm, path, cmdline, &mb) < 0)
		return -1;
	if (vm->ops->reset_vcpu32(vm, 0, mb.entry, mb.esp) < 0 ||
	    vm__get_vcpu_state(vm, 0, &st) < 0)
		return -1;
	st.gpr[VM_RAX] = MB_BOOT_MAGIC;
	st.gpr[VM_RBX] = mb.mbi;
	return vm__set_vcpu_state(vm, 0, &st);
}
