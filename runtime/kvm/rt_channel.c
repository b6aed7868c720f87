/* rt_channel.c: the kvm host channel, guest half: console and net TX producers, net RX consumer, news, timer deadline, doorbell, host clock */
#include "rt_channel.h"

/*
 * Protocol with the host half (pvhost), beyond what rt_abi.h says:
 *
 * - Rings: the producer fills a slot, then publishes prod with a release
 *   store; the consumer reads slots after an acquire load of prod and
 *   frees them with a release store of cons.  Nothing is ever dropped: a
 *   full console or TX ring rings the doorbell and spins until the host
 *   moves cons (re-ringing every RT_CHAN_RERING spins in case the host
 *   looked before the ring filled).  For TX this beats returning -1 to
 *   the model: the DP83820 would hand the descriptor back as sent and the
 *   frame would be gone, where waiting only stalls the guest's CPU.
 * - TX bell: when the ring was empty before the frame and host_draining_tx
 *   is 0, checked AFTER prod is published (full fence).  So the host, when
 *   it stops draining, must clear host_draining_tx, fence, and look at
 *   prod once more: one of the two sides then sees the other's store.
 * - RX news: want_rx_news goes 0 -> 1 only when the ring is empty and the
 *   NIC can take frames; the runtime then fences and looks at prod again.
 *   The host must publish prod, fence, then read want_rx_news to decide
 *   on RT_NEWS_RX.  While want_rx_news is 0 the runtime retries the ring
 *   itself whenever the guest writes the NIC's registers (the only way a
 *   DP83820 that could not receive becomes able to).
 * - Timer: timer_deadline_ns is always the PIT's next IRQ0 edge.  It rings
 *   RT_BELL_TIMER only when a guest write to the PIT moves it earlier than
 *   what the host last had; after RT_NEWS_TIMER the runtime ticks the PIT
 *   and writes the next deadline without a bell: the host must take the
 *   field as its new deadline whenever it changes after it posted the news
 *   (if the field still holds a passed time, the host posts the news again).
 */

#define RT_CHAN_RERING 1024u /* spins (about 1 ms at CPL 0 here) before ringing again */

static struct {
	uint32_t con_prod;	/* console bytes produced */
	uint32_t con_rung;	/* con_prod when the host last heard of the console */
	uint32_t tx_prod;	/* TX frames produced */
	uint32_t rx_cons;	/* RX frames consumed */
	uint32_t rx_counted;	/* RX frames up to here were counted in frames_rx_held */
	uint32_t bells;		/* doorbell bits collected, not rung yet */
	uint64_t host_deadline;	/* the deadline the host works with, as far as we know */
} chan;

static uint32_t rt_chan_load(const volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void rt_chan_store(volatile uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

void rt_chan_init(void)
{
	struct rt_shared *sh = RT_SHARED;

	/* The host zeroes the rings before boot; start from what is there so
	 * a runtime taking over a live channel (upgrade) continues it. */
	chan.con_prod = chan.con_rung = sh->console.prod;
	chan.tx_prod = sh->net_tx.prod;
	chan.rx_cons = chan.rx_counted = sh->net_rx.cons;
	chan.bells = 0;
	chan.host_deadline = UINT64_MAX;
	sh->timer_deadline_ns = UINT64_MAX;
	sh->want_rx_news = 0;
}

void rt_chan_ring(uint32_t bits)
{
	__atomic_fetch_add(&RT_SHARED->doorbells, 1, __ATOMIC_RELAXED);
	rt_chan_bell_out(bits);
}

uint32_t rt_chan_take_bells(void)
{
	uint32_t bits = chan.bells;

	chan.bells = 0;
	return bits;
}

/* A full ring: ring now (with whatever else is pending) and wait for the
 * host to free a slot.  The device lock stays held: the caller is in the
 * middle of a model operation that must not lose its byte or frame. */
static void rt_chan_wait_room(const volatile uint32_t *cons, uint32_t prod, uint32_t size,
			      uint32_t bit)
{
	unsigned spins = 0;

	rt_chan_ring(chan.bells | bit);
	chan.bells = 0;
	while (prod - rt_chan_load(cons) >= size) {
		__builtin_ia32_pause();
		if (++spins == RT_CHAN_RERING) {
			rt_chan_ring(bit);
			spins = 0;
		}
	}
}

/* ---- console: bytes from the UART */

void rt_chan_console_tx(uint8_t byte)
{
	struct rt_shared *sh = RT_SHARED;
	uint8_t *ring = RT_WIN(RT_OFF_CONSOLE);
	uint32_t used = chan.con_prod - rt_chan_load(&sh->console.cons);

	if (used >= RT_CONSOLE_SIZE) {
		rt_chan_wait_room(&sh->console.cons, chan.con_prod, RT_CONSOLE_SIZE, RT_BELL_CONSOLE);
		chan.con_rung = chan.con_prod;
		used = chan.con_prod - rt_chan_load(&sh->console.cons);
	}
	ring[chan.con_prod & (RT_CONSOLE_SIZE - 1)] = byte;
	rt_chan_store(&sh->console.prod, ++chan.con_prod);
	/* A line is the unit the host prints; half a ring without one would
	 * otherwise wait for the next newline. */
	if (byte == '\n' || used == RT_CONSOLE_SIZE / 2) { /* now more than half full */
		chan.bells |= RT_BELL_CONSOLE;
		chan.con_rung = chan.con_prod;
	}
}

/* ---- net TX: frames the DP83820 sends */

int rt_chan_net_tx(const uint8_t *frame, size_t len)
{
	struct rt_shared *sh = RT_SHARED;
	struct rt_net_slot *slot;
	uint32_t cons;
	int was_empty;

	if (len > RT_NET_FRAME_MAX)
		return -1; /* cannot happen: the model's frames end at DP83820_MAX_FRAME */
	cons = rt_chan_load(&sh->net_tx.cons);
	if (chan.tx_prod - cons >= RT_NET_SLOTS) {
		rt_chan_wait_room(&sh->net_tx.cons, chan.tx_prod, RT_NET_SLOTS, RT_BELL_NET_TX);
		cons = rt_chan_load(&sh->net_tx.cons);
	}
	was_empty = cons == chan.tx_prod;
	slot = RT_WIN(RT_OFF_NET_TX + (chan.tx_prod & (RT_NET_SLOTS - 1)) * RT_NET_SLOT_SIZE);
	slot->len = (uint32_t)len;
	memcpy(slot->data, frame, len);
	rt_chan_store(&sh->net_tx.prod, ++chan.tx_prod);
	sh->frames_tx++;
	if (was_empty) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!sh->host_draining_tx)
			chan.bells |= RT_BELL_NET_TX;
	}
	return 0;
}

/* ---- news and net RX */

uint32_t rt_chan_take_news(void)
{
	/* Only the device side's bits: RT_NEWS_PARK is the CPU side's. */
	return __atomic_fetch_and(&RT_SHARED->news, ~(RT_NEWS_TIMER | RT_NEWS_RX), __ATOMIC_ACQ_REL) &
	       (RT_NEWS_TIMER | RT_NEWS_RX);
}

static struct rt_net_slot *rt_chan_rx_slot(uint32_t idx)
{
	return RT_WIN(RT_OFF_NET_RX + (idx & (RT_NET_SLOTS - 1)) * RT_NET_SLOT_SIZE);
}

const uint8_t *rt_chan_rx_peek(size_t *len)
{
	struct rt_shared *sh = RT_SHARED;

	while (rt_chan_load(&sh->net_rx.prod) != chan.rx_cons) {
		struct rt_net_slot *slot = rt_chan_rx_slot(chan.rx_cons);
		uint32_t n = *(volatile uint32_t *)&slot->len;

		if (n <= RT_NET_FRAME_MAX) {
			*len = n;
			return slot->data;
		}
		/* A length the slot cannot hold is the host's bug: skip the
		 * slot rather than read past it (counted as taken, not held). */
		rt_chan_store(&sh->net_rx.cons, ++chan.rx_cons);
	}
	return NULL;
}

int rt_chan_rx_new(void)
{
	return rt_chan_load(&RT_SHARED->net_rx.prod) != chan.rx_cons;
}

void rt_chan_rx_pop(void)
{
	rt_chan_store(&RT_SHARED->net_rx.cons, ++chan.rx_cons);
	RT_SHARED->frames_rx++;
}

void rt_chan_rx_held(void)
{
	struct rt_shared *sh = RT_SHARED;
	uint32_t prod = rt_chan_load(&sh->net_rx.prod);
	uint32_t from = (int32_t)(chan.rx_counted - chan.rx_cons) > 0 ? chan.rx_counted : chan.rx_cons;

	if ((int32_t)(prod - from) > 0) {
		sh->frames_rx_held += prod - from;
		chan.rx_counted = prod;
	}
	if (sh->want_rx_news)
		sh->want_rx_news = 0;
}

int rt_chan_rx_idle(void)
{
	struct rt_shared *sh = RT_SHARED;

	if (sh->want_rx_news)
		return 0; /* the host has been telling us all along */
	sh->want_rx_news = 1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return rt_chan_load(&sh->net_rx.prod) != chan.rx_cons;
}

/* ---- timer */

void rt_chan_set_deadline(uint64_t deadline_ns, int from_news)
{
	struct rt_shared *sh = RT_SHARED;

	if (sh->timer_deadline_ns != deadline_ns)
		sh->timer_deadline_ns = deadline_ns;
	if (from_news) {
		chan.host_deadline = deadline_ns;
	} else if (deadline_ns < chan.host_deadline) {
		chan.bells |= RT_BELL_TIMER;
		chan.host_deadline = deadline_ns;
	}
	/* A later deadline needs no bell: the host's earlier one fires, and
	 * the news it brings makes it re-read this field. */
}

/* ---- flush and clock */

void rt_chan_flush(void)
{
	struct rt_shared *sh = RT_SHARED;

	if (chan.con_prod != chan.con_rung) {
		chan.bells |= RT_BELL_CONSOLE;
		chan.con_rung = chan.con_prod;
	}
	if (rt_chan_load(&sh->net_tx.cons) != chan.tx_prod && !sh->host_draining_tx)
		chan.bells |= RT_BELL_NET_TX;
}

uint64_t rt_now_ns(void)
{
	__extension__ typedef unsigned __int128 u128;
	const struct rt_boot *b = RT_BOOT;
	uint64_t tsc = rt_chan_tsc();

	if (tsc < b->clock_guest_tsc)
		return b->clock_host_ns;
	return b->clock_host_ns + (uint64_t)(((u128)(tsc - b->clock_guest_tsc) * b->tsc_mult) >> 32);
}
