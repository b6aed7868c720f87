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

void user_main(void) __attribute__((noreturn, used));

/*
 * One task per CPU, all running this code on their own stacks (so nothing
 * here is static but constants).  CPU c runs the streams c, c + ncpus, ...
 * one step of each in turn; on one CPU that is all of them, dealt exactly as
 * the global step numbers are.  Each step reports its global number and its
 * stream's running checksum; the kernel prints those pairs once a second.
 */
void user_main(void)
{
	struct user_args args;
	struct wl w[WL_STREAMS];
	unsigned mine[WL_STREAMS], n = 0;

	sys2(SYS_ARGS, (long)&args, 0);
	if (args.cpu == 0)
		say("user: running in ring 3\n");

	/*
	 * fill=SIZE: the boot CPU's task writes the fill region first, in ring 3
	 * (native speed even where ring 0 is emulated), so that a migration
	 * from here on has that much written memory to carry.  Its words are
	 * read back into the result at the end (workload.h).
	 */
	uint64_t *fill = (uint64_t *)args.fill_va, fill_words = args.fill_bytes / 8;
	if (args.cpu == 0 && fill_words) {
		for (uint64_t i = 0; i < fill_words; i++)
			fill[i] = wl_fill_word(args.seed, i);
		say("user: fill written\n");
	}

	/*
	 * Spin in ring 3 until the clock has moved twice, so every run takes
	 * timer interrupts in user mode (and returns from them by iretq) even
	 * when the workload itself is too short to see a tick.
	 */
	long t0 = sys0(SYS_TICKS);
	while (sys0(SYS_TICKS) < t0 + 2)
		;

	uint64_t *buf = (uint64_t *)args.mem_va, words = args.mem_bytes / 8;
	for (unsigned j = (unsigned)args.cpu; j < WL_STREAMS; j += (unsigned)args.ncpus) {
		wl_init(&w[n], args.seed, j, buf, words);
		mine[n++] = j;
	}
	for (uint64_t k = 1;; k++) {
		int stepped = 0;
		for (unsigned i = 0; i < n; i++) {
			if (!args.forever && k > wl_stream_steps(args.steps, mine[i]))
				continue;
			wl_step(&w[i]);
			sys2(SYS_STEP, (long)wl_global_step(mine[i], k), (long)w[i].h);
			stepped = 1;
		}
		if (!stepped)
			break;
	}
	for (unsigned i = 0; i < n; i++)
		sys2(SYS_STREAM, mine[i], (long)w[i].h);
	if (args.cpu != 0) {
		sys0(SYS_EXIT);
		for (;;) /* SYS_EXIT does not come back */
			;
	}

	/* the boot CPU's task: every stream's result, in stream order, then the buffer */
	uint64_t hs[WL_STREAMS];
	for (unsigned j = 0; j < WL_STREAMS; j++)
		hs[j] = (uint64_t)sys2(SYS_JOIN, j, 0);
	sys2(SYS_DONE, (long)args.steps,
	     (long)wl_fold_fill(wl_result(hs, buf, words), fill, fill_words));
	for (;;) /* SYS_DONE does not come back */
		;
}
