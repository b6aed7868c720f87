/* workload_ref.c: host-side reference: print the guest's expected "workload:" line for seed/steps/mem */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

/*
 * Usage: workload_ref [seed=S] steps=N [mem=SIZE] [fill=SIZE]
 * The same words as the guest's command line, parsed the same way:
 * decimal or 0x hex, SIZE with an optional K, M or G; mem rounds down to a
 * multiple of 8, and so does fill (workload.h: its words are folded in at
 * the end).  Prints exactly the line the guest prints at the end.
 * With --progress K it also prints the progress checksum of global step K
 * (the running h of the stream that owns step K, right after it).
 *
 * The streams run here as one CPU runs them in the guest: dealt round-robin,
 * one step of each in turn.  Any other interleaving gives the same numbers.
 */

static int parse_num(const char *s, uint64_t *out, int size)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10);
	if (errno || end == s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	if (size && *end) {
		unsigned shift = (*end | 0x20) == 'k' ? 10 : (*end | 0x20) == 'm' ? 20 : (*end | 0x20) == 'g' ? 30 : 0;
		if (shift) {
			if (v > ~0ull >> shift)
				return -1;
			v <<= shift;
			end++;
		}
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = 1, steps = 0, mem = 1 << 20, fill = 0, progress = 0;
	int have_steps = 0, have_progress = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int bad;
		if (!strncmp(a, "seed=", 5))
			bad = parse_num(a + 5, &seed, 0);
		else if (!strncmp(a, "steps=", 6))
			bad = parse_num(a + 6, &steps, 0), have_steps = 1;
		else if (!strncmp(a, "mem=", 4))
			bad = parse_num(a + 4, &mem, 1);
		else if (!strncmp(a, "fill=", 5))
			bad = parse_num(a + 5, &fill, 1);
		else if (!strcmp(a, "--progress") && i + 1 < argc)
			bad = parse_num(argv[++i], &progress, 0), have_progress = 1;
		else
			bad = -1;
		if (bad) {
			fprintf(stderr, "workload_ref: bad argument \"%s\"\n"
				"usage: workload_ref [seed=S] steps=N [mem=SIZE] [fill=SIZE] [--progress K]\n", a);
			return 2;
		}
	}
	if (!have_steps) {
		fprintf(stderr, "workload_ref: steps= is required (the guest runs forever without it)\n");
		return 2;
	}
	mem &= ~7ull;
	fill &= ~7ull;
	if (mem < 8 * WL_STREAMS) {
		fprintf(stderr, "workload_ref: mem must be at least %u bytes (a word per stream)\n",
			8 * WL_STREAMS);
		return 2;
	}
	uint64_t *buf = calloc(mem / 8, 8);
	if (!buf) {
		fprintf(stderr, "workload_ref: out of memory for mem=%" PRIu64 "\n", mem);
		return 1;
	}
	struct wl w[WL_STREAMS];
	uint64_t hs[WL_STREAMS];
	for (unsigned j = 0; j < WL_STREAMS; j++)
		wl_init(&w[j], seed, j, buf, mem / 8);
	if (have_progress && progress == 0)
		printf("steps=0 checksum=0x%016" PRIx64 "\n", w[0].h);
	for (uint64_t g = 1; g <= steps; g++) {
		struct wl *s = &w[(g - 1) % WL_STREAMS];
		wl_step(s);
		if (have_progress && g == progress)
			printf("steps=%" PRIu64 " checksum=0x%016" PRIx64 "\n", g, s->h);
	}
	for (unsigned j = 0; j < WL_STREAMS; j++)
		hs[j] = w[j].h;
	/* the fill region as the guest reads it back: what it wrote */
	uint64_t h = wl_result(hs, buf, mem / 8);
	for (uint64_t i = 0; i < fill / 8; i++) {
		uint64_t x = wl_fill_word(seed, i);
		h = wl_fold_fill(h, &x, 1);
	}
	printf("workload: steps=%" PRIu64 " checksum=0x%016" PRIx64 "\n", steps, h);
	free(buf);
	return 0;
}
