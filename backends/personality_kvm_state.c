/* personality_kvm_state.c: the runtime's CPU model and device models out of and into a paused guest (RuntimeState), through the channel's state request */
#include <errno.h> /* program_invocation_short_name: pvhost or pvguest */
#include <stdio.h>
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
 * when asked (rt_shared.state_req), in its park loop.
 *
 * A save is asked with the pause itself (kvm_channel__ask_save, from
 * park_request): state_req goes up with park_req, the vCPUs that run
 * bring the upcall into the runtime and park, the first parked CPU with
 * no other CPU busy inside the runtime serves it (rt_site.c), and the
 * pause keeps every CPU inside the runtime going until it is served
 * (park_safe, park_wake in personality_kvm_channel.c).  The guest view
 * then reads the area: no resume, no second pause.
 *
 * Otherwise (a load, or a pause that ended without the save: no CPU took
 * it within KH_PAUSE_STATE_NS, and it was withdrawn) the request is a
 * resume-and-wait: park_req stays up (state_hold), the vCPUs run on only
 * into the runtime's park loop, the first vCPU in it answers and rings
 * RT_BELL_STATE, and a second vm__pause freezes them again.  It waits
 * for no other vCPU: one outside the runtime cannot touch a model, one
 * entering it parks first, and one may never come (it spins with
 * interrupts off on a guest lock that a parked vCPU holds).  Such a vCPU
 * ends the call where the pause finds it, outside the runtime, in its
 * own registers.
 *
 * Before a save the host clears the area: the runtime writes its models'
 * fields only (clearing 8 KiB in emulated ring 0 costs ~1 ms).
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

static struct rt_cpu_state *cpu_block(struct vm *vm, unsigned cpu)
{
	return vm__window(vm, RT_PERCPU_ADDR(cpu) + RT_PERCPU_STATE, sizeof(struct rt_cpu_state));
}

static const char *park_name(uint32_t parked)
{
	static const char *const n[] = { "running", "parked (asked)", "parked (idle)", "offline" };

	return parked < sizeof n / sizeof n[0] ? n[parked] : "parked (unknown kind)";
}

/*
 * The runtime did not answer, and the VM is paused again: say, per vCPU,
 * whether it parked and, for one that did not, where it stands (the
 * first vCPU in the park loop answers, so none reached it).  A line per
 * vCPU on stderr (CI logs keep it), and a short form in (out) for the error.
 */
static void stuck_report(struct vm *vm, struct kvm_host *h, char *out, size_t len)
{
	static _Thread_local struct vm_vcpu_state st; /* 4 KiB of XSAVE: not on the stack */
	size_t n = 0;
	unsigned i;

	out[0] = 0;
	fprintf(stderr, "%s: kvm state: no answer: news %#x park_req %u state_req %u, "
		"%llu upcalls\n", program_invocation_short_name, h->sh->news, h->sh->park_req, h->sh->state_req,
		(unsigned long long)h->sh->upcalls);
	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct rt_cpu_state *b = cpu_block(vm, i);
		uint32_t parked = __atomic_load_n(&b->parked, __ATOMIC_ACQUIRE);
		const char *where;
		int upcall;

		if (vm__get_vcpu_state(vm, i, &st) < 0) {
			fprintf(stderr, "%s: kvm state: vCPU %u: its state: %s\n",
				program_invocation_short_name, i, vm->err);
			continue;
		}
		where = st.rip >= RT_WINDOW_BASE && st.rip - RT_WINDOW_BASE < RT_WINDOW_SIZE ?
				"in the runtime" : st.cs.dpl == 3 ? "in user mode" :
				!(st.efer & (1u << 10)) || !st.cs.l ? "outside 64-bit mode" :
				"in guest kernel code";
		upcall = (st.events.irq_injected && st.events.irq_nr == RT_UPCALL_VECTOR) ||
			 (st.pending_irq_bitmap[RT_UPCALL_VECTOR / 64] >> (RT_UPCALL_VECTOR % 64) & 1);
		fprintf(stderr, "%s: kvm state: vCPU %u: %s%s, %s at rip %#llx cs %#x rflags %#llx "
			"(IF %u, vif %u), mp_state %u, interrupt shadow %u, upcall %s, event %s, "
			"%llu site calls\n", program_invocation_short_name, i, b->online ? "online, " : "not online, ",
			park_name(parked), where, (unsigned long long)st.rip, st.cs.selector,
			(unsigned long long)st.rflags, (unsigned)(st.rflags >> 9 & 1), b->vif,
			st.mp_state, st.events.irq_shadow, upcall ? "queued" : "none",
			st.events.exc_injected || st.events.exc_pending ? "exception" :
			st.events.irq_injected ? "interrupt" : "none",
			(unsigned long long)b->site_calls);
		if (!st.started || !b->online || parked != RT_CPU_PARKED_NO || n + 1 >= len)
			continue;
		n += (size_t)snprintf(out + n, len - n, "%svCPU %u never parked: %s at rip %#llx, "
				      "IF %u", n ? "; " : "", i, where, (unsigned long long)st.rip,
				      (unsigned)(st.rflags >> 9 & 1));
		if (n >= len)
			n = len - 1;
	}
}

static struct rt_dev_state *dev_area(struct vm *vm)
{
	return vm__window(vm, RT_WINDOW_BASE + RT_OFF_DEVSTATE, sizeof(struct rt_dev_state));
}

/* Until the runtime rings RT_BELL_STATE (state_req NONE again), the guest
 * ends, or the deadline passes. */
static void state_wait(struct vm *vm, struct kvm_host *h, uint64_t deadline)
{
	struct timespec ts;
	uint64_t t;

	pthread_mutex_lock(&h->state_lock);
	while (__atomic_load_n(&h->sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE &&
	       !ended(vm) && (t = vm__now_ns()) < deadline) {
		/* a bound on each wait: the guest's end rings no bell */
		t += 10000000u;
		t = t < deadline ? t : deadline;
		ts = (struct timespec){ (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
		pthread_cond_clockwait(&h->state_cond, &h->state_lock, CLOCK_MONOTONIC, &ts);
	}
	pthread_mutex_unlock(&h->state_lock);
}

/* Ask the runtime's park loop for (req) and wait for its answer; the VM
 * is paused again on return (0), or -1 with vm->err set. */
static int state_request(struct vm *vm, struct kvm_host *h, uint32_t req, const char *what)
{
	struct rt_shared *sh = h->sh;
	int32_t status;
	int rc;

	/* paused: no CPU works on a save asked with the pause (none stops
	 * while it serves), so the area is ours to clear */
	__atomic_store_n(&h->pause_state, 0, __ATOMIC_RELEASE);
	if (req == RT_STATE_REQ_SAVE)
		memset(dev_area(vm), 0, sizeof(struct rt_dev_state));
	__atomic_store_n(&sh->state_status, RT_STATE_PENDING, __ATOMIC_RELEASE);
	__atomic_store_n(&sh->state_req, req, __ATOMIC_SEQ_CST);
	__atomic_store_n(&h->state_hold, 1, __ATOMIC_RELEASE);
	vm__resume(vm); /* park_req stays: they run only into the park loop */
	state_wait(vm, h, vm__now_ns() + VM_STATE_TIMEOUT_NS);
	rc = vm__pause(vm);
	__atomic_store_n(&h->state_hold, 0, __ATOMIC_RELEASE);
	if (rc < 0)
		return -1; /* vm__pause said why (the guest ended, a vCPU did not park) */
	if (__atomic_load_n(&sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE) {
		char why[160];

		stuck_report(vm, h, why, sizeof why);
		/* paused now: no vCPU can take it any more */
		__atomic_store_n(&sh->state_req, RT_STATE_REQ_NONE, __ATOMIC_RELEASE);
		return vm__fail(vm, "kvm state %s: the runtime did not answer within %llu s: %s", what,
				VM_STATE_TIMEOUT_NS / 1000000000u,
				why[0] ? why : "vCPUs parked, yet none served it (see the report on "
				"stderr)");
	}
	status = __atomic_load_n(&sh->state_status, __ATOMIC_ACQUIRE);
	if (status != RT_STATE_OK)
		return vm__fail(vm, "kvm state %s: the runtime refused (status %d)%s", what, status,
				req == RT_STATE_REQ_RESTORE ? ": a model rejected its snapshot "
				"(checked against the devices the runtime has); every model kept its "
				"state" : "");
	return 0;
}

int vm__kvm_state_freeze(struct vm *vm, struct runtime_state *rs)
{
	struct kvm_host *h = state_host(vm, "save");
	unsigned i;

	if (!h)
		return -1;
	if (__atomic_load_n(&h->pause_state, __ATOMIC_ACQUIRE) &&
	    __atomic_load_n(&h->sh->state_req, __ATOMIC_ACQUIRE) == RT_STATE_REQ_NONE &&
	    __atomic_load_n(&h->sh->state_status, __ATOMIC_ACQUIRE) == RT_STATE_OK) {
		h->saves_at_pause++; /* served by the pause: nothing has run since */
	} else {
		if (state_request(vm, h, RT_STATE_REQ_SAVE, "save") < 0)
			return -1;
		h->saves_resumed++;
	}
	rs->ncpus = vm->nr_vcpus;
	for (i = 0; i < vm->nr_vcpus; i++)
		memcpy(&rs->cpu[i], cpu_block(vm, i), sizeof rs->cpu[i]);
	memcpy(&rs->dev, dev_area(vm), sizeof rs->dev);
	return 0;
}

void vm__kvm_state_counts(struct vm *vm, uint64_t *at_pause, uint64_t *resumed)
{
	struct kvm_host *h = kvm_host_of(vm);

	*at_pause = h ? h->saves_at_pause : 0;
	*resumed = h ? h->saves_resumed : 0;
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

		/* one outside the runtime in the state may have parked since:
		 * it ran on from there in place, its block holds its own */
		if (live->online != want->online || (a != b && !(a == 1 && b == 0)))
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
	/* Devices first: the runtime restores all of them or none.  A vCPU
	 * parked in the state stays in its park loop (park_req is up), so its
	 * block below is not overwritten by a park still to come; one outside
	 * the runtime keeps its registers in the vCPU (only its vif and IDTR
	 * are the block's). */
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
