/* platform_pc.c: the ports every pvhost guest sees: power-off (0x501), AP doorbell (0x510), console stub (0x3f8) */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

/*
 * Until runtime/common/dev/uart16550 is wired in, COM1 is a stub that is
 * just enough for polled output: THR goes to the console fd, LSR always
 * says "transmitter empty", the other registers read back what was
 * written.  It raises no interrupts, which is why it suffices only for
 * console output (Linux's printk console polls LSR; its tty layer would
 * wait for a THRE interrupt).
 */
struct platform {
	struct vm *vm;
	int console_fd;
	uint8_t com_regs[8], com_dll, com_dlm;
	uint32_t ap_result;
};

static uint64_t com_read(void *opaque, uint64_t off, unsigned size)
{
	struct platform *p = opaque;
	int dlab = p->com_regs[3] & 0x80;

	switch (off) {
	case 0:
		return dlab ? p->com_dll : 0; /* no input */
	case 1:
		return dlab ? p->com_dlm : p->com_regs[1];
	case 2:
		return 0x01; /* IIR: no interrupt pending */
	case 5:
		return 0x60; /* LSR: THR and transmitter empty */
	case 6:
		return 0xb0; /* MSR: DCD DSR CTS */
	default:
		return p->com_regs[off & 7];
	}
}

static void com_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct platform *p = opaque;
	int dlab = p->com_regs[3] & 0x80;
	uint8_t c = (uint8_t)val;

	if (off == 0 && dlab) {
		p->com_dll = c;
	} else if (off == 0) {
		if (p->console_fd >= 0 && write(p->console_fd, &c, 1) < 0)
			p->console_fd = -1; /* console gone: keep the guest running */
	} else if (off == 1 && dlab) {
		p->com_dlm = c;
	} else {
		p->com_regs[off & 7] = c;
	}
}

static const struct vm_io_ops com_ops = { com_read, com_write };

static void exit_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct platform *p = opaque;

	vm__poweroff(p->vm, VM_EXIT_POWEROFF, (int)(val & 0xff));
}

static const struct vm_io_ops exit_ops = { NULL, exit_write };

static uint64_t ap_read(void *opaque, uint64_t off, unsigned size)
{
	struct platform *p = opaque;

	return p->ap_result;
}

static void ap_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct platform *p = opaque;
	struct vm_ap_start req;
	void *src;

	p->ap_result = UINT32_MAX;
	if (size != 4)
		return;
	/* The block is guest memory: copy it once, then check the copy. */
	src = vm__gpa(p->vm, val & 0xffffffffu, sizeof req);
	if (!src)
		return;
	memcpy(&req, src, sizeof req);
	if (vm__start_ap(p->vm, req.cpu, req.entry, req.stack, req.flags) == 0)
		p->ap_result = 0;
}

static const struct vm_io_ops ap_ops = { ap_read, ap_write };

int vm__platform_init(struct vm *vm, int console_fd)
{
	struct platform *p = calloc(1, sizeof *p);

	if (!p)
		return vm__fail(vm, "out of memory");
	p->vm = vm;
	p->console_fd = console_fd;
	vm->platform = p;
	if (vm__register_pio(vm, VM_PORT_EXIT, 1, &exit_ops, p) < 0 ||
	    vm__register_pio(vm, VM_PORT_AP_START, 4, &ap_ops, p) < 0 ||
	    vm__register_pio(vm, VM_PORT_CONSOLE, 8, &com_ops, p) < 0)
		return -1;
	return 0;
}
