/* pvas_parse.c: split AT&T assembly into statements and track sections, modes and regions */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvas.h"

/*
 * The scanner works on a "clean" copy of the input in which every comment
 * byte has been replaced by a space (newlines kept).  Offsets are the same
 * in both copies, so statements are found in the clean one while the
 * replacements refer to the original, which is otherwise copied verbatim.
 */

#define MAX_PENDING 4 /* prefix-only statements waiting for their instruction */
#define SECT_STACK 64

struct marker {
	size_t off; /* where the "# pvsite:" comment starts */
	int kind;
};

struct sect {
	int exec, prev_exec;
};

struct known_sect {
	char *name;
	int exec;
};

struct scan {
	struct pvas_unit *u;
	char *clean;
	struct marker *markers;
	size_t nmarkers, next_marker;
	int manual; /* kind of a pending manual marker, or -1 */
	struct sect cur;
	struct sect stack[SECT_STACK];
	size_t depth;
	struct known_sect *known;
	size_t nknown;
	int annotate;	   /* .pvsites_noannotate / .pvsites_annotate */
	int intel;	   /* .intel_syntax: we only understand AT&T */
	int macro_depth;   /* inside .macro ... .endm: not executed here */
	int rept_depth;	   /* inside .rept/.irp/.irpc ... .endr: repeated */
	const char *block; /* innermost of the two, for the warning */
	/* prefixes standing alone as statements, applying to the next insn */
	size_t pend_start[MAX_PENDING], pend_end[MAX_PENDING];
	size_t npend;
	char pend_text[64];
};

static int ident_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '$';
}

static int is_prefix(const char *w)
{
	static const char *const prefixes[] = {
		"rep", "repe", "repz", "repne", "repnz", "lock", "data16", "data32",
		"addr16", "addr32", "rex", "rex64", "notrack", "bnd", "xacquire",
		"xrelease", "cs", "ds", "es", "fs", "gs", "ss",
	};
	if (w[0] == '{' || !strncmp(w, "rex.", 4))
		return 1; /* {vex}, {disp32}, rex.W ... */
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (!strcmp(w, prefixes[i]))
			return 1;
	return 0;
}

/* Does a "# ..." comment at s (after '#') say "pvsite: KIND"?  -1 if not. */
static int marker_kind(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	if (e - s < 7 || strncmp(s, "pvsite:", 7))
		return -1;
	s += 7;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	const char *n = s;
	while (s < e && (isalnum((unsigned char)*s) || *s == '-' || *s == '_'))
		s++;
	return pvas_manual_kind(n, (size_t)(s - n));
}

/*
 * Blank out comments.  gas on x86 ELF: '#' starts a comment anywhere
 * outside strings, '/' does only at the start of a line, and C block
 * comments survive into .s files written by hand.
 */
static void clean_input(struct scan *sc)
{
	const char *src = sc->u->src;
	size_t n = sc->u->len, cap = 0;
	char *c = sc->clean;
	int bol = 1;

	for (size_t i = 0; i < n;) {
		char ch = src[i];
		if (ch == '"') {
			for (i++; i < n && src[i] != '"' && src[i] != '\n'; i++)
				if (src[i] == '\\' && i + 1 < n && src[i + 1] != '\n')
					i++;
			if (i < n && src[i] == '"')
				i++;
			bol = 0;
		} else if (ch == '\'' && i + 1 < n && src[i + 1] != '\n') {
			/* character constant 'c or '\c: must not end a statement at ';' */
			i += (i + 1 < n && src[i + 1] == '\\') ? 3 : 2;
			bol = 0;
		} else if (ch == '/' && i + 1 < n && src[i + 1] == '*') {
			size_t j = i + 2;
			while (j + 1 < n && !(src[j] == '*' && src[j + 1] == '/'))
				j++;
			j = j + 1 < n ? j + 2 : n;
			for (; i < j; i++)
				if (c[i] != '\n')
					c[i] = ' ';
		} else if (ch == '#' || (ch == '/' && bol)) {
			size_t j = i;
			while (j < n && src[j] != '\n')
				j++;
			int k = ch == '#' ? marker_kind(src + i + 1, src + j) : -1;
			if (k >= 0) {
				if (sc->nmarkers == cap) {
					cap = cap ? 2 * cap : 16;
					sc->markers = pvas_xrealloc(sc->markers, cap * sizeof *sc->markers);
				}
				sc->markers[sc->nmarkers].off = i;
				sc->markers[sc->nmarkers++].kind = k;
			}
			memset(c + i, ' ', j - i);
			i = j;
		} else {
			bol = ch == '\n' || (bol && (ch == ' ' || ch == '\t'));
			i++;
		}
	}
}

/*
 * Diagnostics name the user's file: for a preprocessed .S that is the one
 * in the last cpp line marker ("# 12 \"entry.S\" 1"), as gas does too.
 */
const char *pvas_where(const struct pvas_unit *u, size_t off)
{
	static char buf[512];
	static char name[400];
	size_t k = 0;

	while (k + 1 < u->ninputs && u->inputs[k + 1].start <= off)
		k++;
	snprintf(name, sizeof name, "%s", u->inputs[k].name);
	unsigned long line = 1;
	for (size_t i = u->inputs[k].start; i < off && i < u->len; i++) {
		if (u->src[i] != '\n')
			continue;
		line++;
		const char *p = u->src + i + 1;
		char *end;
		if (p[0] != '#' || p[1] != ' ' || !isdigit((unsigned char)p[2]))
			continue;
		unsigned long n = strtoul(p + 2, &end, 10);
		if (end[0] != ' ' || end[1] != '"')
			continue;
		const char *q = strchr(end + 2, '"'), *nl = strchr(end + 2, '\n');
		if (!q || (nl && nl < q))
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(q - end - 2), end + 2);
		line = n - 1; /* the marker line itself does not count */
	}
	snprintf(buf, sizeof buf, "%s:%lu", name, line);
	return buf;
}

/* Executable by name alone: .text, .text.*, and *.text (.init.text ...). */
static int exec_by_name(const char *name)
{
	size_t n = strlen(name);
	return !strcmp(name, ".text") || !strncmp(name, ".text.", 6) ||
	       (n > 5 && !strcmp(name + n - 5, ".text"));
}

static void set_section(struct scan *sc, const char *a, const char *e)
{
	char name[256], flags[64];
	size_t n = 0, f = 0;
	int have_flags = 0;

	while (a < e && isspace((unsigned char)*a))
		a++;
	if (a < e && *a == '"') {
		for (a++; a < e && *a != '"'; a++)
			if (n + 1 < sizeof name)
				name[n++] = *a;
		if (a < e)
			a++;
	} else {
		for (; a < e && *a != ',' && !isspace((unsigned char)*a); a++)
			if (n + 1 < sizeof name)
				name[n++] = *a;
	}
	name[n] = 0;
	while (a < e && isspace((unsigned char)*a))
		a++;
	if (a < e && *a == ',') {
		for (a++; a < e && isspace((unsigned char)*a); a++)
			;
		if (a < e && *a == '"') {
			have_flags = 1;
			for (a++; a < e && *a != '"'; a++)
				if (f + 1 < sizeof flags)
					flags[f++] = *a;
		}
	}
	flags[f] = 0;

	/* gas reuses a section's first flags when later switches omit them */
	int exec = exec_by_name(name);
	size_t k;
	for (k = 0; k < sc->nknown; k++)
		if (!strcmp(sc->known[k].name, name))
			break;
	if (k < sc->nknown) {
		exec = sc->known[k].exec;
	} else if (have_flags) {
		sc->known = pvas_xrealloc(sc->known, (sc->nknown + 1) * sizeof *sc->known);
		sc->known[sc->nknown].name = pvas_xstrndup(name, n);
		sc->known[sc->nknown++].exec = exec = strchr(flags, 'x') != NULL;
	}
	sc->cur.prev_exec = sc->cur.exec;
	sc->cur.exec = exec;
}

static void directive(struct scan *sc, const char *w, size_t ws, size_t a, size_t e)
{
	struct pvas_unit *u = sc->u;
	const char *c = sc->clean;

	/* gas does not know our two directives: drop them, keep the line */
	if (!strcmp(w, ".pvsites_noannotate") || !strcmp(w, ".pvsites_annotate")) {
		pvas_add_repl(u, ws, e, "");
		if (!sc->macro_depth)
			sc->annotate = w[9] == 'a';
		return;
	}
	if (!strcmp(w, ".macro")) {
		sc->macro_depth++;
		sc->block = ".macro";
	} else if (!strcmp(w, ".endm")) {
		sc->macro_depth -= sc->macro_depth > 0;
	} else if (!strcmp(w, ".rept") || !strcmp(w, ".irp") || !strcmp(w, ".irpc")) {
		sc->rept_depth++;
		if (!sc->macro_depth)
			sc->block = w[2] == 'e' ? ".rept" : ".irp";
	} else if (!strcmp(w, ".endr")) {
		sc->rept_depth -= sc->rept_depth > 0;
	}
	if (sc->macro_depth)
		return; /* a macro body is only text until it is expanded */

	if (!strncmp(w, ".if", 3))
		u->cond_depth++;
	else if (!strcmp(w, ".endif"))
		u->cond_depth -= u->cond_depth > 0;

	if (!strcmp(w, ".text") || !strcmp(w, ".data") || !strcmp(w, ".bss")) {
		sc->cur.prev_exec = sc->cur.exec;
		sc->cur.exec = w[1] == 't';
	} else if (!strcmp(w, ".section")) {
		set_section(sc, c + a, c + e);
	} else if (!strcmp(w, ".pushsection")) {
		if (sc->depth < SECT_STACK)
			sc->stack[sc->depth] = sc->cur;
		sc->depth++;
		set_section(sc, c + a, c + e);
	} else if (!strcmp(w, ".popsection")) {
		if (sc->depth && --sc->depth < SECT_STACK)
			sc->cur = sc->stack[sc->depth];
	} else if (!strcmp(w, ".previous")) {
		int t = sc->cur.exec;
		sc->cur.exec = sc->cur.prev_exec;
		sc->cur.prev_exec = t;
	} else if (!strncmp(w, ".code", 5)) {
		if (!strcmp(w + 5, "16") || !strcmp(w + 5, "16gcc")) {
			u->mode = 16;
			u->code16gcc = w[7] == 'g';
		} else if (!strcmp(w + 5, "32")) {
			u->mode = 32;
		} else if (!strcmp(w + 5, "64")) {
			u->mode = 64;
		}
	} else if (!strcmp(w, ".intel_syntax")) {
		sc->intel = 1;
	} else if (!strcmp(w, ".att_syntax")) {
		sc->intel = 0;
	}
}

static size_t trim_end(const char *c, size_t s, size_t e)
{
	while (e > s && isspace((unsigned char)c[e - 1]))
		e--;
	return e;
}

/* One instruction with its inline prefixes: src[is, e), mnemonic at m. */
static void instruction(struct scan *sc, size_t is, size_t m, size_t mend, size_t e,
			const char *inline_pfx)
{
	struct pvas_unit *u = sc->u;
	const char *c = sc->clean;
	char mn[32], pfx[160];
	size_t n = mend - m;
	int manual = sc->manual;

	sc->manual = -1;
	if (n >= sizeof mn)
		n = sizeof mn - 1;
	for (size_t i = 0; i < n; i++)
		mn[i] = (char)tolower((unsigned char)c[m + i]);
	mn[n] = 0;
	snprintf(pfx, sizeof pfx, "%s%s", sc->pend_text, inline_pfx);

	size_t oa = mend;
	while (oa < e && isspace((unsigned char)c[oa]))
		oa++;
	char *ops = pvas_xstrndup(c + oa, e - oa);
	struct pvas_insn insn;
	int mode = u->mode;
	if (manual >= 0) {
		pvas_classify_manual(manual, mn, ops, mode, &insn);
		if (insn.kind < 0)
			fprintf(stderr, "pvas: %s: warning: pvsite marker not followed by a mov: %s\n",
				pvas_where(u, m), mn), u->warnings++;
	} else {
		pvas_classify(mn, ops, pfx, mode, &insn);
	}
	free(ops);

	if (insn.kind >= 0 && sc->cur.exec && sc->annotate && !sc->intel) {
		/* the whole site text: waiting prefixes, then this statement */
		char *txt = pvas_xrealloc(NULL, strlen(sc->pend_text) + (e - is) + 2);
		snprintf(txt, strlen(sc->pend_text) + (e - is) + 2, "%s%.*s", sc->pend_text,
			 (int)(e - is), c + is);
		if (sc->macro_depth || sc->rept_depth) {
			fprintf(stderr, "pvas: %s: sensitive instruction inside %s left unannotated: %s\n",
				pvas_where(u, m), sc->block, txt);
			u->warnings++;
		} else if (mode == 16) {
			fprintf(stderr, "pvas: %s: 16-bit code left unannotated: %s\n",
				pvas_where(u, m), txt);
			u->warnings++;
		} else {
			for (size_t i = 0; i < sc->npend; i++)
				pvas_add_repl(u, sc->pend_start[i], sc->pend_end[i], "");
			if (mode == 32)
				insn.flags |= PVSITE_F_CODE32;
			pvas_add_site(u, is, e, txt, &insn);
		}
		free(txt);
	}
	sc->npend = 0;
	sc->pend_text[0] = 0;
}

static void statement(struct scan *sc, size_t s, size_t e)
{
	const char *c = sc->clean;
	size_t p = s;
	char inline_pfx[96] = "", w[40];
	size_t is = (size_t)-1;

	/* a "# pvsite:" marker applies to the next instruction after it */
	while (sc->next_marker < sc->nmarkers && sc->markers[sc->next_marker].off < s) {
		sc->manual = sc->markers[sc->next_marker++].kind;
	}
	e = trim_end(c, s, e);
	for (;;) { /* labels: "foo:", "1:", "\"odd name\":" */
		while (p < e && isspace((unsigned char)c[p]))
			p++;
		size_t q = p;
		if (q < e && c[q] == '"') {
			for (q++; q < e && c[q] != '"'; q++)
				;
			q++;
		} else {
			while (q < e && ident_char((unsigned char)c[q]))
				q++;
		}
		if (q > p && q < e && c[q] == ':') {
			p = q + 1;
			continue;
		}
		break;
	}
	while (p < e) {
		size_t q = p;
		while (q < e && !isspace((unsigned char)c[q]))
			q++;
		size_t n = q - p < sizeof w - 1 ? q - p : sizeof w - 1;
		for (size_t i = 0; i < n; i++)
			w[i] = (char)tolower((unsigned char)c[p + i]);
		w[n] = 0;
		if (w[0] == '.' && is == (size_t)-1) {
			sc->npend = 0;
			sc->pend_text[0] = 0;
			directive(sc, w, p, q, e);
			return;
		}
		if (is == (size_t)-1)
			is = p;
		if (!is_prefix(w)) {
			instruction(sc, is, p, q, e, inline_pfx);
			return;
		}
		if (strlen(inline_pfx) + n + 2 < sizeof inline_pfx) {
			strcat(inline_pfx, w);
			strcat(inline_pfx, " ");
		}
		for (p = q; p < e && isspace((unsigned char)c[p]); p++)
			;
	}
	if (is != (size_t)-1 && sc->npend < MAX_PENDING &&
	    strlen(sc->pend_text) + (e - is) + 2 < sizeof sc->pend_text) {
		/* prefix-only statement ("rep;"): it belongs to the next insn */
		sc->pend_start[sc->npend] = is;
		sc->pend_end[sc->npend++] = e;
		strncat(sc->pend_text, c + is, e - is);
		strcat(sc->pend_text, " ");
	}
}

int pvas_scan(struct pvas_unit *u)
{
	struct scan sc;

	memset(&sc, 0, sizeof sc);
	sc.u = u;
	sc.manual = -1;
	sc.annotate = 1;
	sc.cur.exec = 1; /* gas starts in .text */
	sc.block = ".macro";
	u->mode = u->start_mode;
	sc.clean = pvas_xstrndup(u->src, u->len);
	clean_input(&sc);

	const char *c = sc.clean;
	size_t s = 0;
	for (size_t i = 0; i <= u->len; i++) {
		if (i < u->len && c[i] == '"') { /* ';' in a string is not a separator */
			for (i++; i < u->len && c[i] != '"' && c[i] != '\n'; i++)
				if (c[i] == '\\' && i + 1 < u->len && c[i + 1] != '\n')
					i++;
			if (i >= u->len || c[i] == '\n')
				i--;
			continue;
		}
		if (i < u->len && c[i] == '\'' && i + 1 < u->len && c[i + 1] != '\n') {
			i += (c[i + 1] == '\\') ? 2 : 1;
			continue;
		}
		if (i == u->len || c[i] == ';' || c[i] == '\n') {
			statement(&sc, s, i < u->len ? i : u->len);
			s = i + 1;
		}
	}
	if (sc.macro_depth)
		fprintf(stderr, "pvas: %s: warning: .macro without .endm\n", pvas_where(u, u->len));
	for (size_t k = 0; k < sc.nknown; k++)
		free(sc.known[k].name);
	free(sc.known);
	free(sc.markers);
	free(sc.clean);
	return 0;
}
