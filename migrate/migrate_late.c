/* migrate_late.c: the stream's tail after the OK: the source forwards the frames its old NIC connection still gets, the target announces the guest's MAC and hands those frames to its NIC */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"

/*
 * Why a tail.  Across hosts the target opens its own connection for the
 * guest's NIC; whatever the far end (a switch, a bridge) sends to the old
 * one until it learns the guest's new port reaches the source, frozen
 * since the freeze.  Those frames are the guest's.  The stream is the one
 * path from source to target that exists at that moment, is ordered, and
 * is already authenticated, so they travel on it, after END and after the
 * OK (pvmigrate-stream(5), "The tail").  Nothing of the tail can change
 * whether the move happened: the OK decided that.
 */
#define LATE_BATCH 64u		 /* frames per NIC_LATE record */
#define LATE_FRAME_MAX 16384u	 /* larger than any NIC's frame: a longer one is cut, dropped */
#define LATE_HOLD_TRIES 2000u	 /* target: 1 ms naps while the NIC's hold queue is full */

static uint64_t late_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* ---- source ---- */

void migrate_late_send(struct vm *src, const struct stream_io *out, unsigned ms,
		       struct migrate_late_report *lr)
{
	static _Thread_local uint8_t frame[LATE_FRAME_MAX];
	struct stream_frames b = { 0 }; /* one NIC_LATE body */
	const uint8_t *body;
	struct stream_writer w;
	uint64_t t0 = late_now(), deadline = t0 + (uint64_t)ms * 1000000u, t;
	uint8_t end[16] = { 0 };
	uint32_t how = 0;
	size_t len;
	ssize_t n;
	int wait_ms;

	memset(lr, 0, sizeof *lr);
	stream_writer_init(&w, out);
	while (!how) {
		if (late_now() >= deadline) {
			/* also while frames still flow: past the bound they stay behind */
			how = STREAM_LATE_BOUND;
			break;
		}
		stream_frames_clear(&b);
		/* the first frame may be waited for; the rest of a batch is what is there */
		while (b.count < LATE_BATCH) {
			t = late_now();
			wait_ms = b.count || t >= deadline ? 0 : (int)((deadline - t + 999999) / 1000000);
			n = vm__platform_nic_recv_frozen(src, frame, sizeof frame, wait_ms);
			if (n < 0) {
				/* the tail still ends properly: the target learns how */
				how = errno == EPIPE ? STREAM_LATE_EOF : STREAM_LATE_NIC_ERROR;
				break;
			}
			if (n == 0)
				break; /* the bound, or the batch is what there was */
			if ((size_t)n > sizeof frame) {
				lr->dropped++; /* longer than any NIC takes: the NIC would drop it too */
				continue;
			}
			if (stream_frames_add(&b, frame, (size_t)n) < 0) {
				snprintf(lr->err, sizeof lr->err, "a frame of %zd bytes: %s", n,
					 strerror(errno));
				stream_frames_free(&b);
				return;
			}
		}
		if (!(body = stream_frames_body(&b, &len)))
			continue;
		if (stream_write_record(&w, STREAM_REC_NIC_LATE, body, len) < 0) {
			snprintf(lr->err, sizeof lr->err, "the link broke: %.200s", w.err);
			stream_frames_free(&b);
			lr->ns = late_now() - t0;
			return;
		}
		lr->frames += b.count;
		lr->records++;
	}
	stream_frames_free(&b);
	put32(end, (uint32_t)lr->frames);
	put32(end + 4, (uint32_t)(lr->frames >> 32));
	put32(end + 8, how);
	if (stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, sizeof end) < 0)
		snprintf(lr->err, sizeof lr->err, "the link broke at NIC_LATE_END: %.200s", w.err);
	else
		lr->how = how;
	lr->ns = late_now() - t0;
}

/* ---- target: the guest's MAC, noted by migrate_receive ----
 *
 * The DeviceSet that came with the guest holds the address its NIC model
 * has (Dp83820State.mac, which the guest may have reprogrammed); under
 * kvm that model lives in the runtime, out of the host's sight.  So
 * migrate_receive notes it here, per VM, for the announce.  A few slots
 * do: one process receives one VM at a time.
 */
#define MAC_SLOTS 8

static pthread_mutex_t mac_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const struct vm *vm;
	uint8_t mac[6];
} macs[MAC_SLOTS];
static unsigned mac_next;

void migrate_late_note(struct vm *dst, const uint8_t *devices, size_t devices_len)
{
	Pvmigrate__DeviceSet *ds;
	unsigned i, at;

	if (!devices || !devices_len)
		return;
	ds = pvmigrate__device_set__unpack(NULL, devices_len, devices);
	if (!ds)
		return;
	if (ds->dp83820 && ds->dp83820->has_mac && ds->dp83820->mac.len == 6) {
		pthread_mutex_lock(&mac_lock);
		for (i = 0, at = mac_next; i < MAC_SLOTS; i++)
			if (macs[i].vm == dst)
				at = i;
		if (at == mac_next)
			mac_next = (mac_next + 1) % MAC_SLOTS;
		macs[at].vm = dst;
		memcpy(macs[at].mac, ds->dp83820->mac.data, 6);
		pthread_mutex_unlock(&mac_lock);
	}
	pvmigrate__device_set__free_unpacked(ds, NULL);
}

static int noted_mac(const struct vm *vm, uint8_t mac[6])
{
	unsigned i;
	int found = 0;

	pthread_mutex_lock(&mac_lock);
	for (i = 0; i < MAC_SLOTS; i++)
		if (macs[i].vm == vm) {
			memcpy(mac, macs[i].mac, 6);
			macs[i].vm = NULL;
			found = 1;
		}
	pthread_mutex_unlock(&mac_lock);
	return found;
}

/*
 * The announce: what QEMU's announce-self sends, one RARP request
 * (ethertype 0x8035) from the guest's MAC to the broadcast address, so
 * that every learning switch on the way moves the guest's port to this
 * connection now, not when the guest next transmits.
 */
static int announce(struct vm *vm, const uint8_t mac[6])
{
	uint8_t f[60] = { 0 };

	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x80, f[13] = 0x35;	/* RARP */
	f[14] = 0, f[15] = 1;		/* hardware: Ethernet */
	f[16] = 0x08, f[17] = 0x00;	/* protocol: IPv4 */
	f[18] = 6, f[19] = 4;		/* address lengths */
	f[20] = 0, f[21] = 3;		/* reverse request */
	memcpy(f + 22, mac, 6);		/* sender: us, IP 0 */
	memcpy(f + 32, mac, 6);		/* target: us, IP 0 */
	return vm__platform_nic_send(vm, f, sizeof f);
}

/* ---- target: the tail's reader ---- */

struct migrate_late {
	struct vm *vm;
	int fd;
	int stop[2];		/* a byte: leave now */
	uint64_t deadline;	/* reads give up here */
	pthread_t thread;
	int done;		/* atomic: the thread finished */
	int frozen;		/* frames were held since the last thaw */
	FILE *log;		/* the figures when the tail ends, or NULL */
	struct migrate_late_report rep;
};

/* Before the reader waits for more input, the frames held so far go in. */
static void late_thaw(struct migrate_late *l)
{
	if (l->frozen) {
		vm__platform_nic_thaw(l->vm);
		l->frozen = 0;
	}
}

static ssize_t late_read(void *ctx, void *buf, size_t len)
{
	struct migrate_late *l = ctx;
	struct pollfd pfd[2] = { { .fd = l->fd, .events = POLLIN },
				 { .fd = l->stop[0], .events = POLLIN } };
	uint64_t t;
	ssize_t n;

	late_thaw(l);
	for (;;) {
		t = late_now();
		if (t >= l->deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(pfd, 2, (int)((l->deadline - t) / 1000000u) + 1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd[1].revents) {
			errno = ECANCELED;
			return -1;
		}
		if (!pfd[0].revents)
			continue;
		n = read(l->fd, buf, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return n;
	}
}

/*
 * One frame to the running guest's NIC, through the path the held frames
 * take: freeze (the receive thread, the only producer of the NIC's hold
 * queue, stops), append, thaw at the next read.  A full hold queue is
 * given a moment to drain (the guest takes frames meanwhile).
 */
static int late_frame(void *ctx, const uint8_t *f, size_t len, char *why, size_t whylen)
{
	struct migrate_late *l = ctx;
	struct timespec nap = { 0, 1000000 };
	unsigned tries;

	for (tries = 0;; tries++) {
		if (!l->frozen) {
			vm__platform_nic_freeze(l->vm);
			l->frozen = 1;
		}
		if (vm__platform_nic_hold_frame(l->vm, f, len) == 0) {
			l->rep.frames++;
			return 0;
		}
		if (tries == LATE_HOLD_TRIES) {
			l->rep.dropped++;
			return 0; /* as a wire loses a frame: the next ones may go in */
		}
		late_thaw(l);
		nanosleep(&nap, NULL);
	}
	(void)why;
	(void)whylen;
}

static void *late_thread(void *arg)
{
	struct migrate_late *l = arg;
	struct stream_io io = { l, late_read, NULL };
	struct stream_late_end end;
	uint64_t t0 = late_now();
	char why[256];

	if (stream_decode_tail(&io, late_frame, l, &end, why, sizeof why) < 0)
		snprintf(l->rep.err, sizeof l->rep.err, "%s", why);
	else
		l->rep.how = end.how;
	late_thaw(l);
	l->rep.ns = late_now() - t0;
	if (l->log)
		migrate_late_print(&l->rep, "delivered", l->log);
	close(l->fd);
	l->fd = -1;
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct migrate_late *migrate_late_recv_start(struct vm *dst, int fd, FILE *log, char *why,
					     size_t whylen)
{
	struct migrate_late *l = calloc(1, sizeof *l);
	uint8_t mac[6];

	if (!l || pipe(l->stop) < 0) {
		snprintf(why, whylen, "late frames: %s", l ? strerror(errno) : "out of memory");
		free(l);
		close(fd);
		return NULL;
	}
	l->vm = dst;
	l->fd = fd;
	l->log = log;
	l->deadline = late_now() + MIGRATE_LATE_WAIT_MS * 1000000ull;
	/* first the announce: the switch moves the port, the old one closes,
	 * and the source's tail ends */
	if (!noted_mac(dst, mac))
		snprintf(why, whylen, "no announce: the stream held no NIC address");
	else if (announce(dst, mac) < 0)
		snprintf(why, whylen, "no announce: %s", dst->err);
	else
		why[0] = '\0';
	if (pthread_create(&l->thread, NULL, late_thread, l) != 0) {
		snprintf(why, whylen, "late frames: thread: %s", strerror(errno));
		close(l->stop[0]);
		close(l->stop[1]);
		close(fd);
		free(l);
		return NULL;
	}
	return l;
}

void migrate_late_recv_end(struct migrate_late *l, unsigned wait_ms,
			   struct migrate_late_report *lr)
{
	uint64_t until = late_now() + (uint64_t)wait_ms * 1000000u;
	struct timespec nap = { 0, 2000000 };

	if (!l) {
		memset(lr, 0, sizeof *lr);
		return;
	}
	while (!__atomic_load_n(&l->done, __ATOMIC_ACQUIRE) && late_now() < until)
		nanosleep(&nap, NULL);
	if (!__atomic_load_n(&l->done, __ATOMIC_ACQUIRE) && write(l->stop[1], "x", 1) < 0) {
		/* a fresh pipe has room: cannot fail */
	}
	pthread_join(l->thread, NULL);
	*lr = l->rep;
	close(l->stop[0]);
	close(l->stop[1]);
	free(l);
}

void migrate_late_print(const struct migrate_late_report *lr, const char *verb, FILE *out)
{
	fprintf(out, "late frames: %llu %s", (unsigned long long)lr->frames, verb);
	if (lr->records)
		fprintf(out, " in %llu records", (unsigned long long)lr->records);
	if (lr->dropped)
		fprintf(out, ", %llu dropped", (unsigned long long)lr->dropped);
	if (lr->err[0])
		fprintf(out, "; broke off after %.1f ms: %s\n", lr->ns / 1e6, lr->err);
	else if (!lr->how)
		fprintf(out, "; no tail came\n");
	else
		fprintf(out, "; ended at %s after %.1f ms\n", stream_late_how_name(lr->how),
			lr->ns / 1e6);
}
