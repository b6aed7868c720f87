/* personality_kvm_state.c: the runtime's CPU model and device models out of and into a paused guest (RuntimeState), through the channel's state request */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "personality_kvm_host.h"
#include "personality_kvm_state.h"
#include "runtime_state.h"

/*
 * The device models live in the runtime's memory, in a layout only that
 * runtime build knows; the host reaches them through the window's
 * device-state area (rt_devstate_abi.h), which the runtime fills or reads
 * when asked (rt_shared.state_req).  It does so on CPU 0 in its park loop,
 * so the request is a resume-and-wait: park_req stays up (state_hold),
 * the vCPUs run on into the runtime and park there, CPU 0 answers once
 * every online vCPU is parked, and a second vm__pause freezes them again.
 */

static int paused(struct vm *vm)
{
	int ok;

	pthread_mutex_lock(&vm->run_lock);
	ok = vm->pause_req && vm->nr_parked >= (int)vm->nr_vcpus &&
	     vm->exit_kind == VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->run_lock);
	return ok;
}

static struct kvm_host *state_host(struct vm *vm, const char *what)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (!h || !h->booted) {
		vm__fail(vm, "kvm state %s: no runtime attached and booted", what);
		return NULL;
	}
	if (!paused(vm)) {
		vm__fail(vm, "kvm state %s: the VM must be paused (vm__pause) first", what);
		return NULL;
	}
	return h;
}

static int ended(struct vm *vm)
{
	return __atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE;
}

/* Ask CPU 0's park loop for (req) and wait for its answer; the VM is
 * paused again on return (0), or -1 with vm->err set. */
static int state_request(struct vm *vm, struct kvm_host *h, uint32_t req, const char *what)
{
	struct rt_shared *sh = h->sh;
	struct timespec nap = { 0, 200000 };
	uint64_t deadline;
	int32_t status;
	int rc;

	__atomic_store_n(&sh->state_status, RT_STATE_PENDING, __ATOMIC_RELEASE);
	__atomic_store_n(&sh->state_req, req, __ATOMIC_SEQ_CST);
	__atomic_store_n(&h->state_hold, 1, __ATOMIC_RELEASE);
	vm__resume(vm); /* park_req stays: they run only into the park loop */
	deadline = vm__now_ns() + VM_STATE_TIMEOUT_NS;
	while (__atomic_load_n(&sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE &&
	       !ended(vm) && vm__now_ns() < deadline)
		nanosleep(&nap, NULL);
	rc = vm__pause(vm);
	__atomic_store_n(&h->state_hold, 0, __ATOMIC_RELEASE);
	if (rc < 0)
		return -1; /* vm__pause said why (the guest ended, a vCPU did not park) */
	if (__atomic_load_n(&sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE) {
		/* paused now: CPU 0 cannot take it any more */
		__atomic_store_n(&sh->state_req, RT_STATE_REQ_NONE, __ATOMIC_RELEASE);
		return vm__fail(vm, "kvm state %s: the runtime did not answer within %llu s (a vCPU "
				"that never enters the runtime, e.g. an AP in user mode, keeps CPU 0 "
				"from serving it)", what, VM_STATE_TIMEOUT_NS / 1000000000u);
	}
	status = __atomic_load_n(&sh->state_status, __ATOMIC_ACQUIRE);
	if (status != RT_STATE_OK)
		return vm__fail(vm, "kvm state %s: the runtime refused (status %d)%s", what, status,
				req == RT_STATE_REQ_RESTORE ? ": a model rejected its snapshot "
				"(checked against the devices the runtime has); every model kept its "
				"state" : "");
	return 0;
}

static struct rt_cpu_state *cpu_block(struct vm *vm, unsigned cpu)
{
	return vm__window(vm, RT_PERCPU_ADDR(cpu) + RT_PERCPU_STATE, sizeof(struct rt_cpu_state));
}

static struct rt_dev_state *dev_area(struct vm *vm)
{
	return vm__window(vm, RT_WINDOW_BASE + RT_OFF_DEVSTATE, sizeof(struct rt_dev_state));
}

int vm__kvm_state_freeze(struct vm *vm, struct runtime_state *rs)
{
	struct kvm_host *h = state_host(vm, "save");
	unsigned i;

	if (!h || state_request(vm, h, RT_STATE_REQ_SAVE, "save") < 0)
		return -1;
	rs->ncpus = vm->nr_vcpus;
	for (i = 0; i < vm->nr_vcpus; i++)
		memcpy(&rs->cpu[i], cpu_block(vm, i), sizeof rs->cpu[i]);
	memcpy(&rs->dev, dev_area(vm), sizeof rs->dev);
	return 0;
}

int vm__kvm_state_save(struct vm *vm, uint8_t **buf, size_t *len)
{
	struct runtime_state *rs;
	char why[256];
	int rc;

	*buf = NULL;
	if (!(rs = calloc(1, sizeof *rs)))
		return vm__fail(vm, "kvm state save: out of memory");
	if (vm__kvm_state_freeze(vm, rs) < 0) {
		free(rs);
		return -1;
	}
	rc = runtime_state_pack(rs, buf, len, why, sizeof why);
	free(rs);
	if (rc < 0)
		return vm__fail(vm, "kvm state save: %s", why);
	return 0;
}

/* Running / in the park loop / offline: the park kinds that mean the same here. */
static int park_class(uint32_t parked)
{
	return parked == RT_CPU_PARKED_NO ? 0 : parked == RT_CPU_PARKED_DOWN ? 2 : 1;
}

static int cpus_fit(struct vm *vm, const struct runtime_state *rs)
{
	static const char *const cls[] = { "running", "parked in the runtime", "offline" };
	unsigned i;

	for (i = 0; i < rs->ncpus; i++) {
		const struct rt_cpu_state *live = cpu_block(vm, i), *want = &rs->cpu[i];
		int a = park_class(__atomic_load_n(&live->parked, __ATOMIC_ACQUIRE));
		int b = park_class(want->parked);

		if (live->online != want->online || a != b)
			return vm__fail(vm, "kvm state load: vCPU %u is %s%s here but %s%s in the "
					"state", i, live->online ? "" : "not online, ", cls[a],
					want->online ? "" : "not online, ", cls[b]);
	}
	return 0;
}

int vm__kvm_state_load(struct vm *vm, const uint8_t *buf, size_t len)
{
	struct kvm_host *h = state_host(vm, "load");
	struct runtime_state *rs;
	char why[256];
	unsigned i;
	int rc = -1;

	if (!h)
		return -1;
	if (!(rs = calloc(1, sizeof *rs)))
		return vm__fail(vm, "kvm state load: out of memory");
	if (runtime_state_unpack(buf, len, rs, why, sizeof why) < 0) {
		vm__fail(vm, "kvm state load: refused: %s", why);
		goto out;
	}
	if (rs->ncpus != vm->nr_vcpus) {
		vm__fail(vm, "kvm state load: refused: %u vCPUs in the state, %u here", rs->ncpus,
			 vm->nr_vcpus);
		goto out;
	}
	if (!!(rs->dev.flags & RT_DEV_STATE_NIC) != !!h->nic) {
		vm__fail(vm, "kvm state load: refused: the state %s a DP83820, this runtime %s",
			 rs->dev.flags & RT_DEV_STATE_NIC ? "has" : "has no",
			 h->nic ? "has one" : "has none");
		goto out;
	}
	/* Devices first: the runtime restores all of them or none.  Every
	 * vCPU is in the park loop once it answered, so the CPU blocks below
	 * are not overwritten by a park that is still to come. */
	memcpy(dev_area(vm), &rs->dev, sizeof rs->dev);
	if (state_request(vm, h, RT_STATE_REQ_RESTORE, "load") < 0 || cpus_fit(vm, rs) < 0)
		goto out;
	for (i = 0; i < rs->ncpus; i++) {
		struct rt_cpu_state *live = cpu_block(vm, i);
		const struct rt_cpu_state *want = &rs->cpu[i];

		live->vif = want->vif;
		live->idt_base = want->idt_base;
		live->idt_limit = want->idt_limit;
		if (want->online)
			live->reload_idt = 1; /* the CPU rebuilds its real IDT from these */
		if (park_class(want->parked) == 1)
			memcpy(&live->rax, &want->rax,
			       offsetof(struct rt_cpu_state, rflags) + 8 - offsetof(struct rt_cpu_state, rax));
		/* cr0..cr4 and the GDTR are snapshots of hardware state the
		 * runtime does not virtualize: the vCPU's own state (KVM) holds
		 * them; the block's copies are rewritten at the next park. */
	}
	rc = 0;
out:
	free(rs);
	return rc;
}
