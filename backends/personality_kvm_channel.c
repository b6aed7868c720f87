/* personality_kvm_channel.c: the host side of the runtime's channel: doorbell, upcalls, timer deadline, console and frame rings, parking */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "personality_kvm_host.h"
#include "rt_devstate_abi.h"

/*
 * The runtime holds the device models; the host only moves bytes and
 * time (docs/RUNTIME.md, "The host channel"):
 *
 *   doorbell   outl to RT_PORT_DOORBELL, one exit per batch: console and
 *              TX rings drained, the timer deadline re-read, the boot
 *              status checked
 *   upcall     the vm's interrupt source: pending while `news` is nonzero,
 *              the vector is RT_UPCALL_VECTOR; the generic path injects it
 *              when the guest can take it (real IF = 1) and wakes a halted
 *              vCPU 0
 *   timer      a vm timer that raises RT_NEWS_TIMER once the host clock
 *              passes timer_deadline_ns
 *   RX         a thread moves frames from the net backend into the RX ring;
 *              a frame that finds the ring full waits in the host's queue
 *              (never dropped), and the backend is not read while that
 *              queue is full, so the peer is pushed back instead
 *   parking    vm_park_ops: park_req + RT_NEWS_PARK, and which exits are
 *              safe points (outside the window, or the CPU's state block
 *              says parked)
 *
 * Moderation, as a NIC's interrupt holdoff and a virtio host's busy
 * polling do it (docs/RUNTIME.md, "The host channel"):
 *
 * - RX: frames are published in the ring without news first.  CPU 0's
 *   runtime looks at the ring at every site boundary, so while the guest
 *   runs kernel code it takes them without any exit.  Only if CPU 0 went
 *   through no site boundary for KH_RX_HOLDOFF_NS (it runs user code) and
 *   the frames are still there, or if vCPU 0 sleeps in the runtime's idle
 *   loop, does the host raise RT_NEWS_RX (and kick on a 0 -> nonzero
 *   change of `news`).
 * - TX: after a doorbell, or whenever frames pass, the receive thread
 *   drains the TX ring itself every KH_POLL_NS for KH_TX_POLL_NS, with
 *   host_draining_tx set, so the runtime rings no doorbell for those.
 *   When it stops it clears host_draining_tx, fences and drains once more:
 *   a frame published meanwhile is either seen here or rung for.
 *   A drain ends with a full fence and a second look at the producer index,
 *   so a frame published while the host drained is never left behind.
 */

#define KH_RX_HOLDOFF_NS 500000ull /* news if the runtime did not look for this long */
#define KH_TX_POLL_NS	 200000000ull /* keep polling TX this long after the last frame */
#define KH_POLL_NS	 150000ull  /* the channel thread's period while moderating */
#define KH_TIMER_SLACK_NS 1000000ull /* a passed deadline the runtime may still see itself */

#define KH_PAUSE_STATE_NS 20000000ull /* how long a pause waits for a CPU to take the save it asked */

#define BELLS_KNOWN (RT_BELL_CONSOLE | RT_BELL_NET_TX | RT_BELL_TIMER | RT_BELL_BOOTED | \
		     RT_BELL_STATE)

struct rt_net_slot *kvm_channel__slot(struct kvm_host *h, uint32_t off, uint32_t index)
{
	return vm__window(h->vm, RT_WINDOW_BASE + off + (uint64_t)(index % RT_NET_SLOTS) *
					  RT_NET_SLOT_SIZE, sizeof(struct rt_net_slot));
}

/* ---- console: runtime -> stdout */

static void console_out(struct kvm_host *h, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n && h->console_fd >= 0) {
		w = write(h->console_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			h->console_fd = -1; /* console gone: keep the guest running */
			break;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void console_drain(struct kvm_host *h)
{
	uint32_t prod = __atomic_load_n(&h->sh->console.prod, __ATOMIC_ACQUIRE);
	uint32_t cons = h->con_cons, n = prod - cons, at, first;

	if (n > RT_CONSOLE_SIZE) {
		kvm_host__fail(h, "runtime: console ring indices corrupt (prod %u, cons %u)", prod,
			       cons);
		return;
	}
	at = cons % RT_CONSOLE_SIZE;
	first = n < RT_CONSOLE_SIZE - at ? n : RT_CONSOLE_SIZE - at;
	console_out(h, h->console + at, first);
	console_out(h, h->console, n - first);
	h->console_bytes += n;
	h->con_cons = prod;
	__atomic_store_n(&h->sh->console.cons, prod, __ATOMIC_RELEASE);
}

/* ---- TX: runtime -> net backend */

static uint32_t tx_drain(struct kvm_host *h)
{
	uint32_t prod, cons = h->tx_cons, n = 0;
	struct rt_net_slot *s;

	for (;;) {
		prod = __atomic_load_n(&h->sh->net_tx.prod, __ATOMIC_ACQUIRE);
		if (prod - cons > RT_NET_SLOTS) {
			kvm_host__fail(h, "runtime: TX ring indices corrupt (prod %u, cons %u)", prod,
				       cons);
			return n;
		}
		if (prod == cons)
			break;
		n += prod - cons;
		for (; cons != prod; cons++) {
			s = kvm_channel__slot(h, RT_OFF_NET_TX, cons);
			uint32_t len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);

			if (len == 0 || len > RT_NET_FRAME_MAX)
				h->tx_bad++;
			else if (!h->nic || h->net.ops->send(&h->net, s->data, len) < 0)
				h->tx_lost++;
			else
				h->tx_frames++;
		}
		h->tx_cons = cons;
		__atomic_store_n(&h->sh->net_tx.cons, cons, __ATOMIC_RELEASE);
		/* pairs with the runtime's fence between publishing a frame and
		 * deciding from cons whether to ring */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return n;
}

/* ---- the boot report */

static void boot_check(struct kvm_host *h)
{
	int32_t status = *(volatile int32_t *)&h->boot->status;
	char why[sizeof h->boot->error + 1];

	memcpy(why, (const char *)h->boot->error, sizeof h->boot->error);
	why[sizeof h->boot->error] = '\0';
	if (status < 0) {
		kvm_host__fail(h, "runtime: boot failed: %s", why[0] ? why : "(no reason given)");
	} else if (status > 0) {
		kvm_host__fail(h, "runtime: rang RT_BELL_BOOTED without a final status (%d)", status);
	} else {
		/* first: the instant the guest may run again after an adopt */
		if (h->adopting && !h->adopt_done_ns)
			__atomic_store_n(&h->adopt_done_ns, vm__now_ns(), __ATOMIC_RELEASE);
		__atomic_store_n(&h->booted, 1, __ATOMIC_RELEASE);
		h->sites = h->boot->sites;
		h->rewritten = h->boot->sites_rewritten;
	}
}

/* ---- the doorbell port (device lock held) */

static uint64_t bell_read(void *opaque, uint64_t off, unsigned size)
{
	return 0;
}

static void bell_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct kvm_host *h = opaque;
	uint32_t bits = (uint32_t)val;

	h->bells++;
	/* An unknown bell is a runtime of another ABI: no guessing. */
	if (bits & ~BELLS_KNOWN) {
		kvm_host__fail(h, "runtime: unknown doorbell bits %#x (ABI %u)", bits & ~BELLS_KNOWN,
			       RT_ABI_VERSION);
		return;
	}
	if (bits & RT_BELL_CONSOLE) /* first: a failing boot's last words */
		console_drain(h);
	if (bits & RT_BELL_BOOTED)
		boot_check(h);
	if (bits & RT_BELL_NET_TX) {
		tx_drain(h);
		/* frames are flowing: the receive thread polls TX for a while */
		__atomic_store_n(&h->tx_poll_until, vm__now_ns() + KH_TX_POLL_NS, __ATOMIC_RELEASE);
		__atomic_store_n(&h->sh->host_draining_tx, 1, __ATOMIC_RELEASE);
		if (h->stop[1] >= 0 && write(h->stop[1], "t", 1) < 0) {
			/* the thread then finds out at its next timeout */
		}
	}
	if (bits & RT_BELL_STATE) { /* state_request waits for it, not polling */
		pthread_mutex_lock(&h->state_lock);
		pthread_cond_broadcast(&h->state_cond);
		pthread_mutex_unlock(&h->state_lock);
		/* A pause that asked for it: the vCPUs it kept going for the
		 * save (one outside the runtime may run on without an exit for
		 * milliseconds) may stop now; without this kick they waited for
		 * the pause's next re-kick (~1.5 ms of every kvm freeze). */
		if (__atomic_load_n(&h->vm->pause_req, __ATOMIC_ACQUIRE))
			h->vm->ops->kick_all(h->vm);
	}
	if ((bits & RT_BELL_TIMER) && h->stop[1] >= 0 && write(h->stop[1], "t", 1) < 0) {
		/* the channel thread takes the new deadline: wake it; a full
		 * pipe means it has wakeups pending anyway */
	}
}

static const struct vm_io_ops bell_ops = { bell_read, bell_write };

/* ---- the upcall as the vm's interrupt source, the deadline as its timer */

static int news_pending(void *opaque)
{
	struct kvm_host *h = opaque;

	return __atomic_load_n(&h->sh->news, __ATOMIC_ACQUIRE) != 0;
}

static int news_ack(void *opaque)
{
	return RT_UPCALL_VECTOR; /* the runtime takes the news bits itself */
}

static const struct vm_irq_ops upcall_ops = { news_pending, news_ack };

/*
 * Time belongs to the channel thread, not to a timer on vCPU 0's thread:
 * that one could only wake the guest by a signal, one exit per tick even
 * when the runtime reads the clock itself.  The runtime's protocol
 * (runtime/kvm/rt_channel.c): timer_deadline_ns always holds the PIT's next
 * edge, and a runtime that passes a site boundary where it polls (the
 * common kinds' assembler fast paths do not) ticks the PIT and writes the
 * next edge on its own.  So at a passed deadline the host waits
 * KH_TIMER_SLACK_NS and posts RT_NEWS_TIMER (and kicks) only if the field
 * still holds that edge, or at once if CPU 0 sleeps in the runtime's idle
 * loop.  The news is posted only while
 * the bit is clear: a runtime slow to take it sees one upcall, not many.
 */
static uint64_t timer_check(struct kvm_host *h, uint64_t now)
{
	uint64_t d = __atomic_load_n(&h->sh->timer_deadline_ns, __ATOMIC_ACQUIRE);
	struct rt_cpu_state *cpu0;
	int idle;

	if (d == UINT64_MAX)
		return UINT64_MAX;
	if (now < d)
		return d;
	if (__atomic_load_n(&h->sh->news, __ATOMIC_ACQUIRE) & RT_NEWS_TIMER)
		return now + KH_TIMER_SLACK_NS; /* told; it has not taken it yet */
	cpu0 = (struct rt_cpu_state *)vm__window(h->vm, RT_PERCPU_ADDR(0) + RT_PERCPU_STATE,
						 sizeof *cpu0);
	idle = !cpu0 || __atomic_load_n(&cpu0->parked, __ATOMIC_ACQUIRE) == RT_CPU_PARKED_IDLE;
	if (!idle && d != h->tm_deadline) {
		/* first look at this edge: a runtime that passes a boundary where
		 * it polls reads the clock itself and moves the field on */
		h->tm_deadline = d;
		return now + KH_TIMER_SLACK_NS;
	}
	__atomic_fetch_or(&h->sh->news, RT_NEWS_TIMER, __ATOMIC_ACQ_REL);
	h->timer_news++;
	vm__notify_irq(h->vm);
	return now + KH_TIMER_SLACK_NS;
}

/* ---- parking */

static int in_window(uint64_t rip)
{
	return rip >= RT_WINDOW_BASE && rip - RT_WINDOW_BASE < RT_WINDOW_SIZE;
}

static uint32_t cpu_parked(struct kvm_host *h, unsigned cpu)
{
	const struct rt_cpu_state *st;

	if (cpu >= RT_MAX_CPUS)
		return RT_CPU_PARKED_NO;
	st = vm__window(h->vm, RT_PERCPU_ADDR(cpu) + RT_PERCPU_STATE, sizeof *st);
	return __atomic_load_n(&st->parked, __ATOMIC_ACQUIRE);
}

/*
 * A pause asks the runtime for its device state right away (what a
 * migration's freeze reads next, personality_kvm_state.c): cleared area,
 * state_req, then park_req.
 */
void kvm_channel__ask_save(struct kvm_host *h)
{
	struct rt_shared *sh = h->sh;

	/* not inside state_request (its own second pause), not before the
	 * runtime runs, not while an earlier request is open or taken */
	if (!__atomic_load_n(&h->booted, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&h->state_hold, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE)
		return;
	memset(vm__window(h->vm, RT_WINDOW_BASE + RT_OFF_DEVSTATE, sizeof(struct rt_dev_state)), 0,
	       sizeof(struct rt_dev_state));
	__atomic_store_n(&h->pause_state_ns, vm__now_ns(), __ATOMIC_RELEASE);
	__atomic_store_n(&h->pause_state, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&sh->state_status, RT_STATE_PENDING, __ATOMIC_RELEASE);
	__atomic_store_n(&sh->state_req, RT_STATE_REQ_SAVE, __ATOMIC_SEQ_CST);
}

static void park_request(void *opaque)
{
	struct kvm_host *h = opaque;

	kvm_channel__ask_save(h); /* state_req before park_req: rt_abi.h */
	__atomic_store_n(&h->sh->park_req, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&h->sh->news, RT_NEWS_PARK, __ATOMIC_ACQ_REL);
	if (__atomic_load_n(&h->pause_state, __ATOMIC_ACQUIRE))
		vm__notify_irq(h->vm); /* vCPUs asleep in their park loop: park_wake */
}

/*
 * A save asked with this pause and not served yet (personality_kvm_state.c).
 * Not taken by any CPU within KH_PAUSE_STATE_NS, it is withdrawn (a swap
 * against the runtime's: a CPU that took it first finishes it), the pause
 * ends as any, and the guest view asks the old way, which says who never
 * came.
 */
static int pause_state_open(struct kvm_host *h)
{
	uint32_t req;

	if (!__atomic_load_n(&h->pause_state, __ATOMIC_ACQUIRE))
		return 0;
	req = __atomic_load_n(&h->sh->state_req, __ATOMIC_ACQUIRE);
	if (req == RT_STATE_REQ_SAVE &&
	    vm__now_ns() - __atomic_load_n(&h->pause_state_ns, __ATOMIC_ACQUIRE) >=
		    KH_PAUSE_STATE_NS &&
	    __atomic_compare_exchange_n(&h->sh->state_req, &req, RT_STATE_REQ_NONE, 0,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&h->pause_state, 0, __ATOMIC_RELEASE);
		return 0;
	}
	return req != RT_STATE_REQ_NONE;
}

/*
 * While a save asked with the pause is open, a CPU inside the runtime is
 * not stopped at all (it is serving it, or on its way to its park loop,
 * where it may), and a CPU outside is let back in to bring the upcall and
 * park: vCPU 0, and an AP while vCPU 0 has not parked (vCPU 0 may spin
 * with interrupts off on a guest lock that a parked AP holds, where no
 * upcall reaches it).  For KH_PAUSE_STATE_NS at most (pause_state_open).
 */
static int park_safe(void *opaque, unsigned cpu, uint64_t rip)
{
	struct kvm_host *h = opaque;

	if (pause_state_open(h)) {
		if (in_window(rip))
			return 0;
		if (cpu == 0 || cpu_parked(h, 0) == RT_CPU_PARKED_NO)
			return 0;
	}
	return !in_window(rip) || cpu_parked(h, cpu) != RT_CPU_PARKED_NO;
}

/* A vCPU in its park loop (asleep, or stopped there by the last pause and
 * not run since) when a pause finds it: in once more while the save asked
 * with the pause is open and no CPU has taken it (it may be the one to
 * serve it: the others may be outside the runtime). */
static int park_wake(void *opaque, unsigned cpu)
{
	struct kvm_host *h = opaque;
	uint32_t parked = cpu_parked(h, cpu);

	return pause_state_open(h) &&
	       __atomic_load_n(&h->sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_TAKEN &&
	       (parked == RT_CPU_PARKED_REQ || parked == RT_CPU_PARKED_IDLE);
}

static int park_halted(void *opaque, unsigned cpu, uint64_t rip)
{
	uint32_t parked = cpu_parked(opaque, cpu);

	/* DOWN (guest hlt with vIF = 0) is a halt as under native */
	return in_window(rip) && (parked == RT_CPU_PARKED_REQ || parked == RT_CPU_PARKED_IDLE);
}

/*
 * A device-state request is open: any vCPU in the runtime's park loop may
 * serve it (runtime/common/rt_site.c).  vCPU 0 does when it is there, or
 * gets there by the upcall its news brings; only when it is not (it may
 * spin with interrupts off, outside the runtime, on a guest lock that a
 * parked AP holds) do the parked APs leave their hlt to look (one in user
 * mode gets the upcall anyway, park_ap_kick).
 */
static int state_needs_aps(struct kvm_host *h)
{
	return __atomic_load_n(&h->sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE &&
	       cpu_parked(h, 0) == RT_CPU_PARKED_NO;
}

static int park_waits(void *opaque, unsigned cpu)
{
	struct kvm_host *h = opaque;

	if (cpu == 0 ? __atomic_load_n(&h->sh->state_req, __ATOMIC_ACQUIRE) != RT_STATE_REQ_NONE
		     : state_needs_aps(h))
		return 0;
	switch (cpu_parked(h, cpu)) {
	case RT_CPU_PARKED_REQ: /* until the host withdraws the request */
		return __atomic_load_n(&h->sh->park_req, __ATOMIC_ACQUIRE) != 0;
	case RT_CPU_PARKED_IDLE: /* until news: vCPU 0 takes the upcall in its hlt */
		return 1;
	default:
		return 0;
	}
}

static void park_release(void *opaque)
{
	struct kvm_host *h = opaque;

	if (__atomic_load_n(&h->state_hold, __ATOMIC_ACQUIRE)) {
		/* a state request: parked vCPUs stay parked, CPU 0 looks again */
		vm__notify_irq(h->vm);
		return;
	}
	if (__atomic_load_n(&h->pause_state, __ATOMIC_ACQUIRE)) {
		/* a save asked with the pause that nobody took: withdrawn
		 * first (no CPU works on it: none stops while serving) */
		__atomic_store_n(&h->pause_state, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&h->sh->state_req, RT_STATE_REQ_NONE, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(&h->sh->park_req, 0, __ATOMIC_RELEASE);
	__atomic_fetch_and(&h->sh->news, ~RT_NEWS_PARK, __ATOMIC_ACQ_REL);
	vm__notify_irq(h->vm); /* parked vCPUs look again */
}

/* An online AP that has not parked while a park is asked: the upcall takes
 * it into the runtime from user mode too (it parks there). */
static int park_ap_kick(void *opaque, unsigned cpu)
{
	struct kvm_host *h = opaque;
	const struct rt_cpu_state *st;

	if (cpu >= RT_MAX_CPUS || !__atomic_load_n(&h->sh->park_req, __ATOMIC_ACQUIRE))
		return -1;
	st = vm__window(h->vm, RT_PERCPU_ADDR(cpu) + RT_PERCPU_STATE, sizeof *st);
	if (!st->online || __atomic_load_n(&st->parked, __ATOMIC_ACQUIRE) != RT_CPU_PARKED_NO)
		return -1;
	return RT_UPCALL_VECTOR;
}

static const struct vm_park_ops park_ops = {
	park_request, park_safe, park_halted, park_waits, park_release, park_ap_kick, park_wake,
};

/* ---- RX: net backend -> host queue -> RX ring (receive thread only) */

/* Read frames while the queue has room; 1 if the backend went away. */
static int rx_fill(struct kvm_host *h)
{
	ssize_t len;
	unsigned tail;

	while (h->qcount < KH_RX_QUEUE) {
		tail = (h->qhead + h->qcount) % KH_RX_QUEUE;
		len = h->net.ops->recv(&h->net, h->q[tail], RT_NET_FRAME_MAX);
		if (len < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
		if (len == 0 || len > (ssize_t)RT_NET_FRAME_MAX) {
			/* longer than any slot (a jumbo frame past 9216): the
			 * one loss there is, and it is counted */
			__atomic_fetch_add(&h->rx_too_long, 1, __ATOMIC_RELAXED);
			continue;
		}
		h->qlen[tail] = (uint32_t)len;
		__atomic_store_n(&h->qcount, h->qcount + 1, __ATOMIC_RELAXED);
		if (h->qcount > h->rx_held_peak)
			__atomic_store_n(&h->rx_held_peak, (uint64_t)h->qcount, __ATOMIC_RELAXED);
	}
	return 0;
}

/* Offer the held frames to the ring; tell the runtime per the policy above. */
static void rx_moderate(struct kvm_host *h);

static void rx_push(struct kvm_host *h)
{
	uint32_t cons = __atomic_load_n(&h->sh->net_rx.cons, __ATOMIC_ACQUIRE);
	uint32_t prod = h->rx_prod, used = prod - cons, pushed = 0;
	struct rt_net_slot *s;

	if (used > RT_NET_SLOTS) {
		kvm_host__fail(h, "runtime: RX ring indices corrupt (prod %u, cons %u)", prod, cons);
		return;
	}
	while (h->qcount && used < RT_NET_SLOTS) {
		s = kvm_channel__slot(h, RT_OFF_NET_RX, prod);
		memcpy(s->data, h->q[h->qhead], h->qlen[h->qhead]);
		s->len = h->qlen[h->qhead];
		h->qhead = (h->qhead + 1) % KH_RX_QUEUE;
		__atomic_store_n(&h->qcount, h->qcount - 1, __ATOMIC_RELAXED);
		prod++;
		used++;
		pushed++;
	}
	if (h->qcount)
		__atomic_fetch_add(&h->rx_held_waits, 1, __ATOMIC_RELAXED);
	if (!pushed)
		return;
	h->rx_prod = prod;
	__atomic_store_n(&h->sh->net_rx.prod, prod, __ATOMIC_RELEASE);
	__atomic_fetch_add(&h->rx_frames, pushed, __ATOMIC_RELAXED);
	if (!h->rx_quiet_since) {
		struct rt_cpu_state *cpu0 = (struct rt_cpu_state *)vm__window(
			h->vm, RT_PERCPU_ADDR(0) + RT_PERCPU_STATE, sizeof *cpu0);

		h->rx_quiet_since = vm__now_ns();
		h->rx_quiet_prod = prod;
		h->rx_quiet_calls = cpu0 ? __atomic_load_n(&cpu0->site_calls, __ATOMIC_RELAXED) : 0;
	}
	rx_moderate(h);
}

static void rx_news(struct kvm_host *h)
{
	__atomic_fetch_add(&h->rx_news, 1, __ATOMIC_RELAXED);
	/* Only a 0 -> nonzero change needs the kick: while news is nonzero
	 * vCPU 0 injects at its next entry with IF = 1, or has asked KVM for
	 * the interrupt window. */
	if (!(__atomic_fetch_or(&h->sh->news, RT_NEWS_RX, __ATOMIC_ACQ_REL)))
		vm__notify_irq(h->vm);
}

/*
 * Frames sit in the ring without news: did the runtime take them (it
 * polls at site boundaries), must it be told now (its CPU sleeps, or the
 * holdoff ran out), or can it wait a little longer?
 */
static void rx_moderate(struct kvm_host *h)
{
	uint32_t cons, prod = h->rx_prod;
	struct rt_cpu_state *cpu0;

	if (!h->rx_quiet_since)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* prod published before these reads */
	cons = __atomic_load_n(&h->sh->net_rx.cons, __ATOMIC_ACQUIRE);
	if ((int32_t)(cons - h->rx_quiet_prod) >= 0) {
		/* the runtime took what was waiting by itself: no news needed */
		h->rx_quiet_since = cons == prod ? 0 : vm__now_ns();
		h->rx_quiet_prod = prod;
		if (!h->rx_quiet_since)
			return;
	}
	cpu0 = (struct rt_cpu_state *)vm__window(h->vm, RT_PERCPU_ADDR(0) + RT_PERCPU_STATE,
						 sizeof *cpu0);
	if (cpu0 && __atomic_load_n(&cpu0->parked, __ATOMIC_ACQUIRE) == RT_CPU_PARKED_IDLE) {
		rx_news(h); /* it sleeps: only the upcall wakes it */
		h->rx_quiet_since = 0;
		return;
	}
	/* CPU 0 went through site boundaries since: the runtime looked at the
	 * ring (and left frames there only because the NIC had no room; it
	 * retries when the driver gives descriptors back).  Wait on. */
	uint64_t calls = cpu0 ? __atomic_load_n(&cpu0->site_calls, __ATOMIC_RELAXED) : 0;
	if (calls != h->rx_quiet_calls) {
		h->rx_quiet_calls = calls;
		h->rx_quiet_since = vm__now_ns();
		return;
	}
	if (vm__now_ns() - h->rx_quiet_since >= KH_RX_HOLDOFF_NS) {
		rx_news(h);
		h->rx_quiet_since = 0;
	}
}

/* The receive thread's TX duty: drain while frames flow, then hand back to the doorbell. */
static void tx_poll(struct kvm_host *h)
{
	uint64_t until = __atomic_load_n(&h->tx_poll_until, __ATOMIC_ACQUIRE);
	uint32_t n;

	if (!until)
		return;
	pthread_mutex_lock(&h->vm->dev_lock);
	n = tx_drain(h);
	if (n) {
		h->tx_polled += n;
		__atomic_store_n(&h->tx_poll_until, vm__now_ns() + KH_TX_POLL_NS, __ATOMIC_RELEASE);
	} else if (vm__now_ns() >= until) {
		__atomic_store_n(&h->tx_poll_until, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&h->sh->host_draining_tx, 0, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		h->tx_polled += tx_drain(h); /* what was published before the runtime saw 0 */
	}
	pthread_mutex_unlock(&h->vm->dev_lock);
}

static void *chan_thread(void *arg)
{
	struct kvm_host *h = arg;
	struct pollfd pfd[2] = {
		{ .fd = -1, .events = POLLIN },
		{ .fd = h->stop[0], .events = POLLIN },
	};
	struct timespec ts;
	uint64_t now, wake;
	char c;

	for (;;) {
		/* A full queue stops reading: the backend pushes back. */
		pfd[0].fd = !h->nic || h->rx_gone ? -1 : h->net.fd;
		pfd[0].events = h->qcount < KH_RX_QUEUE ? POLLIN : 0;
		now = vm__now_ns();
		wake = timer_check(h, now);
		if (h->rx_quiet_since || __atomic_load_n(&h->tx_poll_until, __ATOMIC_ACQUIRE))
			wake = wake < now + KH_POLL_NS ? wake : now + KH_POLL_NS;
		if (h->qcount && wake > now + KH_RX_RETRY_MS * 1000000ull)
			wake = now + KH_RX_RETRY_MS * 1000000ull;
		if (wake == UINT64_MAX)
			wake = now + 3600000000000ull;
		wake = wake > now ? wake - now : 0;
		ts = (struct timespec){ (time_t)(wake / 1000000000u), (long)(wake % 1000000000u) };
		if (ppoll(pfd, 2, &ts, NULL) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents) {
			if (read(h->stop[0], &c, 1) != 1 || c != 't')
				break; /* a 0 byte or EOF: leave */
		}
		if (pfd[0].revents & POLLIN)
			h->rx_gone |= rx_fill(h);
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			h->rx_gone = 1;
		if (h->qcount)
			rx_push(h);
		rx_moderate(h); /* also while the ring is full: its frames still need news */
		tx_poll(h);
	}
	return NULL;
}

/* ---- setup, drain, stop */

int kvm_channel__init(struct kvm_host *h)
{
	struct vm *vm = h->vm;

	if (vm__register_pio(vm, RT_PORT_DOORBELL, 4, &bell_ops, h) < 0)
		return -1;
	vm__set_irq_source(vm, &upcall_ops, h);
	vm__set_park_ops(vm, &park_ops, h);
	if (h->nic) {
		h->q = malloc(KH_RX_QUEUE * sizeof *h->q);
		if (!h->q)
			return vm__fail(vm, "net: out of memory");
	}
	if (pipe(h->stop) < 0) {
		h->stop[0] = h->stop[1] = -1;
		return vm__fail(vm, "channel: pipe: %s", strerror(errno));
	}
	return kvm_channel__start(h);
}

int kvm_channel__start(struct kvm_host *h)
{
	if (h->chan_ok)
		return 0;
	if (pthread_create(&h->chan_thread, NULL, chan_thread, h) != 0)
		return vm__fail(h->vm, "channel: thread: %s", strerror(errno));
	h->chan_ok = 1;
	return 0;
}

void kvm_channel__drain(struct kvm_host *h)
{
	pthread_mutex_lock(&h->vm->dev_lock);
	console_drain(h);
	tx_drain(h);
	pthread_mutex_unlock(&h->vm->dev_lock);
}

void kvm_channel__stop(struct kvm_host *h)
{
	char c = 0;

	if (!h->chan_ok)
		return;
	if (write(h->stop[1], &c, 1) < 0) {
		/* a pipe with room cannot fail; if it did, the join would hang */
	}
	pthread_join(h->chan_thread, NULL); /* it read the byte: a restart finds the pipe empty */
	h->chan_ok = 0;
}
