/* vm_run.c: generic run/pause protocol between vCPU threads and their controller, state and dirty wrappers */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "rt_abi.h"

/*
 * Every vCPU thread is either inside the guest (KVM_RUN or about to enter
 * it) or blocked in one of the waits below.  nr_parked counts the blocked
 * ones; a pause is complete when it reaches nr_vcpus.  Every wait also
 * blocks while a pause is requested, so a halted vCPU whose timer fires
 * during a pause stays put: the controller may be rewriting its state.
 */

static int ending(const struct vm *vm)
{
	return vm->exit_kind != VM_EXIT_NONE;
}

int vm__vcpu_should_stop(struct vm *vm)
{
	return __atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE;
}

unsigned vm__wake_gen(struct vm *vm)
{
	return __atomic_load_n(&vm->wake_gen, __ATOMIC_ACQUIRE);
}

/* A vm__now_ns() time (CLOCK_MONOTONIC) as the waits below take it:
 * pthread_cond_clockwait with that clock.  pthread_cond_timedwait would
 * read it as CLOCK_REALTIME (run_cond's default), long past: every wait
 * returned at once, a pause re-kicked its vCPUs without pause (a vCPU
 * inside the runtime crawled to its park) and a halted BSP spun. */
static void timespec_at(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

/* run_lock held.  Wait for a change; (deadline_ns) UINT64_MAX: no limit. */
static void wait_once(struct vm *vm, uint64_t deadline_ns)
{
	struct timespec ts;

	vm->nr_parked++;
	pthread_cond_broadcast(&vm->run_cond); /* a pauser may be waiting for us */
	if (deadline_ns == UINT64_MAX) {
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	} else {
		timespec_at(&ts, deadline_ns);
		pthread_cond_clockwait(&vm->run_cond, &vm->run_lock, CLOCK_MONOTONIC, &ts);
	}
	vm->nr_parked--;
}

int vm__vcpu_park(struct vm *vm, unsigned cpu)
{
	int rc;

	pthread_mutex_lock(&vm->run_lock);
	/* a vCPU parked by the last pause whose thread had not run again
	 * when this one began: its runtime may have to serve this one */
	while (vm->pause_req && !ending(vm) && !vm__vcpu_park_wake(vm, cpu))
		wait_once(vm, UINT64_MAX);
	rc = ending(vm) ? -1 : 0;
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

int vm__vcpu_halt(struct vm *vm, unsigned cpu, uint64_t deadline_ns, unsigned gen)
{
	int rc;

	pthread_mutex_lock(&vm->run_lock);
	for (;;) {
		if (ending(vm))
			break;
		/* a pause has work for a runtime's park loop (vm_park_ops.wake):
		 * the vCPU thread takes it to its safe-point check */
		if (vm->pause_req && vm__vcpu_park_wake(vm, cpu))
			break;
		if (!vm->pause_req &&
		    (vm->wake_gen != gen || vm__now_ns() >= deadline_ns))
			break;
		wait_once(vm, vm->pause_req ? UINT64_MAX : deadline_ns);
	}
	rc = ending(vm) ? -1 : 0;
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

int vm__vcpu_wait_start(struct vm *vm, unsigned cpu)
{
	int rc;

	pthread_mutex_lock(&vm->run_lock);
	while (!ending(vm) && (vm->pause_req || !vm->started[cpu]))
		wait_once(vm, UINT64_MAX);
	rc = ending(vm) ? -1 : 0;
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

void vm__vcpu_stopped(struct vm *vm, unsigned cpu)
{
	pthread_mutex_lock(&vm->run_lock);
	vm->started[cpu] = 0;
	pthread_mutex_unlock(&vm->run_lock);
}

void vm__vcpu_exited(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	vm->nr_parked++; /* gone for good: counts as outside the guest */
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

void vm__notify_irq(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	vm->wake_gen++;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	if (vm->running)
		vm->ops->wake(vm); /* the BSP may be in the guest with IF=1 */
}

uint64_t vm__poll_devices(struct vm *vm, int *irq_pending)
{
	uint64_t next = UINT64_MAX, now, d;
	unsigned i;

	pthread_mutex_lock(&vm->dev_lock);
	if (vm->nr_timers) {
		now = vm__now_ns();
		for (i = 0; i < vm->nr_timers; i++) {
			d = vm->timers[i].ops->poll(vm->timers[i].opaque, now);
			if (d < next)
				next = d;
		}
	}
	*irq_pending = vm->irq && vm->irq->pending(vm->irq_opaque);
	pthread_mutex_unlock(&vm->dev_lock);
	return next;
}

int vm__ack_irq(struct vm *vm)
{
	int vec = -1;

	pthread_mutex_lock(&vm->dev_lock);
	if (vm->irq && vm->irq->pending(vm->irq_opaque))
		vec = vm->irq->ack(vm->irq_opaque);
	pthread_mutex_unlock(&vm->dev_lock);
	return vec;
}

void vm__set_park_ops(struct vm *vm, const struct vm_park_ops *ops, void *opaque)
{
	vm->park = ops;
	vm->park_opaque = opaque;
}

int vm__vcpu_safe(struct vm *vm, unsigned cpu, uint64_t rip)
{
	int safe;

	if (!vm->park || cpu >= VM_MAX_VCPUS ||
	    __atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE)
		return 1;
	safe = vm->park->safe(vm->park_opaque, cpu, rip);
	__atomic_store_n(&vm->park_rip[cpu], safe ? 0 : rip, __ATOMIC_RELAXED);
	return safe;
}

int vm__vcpu_hlt_parked(struct vm *vm, unsigned cpu, uint64_t rip)
{
	return vm->park && vm->park->halted(vm->park_opaque, cpu, rip);
}

int vm__vcpu_park_waits(struct vm *vm, unsigned cpu)
{
	return vm->park && vm->park->waits(vm->park_opaque, cpu);
}

int vm__vcpu_park_wake(struct vm *vm, unsigned cpu)
{
	/* never once the VM ends: its threads are leaving, not coming back */
	return vm->park && vm->park->wake && cpu < VM_MAX_VCPUS &&
	       __atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) == VM_EXIT_NONE &&
	       vm->park->wake(vm->park_opaque, cpu);
}

uint64_t vm__exit_total(const struct vm *vm)
{
	const struct vm_exit_counts *e = &vm->exits;

	return e->io + e->mmio + e->hlt + e->window + e->intr + e->other;
}

int vm__run(struct vm *vm)
{
	int rc;

	vm->started[0] = 1;
	vm->running = 1;
	rc = vm->ops->run(vm);
	vm->running = 0;
	return rc;
}

/*
 * Under a runtime (vm->park) a vCPU that left the guest inside the runtime
 * goes back in until the runtime has parked it (vm__vcpu_safe), so the
 * wait re-kicks every PARK_KICK_NS (a vCPU running on needs another exit
 * to be looked at again) and gives up after VM_PARK_TIMEOUT_NS.
 */
#define PARK_KICK_NS 2000000ull

/* run_lock held: every vCPU thread waits outside the guest, and none is
 * wanted back in by its runtime (vm_park_ops.wake: a thread that the last
 * pause stopped still counts as waiting until it runs again). */
static int all_parked(struct vm *vm)
{
	unsigned i;

	if (vm->nr_parked < (int)vm->nr_vcpus)
		return 0;
	for (i = 0; i < vm->nr_vcpus; i++)
		if (vm__vcpu_park_wake(vm, i))
			return 0;
	return 1;
}

static int park_wait(struct vm *vm)
{
	uint64_t deadline = vm__now_ns() + VM_PARK_TIMEOUT_NS, now, next;
	struct timespec ts;
	unsigned i;

	pthread_mutex_lock(&vm->run_lock);
	while (!all_parked(vm)) {
		now = vm__now_ns();
		if (now >= deadline && !ending(vm))
			break;
		next = now + PARK_KICK_NS;
		timespec_at(&ts, next < deadline ? next : deadline);
		pthread_cond_clockwait(&vm->run_cond, &vm->run_lock, CLOCK_MONOTONIC, &ts);
		if (!all_parked(vm)) {
			pthread_mutex_unlock(&vm->run_lock);
			vm->ops->kick_all(vm);
			pthread_mutex_lock(&vm->run_lock);
		}
	}
	if (all_parked(vm)) {
		pthread_mutex_unlock(&vm->run_lock);
		return 0;
	}
	pthread_mutex_unlock(&vm->run_lock);
	for (i = 0; i < vm->nr_vcpus; i++) {
		uint64_t rip = __atomic_load_n(&vm->park_rip[i], __ATOMIC_RELAXED);

		if (rip) {
			vm__resume(vm);
			return vm__fail(vm, "vCPU %u did not park within %llu s (it last left the "
					"guest at rip %#llx, inside the runtime)", i,
					VM_PARK_TIMEOUT_NS / 1000000000u, (unsigned long long)rip);
		}
	}
	vm__resume(vm);
	return vm__fail(vm, "a vCPU did not leave the guest within %llu s",
			VM_PARK_TIMEOUT_NS / 1000000000u);
}

int vm__pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	if (ending(vm)) {
		pthread_mutex_unlock(&vm->run_lock);
		return vm__fail(vm, "guest has ended");
	}
	vm->pause_req = 1;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	if (vm->park)
		vm->park->request(vm->park_opaque);
	vm->ops->kick_all(vm);
	if (vm->park) {
		if (park_wait(vm) < 0)
			return -1;
	} else {
		/* Re-kicked like a runtime's park: a vCPU that went back in to
		 * finish an event's delivery (kvm_vcpu.c) needs another exit. */
		struct timespec ts;

		pthread_mutex_lock(&vm->run_lock);
		while (vm->nr_parked < (int)vm->nr_vcpus) {
			timespec_at(&ts, vm__now_ns() + PARK_KICK_NS);
			pthread_cond_clockwait(&vm->run_cond, &vm->run_lock, CLOCK_MONOTONIC, &ts);
			if (vm->nr_parked < (int)vm->nr_vcpus) {
				pthread_mutex_unlock(&vm->run_lock);
				vm->ops->kick_all(vm);
				pthread_mutex_lock(&vm->run_lock);
			}
		}
		pthread_mutex_unlock(&vm->run_lock);
	}
	if (vm->ops->paused)
		vm->ops->paused(vm);
	return 0;
}

void vm__resume(struct vm *vm)
{
	/* The runtime's park loop must see the request gone before the
	 * vCPUs it parked are let back in. */
	if (vm->park)
		vm->park->release(vm->park_opaque);
	pthread_mutex_lock(&vm->run_lock);
	vm->pause_req = 0;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

void vm__poweroff(struct vm *vm, enum vm_exit_kind kind, int status)
{
	pthread_mutex_lock(&vm->run_lock);
	if (!ending(vm)) { /* first cause wins: a crash after power-off is noise */
		vm->exit_status = status;
		__atomic_store_n(&vm->exit_kind, kind, __ATOMIC_RELEASE);
	}
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	vm->ops->kick_all(vm);
}

int vm__get_vcpu_state(struct vm *vm, unsigned cpu, struct vm_vcpu_state *st)
{
	if (cpu >= vm->nr_vcpus)
		return vm__fail(vm, "no vCPU %u", cpu);
	memset(st, 0, sizeof *st);
	st->started = vm->started[cpu] || cpu == 0;
	return vm->ops->get_state(vm, cpu, st);
}

int vm__set_vcpu_state(struct vm *vm, unsigned cpu, const struct vm_vcpu_state *st)
{
	if (cpu >= vm->nr_vcpus)
		return vm__fail(vm, "no vCPU %u", cpu);
	if (vm->ops->set_state(vm, cpu, st) < 0)
		return -1;
	pthread_mutex_lock(&vm->run_lock);
	vm->started[cpu] = st->started || cpu == 0;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	return 0;
}

/*
 * Under a runtime the real IDTR of CPU n is the runtime's per-CPU block n:
 * that is how the runtime knows which CPU it runs on (`sidt`), and where
 * its gates are.  Only an AP the runtime can address gets one.
 */
static int percpu_idt(struct vm *vm, unsigned cpu)
{
	static _Thread_local struct vm_vcpu_state st; /* 4 KiB of XSAVE: not on the stack */

	if (cpu >= RT_MAX_CPUS)
		return vm__fail(vm, "AP %u: the runtime has per-CPU blocks for %u CPUs", cpu,
				RT_MAX_CPUS);
	memset(&st, 0, sizeof st);
	if (vm->ops->get_state(vm, cpu, &st) < 0)
		return -1;
	st.idt.base = RT_PERCPU_ADDR(cpu);
	st.idt.limit = 0xfff;
	return vm->ops->set_state(vm, cpu, &st);
}

int vm__start_ap(struct vm *vm, unsigned cpu, uint32_t entry, uint32_t stack, uint32_t flags)
{
	int rc;

	if (cpu == 0 || cpu >= vm->nr_vcpus)
		return vm__fail(vm, "no AP %u (vCPUs: %u)", cpu, vm->nr_vcpus);
	pthread_mutex_lock(&vm->run_lock);
	if (vm->started[cpu]) {
		pthread_mutex_unlock(&vm->run_lock);
		return vm__fail(vm, "AP %u is already running", cpu);
	}
	/* Safe to touch its registers: a stopped AP waits outside the guest. */
	rc = (flags & VM_AP_REAL_MODE) ? vm->ops->reset_vcpu16(vm, cpu, entry, stack)
				       : vm->ops->reset_vcpu32(vm, cpu, entry, stack);
	if (rc == 0 && vm->window)
		rc = percpu_idt(vm, cpu);
	if (rc == 0) {
		vm->started[cpu] = 1;
		pthread_cond_broadcast(&vm->run_cond);
	}
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

int vm__dirty_start(struct vm *vm)
{
	memset(vm->host_dirty, 0, vm__dirty_bitmap_bytes(vm));
	if (vm->ops->dirty_start(vm) < 0)
		return -1;
	vm->dirty_on = 1;
	return 0;
}

int vm__dirty_fetch(struct vm *vm, uint64_t *bitmap)
{
	size_t i, n = vm__dirty_bitmap_bytes(vm) / 8;

	if (!vm->dirty_on)
		return vm__fail(vm, "dirty tracking is not on");
	/* Host writes first: a page the host writes after this point is in
	 * the next round, never lost between the two reads. */
	for (i = 0; i < n; i++)
		bitmap[i] = __atomic_exchange_n(&vm->host_dirty[i], 0, __ATOMIC_ACQ_REL);
	return vm->ops->dirty_fetch(vm, bitmap);
}

int vm__dirty_stop(struct vm *vm)
{
	vm->dirty_on = 0;
	return vm->ops->dirty_stop(vm);
}
