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

/* "native|kvm" for a mask. */
static void mask_names(unsigned mask, char *buf, size_t cap)
{
	buf[0] = 0;
	for (unsigned i = 0; personality_at(i); i++)
		if (mask >> i & 1) {
			size_t used = strlen(buf);
			snprintf(buf + used, cap - used, "%s%s", used ? "|" : "", personality_at(i)->name);
		}
}

long site_personality(const struct repatch_mem *mem, const struct pvsite *site, char *buf,
		      size_t cap)
{
	const uint8_t *bytes = mem->map(mem->ctx, site->addr, site->len, 0);
	unsigned mask;

	if (!bytes) {
		snprintf(buf, cap, "%s", SITE_UNMAPPED);
		return -1;
	}
	if (repatch_classify_all(site, bytes, &mask) < 0) {
		snprintf(buf, cap, "%s", SITE_FOREIGN);
		return 0;
	}
	mask_names(mask, buf, cap);
	return mask;
}

static void tally_init(struct site_tally *tl)
{
	memset(tl, 0, sizeof(*tl));
	for (size_t i = 0; i < sizeof(tl->first_bad) / sizeof(tl->first_bad[0]); i++)
		tl->first_bad[i] = -1;
}

static void tally_add(struct site_tally *tl, size_t site, long mask)
{
	if (mask <= 0) {
		size_t bad = tl->foreign + tl->unmapped;
		if (bad < sizeof(tl->first_bad) / sizeof(tl->first_bad[0]))
			tl->first_bad[bad] = (long)site;
		if (mask < 0)
			tl->unmapped++;
		else
			tl->foreign++;
		return;
	}
	for (size_t i = 0; i < tl->nheld; i++)
		if (tl->held[i].mask == (unsigned)mask) {
			tl->held[i].n++;
			return;
		}
	/* Sequences that coincide between personalities are rare (native and
	 * kvm on a 1-byte pad), so a handful of combinations ever appears. */
	if (tl->nheld < TALLY_MAX) {
		tl->held[tl->nheld].mask = (unsigned)mask;
		tl->held[tl->nheld++].n = 1;
	}
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

void table_print_text(FILE *out, const struct site_source *src, const struct site_table *t,
		      struct site_tally *tally)
{
	char ops[96], flags[64], orig[2 * PVSITES_ORIG_MAX + 1], pers[96];
	size_t counts[PVSITE_KIND_COUNT];
	struct site_tally local;
	struct site_tally *tl = tally ? tally : &local;

	tally_init(tl);
	if (strcmp(src->kind, "image") != 0)
		fprintf(out, "# personalities read from %s %s\n", src->kind, src->path);

	if (t->n)
		fprintf(out, "%-18s  %-11s %3s %4s  %-14s %-24s %-30s %s\n", "ADDRESS", "KIND", "LEN",
			"ORIG", "FLAGS", "OPERANDS", "BYTES", "PERSONALITY");
	for (size_t i = 0; i < t->n; i++) {
		const struct pvsite *s = &t->sites[i];
		format_operands(s, ops, sizeof(ops));
		format_flags(s, flags, sizeof(flags), ",");
		format_orig(s, orig, sizeof(orig));
		tally_add(tl, i, site_personality(&src->mem, s, pers, sizeof(pers)));
		fprintf(out, "%#-18llx  %-11s %3u %4u  %-14s %-24s %-30s %s\n",
			(unsigned long long)s->addr, kind_name(s->kind), s->len, s->orig_len,
			flags[0] ? flags : "-", ops, orig, pers);
	}
	count_kinds(t, counts);
	fprintf(out, "%zu site%s", t->n, t->n == 1 ? "" : "s");
	const char *sep = ": ";
	for (unsigned k = 0; k < PVSITE_KIND_COUNT; k++)
		if (counts[k]) {
			fprintf(out, "%s%s %zu", sep, kind_name(k), counts[k]);
			sep = ", ";
		}
	fputs("\npersonalities", out);
	sep = ": ";
	for (size_t i = 0; i < tl->nheld; i++) {
		mask_names(tl->held[i].mask, pers, sizeof(pers));
		fprintf(out, "%s%s %zu", sep, pers, tl->held[i].n);
		sep = ", ";
	}
	if (tl->foreign)
		fprintf(out, "%s%s %zu", sep, SITE_FOREIGN, tl->foreign), sep = ", ";
	if (tl->unmapped)
		fprintf(out, "%s%s %zu", sep, SITE_UNMAPPED, tl->unmapped), sep = ", ";
	if (!t->n)
		fputs(": -", out);
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

static void print_json_site(FILE *out, const struct site_source *src, struct site_tally *tl,
			    size_t i, const struct pvsite *s)
{
	char ops[96], flags[96], orig[2 * PVSITES_ORIG_MAX + 1], pers[96];
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
	tally_add(tl, i, site_personality(&src->mem, s, pers, sizeof(pers)));
	print_json_string(out, pers);
	fputc('}', out);
}

void table_print_json(FILE *out, const struct site_source *src, const struct site_table *t,
		      struct site_tally *tally)
{
	size_t counts[PVSITE_KIND_COUNT];
	struct site_tally local;
	struct site_tally *tl = tally ? tally : &local;
	char pers[96];

	tally_init(tl);
	fputs("{\n  \"image\": ", out);
	print_json_string(out, src->image);
	fputs(",\n  \"source\": ", out);
	print_json_string(out, src->kind);
	fputs(", \"source_path\": ", out);
	print_json_string(out, src->path);
	fprintf(out, ",\n  \"table_addr\": \"%#llx\",\n  \"sites\": [", (unsigned long long)t->addr);
	for (size_t i = 0; i < t->n; i++) {
		fputs(i ? ",\n" : "\n", out);
		print_json_site(out, src, tl, i, &t->sites[i]);
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
	fputs("},\n  \"personalities\": {", out);
	sep = "";
	for (size_t i = 0; i < tl->nheld; i++) {
		mask_names(tl->held[i].mask, pers, sizeof(pers));
		fputs(sep, out);
		print_json_string(out, pers);
		fprintf(out, ": %zu", tl->held[i].n);
		sep = ", ";
	}
	if (tl->foreign)
		fprintf(out, "%s\"%s\": %zu", sep, SITE_FOREIGN, tl->foreign), sep = ", ";
	if (tl->unmapped)
		fprintf(out, "%s\"%s\": %zu", sep, SITE_UNMAPPED, tl->unmapped);
	fputs("}\n}\n", out);
}
