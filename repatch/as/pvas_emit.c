/* pvas_emit.c: turn classified instructions into sites, pads and the .pvsites chunk */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pvas.h"

/* LEN of every kind: the bytes a site reserves */
static const unsigned char kind_len[] = {
#define PVSITE_KIND(id, name, len) len,
#include "site_kinds.def"
#undef PVSITE_KIND
};

/*
 * The record's copy is assembled in .pvsites, so anything positional in
 * the text must still mean what it meant at the site: "." becomes the
 * site label and numeric label references ("1f", "2b") become symbols set
 * next to the site, where gas resolves them the same way.
 */
static char *positional(const char *text, unsigned n, char *sets, size_t setsz)
{
	size_t cap = strlen(text) + 64, o = 0, so = 0;
	char *out = pvas_xrealloc(NULL, cap);
	unsigned nref = 0;

	sets[0] = 0;
	for (const char *p = text; *p;) {
		const char *q = p;
		while (isalnum((unsigned char)*q) || *q == '_' || *q == '.')
			q++;
		size_t len = q > p ? (size_t)(q - p) : 1, d = 0;
		while (d < len && isdigit((unsigned char)p[d]))
			d++;
		if (o + len + 48 >= cap) /* room for the token or its replacement */
			out = pvas_xrealloc(out, cap = 2 * cap + len + 48);
		if (len == 1 && *p == '.') {
			o += (size_t)snprintf(out + o, cap - o, ".Lpvs_%u", n);
		} else if (d && d + 1 == len && (p[d] == 'f' || p[d] == 'b') && so + 64 < setsz) {
			o += (size_t)snprintf(out + o, cap - o, ".Lpvs_%u_r%u", n, nref);
			so += (size_t)snprintf(sets + so, setsz - so, " ; .set .Lpvs_%u_r%u, %.*s", n,
					       nref, (int)len, p);
			nref++;
		} else {
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
	}
	out[o] = 0;
	return out;
}

int pvas_add_repl(struct pvas_unit *u, size_t start, size_t end, const char *text)
{
	if (u->nrepls == u->caprepls) {
		u->caprepls = u->caprepls ? 2 * u->caprepls : 64;
		u->repls = pvas_xrealloc(u->repls, u->caprepls * sizeof *u->repls);
	}
	u->repls[u->nrepls].start = start;
	u->repls[u->nrepls].end = end;
	u->repls[u->nrepls++].text = pvas_xstrndup(text, strlen(text));
	return 0;
}

int pvas_add_site(struct pvas_unit *u, size_t start, size_t end, const char *text,
		  const struct pvas_insn *insn)
{
	unsigned n = (unsigned)u->nsites, lines = 0;
	char sets[512];

	/* a block comment inside the instruction may hold newlines: keep the count */
	char *t = pvas_xstrndup(text, strlen(text));
	for (char *p = t; *p; p++)
		if (*p == '\n') {
			*p = ' ';
			lines++;
		}
	char *copy = positional(t, n, sets, sizeof sets);
	size_t sz = strlen(t) + strlen(sets) + lines + 128;
	char *r = pvas_xrealloc(NULL, sz);
	unsigned len = kind_len[insn->kind];
	int k = snprintf(r, sz, ".Lpvs_%u: %s ; .Lpvs_%u_e: .org .Lpvs_%u + %u, 0x90%s", n, t, n,
			 n, len, sets);
	while (lines--)
		r[k++] = '\n';
	r[k] = 0;
	pvas_add_repl(u, start, end, r);
	free(r);
	free(t);

	if (u->nsites == u->capsites) {
		u->capsites = u->capsites ? 2 * u->capsites : 32;
		u->sites = pvas_xrealloc(u->sites, u->capsites * sizeof *u->sites);
	}
	u->sites[n].insn = *insn;
	u->sites[n].len = len;
	u->sites[n].cond = u->cond_depth > 0;
	u->sites[n].copy = copy;
	u->nsites++;
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct pvas_repl *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	/* an insertion (a line marker) goes before a replacement at the same place */
	return (x->end != x->start) - (y->end != y->start);
}

static const char *mode_directive(int mode, int gcc16)
{
	return mode == 64 ? ".code64" : mode == 32 ? ".code32" : gcc16 ? ".code16gcc" : ".code16";
}

static void chunk_header(FILE *out, size_t count)
{
	fprintf(out, "\t.balign 8\n\t.long 0x%x ; .short %u ; .short %u ; .long %zu ; .long 0\n",
		PVSITES_MAGIC, PVSITES_VERSION, (unsigned)sizeof(struct pvsite_rec), count);
}

/* One struct pvsite_rec; returns the .codeNN mode it leaves in effect. */
static int record(FILE *out, const struct pvas_unit *u, size_t i, int cur)
{
	const struct pvas_site *s = &u->sites[i];
	int want = s->insn.flags & PVSITE_F_CODE32 ? 32 : 64;

	fprintf(out, "\t.balign 8\n");
	/* an ELF32 object cannot hold a 64-bit pc-relative value: sign-extend by hand,
	   assuming (as every default link does) that the table follows the code */
	if (u->start_mode == 32)
		fprintf(out, "\t.long .Lpvs_%zu - . ; .long 0xffffffff\n", i);
	else
		fprintf(out, "\t.quad .Lpvs_%zu - .\n", i);
	fprintf(out, "\t.byte %u, %u, .Lpvs_%zu_e - .Lpvs_%zu, %u, %u, %u, %u, 0\n", s->insn.kind,
		s->len, i, i, s->insn.flags, s->insn.reg, s->insn.aux, s->insn.width);
	if (want != cur)
		fprintf(out, "\t%s\n", mode_directive(cur = want, 0));
	fprintf(out, ".Lpvs_%zu_o: %s\n\t.org .Lpvs_%zu_o + 16, 0\n", i, s->copy, i);
	return cur;
}

int pvas_write(const struct pvas_unit *u, FILE *out)
{
	size_t pos = 0;

	qsort(u->repls, u->nrepls, sizeof *u->repls, by_start);
	for (size_t i = 0; i < u->nrepls; i++) {
		const struct pvas_repl *r = &u->repls[i];
		if (r->start < pos)
			continue; /* cannot happen: statements do not overlap */
		fwrite(u->src + pos, 1, r->start - pos, out);
		fputs(r->text, out);
		pos = r->end;
	}
	fwrite(u->src + pos, 1, u->len - pos, out);
	if (!u->nsites)
		return ferror(out) ? -1 : 0;

	if (u->len && u->src[u->len - 1] != '\n')
		fputc('\n', out);
	/*
	 * Sites inside .if may never be assembled: each gets a chunk of its own,
	 * emitted only if its label exists.  All others share one chunk.
	 */
	size_t uncond = 0;
	for (size_t i = 0; i < u->nsites; i++)
		uncond += !u->sites[i].cond;
	fprintf(out, "\t.pushsection .pvsites,\"a\",@progbits\n");
	if (uncond)
		chunk_header(out, uncond);
	int cur = u->mode;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < u->nsites; i++) {
			if (u->sites[i].cond != pass)
				continue;
			if (pass) {
				fprintf(out, "\t.ifdef .Lpvs_%zu\n", i);
				chunk_header(out, 1);
			}
			int before = cur;
			cur = record(out, u, i, cur);
			if (pass) { /* the .codeNN inside may not happen: undo it inside too */
				if (cur != before)
					fprintf(out, "\t%s\n",
						mode_directive(cur = before, before == 16 && u->code16gcc));
				fprintf(out, "\t.endif\n");
			}
		}
	if (cur != u->mode)
		fprintf(out, "\t%s\n", mode_directive(u->mode, u->code16gcc));
	fprintf(out, "\t.popsection\n");
	return ferror(out) ? -1 : 0;
}
