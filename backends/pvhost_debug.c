/* pvhost_debug.c: pvhost's inspection tools: signals (RIP samples, counters, RAM dumps), the parking test (--park-test) */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "elfimage.h"
#include "personality_kvm.h"
#include "pvhost_debug.h"
#include "repatch.h"
#include "rt_abi.h"

static pthread_mutex_t pause_mutex = PTHREAD_MUTEX_INITIALIZER;

void pvhost_pause_lock(void)
{
	pthread_mutex_lock(&pause_mutex);
}

void pvhost_pause_unlock(void)
{
	pthread_mutex_unlock(&pause_mutex);
}

/* ---- RAM dumps */

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	unsigned i;

	for (i = 0; i < VM_PAGE_SIZE / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

int pvhost_dump_ram(struct vm *vm, const char *path, char *why, size_t whylen)
{
	uint64_t off;
	ssize_t n = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (off = 0; off < vm->mem_size; off += VM_PAGE_SIZE) {
		if (page_is_zero(vm->mem + off))
			continue;
		n = pwrite(fd, vm->mem + off, VM_PAGE_SIZE, (off_t)off);
		if (n != (ssize_t)VM_PAGE_SIZE)
			goto fail;
	}
	if (ftruncate(fd, (off_t)vm->mem_size) < 0) {
		n = -1;
		goto fail;
	}
	if (close(fd) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
fail:
	snprintf(why, whylen, "%s: %s", path, n >= 0 ? "short write" : strerror(errno));
	close(fd);
	return -1;
}

/* ---- signals */

/*
 * SIGUSR1: print vCPU 0's RIP (and RSP, RFLAGS, CR3) on stderr, to see where
 * a slow guest spends its time (`kill -USR1` it in a loop; a Linux guest's
 * addresses can then be looked up in its kallsyms).  SIGUSR2: the exit
 * counters so far (a benchmark brackets a phase) and, with --dump-ram, a
 * dump of RAM to FILE.<n>.  SIGTERM: power off, so the end-of-run report
 * still prints.  The signals are blocked in every thread and taken by this
 * one with sigwait(), so the pauses they need happen in an ordinary
 * thread, not in a handler.
 */
struct sampler {
	struct vm *vm;
	const char *dump_ram;
	unsigned dumps;
	int done;
	pthread_t thread;
};

static void dump_now(struct sampler *sp)
{
	char path[4096], why[300];

	snprintf(path, sizeof path, "%s.%u", sp->dump_ram, ++sp->dumps);
	pvhost_pause_lock();
	if (vm__pause(sp->vm) < 0) {
		pvhost_pause_unlock();
		return;
	}
	if (pvhost_dump_ram(sp->vm, path, why, sizeof why) < 0)
		fprintf(stderr, "pvhost: dump RAM failed: %s\n", why);
	else
		fprintf(stderr, "pvhost: RAM dumped to %s\n", path);
	vm__resume(sp->vm);
	pvhost_pause_unlock();
}

static void *sampler_thread(void *arg)
{
	static struct vm_vcpu_state st; /* 4 KiB of XSAVE; one sampler */
	struct sampler *sp = arg;
	struct vm *vm = sp->vm;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	while (sigwait(&set, &sig) == 0 && !__atomic_load_n(&sp->done, __ATOMIC_ACQUIRE)) {
		if (sig == SIGTERM) {
			vm__poweroff(vm, VM_EXIT_POWEROFF, 128 + SIGTERM);
			continue;
		}
		if (sig == SIGUSR2) {
			/* all exits, and those the syscall fix caused (a host defect,
			 * docs/KVM-HOST.md), so a benchmark can leave them out */
			fprintf(stderr, "pvhost: exits: %llu pio, %llu mmio, %llu total, %llu syscall-fix\n",
				(unsigned long long)__atomic_load_n(&vm->nr_pio_exits, __ATOMIC_RELAXED),
				(unsigned long long)__atomic_load_n(&vm->nr_mmio_exits, __ATOMIC_RELAXED),
				(unsigned long long)vm__exit_total(vm),
				(unsigned long long)__atomic_load_n(&vm->exits.other, __ATOMIC_RELAXED));
			if (sp->dump_ram && __atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) ==
						    VM_EXIT_NONE)
				dump_now(sp);
			continue;
		}
		/* Once the guest ended, vm__pause would overwrite vm->err. */
		if (__atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE)
			continue;
		pvhost_pause_lock();
		if (vm__pause(vm) < 0) {
			pvhost_pause_unlock();
			continue;
		}
		if (vm__get_vcpu_state(vm, 0, &st) == 0)
			fprintf(stderr, "pvhost: sample %.3f s rip %#llx rsp %#llx rflags %#llx cr3 %#llx\n",
				(double)vm__now_ns() / 1e9, (unsigned long long)st.rip,
				(unsigned long long)st.gpr[VM_RSP], (unsigned long long)st.rflags,
				(unsigned long long)st.cr3);
		vm__resume(vm);
		pvhost_pause_unlock();
	}
	return NULL;
}

struct sampler *sampler_start(struct vm *vm, const char *dump_ram)
{
	struct sampler *sp = calloc(1, sizeof *sp);

	if (!sp)
		return NULL;
	sp->vm = vm;
	sp->dump_ram = dump_ram;
	if (pthread_create(&sp->thread, NULL, sampler_thread, sp) != 0) {
		free(sp);
		return NULL;
	}
	return sp;
}

void sampler_stop(struct sampler *sp)
{
	if (!sp)
		return;
	__atomic_store_n(&sp->done, 1, __ATOMIC_RELEASE);
	pthread_kill(sp->thread, SIGUSR1);
	pthread_join(sp->thread, NULL);
	free(sp);
}

/* ---- the parking test */

struct park_test {
	struct vm *vm;
	unsigned ms;
	int kvm;                        /* personality kvm: a runtime is attached */
	const struct personality *cur;  /* NULL: the rule all non-native ones share */
	uint64_t table_addr, table_size; /* 0: no table to check against */
	struct pvsite *sites;
	long nsites;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	unsigned rounds;
	int unsafe;
	char why[320];
};

/* The retained table, decoded from guest RAM on the first round (it never
 * changes: the runtime rewrites sites, not records). */
static int decode_sites(struct park_test *pt)
{
	struct repatch_err err;
	const void *t;
	long n;

	if (pt->sites || !pt->table_size)
		return 0;
	t = vm__gpa(pt->vm, pt->table_addr, pt->table_size);
	if (!t) {
		snprintf(pt->why, sizeof pt->why, "the .pvsites table %#llx+%#llx is not in RAM",
			 (unsigned long long)pt->table_addr, (unsigned long long)pt->table_size);
		return -1;
	}
	n = pvsites_count(t, pt->table_size, &err);
	if (n >= 0) {
		pt->sites = calloc((size_t)n + 1, sizeof *pt->sites);
		if (!pt->sites) {
			snprintf(pt->why, sizeof pt->why, "out of memory");
			return -1;
		}
		n = pvsites_decode(t, pt->table_size, pt->table_addr, pt->sites, (size_t)n, &err);
	}
	if (n < 0) {
		snprintf(pt->why, sizeof pt->why, "the .pvsites table in guest RAM: %s", err.msg);
		return -1;
	}
	pt->nsites = n;
	return 0;
}

/* 0 if (rip) is a safe point; else -1 with the reason in pt->why. */
static int check_rip(struct park_test *pt, unsigned round, unsigned cpu, uint64_t rip)
{
	struct repatch_err err;
	uint64_t safe;
	long i;

	if (rip >= RT_WINDOW_BASE && rip - RT_WINDOW_BASE < RT_WINDOW_SIZE) {
		snprintf(pt->why, sizeof pt->why, "round %u cpu %u rip=%#llx: inside the runtime "
			 "window", round, cpu, (unsigned long long)rip);
		return -1;
	}
	if (!pt->nsites)
		return 0;
	if (pt->cur) {
		if (repatch_safe_ip(pt->sites, (size_t)pt->nsites, pt->cur, rip, &safe, &err) == 0)
			return 0;
		snprintf(pt->why, sizeof pt->why, "round %u cpu %u rip=%#llx: %s (site at %#llx)",
			 round, cpu, (unsigned long long)rip, err.msg, (unsigned long long)err.addr);
		return -1;
	}
	i = pvsites_lookup(pt->sites, (size_t)pt->nsites, rip);
	if (i < 0 || rip == pt->sites[i].addr)
		return 0;
	snprintf(pt->why, sizeof pt->why, "round %u cpu %u rip=%#llx: inside the %s site at %#llx "
		 "(%u bytes)", round, cpu, (unsigned long long)rip,
		 pvsite_kind_name(pt->sites[i].kind), (unsigned long long)pt->sites[i].addr,
		 pt->sites[i].len);
	return -1;
}

/* One pause: look at every vCPU.  -1 when the test must stop. */
static int park_round(struct park_test *pt)
{
	static struct vm_vcpu_state st; /* 4 KiB of XSAVE; one park thread */
	struct vm *vm = pt->vm;
	struct rt_cpu_state rs;
	unsigned cpu, round = pt->rounds + 1;
	int rc = 0;

	pvhost_pause_lock();
	if (__atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE) {
		pvhost_pause_unlock();
		return -1; /* the guest ended: not a failure */
	}
	if (vm__pause(vm) < 0) {
		if (__atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) == VM_EXIT_NONE) {
			snprintf(pt->why, sizeof pt->why, "round %u: pause failed: %s", round, vm->err);
			pt->unsafe = 1;
		}
		pvhost_pause_unlock();
		return -1;
	}
	if (__atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE) {
		/* the guest ended while we waited: vCPUs stop wherever they are */
		vm__resume(vm);
		pvhost_pause_unlock();
		return -1;
	}
	if (decode_sites(pt) < 0) {
		pt->unsafe = 1;
		rc = -1;
	}
	for (cpu = 0; rc == 0 && cpu < vm->nr_vcpus; cpu++) {
		const char *what;
		uint64_t rip;

		if (vm__get_vcpu_state(vm, cpu, &st) < 0) {
			snprintf(pt->why, sizeof pt->why, "round %u cpu %u: %s", round, cpu, vm->err);
			pt->unsafe = 1;
			rc = -1;
			break;
		}
		memset(&rs, 0, sizeof rs);
		if (pt->kvm)
			vm__kvm_host_cpu_state(vm, cpu, &rs);
		rip = rs.parked ? rs.rip : st.rip;
		what = !st.started ? "offline" : rs.parked ? "parked" :
		       (st.cs.selector & 3) == 3 ? "user" : "kernel";
		fprintf(stderr, "park: round %u cpu %u rip=%#llx (%s)\n", round, cpu,
			(unsigned long long)rip, what);
		if (st.started && check_rip(pt, round, cpu, rip) < 0) {
			pt->unsafe = 1;
			rc = -1;
		}
	}
	pt->rounds = round;
	vm__resume(vm);
	pvhost_pause_unlock();
	return rc;
}

static void *park_thread(void *arg)
{
	struct park_test *pt = arg;
	struct timespec ts;
	uint64_t at;

	pthread_mutex_lock(&pt->lock);
	while (!pt->stop) {
		at = vm__now_ns() + (uint64_t)pt->ms * 1000000u;
		ts.tv_sec = (time_t)(at / 1000000000u);
		ts.tv_nsec = (long)(at % 1000000000u);
		while (!pt->stop && vm__now_ns() < at) /* vm__now_ns is CLOCK_MONOTONIC */
			pthread_cond_clockwait(&pt->cond, &pt->lock, CLOCK_MONOTONIC, &ts);
		if (pt->stop)
			break;
		/* the runtime's boot-time rewrite is not a parkable phase (it
		 * parks only when done, seconds on a loaded host): rounds start
		 * once it said BOOTED */
		if (!vm__kvm_host_booted(pt->vm))
			continue;
		pthread_mutex_unlock(&pt->lock);
		if (park_round(pt) < 0) {
			pthread_mutex_lock(&pt->lock);
			break;
		}
		pthread_mutex_lock(&pt->lock);
	}
	pthread_mutex_unlock(&pt->lock);
	return NULL;
}

struct park_test *park_test_start(struct vm *vm, const char *personality, const char *image,
				  unsigned ms, char *why, size_t whylen)
{
	struct park_test *pt = calloc(1, sizeof *pt);
	struct elfimage img;
	char ewhy[200];

	if (!pt) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pt->vm = vm;
	pt->ms = ms;
	pt->kvm = vm->rt != NULL;
	pt->cur = personality_find(personality);
	if (!pt->cur && strcmp(personality, "native") != 0)
		fprintf(stderr, "park: the repatch library has no '%s' personality yet: checking "
			"the rule every non-native one shares (no IP strictly inside a site)\n",
			personality);
	if (pt->kvm) {
		vm__kvm_host_table(vm, &pt->table_addr, &pt->table_size);
	} else if (elfimage_load(&img, image, ewhy, sizeof ewhy) == 0) {
		if (img.pvsites) {
			pt->table_addr = img.pvsites->addr;
			pt->table_size = img.pvsites->size;
		}
		elfimage_free(&img);
	}
	if (!pt->table_size)
		fprintf(stderr, "park: %s has no .pvsites table: only the window is checked\n",
			image);
	pthread_mutex_init(&pt->lock, NULL);
	pthread_cond_init(&pt->cond, NULL);
	if (pthread_create(&pt->thread, NULL, park_thread, pt) != 0) {
		snprintf(why, whylen, "park test thread: %s", strerror(errno));
		pthread_cond_destroy(&pt->cond);
		pthread_mutex_destroy(&pt->lock);
		free(pt);
		return NULL;
	}
	return pt;
}

int park_test_stop(struct park_test *pt)
{
	int rc;

	pthread_mutex_lock(&pt->lock);
	pt->stop = 1;
	pthread_cond_broadcast(&pt->cond);
	pthread_mutex_unlock(&pt->lock);
	pthread_join(pt->thread, NULL);
	if (pt->unsafe)
		fprintf(stderr, "park: FAILED after %u rounds: %s\n", pt->rounds, pt->why);
	else
		fprintf(stderr, "park: %u rounds, all safe\n", pt->rounds);
	rc = pt->unsafe ? -1 : 0;
	pthread_cond_destroy(&pt->cond);
	pthread_mutex_destroy(&pt->lock);
	free(pt->sites);
	free(pt);
	return rc;
}
