/* pvas_insn.c: recognise sensitive x86 instructions in AT&T syntax and decode their operands */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pvas.h"

/* pvsites(5) names, for the "# pvsite: NAME" markers */
static const char *const kind_names[] = {
#define PVSITE_KIND(id, name, len) name,
#include "site_kinds.def"
#undef PVSITE_KIND
};

enum { R_NONE, R_GPR, R_CR, R_DR, R_SEG, R_OTHER };
enum { O_REG, O_IMM, O_MEM };

struct reg {
	int cls;
	unsigned num, width;
};

struct op {
	int type;
	struct reg r;
	int rip;  /* memory operand relative to %rip */
	int port; /* "(%dx)": the port of ins/outs, not memory */
	long imm;
	int imm_ok; /* imm is a plain number */
};

#define MAX_OPS 4

/* How operand details are found for a table entry. */
enum { H_NONE, H_GPR, H_IN, H_OUT, H_STR };
#define W_STACK 0xff /* push/pop width of the mode */

static const struct entry {
	const char *mn;
	unsigned char kind, width, how, aux;
} table[] = {
	{"cli", PVSITE_CLI, 0, H_NONE, 0}, {"sti", PVSITE_STI, 0, H_NONE, 0},
	{"hlt", PVSITE_HLT, 0, H_NONE, 0},
	{"pushf", PVSITE_PUSHF, W_STACK, H_NONE, 0}, {"pushfw", PVSITE_PUSHF, 2, H_NONE, 0},
	{"pushfl", PVSITE_PUSHF, 4, H_NONE, 0}, {"pushfd", PVSITE_PUSHF, 4, H_NONE, 0},
	{"pushfq", PVSITE_PUSHF, 8, H_NONE, 0},
	{"popf", PVSITE_POPF, W_STACK, H_NONE, 0}, {"popfw", PVSITE_POPF, 2, H_NONE, 0},
	{"popfl", PVSITE_POPF, 4, H_NONE, 0}, {"popfd", PVSITE_POPF, 4, H_NONE, 0},
	{"popfq", PVSITE_POPF, 8, H_NONE, 0},
	{"in", PVSITE_IN, 0, H_IN, 0}, {"inb", PVSITE_IN, 1, H_IN, 0},
	{"inw", PVSITE_IN, 2, H_IN, 0}, {"inl", PVSITE_IN, 4, H_IN, 0},
	{"out", PVSITE_OUT, 0, H_OUT, 0}, {"outb", PVSITE_OUT, 1, H_OUT, 0},
	{"outw", PVSITE_OUT, 2, H_OUT, 0}, {"outl", PVSITE_OUT, 4, H_OUT, 0},
	{"ins", PVSITE_INS, 0, H_STR, 0}, {"insb", PVSITE_INS, 1, H_STR, 0},
	{"insw", PVSITE_INS, 2, H_STR, 0}, {"insl", PVSITE_INS, 4, H_STR, 0},
	{"insd", PVSITE_INS, 4, H_STR, 0},
	{"outs", PVSITE_OUTS, 0, H_STR, 0}, {"outsb", PVSITE_OUTS, 1, H_STR, 0},
	{"outsw", PVSITE_OUTS, 2, H_STR, 0}, {"outsl", PVSITE_OUTS, 4, H_STR, 0},
	{"outsd", PVSITE_OUTS, 4, H_STR, 0},
	{"lgdt", PVSITE_LGDT, 0, H_NONE, 0}, {"lgdtw", PVSITE_LGDT, 2, H_NONE, 0},
	{"lgdtl", PVSITE_LGDT, 4, H_NONE, 0}, {"lgdtq", PVSITE_LGDT, 8, H_NONE, 0},
	{"lidt", PVSITE_LIDT, 0, H_NONE, 0}, {"lidtw", PVSITE_LIDT, 2, H_NONE, 0},
	{"lidtl", PVSITE_LIDT, 4, H_NONE, 0}, {"lidtq", PVSITE_LIDT, 8, H_NONE, 0},
	{"sgdt", PVSITE_SGDT, 0, H_NONE, 0}, {"sgdtw", PVSITE_SGDT, 2, H_NONE, 0},
	{"sgdtl", PVSITE_SGDT, 4, H_NONE, 0}, {"sgdtq", PVSITE_SGDT, 8, H_NONE, 0},
	{"sidt", PVSITE_SIDT, 0, H_NONE, 0}, {"sidtw", PVSITE_SIDT, 2, H_NONE, 0},
	{"sidtl", PVSITE_SIDT, 4, H_NONE, 0}, {"sidtq", PVSITE_SIDT, 8, H_NONE, 0},
	{"lldt", PVSITE_LLDT, 0, H_GPR, 0}, {"lldtw", PVSITE_LLDT, 2, H_GPR, 0},
	{"ltr", PVSITE_LTR, 0, H_GPR, 0}, {"ltrw", PVSITE_LTR, 2, H_GPR, 0},
	{"sldt", PVSITE_SLDT, 0, H_GPR, 0}, {"sldtw", PVSITE_SLDT, 2, H_GPR, 0},
	{"sldtl", PVSITE_SLDT, 4, H_GPR, 0}, {"sldtq", PVSITE_SLDT, 8, H_GPR, 0},
	{"str", PVSITE_STR, 0, H_GPR, 0}, {"strw", PVSITE_STR, 2, H_GPR, 0},
	{"strl", PVSITE_STR, 4, H_GPR, 0}, {"strq", PVSITE_STR, 8, H_GPR, 0},
	{"smsw", PVSITE_SMSW, 0, H_GPR, 0}, {"smsww", PVSITE_SMSW, 2, H_GPR, 0},
	{"smswl", PVSITE_SMSW, 4, H_GPR, 0}, {"smswq", PVSITE_SMSW, 8, H_GPR, 0},
	{"lmsw", PVSITE_LMSW, 0, H_GPR, 0}, {"lmsww", PVSITE_LMSW, 2, H_GPR, 0},
	{"clts", PVSITE_CLTS, 0, H_NONE, 0},
	{"invlpg", PVSITE_INVLPG, 0, H_NONE, 0}, {"invlpga", PVSITE_INVLPG, 0, H_NONE, 0},
	{"invpcid", PVSITE_INVPCID, 0, H_GPR, 0},
	{"wbinvd", PVSITE_WBINVD, 0, H_NONE, 0}, {"invd", PVSITE_INVD, 0, H_NONE, 0},
	{"rdmsr", PVSITE_RDMSR, 0, H_NONE, 0}, {"wrmsr", PVSITE_WRMSR, 0, H_NONE, 0},
	{"rdtsc", PVSITE_RDTSC, 0, H_NONE, 0}, {"rdtscp", PVSITE_RDTSCP, 0, H_NONE, 0},
	{"cpuid", PVSITE_CPUID, 0, H_NONE, 0},
	{"iret", PVSITE_IRET, 4, H_NONE, 0}, {"iretw", PVSITE_IRET, 2, H_NONE, 0},
	{"iretl", PVSITE_IRET, 4, H_NONE, 0}, {"iretd", PVSITE_IRET, 4, H_NONE, 0},
	{"iretq", PVSITE_IRET, 8, H_NONE, 0},
	{"sysret", PVSITE_SYSRET, 4, H_NONE, 0}, {"sysretl", PVSITE_SYSRET, 4, H_NONE, 0},
	{"sysretq", PVSITE_SYSRET, 8, H_NONE, 0},
	{"sysexit", PVSITE_SYSEXIT, 4, H_NONE, 0}, {"sysexitl", PVSITE_SYSEXIT, 4, H_NONE, 0},
	{"sysexitq", PVSITE_SYSEXIT, 8, H_NONE, 0},
	{"swapgs", PVSITE_SWAPGS, 0, H_NONE, 0}, {"xsetbv", PVSITE_XSETBV, 0, H_NONE, 0},
	{"rdpmc", PVSITE_RDPMC, 0, H_NONE, 0}, {"monitor", PVSITE_MONITOR, 0, H_NONE, 0},
	{"mwait", PVSITE_MWAIT, 0, H_NONE, 0},
	{"ljmp", PVSITE_FAR_XFER, 0, H_NONE, 0}, {"ljmpw", PVSITE_FAR_XFER, 2, H_NONE, 0},
	{"ljmpl", PVSITE_FAR_XFER, 4, H_NONE, 0}, {"ljmpq", PVSITE_FAR_XFER, 8, H_NONE, 0},
	{"lcall", PVSITE_FAR_XFER, 0, H_NONE, 0}, {"lcallw", PVSITE_FAR_XFER, 2, H_NONE, 0},
	{"lcalll", PVSITE_FAR_XFER, 4, H_NONE, 0}, {"lcallq", PVSITE_FAR_XFER, 8, H_NONE, 0},
	{"lret", PVSITE_FAR_XFER, 0, H_NONE, 0}, {"lretw", PVSITE_FAR_XFER, 2, H_NONE, 0},
	{"lretl", PVSITE_FAR_XFER, 4, H_NONE, 0}, {"lretq", PVSITE_FAR_XFER, 8, H_NONE, 0},
};

/* Far loads: lds les lfs lgs lss, any suffix; aux is the loaded segment. */
static const struct {
	const char *mn;
	unsigned seg;
} far_loads[] = {
	{"lds", PVSEG_DS}, {"les", PVSEG_ES}, {"lfs", PVSEG_FS}, {"lgs", PVSEG_GS}, {"lss", PVSEG_SS},
};

static unsigned suffix_width(char c)
{
	return c == 'b' ? 1 : c == 'w' ? 2 : c == 'l' ? 4 : c == 'q' ? 8 : 0;
}

static void parse_reg(const char *s, size_t n, struct reg *r)
{
	static const char *const g64[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"};
	static const char *const g8[] = {"al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"};
	static const char *const g8h[] = {"ah", "ch", "dh", "bh"};
	static const char *const segs[] = {"es", "cs", "ss", "ds", "fs", "gs"};
	char b[16];

	r->cls = R_OTHER;
	r->num = r->width = 0;
	if (n == 0 || n >= sizeof b)
		return;
	for (size_t i = 0; i < n; i++)
		b[i] = (char)tolower((unsigned char)s[i]);
	b[n] = 0;
	for (unsigned i = 0; i < 8; i++) {
		const char *x = g64[i] + 1; /* "ax", "cx", ... "di" */
		if (!strcmp(b, g64[i]) || (b[0] == 'e' && !strcmp(b + 1, x)) || !strcmp(b, x) ||
		    !strcmp(b, g8[i]) || (i < 4 && !strcmp(b, g8h[i]))) {
			r->cls = R_GPR;
			r->num = i;
			r->width = b[0] == 'r' ? 8 : b[0] == 'e' ? 4 : !strcmp(b, x) ? 2 : 1;
			return;
		}
	}
	for (unsigned i = 0; i < 6; i++)
		if (!strcmp(b, segs[i])) {
			r->cls = R_SEG;
			r->num = i;
			r->width = 2;
			return;
		}
	char *end;
	if (b[0] == 'r' && isdigit((unsigned char)b[1])) {
		unsigned long v = strtoul(b + 1, &end, 10);
		unsigned w = !*end ? 8 : !strcmp(end, "d") ? 4 : !strcmp(end, "w") ? 2 :
			     (!strcmp(end, "b") || !strcmp(end, "l")) ? 1 : 0;
		if (v >= 8 && v <= 15 && w) {
			r->cls = R_GPR;
			r->num = (unsigned)v;
			r->width = w;
		}
		return;
	}
	if ((!strncmp(b, "cr", 2) || !strncmp(b, "dr", 2) || !strncmp(b, "db", 2)) &&
	    isdigit((unsigned char)b[2])) {
		unsigned long v = strtoul(b + 2, &end, 10);
		if (!*end && v <= 15) {
			r->cls = b[0] == 'c' ? R_CR : R_DR;
			r->num = (unsigned)v;
		}
	}
}

static void parse_op(const char *s, size_t n, struct op *o)
{
	memset(o, 0, sizeof *o);
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n && *s == '*') /* indirect ljmp/lcall: the target is what follows */
		s++, n--;
	if (n && *s == '%' && !memchr(s, ':', n) && !memchr(s, '(', n)) {
		o->type = O_REG;
		parse_reg(s + 1, n - 1, &o->r);
		return;
	}
	if (n && *s == '$') {
		char b[32], *end;
		o->type = O_IMM;
		if (n - 1 < sizeof b) {
			memcpy(b, s + 1, n - 1);
			b[n - 1] = 0;
			o->imm = strtol(b, &end, 0);
			o->imm_ok = end != b && !*end;
		}
		return;
	}
	o->type = O_MEM;
	for (size_t i = 0; i + 6 <= n; i++)
		if (!memcmp(s + i, "(%rip)", 6))
			o->rip = 1;
	if (n == 5 && !strncmp(s, "(%dx)", 5))
		o->port = 1;
}

/* Split at top-level commas. */
static int parse_ops(const char *ops, struct op *o)
{
	int n = 0, depth = 0;
	const char *s = ops;
	if (!*ops)
		return 0;
	for (const char *p = ops;; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		if (!*p || (*p == ',' && depth <= 0)) {
			if (n < MAX_OPS)
				parse_op(s, (size_t)(p - s), &o[n]);
			n++;
			s = p + 1;
			if (!*p)
				break;
		}
	}
	return n < MAX_OPS ? n : MAX_OPS;
}

static void mem_flags(const struct op *o, int nops, int mode, struct pvas_insn *out)
{
	for (int i = 0; i < nops; i++)
		if (o[i].type == O_MEM && !o[i].port) {
			out->flags |= PVSITE_F_MEM;
			if (o[i].rip && mode == 64)
				out->flags |= PVSITE_F_RIPREL;
		}
}

/* mov/push/pop: only some operand forms are sensitive. */
static int classify_movlike(const char *mn, const struct op *o, int nops, int mode,
			    struct pvas_insn *out)
{
	/* base mnemonic plus an optional w/l/q suffix; "movs", "popcnt" ... do not match */
	size_t l = strlen(mn), b = !strncmp(mn, "mov", 3) ? 3 : !strncmp(mn, "push", 4) ? 4 :
				   !strncmp(mn, "pop", 3) ? 3 : 0;
	if (!b || l > b + 1 || (l == b + 1 && suffix_width(mn[b]) < 2))
		return 0;
	unsigned sw = l == b + 1 ? suffix_width(mn[b]) : 0;
	int is_mov = mn[1] == 'o' && mn[2] == 'v', is_pop = mn[1] == 'o' && mn[2] == 'p';
	int is_push = mn[1] == 'u';

	if (is_mov && nops == 2) {
		const struct op *src = &o[0], *dst = &o[1];
		const struct op *gpr = src->type == O_REG && src->r.cls == R_GPR ? src :
				       dst->type == O_REG && dst->r.cls == R_GPR ? dst : NULL;
		out->reg = gpr ? gpr->r.num : PVSITES_NONE;
		out->width = sw ? sw : gpr ? gpr->r.width : 2;
		if (dst->type == O_REG && (dst->r.cls == R_CR || dst->r.cls == R_DR)) {
			out->kind = dst->r.cls == R_CR ? PVSITE_MOV_TO_CR : PVSITE_MOV_TO_DR;
			out->aux = dst->r.num;
		} else if (src->type == O_REG && (src->r.cls == R_CR || src->r.cls == R_DR)) {
			out->kind = src->r.cls == R_CR ? PVSITE_MOV_FROM_CR : PVSITE_MOV_FROM_DR;
			out->aux = src->r.num;
		} else if (dst->type == O_REG && dst->r.cls == R_SEG && dst->r.num != PVSEG_CS) {
			out->kind = PVSITE_SEG_LOAD;
			out->aux = dst->r.num;
		} else if (src->type == O_REG && src->r.cls == R_SEG) {
			out->kind = PVSITE_SEG_READ;
			out->aux = src->r.num;
		}
		if (out->kind == PVSITE_MOV_TO_CR || out->kind == PVSITE_MOV_FROM_CR ||
		    out->kind == PVSITE_MOV_TO_DR || out->kind == PVSITE_MOV_FROM_DR)
			out->width = mode == 64 ? 8 : 4; /* control/debug moves are full width */
		return out->kind >= 0;
	}
	if ((is_push || is_pop) && nops == 1 && o[0].type == O_REG && o[0].r.cls == R_SEG) {
		if (is_pop && o[0].r.num == PVSEG_CS)
			return 0;
		out->kind = is_pop ? PVSITE_SEG_LOAD : PVSITE_SEG_READ;
		out->aux = o[0].r.num;
		out->width = sw ? sw : mode == 64 ? 8 : 4;
		return 1;
	}
	return 0;
}

void pvas_classify(const char *mn, const char *ops, const char *prefixes, int mode,
		   struct pvas_insn *out)
{
	struct op o[MAX_OPS];
	int nops = parse_ops(ops, o);

	memset(out, 0, sizeof *out);
	out->kind = -1;
	out->reg = PVSITES_NONE;
	if (classify_movlike(mn, o, nops, mode, out)) {
		mem_flags(o, nops, mode, out);
		return;
	}
	out->kind = -1;
	out->reg = PVSITES_NONE;
	out->width = out->aux = 0;

	for (size_t i = 0; i < sizeof far_loads / sizeof far_loads[0]; i++) {
		size_t l = strlen(mn);
		if (!strncmp(mn, far_loads[i].mn, 3) && (l == 3 || (l == 4 && suffix_width(mn[3]) > 1))) {
			out->kind = PVSITE_FAR_LOAD;
			out->aux = far_loads[i].seg;
			for (int k = 0; k < nops; k++)
				if (o[k].type == O_REG && o[k].r.cls == R_GPR) {
					out->reg = o[k].r.num;
					out->width = o[k].r.width;
				}
			if (l == 4)
				out->width = suffix_width(mn[3]);
			mem_flags(o, nops, mode, out);
			return;
		}
	}

	const struct entry *e = NULL;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (!strcmp(mn, table[i].mn)) {
			e = &table[i];
			break;
		}
	if (!e)
		return;
	out->kind = e->kind;
	out->width = e->width == W_STACK ? (mode == 64 ? 8 : 4) : e->width;
	out->aux = e->aux;
	mem_flags(o, nops, mode, out);

	switch (e->how) {
	case H_GPR:
		for (int k = 0; k < nops; k++)
			if (o[k].type == O_REG && o[k].r.cls == R_GPR) {
				out->reg = o[k].r.num;
				if (!out->width)
					out->width = o[k].r.width;
			}
		if (!out->width && e->kind != PVSITE_INVPCID)
			out->width = 2; /* selectors and the machine status word */
		break;
	case H_IN:
	case H_OUT: {
		/* in PORT, ACC / out ACC, PORT; a lone operand is the port */
		const struct op *port = nops == 2 ? &o[e->how == H_IN ? 0 : 1] : nops ? &o[0] : NULL;
		const struct op *acc = nops == 2 ? &o[e->how == H_IN ? 1 : 0] : NULL;
		out->reg = 0; /* the data always goes through the accumulator */
		if (acc && acc->type == O_REG && acc->r.cls == R_GPR && !out->width)
			out->width = acc->r.width;
		if (port && port->type == O_IMM) {
			out->flags |= PVSITE_F_IMM;
			out->aux = port->imm_ok ? (unsigned)(port->imm & 0xff) : 0;
		}
		break;
	}
	case H_STR:
		for (const char *p = prefixes; (p = strstr(p, "rep")) != NULL; p += 3)
			if (p == prefixes || p[-1] == ' ')
				out->flags |= PVSITE_F_REP;
		break;
	default:
		break;
	}
}

void pvas_classify_manual(int kind, const char *mn, const char *ops, int mode,
			  struct pvas_insn *out)
{
	struct op o[MAX_OPS];
	int nops = parse_ops(ops, o);
	size_t l = strlen(mn);
	int write = kind == PVSITE_PTE_WRITE || kind == PVSITE_MMIO_WRITE;

	memset(out, 0, sizeof *out);
	out->kind = -1;
	out->reg = PVSITES_NONE;
	if (strncmp(mn, "mov", 3) || l > 4 || nops != 2)
		return;
	const struct op *mem = &o[write ? 1 : 0], *val = &o[write ? 0 : 1];
	if (mem->type != O_MEM)
		return;
	out->kind = kind;
	out->flags = PVSITE_F_MANUAL;
	mem_flags(o, nops, mode, out);
	if (val->type == O_REG && val->r.cls == R_GPR) {
		out->reg = val->r.num;
		out->width = val->r.width;
	}
	if (l == 4 && suffix_width(mn[3]))
		out->width = suffix_width(mn[3]);
	out->aux = out->width;
}

int pvas_manual_kind(const char *name, size_t n)
{
	static const int manual[] = {PVSITE_PTE_WRITE, PVSITE_PTE_READ, PVSITE_MMIO_READ,
				     PVSITE_MMIO_WRITE};
	for (size_t i = 0; i < sizeof manual / sizeof manual[0]; i++)
		if (strlen(kind_names[manual[i]]) == n && !strncmp(kind_names[manual[i]], name, n))
			return manual[i];
	return -1;
}

