/* boot_linux.c: the Linux x86 boot protocol: bzImage + initramfs + command line, 64-bit entry */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "boot_util.h"

/*
 * Documentation/x86/boot.rst, "64-bit boot protocol": load the protected-
 * mode kernel at code32_start, fill a zero page (struct boot_params) with
 * the setup header copied from the image plus what the loader decides
 * (command line, initrd, e820), and enter at code32_start + 0x200 in long
 * mode with identity-mapped page tables, a GDT holding __BOOT_CS (0x10)
 * and __BOOT_DS (0x18), interrupts off, RSI = the zero page.
 *
 * When the payload is one we can unpack (xz, or a plain ELF), we skip the
 * decompressor altogether: the vmlinux segments go to their physical
 * addresses and the vCPU starts at the ELF entry (startup_64 of the kernel
 * proper), which takes the same zero page and the same machine state.
 * Under ring-0 emulation this turns minutes of decompression into a
 * fraction of a second on the host.
 *
 * Guest-physical layout we choose:
 *   0x6000  GDT            0x7000  zero page
 *   0x9000  PML4           0xa000  PDPT    0xb000-0xefff  4 PDs (4 GiB, 2 MiB pages)
 *   0x20000 command line (up to 64 KiB)
 *   0x100000 bzImage kernel, or vmlinux at its p_paddr (16 MiB for Debian's)
 *   top of RAM (2 MiB aligned down) initramfs
 */
#define GDT_ADDR 0x6000u
#define ZP_ADDR 0x7000u
#define PML4_ADDR 0x9000u
#define PDPT_ADDR 0xa000u
#define PD_ADDR 0xb000u
#define CMDLINE_ADDR 0x20000u
#define CMDLINE_MAX 0x10000u
#define KERNEL_ADDR 0x100000u

/* Offsets in struct boot_params / its setup header. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_SETUP_SECTS 0x1f1
#define BP_HDR_MAGIC 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_CODE32_START 0x214
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PAYLOAD_OFFSET 0x248
#define BP_PAYLOAD_LENGTH 0x24c
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define XLF_KERNEL_64 1u

static int tables(struct vm *vm)
{
	static const uint64_t gdt[4] = {
		0, 0, 0x00af9a000000ffffull /* 0x10: 64-bit code */,
		0x00cf92000000ffffull /* 0x18: data */,
	};
	uint8_t page[4096];
	unsigned i;

	if (vm__write(vm, GDT_ADDR, gdt, sizeof gdt) < 0)
		return -1;
	memset(page, 0, sizeof page);
	boot_put64(page, PDPT_ADDR | 3);
	if (vm__write(vm, PML4_ADDR, page, sizeof page) < 0)
		return -1;
	memset(page, 0, sizeof page);
	for (i = 0; i < 4; i++)
		boot_put64(page + i * 8, (PD_ADDR + i * 4096u) | 3);
	if (vm__write(vm, PDPT_ADDR, page, sizeof page) < 0)
		return -1;
	/* 2048 PD entries of 2 MiB each: the first 4 GiB, MMIO hole included. */
	for (i = 0; i < 4 * 512; i++) {
		uint8_t e[8];

		boot_put64(e, ((uint64_t)i << 21) | 0x83);
		if (vm__write(vm, PD_ADDR + i * 8u, e, 8) < 0)
			return -1;
	}
	return 0;
}

static void e820(struct vm *vm, uint8_t *zp)
{
	const struct { uint64_t base, len; uint32_t type; } map[] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x400, 2 },
		{ 0xf0000, 0x10000, 2 },
		{ 0x100000, vm->mem_size - 0x100000, 1 },
	};
	unsigned i, n = sizeof map / sizeof map[0];

	for (i = 0; i < n; i++) {
		boot_put64(zp + BP_E820_TABLE + i * 20, map[i].base);
		boot_put64(zp + BP_E820_TABLE + i * 20 + 8, map[i].len);
		boot_put32(zp + BP_E820_TABLE + i * 20 + 16, map[i].type);
	}
	zp[BP_E820_ENTRIES] = (uint8_t)n;
}

static int initrd_load(struct vm *vm, uint8_t *zp, const char *path, uint64_t kernel_end)
{
	struct boot_file f;
	uint64_t top, addr;
	uint32_t max = boot_get32(zp + BP_INITRD_ADDR_MAX);

	if (boot_file_read(vm, path, &f) < 0)
		return -1;
	top = vm->mem_size;
	if (max && top > (uint64_t)max + 1)
		top = (uint64_t)max + 1;
	addr = top > f.size ? (top - f.size) & ~0x1fffffull : 0;
	if (addr < kernel_end) {
		boot_file_free(&f);
		return vm__fail(vm, "%s: initramfs does not fit above the kernel", path);
	}
	if (vm__write(vm, addr, f.data, f.size) < 0) {
		boot_file_free(&f);
		return -1;
	}
	boot_put32(zp + BP_RAMDISK_IMAGE, (uint32_t)addr);
	boot_put32(zp + BP_RAMDISK_SIZE, (uint32_t)f.size);
	boot_put32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(addr >> 32));
	boot_put32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)f.size >> 32));
	boot_file_free(&f);
	return 0;
}

int vm__load_linux(struct vm *vm, const char *kernel, const char *initrd, const char *cmdline)
{
	uint8_t zp[4096];
	struct boot_file f;
	struct vm_vcpu_state st;
	size_t setup_len, hdr_len, pm_len, cl_len = strlen(cmdline) + 1;
	uint64_t kernel_end, entry = KERNEL_ADDR + 0x200;
	uint32_t pl_off, pl_len;
	unsigned sects;
	int direct = 0;

	if (boot_file_read(vm, kernel, &f) < 0)
		return -1;
	if (f.size < 0x1000 || boot_get32(f.data + BP_HDR_MAGIC) != 0x53726448 /* "HdrS" */) {
		boot_file_free(&f);
		return vm__fail(vm, "%s: not a bzImage (no HdrS setup header)", kernel);
	}
	if (boot_get16(f.data + BP_VERSION) < 0x20c ||
	    !(boot_get16(f.data + BP_XLOADFLAGS) & XLF_KERNEL_64)) {
		boot_file_free(&f);
		return vm__fail(vm, "%s: boot protocol older than 2.12 or no 64-bit entry", kernel);
	}
	sects = f.data[BP_SETUP_SECTS] ? f.data[BP_SETUP_SECTS] : 4;
	setup_len = (size_t)(sects + 1) * 512;
	/* The header runs to the byte the jump at 0x200 points past. */
	hdr_len = 0x202 + f.data[0x201] - BP_HDR;
	if (setup_len >= f.size || BP_HDR + hdr_len > sizeof zp || cl_len > CMDLINE_MAX) {
		boot_file_free(&f);
		return vm__fail(vm, "%s: setup header out of bounds, or command line too long",
				kernel);
	}
	pm_len = f.size - setup_len;
	memset(zp, 0, sizeof zp);
	memcpy(zp + BP_HDR, f.data + BP_HDR, hdr_len);

	/* Prefer the kernel proper, unpacked here (see boot_vmlinux.c). */
	pl_off = boot_get32(f.data + BP_PAYLOAD_OFFSET);
	pl_len = boot_get32(f.data + BP_PAYLOAD_LENGTH);
	if (pl_len && pl_off < pm_len && pl_len <= pm_len - pl_off) {
		direct = boot_vmlinux_load(vm, kernel, f.data + setup_len + pl_off, pl_len, &entry,
					   &kernel_end);
		if (direct < 0) {
			boot_file_free(&f);
			return -1;
		}
		if (direct && !vm__gpa(vm, entry, 1)) {
			boot_file_free(&f);
			return vm__fail(vm, "%s: vmlinux entry %#llx is not in RAM", kernel,
					(unsigned long long)entry);
		}
	}
	if (!direct) {
		kernel_end = KERNEL_ADDR + pm_len;
		if (boot_get32(zp + BP_INIT_SIZE) > pm_len)
			kernel_end = KERNEL_ADDR + boot_get32(zp + BP_INIT_SIZE);
		if (kernel_end > vm->mem_size ||
		    vm__write(vm, KERNEL_ADDR, f.data + setup_len, pm_len) < 0) {
			boot_file_free(&f);
			return vm__fail(vm, "%s: kernel needs %llu MiB, guest has %llu", kernel,
					(unsigned long long)(kernel_end >> 20),
					(unsigned long long)(vm->mem_size >> 20));
		}
	}
	boot_file_free(&f);

	zp[BP_TYPE_OF_LOADER] = 0xff; /* "undefined" loader */
	zp[BP_LOADFLAGS] |= 0x01;    /* LOADED_HIGH */
	boot_put32(zp + BP_CODE32_START, KERNEL_ADDR);
	boot_put32(zp + BP_CMD_LINE_PTR, CMDLINE_ADDR);
	if (boot_get32(zp + BP_CMDLINE_SIZE) && cl_len - 1 > boot_get32(zp + BP_CMDLINE_SIZE))
		return vm__fail(vm, "command line longer than the kernel's %u bytes",
				boot_get32(zp + BP_CMDLINE_SIZE));
	if (vm__write(vm, CMDLINE_ADDR, cmdline, cl_len) < 0)
		return -1;
	if (initrd && initrd_load(vm, zp, initrd, kernel_end) < 0)
		return -1;
	e820(vm, zp);
	if (vm__write(vm, ZP_ADDR, zp, sizeof zp) < 0 || tables(vm) < 0)
		return -1;
	if (vm->ops->reset_vcpu64(vm, 0, entry, PML4_ADDR, GDT_ADDR) < 0 ||
	    vm__get_vcpu_state(vm, 0, &st) < 0)
		return -1;
	st.gpr[VM_RSI] = ZP_ADDR;
	return vm__set_vcpu_state(vm, 0, &st);
}

int vm__is_bzimage(const char *path)
{
	unsigned char b[0x206];
	FILE *f = fopen(path, "rb");
	int yes = 0;

	if (f) {
		yes = fread(b, 1, sizeof b, f) == sizeof b && memcmp(b + 0x202, "HdrS", 4) == 0;
		fclose(f);
	}
	return yes;
}
