/* guest_proc.c: one child process per guest (pvguest, pvhost for other personalities): start, console ring, runner messages, destroy, reap; the guest's NIC backend its runners share; a second process during an in-place move */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/if_tun.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "daemon.h"
#include "daemon_link.h"
#include "daemon_mig_local.h"
#include "guest_msg.h"

#define KILL_AFTER_MS 3000
/* The guest's NIC backend in a runner: `--net fd:5` (guest_msg.h has 3 and 4). */
#define GUEST_NET_FD (GUEST_STREAM_FD + 1)
#define GUEST_NET_SPEC "fd:5"
_Static_assert(GUEST_NET_FD == 5, "GUEST_NET_SPEC names the NIC's fd");

static const char *const state_names[] = {
	"starting", "running", "migrating", "incoming", "destroying", "exited", "migrated",
};

const char *guest_state_name(enum guest_state s)
{
	return state_names[s];
}

struct guest *guest_find(struct daemon *d, const char *name)
{
	struct guest *g;

	for (g = d->guests; g; g = g->next)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

const char *guest_pick_name(struct daemon *d, const char *want, char *buf, size_t len)
{
	if (want && want[0]) {
		if (guest_find(d, want))
			return NULL;
		snprintf(buf, len, "%s", want);
		return buf;
	}
	do
		snprintf(buf, len, "dom%u", ++d->next_dom);
	while (guest_find(d, buf));
	return buf;
}

void guest_fill_info(const struct guest *g, Pvmigrate__Ctl__GuestInfo *gi)
{
	pvmigrate__ctl__guest_info__init(gi);
	gi->name = (char *)g->name;
	gi->has_pid = gi->has_vcpus = gi->has_memory = gi->has_uptime_ms = 1;
	gi->pid = g->pid > 0 ? (uint32_t)g->pid : 0;
	gi->personality = (char *)g->personality;
	gi->state = (char *)guest_state_name(g->state);
	gi->vcpus = g->vcpus;
	gi->memory = g->memory;
	gi->uptime_ms = (now_ns() - g->t_start) / 1000000u;
	if (g->state == G_EXITED) {
		gi->has_exit_status = 1;
		gi->exit_status = g->status;
	}
	gi->image = (char *)g->image;
	gi->runner = g->runner == RUNNER_PVGUEST ? "pvguest" : "pvhost";
	gi->has_console_bytes = 1;
	gi->console_bytes = g->ring_total;
	gi->detail = (char *)g->detail;
	gi->net = (char *)g->net;
}

/* ---- the guest's NIC backend, opened by the daemon ----
 *
 * A guest booted with --net gets its backend from us, not from its runner:
 * we connect the socket (or open the tap) once and hand each runner a copy
 * as fd:N.  So the runners of an in-place move share ONE connection: the
 * source stops reading it at the freeze, the receiver starts after its OK,
 * and frames sent meanwhile wait in the kernel's buffer (none lost, none
 * duplicated); a tap, which cannot be opened twice, moves too.  Our copy
 * lives as long as the guest; a table here rather than a member of struct
 * guest keeps the NIC's bookkeeping in this file.
 */
struct net_hold {
	struct net_hold *next;
	const struct guest *g;
	int fd;
};

static struct net_hold *net_holds;

static int net_fd_of(const struct guest *g)
{
	struct net_hold *h;

	for (h = net_holds; h; h = h->next)
		if (h->g == g)
			return h->fd;
	return -1;
}

/* The guest's NIC is done (it ended, or is freed): close our copy. */
static void net_release(const struct guest *g)
{
	struct net_hold **pp, *h;

	for (pp = &net_holds; (h = *pp); pp = &h->next)
		if (h->g == g) {
			*pp = h->next;
			close(h->fd);
			free(h);
			return;
		}
}

/* socket:PATH: SEQPACKET first, DATAGRAM if the peer's socket is one (as
 * backends/net_backend.c does).  Non-blocking only while connecting: a
 * peer whose backlog is full must not stall the daemon. */
static int net_connect(const char *path, int type, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sa_family_t fam = AF_UNIX;
	int fd, e;

	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	/* datagram: autobind, so that the peer has an address to answer */
	if ((type == SOCK_DGRAM && bind(fd, (struct sockaddr *)&fam, sizeof fam) < 0) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		e = errno;
		snprintf(why, whylen, "socket %s: %s", path,
			 e == EAGAIN ? "its listener accepts no more connections" : strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	/* the backend's send may block briefly, as a wire pushes back */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

static int net_open(const char *spec, char *why, size_t whylen)
{
	struct sockaddr_un sa;
	struct ifreq ifr;
	int fd;

	if (!strncmp(spec, "socket:", 7)) {
		spec += 7;
		if (!*spec || strlen(spec) >= sizeof sa.sun_path) {
			snprintf(why, whylen, "socket: path must be 1 .. %zu bytes",
				 sizeof sa.sun_path - 1);
			return -1;
		}
		fd = net_connect(spec, SOCK_SEQPACKET, why, whylen);
		if (fd < 0 && errno == EPROTOTYPE) /* the peer's socket is a datagram one */
			fd = net_connect(spec, SOCK_DGRAM, why, whylen);
		return fd;
	}
	if (!strncmp(spec, "tap:", 4)) {
		spec += 4;
		if (!*spec || strlen(spec) >= IFNAMSIZ) {
			snprintf(why, whylen, "tap: interface name must be 1 .. %d bytes",
				 IFNAMSIZ - 1);
			return -1;
		}
		/* non-blocking for good: the runners' receive path never waits */
		fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			snprintf(why, whylen, "tap: /dev/net/tun: %s", strerror(errno));
			return -1;
		}
		memset(&ifr, 0, sizeof ifr);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		memcpy(ifr.ifr_name, spec, strlen(spec));
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			snprintf(why, whylen, "tap %s: TUNSETIFF: %s", spec, strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}
	snprintf(why, whylen, "'%s': want socket:PATH or tap:IFNAME", spec);
	return -1;
}

/* Open g's NIC backend and keep it for g's lifetime; -1 with why. */
static int net_hold_open(const struct guest *g, const char *spec, char *why, size_t whylen)
{
	struct net_hold *h = calloc(1, sizeof *h);

	if (!h) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	h->fd = net_open(spec, why, whylen);
	if (h->fd < 0) {
		free(h);
		return -1;
	}
	h->g = g;
	h->next = net_holds;
	net_holds = h;
	return 0;
}

/* ---- lifecycle ---- */

static void guest_free(struct guest *g)
{
	struct daemon *d = g->d;
	struct guest **pp;
	struct conn *c;

	/* an in-place move's receiver is not listed */
	for (pp = &d->guests; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			d->nr_guests--;
			break;
		}
	while ((c = g->waiters)) {
		conn_error(c, c->wait_id, CTL_ERR_FAILED, "%s is gone", g->name);
		conn_wait_done(c);
	}
	net_release(g);
	if (g->out_ev)
		event_free(g->out_ev);
	if (g->out_fd >= 0)
		close(g->out_fd);
	if (g->cmd_ev)
		event_free(g->cmd_ev);
	if (g->cmd_fd >= 0)
		close(g->cmd_fd);
	if (g->timer)
		event_free(g->timer);
	free(g->ring);
	free(g);
}

static struct guest *guest_new(struct daemon *d, const char *name, const char *pers,
			       const char *image, unsigned vcpus, uint64_t memory,
			       enum guest_runner runner, int listed)
{
	struct guest *g = calloc(1, sizeof *g), **pp;

	if (!g || !(g->ring = malloc(d->conf.console_buffer))) {
		free(g);
		return NULL;
	}
	g->d = d;
	g->ring_cap = d->conf.console_buffer;
	snprintf(g->name, sizeof g->name, "%s", name);
	snprintf(g->personality, sizeof g->personality, "%s", pers);
	snprintf(g->image, sizeof g->image, "%s", image ? image : "");
	g->vcpus = vcpus;
	g->memory = memory;
	g->runner = runner;
	g->out_fd = g->cmd_fd = -1;
	g->t_start = now_ns();
	if (!listed)
		return g;
	for (pp = &d->guests; *pp; pp = &(*pp)->next)
		;
	*pp = g;
	d->nr_guests++;
	return g;
}

/* Move fd to at least 10, so that the dup2 onto 0..4 below cannot clobber it. */
static int high_fd(int fd)
{
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD, 10);
}

static void on_cmd(evutil_socket_t fd, short what, void *arg);

/* fork + exec argv with console, command socket, stream fd and NIC backend wired:
 * 1 and 2 the console pipe, 3 the command socket (pvguest), 4 the stream,
 * 5 the NIC; the child keeps nothing else. */
static int spawn(struct guest *g, char *const argv[], int stream_fd, int net_fd, char *why,
		 size_t whylen)
{
	int out[2], cmd[2] = { -1, -1 }, devnull;
	/* A receiver that has not run its guest must not outlive us: nobody
	 * could tell the source then whether it runs (pvmigrated(8), "The
	 * commit"); SIGKILL, since it does not take SIGTERM while receiving. */
	int death = g->state == G_INCOMING ? SIGKILL : SIGTERM;
	sigset_t all;
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (g->runner == RUNNER_PVGUEST &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cmd) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		close(out[0]);
		close(out[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(out[0]);
		close(out[1]);
		if (cmd[0] >= 0) {
			close(cmd[0]);
			close(cmd[1]);
		}
		return -1;
	}
	if (pid == 0) {
		int o = high_fd(out[1]), c = high_fd(cmd[1]), s = high_fd(stream_fd);
		int nf = high_fd(net_fd);

		/* Its own session (a ^C for the daemon's terminal is not for the
		 * guests), but it dies with the daemon. */
		setsid();
		prctl(PR_SET_PDEATHSIG, death);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || o < 0 || dup2(devnull, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0 ||
		    (c >= 0 && dup2(c, GUEST_CMD_FD) < 0) ||
		    (s >= 0 && dup2(s, GUEST_STREAM_FD) < 0) ||
		    (nf >= 0 && dup2(nf, GUEST_NET_FD) < 0) ||
		    (net_fd >= 0 && nf < 0))
			_exit(127);
		/* dup2 cleared close-on-exec on 3..5 (the daemon's copies keep theirs) */
		if (c < 0)
			close(GUEST_CMD_FD);
		if (s < 0)
			close(GUEST_STREAM_FD);
		if (nf < 0)
			close(GUEST_NET_FD);
		close_range(GUEST_NET_FD + 1, ~0u, 0);
		execv(argv[0], argv);
		dprintf(2, "pvmigrated: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	if (cmd[1] >= 0)
		close(cmd[1]);
	g->pid = pid;
	g->out_fd = out[0];
	fcntl(g->out_fd, F_SETFL, O_NONBLOCK);
	g->out_ev = event_new(g->d->base, g->out_fd, EV_READ | EV_PERSIST, guest_on_output, g);
	event_add(g->out_ev, NULL);
	if (cmd[0] >= 0) {
		g->cmd_fd = cmd[0];
		fcntl(g->cmd_fd, F_SETFL, O_NONBLOCK);
		g->cmd_ev = event_new(g->d->base, g->cmd_fd, EV_READ | EV_PERSIST, on_cmd, g);
		event_add(g->cmd_ev, NULL);
	}
	return 0;
}

/* The boot waiters learn that the guest runs. */
static void booted(struct guest *g)
{
	struct conn *c, *next;

	if (g->state == G_STARTING)
		g->state = G_RUNNING;
	for (c = g->waiters; c; c = next) {
		next = c->wait_next;
		if (c->wait == WAIT_BOOT) {
			conn_guest(c, c->wait_id, g, 0);
			conn_wait_done(c);
		}
	}
}

static void on_boot_timer(evutil_socket_t fd, short what, void *arg)
{
	struct guest *g = arg;

	if (g->state == G_STARTING)
		booted(g);
}

static void on_cmd(evutil_socket_t fd, short what, void *arg)
{
	struct guest *g = arg;
	char buf[GUEST_MSG_MAX + 1], *rest;
	ssize_t n;

	for (;;) {
		n = recv(g->cmd_fd, buf, GUEST_MSG_MAX, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			event_free(g->cmd_ev);
			g->cmd_ev = NULL;
			close(g->cmd_fd);
			g->cmd_fd = -1;
			return;
		}
		buf[n] = '\0';
		if (strlen(buf) != (size_t)n) /* a NUL inside: not a message of ours */
			continue;
		rest = strchr(buf, ' ');
		if (rest)
			*rest++ = '\0';
		else
			rest = buf + n;
		if (!strcmp(buf, "committed")) {
			/* a receiver took GO and waits for our word to run: across
			 * daemons the link decides (daemon_mig_in.c); in place the
			 * source's end is its own socket, nothing to weigh */
			if (g->mig_in)
				mig_in_event(g, buf, rest);
			else if (guest_cmd(g, "run") < 0)
				dlog("%s: cannot tell the receiver to run", g->name);
		} else if (mig_local_of(g)) {
			mig_local_event(g, buf, rest);
		} else if (!strcmp(buf, "sent")) {
			/* progress of a send; across daemons the relay counts the
			 * bytes, unless the stream goes direct (daemon_mig_out.c) */
			if (g->mig)
				mig_out_event(g, buf, rest);
		} else if (!strcmp(buf, "ready")) {
			if (g->state == G_INCOMING)
				mig_in_event(g, buf, rest);
			else
				booted(g);
		} else if (!strcmp(buf, "failed")) {
			snprintf(g->detail, sizeof g->detail, "%s", rest);
		} else if (!strcmp(buf, "log") || !strcmp(buf, "estimate") || !strcmp(buf, "migrated") ||
			   !strcmp(buf, "migrate-failed") || !strcmp(buf, "migrate-unknown")) {
			mig_out_event(g, buf, rest);
		} else if (!strcmp(buf, "received") || !strcmp(buf, "receive-failed") ||
			   !strcmp(buf, "resumed")) {
			mig_in_event(g, buf, rest);
		} else {
			dlog("%s: pvguest said something unknown ('%.20s'), ignored", g->name, buf);
		}
	}
}

static const char *pers_program(struct daemon *d, const char *pers, enum guest_runner *runner)
{
	/* native and kvm: our own runner, which the daemon can also migrate
	 * (in place between the two, too); any other personality would go to
	 * pvhost, whose errors we report. */
	*runner = strcmp(pers, "native") && strcmp(pers, "kvm") ? RUNNER_PVHOST : RUNNER_PVGUEST;
	return *runner == RUNNER_PVGUEST ? d->conf.pvguest : d->conf.pvhost;
}

void guest_boot(struct daemon *d, struct conn *c, uint64_t id, const Pvmigrate__Ctl__Boot *b)
{
	char namebuf[CTL_NAME_MAX + 1], avail[128], why[512], vcpus[16], mem[32];
	char *argv[CTL_MAX_ARGS + 16];
	enum guest_runner runner;
	const char *name, *prog;
	struct guest *g;
	unsigned n = 0;
	size_t i;

	daemon_available_text(d, avail, sizeof avail);
	if (!ctl_personality_known(b->personality)) {
		conn_error(c, id, CTL_ERR_UNAVAILABLE,
			   "hypervisor '%s' is not known (available on this host: %s)",
			   b->personality, avail);
		return;
	}
	if (!daemon_available(d, b->personality)) {
		conn_error(c, id, CTL_ERR_UNAVAILABLE,
			   "hypervisor '%s' is not available on this host (available: %s)",
			   b->personality, avail);
		return;
	}
	if (access(b->image, R_OK) < 0) {
		conn_error(c, id, CTL_ERR_INVALID, "image %s: %s", b->image, strerror(errno));
		return;
	}
	if (d->nr_guests >= d->conf.max_guests) {
		conn_error(c, id, CTL_ERR_BUSY, "already %u guests (max_guests)", d->nr_guests);
		return;
	}
	name = guest_pick_name(d, b->name, namebuf, sizeof namebuf);
	if (!name) {
		conn_error(c, id, CTL_ERR_INVALID, "a guest named %s exists already", b->name);
		return;
	}
	prog = pers_program(d, b->personality, &runner);
	argv[n++] = (char *)prog;
	argv[n++] = "run";
	argv[n++] = "--personality";
	argv[n++] = b->personality;
	snprintf(vcpus, sizeof vcpus, "%u", b->vcpus);
	snprintf(mem, sizeof mem, "%llu", (unsigned long long)b->memory);
	argv[n++] = "--vcpus";
	argv[n++] = vcpus;
	argv[n++] = "--memory";
	argv[n++] = mem;
	if (b->net && b->net[0]) { /* the daemon's connection, opened below */
		argv[n++] = "--net";
		argv[n++] = GUEST_NET_SPEC;
	}
	argv[n++] = b->image;
	argv[n++] = "--";
	for (i = 0; i < b->n_args; i++)
		argv[n++] = b->args[i];
	argv[n] = NULL;

	g = guest_new(d, name, b->personality, b->image, b->vcpus, b->memory, runner, 1);
	if (!g) {
		conn_error(c, id, CTL_ERR_FAILED, "out of memory");
		return;
	}
	snprintf(g->net, sizeof g->net, "%s", b->net ? b->net : "");
	if (g->net[0] && net_hold_open(g, g->net, why, sizeof why) < 0) {
		guest_free(g);
		conn_error(c, id, CTL_ERR_FAILED, "%s: net %s: %s", name, b->net, why);
		return;
	}
	if (spawn(g, argv, -1, net_fd_of(g), why, sizeof why) < 0) {
		guest_free(g);
		conn_error(c, id, CTL_ERR_FAILED, "%s: cannot start %s: %s", name, prog, why);
		return;
	}
	dlog("%s: started %s (pid %d), %s, %u vCPUs, %llu MiB, %s", name, prog, (int)g->pid,
	     b->personality, b->vcpus, (unsigned long long)(b->memory >> 20), b->image);
	conn_wait_on(c, g, WAIT_BOOT, id);
	if (runner == RUNNER_PVHOST) {
		/* pvhost says nothing when it runs: alive after boot_wait_ms is booted */
		struct timeval tv = { d->conf.boot_wait_ms / 1000, (d->conf.boot_wait_ms % 1000) * 1000 };

		g->timer = evtimer_new(d->base, on_boot_timer, g);
		evtimer_add(g->timer, &tv);
	}
}

struct guest *guest_spawn_receiver(struct daemon *d, const char *name, const char *pers,
				   unsigned vcpus, uint64_t memory, const char *image,
				   const char *net, int stream_fd, int direct, char *why,
				   size_t whylen)
{
	char v[16], m[32], nwhy[200];
	/* a NIC: the connection opened below, new on this host: the receiver
	 * announces the guest's MAC on it and takes the source's late frames.
	 * direct: no stream fd; the source's own connection comes later
	 * ("direct", guest_msg.h) and the receiver talks TLS on it itself */
	char *argv[20] = { d->conf.pvguest, "receive", "--personality", (char *)pers, "--vcpus", v,
			   "--memory", m };
	unsigned n = 8;
	struct guest *g;

	if (d->nr_guests >= d->conf.max_guests) {
		snprintf(why, whylen, "already %u guests (max_guests)", d->nr_guests);
		return NULL;
	}
	snprintf(v, sizeof v, "%u", vcpus);
	snprintf(m, sizeof m, "%llu", (unsigned long long)memory);
	g = guest_new(d, name, pers, image, vcpus, memory, RUNNER_PVGUEST, 1);
	if (!g) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	g->state = G_INCOMING;
	if (net[0] && net_hold_open(g, net, nwhy, sizeof nwhy) < 0) {
		snprintf(why, whylen, "its NIC (%s) cannot be connected here: %s", net, nwhy);
		guest_free(g);
		return NULL;
	}
	if (net[0]) {
		argv[n++] = "--net";
		argv[n++] = GUEST_NET_SPEC;
		argv[n++] = "--net-moved";
	}
	if (direct) {
		argv[n++] = "--direct";
		argv[n++] = "--tls-cert";
		argv[n++] = d->conf.tls_cert;
		argv[n++] = "--tls-key";
		argv[n++] = d->conf.tls_key;
		argv[n++] = "--tls-ca";
		argv[n++] = d->conf.tls_ca;
	}
	argv[n] = NULL;
	snprintf(g->net, sizeof g->net, "%s", net);
	if (spawn(g, argv, stream_fd, net_fd_of(g), why, whylen) < 0) {
		guest_free(g);
		return NULL;
	}
	dlog("%s: receiving into pvguest (pid %d), %u vCPUs, %llu MiB%s", name, (int)g->pid, vcpus,
	     (unsigned long long)(memory >> 20), direct ? ", data path direct" : "");
	return g;
}

/* ---- the second process of an in-place move (daemon_mig_local.c) ---- */

struct guest *guest_spawn_local_receiver(struct guest *g, const char *pers, const char *runtime,
					 int stream_fd, char *why, size_t whylen)
{
	struct daemon *d = g->d;
	char v[16], m[32], *argv[16];
	struct guest *in;
	unsigned n = 0;

	snprintf(v, sizeof v, "%u", g->vcpus);
	snprintf(m, sizeof m, "%llu", (unsigned long long)g->memory);
	argv[n++] = d->conf.pvguest;
	argv[n++] = "receive";
	argv[n++] = "--personality";
	argv[n++] = (char *)pers;
	if (runtime && runtime[0]) {
		argv[n++] = "--runtime";
		argv[n++] = (char *)runtime;
	}
	argv[n++] = "--vcpus";
	argv[n++] = v;
	argv[n++] = "--memory";
	argv[n++] = m;
	if (net_fd_of(g) >= 0) {
		/* the guest's own connection: frames the source leaves unread at
		 * the freeze wait in it for the receiver (the stream carries the
		 * NIC's state and the frames the source held) */
		argv[n++] = "--net";
		argv[n++] = GUEST_NET_SPEC;
	}
	argv[n] = NULL;
	in = guest_new(d, g->name, pers, g->image, g->vcpus, g->memory, RUNNER_PVGUEST, 0);
	if (!in) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(in->net, sizeof in->net, "%s", g->net);
	in->state = G_INCOMING;
	if (spawn(in, argv, stream_fd, net_fd_of(g), why, whylen) < 0) {
		guest_free(in);
		return NULL;
	}
	return in;
}

void guest_free_unlisted(struct guest *in)
{
	guest_free(in);
}

void guest_drain_cmd(struct guest *g)
{
	if (g->cmd_fd >= 0)
		on_cmd(g->cmd_fd, EV_READ, g);
}

/* Close g's pipes to its runner (what is in them read first); forget its pid. */
static void drop_process(struct guest *g)
{
	guest_drain_output(g);
	if (g->out_ev)
		event_free(g->out_ev);
	if (g->out_fd >= 0)
		close(g->out_fd);
	if (g->cmd_ev)
		event_free(g->cmd_ev);
	if (g->cmd_fd >= 0)
		close(g->cmd_fd);
	g->out_ev = g->cmd_ev = NULL;
	g->out_fd = g->cmd_fd = -1;
	g->pid = 0;
}

void guest_take_process(struct guest *g, struct guest *in)
{
	size_t n = in->ring_total < in->ring_cap ? (size_t)in->ring_total : in->ring_cap;
	uint8_t *buf;

	/* the old runner is on its way out (it confirmed): nobody waits for it */
	drop_process(g);
	guest_drain_output(in);
	buf = malloc(n ? n : 1);
	if (buf) {
		n = guest_console_tail(in, buf, n);
		guest_console_put(g, buf, n);
		free(buf);
	}
	g->pid = in->pid;
	if (in->pid <= 0)
		g->status = in->status;
	g->out_fd = in->out_fd;
	g->cmd_fd = in->cmd_fd;
	if (in->out_ev)
		event_free(in->out_ev);
	if (in->cmd_ev)
		event_free(in->cmd_ev);
	in->out_ev = in->cmd_ev = NULL;
	in->out_fd = in->cmd_fd = -1;
	in->pid = 0;
	if (g->out_fd >= 0) {
		g->out_ev = event_new(g->d->base, g->out_fd, EV_READ | EV_PERSIST, guest_on_output, g);
		event_add(g->out_ev, NULL);
	}
	if (g->cmd_fd >= 0) {
		g->cmd_ev = event_new(g->d->base, g->cmd_fd, EV_READ | EV_PERSIST, on_cmd, g);
		event_add(g->cmd_ev, NULL);
	}
}

int guest_cmd(struct guest *g, const char *verb)
{
	if (g->cmd_fd < 0 || send(g->cmd_fd, verb, strlen(verb), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -1;
	return 0;
}

/* A command with one fd (SCM_RIGHTS). */
static int cmd_with_fd(struct guest *g, const char *verb, int fd, char *why, size_t whylen)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (char *)verb, strlen(verb) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = sizeof u.b };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	if (g->cmd_fd < 0) {
		snprintf(why, whylen, "%s: its runner does not listen any more", g->name);
		return -1;
	}
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	if (sendmsg(g->cmd_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		snprintf(why, whylen, "%s: telling its runner: %s", g->name, strerror(errno));
		return -1;
	}
	return 0;
}

int guest_cmd_migrate(struct guest *g, int fd, char *why, size_t whylen)
{
	return cmd_with_fd(g, "migrate", fd, why, whylen);
}

int guest_cmd_migrate_late(struct guest *g, int fd, char *why, size_t whylen)
{
	return cmd_with_fd(g, "migrate-late", fd, why, whylen);
}

int guest_cmd_direct(struct guest *g, const char *msg, int fd, char *why, size_t whylen)
{
	return cmd_with_fd(g, msg, fd, why, whylen);
}

int guest_cmd_migrate_local(struct guest *g, int fd, char *why, size_t whylen)
{
	return cmd_with_fd(g, "migrate-local", fd, why, whylen);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct guest *g = arg;

	if (g->pid > 0) {
		dlog("%s: still there %u ms after SIGTERM, sending SIGKILL", g->name, KILL_AFTER_MS);
		kill(g->pid, SIGKILL);
	}
}

void guest_destroy(struct guest *g, struct conn *c, uint64_t id)
{
	struct timeval tv = { KILL_AFTER_MS / 1000, (KILL_AFTER_MS % 1000) * 1000 };

	if (g->state == G_MIGRATING || g->state == G_INCOMING || g->state == G_MIGRATED) {
		conn_error(c, id, CTL_ERR_BUSY, "%s is %s; try again when that is over",
			   g->name, guest_state_name(g->state));
		return;
	}
	if (g->state == G_EXITED) {
		dlog("%s: removed (had exited with status %d)", g->name, g->status);
		conn_ok(c, id, "%s removed (it had exited with status %d)", g->name, g->status);
		guest_free(g);
		return;
	}
	conn_wait_on(c, g, WAIT_DESTROY, id);
	if (g->state == G_DESTROYING)
		return;
	g->state = G_DESTROYING;
	dlog("%s: destroying (pid %d)", g->name, (int)g->pid);
	kill(g->pid, SIGTERM);
	if (g->timer)
		event_free(g->timer);
	g->timer = evtimer_new(g->d->base, on_kill_timer, g);
	evtimer_add(g->timer, &tv);
}

static void exited(struct guest *g, int wstatus)
{
	guest_drain_output(g);
	g->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
	dlog("%s: %s (pid %d) %s %d", g->name, g->runner == RUNNER_PVGUEST ? "pvguest" : "pvhost",
	     (int)g->pid, g->status >= 0 ? "exited with status" : "killed by signal",
	     g->status >= 0 ? g->status : -g->status);
	g->pid = 0;
	/* one side of an in-place move: its end may not be the guest's */
	if (mig_local_exited(g))
		return;
	guest_ended(g);
}

void guest_ended(struct guest *g)
{
	enum guest_state was = g->state;
	struct conn *c, *next;
	char why[256];

	g->state = G_EXITED;
	net_release(g); /* no runner of g will read its NIC again */
	if (g->timer) {
		event_free(g->timer);
		g->timer = NULL;
	}
	if (g->mig)
		mig_out_gone(g);
	if (g->mig_in)
		mig_in_gone(g);
	if (!g->detail[0] && g->status != 0)
		guest_last_line(g, g->detail, sizeof g->detail);
	for (c = g->waiters; c; c = next) {
		next = c->wait_next;
		switch (c->wait) {
		case WAIT_BOOT:
			snprintf(why, sizeof why, "%s", g->detail);
			conn_error(c, c->wait_id, CTL_ERR_FAILED, "%s: %s exited with status %d: %s",
				   g->name, g->runner == RUNNER_PVGUEST ? "pvguest" : "pvhost",
				   g->status, why[0] ? why : "no message");
			conn_wait_done(c);
			break;
		case WAIT_CONSOLE:
			guest_console_push(g, c);
			if (g->migrated_away)
				conn_ok(c, c->wait_id, "%s %s", g->name, g->detail);
			else
				conn_ok(c, c->wait_id, "%s exited with status %d", g->name, g->status);
			conn_wait_done(c);
			break;
		case WAIT_DESTROY:
			conn_ok(c, c->wait_id, "%s destroyed", g->name);
			conn_wait_done(c);
			break;
		default:
			break;
		}
	}
	/* Destroyed, moved away, never arrived, or never booted (the boot
	 * request's error said why): nothing left to report. */
	if (was == G_DESTROYING || g->migrated_away || was == G_INCOMING || was == G_STARTING)
		guest_free(g);
}

void guest_reap(struct daemon *d)
{
	struct guest *g;
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (g = d->guests; g; g = g->next)
			if (g->pid == pid)
				break;
		if (!g)
			g = mig_local_pid_owner(d, pid);
		if (!g) {
			mig_local_reaped(pid, st); /* a runner that had handed its guest on */
			continue;
		}
		/* its last words ("migrated", "received") before its end: a
		 * SIGCHLD can overtake what waits in the command socket */
		guest_drain_cmd(g);
		exited(g, st);
	}
}

void guest_kill_all(struct daemon *d)
{
	struct guest *g;

	for (g = d->guests; g; g = g->next)
		if (g->pid > 0)
			kill(g->pid, SIGTERM);
	mig_local_shutdown();
	while (d->guests)
		guest_free(d->guests);
}
