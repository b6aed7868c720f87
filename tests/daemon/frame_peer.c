/* frame_peer.c: the far end of a guest's NIC socket for the daemon tests: numbered frames in flight to the guest's echo, each one must come back exactly once and intact; with --switch, a learning switch the guest's connection can move across */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lib/test_frames.h"

/*
 * Usage: frame_peer [--switch [--learn-delay MS]] [--window W] [--rate R]
 *                   [--count N] [--stop-file F] [--status F] [--drain SECONDS] PATH
 *
 * Listens on a SOCK_SEQPACKET unix socket at PATH (what `--net
 * socket:PATH` connects to) and accepts the guest's connection.  The
 * reference guest echoes every frame its DP83820 receives with the
 * addresses swapped (tests/guest/dp83820.c); frames sent before its driver
 * is up wait in the host's hold queue.  We keep W frames in flight, each
 * carrying a sequence number and a payload derived from it
 * (tests/lib/test_frames.h, as tests/migrate/test_migrate_net.c sends).  --rate caps the frames sent per
 * second (0: as fast as the echoes come back): the echo runs in the
 * guest's kernel, which a busy NIC would otherwise let starve the
 * workload on the vCPU taking its interrupts.
 *
 * The connection must survive the guest moving between processes
 * (pvmigrated hands every runner of a guest the same socket): a second
 * connection, or the first one ending, is a failure.  We stop sending on
 * SIGTERM/SIGINT, when the stop file exists, or after N frames; then wait
 * (at most --drain seconds) for what is in flight, and print
 *   sent S back B bad X dup D
 * Exit 0 only if every frame came back exactly once, intact.  --status
 * keeps that line (plus the longest silence so far) in a file, rewritten
 * a few times a second, for a test to watch progress.
 *
 * --switch: we are a learning switch with any number of ports, one per
 * connection to PATH (a guest moving to another host gets a new
 * connection there, opened by that host's daemon).  Frames to the guest's
 * MAC go to the port its MAC was last seen on as a source (its echoes,
 * or the announce a migration target sends, a RARP from that MAC), or to
 * every port while it is unknown.  When the MAC is learned on another
 * port, the old port is cut: we shut our side down (its owner reads EOF:
 * the port is gone), still count what it had sent us, and wait for its
 * owner to close it.  A second line then says
 *   switch: ports P cut C closed-after-cut K announces A
 * and a port's connection ending before it was cut is a failure only if
 * the guest's MAC was on it.  --learn-delay MS makes the switch slow to
 * learn, as one whose announce was lost or a bridge with a busy FDB: a
 * move of the MAC takes effect MS ms after it was first seen on the new
 * port, and until then frames keep going to the old one, so a migration
 * always has late frames to forward (a test's way to exercise that path
 * every time instead of by the luck of its timing).
 */
#define TICK_MS 100
#define STATUS_EVERY_NS 200000000ull

static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };
/* PLATFORM_NIC_MAC (backends/platform.h): the DP83820's address under both personalities */
static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x83, 0x82, 0x01 };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#define MAX_PORTS 64
enum port_state { PORT_OPEN, PORT_CUT, PORT_GONE };

struct peer {
	int lfd, fd;	/* fd: where frames to the guest go (switch: its learned port, -1 none) */
	int sw;		/* --switch */
	int port_fd[MAX_PORTS];
	enum port_state port_st[MAX_PORTS];
	uint64_t port_cut_at[MAX_PORTS];
	unsigned nports, cut, closed_after_cut, announces;
	uint64_t longest_close_ns; /* from a cut to its owner's close */
	uint64_t learn_delay_ns;   /* --learn-delay */
	int pending_fd;		   /* the guest's MAC seen there, not learned yet (-1 none) */
	uint64_t pending_since;
	uint32_t sent, back, bad, dup, extra;
	uint8_t *seen; /* one byte per frame sent */
	size_t seen_cap;
	uint64_t last_back, longest_gap, t_first_back;
	const char *status;
};

static void die(const char *what)
{
	fprintf(stderr, "frame_peer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void write_status(const struct peer *p, int final)
{
	char tmp[4200];
	FILE *f;

	if (!p->status)
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", p->status);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "sent %u back %u bad %u dup %u extra %u gap_ms %llu ports %u cut %u "
		"closed-after-cut %u announces %u%s\n", p->sent, p->back, p->bad, p->dup, p->extra,
		(unsigned long long)(p->longest_gap / 1000000u), p->nports, p->cut,
		p->closed_after_cut, p->announces, final ? " done" : "");
	fclose(f);
	rename(tmp, p->status);
}

static int send_one(struct peer *p)
{
	uint8_t f[TEST_FRAME_LEN];

	if (p->sent == p->seen_cap) {
		size_t cap = p->seen_cap ? p->seen_cap * 2 : 65536;
		uint8_t *s = realloc(p->seen, cap);

		if (!s)
			die("out of memory");
		memset(s + p->seen_cap, 0, cap - p->seen_cap);
		p->seen = s;
		p->seen_cap = cap;
	}
	test_frame_make(f, guest_mac, peer_mac, p->sent, TEST_FRAME_XOR);
	if (p->sw && p->fd < 0) {
		/* unknown destination: flooded to every open port */
		unsigned i;

		for (i = 0; i < p->nports; i++)
			if (p->port_st[i] == PORT_OPEN)
				send(p->port_fd[i], f, TEST_FRAME_LEN, MSG_NOSIGNAL);
	} else if (send(p->fd, f, TEST_FRAME_LEN, MSG_NOSIGNAL) != TEST_FRAME_LEN) {
		fprintf(stderr, "frame_peer: send: %s\n", strerror(errno));
		return -1;
	}
	p->sent++;
	return 0;
}

static int port_of(const struct peer *p, int fd)
{
	unsigned i;

	for (i = 0; i < p->nports; i++)
		if (p->port_fd[i] == fd)
			return (int)i;
	return -1;
}

/* The guest's MAC was seen as a source on fd's port: frames go there now,
 * and the port it was on before is gone. */
static void learn(struct peer *p, int fd)
{
	int old = p->fd >= 0 ? port_of(p, p->fd) : -1;

	if (p->fd == fd)
		return;
	if (old >= 0 && p->port_st[old] == PORT_OPEN) {
		shutdown(p->fd, SHUT_WR);
		p->port_st[old] = PORT_CUT;
		p->port_cut_at[old] = now_ns();
		p->cut++;
		printf("frame_peer: the guest's MAC moved from port %d to port %d: port %d cut\n",
		       old, port_of(p, fd), old);
		fflush(stdout);
	}
	p->fd = fd;
}

/* A frame from the guest's MAC on fd's port: learn it now, or after the
 * learn delay when the MAC was known on another port. */
static void seen_guest(struct peer *p, int fd)
{
	if (fd == p->fd || !p->learn_delay_ns || p->fd < 0) {
		p->pending_fd = -1;
		learn(p, fd);
		return;
	}
	if (p->pending_fd != fd) {
		p->pending_fd = fd;
		p->pending_since = now_ns();
	}
}

/* The learn delay of a pending move has passed: take it. */
static void learn_pending(struct peer *p, uint64_t t)
{
	if (p->pending_fd >= 0 && t - p->pending_since >= p->learn_delay_ns) {
		learn(p, p->pending_fd);
		p->pending_fd = -1;
	}
}

/* A port's owner closed it (switch). */
static void port_gone(struct peer *p, int fd)
{
	int i = port_of(p, fd);

	if (i < 0 || p->port_st[i] == PORT_GONE)
		return;
	if (p->port_st[i] == PORT_CUT) {
		uint64_t t = now_ns() - p->port_cut_at[i];

		p->closed_after_cut++;
		if (t > p->longest_close_ns)
			p->longest_close_ns = t;
	} else {
		if (fd == p->pending_fd)
			p->pending_fd = -1;
		printf("frame_peer: port %d closed by its owner%s\n", i,
		       fd == p->fd ? " while the guest's MAC was on it" : "");
		fflush(stdout);
		if (fd == p->fd)
			p->fd = -1;
	}
	p->port_st[i] = PORT_GONE;
	close(fd);
	p->port_fd[i] = -1;
}

/* Read what waits on fd; -1 when the connection ended. */
static int recv_all(struct peer *p, int fd)
{
	uint8_t f[2048];
	uint32_t seq;
	uint64_t t;
	ssize_t n;

	for (;;) {
		n = recv(fd, f, sizeof f, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n <= 0 && p->sw) {
			int was_guest = fd == p->fd;

			port_gone(p, fd);
			return was_guest ? -1 : 0;
		}
		if (n <= 0) {
			fprintf(stderr, "frame_peer: the guest's connection %s\n",
				n ? strerror(errno) : "was closed");
			return -1;
		}
		t = now_ns();
		if (p->sw && n >= 14 && !memcmp(f + 6, guest_mac, 6))
			seen_guest(p, fd);
		if (p->sw && n >= 14 && f[12] == 0x80 && f[13] == 0x35) {
			p->announces++; /* RARP: a target's announce, not an echo */
			continue;
		}
		if (test_frame_check_echo(f, (size_t)n, peer_mac, guest_mac, p->sent, TEST_FRAME_XOR,
					  &seq) < 0) {
			p->bad++;
			continue;
		}
		if (p->seen[seq]++) {
			p->dup++;
			continue;
		}
		if (!p->back)
			p->t_first_back = t;
		else if (t - p->last_back > p->longest_gap)
			p->longest_gap = t - p->last_back;
		p->last_back = t;
		p->back++;
	}
}

/* Another connection to PATH: whoever made it, it is not the guest's one
 * socket; for a switch, a new port. */
static void refuse_extra(struct peer *p)
{
	int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (p->sw) {
		if (p->nports == MAX_PORTS) {
			fprintf(stderr, "frame_peer: more than %d ports\n", MAX_PORTS);
			p->extra++;
			close(fd);
			return;
		}
		p->port_fd[p->nports] = fd;
		p->port_st[p->nports] = PORT_OPEN;
		printf("frame_peer: port %u connected\n", p->nports);
		fflush(stdout);
		p->nports++;
		return;
	}
	p->extra++;
	fprintf(stderr, "frame_peer: a second connection to the NIC socket (%u so far): a runner "
		"opened its own instead of sharing the guest's\n", p->extra);
	close(fd);
}

static int usage(void)
{
	fprintf(stderr, "usage: frame_peer [--switch [--learn-delay MS]] [--window W] [--rate R] "
		"[--count N] [--stop-file F] [--status F] [--drain SECONDS] PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *stop_file = NULL, *path = NULL;
	unsigned long window = 16, count = 0, drain_s = 20, rate = 0;
	struct peer p = { .lfd = -1, .fd = -1, .pending_fd = -1 };
	struct pollfd pfd[2 + MAX_PORTS];
	unsigned np, k;
	uint64_t t, t0, stop_at = 0, last_status = 0;
	int i, stopping = 0, gone = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--switch"))
			p.sw = 1;
		else if (!strcmp(argv[i], "--window") && i + 1 < argc)
			window = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--stop-file") && i + 1 < argc)
			stop_file = argv[++i];
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			p.status = argv[++i];
		else if (!strcmp(argv[i], "--learn-delay") && i + 1 < argc)
			p.learn_delay_ns = strtoull(argv[++i], NULL, 10) * 1000000ull;
		else if (!strcmp(argv[i], "--drain") && i + 1 < argc)
			drain_s = strtoul(argv[++i], NULL, 10);
		else if (argv[i][0] == '-' || path)
			return usage();
		else
			path = argv[i];
	}
	if (!path || !window || window > 256 || strlen(path) >= sizeof sa.sun_path)
		return usage();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	memcpy(sa.sun_path, path, strlen(path));
	unlink(path);
	p.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (p.lfd < 0 || bind(p.lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(p.lfd, 4) < 0)
		die(path);
	printf("frame_peer: listening on %s, window %lu\n", path, window);
	fflush(stdout);

	/* the guest's one connection (the daemon opens it when it boots the guest) */
	pfd[0] = (struct pollfd){ .fd = p.lfd, .events = POLLIN };
	while (p.fd < 0) {
		if (stop_signal || (stop_file && access(stop_file, F_OK) == 0)) {
			fprintf(stderr, "frame_peer: stopped before anyone connected\n");
			unlink(path);
			return 1;
		}
		if (poll(pfd, 1, TICK_MS) == 1) {
			p.fd = accept4(p.lfd, NULL, NULL, SOCK_CLOEXEC);
			if (p.fd < 0 && errno != EINTR)
				die("accept");
		}
	}
	printf("frame_peer: connected\n");
	fflush(stdout);
	if (p.sw) { /* port 0; the guest's MAC is learned from its first echo */
		p.port_fd[0] = p.fd;
		p.port_st[0] = PORT_OPEN;
		p.nports = 1;
		p.fd = -1;
	}

	t0 = now_ns();
	for (;;) {
		t = now_ns();
		if (!stopping && (stop_signal || (count && p.sent >= count) ||
				  (stop_file && access(stop_file, F_OK) == 0))) {
			stopping = 1;
			stop_at = t;
		}
		if (stopping && (p.back + p.bad + p.dup >= p.sent ||
				 t - stop_at > drain_s * 1000000000ull))
			break;
		while (!stopping && !gone && p.sent - p.back < window && (!count || p.sent < count) &&
		       (!rate || p.sent < (t - t0) / 1000000u * rate / 1000u))
			if (send_one(&p) < 0)
				gone = 1;
		if (gone)
			break;
		pfd[0] = (struct pollfd){ .fd = p.lfd, .events = POLLIN };
		np = 1;
		if (!p.sw)
			pfd[np++] = (struct pollfd){ .fd = p.fd, .events = POLLIN };
		for (k = 0; p.sw && k < p.nports; k++)
			if (p.port_st[k] != PORT_GONE)
				pfd[np++] = (struct pollfd){ .fd = p.port_fd[k], .events = POLLIN };
		/* with a rate, wake for the next frame's turn */
		if (poll(pfd, np, rate ? 1 + (int)(1000 / rate) : TICK_MS) < 0 && errno != EINTR)
			die("poll");
		if (pfd[0].revents & POLLIN)
			refuse_extra(&p);
		for (k = 1; k < np; k++)
			if (pfd[k].revents && recv_all(&p, pfd[k].fd) < 0)
				gone = 1;
		if (gone)
			break;
		learn_pending(&p, now_ns());
		if (t - last_status > STATUS_EVERY_NS) {
			write_status(&p, 0);
			last_status = t;
		}
	}
	write_status(&p, 1);
	printf("sent %u back %u bad %u dup %u\n", p.sent, p.back, p.bad, p.dup);
	if (p.sw)
		printf("switch: ports %u cut %u closed-after-cut %u announces %u; longest from a cut "
		       "to its owner's close %.1f ms\n", p.nports, p.cut, p.closed_after_cut,
		       p.announces, p.longest_close_ns / 1e6);
	printf("frame_peer: longest silence between echoes %.1f ms, %u extra connections, "
	       "%.1f s of echoes\n", p.longest_gap / 1e6, p.extra,
	       p.back ? (p.last_back - p.t_first_back) / 1e9 : 0.0);
	unlink(path);
	return p.back == p.sent && !p.bad && !p.dup && !p.extra ? 0 : 1;
}
