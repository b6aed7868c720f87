/* net_echo.c: the DP83820 echo through pvhost: N sequence-numbered frames to the reference guest, every one back exactly once and intact */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/test_frames.h"

/*
 * We are the peer of pvhost's socket backend: we listen on a SEQPACKET
 * socket, start `pvhost --net socket:PATH` on the guest, read the guest's
 * MAC from its console, then keep at most `window` frames in flight.  The
 * guest swaps the Ethernet addresses and sends everything else back, so
 * each echo must carry our sequence number and the payload derived from
 * it.  Exit 0 only if every frame came back once, unchanged.
 *
 * `--loopback` measures the same exchange with no guest: a thread echoes
 * on a socketpair, which is the ceiling the host side alone allows.
 */
#define STALL_NS 20000000000ull

static const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct console {
	int fd;
	char buf[65536];
	size_t len;
	unsigned long long pio, mmio, total, sysfix; /* last "pvhost: exits:" line */
	int exits_seen;               /* how many such lines the buffer holds */
};

/* Read what the child printed; keep it (for the MAC and the exit counts). */
static void console_pump(struct console *c, int wait_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	char tmp[4096], *s;
	ssize_t n;

	while (poll(&p, 1, wait_ms) == 1 && (n = read(c->fd, tmp, sizeof tmp)) > 0) {
		if (c->len + (size_t)n >= sizeof c->buf) { /* keep the tail */
			memmove(c->buf, c->buf + c->len / 2, c->len - c->len / 2);
			c->len -= c->len / 2;
		}
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		wait_ms = 0;
	}
	c->exits_seen = 0; /* recounted: a pump may see the same line again */
	for (s = c->buf; (s = strstr(s, "pvhost: exits: ")); s++)
		if (sscanf(s, "pvhost: exits: %llu pio, %llu mmio, %llu total, %llu syscall-fix",
			   &c->pio, &c->mmio, &c->total, &c->sysfix) == 4)
			c->exits_seen++;
}

static int console_mac(struct console *c, uint8_t *mac)
{
	const char *s = strstr(c->buf, "dp83820: mac ");
	unsigned m[6], i;

	if (!s || sscanf(s, "dp83820: mac %x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
			 &m[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	return 0;
}

static void *loop_echo(void *arg)
{
	int fd = *(int *)arg;
	uint8_t f[2048], t[6];
	ssize_t n;

	while ((n = recv(fd, f, sizeof f, 0)) > 0) {
		memcpy(t, f, 6); /* what the guest does: swap the addresses */
		memcpy(f, f + 6, 6);
		memcpy(f + 6, t, 6);
		if (send(fd, f, (size_t)n, 0) != n)
			break;
	}
	return NULL;
}

/* Send `total` frames with at most `window` in flight; 0 if all came back. */
static int run_echo(int fd, const uint8_t *mac, uint32_t total, uint32_t window,
		    struct console *con, double *rate)
{
	uint8_t f[2048], *seen = calloc(total, 1);
	uint32_t sent = 0, got = 0, seq;
	uint64_t t0 = now_ns(), last = t0;
	unsigned long bad = 0, dup = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (!seen)
		return -1;
	while (got < total) {
		while (sent < total && sent - got < window) {
			test_frame_make(f, mac, host_mac, sent, TEST_FRAME_MUL);
			if (send(fd, f, TEST_FRAME_LEN, 0) != TEST_FRAME_LEN) {
				fprintf(stderr, "net_echo: send: %s\n", strerror(errno));
				return -1;
			}
			sent++;
		}
		if (poll(&p, 1, 100) == 1) {
			n = recv(fd, f, sizeof f, 0);
			if (n <= 0) {
				fprintf(stderr, "net_echo: pvhost hung up after %u echoes\n", got);
				return -1;
			}
			if (test_frame_check_echo(f, (size_t)n, host_mac, mac, sent, TEST_FRAME_MUL,
						  &seq) < 0) {
				bad++;
			} else if (seen[seq]++) {
				dup++;
			} else {
				got++;
				last = now_ns();
			}
		}
		if (con)
			console_pump(con, 0);
		if (now_ns() - last > STALL_NS) {
			fprintf(stderr, "net_echo: stalled: %u sent, %u back, %lu bad, %lu duplicate\n",
				sent, got, bad, dup);
			return -1;
		}
	}
	*rate = total / ((now_ns() - t0) / 1e9);
	free(seen);
	if (bad || dup)
		fprintf(stderr, "net_echo: %lu bad and %lu duplicate frames\n", bad, dup);
	return bad || dup ? -1 : 0;
}

static int loopback(uint32_t total, uint32_t window)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 0x02 };
	int sv[2];
	pthread_t t;
	double rate;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		return 1;
	pthread_create(&t, NULL, loop_echo, &sv[1]);
	/* loop_echo swaps addresses the same way, so the guest MAC is "mac". */
	if (run_echo(sv[0], mac, total, window, NULL, &rate) < 0)
		return 1;
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	printf("loopback: %u frames, window %u: %.0f frames/s (no guest, host socket ceiling)\n",
	       total, window, rate);
	return 0;
}

static pid_t start_pvhost(const char *pvhost, const char *pers, const char *guest, const char *sock,
			  int *out)
{
	char net[128];
	int pfd[2];
	pid_t pid;

	snprintf(net, sizeof net, "socket:%s", sock);
	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		execl(pvhost, pvhost, "run", "--personality", pers, "--memory", "64M", "--stats",
		      "--net", net, guest, "--", "seed=1", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	*out = pfd[0];
	return pid;
}

int main(int argc, char **argv)
{
	uint32_t total = 100000, window = 8;
	const char *pers = "native";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct console con = { .fd = -1 };
	uint8_t mac[6];
	int lfd, fd, i, st, rc = 1;
	unsigned long long pio0, mmio0, all0;
	double rate;
	pid_t pid;
	uint64_t t0;

	for (i = 1; i + 1 < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
		if (!strcmp(argv[i], "--frames"))
			total = (uint32_t)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--window"))
			window = (uint32_t)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--personality"))
			pers = argv[i + 1];
		else
			break;
	}
	if (i < argc && !strcmp(argv[i], "--loopback"))
		return loopback(total, window);
	if (argc - i != 2 || !total || !window) {
		fprintf(stderr, "usage: net_echo [--frames N] [--window W] [--personality P] PVHOST GUEST-ELF\n"
				"       net_echo [--frames N] [--window W] --loopback\n");
		return 2;
	}
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("SKIP: /dev/kvm: %s (no KVM host here)\n", strerror(errno));
		return 77;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/net_echo.%d.sock", (int)getpid());
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0) {
		perror("net_echo: socket");
		return 1;
	}
	pid = start_pvhost(argv[i], pers, argv[i + 1], sa.sun_path, &con.fd);
	fd = accept(lfd, NULL, NULL); /* pvhost connects before it boots the guest */
	unlink(sa.sun_path);
	if (pid < 0 || fd < 0) {
		perror("net_echo: start pvhost");
		return 1;
	}
	/* The guest is ready when its user task runs: interrupts are on. */
	for (t0 = now_ns(); !strstr(con.buf, "user: running in ring 3"); console_pump(&con, 100))
		if (now_ns() - t0 > STALL_NS || waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "net_echo: guest did not come up:\n%s\n", con.buf);
			goto out;
		}
	if (console_mac(&con, mac) < 0) {
		fprintf(stderr, "net_echo: no MAC on the console:\n%s\n", con.buf);
		goto out;
	}
	kill(pid, SIGUSR2); /* exit counts before the echo phase */
	while (!con.exits_seen)
		console_pump(&con, 100);
	pio0 = con.pio;
	mmio0 = con.mmio;
	all0 = con.total - con.sysfix;
	if (run_echo(fd, mac, total, window, &con, &rate) < 0) {
		fprintf(stderr, "net_echo: console:\n%s\n", con.buf);
		goto out;
	}
	kill(pid, SIGUSR2);
	for (i = con.exits_seen; con.exits_seen == i;)
		console_pump(&con, 100);
	/* "exits" leaves out the syscall fix's (a host defect, not I/O; the
	 * guest's user task makes system calls all along) */
	printf("guest echo (%s): %u frames of %d bytes, window %u: all back once and intact, "
	       "%.0f frames/s, %.2f exits/frame (%.2f pio, %.2f mmio)\n",
	       pers, total, TEST_FRAME_LEN, window, rate,
	       (double)(con.total - con.sysfix - all0) / total,
	       (double)(con.pio - pio0) / total, (double)(con.mmio - mmio0) / total);
	rc = 0;
out:
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	console_pump(&con, 100);
	if (strstr(con.buf, "pvhost: net:"))
		fputs(strstr(con.buf, "pvhost: net:"), stdout);
	else if (strstr(con.buf, "pvhost: stats:"))
		fputs(strstr(con.buf, "pvhost: stats:"), stdout);
	return rc;
}
