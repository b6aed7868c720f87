/* test_migrate_net.c: live migration while a peer streams frames through the guest's DP83820: every frame comes back exactly once */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "personality_kvm.h"
#include "platform.h"
#include "../lib/test_frames.h"

/*
 * Usage: test_migrate_net GUEST-ELF [RUNTIME-ELF]
 *
 * The reference guest echoes every frame its NIC receives (addresses
 * swapped).  We are the peer of the NIC's socket backend: a thread keeps
 * WINDOW numbered frames in flight until TOTAL came back.  Meanwhile the
 * guest migrates from VM A to VM B (and back to a third VM): at the freeze
 * frames sit in A's host queue (they travel in NIC_HELD), in the guest's
 * receive ring (RAM and device state), and in the socket A was reading
 * (B's NIC takes that socket over).  Each sequence number must come back
 * exactly once and intact.  With RUNTIME-ELF the moves go between
 * personalities, native -> kvm -> native -> kvm: under kvm the frames
 * wait in the runtime's channel (host queue, RX ring), which the move
 * carries the same way.  In that mode the VMs also share one connection
 * to the peer, as pvmigrated hands one to each guest process (fd:N): we
 * connect once and every VM gets a copy of that descriptor, so frames
 * sent during a move wait in the socket, and no take-over is needed.
 */
#define TOTAL 12000u
#define WINDOW 16u
#define STALL_NS 20000000000ull

static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };
static const uint8_t guest_mac[6] = PLATFORM_NIC_MAC;

struct peer {
	int fd;
	uint32_t sent, got, bad, dup;
	uint8_t seen[TOTAL];
	int done, failed;
};

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "test_migrate_net: %s failed: %s\n", what, why);
	exit(1);
}

static uint64_t now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *peer_run(void *arg)
{
	struct peer *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	uint8_t f[2048];
	uint64_t last = now();
	uint32_t seq;
	ssize_t n;

	while (p->got < TOTAL) {
		while (p->sent < TOTAL && p->sent - p->got < WINDOW) {
			test_frame_make(f, guest_mac, peer_mac, p->sent, TEST_FRAME_XOR);
			if (send(p->fd, f, TEST_FRAME_LEN, 0) != TEST_FRAME_LEN) {
				p->failed = 1;
				return NULL;
			}
			__atomic_fetch_add(&p->sent, 1, __ATOMIC_RELAXED);
		}
		if (poll(&pfd, 1, 100) == 1) {
			n = recv(p->fd, f, sizeof f, 0);
			if (n <= 0) {
				fprintf(stderr, "test_migrate_net: peer: %s\n",
					n ? strerror(errno) : "the NIC's socket closed");
				break;
			}
			if (test_frame_check_echo(f, (size_t)n, peer_mac, guest_mac, p->sent,
						  TEST_FRAME_XOR, &seq) < 0)
				p->bad++;
			else if (p->seen[seq]++)
				p->dup++;
			else
				__atomic_fetch_add(&p->got, 1, __ATOMIC_RELAXED);
			last = now();
		}
		if (now() - last > STALL_NS)
			break;
	}
	p->done = 1;
	return NULL;
}

/* ---- the VMs ---- */

struct side {
	struct vm *vm;
	FILE *con;
	pthread_t thread;
	struct migrate_conn conn;
	int handed_over; /* target: the source's NIC backend is ours now */
	int rc;
	char why[512];
};

static const char *sock_path, *runtime_elf;
static int shared_fd = -1; /* personality mode: the one connection every VM gets a copy of */
static int next_kvm; /* the next VM runs the kvm personality */

static void console(struct side *s, char *buf, size_t len)
{
	ssize_t n = pread(fileno(s->con), buf, len - 1, 0);

	buf[n > 0 ? n : 0] = 0;
}

static struct vm *new_vm(struct side *s)
{
	char cause[256], spec[160];

	memset(s, 0, sizeof *s);
	s->con = tmpfile();
	s->vm = vm__create(&vm_kvm_ops, 64ull << 20, 1, cause, sizeof cause);
	if (!s->con || !s->vm)
		fail("create VM", s->vm ? strerror(errno) : cause);
	snprintf(spec, sizeof spec, "socket:%s", sock_path);
	if (shared_fd >= 0) {
		int fd = dup(shared_fd);

		if (fd < 0)
			fail("dup", strerror(errno));
		snprintf(spec, sizeof spec, "fd:%d", fd);
		s->handed_over = 1;
	}
	if (next_kvm) {
		struct vm_kvm_host_cfg cfg = { .runtime = runtime_elf, .net = spec,
					       .console_fd = fileno(s->con) };

		if (vm__platform_init_ports(s->vm) < 0 || vm__kvm_host_attach(s->vm, &cfg) < 0)
			fail("kvm runtime", s->vm->err);
		return s->vm;
	}
	if (vm__platform_init(s->vm, fileno(s->con)) < 0 || vm__platform_add_nic(s->vm, spec) < 0)
		fail("platform", s->vm->err);
	return s->vm;
}

static void *run_source(void *arg)
{
	vm__run(((struct side *)arg)->vm);
	return NULL;
}

static void *run_target(void *arg)
{
	struct side *s = arg;

	s->rc = migrate_receive(s->vm, &s->conn.io, s->why, sizeof s->why);
	if (s->rc < 0)
		return NULL;
	/* Run only on the source's socket: an echo sent on our placeholder
	 * connection would be lost. */
	while (!__atomic_load_n(&s->handed_over, __ATOMIC_ACQUIRE))
		usleep(50);
	vm__run(s->vm);
	return NULL;
}

static void migrate(struct side *a, struct side *b, int lfd, struct migrate_report *rep)
{
	struct migrate_policy pol = { .no_shrink_stop = 1 };
	struct migrate_conn sc;
	int sv[2], extra;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair", strerror(errno));
	new_vm(b);
	/* B's own connection to the peer is only a placeholder until it takes A's */
	extra = shared_fd >= 0 ? -1 : accept(lfd, NULL, NULL);
	migrate_conn_init(&b->conn, sv[1], 20000);
	migrate_conn_init(&sc, sv[0], 20000);
	pthread_create(&b->thread, NULL, run_target, b);
	if (migrate_send(a->vm, &sc.io, &pol, rep) < 0)
		fail("migrate_send", rep->err);
	/* Confirmed: A never runs again, so B may take its socket, frames
	 * that arrived after the freeze included, before A is destroyed. */
	if (shared_fd < 0 && vm__platform_nic_move_backend(b->vm, a->vm) < 0)
		fail("NIC take-over", b->vm->err);
	__atomic_store_n(&b->handed_over, 1, __ATOMIC_RELEASE);
	vm__poweroff(a->vm, VM_EXIT_POWEROFF, 0);
	pthread_join(a->thread, NULL);
	vm__destroy(a->vm);
	fclose(a->con);
	close(sv[0]);
	if (extra >= 0)
		close(extra);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cmdline[512], text[16384];
	struct side s[2];
	struct migrate_report rep;
	struct peer *peer;
	pthread_t pt;
	int lfd, i, cur = 0;
	uint64_t held = 0;

	if (argc != 2 && argc != 3)
		fail("usage", "test_migrate_net GUEST-ELF [RUNTIME-ELF]");
	runtime_elf = argc == 3 ? argv[2] : NULL;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("SKIP: /dev/kvm: %s (no KVM host here)\n", strerror(errno));
		return 77;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/test_migrate_net.%d.sock", (int)getpid());
	sock_path = sa.sun_path;
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4) < 0)
		fail("peer socket", strerror(errno));
	if (runtime_elf) {
		shared_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (shared_fd < 0 || connect(shared_fd, (struct sockaddr *)&sa, sizeof sa) < 0)
			fail("connect to the peer", strerror(errno));
	}
	new_vm(&s[0]);
	peer = calloc(1, sizeof *peer);
	if (!peer || (peer->fd = accept(lfd, NULL, NULL)) < 0)
		fail("accept", strerror(errno));
	snprintf(cmdline, sizeof cmdline, "%s seed=1", argv[1]); /* runs until stopped */
	if (vm__load_multiboot(s[0].vm, argv[1], cmdline) < 0)
		fail("boot", s[0].vm->err);
	pthread_create(&s[0].thread, NULL, run_source, &s[0]);
	/* frames before the driver is up would only wait in the host queue */
	for (i = 0; i < 3000; i++) {
		console(&s[0], text, sizeof text);
		if (strstr(text, "dp83820: mac"))
			break;
		usleep(10000);
	}
	pthread_create(&pt, NULL, peer_run, peer);

	for (i = 0; i < 3; i++) {
		uint32_t at = (i + 1) * TOTAL / 5;

		while (__atomic_load_n(&peer->got, __ATOMIC_RELAXED) < at && !peer->done)
			usleep(2000);
		if (peer->done)
			break;
		next_kvm = runtime_elf && i % 2 == 0; /* native -> kvm -> native -> kvm */
		migrate(&s[cur], &s[!cur], lfd, &rep);
		held += rep.held_frames;
		printf("test_migrate_net: migration %d to %s at echo %u: %u rounds, %llu bytes, "
		       "downtime %.3f ms, total %.1f ms, %llu held frames carried\n", i + 1,
		       next_kvm ? "kvm" : "native", at,
		       rep.rounds, (unsigned long long)rep.total_bytes, rep.downtime_ns / 1e6,
		       rep.total_ns / 1e6, (unsigned long long)rep.held_frames);
		cur = !cur;
	}
	pthread_join(pt, NULL);
	vm__poweroff(s[cur].vm, VM_EXIT_POWEROFF, 0);
	pthread_join(s[cur].thread, NULL);
	printf("test_migrate_net: %u frames sent, %u back once, %u bad, %u duplicate, %d "
	       "migrations, %llu frames carried in NIC_HELD\n", peer->sent, peer->got, peer->bad,
	       peer->dup, i, (unsigned long long)held);
	if (peer->failed || peer->got != TOTAL || peer->bad || peer->dup || i != 3) {
		console(&s[cur], text, sizeof text);
		fprintf(stderr, "%s\n", text);
		fail("echo", "frames lost, damaged or duplicated across the migrations");
	}
	printf("test_migrate_net: ok: zero frames lost across 3 migrations\n");
	vm__destroy(s[cur].vm);
	unlink(sa.sun_path);
	return 0;
}
