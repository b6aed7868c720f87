/* test_migrate_tls.c: a 2-vCPU guest moved between two VMs over loopback TCP and the direct path's wire (preamble, mutual TLS 1.3, token), and the connections that wire must refuse */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate.h"
#include "migrate_tls.h"
#include "../lib/test_vm.h"
#include "../lib/test_tls_move.h"

/*
 * Usage: test_migrate_tls move|refuse GUEST-ELF WORKLOAD-REF TLS-CERTS-SH
 *        test_migrate_tls io TLS-CERTS-SH
 *
 * Certificates come from scripts/tls-certs.sh in a temp dir: CA "ca"
 * with "a" (the target) and "b" (the source), and a second CA "evil"
 * with "x", which the right CA never signed.
 *
 *   move    a 2-vCPU 64 MiB guest running its workload moves from VM A to
 *           VM B: TCP on 127.0.0.1, the preamble with the migration id,
 *           mutual TLS, the token, then migrate_send / migrate_receive on
 *           the TLS io; B must end with workload_ref's line
 *   refuse  while the guest runs on A, connections the target must turn
 *           away, each before anything of the guest is sent: a source
 *           whose certificate the CA did not sign, a wrong token, a
 *           preamble of another protocol, one of another version.  Each
 *           time both ends must say why, and A's guest must go on; at the
 *           end it finishes on A with workload_ref's line
 *   io      no VM: the io's contract, as migrate_conn's: a silent peer is
 *           ETIMEDOUT after the timeout (in the handshake, in a read, and
 *           in a write the peer does not read),
 *           a peer that closed is a 0 read and then EPIPE or ECONNRESET on
 *           write, never SIGPIPE (left at its default: it would kill the
 *           test); and kTLS asked for where the kernel has no "tls" ULP
 *           fails and says so
 */
#define TIMEOUT_MS 20000

static const char *guest_elf, *ref_prog;
static char dir[64];

static int fail(const char *what, const char *why)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (dir[0] && system(cmd)) {
		/* the temp dir stays: nothing else to do */
	}
	exit(test_fail(what, why));
}

static void *run_guest(void *vm)
{
	vm__run(vm);
	return NULL;
}

static SSL_CTX *ctx_of(const char *who, const char *ca, int server)
{
	char crt[128], key[128], cafile[128], why[512];
	struct migrate_tls_cfg cfg = { crt, key, cafile, NULL, 0, 0 };
	SSL_CTX *ctx;

	snprintf(crt, sizeof crt, "%s/%s.crt", dir, who);
	snprintf(key, sizeof key, "%s/%s.key", dir, who);
	snprintf(cafile, sizeof cafile, "%s/%s.crt", dir, ca);
	if (!(ctx = migrate_tls_ctx(&cfg, server, why, sizeof why)))
		fail("TLS context", why);
	return ctx;
}

static void make_certs(const char *script)
{
	char why[1024];

	snprintf(dir, sizeof dir, "/tmp/test_migrate_tls.XXXXXX");
	if (!mkdtemp(dir))
		fail("temp dir", strerror(errno));
	if (tls_move_certs(script, dir, "ca a b", why, sizeof why) < 0 ||
	    tls_move_certs(script, dir, "evil x", why, sizeof why) < 0)
		fail("certificates", why);
}

/* Which bad thing the source does (0: nothing). */
enum fault { GOOD, BAD_CERT, BAD_TOKEN, BAD_MAGIC, BAD_VERSION };

/*
 * The source's side: dial, preamble, TLS as the client with its token.
 * 0 with *tls open, or -1 with why.
 */
static int source_open(uint16_t port, enum fault f, const uint8_t *id, const uint8_t *token,
		       struct migrate_tls *tls, int *fdp, char *why, size_t whylen)
{
	SSL_CTX *ctx = f == BAD_CERT ? ctx_of("x", "ca", 0) : ctx_of("b", "ca", 0);
	uint8_t tok[MIGRATE_TOKEN_LEN], pre[MIGRATE_PREAMBLE_LEN];
	int fd = tls_move_dial(port), rc = -1;

	*fdp = fd;
	if (fd < 0) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		goto out;
	}
	memcpy(tok, token, sizeof tok);
	if (f == BAD_TOKEN)
		tok[31] ^= 1;
	if (f == BAD_MAGIC || f == BAD_VERSION) {
		/* the bytes a stranger might send: HTTP, or our magic, version 2 */
		migrate_preamble_pack(pre, id);
		if (f == BAD_MAGIC)
			memcpy(pre, "GET / HTTP/1.1\r\nHost: x\r\n", sizeof pre);
		else
			pre[4] = 2;
		if (send(fd, pre, sizeof pre, MSG_NOSIGNAL) != (ssize_t)sizeof pre) {
			snprintf(why, whylen, "send: %s", strerror(errno));
			goto out;
		}
	} else if (migrate_preamble_write(fd, id, TIMEOUT_MS, why, whylen) < 0) {
		goto out;
	}
	rc = migrate_tls_connect(tls, ctx, fd, TIMEOUT_MS, tok, why, whylen);
out:
	SSL_CTX_free(ctx);
	return rc;
}

static void fill_ids(uint8_t *id, uint8_t *token)
{
	unsigned i;

	/* fixed bytes are enough here: the daemon will draw them from RAND_bytes */
	for (i = 0; i < MIGRATE_ID_LEN; i++)
		id[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < MIGRATE_TOKEN_LEN; i++)
		token[i] = (uint8_t)(i * 7 + 1);
}

static int test_refuse(void)
{
	static const struct {
		enum fault f;
		const char *name, *target_says, *source_says;
	} cases[] = {
		{ BAD_CERT, "certificate from another CA", "certificate verify failed",
		  "the target did not accept the connection" },
		{ BAD_TOKEN, "wrong token", "wrong migration token",
		  "the target refused the connection: wrong migration token" },
		{ BAD_MAGIC, "another protocol", "not a pvmigrate direct connection", "TLS handshake" },
		{ BAD_VERSION, "preamble version 2", "preamble version 2", "TLS handshake" },
	};
	/* ~1 s of ticks per refusal: long enough to outlast all of them */
	const char *args = "seed=8 steps=60000";
	SSL_CTX *server = ctx_of("a", "ca", 1);
	struct tls_move_target tgt;
	struct migrate_tls tls;
	struct vm *vm;
	FILE *con;
	pthread_t run;
	uint16_t port;
	uint8_t id[MIGRATE_ID_LEN], token[MIGRATE_TOKEN_LEN];
	char want[256], why[600], text[65536];
	int lfd = tls_move_listen(&port), fd, ticks;
	unsigned i;
	const char *end;

	if (lfd < 0)
		fail("listen", strerror(errno));
	fill_ids(id, token);
	if (test_workload_ref(ref_prog, args, want, sizeof want, why, sizeof why) < 0)
		fail("workload_ref", why);
	if (!(vm = test_vm_new(64ull << 20, 2, NULL, NULL, &con, why, sizeof why)))
		fail("create VM", why);
	if (test_vm_load(vm, guest_elf, args) < 0)
		fail("boot", vm->err);
	pthread_create(&run, NULL, run_guest, vm);
	if (test_console_wait_ticks(con, 0, 30) < 0)
		fail("waiting for progress", "the guest printed no tick line in 30 s");
	for (i = 0; i < sizeof cases / sizeof *cases; i++) {
		test_console(con, text, sizeof text);
		if (strstr(text, "workload:"))
			fail(cases[i].name, "the guest ended before the refusals: too few steps");
		memset(&tgt, 0, sizeof tgt);
		tgt.lfd = lfd;
		tgt.ctx = server;
		tgt.timeout_ms = TIMEOUT_MS;
		memcpy(tgt.id, id, sizeof id);
		memcpy(tgt.token, token, sizeof token);
		tls_move_target_start(&tgt);
		why[0] = 0;
		if (source_open(port, cases[i].f, id, token, &tls, &fd, why, sizeof why) == 0) {
			migrate_tls_close(&tls);
			close(fd);
			pthread_join(tgt.thread, NULL);
			fprintf(stderr, "target: %s\n", tgt.why);
			fail(cases[i].name, "the source's connection was accepted");
		}
		if (fd >= 0)
			close(fd);
		pthread_join(tgt.thread, NULL);
		printf("test_migrate_tls: %s: source: %s\n", cases[i].name, why);
		printf("test_migrate_tls: %s: target: %s\n", cases[i].name, tgt.why);
		if (tgt.rc == 0 || !strstr(tgt.why, cases[i].target_says))
			fail(cases[i].name, "the target did not refuse it for the expected reason");
		if (!strstr(why, cases[i].source_says))
			fail(cases[i].name, "the source did not fail for the expected reason");
		/* the source guest is untouched: it runs on */
		ticks = test_console_ticks(con);
		if (test_console_wait_ticks(con, ticks, 30) < 0)
			fail(cases[i].name, "the source guest made no progress after the refusal");
	}
	pthread_join(run, NULL);
	if (test_vm_check_end(vm, con, want, &end) < 0)
		fail("source after the refusals", end);
	printf("test_migrate_tls: ok: %zu refusals, the source finished: %s",
	       sizeof cases / sizeof *cases, want);
	vm__destroy(vm);
	fclose(con);
	SSL_CTX_free(server);
	close(lfd);
	return 0;
}

static int test_move(void)
{
	const char *args = "seed=13 steps=20000";
	struct migrate_policy pol = { .no_shrink_stop = 1 };
	SSL_CTX *server = ctx_of("a", "ca", 1);
	struct tls_move_target tgt = { .ctx = server, .timeout_ms = TIMEOUT_MS };
	struct migrate_report rep;
	struct migrate_tls tls;
	struct vm *a;
	FILE *con_a = NULL, *con_b = NULL;
	pthread_t run;
	uint16_t port;
	char want[256], why[600], text[65536];
	int fd, rc;
	const char *end;

	tgt.lfd = tls_move_listen(&port);
	if (tgt.lfd < 0)
		fail("listen", strerror(errno));
	fill_ids(tgt.id, tgt.token);
	if (test_workload_ref(ref_prog, args, want, sizeof want, why, sizeof why) < 0)
		fail("workload_ref", why);
	if (!(a = test_vm_new(64ull << 20, 2, NULL, NULL, &con_a, why, sizeof why)) ||
	    !(tgt.vm = test_vm_new(64ull << 20, 2, NULL, NULL, &con_b, why, sizeof why)))
		fail("create VM", why);
	if (test_vm_load(a, guest_elf, args) < 0)
		fail("boot", a->err);
	pthread_create(&run, NULL, run_guest, a);
	if (test_console_wait_ticks(con_a, 0, 30) < 0)
		fail("waiting for progress", "the guest printed no tick line in 30 s");
	tls_move_target_start(&tgt);
	if (source_open(port, GOOD, tgt.id, tgt.token, &tls, &fd, why, sizeof why) < 0) {
		pthread_join(tgt.thread, NULL);
		fprintf(stderr, "target: %s\n", tgt.why);
		fail("connect", why);
	}
	rc = migrate_send(a, &tls.io, &pol, &rep);
	printf("test_migrate_tls: %s, %llu stream writes in %llu SSL_write calls and %llu sends\n",
	       migrate_tls_suite(&tls), (unsigned long long)tls.writes,
	       (unsigned long long)tls.ssl_writes, (unsigned long long)tls.sends);
	migrate_tls_close(&tls);
	close(fd);
	if (rc < 0) {
		pthread_join(tgt.thread, NULL);
		fprintf(stderr, "target: %s\n", tgt.why);
		fail("migrate_send", rep.err);
	}
	migrate_report_print(&rep, stdout);
	vm__poweroff(a, VM_EXIT_POWEROFF, 0);
	pthread_join(run, NULL);
	vm__destroy(a);
	fclose(con_a);
	pthread_join(tgt.thread, NULL);
	if (!tgt.ran)
		fail("target", tgt.why);
	if (test_vm_check_end(tgt.vm, con_b, want, &end) < 0)
		fail("target", end);
	test_console(con_b, text, sizeof text);
	if (strstr(text, "guest: reference kernel up"))
		fail("target console", "the target booted the guest again");
	printf("test_migrate_tls: ok: moved over TCP + TLS; the target finished: %s", want);
	vm__destroy(tgt.vm);
	fclose(con_b);
	SSL_CTX_free(server);
	close(tgt.lfd);
	return 0;
}

/* ---- io: no VM ---- */

struct io_peer {
	int lfd, mode; /* 0: TLS accept, say "abc", wait, close; 1: accept TCP, stay silent */
	SSL_CTX *ctx;
	uint8_t token[MIGRATE_TOKEN_LEN];
	int go; /* set by the client: close now */
	char why[512];
};

static void *io_peer_run(void *arg)
{
	struct io_peer *p = arg;
	struct migrate_tls t;
	int fd = accept(p->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	if (p->mode == 1) {
		test_sleep_ms(1500);
	} else if (migrate_tls_accept(&t, p->ctx, fd, TIMEOUT_MS, p->token, p->why,
				      sizeof p->why) == 0) {
		if (t.io.write(t.io.ctx, "abc", 3) != 3)
			snprintf(p->why, sizeof p->why, "write: %s", t.err);
		while (!__atomic_load_n(&p->go, __ATOMIC_ACQUIRE))
			test_sleep_ms(10);
		migrate_tls_close(&t);
	}
	close(fd);
	return NULL;
}

static int test_io(void)
{
	SSL_CTX *server = ctx_of("a", "ca", 1), *client = ctx_of("b", "ca", 0), *kctx;
	struct io_peer p = { .ctx = server };
	struct migrate_tls t;
	struct migrate_tls_cfg kcfg;
	pthread_t th;
	uint16_t port;
	uint64_t t0;
	char buf[8], why[600], *big = calloc(1, 1u << 20);
	int fd, i;
	ssize_t n = 0;

	signal(SIGPIPE, SIG_DFL);
	p.lfd = tls_move_listen(&port);
	if (p.lfd < 0 || !big)
		fail("listen", strerror(errno));
	memset(p.token, 5, sizeof p.token);

	/* a peer that never speaks TLS: the handshake gives up in time */
	p.mode = 1;
	pthread_create(&th, NULL, io_peer_run, &p);
	fd = tls_move_dial(port);
	t0 = vm__now_ns();
	if (migrate_tls_connect(&t, client, fd, 300, p.token, why, sizeof why) == 0)
		fail("silent peer", "the handshake succeeded");
	printf("test_migrate_tls: silent peer after %.0f ms: %s\n", (vm__now_ns() - t0) / 1e6, why);
	if (!strstr(why, strerror(ETIMEDOUT)) || vm__now_ns() - t0 < 250000000ull)
		fail("silent peer", "not a timeout after 300 ms");
	close(fd);
	pthread_join(th, NULL);

	/* a read with nothing coming, then data, then the peer's end */
	p.mode = 0;
	pthread_create(&th, NULL, io_peer_run, &p);
	fd = tls_move_dial(port);
	if (migrate_tls_connect(&t, client, fd, 300, p.token, why, sizeof why) < 0)
		fail("connect", why);
	if (t.io.read(t.io.ctx, buf, 3) != 3 || memcmp(buf, "abc", 3))
		fail("read", t.err);
	t0 = vm__now_ns();
	errno = 0;
	if (t.io.read(t.io.ctx, buf, 1) != -1 || errno != ETIMEDOUT)
		fail("read from a silent peer", "not ETIMEDOUT");
	printf("test_migrate_tls: read from a silent peer: ETIMEDOUT after %.0f ms\n",
	       (vm__now_ns() - t0) / 1e6);
	__atomic_store_n(&p.go, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	if (t.io.read(t.io.ctx, buf, 1) != 0)
		fail("read after the peer closed", "not 0 (the end)");
	migrate_tls_close(&t);
	close(fd);

	/* a peer that stops reading: a write gives up after the timeout */
	p.go = 0;
	pthread_create(&th, NULL, io_peer_run, &p);
	fd = tls_move_dial(port);
	if (migrate_tls_connect(&t, client, fd, 300, p.token, why, sizeof why) < 0)
		fail("connect", why);
	for (i = 0; i < 256 && (n = t.io.write(t.io.ctx, big, 1u << 20)) > 0; i++)
		t0 = vm__now_ns();
	if (n >= 0 || errno != ETIMEDOUT || vm__now_ns() - t0 < 250000000ull)
		fail("write to a peer that does not read", "not ETIMEDOUT after 300 ms");
	printf("test_migrate_tls: peer not reading: %d MiB written, then ETIMEDOUT after %.0f ms\n",
	       i, (vm__now_ns() - t0) / 1e6);
	__atomic_store_n(&p.go, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	migrate_tls_close(&t);
	close(fd);

	/* writes into a closed peer, nothing read since: they reach the
	 * socket, which answers EPIPE; a plain write() would raise SIGPIPE */
	p.go = 1; /* the server closes once it sent "abc" */
	pthread_create(&th, NULL, io_peer_run, &p);
	fd = tls_move_dial(port);
	if (migrate_tls_connect(&t, client, fd, TIMEOUT_MS, p.token, why, sizeof why) < 0)
		fail("connect", why);
	pthread_join(th, NULL);
	for (i = 0; i < 64 && (n = t.io.write(t.io.ctx, big, 1u << 20)) > 0; i++)
		;
	if (n >= 0 || (errno != EPIPE && errno != ECONNRESET))
		fail("write after the peer closed", "not EPIPE or ECONNRESET");
	printf("test_migrate_tls: closed peer: read 0; %d MiB written, then %s (%s, %llu sends)\n",
	       i, strerror(errno), t.err, (unsigned long long)t.sends);
	migrate_tls_close(&t);
	close(fd);

	/* kTLS where the kernel cannot: a clear refusal, not user-space TLS */
	if (!migrate_tls_kernel_ulp(why, sizeof why)) {
		printf("test_migrate_tls: %s\n", why);
		kcfg = (struct migrate_tls_cfg){ NULL, NULL, NULL, NULL, 1, 0 };
		char crt[128], key[128], ca[128];

		snprintf(crt, sizeof crt, "%s/b.crt", dir);
		snprintf(key, sizeof key, "%s/b.key", dir);
		snprintf(ca, sizeof ca, "%s/ca.crt", dir);
		kcfg.cert = crt;
		kcfg.key = key;
		kcfg.ca = ca;
		if (!(kctx = migrate_tls_ctx(&kcfg, 0, why, sizeof why)))
			fail("kTLS context", why);
		pthread_create(&th, NULL, io_peer_run, &p);
		fd = tls_move_dial(port);
		if (migrate_tls_connect(&t, kctx, fd, TIMEOUT_MS, p.token, why, sizeof why) == 0)
			fail("kTLS", "the connection was made without kernel TLS");
		printf("test_migrate_tls: kTLS: %s\n", why);
		if (!strstr(why, "not engaged"))
			fail("kTLS", "not the expected reason");
		close(fd);
		pthread_join(th, NULL);
		SSL_CTX_free(kctx);
	}
	printf("test_migrate_tls: ok: timeouts, the end, EPIPE without SIGPIPE, kTLS refusal\n");
	free(big);
	SSL_CTX_free(server);
	SSL_CTX_free(client);
	close(p.lfd);
	return 0;
}

int main(int argc, char **argv)
{
	char cmd[128];
	int rc = 1;

	if (argc == 3 && !strcmp(argv[1], "io")) {
		make_certs(argv[2]);
		rc = test_io();
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd))
			fprintf(stderr, "test_migrate_tls: could not remove %s\n", dir);
		return rc;
	}
	if (argc != 5)
		fail("usage", "test_migrate_tls move|refuse GUEST-ELF WORKLOAD-REF TLS-CERTS-SH");
	if (test_no_kvm())
		return TEST_SKIP;
	guest_elf = argv[2];
	ref_prog = argv[3];
	make_certs(argv[4]);
	if (!strcmp(argv[1], "move"))
		rc = test_move();
	else if (!strcmp(argv[1], "refuse"))
		rc = test_refuse();
	else
		fail("usage", argv[1]);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "test_migrate_tls: could not remove %s\n", dir);
	return rc;
}
