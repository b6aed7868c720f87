/* test_repatch.c: unit tests of the table parser, the personalities and the all-or-nothing rewriter */
#include <stdint.h>
#include <string.h>

#include "repatch.h"
#include "../lib/tap.h"

/*
 * A fake guest: `text` at TEXT_VA holds sites laid out as the annotator
 * would, `table` at TABLE_VA holds their records.  Built in memory, so the
 * tests need no assembler.
 */
#define TEXT_VA	 0xffffffff81000000ull
#define TABLE_VA 0xffffffff82000000ull

static uint8_t text[4096];
static uint8_t table[4096];
static size_t table_size;
static int map_calls_write;

static uint8_t *map(void *ctx, uint64_t addr, size_t len, int write)
{
	(void)ctx;
	if (addr < TEXT_VA || addr - TEXT_VA > sizeof(text) || len > sizeof(text) - (addr - TEXT_VA))
		return NULL;
	map_calls_write += write;
	return text + (addr - TEXT_VA);
}

static const struct repatch_mem mem = {NULL, map};

struct spec {
	uint8_t kind, flags, reg, aux, width;
	uint8_t n;
	uint8_t bytes[15];
};

/* Lay out sites at 64-byte strides, and one chunk (or two) of records. */
static size_t build(const struct spec *sp, size_t n, int split)
{
	size_t off = 0;
	memset(text, 0xcc, sizeof(text));
	memset(table, 0, sizeof(table));
	for (size_t part = 0; part < (split ? 2u : 1u); part++) {
		size_t lo = split ? part * (n / 2) : 0, hi = split && !part ? n / 2 : n;
		struct pvsites_chunk h = {PVSITES_MAGIC, PVSITES_VERSION, 32, (uint32_t)(hi - lo), 0};
		memcpy(table + off, &h, sizeof(h));
		off += sizeof(h);
		for (size_t i = lo; i < hi; i++) {
			struct pvsite_rec r = {0};
			uint64_t site = TEXT_VA + 64 * i;
			r.where = (int64_t)(site - (TABLE_VA + off));
			r.kind = sp[i].kind;
			r.len = (uint8_t)pvsite_kind_len(sp[i].kind);
			r.orig_len = sp[i].n;
			r.flags = sp[i].flags;
			r.reg = sp[i].reg;
			r.aux = sp[i].aux;
			r.width = sp[i].width;
			memcpy(r.orig, sp[i].bytes, sp[i].n);
			memcpy(table + off, &r, sizeof(r));
			memcpy(text + 64 * i, sp[i].bytes, sp[i].n);
			memset(text + 64 * i + sp[i].n, 0x90, r.len - sp[i].n);
			off += sizeof(r);
		}
		if (split && !part)
			off += 8; /* zero padding between chunks, as a linker may leave */
	}
	return table_size = off;
}

static const struct spec corpus[] = {
	{PVSITE_CLI, 0, PVSITES_NONE, 0, 0, 1, {0xfa}},
	{PVSITE_STI, 0, PVSITES_NONE, 0, 0, 1, {0xfb}},
	{PVSITE_PUSHF, 0, PVSITES_NONE, 0, 8, 1, {0x9c}},
	{PVSITE_POPF, 0, PVSITES_NONE, 0, 8, 1, {0x9d}},
	{PVSITE_MOV_TO_CR, 0, 0, 3, 8, 3, {0x0f, 0x22, 0xd8}},	     /* mov %rax,%cr3 */
	{PVSITE_OUT, PVSITE_F_IMM, PVSITES_NONE, 0x80, 1, 2, {0xe6, 0x80}}, /* out %al,$0x80 */
	{PVSITE_WRMSR, 0, PVSITES_NONE, 0, 0, 2, {0x0f, 0x30}},
	{PVSITE_IRET, 0, PVSITES_NONE, 0, 8, 2, {0x48, 0xcf}},
	{PVSITE_MMIO_WRITE, PVSITE_F_MANUAL | PVSITE_F_MEM, 0, 4, 4, 2, {0x89, 0x07}},
};
#define NCORPUS (sizeof(corpus) / sizeof(corpus[0]))

static void test_decode(void)
{
	struct pvsite s[16];
	struct repatch_err e;
	build(corpus, NCORPUS, 1);
	CHECK(pvsites_count(table, table_size, &e) == (long)NCORPUS, "%s", e.msg);
	long n = pvsites_decode(table, table_size, TABLE_VA, s, 16, &e);
	CHECK(n == (long)NCORPUS, "decode: %s", e.msg);
	if (n < 0)
		return;
	for (long i = 0; i < n; i++) {
		CHECK(s[i].addr == TEXT_VA + 64 * (uint64_t)i, "site %ld address", i);
		CHECK(memcmp(s[i].orig, corpus[i].bytes, corpus[i].n) == 0, "site %ld bytes", i);
	}
	CHECK(pvsites_lookup(s, (size_t)n, TEXT_VA + 64 + 3) == 1, "lookup inside site 1");
	CHECK(pvsites_lookup(s, (size_t)n, TEXT_VA + 64 + 40) == -1, "lookup past site 1");
	CHECK(pvsites_decode(table, table_size, TABLE_VA, s, 3, &e) < 0, "cap is enforced");
}

static void test_roundtrip(void)
{
	static uint8_t orig_text[sizeof(text)];
	struct pvsite s[16];
	struct repatch_err e;
	const struct personality *nat = personality_find("native"), *trap = personality_find("trap");

	build(corpus, NCORPUS, 0);
	memcpy(orig_text, text, sizeof(text));
	long n = pvsites_decode(table, table_size, TABLE_VA, s, 16, &e);
	CHECK(nat && trap, "both personalities registered");
	CHECK(repatch_rewrite(s, (size_t)n, &mem, nat, trap, &e) == 0, "native->trap: %s", e.msg);
	CHECK(memcmp(orig_text, text, sizeof(text)) != 0, "trap changed the text");
	for (long i = 0; i < n; i++)
		CHECK(text[64 * i] == 0x0f && text[64 * i + 1] == 0x0b && text[64 * i + 2] == s[i].kind,
		      "site %ld holds a tagged ud2", i);
	CHECK(repatch_classify(&s[2], text + 128) == 1, "classified as trap");
	CHECK(repatch_rewrite(s, (size_t)n, &mem, trap, nat, &e) == 0, "trap->native: %s", e.msg);
	CHECK(memcmp(orig_text, text, sizeof(text)) == 0, "round trip is byte-exact");
	CHECK(repatch_classify(&s[2], text + 128) == 0, "classified as native");
}

static void test_mismatch_writes_nothing(void)
{
	static uint8_t before[sizeof(text)];
	struct pvsite s[16];
	struct repatch_err e;
	const struct personality *nat = personality_find("native"), *trap = personality_find("trap");

	build(corpus, NCORPUS, 0);
	long n = pvsites_decode(table, table_size, TABLE_VA, s, 16, &e);
	text[64 * 5 + 1] = 0x81; /* site 5: out $0x81 instead of $0x80 */
	memcpy(before, text, sizeof(text));
	CHECK(repatch_rewrite(s, (size_t)n, &mem, nat, trap, &e) < 0, "mismatch is refused");
	CHECK(e.code == REPATCH_EMISMATCH && e.site == 5, "error names site 5, got %ld", e.site);
	CHECK(strstr(e.msg, "site 5") && strstr(e.msg, "out"), "message names the site: %s", e.msg);
	CHECK(memcmp(before, text, sizeof(text)) == 0, "nothing written");
	CHECK(repatch_rewrite(s, (size_t)n, &mem, trap, nat, &e) < 0 && e.site == 0,
	      "wrong source personality refused at site 0");
	s[3].addr = TEXT_VA + 8192; /* unmapped */
	CHECK(repatch_rewrite(s, (size_t)n, &mem, nat, trap, &e) < 0 && e.code == REPATCH_EMAP,
	      "unmapped site refused");
	CHECK(memcmp(before, text, sizeof(text)) == 0, "still nothing written");
}

static void test_riprel(void)
{
	/* lgdt 0x100(%rip) assembled in the record: disp relative to the copy. */
	struct spec sp = {PVSITE_LGDT, PVSITE_F_MEM | PVSITE_F_RIPREL, PVSITES_NONE, 0, 0, 7,
			  {0x0f, 0x01, 0x15, 0, 0, 0, 0}};
	uint64_t target = TEXT_VA + 0x800, copy = TABLE_VA + 16 + 16;
	int32_t disp = (int32_t)(target - (copy + 7));
	memcpy(sp.bytes + 3, &disp, 4);
	build(&sp, 1, 0);
	struct pvsite s[1];
	struct repatch_err e;
	CHECK(pvsites_decode(table, table_size, TABLE_VA, s, 1, &e) == 1, "%s", e.msg);
	int32_t got;
	memcpy(&got, s[0].orig + 3, 4);
	CHECK(TEXT_VA + 7 + (uint64_t)(int64_t)got == target, "rip-relative target kept at the site");
}

static void test_corrupt(void)
{
	struct pvsite s[16];
	struct repatch_err e;
	struct {
		size_t off;
		uint8_t val;
		const char *why;
	} cases[] = {
		{0, 0x51, "bad chunk magic"},
		{4, 2, "unsupported table version"},
		{6, 40, "unexpected record size"},
		{8, 200, "record count runs past"},
		{16 + 8, 99, "unknown site kind"},
		{16 + 10, 0, "impossible site length"},
		{16 + 10, 16, "impossible site length"},
		{16 + 11, 0x80, "unknown flags"},
		{16 + 12, 16, "bad register number"},
		{16 + 15, 1, "reserved field"},
		{16 + 16 + 5, 1, "bytes after the original"},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		build(corpus, NCORPUS, 0);
		table[cases[c].off] = cases[c].val;
		e.msg[0] = 0;
		long n = pvsites_decode(table, table_size, TABLE_VA, s, 16, &e);
		CHECK(n < 0 && e.code == REPATCH_ETABLE, "case %zu accepted", c);
		CHECK(strstr(e.msg, cases[c].why), "case %zu: want '%s', got '%s'", c, cases[c].why,
		      e.msg);
	}
	build(corpus, NCORPUS, 0);
	struct pvsite_rec r;
	memcpy(&r, table + 16 + 32, sizeof(r));
	r.where -= 60; /* site 1 now starts inside site 0 */
	memcpy(table + 16 + 32, &r, sizeof(r));
	CHECK(pvsites_decode(table, table_size, TABLE_VA, s, 16, &e) < 0 &&
	      strstr(e.msg, "overlaps"), "overlap refused: %s", e.msg);
	CHECK(pvsites_decode(table, table_size - 4, TABLE_VA, s, 16, &e) < 0, "odd size refused");
	CHECK(pvsites_count(table, 0, &e) == 0, "empty table holds no sites");
}

static void test_safe_ip(void)
{
	struct pvsite s[16];
	struct repatch_err e;
	uint64_t ip;
	const struct personality *nat = personality_find("native"), *trap = personality_find("trap");
	build(corpus, NCORPUS, 0);
	long n = pvsites_decode(table, table_size, TABLE_VA, s, 16, &e);
	size_t k = (size_t)n;
	uint64_t cr3 = s[4].addr; /* 3-byte mov to cr3, pad to 24 */
	CHECK(repatch_safe_ip(s, k, nat, cr3, &ip, &e) == 0 && ip == cr3, "site start is safe");
	CHECK(repatch_safe_ip(s, k, nat, cr3 + 5, &ip, &e) == 0 && ip == cr3 + 24,
	      "native pad moves to the site end");
	CHECK(repatch_safe_ip(s, k, nat, cr3 + 1, &ip, &e) < 0 && e.code == REPATCH_EUNSAFE,
	      "inside the instruction is not safe");
	CHECK(repatch_safe_ip(s, k, trap, cr3 + 5, &ip, &e) < 0, "inside a trap sequence is not safe");
	CHECK(repatch_safe_ip(s, k, trap, cr3 + 40, &ip, &e) == 0 && ip == cr3 + 40,
	      "outside every site is safe");
	CHECK(repatch_in_nonnative(s, k, trap, cr3 + 2) && !repatch_in_nonnative(s, k, nat, cr3 + 2),
	      "in_nonnative");
	/* kvm keeps mov-to-cr as it is (NOP pad after it) but calls the runtime
	 * for out; its calls reach the window only from the low 2 GiB, so the
	 * same sites are moved there (TEXT_VA is a kernel address) */
	const struct personality *kvm = personality_find("kvm");
	struct pvsite low[16];
	uint8_t seq[PVSITES_LEN_MAX];

	memcpy(low, s, k * sizeof *s);
	for (size_t j = 0; j < k; j++)
		low[j].addr = low[j].addr - TEXT_VA + 0x200000;
	uint64_t lcr3 = low[4].addr, lout = low[5].addr;
	CHECK(kvm && personality_emit(kvm, &low[5], seq) == 0 && seq[0] == 0xe8,
	      "kvm: out calls the runtime");
	CHECK(kvm && repatch_safe_ip(low, k, kvm, lcr3 + 5, &ip, &e) == 0 && ip == lcr3 + 24,
	      "kvm: pad after a kept instruction moves to the site end");
	CHECK(kvm && repatch_safe_ip(low, k, kvm, lout + 5, &ip, &e) < 0 && e.code == REPATCH_EUNSAFE,
	      "kvm: inside a runtime call sequence is not safe");
	CHECK(kvm && !repatch_in_nonnative(low, k, kvm, lcr3 + 5) &&
		      repatch_in_nonnative(low, k, kvm, lout + 5),
	      "kvm: in_nonnative only for call sequences");
}

static void test_names(void)
{
	CHECK(pvsite_kind_by_name("mov-to-cr") == PVSITE_MOV_TO_CR, "kind by name");
	CHECK(pvsite_kind_by_name("mov-to") == -1, "prefix is not a name");
	CHECK(personality_find("l4") == NULL, "l4 is not available");
	for (unsigned k = 0; k < PVSITE_KIND_COUNT; k++)
		CHECK(pvsite_kind_len(k) >= 16 && pvsite_kind_len(k) <= PVSITES_LEN_MAX,
		      "kind %u length", k);
}

int main(void)
{
	test_decode();
	test_roundtrip();
	test_mismatch_writes_nothing();
	test_riprel();
	test_corrupt();
	test_safe_ip();
	test_names();
	return tap_done("test_repatch");
}
