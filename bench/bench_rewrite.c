/* bench_rewrite.c: sites rewritten per second (verified, all-or-nothing) next to memcpy of the same bytes */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repatch.h"

/* Text within rel32 reach of the kvm window (0x3fe00000), so every personality applies. */
#define TEXT_VA	 0x01000000ull
#define TABLE_VA 0x20000000ull
#define ROUNDS	 21

static uint8_t *text, *shadow;
static size_t text_size;

static uint8_t *map(void *ctx, uint64_t addr, size_t len, int write)
{
	(void)ctx;
	(void)write;
	uint64_t off = addr - TEXT_VA;
	return off <= text_size && len <= text_size - off ? text + off : NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* A kernel-like mix: irq flags dominate, then port I/O, MSRs and CR writes. */
static const struct {
	uint8_t kind, n, bytes[4];
	unsigned weight;
} mix[] = {
	{PVSITE_CLI, 1, {0xfa}, 20},	      {PVSITE_STI, 1, {0xfb}, 10},
	{PVSITE_PUSHF, 1, {0x9c}, 20},	      {PVSITE_POPF, 1, {0x9d}, 20},
	{PVSITE_OUT, 2, {0xe6, 0x80}, 8},     {PVSITE_IN, 1, {0xec}, 8},
	{PVSITE_WRMSR, 2, {0x0f, 0x30}, 4},   {PVSITE_MOV_TO_CR, 3, {0x0f, 0x22, 0xd8}, 4},
	{PVSITE_IRET, 2, {0x48, 0xcf}, 2},    {PVSITE_SWAPGS, 3, {0x0f, 0x01, 0xf8}, 2},
	{PVSITE_MMIO_WRITE, 2, {0x89, 0x07}, 2},
};

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 100000;
	const char *target = argc > 2 ? argv[2] : "trap"; /* personality rewritten to and back */
	size_t table_size = 16 + 32 * n, off = 16, pos = 0;
	uint8_t *table = calloc(1, table_size);
	struct pvsite *sites = malloc(n * sizeof(*sites));
	unsigned total_w = 0;
	struct repatch_err err;

	for (size_t k = 0; k < sizeof(mix) / sizeof(mix[0]); k++)
		total_w += mix[k].weight;
	text_size = n * PVSITES_LEN_MAX;
	text = malloc(text_size);
	shadow = malloc(text_size);
	memset(text, 0xcc, text_size);
	struct pvsites_chunk h = {PVSITES_MAGIC, PVSITES_VERSION, 32, (uint32_t)n, 0};
	memcpy(table, &h, sizeof(h));
	srand(42);
	for (size_t i = 0; i < n; i++, off += 32) {
		unsigned w = (unsigned)rand() % total_w, k = 0;
		while (w >= mix[k].weight)
			w -= mix[k++].weight;
		struct pvsite_rec r = {0};
		r.kind = mix[k].kind;
		r.len = (uint8_t)pvsite_kind_len(r.kind);
		r.orig_len = mix[k].n;
		r.reg = PVSITES_NONE;
		memcpy(r.orig, mix[k].bytes, mix[k].n);
		r.where = (int64_t)((TEXT_VA + pos) - (TABLE_VA + off));
		memcpy(table + off, &r, sizeof(r));
		memcpy(text + pos, r.orig, r.orig_len);
		memset(text + pos + r.orig_len, 0x90, r.len - r.orig_len);
		pos += r.len + (i % 7) * 3; /* sites scattered between ordinary code */
	}
	memcpy(shadow, text, text_size);

	double t_dec[ROUNDS], t_rw[ROUNDS], t_cpy[ROUNDS], t_bulk[ROUNDS];
	long m = 0;
	size_t bytes = 0;
	const struct personality *nat = personality_find("native"), *trap = personality_find(target);
	if (!trap) {
		fprintf(stderr, "bench_rewrite: unknown personality '%s'\n", target);
		return 1;
	}
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now();
		m = pvsites_decode(table, table_size, TABLE_VA, sites, n, &err);
		t_dec[r] = now() - t0;
		if (m != (long)n) {
			fprintf(stderr, "bench_rewrite: decode failed: %s\n", err.msg);
			return 1;
		}
		t0 = now();
		if (repatch_rewrite(sites, n, &(struct repatch_mem){NULL, map}, nat, trap, &err) ||
		    repatch_rewrite(sites, n, &(struct repatch_mem){NULL, map}, trap, nat, &err)) {
			fprintf(stderr, "bench_rewrite: rewrite failed: %s\n", err.msg);
			return 1;
		}
		t_rw[r] = (now() - t0) / 2;
		/* Baseline 1: copy exactly the site bytes, one memcpy per site. */
		bytes = 0;
		t0 = now();
		for (size_t i = 0; i < n; i++) {
			size_t o = sites[i].addr - TEXT_VA;
			memcpy(shadow + o, text + o, sites[i].len);
			bytes += sites[i].len;
		}
		t_cpy[r] = now() - t0;
		/* Baseline 2: one bulk memcpy of as many bytes. */
		t0 = now();
		memcpy(shadow, text, bytes);
		__asm__ volatile("" ::"r"(shadow) : "memory");
		t_bulk[r] = now() - t0;
	}
	if (memcmp(shadow, text, bytes) != 0)
		return 1;
	qsort(t_dec, ROUNDS, sizeof(double), cmp_double);
	qsort(t_rw, ROUNDS, sizeof(double), cmp_double);
	qsort(t_cpy, ROUNDS, sizeof(double), cmp_double);
	qsort(t_bulk, ROUNDS, sizeof(double), cmp_double);
	double rw = t_rw[ROUNDS / 2], cpy = t_cpy[ROUNDS / 2], bulk = t_bulk[ROUNDS / 2];
	printf("bench_rewrite: %zu sites, %zu site bytes, native <-> %s, median of %d rounds\n", n,
	       bytes, target, ROUNDS);
	printf("  table decode+validate   %8.2f ns/site  %7.1f M sites/s\n", t_dec[ROUNDS / 2] / n * 1e9,
	       n / t_dec[ROUNDS / 2] / 1e6);
	printf("  rewrite (verified)      %8.2f ns/site  %7.1f M sites/s\n", rw / n * 1e9, n / rw / 1e6);
	printf("  memcpy per site (base)  %8.2f ns/site  %7.1f M sites/s\n", cpy / n * 1e9, n / cpy / 1e6);
	printf("  memcpy bulk (base)      %8.2f ns/site  %7.1f M sites/s\n", bulk / n * 1e9, n / bulk / 1e6);
	printf("  rewrite / memcpy-per-site = %.2fx   rewrite / memcpy-bulk = %.2fx\n", rw / cpy, rw / bulk);
	printf("  target: >= 10 M sites/s verified: %s; within 2x of per-site memcpy: %s\n",
	       n / rw >= 10e6 ? "met" : "NOT met", rw / cpy <= 2.0 ? "met" : "NOT met");
	free(table);
	free(sites);
	free(text);
	free(shadow);
	return 0;
}
