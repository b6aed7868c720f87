/* test_rt_freeze.c: a 2-vCPU guest under the kvm runtime frozen over and over the way a migration's freeze does it (pause + guest view), until the time is up; every freeze must succeed and the workload must end with workload_ref's checksum */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "personality_kvm.h"
#include "personality_kvm_adopt.h"
#include "personality_kvm_state.h"
#include "rt_abi.h"
#include "../lib/test_vm.h"

/*
 * Why: a freeze of a kvm source used to time out now and then (daemon-
 * migrate, ~1 move in 20): the guest's console lock is taken with
 * interrupts off, so a CPU that parked in the runtime while holding it
 * (inside a UART site) left the other CPU spinning on it with IF = 0,
 * where no upcall and no site could take it into the runtime, and the
 * device-state request waited for that CPU until its 20 s ran out.  Both
 * CPUs print a progress line every second, so the window is a few tens of
 * ms a second: hundreds of freezes at random moments meet it many times.
 *
 * Each round: a random nap of 1-12 ms, vm__pause, vm__kvm_guest_view
 * (the device state through the runtime, every vCPU's guest view),
 * checks on the view, vm__resume.  FREEZE_SECONDS of that (default 12,
 * or argv[4]) or until the guest ends (after MIN_FREEZES at least), then
 * the guest runs to its end: the console must hold workload_ref's line
 * and the guest must power off with 0.
 */
#define ARGS "seed=9 steps=100000" /* outlasts FREEZE_SECONDS of freezes (3-4 ms each now) */
#define FREEZE_SECONDS 12
#define MIN_FREEZES 100

static int in_window(uint64_t a)
{
	return a >= RT_WINDOW_BASE && a - RT_WINDOW_BASE < RT_WINDOW_SIZE;
}

int main(int argc, char **argv)
{
	static struct vm_vcpu_state view[2];
	char cause[512], want[256];
	const char *why;
	struct rt_cpu_state blk;
	unsigned seconds = FREEZE_SECONDS, unparked = 0, stuck[2] = { 0, 0 }, freezes = 0, i;
	uint64_t t0, t, tp, worst = 0, total = 0, paused_ns = 0, at_pause, resumed;
	uint8_t *dev;
	size_t devlen;
	struct vm *vm;
	pthread_t th;
	FILE *con;

	if (argc != 4 && argc != 5)
		return test_fail("usage", "test_rt_freeze GUEST-ELF WORKLOAD-REF RUNTIME-ELF [SECONDS]");
	if (argc == 5)
		seconds = (unsigned)atoi(argv[4]);
	if (test_no_kvm())
		return TEST_SKIP;
	if (test_workload_ref(argv[2], ARGS, want, sizeof want, cause, sizeof cause) < 0)
		return test_fail("workload_ref", cause);
	if (!(vm = test_vm_new(64ull << 20, 2, argv[3], NULL, &con, cause, sizeof cause)))
		return test_fail("create VM", cause);
	if (test_vm_load(vm, argv[1], ARGS) < 0)
		return test_fail("boot under kvm", vm->err);
	pthread_create(&th, NULL, test_vm_runner, vm);
	/* both CPUs in their workload: the AP says so before ring 3 */
	if (test_console_wait(con, "smp: cpu 1 up", 30) < 0)
		return test_fail("boot", "CPU 1 did not come up within 30 s");
	srand(1);
	t0 = vm__now_ns();
	while (vm__now_ns() - t0 < seconds * 1000000000ull) {
		nanosleep(&(struct timespec){ 0, (1 + rand() % 12) * 1000000 }, NULL);
		t = vm__now_ns();
		if (vm__pause(vm) < 0) {
			if (vm->exit_kind == VM_EXIT_NONE)
				return test_fail("vm__pause", vm->err);
			break; /* the guest finished: enough if the rounds were many */
		}
		tp = vm__now_ns() - t;
		paused_ns += tp;
		/* who stood outside the runtime at the pause (the view may park it) */
		for (i = 0; i < 2; i++)
			if (vm__kvm_host_cpu_state(vm, i, &blk) == 0 && blk.online &&
			    blk.parked == RT_CPU_PARKED_NO) {
				unparked++;
				break;
			}
		t = vm__now_ns();
		if (vm__kvm_guest_view(vm, view, &dev, &devlen) < 0)
			return test_fail("freeze", vm->err);
		t = vm__now_ns() - t;
		total += t;
		worst = tp + t > worst ? tp + t : worst;
		free(dev);
		for (i = 0; i < 2; i++)
			if (in_window(view[i].rip) || in_window(view[i].idt.base)) {
				snprintf(cause, sizeof cause, "vCPU %u's view stands in the runtime's "
					 "window (rip %#llx, idt %#llx)", i,
					 (unsigned long long)view[i].rip,
					 (unsigned long long)view[i].idt.base);
				return test_fail("guest view", cause);
			}
		/* what the old protocol waited for in vain: a vCPU outside the
		 * runtime with interrupts off after the request was served */
		for (i = 0; i < 2; i++)
			if (vm__kvm_host_cpu_state(vm, i, &blk) == 0 && blk.online &&
			    blk.parked == RT_CPU_PARKED_NO && view[i].cs.dpl == 0 &&
			    !(view[i].rflags & 0x200))
				stuck[i]++;
		freezes++;
		vm__resume(vm);
	}
	vm__kvm_state_counts(vm, &at_pause, &resumed);
	printf("test_rt_freeze: %u freezes in %.1f s (%u with a vCPU outside the runtime at the "
	       "pause; left there in guest kernel code with interrupts off: vCPU 0 %u times, "
	       "vCPU 1 %u times), pause %.2f ms mean, view %.2f ms mean, freeze (both) %.2f ms "
	       "mean, %.1f ms worst; device state served by the pause %llu times, after a resume "
	       "%llu times\n", freezes,
	       (double)(vm__now_ns() - t0) / 1e9, unparked, stuck[0], stuck[1],
	       freezes ? (double)paused_ns / freezes / 1e6 : 0.0,
	       freezes ? (double)total / freezes / 1e6 : 0.0,
	       freezes ? (double)(paused_ns + total) / freezes / 1e6 : 0.0,
	       (double)worst / 1e6, (unsigned long long)at_pause, (unsigned long long)resumed);
	/* the pause asks for the device state with its park request, and the
	 * view reads it: a resume and a second pause only when no CPU could
	 * reach the runtime within 20 ms (docs/RUNTIME.md, "State") */
	if (resumed * 10 > freezes) {
		snprintf(cause, sizeof cause, "the pause served the device state only %llu times "
			 "of %u (%llu needed a resume)", (unsigned long long)at_pause, freezes,
			 (unsigned long long)resumed);
		return test_fail("state at the pause", cause);
	}
	if (freezes < MIN_FREEZES) {
		snprintf(cause, sizeof cause, "only %u freezes (want %u): the guest ended early "
			 "(give it more steps) or each freeze took too long", freezes, MIN_FREEZES);
		return test_fail("rounds", cause);
	}
	pthread_join(th, NULL);
	vm__kvm_host_finish(vm);
	if (test_vm_check_end(vm, con, want, &why) < 0)
		return test_fail("the guest's end", why);
	printf("test_rt_freeze: ok: %s", want);
	vm__destroy(vm);
	return 0;
}
