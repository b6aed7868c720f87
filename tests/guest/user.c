/* user.c: the ring-3 task: computes the workload and reports through system calls */
#include "guest.h"
#include "workload.h"

/*
 * This whole object file is linked into the .user section (guest.ld
 * matches it by name), which runs at USER_BASE on pages with the U bit.
 * So it must stay self-contained: no calls into the kernel, no kernel
 * data, only the syscall instruction.  Its strings and its bss come along
 * in the same section.
 */

static long sys2(long n, long a, long b)
{
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b)
			 : "rcx", "r11", "memory");
	return r;
}

static long sys0(long n) { return sys2(n, 0, 0); }

static void say(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	sys2(SYS_WRITE, (long)s, n);
}

static struct user_args args;

void user_main(void) __attribute__((noreturn, used));

void user_main(void)
{
	struct wl w;

	sys2(SYS_ARGS, (long)&args, 0);
	say("user: running in ring 3\n");

	/*
	 * Spin in ring 3 until the clock has moved twice, so every run takes
	 * timer interrupts in user mode (and returns from them by iretq) even
	 * when the workload itself is too short to see a tick.
	 */
	long t0 = sys0(SYS_TICKS);
	while (sys0(SYS_TICKS) < t0 + 2)
		;

	wl_init(&w, args.seed, (uint64_t *)args.mem_va, args.mem_bytes);
	uint64_t k = 0;
	while (args.forever || k < args.steps) {
		wl_step(&w);
		k++;
		sys2(SYS_STEP, (long)k, (long)w.h);
	}
	sys2(SYS_DONE, (long)k, (long)wl_result(&w));
	for (;;) /* SYS_DONE does not come back */
		;
}
