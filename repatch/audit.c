/* audit.c: disassemble an image's code and list the sensitive instructions no site covers */
#include "audit.h"

#include <capstone/capstone.h>
#include <stdbool.h>
#include <string.h>

/*
 * Instructions that behave differently, or trap, when the guest kernel runs
 * deprivileged.  Each is sensitive whatever its operands; mov/push/pop are
 * sensitive only with a control, debug or segment register (see below).
 */
static const unsigned always_sensitive[] = {
	X86_INS_CLI,	 X86_INS_STI,	 X86_INS_PUSHF,	  X86_INS_PUSHFD,  X86_INS_PUSHFQ,
	X86_INS_POPF,	 X86_INS_POPFD,	 X86_INS_POPFQ,	  X86_INS_HLT,	   X86_INS_IN,
	X86_INS_OUT,	 X86_INS_INSB,	 X86_INS_INSW,	  X86_INS_INSD,	   X86_INS_OUTSB,
	X86_INS_OUTSW,	 X86_INS_OUTSD,	 X86_INS_LGDT,	  X86_INS_LIDT,	   X86_INS_LLDT,
	X86_INS_LTR,	 X86_INS_SGDT,	 X86_INS_SIDT,	  X86_INS_SLDT,	   X86_INS_STR,
	X86_INS_SMSW,	 X86_INS_LMSW,	 X86_INS_CLTS,	  X86_INS_INVLPG,  X86_INS_INVLPGA,
	X86_INS_INVPCID, X86_INS_WBINVD, X86_INS_INVD,	  X86_INS_RDMSR,   X86_INS_WRMSR,
	X86_INS_RDTSC,	 X86_INS_RDTSCP, X86_INS_CPUID,	  X86_INS_IRET,	   X86_INS_IRETD,
	X86_INS_IRETQ,	 X86_INS_SYSRET, X86_INS_SYSEXIT, X86_INS_SWAPGS,  X86_INS_XSETBV,
	X86_INS_RDPMC,	 X86_INS_MONITOR, X86_INS_MWAIT,  X86_INS_LDS,	   X86_INS_LES,
	X86_INS_LFS,	 X86_INS_LGS,	 X86_INS_LSS,	  X86_INS_LJMP,	   X86_INS_LCALL,
	X86_INS_RETF,	 X86_INS_RETFQ,
};

struct auditor {
	csh cs64, cs32;			 /* code32 sites are decoded in 32-bit mode */
	bool sensitive_id[X86_INS_ENDING]; /* built from always_sensitive[] */
	FILE *out;
	struct elfimage *img;
	int json;
	long sensitive, covered, uncovered;
};

static bool is_reg_in(x86_reg r, x86_reg first, x86_reg last)
{
	return r >= first && r <= last;
}

static bool is_segment_reg(x86_reg r)
{
	return r == X86_REG_CS || r == X86_REG_DS || r == X86_REG_ES || r == X86_REG_FS ||
	       r == X86_REG_GS || r == X86_REG_SS;
}

/* A register operand of the kind that makes mov/push/pop sensitive. */
static bool has_system_reg_operand(const cs_insn *insn, bool segments_only)
{
	const cs_x86 *x = &insn->detail->x86;
	for (unsigned i = 0; i < x->op_count; i++) {
		if (x->operands[i].type != X86_OP_REG) /* a segment override on memory is fine */
			continue;
		x86_reg r = x->operands[i].reg;
		if (is_segment_reg(r))
			return true;
		if (!segments_only && (is_reg_in(r, X86_REG_CR0, X86_REG_CR15) ||
				       is_reg_in(r, X86_REG_DR0, X86_REG_DR15)))
			return true;
	}
	return false;
}

static bool is_sensitive(const struct auditor *a, const cs_insn *insn)
{
	if (insn->id == X86_INS_INVALID || !insn->detail) /* skipdata bytes */
		return false;
	if (insn->id < X86_INS_ENDING && a->sensitive_id[insn->id])
		return true;
	switch (insn->id) {
	case X86_INS_MOV: return has_system_reg_operand(insn, false);
	case X86_INS_PUSH:
	case X86_INS_POP: return has_system_reg_operand(insn, true);
	default: return false;
	}
}

static void report_uncovered(struct auditor *a, const struct elf_section *sec, const cs_insn *insn)
{
	uint64_t off = 0;
	const struct elf_symbol *sym = elfimage_symbol_before(a->img, sec, insn->address, &off);
	char where[160] = "-";

	if (sym && off)
		snprintf(where, sizeof(where), "%s+%#llx", sym->name, (unsigned long long)off);
	else if (sym)
		snprintf(where, sizeof(where), "%s", sym->name);
	if (!a->json) {
		fprintf(a->out, "%#-18llx  %-12s %-32s %s%s%s\n", (unsigned long long)insn->address,
			sec->name, where, insn->mnemonic, insn->op_str[0] ? " " : "", insn->op_str);
		return;
	}
	fprintf(a->out, "%s    {\"addr\": \"%#llx\", \"section\": ", a->uncovered ? ",\n" : "\n",
		(unsigned long long)insn->address);
	print_json_string(a->out, sec->name);
	fputs(", \"symbol\": ", a->out);
	if (sym) {
		print_json_string(a->out, sym->name);
		fprintf(a->out, ", \"offset\": %llu", (unsigned long long)off);
	} else {
		fputs("null, \"offset\": null", a->out);
	}
	fputs(", \"mnemonic\": ", a->out);
	print_json_string(a->out, insn->mnemonic);
	fputs(", \"operands\": ", a->out);
	print_json_string(a->out, insn->op_str);
	fputc('}', a->out);
}

/* Linear sweep over code that belongs to no site: every sensitive hit is uncovered. */
static void sweep_range(struct auditor *a, const struct elf_section *sec, uint64_t from,
			uint64_t to, cs_insn *insn)
{
	const uint8_t *code = elfimage_section_bytes(a->img, sec) + (from - sec->addr);
	size_t size = (size_t)(to - from);
	uint64_t addr = from;

	while (size && cs_disasm_iter(a->cs64, &code, &size, &addr, insn))
		if (is_sensitive(a, insn)) {
			a->sensitive++;
			report_uncovered(a, sec, insn);
			a->uncovered++;
		}
}

/*
 * A symbol marks a known instruction boundary, so the sweep restarts at
 * each one inside the range: data in text (which skipdata decodes as
 * garbage that may swallow the following instruction) cannot desynchronise
 * it past the next symbol.
 */
static void sweep(struct auditor *a, const struct elf_section *sec, uint64_t from, uint64_t to,
		  cs_insn *insn)
{
	const struct elf_symbol *sym = a->img->symbols, *end = sym + a->img->nsymbols;
	size_t lo = 0, hi = a->img->nsymbols;

	while (lo < hi) { /* first symbol above `from`: sweeps run once per gap between sites */
		size_t mid = lo + (hi - lo) / 2;
		if (sym[mid].value <= from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (sym += lo; sym < end && sym->value < to; sym++) {
		if (sym->shndx != sec->index)
			continue;
		sweep_range(a, sec, from, sym->value, insn);
		from = sym->value;
	}
	sweep_range(a, sec, from, to, insn);
}

/*
 * A site is judged by its recorded original instruction, not by the bytes
 * it holds now: under another personality they are not x86 that decodes
 * to the instruction (trap's tag bytes would even desynchronise the sweep).
 */
static void count_site(struct auditor *a, const struct pvsite *s, cs_insn *insn)
{
	const uint8_t *code = s->orig;
	size_t size = s->orig_len;
	uint64_t addr = s->addr;
	csh cs = s->flags & PVSITE_F_CODE32 ? a->cs32 : a->cs64;

	if (cs_disasm_iter(cs, &code, &size, &addr, insn) && is_sensitive(a, insn)) {
		a->sensitive++;
		a->covered++;
	}
}

/* Walk one section: gaps between sites are swept, sites are counted. */
static size_t audit_section(struct auditor *a, const struct elf_section *sec,
			    const struct site_table *t, cs_insn *insn)
{
	uint64_t pos = sec->addr, end = sec->addr + sec->size;
	size_t i = 0, seen = 0;

	/* First site that ends after the section starts (sites are sorted, disjoint). */
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->sites[mid].addr + t->sites[mid].len <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; pos < end; i++) {
		const struct pvsite *s = i < t->n ? &t->sites[i] : NULL;
		uint64_t gap_end = s && s->addr < end ? s->addr : end;
		if (gap_end > pos)
			sweep(a, sec, pos, gap_end, insn);
		if (!s || s->addr >= end)
			break;
		if (s->addr >= sec->addr) { /* a site straddling in from before is not ours */
			count_site(a, s, insn);
			seen++;
		}
		pos = s->addr + s->len;
	}
	return seen;
}

/* Bytes of a ModRM operand (ModRM, SIB, displacement) at p, 64-bit addressing; 0 if cut short. */
static size_t modrm_len(const uint8_t *p, size_t left)
{
	if (left < 1)
		return 0;
	unsigned mod = p[0] >> 6, rm = p[0] & 7;
	size_t n = 1;
	if (mod == 3)
		return 1;
	if (rm == 4) {
		if (left < 2)
			return 0;
		n++;
		if (mod == 0 && (p[1] & 7) == 5)
			n += 4;
	}
	if (mod == 0 && rm == 5)
		n += 4; /* rip-relative */
	n += mod == 1 ? 1 : mod == 2 ? 4 : 0;
	return n <= left ? n : 0;
}

/*
 * Capstone 4 does not know every extension (AVX-512 mask moves, CET, ...).
 * Skipping such an instruction one byte at a time lands inside it, and its
 * tail bytes then decode as fb (sti), ca (lret) and other false findings.
 * This estimates the instruction's real length for the common cases
 * (VEX, EVEX and 0f-map opcodes, which all take a ModRM) so the sweep
 * resumes at the next instruction; anything else is skipped bytewise.
 */
static size_t CAPSTONE_API skip_unknown(const uint8_t *code, size_t size, size_t offset,
					void *unused)
{
	const uint8_t *p = code + offset, *end = code + size;
	size_t prefix = 0, op = 0, imm = 0, m;
	unsigned map = 1;

	(void)unused;
	if (offset >= size)
		return 1;
	static const uint8_t legacy[] = {0x66, 0x67, 0xf2, 0xf3, 0x2e, 0x36,
					 0x3e, 0x26, 0x64, 0x65, 0xf0};
	while (p + prefix < end && prefix < 14 &&
	       (memchr(legacy, p[prefix], sizeof(legacy)) || (p[prefix] & 0xf0) == 0x40))
		prefix++;
	const uint8_t *q = p + prefix;
	size_t left = (size_t)(end - q);
	if (left >= 3 && q[0] == 0xc5) {
		op = 2;
	} else if (left >= 4 && q[0] == 0xc4) {
		op = 3, map = q[1] & 0x1f;
	} else if (left >= 5 && q[0] == 0x62) {
		op = 4, map = q[1] & 0x07;
	} else if (left >= 3 && q[0] == 0x0f) {
		op = 1, map = q[1] == 0x38 ? 2 : q[1] == 0x3a ? 3 : 1;
		op += map != 1;
	} else {
		return 1;
	}
	if (map < 1 || map > 3)
		return 1;
	uint8_t opcode = q[op];
	imm = map == 3 || (map == 1 && (opcode == 0xc2 || opcode == 0xc4 || opcode == 0xc5 ||
					 opcode == 0xc6 || (opcode >= 0x70 && opcode <= 0x73)));
	m = modrm_len(q + op + 1, left - op - 1);
	if (!m || op + 1 + m + imm > left)
		return 1;
	return prefix + op + 1 + m + imm;
}

static int open_capstone(struct auditor *a)
{
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &a->cs64) != CS_ERR_OK)
		return -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_32, &a->cs32) != CS_ERR_OK) {
		cs_close(&a->cs64);
		return -1;
	}
	csh both[2] = {a->cs64, a->cs32};
	for (int i = 0; i < 2; i++) {
		cs_option(both[i], CS_OPT_DETAIL, CS_OPT_ON);
		/* Data in text (jump tables, literal pools) must not end the sweep. */
		cs_option(both[i], CS_OPT_SKIPDATA, CS_OPT_ON);
	}
	/* Capstone 4.0.2 copies the mnemonic without a NULL check: name it. */
	static cs_opt_skipdata skip = {".byte", skip_unknown, NULL};
	cs_option(a->cs64, CS_OPT_SKIPDATA_SETUP, (size_t)&skip);
	for (size_t i = 0; i < sizeof(always_sensitive) / sizeof(always_sensitive[0]); i++)
		a->sensitive_id[always_sensitive[i]] = true;
	return 0;
}

static void print_header(const struct auditor *a, const struct site_table *t)
{
	if (!a->json)
		return;
	fputs("{\n  \"image\": ", a->out);
	print_json_string(a->out, a->img->path);
	fprintf(a->out, ",\n  \"table\": %s,\n  \"sites\": %zu,\n  \"uncovered\": [",
		a->img->pvsites ? "true" : "false", t->n);
}

static void print_summary(const struct auditor *a)
{
	if (a->json)
		fprintf(a->out,
			"%s],\n  \"sensitive\": %ld,\n  \"covered\": %ld,\n  \"uncovered_count\": "
			"%ld\n}\n",
			a->uncovered ? "\n  " : "", a->sensitive, a->covered, a->uncovered);
	else
		fprintf(a->out, "%ld sensitive instruction%s, %ld covered by sites, %ld uncovered\n",
			a->sensitive, a->sensitive == 1 ? "" : "s", a->covered, a->uncovered);
}

long audit_image(FILE *out, struct elfimage *img, const struct site_table *t, int json)
{
	static struct auditor a; /* the id bitmap is large for the stack; one audit per run */
	memset(&a, 0, sizeof(a));
	a.out = out;
	a.img = img;
	a.json = json;
	if (open_capstone(&a) < 0) {
		fprintf(stderr, "pvsites: %s: cannot open the Capstone disassembler\n", img->path);
		return -1;
	}
	cs_insn *insn = cs_malloc(a.cs64);
	if (!insn) {
		fprintf(stderr, "pvsites: out of memory\n");
		cs_close(&a.cs64);
		cs_close(&a.cs32);
		return -1;
	}
	print_header(&a, t);
	size_t seen = 0;
	for (size_t i = 0; i < img->nsections; i++)
		if (elfimage_is_code(&img->sections[i]))
			seen += audit_section(&a, &img->sections[i], t, insn);
	print_summary(&a);
	/* A site outside the code the sweep visits is suspicious, and uncounted. */
	if (seen < t->n)
		fprintf(stderr, "pvsites: %s: warning: %zu site%s outside executable sections\n",
			img->path, t->n - seen, t->n - seen == 1 ? " lies" : "s lie");
	cs_free(insn, 1);
	cs_close(&a.cs64);
	cs_close(&a.cs32);
	return a.uncovered;
}
