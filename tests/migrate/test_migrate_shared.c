/* test_migrate_shared.c: in-place moves that share the guest's RAM (migrate_shared.c) between two VMs of one process: every personality pair, and a target that fails or dies before and after re-patching the shared RAM */
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
 * Usage: test_migrate_shared moves|faults GUEST-ELF WORKLOAD-REF RUNTIME-ELF
 *
 * A 2-vCPU 256 MiB guest booted native runs `seed=S steps=N`; each move
 * hands its RAM to a fresh VM over a socketpair (the memory file goes by
 * SCM_RIGHTS, no page is sent) and the target runs it.
 *
 *   moves   native -> native -> kvm -> native -> kvm -> kvm -> native:
 *           no page sent, every site holds the target's bytes after each
 *           move, the figures of each commit printed; then one move that
 *           copies the RAM (as across hosts) from the VM that received
 *           it shared; the final checksum workload_ref's
 *   faults  native -> kvm with a target that refuses after READY (before
 *           GO), one that refuses after GO with the shared RAM already
 *           re-patched to kvm, and one that dies there (connection closed,
 *           thread gone, nothing said): each time the source resumes,
 *           every site holds native bytes again, the guest makes progress;
 *           then a move that works, a kvm source whose native target dies
 *           after re-patching (the sites back to kvm, the runtime resumes),
 *           and the right checksum at the end
 */
#define TIMEOUT_MS 20000
#define MEM (256ull << 20)

struct guest {
	struct vm *vm;
	FILE *con;
	pthread_t thread;
	/* target side */
	struct migrate_conn conn;
	struct migrate_share share;
	const char *fault; /* "fail@ready", "fail@repatched", "die@repatched" or NULL */
	int rc;
	char why[512];
};

static const char *guest_elf, *ref_prog, *runtime_elf;

static int fail(const char *what, const char *why)
{
	exit(test_fail(what, why));
}

static void new_vm(struct guest *g, int kvm)
{
	char why[256];

	memset(g, 0, sizeof *g);
	g->vm = test_vm_new(MEM, 2, kvm ? runtime_elf : NULL, NULL, &g->con, why, sizeof why);
	if (!g->vm)
		fail("create VM", why);
}

static int ticks(struct guest *g)
{
	return test_console_ticks(g->con);
}

/* Wait until the console has more "tick=" lines than (after). */
static void wait_ticks(struct guest *g, int after)
{
	if (test_console_wait_ticks(g->con, after, 30) < 0)
		fail("progress", "no new tick line in 30 s");
}

/* Every site holds `want`'s bytes. */
static void check_sites(struct vm *vm, const char *want)
{
	const struct personality *p = personality_find(want);
	struct pvsite *sites;
	unsigned idx = 0, mask;
	size_t n, i, bad = 0;

	while (personality_at(idx) && personality_at(idx) != p)
		idx++;
	if (vm__sites_load(vm, vm->sites_addr, vm->sites_size, &sites, &n) < 0)
		fail("sites", vm->err);
	for (i = 0; i < n; i++) {
		const uint8_t *at = vm__gpa(vm, sites[i].addr, sites[i].len);

		mask = 0;
		if (!at || repatch_classify_all(&sites[i], at, &mask) < 0 || !(mask & (1u << idx)))
			bad++;
	}
	free(sites);
	if (!n || bad) {
		fprintf(stderr, "test_migrate_shared: %zu of %zu sites do not hold %s\n", bad, n,
			want);
		fail("sites", "a site does not hold the expected personality's bytes");
	}
}

/* ---- the target ---- */

static int test_hook(void *ctx, const char *step)
{
	struct guest *g = ctx;

	if (!g->fault || strcmp(strchr(g->fault, '@') + 1, step))
		return 0;
	if (!strncmp(g->fault, "die", 3)) {
		/* as a process that was killed: its mapping and its end of the
		 * connection go, nothing more is said or done */
		vm__ram_detach(g->vm);
		close(g->conn.fd);
		pthread_exit(NULL);
	}
	return -1;
}

static void *receive(void *arg)
{
	struct guest *g = arg;

	g->share = (struct migrate_share){ .conn = &g->conn, .test_hook = test_hook,
					   .test_ctx = g };
	g->rc = migrate_receive_ex(g->vm, &g->conn.io, &g->share, g->why, sizeof g->why);
	migrate_boost_end(&g->share.boost);
	close(g->conn.fd);
	if (g->rc == 0)
		vm__run(g->vm);
	return NULL;
}

/* One shared move from `from` to a new VM in `to` (fault "copy": RAM
 * copied, as across hosts); migrate_send's rc. */
static int move(struct guest *from, struct guest *to, int kvm, const char *fault,
		struct migrate_report *rep, struct migrate_share *sh)
{
	struct migrate_policy pol = { .no_shrink_stop = 1 };
	struct migrate_conn sconn;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair", strerror(errno));
	new_vm(to, kvm);
	to->fault = fault;
	migrate_conn_init(&to->conn, sv[1], TIMEOUT_MS);
	migrate_conn_init(&sconn, sv[0], TIMEOUT_MS);
	*sh = (struct migrate_share){ .conn = &sconn };
	pol.share = fault && !strcmp(fault, "copy") ? NULL : sh;
	if (!pol.share)
		to->fault = NULL;
	pthread_create(&to->thread, NULL, receive, to);
	rc = migrate_send(from->vm, &sconn.io, &pol, rep);
	migrate_boost_end(&sh->boost);
	close(sv[0]);
	if (rc == 0) {
		vm__ram_detach(from->vm);
		vm__poweroff(from->vm, VM_EXIT_POWEROFF, 0);
		pthread_join(from->thread, NULL);
		vm__destroy(from->vm);
		fclose(from->con);
		from->vm = NULL;
		return 0;
	}
	pthread_join(to->thread, NULL);
	vm__destroy(to->vm);
	fclose(to->con);
	to->vm = NULL;
	return rc;
}

static void reference(const char *args, char *want, size_t len)
{
	char why[600];

	if (test_workload_ref(ref_prog, args, want, len, why, sizeof why) < 0)
		fail("workload_ref", why);
}

static void boot(struct guest *g, const char *args)
{
	new_vm(g, 0);
	if (test_vm_load(g->vm, guest_elf, args) < 0)
		fail("boot", g->vm->err);
	pthread_create(&g->thread, NULL, test_vm_runner, g->vm);
	wait_ticks(g, 0);
}

static void check_end(struct guest *g, const char *want)
{
	const char *why;

	pthread_join(g->thread, NULL);
	if (test_vm_check_end(g->vm, g->con, want, &why) < 0)
		fail("the guest's end", why);
	printf("test_migrate_shared: ok: %s", want);
	vm__destroy(g->vm);
}

static void print_move(const char *what, const struct migrate_report *rep,
		       const struct migrate_share *sh, const struct guest *to)
{
	printf("test_migrate_shared: %s: %llu pages, %llu bytes, downtime %.3f ms (pause %.3f, "
	       "state sent %.3f, READY %.3f later, OK %.3f after READY; target: applied %.3f ms "
	       "after the state was sent, GO %.3f ms after READY, RAM mapped %.3f, sites %.3f)\n",
	       what, (unsigned long long)rep->total_pages, (unsigned long long)rep->total_bytes,
	       rep->downtime_ns / 1e6, rep->pause_ns / 1e6, rep->sent_ns / 1e6,
	       sh->ready_ns / 1e6, (sh->go_ns - sh->ready_ns) / 1e6,
	       ((int64_t)to->share.t_applied - (int64_t)sh->t_sent) / 1e6,
	       (to->share.t_go - to->share.t_ready) / 1e6,
	       (to->share.t_mapped - to->share.t_go) / 1e6,
	       (to->share.t_repatched - to->share.t_mapped) / 1e6);
}

static int test_moves(void)
{
	static const char *const order[] = { "native", "kvm", "native", "kvm", "kvm", "native" };
	const char *args = "seed=7 steps=150000 fill=64M", *cur_name = "native"; /* outlasts the moves, the copy included */
	struct migrate_report rep;
	struct migrate_share sh;
	struct guest g[2];
	char want[256], what[64];
	unsigned i;
	int cur = 0;

	reference(args, want, sizeof want);
	boot(&g[0], args);
	for (i = 0; i < sizeof order / sizeof *order; i++) {
		test_sleep_ms(200);
		if (move(&g[cur], &g[!cur], !strcmp(order[i], "kvm"), NULL, &rep, &sh) < 0)
			fail("shared move", rep.err);
		snprintf(what, sizeof what, "%s -> %s", cur_name, order[i]);
		print_move(what, &rep, &sh, &g[!cur]);
		if (rep.total_pages)
			fail(what, "pages were sent");
		cur = !cur;
		cur_name = order[i];
		check_sites(g[cur].vm, cur_name);
		wait_ticks(&g[cur], ticks(&g[cur]));
	}
	/* Copied once more, as a move across hosts would: round 0 must find
	 * the pages other VMs wrote into the memory file (its holes, not this
	 * process's page tables, say which are zero). */
	if (move(&g[cur], &g[!cur], 0, "copy", &rep, &sh) < 0)
		fail("copy move", rep.err);
	printf("test_migrate_shared: then copied: %u rounds, %llu pages (%llu zero pages skipped), "
	       "%llu bytes, downtime %.3f ms\n", rep.rounds, (unsigned long long)rep.total_pages,
	       (unsigned long long)rep.zero_pages_skipped, (unsigned long long)rep.total_bytes,
	       rep.downtime_ns / 1e6);
	if (rep.total_pages < 16384)
		fail("copy move", "fewer pages sent than the guest's 64 MiB fill");
	cur = !cur;
	check_end(&g[cur], want);
	return 0;
}

static int test_faults(void)
{
	static const char *const faults[] = { "fail@ready", "fail@repatched", "die@repatched" };
	const char *args = "seed=4 steps=60000 fill=32M";
	struct migrate_report rep;
	struct migrate_share sh;
	struct guest g[2];
	char want[256];
	unsigned i;

	reference(args, want, sizeof want);
	boot(&g[0], args);
	for (i = 0; i < sizeof faults / sizeof *faults; i++) {
		test_sleep_ms(200);
		if (move(&g[0], &g[1], 1, faults[i], &rep, &sh) == 0)
			fail(faults[i], "the move succeeded");
		if (!rep.resumed)
			fail(faults[i], "the source was not resumed");
		printf("test_migrate_shared: %s: %s; committed %d, %u sites put back\n", faults[i],
		       rep.err, sh.committed, sh.sites_restored);
		if (strstr(faults[i], "repatched") && (!sh.committed || !sh.sites_restored))
			fail(faults[i], "the target re-patched the shared RAM, yet no site was put back");
		if (!strcmp(faults[i], "fail@ready") && sh.sites_restored)
			fail(faults[i], "sites changed before the commit");
		check_sites(g[0].vm, "native");
		wait_ticks(&g[0], ticks(&g[0]));
	}
	if (move(&g[0], &g[1], 1, NULL, &rep, &sh) < 0)
		fail("the move after the faults", rep.err);
	print_move("native -> kvm after the faults", &rep, &sh, &g[1]);
	check_sites(g[1].vm, "kvm");
	/* a kvm source: the native target rewrote its sites to native */
	wait_ticks(&g[1], ticks(&g[1]));
	if (move(&g[1], &g[0], 0, "die@repatched", &rep, &sh) == 0 || !rep.resumed ||
	    !sh.sites_restored)
		fail("kvm source, die@repatched", "not refused, not resumed or no site put back");
	printf("test_migrate_shared: kvm -> native, die@repatched: %s; %u sites put back\n",
	       rep.err, sh.sites_restored);
	check_sites(g[1].vm, "kvm");
	wait_ticks(&g[1], ticks(&g[1]));
	check_end(&g[1], want);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		fail("usage", "test_migrate_shared moves|faults GUEST-ELF WORKLOAD-REF RUNTIME-ELF");
	if (test_no_kvm())
		return TEST_SKIP;
	guest_elf = argv[2];
	ref_prog = argv[3];
	runtime_elf = argv[4];
	if (!strcmp(argv[1], "moves"))
		return test_moves();
	if (!strcmp(argv[1], "faults"))
		return test_faults();
	return fail("usage", argv[1]);
}
