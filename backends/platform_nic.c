/* platform_nic.c: the DP83820 on PCI slot 3: BARs assigned as firmware would, trapped register windows, and a held receive queue fed by a host network backend */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_backend.h"
#include "personality_kvm.h"
#include "platform.h"

/*
 * Receive path.  A dedicated thread waits on the backend's fd and copies
 * frames into a bounded queue, then hands what the guest's ring can take
 * to the model under the device lock.  A frame the ring has no descriptor
 * for stays queued: the model would drop it (a real chip overruns its
 * FIFO), but a host queue behind it means a slow guest loses nothing.
 * After each guest access to the NIC's registers, the queue is drained
 * again: that is when a driver hands descriptors back (CR.RXE after a
 * refill).  Only a full queue drops, and those drops are counted.
 *
 * The queue has one producer (the thread) and one consumer (whoever holds
 * the device lock), so it needs no lock of its own: the producer fills
 * slot `tail` and then publishes it by incrementing `count`.
 */
#define NIC_QUEUE 512u
#define NIC_BATCH 64u /* frames read per wakeup before draining */

struct platform_nic {
	struct dp83820 dev;
	struct platform *p;
	struct net_backend net;

	uint8_t (*slot)[DP83820_MAX_FRAME];
	uint16_t len[NIC_QUEUE];
	unsigned head, tail; /* consumer's, producer's */
	unsigned count;      /* published frames, atomic */

	uint64_t rx_frames, tx_frames, tx_errors, dropped, held_max;
	uint32_t bar_base[2];
	bool bar_on[2];

	pthread_t thread;
	bool thread_ok;
	int stop[2]; /* a pipe: a byte means "leave" */
};

/* ---- the hold queue (consumer side: device lock held) */

static void nic_drain(struct platform_nic *n)
{
	while (__atomic_load_n(&n->count, __ATOMIC_ACQUIRE) && dp83820_rx_ready(&n->dev)) {
		dp83820_rx(&n->dev, n->slot[n->head], n->len[n->head]);
		n->head = (n->head + 1) % NIC_QUEUE;
		n->rx_frames++;
		__atomic_fetch_sub(&n->count, 1, __ATOMIC_RELEASE);
	}
}

/* ---- register windows */

static uint64_t nic_read(void *opaque, uint64_t off, unsigned size)
{
	struct platform_nic *n = opaque;
	uint32_t v = dp83820_io_read(&n->dev, (uint32_t)off, size);

	nic_drain(n);
	return v;
}

static void nic_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct platform_nic *n = opaque;

	dp83820_io_write(&n->dev, (uint32_t)off, size, (uint32_t)val);
	nic_drain(n);
}

static const struct vm_io_ops nic_ops = { nic_read, nic_write };

/* pci_func map callback: the guest (or a restore) moved or switched a BAR.
 * Runs with the device lock held; vm.c's lock is recursive for this. */
static void nic_bar_map(void *ctx, unsigned bar, uint32_t base, uint32_t size, bool io,
			bool enabled)
{
	struct platform_nic *n = ctx;
	struct vm *vm = n->p->vm;

	if (bar > 1)
		return;
	if (n->bar_on[bar]) {
		if (io)
			vm__unregister_pio(vm, n->bar_base[bar], n);
		else
			vm__unregister_mmio(vm, n->bar_base[bar], n);
		n->bar_on[bar] = false;
	}
	if (!enabled)
		return;
	/* A window over RAM or another device cannot trap; it stays dark. */
	if ((io ? vm__register_pio(vm, base, size, &nic_ops, n)
		: vm__register_mmio(vm, base, size, &nic_ops, n)) < 0)
		return;
	n->bar_on[bar] = true;
	n->bar_base[bar] = base;
}

/* ---- transmit: from the model, on a vCPU thread, device lock held */

int platform_nic__net_tx(struct platform *p, const uint8_t *frame, size_t len)
{
	struct platform_nic *n = p->nic;

	if (!n || !n->net.ops || n->net.ops->send(&n->net, frame, len) < 0) {
		if (n)
			n->tx_errors++;
		return -1;
	}
	n->tx_frames++;
	return 0;
}

/* ---- the receive thread */

/* Read up to NIC_BATCH frames; 1 if the backend went away. */
static int nic_fill(struct platform_nic *n)
{
	static _Thread_local uint8_t scratch[DP83820_MAX_FRAME];
	unsigned i, count;
	ssize_t len;

	for (i = 0; i < NIC_BATCH; i++) {
		count = __atomic_load_n(&n->count, __ATOMIC_ACQUIRE);
		if (count > n->held_max)
			n->held_max = count;
		uint8_t *dst = count < NIC_QUEUE ? n->slot[n->tail] : scratch;

		len = n->net.ops->recv(&n->net, dst, DP83820_MAX_FRAME);
		if (len < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
		if (count == NIC_QUEUE || len > DP83820_MAX_FRAME) {
			__atomic_fetch_add(&n->dropped, 1, __ATOMIC_RELAXED);
			continue;
		}
		n->len[n->tail] = (uint16_t)len;
		n->tail = (n->tail + 1) % NIC_QUEUE;
		__atomic_fetch_add(&n->count, 1, __ATOMIC_RELEASE);
	}
	return 0;
}

static void *nic_thread(void *arg)
{
	struct platform_nic *n = arg;
	struct vm *vm = n->p->vm;
	struct pollfd pfd[2] = {
		{ .fd = n->net.fd, .events = POLLIN },
		{ .fd = n->stop[0], .events = POLLIN },
	};
	int gone = 0;

	while (!gone) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			gone = 1;
		if (pfd[0].revents & POLLIN)
			gone |= nic_fill(n);
		pthread_mutex_lock(&vm->dev_lock);
		nic_drain(n);
		pthread_mutex_unlock(&vm->dev_lock);
	}
	return NULL;
}

/* ---- attach, report, teardown */

int vm__platform_add_nic(struct vm *vm, const char *spec)
{
	static const uint8_t mac[6] = PLATFORM_NIC_MAC;
	struct platform *p = platform_of(vm);
	struct platform_nic *n;
	char err[160];
	uint32_t elcr;

	if (!p || p->nic)
		return vm__fail(vm, "net: %s", p ? "only one NIC" : "no platform");
	n = calloc(1, sizeof *n);
	if (!n || !(n->slot = malloc(NIC_QUEUE * sizeof *n->slot))) {
		if (n)
			free(n);
		return vm__fail(vm, "net: out of memory");
	}
	n->p = p;
	n->stop[0] = n->stop[1] = -1;
	if (net_backend__open(&n->net, spec, err, sizeof err) < 0 || pipe(n->stop) < 0) {
		net_backend__close(&n->net);
		free(n->slot);
		free(n);
		return vm__fail(vm, "%s", err);
	}
	p->nic = n;

	pthread_mutex_lock(&vm->dev_lock);
	dp83820_init(&n->dev, &p->env, mac);
	pci_func_set_map(&n->dev.pci, nic_bar_map, n);
	pci_attach(&p->pci, PLATFORM_NIC_SLOT, &n->dev.pci);
	/* What a BIOS does before the OS looks: windows assigned and decoded,
	 * bus mastering on, INTA# routed to an ISA line set level-triggered
	 * in the ELCR (PCI interrupts are shared levels). */
	pci_func_cfg_write(&n->dev.pci, PCI_BASE_ADDRESS_0 + 4 * DP83820_BAR_IO, 4,
			   PLATFORM_NIC_IO_BASE);
	pci_func_cfg_write(&n->dev.pci, PCI_BASE_ADDRESS_0 + 4 * DP83820_BAR_MEM, 4,
			   PLATFORM_NIC_MMIO_BASE);
	pci_func_cfg_write(&n->dev.pci, PCI_INTERRUPT_LINE, 1, PLATFORM_NIC_IRQ);
	pci_func_cfg_write(&n->dev.pci, PCI_COMMAND, 2,
			   PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	elcr = i8259_io_read(&p->pic, I8259_ELCR_BASE + 1, 1);
	i8259_io_write(&p->pic, I8259_ELCR_BASE + 1, 1, elcr | 1u << (PLATFORM_NIC_IRQ - 8));
	pthread_mutex_unlock(&vm->dev_lock);
	if (!n->bar_on[DP83820_BAR_MEM] || !n->bar_on[DP83820_BAR_IO])
		return vm__fail(vm, "net: NIC windows not mapped: %s", vm->err);

	if (pthread_create(&n->thread, NULL, nic_thread, n) != 0)
		return vm__fail(vm, "net: receive thread: %s", strerror(errno));
	n->thread_ok = true;
	return 0;
}

struct dp83820 *platform_nic__model(struct platform *p)
{
	return p->nic ? &p->nic->dev : NULL;
}

int vm__platform_nic_stats(struct vm *vm, struct vm_nic_stats *st)
{
	struct platform *p = platform_of(vm);
	struct platform_nic *n = p ? p->nic : NULL;

	memset(st, 0, sizeof *st);
	if (vm->rt)
		return vm__kvm_nic_stats(vm, st);
	if (!n)
		return 0;
	pthread_mutex_lock(&vm->dev_lock);
	st->rx_frames = n->rx_frames;
	st->tx_frames = n->tx_frames;
	st->tx_errors = n->tx_errors;
	st->held_max = n->held_max;
	st->dropped = __atomic_load_n(&n->dropped, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&vm->dev_lock);
	return 1;
}

void vm__platform_report(struct vm *vm, FILE *out)
{
	struct vm_nic_stats st;

	if (!vm__platform_nic_stats(vm, &st))
		return;
	fprintf(out,
		"%s: net: %llu frames to the guest, %llu from it (%llu lost on send), "
		"host queue peak %llu of %u, %llu dropped (queue full)\n", program_invocation_short_name,
		(unsigned long long)st.rx_frames, (unsigned long long)st.tx_frames,
		(unsigned long long)st.tx_errors, (unsigned long long)st.held_max, NIC_QUEUE,
		(unsigned long long)st.dropped);
}

/* ---- migration: stop and restart delivery, hand the hold queue over */

static void nic_stop_thread(struct platform_nic *n)
{
	char c = 0;

	if (!n->thread_ok)
		return;
	if (write(n->stop[1], &c, 1) < 0) {
		/* a pipe with room cannot fail; if it did, the join would hang */
	}
	pthread_join(n->thread, NULL);
	n->thread_ok = false;
	/* take the byte back, or the next thread would leave at once */
	while (read(n->stop[0], &c, 1) < 0 && errno == EINTR)
		;
}

/* Under kvm the runtime's channel carries the frames: personality_kvm_nic.c. */
int vm__platform_nic_freeze(struct vm *vm)
{
	struct platform *p = platform_of(vm);

	if (vm->rt)
		return vm__kvm_nic_freeze(vm);

	if (p && p->nic)
		nic_stop_thread(p->nic);
	return 0;
}

void vm__platform_nic_thaw(struct vm *vm)
{
	struct platform *p = platform_of(vm);
	struct platform_nic *n = p ? p->nic : NULL;

	if (vm->rt) {
		vm__kvm_nic_thaw(vm);
		return;
	}
	if (!n || n->thread_ok)
		return;
	if (pthread_create(&n->thread, NULL, nic_thread, n) == 0)
		n->thread_ok = true;
	/* Frames queued while frozen (a migration target's) go in as soon as
	 * the guest's ring has room; the thread drains once it runs. */
	pthread_mutex_lock(&vm->dev_lock);
	nic_drain(n);
	pthread_mutex_unlock(&vm->dev_lock);
}

int vm__platform_nic_held(struct vm *vm, int (*fn)(void *ctx, const uint8_t *frame, size_t len),
			  void *ctx)
{
	struct platform *p = platform_of(vm);
	struct platform_nic *n = p ? p->nic : NULL;
	unsigned i, count, at;
	int rc = 1;

	if (vm->rt)
		return vm__kvm_nic_held(vm, fn, ctx);
	if (!n)
		return 0;
	pthread_mutex_lock(&vm->dev_lock);
	count = __atomic_load_n(&n->count, __ATOMIC_ACQUIRE);
	for (i = 0, at = n->head; i < count && rc > 0; i++, at = (at + 1) % NIC_QUEUE)
		if (fn(ctx, n->slot[at], n->len[at]) < 0)
			rc = -1;
	pthread_mutex_unlock(&vm->dev_lock);
	return rc;
}

int vm__platform_nic_hold_frame(struct vm *vm, const uint8_t *frame, size_t len)
{
	struct platform *p = platform_of(vm);
	struct platform_nic *n = p ? p->nic : NULL;

	if (vm->rt)
		return vm__kvm_nic_hold_frame(vm, frame, len);
	if (!n)
		return vm__fail(vm, "net: no NIC to hold a frame");
	if (n->thread_ok)
		return vm__fail(vm, "net: NIC not frozen"); /* the queue has one producer */
	if (len > DP83820_MAX_FRAME || __atomic_load_n(&n->count, __ATOMIC_ACQUIRE) == NIC_QUEUE)
		return vm__fail(vm, "net: %s", len > DP83820_MAX_FRAME ? "frame too long"
								 : "hold queue full");
	memcpy(n->slot[n->tail], frame, len);
	n->len[n->tail] = (uint16_t)len;
	n->tail = (n->tail + 1) % NIC_QUEUE;
	__atomic_fetch_add(&n->count, 1, __ATOMIC_RELEASE);
	return 0;
}

/* The backend behind a VM's NIC, whichever personality carries its frames. */
static struct net_backend *nic_backend(struct vm *vm)
{
	struct platform *p = platform_of(vm);

	if (vm->rt)
		return vm__kvm_nic_backend(vm);
	return p && p->nic ? &p->nic->net : NULL;
}

ssize_t vm__platform_nic_recv_frozen(struct vm *vm, void *buf, size_t cap, int timeout_ms)
{
	struct net_backend *nb = nic_backend(vm);
	struct platform *p = platform_of(vm);
	struct pollfd pfd;
	ssize_t n;

	if (!nb || !nb->ops) {
		errno = ENODEV;
		return -1;
	}
	/* the receive thread is the backend's only other reader */
	if (!vm->rt && p->nic->thread_ok) {
		errno = EBUSY;
		return -1;
	}
	pfd = (struct pollfd){ .fd = nb->fd, .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) < 0)
		return errno == EINTR ? 0 : -1;
	if (!pfd.revents)
		return 0;
	n = nb->ops->recv(nb, buf, cap);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n == 0) { /* a tap read of 0: the interface went away */
		errno = EPIPE;
		return -1;
	}
	return n;
}

int vm__platform_nic_send(struct vm *vm, const void *frame, size_t len)
{
	struct net_backend *nb = nic_backend(vm);
	int rc;

	if (!nb || !nb->ops)
		return vm__fail(vm, "net: no NIC to send from");
	/* the models' own sends hold the device lock: one frame at a time */
	pthread_mutex_lock(&vm->dev_lock);
	rc = nb->ops->send(nb, frame, len);
	pthread_mutex_unlock(&vm->dev_lock);
	return rc < 0 ? vm__fail(vm, "net: send: %s", strerror(errno)) : 0;
}

int vm__platform_nic_move_backend(struct vm *dst, struct vm *src)
{
	struct net_backend *d = nic_backend(dst), *s = nic_backend(src);

	if (!d || !s)
		return vm__fail(dst, "net: %s has no NIC", d ? "source" : "target");
	vm__platform_nic_freeze(src); /* frozen already after a migration: a no-op */
	vm__platform_nic_freeze(dst);
	net_backend__close(d);
	*d = *s;
	s->ops = NULL; /* the source may only be destroyed now */
	s->fd = -1;
	vm__platform_nic_thaw(dst);
	return 0;
}

void platform_nic__destroy(struct platform *p)
{
	struct platform_nic *n = p->nic;
	char c = 0;

	if (!n)
		return;
	if (n->thread_ok) {
		if (write(n->stop[1], &c, 1) < 0) {
			/* a pipe with room cannot fail; if it did, the join would hang */
		}
		pthread_join(n->thread, NULL);
	}
	if (n->stop[0] >= 0) {
		close(n->stop[0]);
		close(n->stop[1]);
	}
	net_backend__close(&n->net);
	free(n->slot);
	free(n);
	p->nic = NULL;
}
