/* test_kvm_personality.c: the kvm personality's sequences, decoded by Capstone, and its round trips on the reference guest */
#include <capstone/capstone.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elfimage.h"
#include "repatch.h"
#include "rt_abi.h"
#include "../lib/tap.h"

/* Personality indices repatch_classify returns (personality.c keeps them stable). */
enum { P_NATIVE = 0, P_TRAP = 1, P_KVM = 2 };

#define SITE_VA	  0x200000ull /* 64-bit sites: within rel32 of the window */
#define SITE32_VA 0x100000ull /* .code32 sites, as the guest's boot code */

static csh cs64, cs32;

/* One encoding of every kind, for a 64-bit and for a .code32 site. */
struct enc {
	uint8_t flags, n, bytes[8];
};
static const struct {
	uint8_t kind;
	struct enc e64, e32;
} kinds[] = {
#define F_M PVSITE_F_MEM
#define F_I PVSITE_F_IMM
#define F_R PVSITE_F_REP
#define F_H (PVSITE_F_MANUAL | PVSITE_F_MEM)
	{PVSITE_CLI, {0, 1, {0xfa}}, {0, 1, {0xfa}}},
	{PVSITE_STI, {0, 1, {0xfb}}, {0, 1, {0xfb}}},
	{PVSITE_PUSHF, {0, 1, {0x9c}}, {0, 1, {0x9c}}},
	{PVSITE_POPF, {0, 1, {0x9d}}, {0, 1, {0x9d}}},
	{PVSITE_HLT, {0, 1, {0xf4}}, {0, 1, {0xf4}}},
	{PVSITE_IN, {F_I, 2, {0xe4, 0x60}}, {0, 1, {0xec}}},
	{PVSITE_OUT, {0, 1, {0xee}}, {F_I, 2, {0xe6, 0x80}}},
	{PVSITE_INS, {0, 1, {0x6c}}, {F_R, 2, {0xf3, 0x6d}}},
	{PVSITE_OUTS, {F_R, 2, {0xf3, 0x6e}}, {0, 1, {0x6e}}},
	{PVSITE_MOV_TO_CR, {0, 3, {0x0f, 0x22, 0xd8}}, {0, 3, {0x0f, 0x22, 0xe0}}},
	{PVSITE_MOV_FROM_CR, {0, 3, {0x0f, 0x20, 0xd8}}, {0, 3, {0x0f, 0x20, 0xc0}}},
	{PVSITE_MOV_TO_DR, {0, 3, {0x0f, 0x23, 0xf8}}, {0, 3, {0x0f, 0x23, 0xc0}}},
	{PVSITE_MOV_FROM_DR, {0, 3, {0x0f, 0x21, 0xf0}}, {0, 3, {0x0f, 0x21, 0xf8}}},
	{PVSITE_LGDT, {F_M, 3, {0x0f, 0x01, 0x10}}, {F_M, 7, {0x0f, 0x01, 0x15, 0, 0x10, 0, 0}}},
	{PVSITE_LIDT, {F_M, 3, {0x0f, 0x01, 0x18}}, {F_M, 7, {0x0f, 0x01, 0x1d, 0, 0x20, 0, 0}}},
	{PVSITE_LLDT, {0, 3, {0x0f, 0x00, 0xd0}}, {0, 3, {0x0f, 0x00, 0xd0}}},
	{PVSITE_LTR, {0, 3, {0x0f, 0x00, 0xd8}}, {0, 3, {0x0f, 0x00, 0xd8}}},
	{PVSITE_SGDT, {F_M, 3, {0x0f, 0x01, 0x00}}, {F_M, 3, {0x0f, 0x01, 0x00}}},
	{PVSITE_SIDT, {F_M, 3, {0x0f, 0x01, 0x08}}, {F_M, 3, {0x0f, 0x01, 0x08}}},
	{PVSITE_SLDT, {0, 3, {0x0f, 0x00, 0xc0}}, {0, 3, {0x0f, 0x00, 0xc0}}},
	{PVSITE_STR, {0, 3, {0x0f, 0x00, 0xc8}}, {0, 3, {0x0f, 0x00, 0xc8}}},
	{PVSITE_SMSW, {0, 3, {0x0f, 0x01, 0xe0}}, {0, 3, {0x0f, 0x01, 0xe0}}},
	{PVSITE_LMSW, {0, 3, {0x0f, 0x01, 0xf0}}, {0, 3, {0x0f, 0x01, 0xf0}}},
	{PVSITE_CLTS, {0, 2, {0x0f, 0x06}}, {0, 2, {0x0f, 0x06}}},
	{PVSITE_INVLPG, {F_M, 3, {0x0f, 0x01, 0x38}}, {F_M, 3, {0x0f, 0x01, 0x38}}},
	{PVSITE_INVPCID, {F_M, 5, {0x66, 0x0f, 0x38, 0x82, 0x00}},
	 {F_M, 5, {0x66, 0x0f, 0x38, 0x82, 0x00}}},
	{PVSITE_WBINVD, {0, 2, {0x0f, 0x09}}, {0, 2, {0x0f, 0x09}}},
	{PVSITE_INVD, {0, 2, {0x0f, 0x08}}, {0, 2, {0x0f, 0x08}}},
	{PVSITE_RDMSR, {0, 2, {0x0f, 0x32}}, {0, 2, {0x0f, 0x32}}},
	{PVSITE_WRMSR, {0, 2, {0x0f, 0x30}}, {0, 2, {0x0f, 0x30}}},
	{PVSITE_RDTSC, {0, 2, {0x0f, 0x31}}, {0, 2, {0x0f, 0x31}}},
	{PVSITE_RDTSCP, {0, 3, {0x0f, 0x01, 0xf9}}, {0, 3, {0x0f, 0x01, 0xf9}}},
	{PVSITE_CPUID, {0, 2, {0x0f, 0xa2}}, {0, 2, {0x0f, 0xa2}}},
	{PVSITE_IRET, {0, 2, {0x48, 0xcf}}, {0, 1, {0xcf}}},
	{PVSITE_SYSRET, {0, 3, {0x48, 0x0f, 0x07}}, {0, 2, {0x0f, 0x07}}},
	{PVSITE_SYSEXIT, {0, 3, {0x48, 0x0f, 0x35}}, {0, 2, {0x0f, 0x35}}},
	{PVSITE_SWAPGS, {0, 3, {0x0f, 0x01, 0xf8}}, {0, 3, {0x0f, 0x01, 0xf8}}},
	{PVSITE_SEG_LOAD, {0, 2, {0x8e, 0xd8}}, {0, 1, {0x1f}}},
	{PVSITE_SEG_READ, {0, 2, {0x8c, 0xd8}}, {0, 2, {0x0f, 0xa0}}},
	{PVSITE_FAR_LOAD, {F_M, 3, {0x0f, 0xb2, 0x00}}, {F_M, 3, {0x0f, 0xb4, 0x03}}},
	{PVSITE_FAR_XFER, {F_M, 2, {0xff, 0x28}}, {0, 7, {0xea, 0, 0x10, 0, 0, 0x08, 0}}},
	{PVSITE_XSETBV, {0, 3, {0x0f, 0x01, 0xd1}}, {0, 3, {0x0f, 0x01, 0xd1}}},
	{PVSITE_RDPMC, {0, 2, {0x0f, 0x33}}, {0, 2, {0x0f, 0x33}}},
	{PVSITE_MONITOR, {0, 3, {0x0f, 0x01, 0xc8}}, {0, 3, {0x0f, 0x01, 0xc8}}},
	{PVSITE_MWAIT, {0, 3, {0x0f, 0x01, 0xc9}}, {0, 3, {0x0f, 0x01, 0xc9}}},
	{PVSITE_PTE_WRITE, {F_H, 3, {0x48, 0x89, 0x07}}, {F_H, 2, {0x89, 0x07}}},
	{PVSITE_PTE_READ, {F_H, 3, {0x48, 0x8b, 0x07}}, {F_H, 2, {0x8b, 0x07}}},
	{PVSITE_MMIO_READ, {F_H, 2, {0x8b, 0x07}}, {F_H, 2, {0x8b, 0x07}}},
	{PVSITE_MMIO_WRITE, {F_H, 2, {0x89, 0x07}}, {F_H, 2, {0x89, 0x07}}},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int is_call_kind(unsigned kind)
{
#define IS(k) kind == PVSITE_##k ||
	return RT_CALL_KINDS(IS) 0;
#undef IS
}

static struct pvsite make_site(unsigned kind, const struct enc *e, int code32, unsigned i)
{
	struct pvsite s = {0};

	s.addr = (code32 ? SITE32_VA : SITE_VA) + 64 * i;
	s.kind = (uint8_t)kind;
	s.len = (uint8_t)pvsite_kind_len(kind);
	s.orig_len = e->n;
	s.flags = (uint8_t)(e->flags | (code32 ? PVSITE_F_CODE32 : 0));
	s.reg = (uint8_t)(i % 16); /* distinct operand bytes, to see them copied */
	s.aux = (uint8_t)(0x40 + i);
	s.width = (uint8_t)(1u << (i % 4));
	memset(s.orig, 0x90, sizeof(s.orig));
	memcpy(s.orig, e->bytes, e->n);
	return s;
}

/*
 * `seq` decodes (at the site's address, in the site's mode) as exactly the
 * original instruction, then NOP instructions only, ending at len; no
 * 0x90 unless the pad is exactly one byte.
 */
static void check_inline(const struct pvsite *s, const uint8_t *seq, const char *what)
{
	csh cs = (s->flags & PVSITE_F_CODE32) ? cs32 : cs64;
	const uint8_t *code = seq;
	size_t size = s->len;
	uint64_t addr = s->addr;
	cs_insn *insn = cs_malloc(cs);
	unsigned n = 0, bad = 0, plain = 0;

	CHECK(memcmp(seq, s->orig, s->orig_len) == 0, "%s: original bytes kept", what);
	while (size && cs_disasm_iter(cs, &code, &size, &addr, insn)) {
		if (n++ == 0) {
			CHECK(insn->size == s->orig_len, "%s: first instruction %s %s is %u bytes, want %u",
			      what, insn->mnemonic, insn->op_str, insn->size, s->orig_len);
			continue;
		}
		if (insn->id != X86_INS_NOP)
			bad++, fprintf(stderr, "%s: pad holds %s %s\n", what, insn->mnemonic,
				       insn->op_str);
		plain += insn->size == 1;
	}
	CHECK(size == 0 && addr == s->addr + s->len, "%s: decodes to the site's end (%zu left)", what,
	      size);
	CHECK(bad == 0, "%s: %u non-NOP instructions in the pad", what, bad);
	CHECK(plain == (s->len - s->orig_len == 1), "%s: %u one-byte NOPs for a %u-byte pad", what,
	      plain, s->len - s->orig_len);
	cs_free(insn, 1);
}

static void check_call(const struct pvsite *s, const uint8_t *seq, const char *what)
{
	const uint8_t *code = seq;
	size_t size = s->len;
	uint64_t addr = s->addr;
	cs_insn *insn = cs_malloc(cs64);
	const uint8_t args[6] = {s->kind, s->len, s->reg, s->aux, s->width, s->flags};
	char want[32];

	snprintf(want, sizeof(want), "0x%llx", (unsigned long long)RT_ENTRY_SITE);
	CHECK(cs_disasm_iter(cs64, &code, &size, &addr, insn) && insn->id == X86_INS_CALL &&
	      insn->size == 5 && strcmp(insn->op_str, want) == 0,
	      "%s: starts with call %s (got %s %s)", what, want, insn->mnemonic, insn->op_str);
	CHECK(memcmp(seq + 5, args, 6) == 0, "%s: the 6 operand bytes follow the call", what);
	unsigned cc = 0;
	for (unsigned i = 11; i < s->len; i++)
		cc += seq[i] == 0xcc;
	CHECK(cc == s->len - 11u, "%s: int3 up to the site's end", what);
	cs_free(insn, 1);
}

/* (a) every kind has a kvm sequence, 64-bit and .code32, of the documented shape. */
static void test_every_kind(void)
{
	const struct personality *kvm = personality_find("kvm");
	uint8_t seq[PVSITES_LEN_MAX], nat[PVSITES_LEN_MAX];
	unsigned seen[PVSITE_KIND_COUNT] = {0}, calls = 0;
	char what[64];

	CHECK(kvm && personality_at(P_KVM) == kvm, "kvm is registered at index 2");
	CHECK(personality_at(P_NATIVE) == personality_find("native") &&
	      personality_at(P_TRAP) == personality_find("trap"), "native and trap keep 0 and 1");
	if (!kvm)
		return;
	for (unsigned i = 0; i < NKINDS; i++) {
		unsigned k = kinds[i].kind;
		seen[k]++;
		for (int code32 = 0; code32 < 2; code32++) {
			struct pvsite s = make_site(k, code32 ? &kinds[i].e32 : &kinds[i].e64, code32, i);
			snprintf(what, sizeof(what), "%s%s", pvsite_kind_name(k), code32 ? "/code32" : "");
			memset(seq, 0x5a, sizeof(seq));
			int rc = personality_emit(kvm, &s, seq);
			CHECK(rc == 0, "%s: emit returned %d", what, rc);
			if (rc)
				continue;
			if (is_call_kind(k) && !code32)
				check_call(&s, seq, what), calls++;
			else
				check_inline(&s, seq, what);
			personality_emit(personality_find("native"), &s, nat);
			CHECK(memcmp(seq, nat, s.len) != 0, "%s: differs from native", what);
			unsigned mask;
			CHECK(repatch_classify(&s, seq) == P_KVM &&
			      repatch_classify_all(&s, seq, &mask) == P_KVM && mask == 1u << P_KVM,
			      "%s: classifies as kvm only", what);
		}
	}
	for (unsigned k = 0; k < PVSITE_KIND_COUNT; k++)
		CHECK(seen[k] == 1, "kind %s covered once by the test table", pvsite_kind_name(k));
	CHECK(calls == 15, "%u call kinds (RT_CALL_KINDS has 15)", calls);
}

/* Every pad length 0..63: NOPs only; 0 and 1 byte are the same bytes as native. */
static void test_pad_lengths(void)
{
	const struct personality *kvm = personality_find("kvm");
	uint8_t seq[PVSITES_LEN_MAX];
	char what[64];

	for (unsigned len = 1; len <= PVSITES_LEN_MAX; len++)
		for (int code32 = 0; code32 < 2; code32++) {
			static const struct enc one_byte = {0, 1, {0xfa}}; /* cli, under an inline kind */
			struct pvsite s = make_site(PVSITE_CLI, &one_byte, 1, 0);
			s.flags = code32 ? PVSITE_F_CODE32 : 0;
			s.kind = PVSITE_RDTSC; /* an inline kind: the pad is what is tested */
			s.len = (uint8_t)len;
			snprintf(what, sizeof(what), "pad %u%s", len - 1, code32 ? "/code32" : "");
			CHECK(personality_emit(kvm, &s, seq) == 0, "%s: emitted", what);
			check_inline(&s, seq, what);
			unsigned mask;
			int idx = repatch_classify_all(&s, seq, &mask);
			if (len <= 2)
				CHECK(idx == P_NATIVE && repatch_classify(&s, seq) == P_NATIVE &&
				      mask == (1u << P_NATIVE | 1u << P_KVM),
				      "%s: native and kvm at once (mask %#x)", what, mask);
			else
				CHECK(idx == P_KVM && mask == 1u << P_KVM, "%s: kvm only (mask %#x)",
				      what, mask);
		}
}

static void test_out_of_reach(void)
{
	const struct personality *kvm = personality_find("kvm");
	uint8_t seq[PVSITES_LEN_MAX];
	static const struct enc cli = {0, 1, {0xfa}};
	struct pvsite s = make_site(PVSITE_CLI, &cli, 0, 0);

	s.addr = 0xffffffff81000000ull; /* a kernel-model address: 2 GiB from the window */
	CHECK(personality_emit(kvm, &s, seq) == REPATCH_ESPACE, "call out of rel32 reach refused");
	s.addr = RT_ENTRY_SITE - 0x7ffffff0ull; /* just inside reach, below the window */
	CHECK(personality_emit(kvm, &s, seq) == 0, "call at the edge of reach");
	s.addr = 0x200000;
	s.len = 10;
	CHECK(personality_emit(kvm, &s, seq) == REPATCH_ESPACE, "a 10-byte site cannot hold call+6");
	s.flags = PVSITE_F_CODE32;
	CHECK(personality_emit(kvm, &s, seq) == 0, "a code32 one keeps its instruction");
	s.addr = 0xffffffff81000000ull;
	s.kind = PVSITE_RDTSC;
	s.flags = 0;
	CHECK(personality_emit(kvm, &s, seq) == 0, "inline kinds are not tied to the window");
}

/* (b), (c) on the reference guest: native -> kvm -> native, and a refused rewrite. */
static void test_guest(const char *path)
{
	const struct personality *nat = personality_find("native"), *kvm = personality_find("kvm");
	struct elfimage img;
	struct repatch_err e = {0};
	char why[256];

	if (elfimage_load(&img, path, why, sizeof(why)) != 0 || !img.pvsites) {
		CHECK(0, "%s: %s", path, img.pvsites ? why : "no .pvsites");
		return;
	}
	const uint8_t *tb = elfimage_section_bytes(&img, img.pvsites);
	long n = pvsites_count(tb, img.pvsites->size, &e);
	struct pvsite *s = calloc((size_t)(n > 0 ? n : 1), sizeof(*s));
	n = pvsites_decode(tb, img.pvsites->size, img.pvsites->addr, s, (size_t)n, &e);
	CHECK(n > 100, "guest has %ld sites: %s", n, e.msg);
	uint8_t *orig = malloc(img.size), *before = malloc(img.size);
	memcpy(orig, img.data, img.size);
	struct repatch_mem mem = elfimage_mem(&img);

	CHECK(repatch_rewrite(s, (size_t)n, &mem, nat, kvm, &e) == 0, "native->kvm: %s", e.msg);
	long calls = 0, call_ok = 0, code32 = 0;
	for (long i = 0; i < n; i++) {
		const uint8_t *b = mem.map(mem.ctx, s[i].addr, s[i].len, 0);
		CHECK(repatch_classify(&s[i], b) == P_KVM, "site %ld holds kvm", i);
		code32 += (s[i].flags & PVSITE_F_CODE32) != 0;
		if (is_call_kind(s[i].kind) && !(s[i].flags & PVSITE_F_CODE32)) {
			int32_t rel;
			memcpy(&rel, b + 1, 4);
			calls++;
			call_ok += b[0] == 0xe8 && s[i].addr + 5 + (uint64_t)(int64_t)rel == RT_ENTRY_SITE;
		}
	}
	CHECK(calls > 50 && call_ok == calls, "%ld of %ld call-kind sites call RT_ENTRY_SITE", call_ok,
	      calls);
	CHECK(code32 > 0, "the guest has code32 sites (%ld), kept as instructions", code32);
	CHECK(memcmp(orig, img.data, img.size) != 0, "kvm changed the image");
	CHECK(repatch_rewrite(s, (size_t)n, &mem, kvm, nat, &e) == 0, "kvm->native: %s", e.msg);
	CHECK(memcmp(orig, img.data, img.size) == 0, "native -> kvm -> native is bit for bit");

	/* (c): one kvm site corrupted: kvm -> native refuses and writes nothing. */
	CHECK(repatch_rewrite(s, (size_t)n, &mem, nat, kvm, &e) == 0, "native->kvm again");
	long victim = n / 2;
	uint8_t *v = mem.map(mem.ctx, s[victim].addr, s[victim].len, 0);
	v[s[victim].len - 1] ^= 0x01;
	memcpy(before, img.data, img.size);
	CHECK(repatch_rewrite(s, (size_t)n, &mem, kvm, nat, &e) < 0 && e.code == REPATCH_EMISMATCH &&
	      e.site == victim, "corrupted site %ld refused (got site %ld: %s)", victim, e.site, e.msg);
	CHECK(memcmp(before, img.data, img.size) == 0, "nothing written on refusal");
	CHECK(repatch_classify(&s[victim], v) == -1, "the corrupted site matches no personality");

	free(orig);
	free(before);
	free(s);
	elfimage_free(&img);
}

int main(int argc, char **argv)
{
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs64) != CS_ERR_OK ||
	    cs_open(CS_ARCH_X86, CS_MODE_32, &cs32) != CS_ERR_OK) {
		fprintf(stderr, "test_kvm_personality: cannot open Capstone\n");
		return 1;
	}
	test_every_kind();
	test_pad_lengths();
	test_out_of_reach();
	if (argc > 1)
		test_guest(argv[1]);
	else
		CHECK(0, "usage: test_kvm_personality GUEST_ELF");
	cs_close(&cs64);
	cs_close(&cs32);
	return tap_done("test_kvm_personality");
}
