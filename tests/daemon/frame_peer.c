/* frame_peer.c: the far end of a guest's NIC socket for the daemon tests: numbered frames in flight to the guest's echo, each one must come back exactly once and intact */
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

/*
 * Usage: frame_peer [--window W] [--rate R] [--count N] [--stop-file F]
 *                   [--status F] [--drain SECONDS] PATH
 *
 * Listens on a SOCK_SEQPACKET unix socket at PATH (what `--net
 * socket:PATH` connects to) and accepts the guest's connection.  The
 * reference guest echoes every frame its DP83820 receives with the
 * addresses swapped (tests/guest/dp83820.c); frames sent before its driver
 * is up wait in the host's hold queue.  We keep W frames in flight, each
 * carrying a sequence number and a payload derived from it (the format of
 * tests/migrate/test_migrate_net.c).  --rate caps the frames sent per
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
 */
#define LEN 60
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

/* Frame `seq` as we send it, or (echo) as the guest must return it. */
static void make_frame(uint8_t *f, uint32_t seq, int echo)
{
	unsigned i;

	memcpy(f, echo ? peer_mac : guest_mac, 6);
	memcpy(f + 6, echo ? guest_mac : peer_mac, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	memcpy(f + 14, &seq, 4);
	for (i = 18; i < LEN; i++)
		f[i] = (uint8_t)(seq ^ i * 13u);
}

struct peer {
	int lfd, fd;
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
	fprintf(f, "sent %u back %u bad %u dup %u extra %u gap_ms %llu%s\n", p->sent, p->back,
		p->bad, p->dup, p->extra, (unsigned long long)(p->longest_gap / 1000000u),
		final ? " done" : "");
	fclose(f);
	rename(tmp, p->status);
}

static int send_one(struct peer *p)
{
	uint8_t f[LEN];

	if (p->sent == p->seen_cap) {
		size_t cap = p->seen_cap ? p->seen_cap * 2 : 65536;
		uint8_t *s = realloc(p->seen, cap);

		if (!s)
			die("out of memory");
		memset(s + p->seen_cap, 0, cap - p->seen_cap);
		p->seen = s;
		p->seen_cap = cap;
	}
	make_frame(f, p->sent, 0);
	if (send(p->fd, f, LEN, MSG_NOSIGNAL) != LEN) {
		fprintf(stderr, "frame_peer: send: %s\n", strerror(errno));
		return -1;
	}
	p->sent++;
	return 0;
}

/* Read what waits; -1 when the connection ended. */
static int recv_all(struct peer *p)
{
	uint8_t f[2048], want[LEN];
	uint32_t seq;
	uint64_t t;
	ssize_t n;

	for (;;) {
		n = recv(p->fd, f, sizeof f, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n <= 0) {
			fprintf(stderr, "frame_peer: the guest's connection %s\n",
				n ? strerror(errno) : "was closed");
			return -1;
		}
		t = now_ns();
		memcpy(&seq, f + 14, 4);
		if (n == LEN && seq < p->sent)
			make_frame(want, seq, 1);
		if (n != LEN || seq >= p->sent || memcmp(f, want, LEN)) {
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

/* Another connection to PATH: whoever made it, it is not the guest's one socket. */
static void refuse_extra(struct peer *p)
{
	int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	p->extra++;
	fprintf(stderr, "frame_peer: a second connection to the NIC socket (%u so far): a runner "
		"opened its own instead of sharing the guest's\n", p->extra);
	close(fd);
}

static int usage(void)
{
	fprintf(stderr, "usage: frame_peer [--window W] [--rate R] [--count N] [--stop-file F] "
		"[--status F] [--drain SECONDS] PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *stop_file = NULL, *path = NULL;
	unsigned long window = 16, count = 0, drain_s = 20, rate = 0;
	struct peer p = { .lfd = -1, .fd = -1 };
	struct pollfd pfd[2];
	uint64_t t, t0, stop_at = 0, last_status = 0;
	int i, stopping = 0, gone = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--window") && i + 1 < argc)
			window = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--stop-file") && i + 1 < argc)
			stop_file = argv[++i];
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			p.status = argv[++i];
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

	pfd[0] = (struct pollfd){ .fd = p.fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = p.lfd, .events = POLLIN };
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
		/* with a rate, wake for the next frame's turn */
		if (poll(pfd, 2, rate ? 1 + (int)(1000 / rate) : TICK_MS) < 0 && errno != EINTR)
			die("poll");
		if (pfd[1].revents & POLLIN)
			refuse_extra(&p);
		if (pfd[0].revents && recv_all(&p) < 0)
			break;
		if (t - last_status > STATUS_EVERY_NS) {
			write_status(&p, 0);
			last_status = t;
		}
	}
	write_status(&p, 1);
	printf("sent %u back %u bad %u dup %u\n", p.sent, p.back, p.bad, p.dup);
	printf("frame_peer: longest silence between echoes %.1f ms, %u extra connections, "
	       "%.1f s of echoes\n", p.longest_gap / 1e6, p.extra,
	       p.back ? (p.last_back - p.t_first_back) / 1e9 : 0.0);
	unlink(path);
	return p.back == p.sent && !p.bad && !p.dup && !p.extra ? 0 : 1;
}
