/* migrate_send.c: the source side: header, pre-copy rounds over the dirty log, freeze, final state, and the wait for the target's word */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devstate.h"
#include "personality_kvm_adopt.h"
#include "migrate.h"

/*
 * The stream writer hands over one page at a time; a system call per 4 KiB
 * would bound the link at a few hundred MB/s.  Writes gather here and go
 * out in big pieces: at the end of each round and before the sender waits
 * for the target, everything is flushed.
 */
#define SEND_BUF (1u << 20)

struct send_buf {
	struct stream_io io; /* what the writer sees */
	const struct stream_io *out;
	uint8_t *buf;
	size_t len;
};

static int sbuf_flush(struct send_buf *b)
{
	size_t off = 0;
	ssize_t n;

	while (off < b->len) {
		n = b->out->write(b->out->ctx, b->buf + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			/* keep what is left: nothing more will be sent anyway */
			return -1;
		}
		off += (size_t)n;
	}
	b->len = 0;
	return 0;
}

static ssize_t sbuf_write(void *ctx, const void *src, size_t len)
{
	struct send_buf *b = ctx;
	size_t n;

	if (b->len == SEND_BUF && sbuf_flush(b) < 0)
		return -1;
	n = SEND_BUF - b->len < len ? SEND_BUF - b->len : len;
	memcpy(b->buf + b->len, src, n);
	b->len += n;
	return (ssize_t)n;
}

static ssize_t sbuf_read(void *ctx, void *dst, size_t len)
{
	struct send_buf *b = ctx;

	return b->out->read(b->out->ctx, dst, len);
}

struct sender {
	struct vm *vm;
	const struct migrate_policy *pol;
	struct migrate_report *rep;
	struct stream_writer w;
	struct send_buf sb;
	uint64_t *dirty;   /* the bitmap the next round sends */
	uint64_t *gfns;	   /* one batch being gathered */
	uint64_t npages;
	int frozen, tracking;
	uint64_t t0, tfreeze; /* start, and vm__pause */
	int io_failed; /* the connection failed under a write */
	/* A kvm source's guest view, taken right after the freeze (the
	 * runtime's park loop runs the vCPUs a little further meanwhile). */
	struct vm_vcpu_state *view;
	/* native: the vCPU states read while freezing, if all were (reused by
	 * send_machine: reading them again cost ~0.1 ms in the downtime) */
	struct vm_vcpu_state *frozen_st;
	int have_frozen_st;
	uint8_t *view_dev;
	size_t view_devlen;
};

static int fail(struct sender *s, const char *fmt, const char *detail)
{
	/* The writer's own error means the connection broke (or the target
	 * closed it): only then may a reply be waiting to explain it. */
	if (detail == s->w.err)
		s->io_failed = 1;
	if (!s->rep->err[0])
		snprintf(s->rep->err, sizeof s->rep->err, fmt, detail);
	return -1;
}

static int send_flush(struct sender *s)
{
	if (sbuf_flush(&s->sb) == 0)
		return 0;
	s->io_failed = 1;
	return fail(s, "stream: write: %.200s", strerror(errno));
}

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	unsigned i;

	for (i = 0; i < STREAM_PAGE_SIZE / 8; i++)
		if (q[i])
			return 0;
	return 1;
}

/*
 * Round 0's cheap test before page_is_zero: a guest page whose host page
 * was never touched (neither present in our page tables nor swapped out)
 * is zero without reading it.  Reading it would fault it in: on a fresh
 * 512 MiB guest, most of a second of round 0.  /proc/self/pagemap tells
 * both bits (mincore() alone would call a swapped-out page absent); 8
 * bytes per page, read PAGEMAP_CHUNK pages at a time.  Dirty tracking is
 * on before the first chunk is read, so a page the guest touches after
 * its entry was read is in the dirty log.
 */
#define PAGEMAP_CHUNK 4096u
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)

struct touched {
	struct vm_ram_extent ext;     /* RAM in a memory file: its holes (vm__ram_touched) */
	int fd;			      /* /proc/self/pagemap, or -1: read every page */
	uint64_t first, n;	      /* gfns whose entries are in map */
	uint64_t map[PAGEMAP_CHUNK];
};

static void touched_open(struct touched *t, FILE *log)
{
	t->fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	t->first = t->n = 0;
	if (t->fd < 0 && log)
		fprintf(log, "migrate: /proc/self/pagemap: %s; round 0 reads every page\n",
			strerror(errno));
}

/* 0: the host never touched gfn's page, so it is zero; 1: it may hold data. */
static int touched_page(struct touched *t, struct vm *vm, uint64_t gfn, uint64_t npages)
{
	if (vm->mem_fd >= 0) /* pagemap tells what this process mapped, not what the file holds */
		return vm__ram_touched(vm, gfn, &t->ext);
	if (t->fd < 0)
		return 1;
	if (gfn < t->first || gfn >= t->first + t->n) {
		uint64_t n = npages - gfn < PAGEMAP_CHUNK ? npages - gfn : PAGEMAP_CHUNK;
		uint64_t va = (uint64_t)(uintptr_t)(vm->mem + gfn * STREAM_PAGE_SIZE);
		ssize_t got = pread(t->fd, t->map, n * sizeof *t->map,
				    (off_t)(va / (uint64_t)sysconf(_SC_PAGESIZE) * sizeof *t->map));

		if (got != (ssize_t)(n * sizeof *t->map)) {
			/* cannot tell: read the pages, as without pagemap */
			close(t->fd);
			t->fd = -1;
			return 1;
		}
		t->first = gfn;
		t->n = n;
	}
	return (t->map[gfn - t->first] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0;
}

/*
 * Send every page whose bit is set in s->dirty, in batches.  Pages are
 * read from live guest RAM: a page the guest changes while we copy it is
 * also set in the dirty log, so the next round (or the frozen one) sends
 * it again.  In round 0 (all) zero pages are skipped unless the policy
 * says the target's RAM is not fresh: an anonymous mapping reads as zero.
 */
static int send_dirty(struct sender *s, int all, uint64_t *pages, uint64_t *bytes)
{
	uint64_t gfn, before = s->w.bytes;
	uint32_t n = 0;
	int skip_zero = all && !s->pol->send_zero_pages;
	struct touched *t = NULL;

	*pages = 0;
	/* guest pages are host pages: pagemap has one entry per guest page */
	if (skip_zero && sysconf(_SC_PAGESIZE) == STREAM_PAGE_SIZE && (t = calloc(1, sizeof *t)))
		touched_open(t, s->pol->log);
	for (gfn = 0; gfn < s->npages; gfn++) {
		if (!all && !(s->dirty[gfn / 64] >> (gfn % 64) & 1))
			continue;
		if (skip_zero && ((t && !touched_page(t, s->vm, gfn, s->npages)) ||
				  page_is_zero(s->vm->mem + gfn * STREAM_PAGE_SIZE))) {
			s->rep->zero_pages_skipped++;
			continue;
		}
		s->gfns[n++] = gfn;
		if (n == STREAM_MAX_BATCH || gfn + 1 == s->npages) {
			if (stream_write_pages(&s->w, s->gfns, n, s->vm->mem) < 0)
				goto failed;
			*pages += n;
			n = 0;
		}
	}
	if (t) {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		t = NULL;
	}
	if (n) {
		if (stream_write_pages(&s->w, s->gfns, n, s->vm->mem) < 0)
			return fail(s, "%.200s", s->w.err);
		*pages += n;
	}
	*bytes = s->w.bytes - before;
	return 0;

failed:
	if (t) {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
	}
	return fail(s, "%.200s", s->w.err);
}

static uint64_t count_dirty(const struct sender *s)
{
	uint64_t i, n = 0;

	for (i = 0; i < (s->npages + 63) / 64; i++)
		n += (uint64_t)__builtin_popcountll(s->dirty[i]);
	return n;
}

static int send_header(struct sender *s)
{
	struct stream_info info = { .version = STREAM_VERSION };
	char why[200];

	strcpy(info.personality, migrate_personality(s->vm));
	info.image_abi = MIGRATE_IMAGE_ABI;
	info.patch_table_version = MIGRATE_PATCH_TABLE_VERSION;
	if (stream_cpu_local(&info.cpu) < 0)
		return fail(s, "migrate: this host's CPU features: %.200s", "no CPUID");
	info.ram_size = s->vm->mem_size;
	info.nr_vcpus = s->vm->nr_vcpus;
	info.page_size = STREAM_PAGE_SIZE;
	if (s->pol->share && migrate_shared_header(s->vm, s->pol->share, &info, why, sizeof why) < 0)
		return fail(s, "migrate: %.200s", why);
	if (stream_write_header(&s->w, &info) < 0)
		return fail(s, "%.200s", s->w.err);
	return 0;
}

/*
 * Pre-copy: round 0 sends all RAM, each later round what the guest wrote
 * during the previous one.  Stop when what is left is small enough to send
 * frozen, when the rounds stop converging (the guest dirties as fast as we
 * send), or at the round limit.  Returns with s->dirty holding the pages
 * still to send.
 */
static int precopy(struct sender *s)
{
	const struct migrate_policy *p = s->pol;
	unsigned max = p->max_rounds ? p->max_rounds : 30;
	uint64_t stop = p->stop_pages ? p->stop_pages : 64;
	uint64_t t0, prev = UINT64_MAX, dirtied = 0, ns = 0;
	struct migrate_round *r;

	if (max > MIGRATE_MAX_ROUNDS - 1)
		max = MIGRATE_MAX_ROUNDS - 1;
	if (vm__dirty_start(s->vm) < 0)
		return fail(s, "migrate: dirty tracking: %.200s", s->vm->err);
	s->tracking = 1;
	for (;;) {
		r = &s->rep->round[s->rep->rounds];
		t0 = vm__now_ns();
		if (send_dirty(s, s->rep->rounds == 0, &r->pages, &r->bytes) < 0)
			return -1;
		if (send_flush(s) < 0)
			return -1;
		if (vm__dirty_fetch(s->vm, s->dirty) < 0)
			return fail(s, "migrate: dirty log: %.200s", s->vm->err);
		r->ns = vm__now_ns() - t0;
		r->dirtied = count_dirty(s);
		dirtied += r->dirtied;
		ns += r->ns;
		/* over all of pre-copy: one quiet last round says little */
		s->rep->dirty_rate = ns ? dirtied * 1000000000ull / ns : 0;
		if (p->log)
			fprintf(p->log, "migrate: round %u: %llu pages, %llu bytes, %.1f ms; "
				"%llu pages dirtied meanwhile\n", s->rep->rounds,
				(unsigned long long)r->pages, (unsigned long long)r->bytes,
				r->ns / 1e6, (unsigned long long)r->dirtied);
		s->rep->rounds++;
		if (r->dirtied <= stop || s->rep->rounds > max)
			return 0;
		if (p->no_shrink_stop && s->rep->rounds > 1 && r->dirtied >= prev)
			return 0;
		prev = r->dirtied;
	}
}

/* STREAM_REC_NIC_HELD body: the frames, and the first frame that did not
 * fit (its length and errno), to say why none were sent. */
struct held_frames {
	struct stream_frames f;
	size_t bad_len;
	int err;
};

static int held_frame(void *ctx, const uint8_t *frame, size_t len)
{
	struct held_frames *h = ctx;

	if (stream_frames_add(&h->f, frame, len) < 0) {
		h->bad_len = len;
		h->err = errno;
		return -1;
	}
	return 0;
}

/* The frames the source's NIC holds but the guest has not taken yet are
 * the guest's, not the host's: they travel with it. */
static int send_held_frames(struct sender *s)
{
	struct held_frames h = { 0 };
	const uint8_t *body;
	size_t len;
	int rc;

	rc = vm__platform_nic_held(s->vm, held_frame, &h);
	if (rc < 0 && h.err) {
		char why[160];

		snprintf(why, sizeof why, "a frame of %zu bytes: %s", h.bad_len, strerror(h.err));
		stream_frames_free(&h.f);
		return fail(s, "migrate: held frames: %.200s", why);
	}
	if (rc < 0) {
		/* the queue could not be read: sending none would lose them */
		stream_frames_free(&h.f);
		return fail(s, "migrate: held frames: %.200s", s->vm->err);
	}
	if (!rc || !(body = stream_frames_body(&h.f, &len))) {
		stream_frames_free(&h.f);
		return 0; /* no NIC, or nothing held */
	}
	rc = 0;
	if (stream_write_record(&s->w, STREAM_REC_NIC_HELD, body, len) < 0)
		rc = fail(s, "%.200s", s->w.err);
	else
		s->rep->held_frames = h.f.count;
	stream_frames_free(&h.f);
	return rc;
}

static int send_machine(struct sender *s)
{
	struct stream_patch patch;
	struct stream_machine m = { 0 };
	struct vm_vcpu_state *v;
	struct devset set;
	uint8_t *dev = NULL;
	char *cause = NULL, why[200];
	size_t devlen = 0;
	unsigned i;
	int rc = -1;

	if (!s->pol->patch && migrate_patch_state(s->vm, &patch, why, sizeof why) < 0)
		return fail(s, "migrate: %.200s", why);
	if (s->view) { /* kvm: the guest's own view, taken at the freeze */
		m.vcpus = s->view;
		m.nr_vcpus = s->vm->nr_vcpus;
		m.devices = s->view_dev;
		m.devices_len = s->view_devlen;
		m.patch = s->pol->patch ? s->pol->patch : &patch;
		if (stream_write_machine_state(&s->w, &m) < 0)
			return fail(s, "%.200s", s->w.err);
		return 0;
	}
	if (s->have_frozen_st) {
		v = s->frozen_st;
		s->frozen_st = NULL; /* ours to free now */
	} else if (!(v = calloc(s->vm->nr_vcpus, sizeof *v))) {
		return fail(s, "migrate: vCPU state: %.200s", "out of memory");
	}
	for (i = 0; i < s->vm->nr_vcpus && !s->have_frozen_st; i++)
		if (vm__get_vcpu_state(s->vm, i, &v[i]) < 0) {
			fail(s, "migrate: vCPU state: %.200s", s->vm->err);
			goto out;
		}
	vm__platform_devset(s->vm, &set);
	pthread_mutex_lock(&s->vm->dev_lock);
	if (devstate_save(&set, &dev, &devlen, &cause) < 0) {
		pthread_mutex_unlock(&s->vm->dev_lock);
		fail(s, "migrate: %.200s", cause);
		free(cause);
		goto out;
	}
	pthread_mutex_unlock(&s->vm->dev_lock);
	m.vcpus = v;
	m.nr_vcpus = s->vm->nr_vcpus;
	m.devices = dev;
	m.devices_len = devlen;
	m.patch = s->pol->patch ? s->pol->patch : &patch;
	if (stream_write_machine_state(&s->w, &m) < 0)
		fail(s, "%.200s", s->w.err);
	else
		rc = 0;
out:
	free(dev);
	free(v);
	return rc;
}

/*
 * A native vCPU can stop with an interrupt or exception half delivered
 * (this host exits in the middle of deliveries): a target of another
 * personality cannot take such a state.  kvm_vcpu.c already lets a vCPU
 * finish a delivery before it stops, within a bound; if one still stands
 * in one, the guest runs on for half a millisecond and is frozen again.
 * A kvm source stops inside its runtime, which takes no such events.
 */
#define FREEZE_TRIES 20

/* 1: in delivery; 0: not, every state in st[]; -1: a read failed (the
 * sender reads the state again and says why).  st: nr_vcpus entries. */
static int event_in_delivery(struct vm *vm, struct vm_vcpu_state *st)
{
	unsigned i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct vm_events *e = &st[i].events;

		if (vm__get_vcpu_state(vm, i, &st[i]) < 0)
			return -1;
		if (st[i].started && (e->exc_injected || e->exc_pending || e->nmi_injected ||
				      e->nmi_pending || (e->irq_injected && !e->irq_soft)))
			return 1;
	}
	return 0;
}

/* *have: st[] holds every vCPU's state as frozen. */
static int freeze_between_events(struct vm *vm, struct vm_vcpu_state *st, int *have)
{
	struct timespec nap = { 0, 500000 };
	unsigned i;
	int r;

	*have = 0;
	for (i = 0;; i++) {
		if (vm__pause(vm) < 0)
			return -1;
		if (vm->rt || i == FREEZE_TRIES || !st)
			return 0;
		if ((r = event_in_delivery(vm, st)) <= 0) {
			*have = r == 0;
			return 0;
		}
		vm__resume(vm);
		nanosleep(&nap, NULL);
	}
}

/* kvm: the guest as the bare machine would hold it, out of the runtime. */
static int take_view(struct sender *s)
{
	if (!(s->view = calloc(s->vm->nr_vcpus, sizeof *s->view)))
		return fail(s, "migrate: vCPU state: %.200s", "out of memory");
	if (vm__kvm_guest_view(s->vm, s->view, &s->view_dev, &s->view_devlen) < 0)
		return fail(s, "migrate: freeze: %.200s", s->vm->err);
	return 0;
}

/* Frozen: last pages, held frames, machine state, END. */
static int send_frozen(struct sender *s)
{
	struct stream_stats st = { 0 };
	uint64_t b0 = s->w.bytes, fbytes;
	unsigned i;

	/* vm__pause ran the backend's `paused` hook, which may have put back
	 * bytes in guest RAM: they are in the host dirty bits, fetched here.
	 * Shared RAM: they are in the target's RAM already, as everything. */
	if (s->pol->share)
		goto state;
	if (vm__dirty_fetch(s->vm, s->dirty) < 0)
		return fail(s, "migrate: dirty log: %.200s", s->vm->err);
	if (s->rep->rounds) {
		/* OR in what the last pre-copy round left for us */
		uint64_t *left = s->dirty + (s->npages + 63) / 64;

		for (i = 0; i < (s->npages + 63) / 64; i++)
			s->dirty[i] |= left[i];
	}
	if (send_dirty(s, 0, &s->rep->final_pages, &fbytes) < 0)
		return -1;
state:
	if (send_held_frames(s) < 0 || send_machine(s) < 0)
		return -1;
	st.pages = s->rep->final_pages;
	for (i = 0; i < s->rep->rounds; i++)
		st.pages += s->rep->round[i].pages;
	st.rounds = s->rep->rounds;
	st.elapsed_ns = s->tfreeze - s->t0;
	if (stream_write_statistics(&s->w, &st) < 0 || stream_write_end(&s->w) < 0)
		return fail(s, "%.200s", s->w.err);
	if (send_flush(s) < 0)
		return -1;
	s->rep->final_bytes = s->w.bytes - b0;
	return 0;
}

int migrate_send(struct vm *src, const struct stream_io *out, const struct migrate_policy *pol,
		 struct migrate_report *rep)
{
	static const struct migrate_policy defaults = { 0 };
	struct sender s = { .vm = src, .pol = pol ? pol : &defaults, .rep = rep };
	size_t words = (src->mem_size / STREAM_PAGE_SIZE + 63) / 64;
	uint64_t t0 = vm__now_ns(), tf = 0;
	struct migrate_commit cm = { .conn = NULL };
	enum migrate_reply_code code;
	char msg[MIGRATE_REPLY_MAX + 1], why[200];
	int rc, in_doubt = 0;
	unsigned i;

	memset(rep, 0, sizeof *rep);
	s.t0 = t0;
	s.npages = src->mem_size / STREAM_PAGE_SIZE;
	s.sb = (struct send_buf){ .io = { &s.sb, sbuf_read, sbuf_write }, .out = out };
	stream_writer_init(&s.w, &s.sb.io);
	/* two bitmaps: the one being sent and, while frozen, the one left over */
	s.dirty = calloc(2 * words, sizeof *s.dirty);
	s.gfns = malloc(STREAM_MAX_BATCH * sizeof *s.gfns);
	s.sb.buf = malloc(SEND_BUF);
	if (!s.dirty || !s.gfns || !s.sb.buf) {
		fail(&s, "migrate: %.200s", "out of memory");
		goto failed;
	}
	if (send_header(&s) < 0 || (s.pol->share ? send_flush(&s) : precopy(&s)) < 0)
		goto failed;
	memcpy(s.dirty + words, s.dirty, words * sizeof *s.dirty);

	tf = s.tfreeze = vm__now_ns();
	if (!src->rt && !(s.frozen_st = calloc(src->nr_vcpus, sizeof *s.frozen_st))) {
		fail(&s, "migrate: vCPU state: %.200s", "out of memory");
		goto failed;
	}
	if (freeze_between_events(src, s.frozen_st, &s.have_frozen_st) < 0) {
		fail(&s, "migrate: freeze: %.200s", src->err);
		goto failed;
	}
	s.frozen = 1;
	if (src->rt && take_view(&s) < 0)
		goto failed;
	rep->pause_ns = vm__now_ns() - tf;
	/* No frame may reach guest RAM from here on: the NIC's receive thread
	 * would write pages and device state we have already sent. */
	vm__platform_nic_freeze(src);
	if (send_frozen(&s) < 0)
		goto failed;
	rep->sent_ns = vm__now_ns() - tf;
	/* the commit: READY, GO (from here we never resume on our own), OK */
	if (s.pol->share) {
		rc = migrate_shared_commit(src, out, s.pol->share, &code, msg, sizeof msg, why,
					   sizeof why);
		rep->committed = s.pol->share->committed;
		in_doubt = s.pol->share->in_doubt;
	} else {
		cm.relayed = s.pol->relayed;
		rc = migrate_commit_send(out, &cm, &code, msg, sizeof msg, why, sizeof why);
		rep->committed = cm.committed;
		in_doubt = cm.in_doubt;
	}
	if (rc < 0) {
		fail(&s, "migrate: %.200s", why);
		goto failed;
	}
	if (code != MIGRATE_REPLY_OK) {
		fail(&s, "migrate: target refused: %.200s", msg[0] ? msg : "no reason given");
		goto failed;
	}
	rep->downtime_ns = vm__now_ns() - tf;
	rep->total_ns = vm__now_ns() - t0;
	rep->total_bytes = s.w.bytes;
	for (i = 0; i < rep->rounds; i++)
		rep->total_pages += rep->round[i].pages;
	rep->total_pages += rep->final_pages;
	if (s.pol->late_ms) /* the NIC has a new connection on the target: the tail */
		migrate_late_send(src, out, s.pol->late_ms, &rep->late);
	if (s.tracking)
		vm__dirty_stop(src);
	free(s.dirty);
	free(s.gfns);
	free(s.sb.buf);
	free(s.view);
	free(s.view_dev);
	free(s.frozen_st);
	rep->outcome = MIGRATE_OUTCOME_MOVED;
	return 0;

failed:
	/* A write that failed usually means the target hung up after saying
	 * why; its reply is worth a short look (the io's timeout bounds it). */
	if (s.io_failed && out->read &&
	    migrate_reply_recv(out, &code, msg, sizeof msg, why, sizeof why) == 0 &&
	    code == MIGRATE_REPLY_ERROR) {
		char broke[61];

		/* the target's reason is the news; the broken write only follows from it */
		snprintf(broke, sizeof broke, "%.60s", rep->err);
		snprintf(rep->err, sizeof rep->err, "migrate: target refused: %.150s (then %s)",
			 msg, broke);
	}
	if (s.tracking)
		vm__dirty_stop(src);
	if (s.frozen && s.pol->share && migrate_shared_restore(src, s.pol->share, why,
								sizeof why) < 0) {
		s.pol->share->in_doubt = 1; /* a site we cannot put back: the guest must not run */
		in_doubt = 1;
		snprintf(rep->err + strlen(rep->err), sizeof rep->err - strlen(rep->err), "; %s",
			 why);
	}
	/* After GO without a clear answer the target may run the guest: ours
	 * stays paused, its NIC frozen, until the caller learns which. */
	rep->outcome = in_doubt ? MIGRATE_OUTCOME_UNKNOWN : MIGRATE_OUTCOME_STAYED;
	if (s.frozen && !in_doubt) {
		vm__platform_nic_thaw(src);
		vm__resume(src);
		rep->resumed = 1;
	}
	rep->total_ns = vm__now_ns() - t0;
	rep->total_bytes = s.w.bytes;
	free(s.dirty);
	free(s.gfns);
	free(s.sb.buf);
	free(s.view);
	free(s.view_dev);
	free(s.frozen_st);
	return -1;
}

void migrate_resume(struct vm *src)
{
	vm__platform_nic_thaw(src);
	vm__resume(src);
}

void migrate_report_print(const struct migrate_report *rep, FILE *out)
{
	unsigned i;

	for (i = 0; i < rep->rounds; i++)
		fprintf(out, "migrate:   round %u: %llu pages, %llu bytes, %.2f ms, %llu dirtied\n",
			i, (unsigned long long)rep->round[i].pages,
			(unsigned long long)rep->round[i].bytes, rep->round[i].ns / 1e6,
			(unsigned long long)rep->round[i].dirtied);
	fprintf(out, "migrate:   frozen: %llu pages, %llu bytes, %llu held frames; pause %.3f ms, "
		"stream sent at %.3f ms\n", (unsigned long long)rep->final_pages,
		(unsigned long long)rep->final_bytes, (unsigned long long)rep->held_frames,
		rep->pause_ns / 1e6, rep->sent_ns / 1e6);
	fprintf(out, "migrate: %u rounds, %llu pages (%llu zero pages skipped), %llu bytes, "
		"total %.2f ms, downtime %.3f ms, dirty rate %llu pages/s%s%s\n",
		rep->rounds, (unsigned long long)rep->total_pages,
		(unsigned long long)rep->zero_pages_skipped, (unsigned long long)rep->total_bytes,
		rep->total_ns / 1e6, rep->downtime_ns / 1e6, (unsigned long long)rep->dirty_rate,
		rep->err[0] ? "; failed: " : "", rep->err);
}
