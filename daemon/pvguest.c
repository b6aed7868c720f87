/* pvguest.c: one guest (native or kvm personality) in one process for pvmigrated: runs it on the kvm backend, sends it away or receives it on the daemon's word */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guest_msg.h"
#include "migrate.h"
#include "migrate_tls.h"
#include "personality_kvm.h"
#include "personality_kvm_adopt.h"
#include "rt_abi.h"

/*
 * pvguest run [--personality native|kvm] [--runtime PATH] [--vcpus N]
 *             [--memory BYTES] [--net SPEC] IMAGE [-- ARGS...]
 * pvguest receive [--personality native|kvm] [--runtime PATH] --vcpus N
 *             --memory BYTES [--net SPEC [--net-moved]]
 *             [--direct --tls-cert PEM --tls-key PEM --tls-ca PEM]
 *
 * native: the guest's own instructions, the device models trapped here
 * (pvhost --personality native).  kvm: the in-guest runtime beneath the
 * guest, our side of its channel instead of trapped devices (pvhost
 * --personality kvm, docs/RUNTIME.md); receiving into kvm attaches the
 * runtime but boots nothing: migrate_receive re-patches the guest's sites
 * and starts the runtime in adopt mode itself.
 *
 * Started by pvmigrated only (guest_proc.c): the console goes to stdout,
 * our own messages to stderr (the daemon captures both), fd 3 is the
 * command socket (guest_msg.h), and in receive mode fd 4 is the migration
 * stream.  The daemon opens the guest's NIC backend itself and hands it
 * to every runner of the guest as --net fd:5 (see nic_handover below).
 * A guest that comes from another host (--net-moved) has a connection
 * new here: once it runs, we announce its MAC on it and take the late
 * frames the source forwards after the stream (migrate_late.c); a source
 * told "migrate-late" forwards them.
 * The direct data path (pvmigrated(8)): a sender told "migrate-direct"
 * connects to the target daemon's peer port itself, writes the preamble,
 * and talks mutual TLS (migrate_tls.h) to the receiver, which got that
 * socket from its daemon ("direct TOKEN", after --direct) instead of fd 4.
 * The guest's power-off value is our exit status (70: crashed or halted
 * for good), as with pvhost.  If the daemon goes away (fd 3 ends),
 * the guest is powered off: nobody could reach it any more.
 */
#define EXIT_USAGE 2
#define EXIT_GUEST_FAILED 70
#define STREAM_TIMEOUT_MS 30000
#define SENT_EVERY_NS 250000000ull /* "sent" progress packets while sending */

static int cmd_fd = GUEST_CMD_FD;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char msg[GUEST_MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	/* the daemon reads every packet; a full socket means it is gone */
	send(cmd_fd, msg, (size_t)n, MSG_NOSIGNAL);
}

static int die(const char *action, const char *reason)
{
	fprintf(stderr, "pvguest: %s failed: %s\n", action, reason);
	return 1;
}

/* migrate_send's round log, one "log" packet per line. */
struct log_cookie {
	char line[512];
	size_t len;
};

static ssize_t log_write(void *ctx, const char *buf, size_t len)
{
	struct log_cookie *lc = ctx;
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\n' || lc->len == sizeof lc->line - 1) {
			lc->line[lc->len] = '\0';
			say("log %s", lc->line);
			lc->len = 0;
			if (buf[i] == '\n')
				continue;
		}
		lc->line[lc->len++] = buf[i];
	}
	return (ssize_t)len;
}

/* ---- the running guest ---- */

struct runner {
	struct vm *vm;
	pthread_t thread;
	int done_fd; /* eventfd: vm__run returned */
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;
	uint64_t one = 1;

	vm__run(r->vm);
	if (write(r->done_fd, &one, sizeof one) < 0)
		perror("pvguest: eventfd");
	return NULL;
}

/* Receive one command packet; its fd (if any) in *fd.  0 at EOF. */
static ssize_t cmd_recv(char *buf, size_t len, int *fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = sizeof u.b };
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(cmd_fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return n;
}

/*
 * Round 0 skips all-zero pages: the rest is what the progress bar waits
 * for.  A read-only pass over RAM while the guest runs (a page it writes
 * meanwhile is resent anyway).  Pages never touched are not resident and
 * read as zero: mincore() skips them without faulting them in, which on a
 * large fresh guest is most of the cost.
 */
static unsigned long long stream_estimate(const struct vm *vm)
{
	uint64_t pages = vm->mem_size / VM_PAGE_SIZE, p, nonzero = 0;
	size_t i, per = VM_PAGE_SIZE / sizeof(uint64_t);
	unsigned char *res = malloc(pages);
	const uint64_t *w;

	if (res && mincore(vm->mem, vm->mem_size, res) < 0) {
		free(res);
		res = NULL;
	}
	for (p = 0; p < pages; p++) {
		if (res && !(res[p] & 1))
			continue;
		w = (const uint64_t *)(vm->mem + p * VM_PAGE_SIZE);
		for (i = 0; i < per; i++)
			if (w[i]) {
				nonzero++;
				break;
			}
	}
	free(res);
	return (unsigned long long)(nonzero * (VM_PAGE_SIZE + 8));
}

/*
 * The stream's io, counted: a "sent BYTES" packet at most every
 * SENT_EVERY_NS, so that a daemon which does not relay the bytes itself
 * (an in-place move: the two guest processes share one socketpair) can
 * still show progress.  Called on this thread only (migrate_send's).
 */
struct counted_io {
	struct stream_io io;
	const struct stream_io *inner;
	unsigned long long bytes;
	uint64_t last_ns;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ssize_t counted_write(void *ctx, const void *buf, size_t len)
{
	struct counted_io *c = ctx;
	ssize_t n = c->inner->write(c->inner->ctx, buf, len);
	uint64_t t;

	if (n > 0) {
		c->bytes += (unsigned long long)n;
		t = mono_ns();
		if (t - c->last_ns >= SENT_EVERY_NS) {
			c->last_ns = t;
			say("sent %llu", c->bytes);
		}
	}
	return n;
}

static ssize_t counted_read(void *ctx, void *buf, size_t len)
{
	struct counted_io *c = ctx;

	return c->inner->read(c->inner->ctx, buf, len);
}

/*
 * An in-place move ("migrate-local": the receiver is another process of
 * this host, on an AF_UNIX socket) shares the guest's RAM instead of
 * copying it (migrate_shared.c); we tell the daemon which it is, and why
 * not when it cannot be ("ram shared", "ram copied WHY").
 */
static int can_share(const struct vm *vm, int fd, char *why, size_t whylen)
{
	int dom;
	socklen_t dl = sizeof dom;

	if (vm->mem_fd < 0) {
		snprintf(why, whylen, "the guest's RAM has no memory file");
		return 0;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) < 0 || dom != AF_UNIX) {
		snprintf(why, whylen, "the stream is not an AF_UNIX socket");
		return 0;
	}
	return 1;
}

/*
 * After GO the target's answer did not come through the relays: the guest
 * stays paused here (its NIC frozen) while our daemon asks the target's
 * (pvmigrated(8), "The commit"): "resume" if the target does not run it,
 * "destroy" if it does.  1: destroyed (the target has it), 0: runs on.
 */
static int await_verdict(struct runner *r, const char *err)
{
	char buf[GUEST_MSG_MAX];
	ssize_t n;
	int fd;

	fprintf(stderr, "pvguest: %s: after GO the target's answer is unknown; paused until the "
		"daemon learns whether it runs the guest\n", err);
	say("migrate-unknown %s", err);
	for (;;) {
		n = cmd_recv(buf, sizeof buf, &fd);
		if (fd >= 0)
			close(fd);
		if (n <= 0) {
			/* nobody can resolve it any more: the paused copy must not run */
			fprintf(stderr, "pvguest: the daemon went away with the move's outcome "
				"unknown: the paused copy is powered off, never run\n");
			vm__poweroff(r->vm, VM_EXIT_POWEROFF, 128 + SIGHUP);
			return 0;
		}
		if (!strcmp(buf, "resume")) {
			fprintf(stderr, "pvguest: the target does not run the guest: resumed here\n");
			migrate_resume(r->vm);
			return 0;
		}
		if (!strcmp(buf, "destroy")) {
			fprintf(stderr, "pvguest: the target runs the guest: this paused copy ends\n");
			vm__poweroff(r->vm, VM_EXIT_POWEROFF, 0);
			return 1;
		}
		fprintf(stderr, "pvguest: '%.40s' while the move's outcome is unknown, ignored\n",
			buf);
	}
}

/* Returns 1 when the guest left (the target has it), 0 when it runs on.
 * late: "migrate-late", the guest's NIC has a new connection there.
 * local: "migrate-local", the receiver runs on this host (share the RAM). */
static int do_migrate(struct runner *r, int fd, int late, int local, struct migrate_tls *tls)
{
	struct log_cookie lc = { .len = 0 };
	cookie_io_functions_t fns = { .write = log_write };
	struct migrate_policy pol = { .no_shrink_stop = 1 };
	struct migrate_share share = { .conn = NULL };
	struct stream_patch patch;
	struct migrate_report rep;
	struct migrate_conn conn;
	struct counted_io cio;
	char why[200];
	int rc;

	pol.log = fopencookie(&lc, "w", fns);
	if (pol.log)
		setvbuf(pol.log, NULL, _IOLBF, 0);
	pol.late_ms = late ? MIGRATE_LATE_MS : 0;
	/* across daemons the stream passes two relays: after GO their end
	 * tells nothing, and only the target's daemon knows (see below) */
	pol.relayed = !local;
	if (local && can_share(r->vm, fd, why, sizeof why)) {
		share.conn = &conn;
		pol.share = &share;
		say("ram shared");
		/* The patch state (the table's digest) now, not in the downtime:
		 * a guest that rewrote its table meanwhile is refused by the
		 * target's check of the table it then finds, and runs on here. */
		if (migrate_patch_state(r->vm, &patch, why, sizeof why) == 0)
			pol.patch = &patch;
	} else {
		if (local)
			say("ram copied %s", why);
		say("estimate %llu", stream_estimate(r->vm));
	}
	migrate_conn_init(&conn, fd, STREAM_TIMEOUT_MS);
	cio = (struct counted_io){ .io = { &cio, counted_read, counted_write },
				   .inner = tls ? &tls->io : &conn.io, .last_ns = mono_ns() };
	rc = migrate_send(r->vm, &cio.io, &pol, &rep);
	migrate_boost_end(&share.boost);
	if (rc == 0 && pol.share)
		vm__ram_detach(r->vm); /* the target runs the guest: hands off its RAM */
	if (cio.bytes)
		say("sent %llu", cio.bytes);
	if (tls)
		migrate_tls_close(tls);
	close(fd);
	if (pol.log)
		fclose(pol.log);
	if (rc < 0) {
		if (share.sites_restored)
			fprintf(stderr, "pvguest: %u sites held the target's bytes: put back\n",
				share.sites_restored);
		fprintf(stderr, "pvguest: migration failed: %s%s\n", rep.err,
			rep.resumed ? " (the guest runs on here)" : "");
		if (rep.outcome == MIGRATE_OUTCOME_UNKNOWN && local) {
			/* the target may run it: ours must never run again */
			fprintf(stderr, "pvguest: after the commit the target's answer is unknown: "
				"the guest is stopped here for good\n");
			say("migrate-failed 0 %s; after the commit: stopped here for good", rep.err);
			vm__fail(r->vm, "stopped for good: an in-place move's end is unknown");
			vm__poweroff(r->vm, VM_EXIT_CRASH, 0);
			if (pol.share)
				vm__ram_detach(r->vm);
			return 0;
		}
		if (rep.outcome == MIGRATE_OUTCOME_UNKNOWN)
			return await_verdict(r, rep.err);
		say("migrate-failed %d %s", rep.resumed, rep.err);
		return 0;
	}
	fprintf(stderr, "pvguest: migrated (RAM %s): downtime %.3f ms (pause %.3f, state sent "
		"%.3f%s), total %.1f ms, %llu bytes\n", pol.share ? "shared" : "copied",
		rep.downtime_ns / 1e6, rep.pause_ns / 1e6, rep.sent_ns / 1e6,
		pol.share ? ", then READY and OK" : "", rep.total_ns / 1e6,
		(unsigned long long)rep.total_bytes);
	if (pol.share)
		fprintf(stderr, "pvguest:   READY %.3f ms after the state, OK %.3f ms after GO\n",
			share.ready_ns / 1e6, (share.go_ns - share.ready_ns) / 1e6);
	if (late) {
		fprintf(stderr, "pvguest: ");
		migrate_late_print(&rep.late, "forwarded", stderr);
	}
	/* the tail's figures after the four: frames, how it ended (0: broke off) */
	say("migrated %llu %llu %llu %u %llu %u", (unsigned long long)rep.downtime_ns,
	    (unsigned long long)rep.total_ns, (unsigned long long)rep.total_bytes, rep.rounds,
	    (unsigned long long)rep.late.frames, rep.late.err[0] ? 0 : rep.late.how);
	/* The target confirmed: ours is a stale copy, paused; end it. */
	vm__poweroff(r->vm, VM_EXIT_POWEROFF, 0);
	return 1;
}

/* ---- the direct data path ---- */

/* 2n hex digits into n bytes; -1 if they are not. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
	unsigned v;
	size_t i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		if (!strchr("0123456789abcdef", s[2 * i]) || !strchr("0123456789abcdef", s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* A TCP connection to host:port within timeout_ms; the socket, or -1 with why. */
static int direct_dial(const char *host, const char *port, int timeout_ms, char *why,
		       size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct pollfd pfd;
	socklen_t el;
	int fd = -1, e = 0, rc, one = 1;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(why, whylen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		if (e == EINPROGRESS) {
			pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
			do
				rc = poll(&pfd, 1, timeout_ms);
			while (rc < 0 && errno == EINTR);
			el = sizeof e;
			if (rc == 0)
				e = ETIMEDOUT;
			else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
				e = errno;
			if (rc > 0 && e == 0)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, whylen, "connecting to %s port %s: %s", host, port, strerror(e));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/*
 * "migrate-direct HOST PORT IDHEX TOKENHEX LATE\nCERT\nKEY\nCA": connect
 * to the target daemon, the preamble, TLS and the token, then the ordinary
 * send.  Nothing is frozen before the connection is up; a failure up to
 * there leaves the guest running ("migrate-failed 0").  As do_migrate.
 */
static int do_migrate_direct(struct runner *r, char *msg)
{
	char host[256], port[8], idhex[40], tokhex[72], why[400];
	struct migrate_tls_cfg cfg = { .cert = NULL };
	uint8_t id[MIGRATE_ID_LEN], token[MIGRATE_TOKEN_LEN];
	struct migrate_tls t;
	char *cert, *key, *ca;
	SSL_CTX *ctx;
	int late, fd, away;

	cert = strchr(msg, '\n');
	key = cert ? strchr(cert + 1, '\n') : NULL;
	ca = key ? strchr(key + 1, '\n') : NULL;
	if (!ca || strchr(ca + 1, '\n') ||
	    sscanf(msg, "migrate-direct %255s %7s %39s %71s %d", host, port, idhex, tokhex,
		   &late) != 5 || unhex(idhex, id, sizeof id) < 0 ||
	    unhex(tokhex, token, sizeof token) < 0) {
		say("migrate-failed 0 the direct path's order is malformed; nothing was frozen");
		return 0;
	}
	*cert++ = *key++ = *ca++ = '\0';
	OPENSSL_cleanse(tokhex, sizeof tokhex);
	cfg.cert = cert;
	cfg.key = key;
	cfg.ca = ca;
	fd = direct_dial(host, port, STREAM_TIMEOUT_MS, why, sizeof why);
	if (fd < 0) {
		OPENSSL_cleanse(token, sizeof token);
		say("migrate-failed 0 direct path: %s; nothing was frozen", why);
		return 0;
	}
	ctx = migrate_tls_ctx(&cfg, 0, why, sizeof why);
	if (!ctx || migrate_preamble_write(fd, id, STREAM_TIMEOUT_MS, why, sizeof why) < 0 ||
	    migrate_tls_connect(&t, ctx, fd, STREAM_TIMEOUT_MS, token, why, sizeof why) < 0) {
		OPENSSL_cleanse(token, sizeof token);
		if (ctx)
			SSL_CTX_free(ctx);
		close(fd);
		say("migrate-failed 0 direct path to %s port %s: %s; nothing was frozen", host, port,
		    why);
		return 0;
	}
	OPENSSL_cleanse(token, sizeof token);
	fprintf(stderr, "pvguest: direct path to %s port %s: TLS 1.3 (%s) up, token accepted\n",
		host, port, migrate_tls_suite(&t));
	away = do_migrate(r, fd, late, 0, &t); /* closes t and fd */
	SSL_CTX_free(ctx);
	return away;
}

/* Run the guest until it ends, serving the daemon meanwhile; our exit status.
 * late: the tail's reader of a guest just received, or NULL. */
/*
 * A received guest: say "resumed NS", the time from its OK (t_run) until
 * it really ran again.  Native: at once, 0.  kvm (adopted): when the
 * runtime, entered at RT_ENTRY_ADOPT, has restored the guest and rung
 * BOOTED; "resumed ?" if it has not within RESUME_WAIT_NS.  1 while still
 * waiting.
 */
#define RESUME_WAIT_NS 5000000000ull
#define RESUME_POLL_MS 2

static int resume_report(struct vm *vm, uint64_t t_run, int adopted)
{
	uint64_t done = adopted ? vm__kvm_adopt_done_ns(vm) : t_run;

	if (done) {
		done = done > t_run ? done - t_run : 0;
		if (adopted)
			fprintf(stderr, "pvguest: the guest ran again %.3f ms after its OK (the kvm "
				"runtime's adopt)\n", done / 1e6);
		say("resumed %llu", (unsigned long long)done);
		return 0;
	}
	if (vm__now_ns() - t_run < RESUME_WAIT_NS)
		return 1;
	fprintf(stderr, "pvguest: the kvm runtime has not finished its adopt %llu ms after the "
		"OK: when the guest ran again is unknown\n", RESUME_WAIT_NS / 1000000ull);
	say("resumed ?");
	return 0;
}

/* t_run: a received guest's OK (vm__now_ns), 0 for a guest booted here;
 * adopted: its kvm runtime was installed beneath it (resume_report). */
static int serve(struct vm *vm, struct migrate_late *late, uint64_t t_run, int adopted)
{
	struct migrate_late_report lr;
	struct runner r = { .vm = vm };
	struct pollfd pfd[3];
	sigset_t set;
	char buf[GUEST_MSG_MAX];
	int sfd, away = 0, fd, rc, resuming = t_run != 0;
	ssize_t n;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	r.done_fd = eventfd(0, EFD_CLOEXEC);
	if (sfd < 0 || r.done_fd < 0 || pthread_create(&r.thread, NULL, run_thread, &r)) {
		vm__destroy(vm);
		return die("start the guest", strerror(errno));
	}
	say("ready");
	pfd[0] = (struct pollfd){ .fd = r.done_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = cmd_fd, .events = POLLIN };
	for (;;) {
		/* the adopt's end is polled (it is the vCPUs' business, the
		 * guest runs on meanwhile); its time is the host's own mark */
		if (resuming)
			resuming = resume_report(vm, t_run, adopted);
		if (poll(pfd, 3, resuming ? RESUME_POLL_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof si) == sizeof si)
				vm__poweroff(vm, VM_EXIT_POWEROFF, 128 + (int)si.ssi_signo);
		}
		if (pfd[2].revents) {
			n = cmd_recv(buf, sizeof buf, &fd);
			if (n <= 0) {
				/* the daemon is gone: nobody can reach the guest any more */
				fprintf(stderr, "pvguest: the daemon went away, powering off\n");
				vm__poweroff(vm, VM_EXIT_POWEROFF, 128 + SIGHUP);
				pfd[2].fd = -1;
			} else if ((!strcmp(buf, "migrate") || !strcmp(buf, "migrate-late") ||
				    !strcmp(buf, "migrate-local")) && fd >= 0) {
				/* the last move's late frames go in before this one freezes */
				migrate_late_recv_end(late, MIGRATE_LATE_WAIT_MS, &lr);
				late = NULL;
				away = do_migrate(&r, fd, !strcmp(buf, "migrate-late"),
						  !strcmp(buf, "migrate-local"), NULL);
			} else if (!strncmp(buf, "migrate-direct ", 15) && fd < 0) {
				migrate_late_recv_end(late, MIGRATE_LATE_WAIT_MS, &lr);
				late = NULL;
				away = do_migrate_direct(&r, buf);
				OPENSSL_cleanse(buf, sizeof buf);
			} else {
				if (fd >= 0)
					close(fd);
				fprintf(stderr, "pvguest: unknown command '%.40s' ignored\n", buf);
			}
		}
	}
	pthread_join(r.thread, NULL);
	migrate_late_recv_end(late, 0, &lr);
	if (away) {
		/* no drain of a kvm runtime's rings here: they are part of the
		 * state the target took over (the migrate library's business) */
		rc = 0;
	} else {
		vm__kvm_host_finish(vm); /* what the runtime left in its rings (kvm) */
		vm__kvm_host_report(vm, stderr);
		switch (vm->exit_kind) {
		case VM_EXIT_POWEROFF:
			rc = vm->exit_status;
			break;
		case VM_EXIT_HALTED:
			fprintf(stderr, "pvguest: guest halted with interrupts disabled\n");
			rc = EXIT_GUEST_FAILED;
			break;
		default:
			fprintf(stderr, "pvguest: guest failed: %s\n", vm->err);
			rc = EXIT_GUEST_FAILED;
			break;
		}
	}
	vm__destroy(vm);
	return rc;
}

/* ---- command line ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: pvguest run [--personality native|kvm] [--runtime PATH] [--vcpus N]\n"
		"                   [--memory BYTES] [--net SPEC] IMAGE [-- ARGS...]\n"
		"       pvguest receive [--personality native|kvm] [--runtime PATH] --vcpus N\n"
		"                   --memory BYTES [--net SPEC [--net-moved]]\n"
		"                   [--direct --tls-cert PEM --tls-key PEM --tls-ca PEM]\n"
		"pvguest is started by pvmigrated: fd %d must be its command socket, and in\n"
		"receive mode fd %d the migration stream.  kvm: the runtime is --runtime PATH,\n"
		"else $PVMIGRATE_RUNTIME, else %s,\n"
		"else %s.\n", GUEST_CMD_FD, GUEST_STREAM_FD, PVHOST_RUNTIME_BUILD,
		PVHOST_RUNTIME_INSTALLED);
}

struct opts {
	unsigned long vcpus;
	unsigned long long memory;
	const char *net, *image, *runtime;
	char *cmdline;
	int linux_boot, kvm;
	int net_moved; /* receive: the NIC's connection is new here (another host's guest) */
	int direct;    /* receive: the stream comes with "direct", TLS with these files */
	const char *tls_cert, *tls_key, *tls_ca;
};

/* -1 with why: a usage error (exit 2, reported to the daemon too). */
static int parse(int argc, char **argv, int receive, struct opts *o, char *why, size_t whylen)
{
	const char *pers = "native";
	size_t len = 1;
	char *end;
	int i, first;

	o->vcpus = 1;
	o->memory = 256ull << 20;
	snprintf(why, whylen, "bad command line");
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--personality") && i + 1 < argc) {
			pers = argv[++i];
		} else if (!strcmp(argv[i], "--runtime") && i + 1 < argc) {
			o->runtime = argv[++i];
		} else if (!strcmp(argv[i], "--vcpus") && i + 1 < argc) {
			o->vcpus = strtoul(argv[++i], &end, 10);
			if (*end || o->vcpus < 1 || o->vcpus > VM_MAX_VCPUS)
				return -1;
		} else if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
			o->memory = strtoull(argv[++i], &end, 10);
			if (*end || !o->memory)
				return -1;
		} else if (!strcmp(argv[i], "--net") && i + 1 < argc) {
			o->net = argv[++i];
		} else if (!strcmp(argv[i], "--net-moved") && receive) {
			o->net_moved = 1;
		} else if (!strcmp(argv[i], "--direct") && receive) {
			o->direct = 1;
		} else if (!strcmp(argv[i], "--tls-cert") && receive && i + 1 < argc) {
			o->tls_cert = argv[++i];
		} else if (!strcmp(argv[i], "--tls-key") && receive && i + 1 < argc) {
			o->tls_key = argv[++i];
		} else if (!strcmp(argv[i], "--tls-ca") && receive && i + 1 < argc) {
			o->tls_ca = argv[++i];
		} else if (argv[i][0] == '-' || o->image || receive) {
			return -1;
		} else {
			o->image = argv[i];
		}
	}
	if (strcmp(pers, "native") && strcmp(pers, "kvm")) {
		snprintf(why, whylen, "personality '%s' is not available here (kvm, native are)", pers);
		return -1;
	}
	o->kvm = !strcmp(pers, "kvm");
	if (!o->kvm && o->runtime) {
		snprintf(why, whylen, "--runtime: only the kvm personality has a runtime");
		return -1;
	}
	if (o->kvm && o->memory > RT_WINDOW_BASE) {
		snprintf(why, whylen, "under kvm guest RAM must end below the runtime window at %#llx "
			 "(at most %llu MiB), not %llu MiB", (unsigned long long)RT_WINDOW_BASE,
			 (unsigned long long)(RT_WINDOW_BASE >> 20), o->memory >> 20);
		return -1;
	}
	if (o->direct && (!o->tls_cert || !o->tls_key || !o->tls_ca)) {
		snprintf(why, whylen, "--direct needs --tls-cert, --tls-key and --tls-ca");
		return -1;
	}
	if (receive)
		return i < argc ? -1 : 0;
	if (!o->image)
		return -1;
	o->linux_boot = vm__is_bzimage(o->image);
	if (o->kvm && o->linux_boot) {
		snprintf(why, whylen, "%s is a Linux bzImage: the kvm personality boots Multiboot "
			 "images only", o->image);
		return -1;
	}
	if (o->linux_boot && i >= argc) {
		o->cmdline = strdup("console=ttyS0 earlyprintk=serial");
		return o->cmdline ? 0 : -1;
	}
	/* Multiboot: like QEMU and pvhost, the image name is the first word. */
	len += strlen(o->image) + 1;
	for (first = i; i < argc; i++)
		len += strlen(argv[i]) + 1;
	o->cmdline = malloc(len);
	if (!o->cmdline)
		return -1;
	strcpy(o->cmdline, o->linux_boot ? "" : o->image);
	for (i = first; i < argc; i++) {
		if (o->cmdline[0])
			strcat(o->cmdline, " ");
		strcat(o->cmdline, argv[i]);
	}
	return 0;
}

/* ---- a received guest's NIC: the source's connection, not before the freeze
 *
 * With --net fd:N (the daemon's one connection for the guest, which the
 * source is still reading), our NIC must not read N until the stream
 * begins: the platform starts its receive thread as soon as the NIC
 * exists, and a frame it took while the source runs would arrive out of
 * order, or be lost with us if the move fails.  So the NIC is created on
 * a placeholder of the same kind (a socket of N's type, a pipe for a
 * tap) that never has anything to read, and N replaces it in place
 * (dup3 onto the same number) at the stream's first byte: migrate_receive
 * has stopped the NIC's thread by then (its freeze), and restarts it,
 * now on N, after its OK.  The source stops reading N at its freeze;
 * what is sent meanwhile waits in N's buffer.
 */
struct nic_handover {
	int real;	/* N, until it replaces the placeholder; -1 after */
	int slot;	/* the number the NIC reads: the placeholder, then N */
	int keep;	/* the placeholder's other end, so that it never hangs up */
	char spec[32];	/* fd:SLOT, the NIC's --net */
};

/* Point o->net at a placeholder; 0 (nothing to do unless --net fd:N), -1 with why. */
static int nic_handover_prepare(struct opts *o, struct nic_handover *h, char *why, size_t whylen)
{
	int type, sv[2];
	socklen_t tl = sizeof type;
	char *end;
	long n;

	h->real = h->slot = h->keep = -1;
	if (!o->net || strncmp(o->net, "fd:", 3))
		return 0;
	n = strtol(o->net + 3, &end, 10);
	if (!o->net[3] || *end || n < 0 || n > 65535 || fcntl((int)n, F_GETFD) < 0) {
		snprintf(why, whylen, "--net %s: not an open file descriptor", o->net);
		return -1;
	}
	if (getsockopt((int)n, SOL_SOCKET, SO_TYPE, &type, &tl) == 0
		    ? socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0
		    : pipe2(sv, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "--net %s: a placeholder until the stream: %s", o->net,
			 strerror(errno));
		return -1;
	}
	h->real = (int)n;
	h->slot = sv[0];
	h->keep = sv[1];
	snprintf(h->spec, sizeof h->spec, "fd:%d", h->slot);
	o->net = h->spec;
	return 0;
}

/* The NIC's thread is stopped (the stream began): its fd becomes N.  -1
 * (errno set) if it cannot: the stream fails, and the source resumes the
 * guest rather than have it run here without its network. */
static int nic_handover_swap(struct nic_handover *h)
{
	int e;

	if (h->real < 0)
		return 0;
	if (dup3(h->real, h->slot, O_CLOEXEC) < 0) {
		e = errno;
		fprintf(stderr, "pvguest: the NIC cannot take the guest's connection: %s\n",
			strerror(e));
		errno = e;
		return -1;
	}
	close(h->real);
	close(h->keep);
	h->real = h->keep = -1;
	return 0;
}

/* The receive stream's io: the swap before its first byte either way. */
struct handover_io {
	struct stream_io io;
	const struct stream_io *inner;
	struct nic_handover *h;
};

static ssize_t handover_read(void *ctx, void *buf, size_t len)
{
	struct handover_io *x = ctx;

	if (nic_handover_swap(x->h) < 0)
		return -1;
	return x->inner->read(x->inner->ctx, buf, len);
}

static ssize_t handover_write(void *ctx, const void *buf, size_t len)
{
	struct handover_io *x = ctx;

	if (nic_handover_swap(x->h) < 0)
		return -1;
	return x->inner->write(x->inner->ctx, buf, len);
}

/*
 * TEST ONLY: a receiver that fails on purpose during a shared-RAM commit
 * (pvmigrated(8), FAULT INJECTION).  $PVGUEST_TEST_FAULT_FILE names a
 * file read once per receive: "kill@STEP" (SIGKILL ourselves there),
 * "stop@STEP" (SIGSTOP: silent until the daemon ends us) or "fail@STEP"
 * (refuse there), STEP "ready" (READY sent, before GO) or
 * "repatched" (after GO, the shared RAM re-patched, before OK).  Missing
 * file or variable: no fault.
 */
struct test_fault {
	char action[8], step[16];
};

static int test_fault_hook(void *ctx, const char *step)
{
	struct test_fault *f = ctx;

	if (strcmp(f->step, step))
		return 0;
	fprintf(stderr, "pvguest: TEST FAULT %s@%s\n", f->action, step);
	if (!strcmp(f->action, "kill"))
		raise(SIGKILL);
	if (!strcmp(f->action, "stop"))
		raise(SIGSTOP);
	return -1;
}

static void test_fault_arm(struct migrate_share *sh, struct test_fault *f)
{
	const char *path = getenv("PVGUEST_TEST_FAULT_FILE");
	char line[64] = "";
	FILE *in;

	memset(f, 0, sizeof *f);
	if (!path || !(in = fopen(path, "re")))
		return;
	if (fgets(line, sizeof line, in) &&
	    sscanf(line, "%7[a-z]@%15[a-z]", f->action, f->step) == 2 &&
	    (!strcmp(f->action, "kill") || !strcmp(f->action, "stop") ||
	     !strcmp(f->action, "fail"))) {
		fprintf(stderr, "pvguest: TEST FAULT HOOK ON: %s@%s\n", f->action, f->step);
		sh->test_hook = test_fault_hook;
		sh->test_ctx = f;
	} else if (line[0]) {
		fprintf(stderr, "pvguest: TEST FAULT HOOK: '%.40s' not understood, ignored\n", line);
	}
	fclose(in);
}

/*
 * Receive, copied RAM: GO came.  The daemon hears "committed" before the
 * OK leaves and before any vCPU runs, and the guest runs only once it
 * answered "run": a daemon whose link broke first has decided to end us
 * instead (SIGKILL), and then told the source's daemon the guest is not
 * here.  So its word and what runs can never disagree.
 */
static void on_go(void *ctx)
{
	*(int *)ctx = 1;
	say("committed");
}

/* 0: the daemon said run; -1 with why. */
static int await_run(char *why, size_t whylen)
{
	char buf[GUEST_MSG_MAX];
	ssize_t n;
	int fd;

	n = cmd_recv(buf, sizeof buf, &fd);
	if (fd >= 0)
		close(fd);
	if (n > 0 && !strcmp(buf, "run"))
		return 0;
	snprintf(why, whylen, "after GO the daemon did not let the guest run (%s)",
		 n > 0 ? "it said something else" : "it went away");
	return -1;
}

/*
 * The direct path's receiver: nothing holds the OK back for the daemon
 * (on the relay path its relay does), so the stream's io does: the first
 * write after GO (the OK) waits for the daemon's "run".  If that never
 * comes the write fails: no OK, and the guest is not run here.
 */
struct gate_io {
	struct stream_io io;
	const struct stream_io *inner;
	const int *committed;	/* on_go's flag */
	int ran;		/* the daemon said run */
};

static ssize_t gate_read(void *ctx, void *buf, size_t len)
{
	struct gate_io *g = ctx;

	return g->inner->read(g->inner->ctx, buf, len);
}

static ssize_t gate_write(void *ctx, const void *buf, size_t len)
{
	struct gate_io *g = ctx;
	char why[200];

	if (*g->committed && !g->ran) {
		if (await_run(why, sizeof why) < 0) {
			fprintf(stderr, "pvguest: %s\n", why);
			errno = EPIPE;
			return -1;
		}
		g->ran = 1;
	}
	return g->inner->write(g->inner->ctx, buf, len);
}

/* Wait for "direct TOKENHEX" and its socket from the daemon; the socket,
 * or -1 with why (the daemon went away, or said something else). */
static int direct_take(uint8_t token[MIGRATE_TOKEN_LEN], char *why, size_t whylen)
{
	char buf[GUEST_MSG_MAX];
	ssize_t n;
	int fd;

	n = cmd_recv(buf, sizeof buf, &fd);
	if (n > 0 && fd >= 0 && !strncmp(buf, "direct ", 7) &&
	    unhex(buf + 7, token, MIGRATE_TOKEN_LEN) == 0) {
		OPENSSL_cleanse(buf, sizeof buf);
		return fd;
	}
	if (fd >= 0)
		close(fd);
	snprintf(why, whylen, "the direct path: %s instead of the source's connection",
		 n > 0 ? "the daemon said something else" : "the daemon went away");
	return -1;
}

/* After a direct receive, the stream's tail (late frames) comes in TLS
 * records: this thread decrypts it onto a socketpair whose other end
 * migrate_late_recv_start reads as it reads fd 4 on the relay path. */
struct late_proxy {
	struct migrate_tls *t;
	SSL_CTX *ctx;
	int fd, out;
};

static void *late_proxy_thread(void *arg)
{
	struct late_proxy *p = arg;
	char buf[16384];
	ssize_t n, w, off;

	while ((n = p->t->io.read(p->t->io.ctx, buf, sizeof buf)) > 0)
		for (off = 0; off < n; off += w) {
			w = write(p->out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w <= 0)
				goto out;
		}
out:
	close(p->out);
	migrate_tls_close(p->t);
	close(p->fd);
	SSL_CTX_free(p->ctx);
	free(p->t);
	free(p);
	return NULL;
}

/* The tail's fd for migrate_late_recv_start: a socketpair end fed by the
 * proxy thread, which owns t, ctx and fd from here; -1 with why. */
static int late_proxy_start(struct migrate_tls *t, SSL_CTX *ctx, int fd, char *why,
			    size_t whylen)
{
	struct late_proxy *p = calloc(1, sizeof *p);
	pthread_t th;
	int sv[2];

	if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "late frames: %s", p ? strerror(errno) : "out of memory");
		free(p);
		return -1;
	}
	*p = (struct late_proxy){ .t = t, .ctx = ctx, .fd = fd, .out = sv[0] };
	t->timeout_ms = MIGRATE_LATE_WAIT_MS; /* the source's tail has its bound, then ends */
	if (pthread_create(&th, NULL, late_proxy_thread, p) != 0) {
		snprintf(why, whylen, "late frames: thread: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(p);
		return -1;
	}
	pthread_detach(th);
	return sv[1];
}

/*
 * The VM's platform, before anything is loaded or received.  native: the
 * trapped device models (and NIC).  kvm: exactly pvhost's setup_kvm up to
 * the boot: the ports, then the runtime attached to its window; the NIC
 * is the runtime's.  -1 with vm->err, *action naming the step.
 */
static int setup_platform(struct vm *vm, const struct opts *o, const char **action)
{
	struct vm_kvm_host_cfg cfg = { .net = o->net, .console_fd = STDOUT_FILENO };

	if (!o->kvm) {
		*action = "create platform";
		if (vm__platform_init(vm, STDOUT_FILENO) < 0)
			return -1;
		*action = "attach NIC";
		return o->net ? vm__platform_add_nic(vm, o->net) : 0;
	}
	*action = "attach the kvm runtime";
	cfg.runtime = o->runtime; /* NULL: attach looks it up, as for pvhost */
	*action = "create platform";
	if (vm__platform_init_ports(vm) < 0)
		return -1;
	*action = "attach the kvm runtime";
	return vm__kvm_host_attach(vm, &cfg);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct nic_handover nh = { -1, -1, -1, "" };
	struct handover_io hio;
	struct gate_io gate;
	struct migrate_tls *tls = NULL;
	SSL_CTX *tls_ctx = NULL;
	uint8_t token[MIGRATE_TOKEN_LEN];
	int stream_fd = GUEST_STREAM_FD, late_fd;
	const struct stream_io *in;
	struct migrate_late *late;
	struct migrate_share share;
	struct test_fault fault;
	struct migrate_conn conn;
	char cause[256], why[600];
	const char *action = "run";
	struct vm *vm;
	sigset_t set;
	int receive, rc, committed = 0;
	uint64_t t_run;

	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || (strcmp(argv[1], "run") && strcmp(argv[1], "receive"))) {
		usage();
		return EXIT_USAGE;
	}
	receive = !strcmp(argv[1], "receive");
	{
		int type;
		socklen_t tl = sizeof type;

		if (getsockopt(cmd_fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
			usage();
			return EXIT_USAGE;
		}
	}
	if (parse(argc - 2, argv + 2, receive, &o, why, sizeof why) < 0) {
		say("%s %s", receive ? "receive-failed" : "failed", why);
		fprintf(stderr, "pvguest: %s\n", why);
		usage();
		return EXIT_USAGE;
	}
	/* A receiver is a fresh process whose code the frozen phase runs for
	 * the first time: touch every page mapped so far (our code, the
	 * libraries, the heap) now, while the source still runs, instead of
	 * taking those faults in the downtime.  Not RAM: it does not exist
	 * yet.  Without the right to lock, the faults just stay where they were. */
	if (receive && mlockall(MCL_CURRENT) == 0)
		munlockall();
	if (receive && nic_handover_prepare(&o, &nh, why, sizeof why) < 0) {
		say("receive-failed %s", why);
		return die("attach NIC", why);
	}
	/* Before any vCPU thread exists, so they all inherit the mask and
	 * the signals reach serve()'s signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	vm = vm__create(&vm_kvm_ops, o.memory, (unsigned)o.vcpus, cause, sizeof cause);
	if (!vm) {
		say("%s %s", receive ? "receive-failed" : "failed", cause);
		free(o.cmdline);
		return die("create VM", cause);
	}
	if (setup_platform(vm, &o, &action) < 0) {
		say("%s %s", receive ? "receive-failed" : "failed", vm->err);
		die(action, vm->err);
		vm__destroy(vm);
		free(o.cmdline);
		return 1;
	}
	if (receive) {
		migrate_warm_up();
		say("ready");
		if (o.direct) {
			/* no fd 4: the source's own connection, TLS, its token */
			struct migrate_tls_cfg cfg = { .cert = o.tls_cert, .key = o.tls_key,
						       .ca = o.tls_ca };

			stream_fd = direct_take(token, why, sizeof why);
			tls = calloc(1, sizeof *tls);
			tls_ctx = stream_fd < 0 || !tls ? NULL
				  : migrate_tls_ctx(&cfg, 1, why, sizeof why);
			if (!tls_ctx || migrate_tls_accept(tls, tls_ctx, stream_fd, STREAM_TIMEOUT_MS,
							   token, why, sizeof why) < 0) {
				OPENSSL_cleanse(token, sizeof token);
				say("receive-failed %s", tls ? why : "out of memory");
				die("take the direct connection", tls ? why : "out of memory");
				vm__destroy(vm);
				return 1;
			}
			OPENSSL_cleanse(token, sizeof token);
			fprintf(stderr, "pvguest: direct path: TLS 1.3 (%s) with the source's guest "
				"process, its certificate and the move's token checked\n",
				migrate_tls_suite(tls));
		}
		migrate_conn_init(&conn, stream_fd, STREAM_TIMEOUT_MS);
		gate = (struct gate_io){ .io = { &gate, gate_read, gate_write },
					 .inner = tls ? &tls->io : NULL, .committed = &committed };
		in = tls ? &gate.io : &conn.io;
		hio = (struct handover_io){ .io = { &hio, handover_read, handover_write },
					    .inner = in, .h = &nh };
		/* shared RAM only on an AF_UNIX socket: never on the direct path */
		share = (struct migrate_share){ .conn = tls ? NULL : &conn, .on_go = on_go,
						.on_go_ctx = &committed };
		test_fault_arm(&share, &fault);
		rc = migrate_receive_ex(vm, nh.slot >= 0 ? &hio.io : in, &share, why, sizeof why);
		migrate_boost_end(&share.boost);
		if (rc < 0) {
			close(stream_fd);
			say("receive-failed %s", why);
			die("receive the guest", why);
			vm__destroy(vm);
			return 1;
		}
		if (committed && !tls && await_run(why, sizeof why) < 0) {
			close(stream_fd);
			say("receive-failed %s", why);
			die("receive the guest", why);
			vm__destroy(vm);
			return 1;
		}
		/* the OK is out (or, held for the daemon's run, goes out now):
		 * the source's downtime ends here */
		t_run = vm__now_ns();
		fprintf(stderr, "pvguest: guest received, running (%s)\n", o.kvm ? "kvm" : "native");
		if (committed)
			fprintf(stderr, "pvguest:   copied: GO %.3f ms after READY, run %.3f ms after "
				"GO\n", (share.t_go - share.t_ready) / 1e6,
				(vm__now_ns() - share.t_go) / 1e6);
		if (share.t_mapped)
			fprintf(stderr, "pvguest:   RAM shared: GO %.3f ms after READY, then RAM mapped "
				"in %.3f ms, sites re-patched in %.3f ms, OK %.3f ms after GO\n",
				(share.t_go - share.t_ready) / 1e6, (share.t_mapped - share.t_go) / 1e6,
				(share.t_repatched - share.t_mapped) / 1e6,
				(vm__now_ns() - share.t_go) / 1e6);
		say("received");
		if (!o.net_moved) {
			if (tls) {
				migrate_tls_close(tls);
				free(tls);
				SSL_CTX_free(tls_ctx);
			}
			close(stream_fd);
			return serve(vm, NULL, t_run, o.kvm);
		}
		late_fd = stream_fd;
		if (tls && (late_fd = late_proxy_start(tls, tls_ctx, stream_fd, why, sizeof why)) < 0) {
			fprintf(stderr, "pvguest: %s: the guest runs on without its late frames\n", why);
			migrate_tls_close(tls);
			free(tls);
			SSL_CTX_free(tls_ctx);
			close(stream_fd);
			return serve(vm, NULL, t_run, o.kvm);
		}
		/* announce the guest's MAC on its new connection, take the late frames */
		late = migrate_late_recv_start(vm, late_fd, stderr, why, sizeof why);
		if (why[0])
			fprintf(stderr, "pvguest: %s\n", why);
		return serve(vm, late, t_run, o.kvm);
	}
	action = "load guest";
	rc = o.kvm ? vm__kvm_host_boot(vm, o.image, o.cmdline)
		   : o.linux_boot ? vm__load_linux(vm, o.image, NULL, o.cmdline)
				  : vm__load_multiboot(vm, o.image, o.cmdline);
	free(o.cmdline);
	if (rc < 0) {
		say("failed %s", vm->err);
		die(action, vm->err);
		vm__destroy(vm);
		return 1;
	}
	return serve(vm, NULL, 0, 0);
}
