/* rt_channel.h: the kvm host channel, guest half: what rt_devices.c asks of it (rings, news, timer deadline, doorbell, clock) */
#ifndef RT_CHANNEL_H
#define RT_CHANNEL_H

/*
 * The device side (rt_devices.c) is personality-independent; this is the
 * personality's half.  Under kvm everything lives in the window
 * (rt_abi.h): console and net rings, news bits, the timer deadline and the
 * doorbell port.  All functions except rt_chan_ring() and rt_now_ns() are
 * called with the device lock held, so the channel's own state needs no
 * lock: there is one producer (whoever holds the lock) per ring.
 *
 * Doorbells are batched: rt_chan_* functions only collect bell bits;
 * the caller takes them with rt_chan_take_bells() before it drops the
 * lock and rings once after (an exit costs ~20 us: never hold the lock
 * across one unless a full ring leaves no choice).
 */
#include <stddef.h>
#include <stdint.h>

#include "rt_internal.h"

/*
 * Host unit tests compile the device side against a fake window, fake RAM,
 * a fake TSC and a doorbell hook; the runtime build uses the fixed
 * addresses of rt_abi.h.
 */
#ifdef RT_HOST_TEST
extern uint8_t *rt_test_window;	/* RT_WINDOW_SIZE bytes standing in for the window */
extern uint8_t *rt_test_ram;	/* rt_boot.ram_size bytes standing in for guest RAM */
extern uint64_t rt_test_tsc;	/* what rdtsc returns */
void rt_test_doorbell(uint32_t bits); /* the host's side of outl RT_PORT_DOORBELL */
#define RT_WIN(off) ((void *)(rt_test_window + (off)))
#define RT_GPA(gpa) (rt_test_ram + (gpa))
#undef RT_BOOT
#undef RT_SHARED
#define RT_BOOT	  ((struct rt_boot *)RT_WIN(RT_OFF_BOOT))
#define RT_SHARED ((struct rt_shared *)RT_WIN(RT_OFF_SHARED))
static inline uint64_t rt_chan_tsc(void) { return rt_test_tsc; }
static inline void rt_chan_bell_out(uint32_t bits) { rt_test_doorbell(bits); }
#else
#define RT_WIN(off) ((void *)(uintptr_t)(RT_WINDOW_BASE + (off)))
#define RT_GPA(gpa) ((uint8_t *)(uintptr_t)(gpa)) /* guest RAM is identity-mapped */
static inline uint64_t rt_chan_tsc(void) { return rt_rdtsc(); }
static inline void rt_chan_bell_out(uint32_t bits) { rt_outl(RT_PORT_DOORBELL, bits); }
#endif

/* Once, from rt_dev_init: producer state from the rings' current indices. */
void rt_chan_init(void);

/* dev_env callbacks.  Neither loses data: a full ring rings the doorbell
 * and waits for the host to make room. */
void rt_chan_console_tx(uint8_t byte);
int rt_chan_net_tx(const uint8_t *frame, size_t len);

/* The hot path: has the host told us anything?  One load. */
static inline uint32_t rt_chan_news_peek(void) { return RT_SHARED->news; }
/* Frames in the RX ring that were not there at the last look (the host
 * publishes without news while the runtime polls: its holdoff). */
int rt_chan_rx_new(void);
/* Take RT_NEWS_TIMER and RT_NEWS_RX (one atomic and); RT_NEWS_PARK is
 * the CPU side's and stays set. */
uint32_t rt_chan_take_news(void);

/* RX ring, consumer side: the oldest frame (NULL if none), then drop it. */
const uint8_t *rt_chan_rx_peek(size_t *len);
void rt_chan_rx_pop(void);
/* The NIC cannot take the frames in the ring now: count each held frame
 * once and stop asking for RX news (rt_chan_rx_idle undoes that). */
void rt_chan_rx_held(void);
/* The ring is drained and the NIC can take frames: ask for RX news.
 * Returns 1 if a frame arrived meanwhile (the caller drains again). */
int rt_chan_rx_idle(void);

/* The PIT's next IRQ0 edge (host clock, UINT64_MAX = none).  from_news:
 * the host just told us the old deadline passed and re-reads this one on
 * its own; otherwise a deadline earlier than the host's rings RT_BELL_TIMER. */
void rt_chan_set_deadline(uint64_t deadline_ns, int from_news);

/* Collect bells for anything announced to nobody yet (rt_dev_flush). */
void rt_chan_flush(void);
/* The bells collected so far, cleared; ring them with rt_chan_ring(). */
uint32_t rt_chan_take_bells(void);
/* outl RT_PORT_DOORBELL (counted); no lock needed. */
void rt_chan_ring(uint32_t bits);

/*
 * Device state (rt_devices.c): every model's snapshot in one fixed,
 * versioned layout (struct rt_dev_state, runtime/include/rt_devstate_abi.h,
 * which the host includes too).
 */
#include "rt_devstate_abi.h"

/* Write the state into buf (8-byte aligned, cap >= sizeof): its size, or -1.
 * buf must be zero (or hold an earlier save): nothing is cleared here. */
int rt_dev_save(void *buf, size_t cap);
/* All models or none: 0, or -1 with the old state kept.  The NIC must be
 * attached at the same slot (pci_restore checks identity bytes). */
int rt_dev_restore(const void *buf, size_t len);

#endif
