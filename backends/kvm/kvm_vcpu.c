/* kvm_vcpu.c: one pthread per vCPU around KVM_RUN: exits, interrupt injection, halt, pause, kicks */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_int.h"

/*
 * Kicks: another thread (a pauser, a device raising a line, the BSP's own
 * deadline timer) sets run->immediate_exit and sends KICK_SIG to the vCPU
 * thread.  The signal breaks a KVM_RUN in progress (-EINTR); the flag
 * catches the window where the signal lands just before the ioctl, since
 * KVM_RUN returns at once when it is set.  The handler sets the flag too,
 * for the timer, which can only signal.
 */
#define KICK_SIG (SIGRTMIN + 2)

/* glibc before 2.37 names the SIGEV_THREAD_ID target only by its union. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static _Thread_local struct kvm_run *tls_run;

static void kick_handler(int sig)
{
	(void)sig;
	if (tls_run)
		__atomic_store_n(&tls_run->immediate_exit, 1, __ATOMIC_RELEASE);
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void kick_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return */
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIG, &sa, NULL);
}

static void kick(struct kvm_vcpu *v)
{
	if (!v->thread_ok)
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(v->thread, KICK_SIG);
}

void kvm_vcpu__kick_all(struct vm *vm)
{
	unsigned i;

	for (i = 0; i < vm->nr_vcpus; i++)
		kick(&kvm_of(vm)->vcpu[i]);
}

void kvm_vcpu__wake(struct vm *vm)
{
	kick(&kvm_of(vm)->vcpu[0]);
}

static void timer_setup(struct kvm_vcpu *v)
{
	struct sigevent sev;

	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = KICK_SIG;
	sev.sigev_notify_thread_id = gettid();
	v->timer_ok = timer_create(CLOCK_MONOTONIC, &sev, &v->timer) == 0;
	v->armed_ns = UINT64_MAX;
}

/* Only re-arm on change: one syscall per new deadline, not per exit. */
static void timer_arm(struct kvm_vcpu *v, uint64_t deadline_ns)
{
	struct itimerspec its;

	if (!v->timer_ok || deadline_ns == v->armed_ns)
		return;
	memset(&its, 0, sizeof its);
	if (deadline_ns != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000u);
		its.it_value.tv_nsec = (long)(deadline_ns % 1000000000u);
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1; /* zero would disarm */
	}
	timer_settime(v->timer, TIMER_ABSTIME, &its, NULL);
	v->armed_ns = deadline_ns;
}

/*
 * After a crash: the words on the guest stack that look like return
 * addresses in a high-half kernel, so a stock kernel's crash site can be
 * named (tests/linux/kallsyms.py BZIMAGE ADDR...) without a backtrace.
 */
static void stack_hints(struct kvm_vcpu *v, uint64_t rsp)
{
	struct kvm_translation t;
	uint64_t w, *p;
	unsigned i, n = 0;

	for (i = 0; i < 64; i++, rsp += 8) {
		memset(&t, 0, sizeof t);
		t.linear_address = rsp;
		if ((rsp & 7) || ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid ||
		    !(p = vm__guest_ptr(v->vm, t.physical_address, 8)))
			break;
		memcpy(&w, p, 8);
		if (w >> 31 != 0x1ffffffffull)
			continue;
		if (!n++)
			fprintf(stderr, "%s: stack words that look like kernel text:",
				program_invocation_short_name);
		fprintf(stderr, " %#llx", (unsigned long long)w);
	}
	if (n)
		fputc('\n', stderr);
}

static void crash(struct kvm_vcpu *v, const char *what)
{
	struct kvm_regs regs;
	struct vm *vm = v->vm;

	memset(&regs, 0, sizeof regs);
	ioctl(v->fd, KVM_GET_REGS, &regs);
	if (regs.rip >> 31 == 0x1ffffffffull)
		stack_hints(v, regs.rsp);
	pthread_mutex_lock(&vm->run_lock);
	if (vm->exit_kind == VM_EXIT_NONE)
		vm__fail(vm, "%s on vCPU %u at rip %#llx", what, v->id,
			 (unsigned long long)regs.rip);
	pthread_mutex_unlock(&vm->run_lock);
	vm__poweroff(vm, VM_EXIT_CRASH, 0);
}

/*
 * Before entry: inject the vector `next` gives (BSP: the PIC's INTA; an
 * AP: the runtime's park upcall) when the guest can take an interrupt,
 * or ask KVM to say when it can.  `next` runs only when it can: the
 * PIC's acknowledge is a state change.
 */
static void inject(struct kvm_vcpu *v, int wanted, int (*next)(struct kvm_vcpu *v))
{
	struct kvm_run *run = v->run;
	struct kvm_interrupt irq;
	int vec;

	if (!wanted) {
		run->request_interrupt_window = 0;
		return;
	}
	if (run->ready_for_interrupt_injection && run->if_flag) {
		vec = next(v);
		if (vec >= 0) {
			irq.irq = (uint32_t)vec;
			if (ioctl(v->fd, KVM_INTERRUPT, &irq) < 0)
				crash(v, "KVM_INTERRUPT failed");
		}
		run->request_interrupt_window = 0;
	} else {
		run->request_interrupt_window = 1;
	}
}

static int pic_ack(struct kvm_vcpu *v)
{
	return vm__ack_irq(v->vm);
}

/* An AP under a runtime: the park request as an interrupt (vm_park_ops.ap_kick). */
static int ap_kick_vector(struct kvm_vcpu *v)
{
	struct vm *vm = v->vm;

	return vm->park && vm->park->ap_kick ? vm->park->ap_kick(vm->park_opaque, v->id) : -1;
}

/* RIP after an exit (an ioctl: only on the rare paths that need it). */
static uint64_t vcpu_rip(struct kvm_vcpu *v)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

/* KVM_RUN, counting its return by reason for --stats. */
static int vcpu_enter(struct kvm_vcpu *v)
{
	struct vm_exit_counts *e = &v->vm->exits;
	uint64_t *n;
	int rc = ioctl(v->fd, KVM_RUN, 0);

	if (rc < 0) {
		n = (errno == EINTR || errno == EAGAIN) ? &e->intr : &e->other;
	} else {
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO: n = &e->io; break;
		case KVM_EXIT_MMIO: n = &e->mmio; break;
		case KVM_EXIT_HLT: n = &e->hlt; break;
		case KVM_EXIT_IRQ_WINDOW_OPEN: n = &e->window; break;
		case KVM_EXIT_INTR: n = &e->intr; break;
		default: n = &e->other; break;
		}
	}
	__atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
	return rc;
}

/*
 * HLT inside a runtime's park or idle loop (vm__vcpu_hlt_parked): the vCPU
 * waits for the host (an upcall, the end of a pause), whatever IF is and
 * whichever CPU it is, so it is neither a hang nor an AP going offline.
 */
static int hlt_parked(struct kvm_vcpu *v)
{
	uint64_t rip;

	if (!v->vm->park)
		return 0;
	rip = vcpu_rip(v);
	if (!vm__vcpu_hlt_parked(v->vm, v->id, rip))
		return 0;
	v->halted = 1;
	v->halted_parked = 1;
	return 1;
}

static int exit_handle(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;
	uint8_t *data;
	uint32_t i;
	char what[64];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		data = (uint8_t *)run + run->io.data_offset;
		for (i = 0; i < run->io.count; i++, data += run->io.size)
			vm__pio(vm, run->io.port, run->io.direction == KVM_EXIT_IO_OUT,
				run->io.size, data);
		return 0;
	case KVM_EXIT_MMIO:
		vm__mmio(vm, run->mmio.phys_addr, run->mmio.is_write, run->mmio.len,
			 run->mmio.data);
		return 0;
	case KVM_EXIT_HLT:
		if (hlt_parked(v))
			return 0;
		if (v->id != 0) {
			/* No IPIs without a LAPIC: a halted AP is offline
			 * until the doorbell starts it again. */
			vm__vcpu_stopped(vm, v->id);
		} else if (!run->if_flag) {
			vm__poweroff(vm, VM_EXIT_HALTED, 0);
			return -1;
		} else {
			v->halted = 1;
		}
		return 0;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		crash(v, "triple fault");
		return -1;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof what, "entry failure %#llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		crash(v, what);
		return -1;
	case KVM_EXIT_INTERNAL_ERROR:
		/* kvm_syscall_fix.c: our int3 on the guest's #PF entry;
		 * kvm_emul.c: int3, int n, fwait at CPL 0, which kvm-pvm cannot emulate. */
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
		    (kvm_sysfix__trap(v) || kvm_emul__soft_int(v)))
			return 0;
		snprintf(what, sizeof what, "KVM internal error %u", run->internal.suberror);
		crash(v, what);
		return -1;
	default:
		snprintf(what, sizeof what, "unhandled exit %u", run->exit_reason);
		crash(v, what);
		return -1;
	}
}

/*
 * Per KVM's contract, an I/O or MMIO exit completes only on the next
 * KVM_RUN: a PIO "in" has not yet reached RAX.  Before a vCPU stops for
 * a pause we re-enter once with immediate_exit set, which finishes the
 * instruction and returns at once, so the state a pauser reads is exact.
 */
static void io_complete(struct kvm_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	vcpu_enter(v);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
}

/*
 * An interrupt injected (KVM_INTERRUPT) just before a kick can be left
 * queued: KVM_RUN returned before the entry that delivers it; an exit in
 * the middle of an exception's delivery (this host emulates guest ring 0)
 * leaves that exception to be re-injected.  A vCPU should not stop like
 * that for a pause: its state would hold a half-taken event that only
 * this host's KVM knows how to finish, and a move to another personality
 * must see the guest between instructions.  So it goes back in to take
 * it (the BSP's timer, or the pauser's re-kick, brings it out), a bounded
 * number of times: an event that never completes is left to the caller.
 */
#define EVENT_FLUSH_TRIES 64

static int event_in_flight(struct kvm_vcpu *v)
{
	struct kvm_vcpu_events ev;

	if (v->flush_tries >= EVENT_FLUSH_TRIES || ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return 0;
	if (!(ev.interrupt.injected && !ev.interrupt.soft) && !ev.exception.injected &&
	    !ev.exception.pending && !ev.nmi.injected && !ev.nmi.pending)
		return 0;
	v->flush_tries++;
	return 1;
}

/* After io_complete: may this vCPU stop for a pause here?  Under a runtime
 * one that left the guest inside it goes back in until it is parked, and
 * one asleep in the runtime's park loop goes back in while the runtime
 * has work for that loop (a device-state request asked with the pause). */
static int at_safe_point(struct kvm_vcpu *v)
{
	struct vm *vm = v->vm;

	if (!vm->park || (v->id != 0 && !__atomic_load_n(&vm->started[v->id], __ATOMIC_ACQUIRE)))
		return 1;
	if (v->halted) {
		if (!v->halted_parked || !vm__vcpu_park_wake(vm, v->id))
			return 1;
		v->halted = v->halted_parked = 0;
		return 0;
	}
	return vm__vcpu_safe(vm, v->id, vcpu_rip(v));
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *v = arg;
	struct vm *vm = v->vm;
	uint64_t deadline;
	unsigned gen;
	int pending;

	tls_run = v->run;
	if (v->id == 0)
		timer_setup(v);
	for (;;) {
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
		if (vm__vcpu_should_stop(vm)) {
			io_complete(v);
			if (event_in_flight(v)) {
				/* in again as is: no injection, no halt */
				timer_arm(v, vm__now_ns() + 200000);
				goto enter;
			}
			if (at_safe_point(v)) {
				v->flush_tries = 0;
				if (vm__vcpu_park(vm, v->id) < 0)
					break;
				continue;
			}
			/* inside the runtime: on until it parks (a re-kick looks again) */
		} else if (v->id != 0 && !__atomic_load_n(&vm->started[v->id], __ATOMIC_ACQUIRE)) {
			if (vm__vcpu_wait_start(vm, v->id) < 0)
				break;
			continue;
		}
		/* Snapshot the wake generation before looking, so a line raised
		 * (or a park released) after the look still wakes a halt. */
		gen = vm__wake_gen(vm);
		if (v->halted_parked && !vm__vcpu_park_waits(vm, v->id))
			v->halted = v->halted_parked = 0; /* released: the runtime looks again */
		if (v->id == 0) {
			deadline = vm__poll_devices(vm, &pending);
			if (v->halted && !pending) {
				if (vm__vcpu_halt(vm, v->id, deadline, gen) < 0)
					break;
				continue;
			}
			v->halted = v->halted_parked = 0;
			inject(v, pending, pic_ack);
			timer_arm(v, deadline);
		} else if (v->halted_parked) {
			/* an AP parked by its runtime: nothing is injected into
			 * APs, so only the host's release wakes it */
			if (vm__vcpu_halt(vm, v->id, UINT64_MAX, gen) < 0)
				break;
			continue;
		}
		if (v->id != 0)
			inject(v, ap_kick_vector(v) >= 0, ap_kick_vector);
		kvm_sysfix__poll(v);
enter:
		if (vcpu_enter(v) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			crash(v, strerror(errno));
			break;
		}
		if (exit_handle(v) < 0)
			break;
	}
	if (v->timer_ok)
		timer_delete(v->timer);
	v->timer_ok = 0;
	vm__vcpu_exited(vm);
	return NULL;
}

int kvm_vcpu__run_all(struct vm *vm)
{
	struct vm_kvm *k = kvm_of(vm);
	unsigned i, n;
	int rc;

	pthread_once(&kick_once, kick_install);
	pthread_mutex_lock(&vm->run_lock);
	vm->nr_parked = 0;
	pthread_mutex_unlock(&vm->run_lock);
	for (n = 0; n < vm->nr_vcpus; n++) {
		rc = pthread_create(&k->vcpu[n].thread, NULL, vcpu_thread, &k->vcpu[n]);
		if (rc != 0) {
			vm__poweroff(vm, VM_EXIT_CRASH, 0);
			vm__fail(vm, "vCPU thread: %s", strerror(rc));
			break;
		}
		k->vcpu[n].thread_ok = 1;
	}
	for (i = 0; i < n; i++) {
		pthread_join(k->vcpu[i].thread, NULL);
		k->vcpu[i].thread_ok = 0;
	}
	/* Whoever reads RAM after the run must not see our hooks. */
	kvm_sysfix__unhook_all(vm);
	return vm->exit_kind == VM_EXIT_CRASH ? -1 : 0;
}
