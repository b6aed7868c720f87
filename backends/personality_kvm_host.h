/* personality_kvm_host.h: what personality_kvm_host.c (window, runtime, boot) and personality_kvm_channel.c (channel service) share */
#ifndef PERSONALITY_KVM_HOST_H
#define PERSONALITY_KVM_HOST_H

#include <pthread.h>
#include <stdint.h>

#include "backend.h"
#include "net_backend.h"
#include "personality_kvm.h"
#include "rt_abi.h"

/*
 * The host half of the kvm personality, hung off vm->rt.  Everything the
 * runtime and the host exchange lives in the window (rt_abi.h); the
 * pointers below point into it.  The window is guest-writable, so every
 * index and length read from it is checked before use, and the host keeps
 * its own copy of the indices it owns (it never reads back what it wrote).
 *
 * Threads: the doorbell, the timer and the irq source run on vCPU threads
 * with vm->dev_lock held; the receive thread owns the RX side alone (its
 * hold queue and the RX producer index), so it takes no lock.
 */
#define KH_RX_QUEUE 256u     /* frames the host holds while the RX ring is full */
#define KH_RX_RETRY_MS 1     /* how often held frames are offered again */

struct kvm_host {
	struct vm *vm;
	struct rt_boot *boot;
	struct rt_shared *sh;
	uint8_t *console;
	int console_fd;
	uint64_t table_addr, table_size; /* the retained .pvsites table */

	/* The runtime's report (doorbell RT_BELL_BOOTED). */
	int booted;
	uint32_t sites, rewritten;
	/* An adopt (vm__kvm_host_adopt): the guest stands still until the
	 * runtime, entered at RT_ENTRY_ADOPT, has restored it and rings
	 * BOOTED; when that was (vm__now_ns, atomic; 0: not yet). */
	int adopting;
	uint64_t adopt_done_ns;

	/* Consumer indices the host owns (device lock). */
	uint32_t con_cons, tx_cons;
	uint64_t console_bytes, bells, tx_frames, tx_lost, tx_bad;

	uint64_t timer_news; /* RT_NEWS_TIMER posted */

	/* Net: the backend and the receive side (receive thread only). */
	int nic;
	struct net_backend net;
	pthread_t chan_thread; /* RX, TX polling, the timer (personality_kvm_channel.c) */
	int chan_ok;
	int stop[2]; /* a pipe: a byte means "leave" */
	uint8_t (*q)[RT_NET_FRAME_MAX];
	uint32_t qlen[KH_RX_QUEUE];
	unsigned qhead, qcount;
	uint32_t rx_prod;
	uint64_t rx_frames, rx_held_peak, rx_held_waits, rx_too_long, rx_news; /* atomic reads */
	int rx_gone; /* the backend hung up */
	/* Moderation (receive thread): frames published without news yet,
	 * since when; until when the thread keeps draining TX itself. */
	uint32_t rx_quiet_prod;
	uint64_t rx_quiet_since, rx_quiet_calls, tx_poll_until;
	uint64_t tm_deadline; /* the passed deadline last looked at */
	uint64_t rx_polled, tx_polled; /* frames the runtime/host took without news/bell */
	/* personality_kvm_state.c: while set, vm__resume keeps park_req (and
	 * RT_NEWS_PARK) up, so the vCPUs run only into the runtime's park loop
	 * and CPU 0 serves rt_shared.state_req there. */
	int state_hold;
	/* personality_kvm_state.c: a device-state save asked together with a
	 * pause's park_req (park_request), so the first CPU to park serves it
	 * and the guest view needs no second pause; since when (vm__now_ns). */
	int pause_state;
	uint64_t pause_state_ns;
	uint64_t saves_at_pause, saves_resumed; /* how each save was served */
	/* RT_BELL_STATE: the runtime served state_req (state_request waits). */
	pthread_mutex_t state_lock;
	pthread_cond_t state_cond;
};

static inline struct kvm_host *kvm_host_of(struct vm *vm)
{
	return vm->rt;
}

/* personality_kvm_host.c: the boot block but the guest's entry (RT_BOOTF_*). */
int kvm_host__fill_boot(struct vm *vm, struct kvm_host *h, uint32_t flags);

/* personality_kvm_channel.c */
int kvm_channel__init(struct kvm_host *h);  /* doorbell, irq source, timer, parking, RX thread */
void kvm_channel__drain(struct kvm_host *h); /* console and TX rings, device lock taken */
void kvm_channel__stop(struct kvm_host *h);  /* stop the RX thread */
/* park_request's part: ask for a device-state save with the pause, when
 * the runtime can serve one (clears the area first; sets pause_state). */
void kvm_channel__ask_save(struct kvm_host *h);
int kvm_channel__start(struct kvm_host *h);  /* (re)start it */
/* RX or TX ring slot (off: RT_OFF_NET_RX or RT_OFF_NET_TX) of ring index `index`. */
struct rt_net_slot *kvm_channel__slot(struct kvm_host *h, uint32_t off, uint32_t index);
/* Fail the guest with a reason (any thread): vm->err, then a crash power-off. */
void kvm_host__fail(struct kvm_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
