/* bench_migrate_tls.c: what the direct path will reach: the loopback TCP ceiling, the TLS layer's raw rate per suite, whether kTLS engages, and a 200 MiB-filled 2-vCPU guest moved over plain TCP and over TCP + mutual TLS (each suite) in one process */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "migrate.h"
#include "migrate_tls.h"
#include "../tests/lib/test_vm.h"
#include "../tests/lib/test_tls_move.h"

/*
 * usage: bench_migrate_tls GUEST-ELF WORKLOAD-REF TLS-CERTS-SH TCP-LOOPBACK [FILL_MIB] [STEPS]
 *
 * Rows, all from this run (the host has 2 CPUs; note `uptime`, printed
 * first: other work on the machine shows in every figure):
 *   loopback TCP   tcp_loopback 2048: the ceiling (no TLS, no guest)
 *   loopback TLS   tcp_loopback 1024 --tls: OpenSSL's socket BIO, the
 *                  library's default suite (what the daemons' link gets)
 *   layer          512 MiB, 5 times interleaved (median, range), through migrate_tls (preamble, handshake, token,
 *                  then 1 MiB stream writes), per suite, records gathered
 *                  into few sends (the default) or one send per record
 *   kTLS           SSL_OP_ENABLE_KTLS on a socket BIO: engaged or why not
 *   move           a `--vcpus 2 --memory 256M` guest, `seed=11 steps=STEPS
 *                  mem=16M fill=FILL_MIB M` (defaults 200, 30000), moved
 *                  once `user: fill written` shows, over plain TCP
 *                  (migrate_conn: the same process, no TLS) and over TCP +
 *                  migrate_tls with each suite: stream bytes, total time,
 *                  downtime (migrate_report), MiB/s, % of the ceiling.
 *                  Each target must end with workload_ref's checksum, or
 *                  the run fails and its figures are void.  FILL_MIB 0:
 *                  no moves, the rows above only.
 */
#define TIMEOUT_MS 20000
#define LAYER_MIB 512u
#define LAYER_RUNS 5

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *suites[] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384" };
static const char *guest_elf, *ref_prog;
static char dir[64];

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (dir[0] && system(cmd))
		fprintf(stderr, "bench_migrate_tls: could not remove %s\n", dir);
}

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "bench_migrate_tls: %s: %s\n", what, why);
	cleanup();
	exit(1);
}

static SSL_CTX *ctx_of(const char *who, const char *suite, int server, int ktls, int no_coalesce)
{
	char crt[128], key[128], ca[128], why[512];
	struct migrate_tls_cfg cfg = { crt, key, ca, suite, ktls, no_coalesce };
	SSL_CTX *ctx;

	snprintf(crt, sizeof crt, "%s/%s.crt", dir, who);
	snprintf(key, sizeof key, "%s/%s.key", dir, who);
	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	if (!(ctx = migrate_tls_ctx(&cfg, server, why, sizeof why)))
		fail("TLS context", why);
	return ctx;
}

/* MiB/s from tcp_loopback's line */
static double run_loopback(const char *prog, const char *args, char *line, size_t len)
{
	char cmd[512];
	const char *eq = NULL;
	FILE *p;

	snprintf(cmd, sizeof cmd, "'%s' %s", prog, args);
	line[0] = 0;
	if (!(p = popen(cmd, "r")) || !fgets(line, (int)len, p) || !(eq = strstr(line, "= ")))
		fail("tcp_loopback", cmd);
	pclose(p);
	line[strcspn(line, "\n")] = 0;
	return strtod(eq + 2, NULL);
}

/* ---- the layer alone ---- */

struct sink {
	int lfd;
	SSL_CTX *ctx;
	uint8_t token[MIGRATE_TOKEN_LEN];
	uint64_t got;
	char why[512];
};

static void *sink_run(void *arg)
{
	struct sink *s = arg;
	struct migrate_tls t;
	uint8_t id[MIGRATE_ID_LEN];
	char *buf = malloc(1u << 20);
	struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
	ssize_t n;
	int fd = poll(&pfd, 1, TIMEOUT_MS) == 1 ? accept(s->lfd, NULL, NULL) : -1;

	if (fd < 0 || !buf || migrate_preamble_read(fd, id, TIMEOUT_MS, s->why, sizeof s->why) < 0 ||
	    migrate_tls_accept(&t, s->ctx, fd, TIMEOUT_MS, s->token, s->why, sizeof s->why) < 0)
		goto out;
	while ((n = t.io.read(t.io.ctx, buf, 1u << 20)) > 0)
		s->got += (uint64_t)n;
	if (n < 0)
		snprintf(s->why, sizeof s->why, "read: %s", t.err);
	migrate_tls_close(&t);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* LAYER_MIB through migrate_tls: 0 with the rate and the CPU time both
 * ends took (*cpu, ms: what a loaded 2-CPU host notices less than wall
 * time), or -1 with why. */
static int layer(const char *suite, int ktls, int no_coalesce, double *mibs, double *cpu,
		 int verbose, char *why, size_t whylen)
{
	struct sink s = { .ctx = ctx_of("a", suite, 1, ktls, no_coalesce) };
	SSL_CTX *cctx = ctx_of("b", suite, 0, ktls, no_coalesce);
	uint8_t id[MIGRATE_ID_LEN] = { 1 };
	char *buf = malloc(1u << 20);
	struct migrate_tls t;
	pthread_t th;
	uint16_t port;
	uint64_t t0, c0 = 0, i;
	int fd, rc = -1, joined = 0;

	memset(s.token, 7, sizeof s.token);
	s.lfd = tls_move_listen(&port);
	if (s.lfd < 0 || !buf)
		fail("listen", strerror(errno));
	memset(buf, 0x5a, 1u << 20);
	pthread_create(&th, NULL, sink_run, &s);
	fd = tls_move_dial(port);
	if (fd < 0 || migrate_preamble_write(fd, id, TIMEOUT_MS, why, whylen) < 0 ||
	    migrate_tls_connect(&t, cctx, fd, TIMEOUT_MS, s.token, why, whylen) < 0)
		goto out;
	t0 = vm__now_ns();
	c0 = cpu_ns();
	for (i = 0; i < LAYER_MIB; i++)
		if (t.io.write(t.io.ctx, buf, 1u << 20) != 1 << 20) {
			snprintf(why, whylen, "write: %s", t.err);
			migrate_tls_close(&t);
			goto out;
		}
	if (verbose)
		printf("  layer %s%s: %llu stream writes, %llu SSL_write calls, %llu sends\n",
	       migrate_tls_suite(&t), no_coalesce ? ", one send per record" : "",
	       (unsigned long long)t.writes, (unsigned long long)t.ssl_writes,
	       (unsigned long long)t.sends);
	migrate_tls_close(&t);
	shutdown(fd, SHUT_WR);
	pthread_join(th, NULL);
	joined = 1;
	*mibs = (double)LAYER_MIB / ((vm__now_ns() - t0) / 1e9);
	if (cpu)
		*cpu = (cpu_ns() - c0) / 1e6;
	if (s.got != (uint64_t)LAYER_MIB << 20) {
		snprintf(why, whylen, "sent %u MiB, received %llu bytes: %s", LAYER_MIB,
			 (unsigned long long)s.got, s.why);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) {
		shutdown(fd, SHUT_RDWR);
		close(fd);
	}
	if (!joined)
		pthread_join(th, NULL);
	if (rc < 0 && s.why[0] && !strstr(why, s.why))
		snprintf(why + strlen(why), whylen - strlen(why), " (target: %s)", s.why);
	close(s.lfd);
	SSL_CTX_free(s.ctx);
	SSL_CTX_free(cctx);
	free(buf);
	return rc;
}

/* ---- the cipher alone ---- */

/* MiB/s of one thread sealing 16 KiB records (a TLS record's size) with
 * suite's AEAD, CPU time: what the suite itself costs, without the
 * sockets that dominate the layer's figures. */
static double seal_rate(const char *suite)
{
	const EVP_CIPHER *c = strstr(suite, "256") ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
	static uint8_t rec[16384 + 16];
	uint8_t key[32] = { 1 }, iv[12] = { 2 }, tag[16];
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	uint64_t c0 = cpu_ns(), n;
	int len;

	for (n = 0; n < 16384; n++) { /* 256 MiB */
		iv[11] = (uint8_t)n;
		if (!x || EVP_EncryptInit_ex(x, c, NULL, key, iv) != 1 ||
		    EVP_EncryptUpdate(x, rec, &len, rec, 16384) != 1 ||
		    EVP_EncryptFinal_ex(x, rec + len, &len) != 1 ||
		    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, sizeof tag, tag) != 1)
			fail("EVP", suite);
	}
	EVP_CIPHER_CTX_free(x);
	return 256.0 / ((cpu_ns() - c0) / 1e9);
}

/* ---- a move ---- */

static void *run_guest(void *vm)
{
	vm__run(vm);
	return NULL;
}

/* One move of a freshly booted filled guest over plain TCP (suite NULL)
 * or TCP + migrate_tls; exits on any failure. */
static void move(const char *suite, const char *args, double ceiling)
{
	struct migrate_policy pol = { .no_shrink_stop = 1 };
	struct tls_move_target tgt = { .timeout_ms = TIMEOUT_MS };
	struct migrate_report rep;
	struct migrate_conn conn;
	struct migrate_tls tls;
	const struct stream_io *io;
	SSL_CTX *cctx = NULL;
	FILE *con_a = NULL, *con_b = NULL;
	struct vm *a;
	pthread_t run;
	uint16_t port;
	char want[256], why[600], name[64];
	const char *end;
	int fd, rc;

	snprintf(name, sizeof name, "%s", suite ? suite : "plain TCP");
	if (test_workload_ref(ref_prog, args, want, sizeof want, why, sizeof why) < 0)
		fail("workload_ref", why);
	if (!(a = test_vm_new(256ull << 20, 2, NULL, NULL, &con_a, why, sizeof why)) ||
	    !(tgt.vm = test_vm_new(256ull << 20, 2, NULL, NULL, &con_b, why, sizeof why)))
		fail("create VM", why);
	if (test_vm_load(a, guest_elf, args) < 0)
		fail("boot", a->err);
	pthread_create(&run, NULL, run_guest, a);
	if (test_console_wait(con_a, "user: fill written", 300) < 0)
		fail(name, "no \"user: fill written\" on the console in 300 s");
	if (suite) {
		tgt.ctx = ctx_of("a", suite, 1, 0, 0);
		cctx = ctx_of("b", suite, 0, 0, 0);
		memset(tgt.id, 3, sizeof tgt.id);
		memset(tgt.token, 9, sizeof tgt.token);
	}
	if ((tgt.lfd = tls_move_listen(&port)) < 0)
		fail("listen", strerror(errno));
	tls_move_target_start(&tgt);
	if ((fd = tls_move_dial(port)) < 0)
		fail("connect", strerror(errno));
	if (suite) {
		if (migrate_preamble_write(fd, tgt.id, TIMEOUT_MS, why, sizeof why) < 0 ||
		    migrate_tls_connect(&tls, cctx, fd, TIMEOUT_MS, tgt.token, why, sizeof why) < 0)
			fail(name, why);
		io = &tls.io;
	} else {
		migrate_conn_init(&conn, fd, TIMEOUT_MS);
		io = &conn.io;
	}
	/* the handshake is in the total: the direct path pays it per move */
	rc = migrate_send(a, io, &pol, &rep);
	if (suite)
		migrate_tls_close(&tls);
	close(fd);
	if (rc < 0) {
		pthread_join(tgt.thread, NULL);
		fprintf(stderr, "target: %s\n", tgt.why);
		fail(name, rep.err);
	}
	vm__poweroff(a, VM_EXIT_POWEROFF, 0);
	pthread_join(run, NULL);
	vm__destroy(a);
	fclose(con_a);
	pthread_join(tgt.thread, NULL);
	if (!tgt.ran)
		fail(name, tgt.why);
	if (test_vm_check_end(tgt.vm, con_b, want, &end) < 0)
		fail(name, end);
	printf("  move %-24s %7.1f MiB in %3u rounds, total %7.1f ms, downtime %6.2f ms, "
	       "%6.0f MiB/s = %4.1f %% of TCP; checksum right\n", name,
	       rep.total_bytes / 1048576.0, rep.rounds, rep.total_ns / 1e6, rep.downtime_ns / 1e6,
	       rep.total_bytes / 1048576.0 / (rep.total_ns / 1e9),
	       100.0 * rep.total_bytes / 1048576.0 / (rep.total_ns / 1e9) / ceiling);
	fflush(stdout);
	vm__destroy(tgt.vm);
	fclose(con_b);
	SSL_CTX_free(tgt.ctx);
	SSL_CTX_free(cctx);
	close(tgt.lfd);
}

int main(int argc, char **argv)
{
	unsigned fill = argc > 5 ? (unsigned)atoi(argv[5]) : 200, steps = argc > 6 ?
		(unsigned)atoi(argv[6]) : 30000, i, c;
	char line[512], args[256], why[600];
	double ceiling, rate, rates[2][2][LAYER_RUNS], cpus[2][2][LAYER_RUNS];
	unsigned r;
	FILE *up;

	if (argc < 5 || argc > 7)
		fail("usage", "bench_migrate_tls GUEST-ELF WORKLOAD-REF TLS-CERTS-SH TCP-LOOPBACK "
		     "[FILL_MIB] [STEPS]");
	if (test_no_kvm())
		return TEST_SKIP;
	guest_elf = argv[1];
	ref_prog = argv[2];
	snprintf(dir, sizeof dir, "/tmp/bench_migrate_tls.XXXXXX");
	if (!mkdtemp(dir))
		fail("temp dir", strerror(errno));
	if (tls_move_certs(argv[3], dir, "ca a b", why, sizeof why) < 0)
		fail("certificates", why);
	if ((up = popen("uptime", "r")) && fgets(line, sizeof line, up))
		printf("uptime:%s", line);
	if (up)
		pclose(up);
	ceiling = run_loopback(argv[4], "2048", line, sizeof line);
	printf("  %s\n", line);
	snprintf(args, sizeof args, "1024 --tls '%s'", dir);
	run_loopback(argv[4], args, line, sizeof line);
	printf("  %s\n", line);
	/* interleaved and repeated: the machine's load drifts within seconds */
	for (r = 0; r < LAYER_RUNS; r++)
		for (i = 0; i < 2; i++)
			for (c = 0; c < 2; c++)
				if (layer(suites[i], 0, c, &rates[i][c][r], &cpus[i][c][r], r == 0, why,
					  sizeof why) < 0)
					fail("layer", why);
	for (i = 0; i < 2; i++)
		for (c = 0; c < 2; c++) {
			qsort(rates[i][c], LAYER_RUNS, sizeof rates[i][c][0], cmp_double);
			qsort(cpus[i][c], LAYER_RUNS, sizeof cpus[i][c][0], cmp_double);
			printf("  layer %s%s: %u MiB, median %.0f MiB/s = %.1f %% of TCP (%u runs: "
			       "%.0f-%.0f), CPU %.0f ms (both ends, median)\n", suites[i],
			       c ? " (one send per record)" : "", LAYER_MIB, rates[i][c][LAYER_RUNS / 2],
			       100 * rates[i][c][LAYER_RUNS / 2] / ceiling, LAYER_RUNS, rates[i][c][0],
			       rates[i][c][LAYER_RUNS - 1], cpus[i][c][LAYER_RUNS / 2]);
		}
	for (i = 0; i < 2; i++)
		printf("  seal %s: %.0f MiB/s (one thread, CPU time, 16 KiB records)\n", suites[i],
		       seal_rate(suites[i]));
	migrate_tls_kernel_ulp(why, sizeof why);
	printf("  kTLS: kernel: %s\n", why);
	if (layer(suites[0], 1, 0, &rate, NULL, 0, why, sizeof why) < 0)
		printf("  kTLS: SSL_OP_ENABLE_KTLS: %s\n", why);
	else
		printf("  kTLS: engaged: %.0f MiB/s\n", rate);
	fflush(stdout);
	if (!fill) {
		cleanup(); /* FILL_MIB 0: the TLS rows only */
		return 0;
	}
	snprintf(args, sizeof args, "seed=11 steps=%u mem=16M fill=%uM", steps, fill);
	printf("  guest: --vcpus 2 --memory 256M, %s\n", args);
	move(NULL, args, ceiling);
	for (i = 0; i < 2; i++)
		move(suites[i], args, ceiling);
	cleanup();
	return 0;
}
