/* test_migrate.c: live migration of the reference guest between two VMs in one process: once, back and forth, between personalities, and refused by the target */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "personality_kvm.h"
#include "vm_sites.h"
#include "../lib/test_vm.h"

/*
 * Usage: test_migrate once|pingpong|refuse GUEST-ELF WORKLOAD-REF
 *        test_migrate personalities GUEST-ELF WORKLOAD-REF RUNTIME-ELF RUNTIME-ALT-ELF
 *
 * The guest runs `seed=S steps=N` (about 0.35 ms a step here) on a source
 * VM; once its console shows progress, migrate_send() streams it over a
 * socketpair to a fresh target VM whose thread runs migrate_receive() and
 * then the guest.  The target must print exactly workload_ref's line and
 * power off with 0; the source never prints it.
 *
 *   once      one migration of a 256 MiB guest, figures printed
 *   pingpong  five migrations A -> B -> A ... of a 64 MiB guest, 2 vCPUs
 *   refuse    the target refuses (a corrupted MACHINE_STATE byte, then a
 *             target that hangs up mid-stream): migrate_send fails, the
 *             source resumes and finishes right, the target never ran
 *   personalities  a 2-vCPU 64 MiB guest booted native moves native ->
 *             kvm -> native -> kvm -> kvm -> native: each target
 *             re-patches every site, kvm targets install the runtime
 *             beneath the running guest; every site must hold the
 *             target's bytes after each move.  The kvm -> kvm move is a
 *             runtime upgrade: the target loads RUNTIME-ALT-ELF, a build
 *             whose device state has another internal layout
 */
#define TIMEOUT_MS 20000

struct guest {
	struct vm *vm;
	FILE *con;
	pthread_t thread;
	int thread_ok;
	/* target side */
	struct migrate_conn conn;
	int cut_after;	/* refuse test: the target's reads fail after this many bytes */
	uint64_t got;
	int rc, ran;
	char why[512];
};

static const char *guest_elf, *ref_prog, *runtime_elf, *runtime_alt, *runtime_next;
static int target_kvm; /* the next target VM runs the kvm personality */

static int fail(const char *what, const char *why)
{
	exit(test_fail(what, why));
}

static void *run_guest(void *arg)
{
	struct guest *g = arg;

	vm__run(g->vm);
	g->ran = 1;
	return NULL;
}

static struct vm *new_vm(struct guest *g, uint64_t mem, unsigned cpus)
{
	char why[256];

	memset(g, 0, sizeof *g);
	g->vm = test_vm_new(mem, cpus, target_kvm ? runtime_next : NULL, NULL, &g->con, why,
			    sizeof why);
	if (!g->vm)
		fail("create VM", why);
	return g->vm;
}

static void boot(struct guest *g, uint64_t mem, unsigned cpus, const char *args)
{
	new_vm(g, mem, cpus);
	if (test_vm_load(g->vm, guest_elf, args) < 0)
		fail("boot", g->vm->err);
	pthread_create(&g->thread, NULL, run_guest, g);
	g->thread_ok = 1;
}

/* Wait until the guest printed (count) progress lines: it is mid-run. */
static void wait_ticks(struct guest *g, int count)
{
	if (test_console_wait_ticks(g->con, count - 1, 30) < 0)
		fail("waiting for progress", "the guest printed no tick line in 30 s");
}

/* ---- the target: receive, then run the guest on its own thread ---- */

/* refuse test: a target whose connection breaks after cut_after bytes */
static ssize_t cut_read(void *ctx, void *buf, size_t len)
{
	struct guest *g = ctx;
	ssize_t n;

	if (g->got >= (uint64_t)g->cut_after) {
		errno = ECONNRESET;
		return -1;
	}
	if (len > (uint64_t)g->cut_after - g->got)
		len = (size_t)((uint64_t)g->cut_after - g->got);
	n = g->conn.io.read(g->conn.io.ctx, buf, len);
	if (n > 0)
		g->got += (uint64_t)n;
	return n;
}

static ssize_t cut_write(void *ctx, const void *buf, size_t len)
{
	struct guest *g = ctx;

	return g->conn.io.write(g->conn.io.ctx, buf, len);
}

static void *receive(void *arg)
{
	struct guest *g = arg;
	struct stream_io cut = { g, cut_read, cut_write };

	g->rc = migrate_receive(g->vm, g->cut_after ? &cut : &g->conn.io, g->why, sizeof g->why);
	/* done with the connection either way; a refusing target hangs up so
	 * that a sender still writing fails at once */
	close(g->conn.fd);
	if (g->rc == 0) {
		vm__run(g->vm);
		g->ran = 1;
	}
	return NULL;
}

/* ---- the sender side's wire, with an optional fault ---- */

/* Watches the records going out and replaces one MACHINE_STATE body byte. */
struct corrupter {
	struct migrate_conn *conn;
	uint8_t hdr[16];
	unsigned hdr_have;
	uint64_t left; /* body + padding bytes of the current record */
	uint32_t type;
	uint64_t body_pos;
	int done;
};

/* Advance the record parser over buf[0..n), patching the byte it targets. */
static void corrupt_scan(struct corrupter *c, uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (c->left) {
			/* Field number 0 with wire type 7: no protobuf parser accepts it. */
			if (c->type == STREAM_REC_MACHINE_STATE && c->body_pos == 0 && !c->done) {
				buf[i] = 0x07;
				c->done = 1;
			}
			c->body_pos++;
			c->left--;
			continue;
		}
		c->hdr[c->hdr_have++] = buf[i];
		if (c->hdr_have == 16) {
			uint64_t blen;

			memcpy(&c->type, c->hdr, 4); /* little-endian host */
			memcpy(&blen, c->hdr + 8, 8);
			c->left = (blen + 7) & ~7ull;
			c->body_pos = 0;
			c->hdr_have = 0;
		}
	}
}

static ssize_t corrupt_write(void *ctx, const void *buf, size_t len)
{
	struct corrupter *c = ctx, saved = *c;
	uint8_t copy[4096];
	size_t n = len < sizeof copy ? len : sizeof copy;
	ssize_t w;

	memcpy(copy, buf, n);
	corrupt_scan(c, copy, n);
	w = c->conn->io.write(c->conn->io.ctx, copy, n);
	/* the parser may only move over what really went out */
	*c = saved;
	if (w > 0)
		corrupt_scan(c, copy, (size_t)w);
	return w;
}

static ssize_t corrupt_read(void *ctx, void *buf, size_t len)
{
	struct corrupter *c = ctx;

	return c->conn->io.read(c->conn->io.ctx, buf, len);
}

/* Move the guest from `from` to a new VM in `to`; returns migrate_send's rc. */
static int migrate(struct guest *from, struct guest *to, uint64_t mem, int fault, int full,
		   struct migrate_report *rep)
{
	struct migrate_policy pol = { .no_shrink_stop = 1, .send_zero_pages = full };
	struct migrate_conn sconn;
	struct corrupter cor = { 0 };
	struct stream_io wire;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair", strerror(errno));
	new_vm(to, mem, from->vm->nr_vcpus);
	migrate_conn_init(&to->conn, sv[1], TIMEOUT_MS);
	migrate_conn_init(&sconn, sv[0], TIMEOUT_MS);
	if (fault == 2)
		to->cut_after = 256 << 10; /* inside round 0's pages */
	pthread_create(&to->thread, NULL, receive, to);
	to->thread_ok = 1;
	cor.conn = &sconn;
	wire = (struct stream_io){ &cor, corrupt_read, corrupt_write };
	if (fault == 1)
		rc = migrate_send(from->vm, &wire, &pol, rep);
	else
		rc = migrate_send(from->vm, &sconn.io, &pol, rep);
	if (rc == 0) {
		/* confirmed: the target runs the guest, the source is ours to end */
		vm__poweroff(from->vm, VM_EXIT_POWEROFF, 0);
		pthread_join(from->thread, NULL);
		vm__destroy(from->vm);
		fclose(from->con);
		from->vm = NULL;
		close(sv[0]);
	} else {
		/* hanging up is how a failed sender tells the target: it sees the
		 * stream end early, refuses, and never runs */
		close(sv[0]);
		pthread_join(to->thread, NULL);
		to->thread_ok = 0;
	}
	return rc;
}

/* The guest in g must end with power-off 0 and the reference line. */
static void check_end(struct guest *g, const char *want, const char *who)
{
	const char *why;

	pthread_join(g->thread, NULL);
	if (test_vm_check_end(g->vm, g->con, want, &why) < 0)
		fail(who, why);
}

static void reference(const char *args, char *want, size_t len)
{
	char why[600];

	if (test_workload_ref(ref_prog, args, want, len, why, sizeof why) < 0)
		fail("workload_ref", why);
}

static int test_once(void)
{
	const char *args = "seed=11 steps=20000";
	struct guest a, b, c;
	struct migrate_report rep, full;
	char want[256], text[65536];

	reference(args, want, sizeof want);
	boot(&a, 256ull << 20, 1, args);
	wait_ticks(&a, 1);
	if (migrate(&a, &b, 256ull << 20, 0, 0, &rep) < 0)
		fail("migrate_send", rep.err);
	/* Then on to a third VM sending every page, zero or not: the figures
	 * of a target whose RAM is not known to be fresh. */
	test_sleep_ms(300);
	if (migrate(&b, &c, 256ull << 20, 0, 1, &full) < 0)
		fail("migrate_send (all pages)", full.err);
	check_end(&c, want, "target");
	printf("test_migrate: once (256 MiB guest, zero pages skipped):\n");
	migrate_report_print(&rep, stdout);
	printf("test_migrate: again (256 MiB guest, every page sent):\n");
	migrate_report_print(&full, stdout);
	test_console(c.con, text, sizeof text);
	if (strstr(text, "guest: reference kernel up"))
		fail("target console", "the target booted the guest again");
	printf("test_migrate: ok: the target finished: %s", want);
	vm__destroy(c.vm);
	return 0;
}

static int test_pingpong(void)
{
	/* long enough that five migrations 200 ms apart fit even on a busy host */
	const char *args = "seed=3 steps=30000";
	struct guest g[2];
	struct migrate_report rep;
	uint64_t down_max = 0, total = 0, t0;
	char want[256];
	int i, cur = 0;

	reference(args, want, sizeof want);
	t0 = vm__now_ns();
	boot(&g[0], 64ull << 20, 2, args); /* and the AP's state with it */
	wait_ticks(&g[0], 1);
	for (i = 0; i < 5; i++) {
		test_sleep_ms(200);
		if (migrate(&g[cur], &g[!cur], 64ull << 20, 0, 0, &rep) < 0) {
			char text[65536];

			/* a guest that ended early: show how (crash, power-off) */
			test_console(g[cur].con, text, sizeof text);
			fprintf(stderr, "%s\nexit kind %d status %d: %s\n", text,
				(int)g[cur].vm->exit_kind, g[cur].vm->exit_status, g[cur].vm->err);
			fail("migrate_send", rep.err);
		}
		printf("test_migrate: pingpong %d at %.2f s: %s -> %s, %u rounds, %llu bytes, total %.1f ms, "
		       "downtime %.3f ms\n", i + 1, (vm__now_ns() - t0) / 1e9, cur ? "B" : "A", cur ? "A" : "B", rep.rounds,
		       (unsigned long long)rep.total_bytes, rep.total_ns / 1e6,
		       rep.downtime_ns / 1e6);
		if (rep.downtime_ns > down_max)
			down_max = rep.downtime_ns;
		total += rep.total_ns;
		cur = !cur;
	}
	check_end(&g[cur], want, "guest after 5 migrations");
	printf("test_migrate: ok: 5 migrations (max downtime %.3f ms, %.1f ms in all), then %s",
	       down_max / 1e6, total / 1e6, want);
	vm__destroy(g[cur].vm);
	return 0;
}

static int test_refuse(void)
{
	const char *args = "seed=8 steps=15000";
	struct guest a, b;
	struct migrate_report rep;
	char want[256], text[4096];
	int fault;

	reference(args, want, sizeof want);
	boot(&a, 64ull << 20, 1, args);
	wait_ticks(&a, 1);
	for (fault = 1; fault <= 2; fault++) {
		if (migrate(&a, &b, 64ull << 20, fault, 0, &rep) == 0)
			fail("refusal", "migrate_send succeeded on a broken stream");
		printf("test_migrate: fault %d: migrate_send: %s\n", fault, rep.err);
		printf("test_migrate: fault %d: target: %s\n", fault, b.why);
		if (b.rc == 0 || b.ran)
			fail("refusal", "the target accepted or ran the guest");
		if (fault == 1 && !rep.resumed)
			fail("refusal", "the source was not resumed");
		if (!strstr(rep.err, "target refused"))
			fail("refusal", "the sender did not relay the target's reason");
		test_console(b.con, text, sizeof text);
		if (text[0])
			fail("refusal", "the target printed something: it ran");
		vm__destroy(b.vm);
		fclose(b.con);
		test_sleep_ms(300);
	}
	check_end(&a, want, "source after refusals");
	printf("test_migrate: ok: both refusals left the source running; it finished: %s", want);
	vm__destroy(a.vm);
	return 0;
}

/* Every site of g's guest holds `want`'s bytes (pvsites' classification). */
static void check_sites(struct guest *g, const char *want)
{
	struct pvsite *sites;
	size_t n, i, bad = 0;
	const struct personality *p = personality_find(want);
	unsigned idx = 0;

	while (personality_at(idx) && personality_at(idx) != p)
		idx++;

	if (vm__sites_load(g->vm, g->vm->sites_addr, g->vm->sites_size, &sites, &n) < 0)
		fail("sites", g->vm->err);
	for (i = 0; i < n; i++) {
		unsigned mask = 0;
		const uint8_t *at = vm__gpa(g->vm, sites[i].addr, sites[i].len);

		if (!at || repatch_classify_all(&sites[i], at, &mask) < 0 ||
		    !(mask & (1u << idx)))
			bad++;
	}
	free(sites);
	if (!n || bad) {
		fprintf(stderr, "test_migrate: %zu of %zu sites do not hold %s\n", bad, n, want);
		fail("sites", "a site does not hold the target personality's bytes");
	}
	printf("test_migrate: all %zu sites hold %s\n", n, want);
}

/* The runtime's device state (`dev` in rt_devices.c): "address size" from nm. */
static void dev_layout(const char *elf, char *out, size_t len)
{
	char cmd[512], line[256];
	FILE *p;

	snprintf(cmd, sizeof cmd, "nm -S '%s'", elf);
	out[0] = 0;
	if (!(p = popen(cmd, "r")))
		fail("nm", strerror(errno));
	while (fgets(line, sizeof line, p)) {
		char addr[32], size[32], type[4], name[64];

		if (sscanf(line, "%31s %31s %3s %63s", addr, size, type, name) == 4 &&
		    !strcmp(name, "dev"))
			snprintf(out, len, "%s+%s", addr, size);
	}
	pclose(p);
	if (!out[0])
		fail("nm", "no symbol 'dev' in a runtime build");
}

static int test_personalities(void)
{
	static const char *const order[] = { "kvm", "native", "kvm", "kvm", "native" };
	char lay_a[80], lay_b[80];
	const char *args = "seed=5 steps=150000";
	const char *cur_name = "native";
	struct guest g[2];
	struct migrate_report rep;
	char want[256];
	unsigned i;
	int cur = 0;

	dev_layout(runtime_elf, lay_a, sizeof lay_a);
	dev_layout(runtime_alt, lay_b, sizeof lay_b);
	if (!strcmp(lay_a, lay_b))
		fail("runtime builds", "the two builds lay out their device state alike");
	printf("test_migrate: runtime device state at %s, the upgrade's at %s\n", lay_a, lay_b);
	reference(args, want, sizeof want);
	target_kvm = 0;
	boot(&g[0], 64ull << 20, 2, args);
	wait_ticks(&g[0], 1);
	check_sites(&g[0], "native");
	for (i = 0; i < sizeof order / sizeof *order; i++) {
		test_sleep_ms(300);
		target_kvm = !strcmp(order[i], "kvm");
		/* the second kvm in a row is the upgrade to the other build */
		runtime_next = target_kvm && !strcmp(cur_name, "kvm") ? runtime_alt : runtime_elf;
		if (migrate(&g[cur], &g[!cur], 64ull << 20, 0, 0, &rep) < 0) {
			char text[65536];

			test_console(g[cur].con, text, sizeof text);
			fprintf(stderr, "%s\nexit kind %d status %d: %s\ntarget: %s\n", text,
				(int)g[cur].vm->exit_kind, g[cur].vm->exit_status, g[cur].vm->err,
				g[!cur].why);
			fail("migrate_send", rep.err);
		}
		printf("test_migrate: move %u: %s -> %s, %u rounds, %llu bytes, total %.1f ms, "
		       "downtime %.3f ms%s\n", i + 1, cur_name, order[i], rep.rounds,
		       (unsigned long long)rep.total_bytes, rep.total_ns / 1e6, rep.downtime_ns / 1e6,
		       runtime_next == runtime_alt && target_kvm ? " (runtime upgrade: the other build)" : "");
		cur = !cur;
		cur_name = order[i];
		check_sites(&g[cur], cur_name);
		wait_ticks(&g[cur], 1); /* it runs on: progress on the new VM's console */
	}
	check_end(&g[cur], want, "guest after the personality moves");
	printf("test_migrate: ok: native -> kvm -> native -> kvm -> kvm (upgrade) -> native, then %s",
	       want);
	vm__destroy(g[cur].vm);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "personalities")) {
		runtime_elf = argv[4];
		runtime_alt = argv[5];
		argc = 4;
	}
	if (argc != 4)
		fail("usage", "test_migrate once|pingpong|refuse GUEST-ELF WORKLOAD-REF");
	if (test_no_kvm())
		return TEST_SKIP;
	guest_elf = argv[2];
	ref_prog = argv[3];
	if (!strcmp(argv[1], "once"))
		return test_once();
	if (!strcmp(argv[1], "pingpong"))
		return test_pingpong();
	if (!strcmp(argv[1], "refuse"))
		return test_refuse();
	if (!strcmp(argv[1], "personalities") && runtime_elf)
		return test_personalities();
	return fail("usage", argv[1]);
}
