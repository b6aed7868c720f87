/* test_kvm.c: the kvm backend on the real /dev/kvm: boot, console, exit status, irqs, SMP, dirty log, state round trip */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "tap.h"

#define MEM (256ull << 20)
#define PORT_TEST 0x520

static const char *image;

/* ---- helpers */

static struct vm *boot(unsigned vcpus, int console_fd, const char *args)
{
	char cause[256], cmdline[512];
	struct vm *vm = vm__create(&vm_kvm_ops, MEM, vcpus, cause, sizeof cause);

	if (!vm) {
		fprintf(stderr, "test_kvm: create VM failed: %s\n", cause);
		exit(1);
	}
	snprintf(cmdline, sizeof cmdline, "%s%s%s", image, args ? " " : "", args ? args : "");
	if (vm__platform_init(vm, console_fd) < 0 || vm__load_multiboot(vm, image, cmdline) < 0) {
		fprintf(stderr, "test_kvm: boot failed: %s\n", vm->err);
		exit(1);
	}
	return vm;
}

static int console_open(void)
{
	FILE *f = tmpfile();

	if (!f) {
		perror("tmpfile");
		exit(1);
	}
	return dup(fileno(f));
}

static char *console_text(int fd)
{
	static char buf[8192];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int expect_poweroff(struct vm *vm, int status)
{
	CHECK(vm->exit_kind == VM_EXIT_POWEROFF, "exit kind %d (%s)", vm->exit_kind, vm->err);
	CHECK(vm->exit_status == status, "exit status %d, want %d", vm->exit_status, status);
	return vm->exit_kind == VM_EXIT_POWEROFF && vm->exit_status == status;
}

/* ---- hello: console text, command line, exit status */

static void t_hello(void)
{
	int fd = console_open();
	struct vm *vm = boot(1, fd, "alpha beta 3");

	vm__run(vm);
	expect_poweroff(vm, 3);
	CHECK(strstr(console_text(fd), "hello from the guest\n") != NULL, "console: %s",
	      console_text(fd));
	CHECK(strstr(console_text(fd), "cmdline: ") && strstr(console_text(fd), " alpha beta 3\n"),
	      "console: %s", console_text(fd));
	vm__destroy(vm);
	close(fd);
}

/* ---- irq: a stand-in for PIT + PIC (1 kHz, vector 0x20) until the models land */

struct ticker {
	uint64_t next;
	int pending, acked;
};

static uint64_t ticker_poll(void *opaque, uint64_t now)
{
	struct ticker *t = opaque;

	if (now >= t->next) {
		t->pending = 1;
		t->next = now + 1000000;
	}
	return t->next;
}

static int ticker_pending(void *opaque)
{
	return ((struct ticker *)opaque)->pending;
}

static int ticker_ack(void *opaque)
{
	struct ticker *t = opaque;

	t->pending = 0;
	t->acked++;
	return 0x20;
}

static const struct vm_timer_ops ticker_timer = { ticker_poll };
static const struct vm_irq_ops ticker_irq = { ticker_pending, ticker_ack };

static void t_irq(void)
{
	int fd = console_open();
	struct vm *vm = boot(1, fd, NULL);
	struct ticker t = { .next = vm__now_ns() + 1000000 };
	uint64_t t0;

	vm__register_timer(vm, &ticker_timer, &t);
	vm__set_irq_source(vm, &ticker_irq, &t);
	t0 = vm__now_ns();
	vm__run(vm);
	expect_poweroff(vm, 0);
	CHECK(strstr(console_text(fd), "ticks: 5\n") != NULL, "console: %s", console_text(fd));
	CHECK(t.acked >= 5, "%d interrupts delivered", t.acked);
	/* Five 1 ms ticks: a halted vCPU that spun or missed its deadline
	 * would show up here as far more or far less time. */
	printf("irq: %d interrupts in %.2f ms\n", t.acked, (vm__now_ns() - t0) / 1e6);
	vm__destroy(vm);
	close(fd);
}

/* ---- smp: the AP doorbell, 32-bit and real mode */

static void t_smp(void)
{
	int fd = console_open();
	struct vm *vm = boot(2, fd, NULL);

	vm__run(vm);
	expect_poweroff(vm, 0);
	CHECK(strstr(console_text(fd), "ap32 ok\nap16 ok\n") != NULL, "console: %s",
	      console_text(fd));
	vm__destroy(vm);
	close(fd);
}

/* ---- dirty: the bitmap holds exactly the pages written */

struct dirty_ctx {
	struct vm *vm;
	uint64_t *bm;
	uint64_t t_mark, mem_end;
	int failed_round;
};

#define DMA_PAGE 0x6000000ull

static int bit(const uint64_t *bm, uint64_t pfn)
{
	return (bm[pfn / 64] >> (pfn % 64)) & 1;
}

static int want_page(int round, uint64_t pfn, uint64_t mem_end)
{
	uint64_t gpa = pfn * VM_PAGE_SIZE;
	int i;

	switch (round) {
	case 1:
		for (i = 0; i < 16; i++)
			if (gpa == 0x400000ull + (uint64_t)i * 0x201000)
				return 1;
		return 0;
	case 2:
		for (i = 0; i < 8; i++)
			if (gpa == 0x5000000ull + (uint64_t)i * 0x3000)
				return 1;
		return 0;
	case 3:
		return gpa == DMA_PAGE;
	default:
		return gpa >= 0x200000 && gpa < mem_end;
	}
}

static void dirty_check(struct dirty_ctx *c, int round)
{
	uint64_t pfn, npages = c->vm->mem_size / VM_PAGE_SIZE, got = 0, bad = 0;

	for (pfn = 0; pfn < npages; pfn++) {
		int have = bit(c->bm, pfn), want = want_page(round, pfn, c->mem_end);

		got += have;
		if (have != want && bad++ < 8)
			fprintf(stderr, "round %d: page %#llx %s\n", round,
				(unsigned long long)(pfn * VM_PAGE_SIZE),
				have ? "dirty but not written" : "written but not dirty");
	}
	CHECK(bad == 0, "round %d: %llu pages wrong (%llu dirty)", round,
	      (unsigned long long)bad, (unsigned long long)got);
	printf("dirty: round %d: %llu pages dirty, %s\n", round, (unsigned long long)got,
	      bad ? "WRONG" : "exact");
}

static void dirty_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct dirty_ctx *c = opaque;
	struct vm *vm = c->vm;
	size_t bytes = vm__dirty_bitmap_bytes(vm);
	uint64_t t0, t1, now = vm__now_ns();
	int round = (int)val;
	static const char zero[64];

	/* Runs on the only vCPU, outside KVM_RUN: the guest is stopped. */
	if (round == 0) {
		CHECK(vm__dirty_start(vm) == 0, "dirty start: %s", vm->err);
		c->t_mark = vm__now_ns();
		return;
	}
	if (round == 6) {
		/* The same sweep with tracking off: the baseline of its cost. */
		printf("dirty: round 6: guest sweep %.2f ms (tracking off)\n",
		       (now - c->t_mark) / 1e6);
		return;
	}
	memset(c->bm, 0, bytes);
	t0 = vm__now_ns();
	CHECK(vm__dirty_fetch(vm, c->bm) == 0, "dirty fetch: %s", vm->err);
	t1 = vm__now_ns();
	if (round >= 4)
		printf("dirty: round %d: guest sweep %.2f ms (tracking on), fetch %.3f ms\n",
		       round, (now - c->t_mark) / 1e6, (t1 - t0) / 1e6);
	dirty_check(c, round);
	if (round == 2)
		vm__write(vm, DMA_PAGE + 0x100, zero, sizeof zero); /* host-side "DMA" */
	if (round == 3)
		printf("dirty: one-page round, fetch over %llu MiB: %.3f ms\n",
		       (unsigned long long)(vm->mem_size >> 20), (t1 - t0) / 1e6);
	if (round == 5)
		CHECK(vm__dirty_stop(vm) == 0, "dirty stop: %s", vm->err);
	c->t_mark = vm__now_ns();
}

static const struct vm_io_ops dirty_ops = { NULL, dirty_write };

static void t_dirty(void)
{
	int fd = console_open();
	struct vm *vm = boot(1, fd, NULL);
	struct dirty_ctx c = { .vm = vm, .mem_end = MEM };

	c.bm = calloc(1, vm__dirty_bitmap_bytes(vm));
	vm__register_pio(vm, PORT_TEST, 1, &dirty_ops, &c);
	vm__run(vm);
	expect_poweroff(vm, 0);
	free(c.bm);
	vm__destroy(vm);
	close(fd);
}

/* ---- state: pause/get/set/resume many times, then move the guest to a second VM */

static int state_ready;

static void state_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	if (val == 1)
		__atomic_store_n(&state_ready, 1, __ATOMIC_RELEASE);
}

static const struct vm_io_ops state_ops = { NULL, state_write };

static void *run_thread(void *arg)
{
	vm__run(arg);
	return NULL;
}

static const char *result_line(const char *text)
{
	const char *r = strstr(text, "result ");

	return r ? r : "(none)";
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void t_state(void)
{
	int ref_fd = console_open(), fd = console_open(), fd2 = console_open();
	struct vm *ref, *a, *b;
	struct vm_vcpu_state *st = malloc(sizeof *st), *st2 = malloc(sizeof *st2);
	pthread_t th;
	char want[128];
	int i, moved_ok = 0;

	/* The reference: nobody touches it. */
	ref = boot(1, ref_fd, NULL);
	vm__register_pio(ref, PORT_TEST, 1, &state_ops, NULL);
	vm__run(ref);
	expect_poweroff(ref, 0);
	snprintf(want, sizeof want, "%s", result_line(console_text(ref_fd)));
	vm__destroy(ref);
	CHECK(strcmp(want, "(none)") != 0, "reference printed no result");

	state_ready = 0;
	a = boot(1, fd, NULL);
	vm__register_pio(a, PORT_TEST, 1, &state_ops, NULL);
	pthread_create(&th, NULL, run_thread, a);
	while (!__atomic_load_n(&state_ready, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	for (i = 0; i < 20; i++) {
		sleep_ms(3);
		CHECK(vm__pause(a) == 0, "pause: %s", a->err);
		CHECK(vm__get_vcpu_state(a, 0, st) == 0, "get: %s", a->err);
		CHECK(vm__set_vcpu_state(a, 0, st) == 0, "set: %s", a->err);
		CHECK(vm__get_vcpu_state(a, 0, st2) == 0, "get again: %s", a->err);
		/* TSC moves on between get and set; everything else holds. */
		st2->tsc = st->tsc;
		CHECK(memcmp(st, st2, sizeof *st) == 0, "state changed across set/get (round %d)", i);
		vm__resume(a);
	}
	/* Move: freeze a, copy RAM and vCPU into b, let b finish. */
	sleep_ms(5);
	CHECK(vm__pause(a) == 0, "pause: %s", a->err);
	CHECK(vm__get_vcpu_state(a, 0, st) == 0, "get: %s", a->err);
	b = boot(1, fd2, NULL);
	vm__register_pio(b, PORT_TEST, 1, &state_ops, NULL);
	memcpy(b->mem, a->mem, a->mem_size);
	CHECK(vm__set_vcpu_state(b, 0, st) == 0, "set on b: %s", b->err);
	vm__poweroff(a, VM_EXIT_POWEROFF, 0); /* a's threads leave from their park */
	pthread_join(th, NULL);
	vm__run(b);
	moved_ok = expect_poweroff(b, 0);
	CHECK(strcmp(result_line(console_text(fd2)), want) == 0, "moved guest: %s, want %s",
	      result_line(console_text(fd2)), want);
	printf("state: 20 pause/get/set/resume rounds and one move: %s", moved_ok ? want : "failed\n");
	vm__destroy(a);
	vm__destroy(b);
	free(st);
	free(st2);
	close(ref_fd);
	close(fd);
	close(fd2);
}

/* ---- pioloop: the cost of one PIO exit */

static uint64_t pio_t[3];

static void pio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	if (val == 1 || val == 2)
		pio_t[val] = vm__now_ns();
}

static const struct vm_io_ops pio_ops = { NULL, pio_write };

static void t_pioloop(void)
{
	int fd = console_open();
	struct vm *vm = boot(1, fd, NULL);

	vm__register_pio(vm, PORT_TEST, 1, &pio_ops, NULL);
	vm__run(vm);
	expect_poweroff(vm, 0);
	CHECK(pio_t[2] > pio_t[1], "markers not seen");
	printf("pioloop: 100000 PIO exits in %.1f ms: %.2f us per exit\n",
	       (pio_t[2] - pio_t[1]) / 1e6, (pio_t[2] - pio_t[1]) / 1e3 / 100000);
	vm__destroy(vm);
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "hello", t_hello }, { "irq", t_irq }, { "smp", t_smp },
		{ "dirty", t_dirty }, { "state", t_state }, { "pioloop", t_pioloop },
	};
	unsigned i;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: test_kvm TEST GUEST-IMAGE\n");
		return 2;
	}
	fd = open("/dev/kvm", O_RDWR);
	if (fd < 0) {
		printf("SKIP: /dev/kvm: %s (no KVM host here)\n", strerror(errno));
		return 77;
	}
	close(fd);
	image = argv[2];
	for (i = 0; i < sizeof tests / sizeof tests[0]; i++)
		if (strcmp(argv[1], tests[i].name) == 0) {
			tests[i].fn();
			return tap_done(argv[1]);
		}
	fprintf(stderr, "test_kvm: no test '%s'\n", argv[1]);
	return 2;
}
