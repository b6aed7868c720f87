/* bench_exits.c: what one trapped PIO exit costs on this KVM host, as exits per second, next to a host-only baseline */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

/*
 * The pioloop guest (tests/kvm/pioloop.S) executes 100 000 `outb` to an
 * unhandled port between two markers on port 0x520; we time the markers.
 * Each iteration is one exit to us, the dispatch in vm.c and re-entry,
 * plus two emulated ring-0 instructions (dec; jnz).  The baseline is a
 * host-side syscall round trip (a 1-byte pipe write + read), the floor of
 * any userspace device emulation.
 */
#define PORT_MARK 0x520
#define LOOP_EXITS 100000.0

static uint64_t mark[3];

static void mark_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	if (val == 1 || val == 2)
		mark[val] = vm__now_ns();
}

static const struct vm_io_ops mark_ops = { NULL, mark_write };

static double pipe_round_trip_ns(void)
{
	int p[2];
	char c = 0;
	unsigned i, n = 200000;
	uint64_t t0;

	if (pipe(p) < 0)
		return 0;
	t0 = vm__now_ns();
	for (i = 0; i < n; i++)
		if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1)
			break;
	close(p[0]);
	close(p[1]);
	return (double)(vm__now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	char cause[256];
	struct vm *vm;
	double ns;
	int devnull;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_exits PIOLOOP-ELF\n");
		return 2;
	}
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("SKIP: /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	vm = vm__create(&vm_kvm_ops, 64ull << 20, 1, cause, sizeof cause);
	if (!vm) {
		fprintf(stderr, "bench_exits: create VM failed: %s\n", cause);
		return 1;
	}
	devnull = open("/dev/null", O_WRONLY);
	if (vm__platform_init(vm, devnull) < 0 || vm__load_multiboot(vm, argv[1], argv[1]) < 0 ||
	    vm__register_pio(vm, PORT_MARK, 1, &mark_ops, NULL) < 0) {
		fprintf(stderr, "bench_exits: boot failed: %s\n", vm->err);
		return 1;
	}
	vm__run(vm);
	if (vm->exit_kind != VM_EXIT_POWEROFF || mark[2] <= mark[1]) {
		fprintf(stderr, "bench_exits: guest failed: %s\n", vm->err);
		return 1;
	}
	ns = (double)(mark[2] - mark[1]) / LOOP_EXITS;
	printf("pio exit: %.0f exits in %.1f ms: %.2f us per exit, %.0f exits/s\n", LOOP_EXITS,
	       (mark[2] - mark[1]) / 1e6, ns / 1e3, 1e9 / ns);
	printf("baseline: host pipe write+read round trip %.2f us (same run)\n",
	       pipe_round_trip_ns() / 1e3);
	vm__destroy(vm);
	close(devnull);
	return 0;
}
