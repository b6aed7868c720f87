/* table_print.c: render decoded sites for `pvsites list`, as aligned text or as JSON */
#include "table_print.h"

#include <stdarg.h>
#include <string.h>

/* Flag bits in the order and with the words pvsites(1) documents. */
static const struct {
	unsigned bit;
	const char *word;
} flag_words[] = {
	{PVSITE_F_CODE32, "code32"}, {PVSITE_F_RIPREL, "riprel"}, {PVSITE_F_MEM, "mem"},
	{PVSITE_F_IMM, "imm"},	     {PVSITE_F_REP, "rep"},	  {PVSITE_F_MANUAL, "manual"},
};
#define NFLAGS (sizeof(flag_words) / sizeof(flag_words[0]))

/* General registers by number, for operand widths 1, 2, 4 and 8. */
static const char *const reg_names[4][16] = {
	{"al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b",
	 "r12b", "r13b", "r14b", "r15b"},
	{"ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w",
	 "r13w", "r14w", "r15w"},
	{"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d",
	 "r12d", "r13d", "r14d", "r15d"},
	{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
	 "r13", "r14", "r15"},
};

static const char *const seg_names[] = {"es", "cs", "ss", "ds", "fs", "gs"};

/* NULL for "no register"; the decoder has already refused numbers above 15. */
static const char *reg_name(const struct pvsite *s)
{
	if (s->reg > 15)
		return NULL;
	switch (s->width) {
	case 1: return reg_names[0][s->reg];
	case 2: return reg_names[1][s->reg];
	case 4: return reg_names[2][s->reg];
	default: return reg_names[3][s->reg]; /* width unknown: name the full register */
	}
}

/* What `aux` means depends on the kind (see site_kinds.def). */
enum aux_meaning { AUX_NONE, AUX_CR, AUX_DR, AUX_SEG, AUX_PORT, AUX_ACCESS };

static enum aux_meaning aux_meaning_of(unsigned kind)
{
	switch (kind) {
	case PVSITE_MOV_TO_CR:
	case PVSITE_MOV_FROM_CR: return AUX_CR;
	case PVSITE_MOV_TO_DR:
	case PVSITE_MOV_FROM_DR: return AUX_DR;
	case PVSITE_SEG_LOAD:
	case PVSITE_SEG_READ:
	case PVSITE_FAR_LOAD: return AUX_SEG;
	case PVSITE_IN:
	case PVSITE_OUT:
	case PVSITE_INS:
	case PVSITE_OUTS: return AUX_PORT;
	case PVSITE_PTE_WRITE:
	case PVSITE_PTE_READ:
	case PVSITE_MMIO_READ:
	case PVSITE_MMIO_WRITE: return AUX_ACCESS;
	default: return AUX_NONE;
	}
}

/* Append to a fixed buffer, silently truncating: these are display strings. */
static void append(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= cap)
		return;
	if (used)
		buf[used++] = ' ', buf[used] = 0;
	va_start(ap, fmt);
	vsnprintf(buf + used, cap - used, fmt, ap);
	va_end(ap);
}

static void format_operands(const struct pvsite *s, char *buf, size_t cap)
{
	buf[0] = 0;
	switch (aux_meaning_of(s->kind)) {
	case AUX_CR: append(buf, cap, "cr%u", s->aux); break;
	case AUX_DR: append(buf, cap, "dr%u", s->aux); break;
	case AUX_SEG:
		if (s->aux < sizeof(seg_names) / sizeof(seg_names[0]))
			append(buf, cap, "%s", seg_names[s->aux]);
		else
			append(buf, cap, "seg?%u", s->aux);
		break;
	case AUX_PORT:
		if (s->flags & PVSITE_F_IMM)
			append(buf, cap, "port=%#x", s->aux);
		else
			append(buf, cap, "port=dx");
		break;
	case AUX_ACCESS: append(buf, cap, "access=%u", s->aux); break;
	case AUX_NONE:
		if (s->aux) /* meaningless for the kind, but never hide table contents */
			append(buf, cap, "aux=%u", s->aux);
		break;
	}
	const char *r = reg_name(s);
	if (r)
		append(buf, cap, "reg=%s", r);
	if (s->width)
		append(buf, cap, "width=%u", s->width);
	if (!buf[0])
		append(buf, cap, "-");
}

static void format_flags(const struct pvsite *s, char *buf, size_t cap, const char *sep)
{
	buf[0] = 0;
	for (size_t i = 0; i < NFLAGS; i++)
		if (s->flags & flag_words[i].bit) {
			size_t used = strlen(buf);
			snprintf(buf + used, cap - used, "%s%s", used ? sep : "", flag_words[i].word);
		}
}

static void format_orig(const struct pvsite *s, char *buf, size_t cap)
{
	buf[0] = 0;
	for (unsigned i = 0; i < s->orig_len && 2 * i + 2 < cap; i++)
		snprintf(buf + 2 * i, cap - 2 * i, "%02x", s->orig[i]);
}

const char *site_personality(struct elfimage *img, const struct pvsite *site)
{
	struct repatch_mem mem = elfimage_mem(img);
	const uint8_t *bytes = mem.map(mem.ctx, site->addr, site->len, 0);

	if (!bytes)
		return "unmapped";
	int idx = repatch_classify(site, bytes);
	const struct personality *p = idx >= 0 ? personality_at((unsigned)idx) : NULL;
	return p ? p->name : "mixed/unknown";
}

static const char *kind_name(unsigned kind)
{
	const char *n = pvsite_kind_name(kind);
	return n ? n : "?";
}

static void count_kinds(const struct site_table *t, size_t counts[PVSITE_KIND_COUNT])
{
	memset(counts, 0, PVSITE_KIND_COUNT * sizeof(counts[0]));
	for (size_t i = 0; i < t->n; i++)
		if (t->sites[i].kind < PVSITE_KIND_COUNT)
			counts[t->sites[i].kind]++;
}

void table_print_text(FILE *out, struct elfimage *img, const struct site_table *t)
{
	char ops[96], flags[64], orig[2 * PVSITES_ORIG_MAX + 1];
	size_t counts[PVSITE_KIND_COUNT];

	if (t->n)
		fprintf(out, "%-18s  %-11s %3s %4s  %-14s %-24s %-30s %s\n", "ADDRESS", "KIND", "LEN",
			"ORIG", "FLAGS", "OPERANDS", "BYTES", "PERSONALITY");
	for (size_t i = 0; i < t->n; i++) {
		const struct pvsite *s = &t->sites[i];
		format_operands(s, ops, sizeof(ops));
		format_flags(s, flags, sizeof(flags), ",");
		format_orig(s, orig, sizeof(orig));
		fprintf(out, "%#-18llx  %-11s %3u %4u  %-14s %-24s %-30s %s\n",
			(unsigned long long)s->addr, kind_name(s->kind), s->len, s->orig_len,
			flags[0] ? flags : "-", ops, orig, site_personality(img, s));
	}
	count_kinds(t, counts);
	fprintf(out, "%zu site%s", t->n, t->n == 1 ? "" : "s");
	const char *sep = ": ";
	for (unsigned k = 0; k < PVSITE_KIND_COUNT; k++)
		if (counts[k]) {
			fprintf(out, "%s%s %zu", sep, kind_name(k), counts[k]);
			sep = ", ";
		}
	fputc('\n', out);
}

void print_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\t': fputs("\\t", out); break;
		case '\r': fputs("\\r", out); break;
		default:
			/* Control bytes must be escaped; bytes >= 0x80 are passed through,
			 * so a non-UTF-8 path yields invalid JSON only in that string. */
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static void print_json_site(FILE *out, struct elfimage *img, size_t i, const struct pvsite *s)
{
	char ops[96], flags[96], orig[2 * PVSITES_ORIG_MAX + 1];
	const char *r = reg_name(s);

	format_operands(s, ops, sizeof(ops));
	format_flags(s, flags, sizeof(flags), "\",\"");
	format_orig(s, orig, sizeof(orig));
	/* Addresses are strings: 64-bit values do not survive JSON numbers (doubles). */
	fprintf(out, "    {\"index\": %zu, \"addr\": \"%#llx\", \"kind\": ", i,
		(unsigned long long)s->addr);
	print_json_string(out, kind_name(s->kind));
	fprintf(out, ", \"len\": %u, \"orig_len\": %u, \"flags\": [%s%s%s], \"reg\": ", s->len,
		s->orig_len, flags[0] ? "\"" : "", flags, flags[0] ? "\"" : "");
	if (r)
		print_json_string(out, r);
	else
		fputs("null", out);
	fprintf(out, ", \"aux\": %u, \"width\": %u, \"operands\": ", s->aux, s->width);
	print_json_string(out, ops);
	fprintf(out, ", \"orig\": \"%s\", \"personality\": ", orig);
	print_json_string(out, site_personality(img, s));
	fputc('}', out);
}

void table_print_json(FILE *out, struct elfimage *img, const struct site_table *t)
{
	size_t counts[PVSITE_KIND_COUNT];

	fputs("{\n  \"image\": ", out);
	print_json_string(out, img->path);
	fprintf(out, ",\n  \"table_addr\": \"%#llx\",\n  \"sites\": [", (unsigned long long)t->addr);
	for (size_t i = 0; i < t->n; i++) {
		fputs(i ? ",\n" : "\n", out);
		print_json_site(out, img, i, &t->sites[i]);
	}
	fprintf(out, "%s],\n  \"count\": %zu,\n  \"kinds\": {", t->n ? "\n  " : "", t->n);
	count_kinds(t, counts);
	const char *sep = "";
	for (unsigned k = 0; k < PVSITE_KIND_COUNT; k++)
		if (counts[k]) {
			fputs(sep, out);
			print_json_string(out, kind_name(k));
			fprintf(out, ": %zu", counts[k]);
			sep = ", ";
		}
	fputs("}\n}\n", out);
}
