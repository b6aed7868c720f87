/* personality_kvm_nic.c: the kvm channel's frames at a migration: stop and restart the channel, its undelivered frames as the hold queue, frames handed to a target */
#include <string.h>

#include "personality_kvm_host.h"

/*
 * Under kvm a frame on its way to the guest is in the host's hold queue
 * (h->q) or in the RX ring, not yet taken by the runtime's NIC; one on its
 * way out is in the TX ring.  At the freeze the channel thread stops (it
 * is the only one that reads the backend and feeds the ring), the TX ring
 * is sent on (the guest did send those), and the ring's undelivered frames
 * followed by the queue are the NIC's held frames, oldest first, exactly
 * what the native NIC's hold queue is.  Only while paused: the runtime
 * does not take frames then.
 */

int vm__kvm_nic_freeze(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (!h || !h->nic)
		return 0;
	kvm_channel__stop(h);
	kvm_channel__drain(h);
	return 0;
}

void vm__kvm_nic_thaw(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (h && h->nic && kvm_channel__start(h) < 0)
		kvm_host__fail(h, "net: the channel thread did not restart: %s", vm->err);
}

int vm__kvm_nic_held(struct vm *vm, int (*fn)(void *ctx, const uint8_t *frame, size_t len),
		     void *ctx)
{
	struct kvm_host *h = kvm_host_of(vm);
	uint32_t cons, i;
	unsigned k, at;

	if (!h || !h->nic)
		return 0;
	cons = __atomic_load_n(&h->sh->net_rx.cons, __ATOMIC_ACQUIRE);
	if (h->rx_prod - cons > RT_NET_SLOTS)
		return vm__fail(vm, "net: the runtime's RX index is beyond the ring (%u of %u)",
				cons, h->rx_prod);
	for (i = cons; i != h->rx_prod; i++) {
		const struct rt_net_slot *s = kvm_channel__slot(h, RT_OFF_NET_RX, i);

		if (fn(ctx, s->data, s->len) < 0)
			return -1;
	}
	for (k = 0, at = h->qhead; k < h->qcount; k++, at = (at + 1) % KH_RX_QUEUE)
		if (fn(ctx, h->q[at], h->qlen[at]) < 0)
			return -1;
	return 1;
}

int vm__kvm_nic_hold_frame(struct vm *vm, const uint8_t *frame, size_t len)
{
	struct kvm_host *h = kvm_host_of(vm);
	unsigned tail;

	if (!h || !h->nic)
		return vm__fail(vm, "net: no NIC to hold a frame");
	if (h->chan_ok)
		return vm__fail(vm, "net: channel not frozen"); /* the queue has one producer */
	if (!len || len > RT_NET_FRAME_MAX || h->qcount == KH_RX_QUEUE)
		return vm__fail(vm, "net: %s", h->qcount == KH_RX_QUEUE ? "hold queue full"
									 : "frame too long");
	tail = (h->qhead + h->qcount) % KH_RX_QUEUE;
	memcpy(h->q[tail], frame, len);
	h->qlen[tail] = (uint32_t)len;
	h->qcount++;
	return 0;
}

int vm__kvm_nic_stats(struct vm *vm, struct vm_nic_stats *st)
{
	struct kvm_host *h = kvm_host_of(vm);

	if (!h || !h->nic)
		return 0;
	memset(st, 0, sizeof *st);
	st->rx_frames = __atomic_load_n(&h->rx_frames, __ATOMIC_RELAXED);
	st->tx_frames = h->tx_frames;
	st->held_max = __atomic_load_n(&h->rx_held_peak, __ATOMIC_RELAXED);
	st->tx_errors = h->tx_lost;
	return 1;
}

struct net_backend *vm__kvm_nic_backend(struct vm *vm)
{
	struct kvm_host *h = kvm_host_of(vm);

	return h && h->nic ? &h->net : NULL;
}
