/* platform_pc.c: the PC every pvhost guest sees: power-off (0x501), AP doorbell (0x510), and the lifetime of its device models */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devstate.h"
#include "platform.h"

/*
 * The struct platform hangs off vm->platform and owns every device model
 * of the guest.  The ports here are pvhost's own inventions (the QEMU
 * isa-debug-exit convention and the AP doorbell of docs/KVM-HOST.md); the
 * real PC devices are wired in platform_devices.c and platform_nic.c.
 */

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

static int ports_init(struct vm *vm, int console_fd)
{
	struct platform *p = calloc(1, sizeof *p);

	if (!p)
		return vm__fail(vm, "out of memory");
	p->vm = vm;
	p->console_fd = console_fd;
	p->input_fd = -1;
	vm->platform = p;
	if (vm__register_pio(vm, VM_PORT_EXIT, 1, &exit_ops, p) < 0 ||
	    vm__register_pio(vm, VM_PORT_AP_START, 4, &ap_ops, p) < 0)
		return -1;
	return 0;
}

int vm__platform_init(struct vm *vm, int console_fd)
{
	if (ports_init(vm, console_fd) < 0)
		return -1;
	return platform_devices__init(platform_of(vm));
}

/* Under kvm the PIC, PIT, UART, PCI and the NIC are the runtime's, inside
 * the guest: registering them here too would answer ports the runtime
 * forwards to the host, with a second, diverging copy of their state. */
int vm__platform_init_ports(struct vm *vm)
{
	return ports_init(vm, -1);
}

void vm__platform_console_input(struct vm *vm, int fd)
{
	struct platform *p = platform_of(vm);

	if (p)
		p->input_fd = fd;
}

void vm__platform_devset(struct vm *vm, struct devset *set)
{
	struct platform *p = platform_of(vm);

	memset(set, 0, sizeof *set);
	/* env.ctx is set when the models were wired (not under a runtime) */
	if (!p || !p->env.ctx)
		return;
	set->pic = &p->pic;
	set->pit = &p->pit;
	set->uart = &p->uart;
	set->pci = &p->pci;
	set->nic = platform_nic__model(p);
	set->port61 = &p->sysctl;
}

void vm__platform_destroy(struct vm *vm)
{
	struct platform *p = platform_of(vm);

	if (!p)
		return;
	platform_nic__destroy(p);
	free(p);
	vm->platform = NULL;
}
