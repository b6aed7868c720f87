/* pvas_main.c: the `as` that gcc runs: annotate the input, then run the real assembler on it */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkstemps */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pvas.h"

#ifndef PVAS_REAL_AS
#define PVAS_REAL_AS "/usr/bin/as"
#endif

/*
 * gcc -B<dir> makes the driver run <dir>/as with exactly the arguments it
 * would give the system assembler.  We only need to know which arguments
 * are input files: everything else is handed on untouched, so the wrapper
 * keeps working with options it has never heard of.
 */

void pvas_die(const char *action, const char *reason)
{
	fprintf(stderr, "pvas: %s failed: %s\n", action, reason);
	exit(1);
}

void *pvas_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		pvas_die("allocate memory", strerror(errno));
	return q;
}

char *pvas_xstrndup(const char *s, size_t n)
{
	char *d = pvas_xrealloc(NULL, n + 1);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

/* gas options whose value may be the next argument (getopt required_argument). */
static int takes_value(const char *a)
{
	static const char *const opts[] = {
		"-o", "-I", "--defsym", "--MD", "--debug-prefix-map", "--multibyte-handling",
		"--listing-lhs-width", "--listing-lhs-width2", "--listing-rhs-width",
		"--listing-cont-lines", "--hash-size",
	};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (!strcmp(a, opts[i]))
			return 1;
	return 0;
}

/* Append all of `f` to the unit's buffer. */
static void slurp(struct pvas_unit *u, FILE *f, const char *name, size_t *cap)
{
	char **buf = (char **)&u->src;
	size_t n;

	u->inputs = pvas_xrealloc(u->inputs, (u->ninputs + 1) * sizeof *u->inputs);
	u->inputs[u->ninputs].name = name;
	u->inputs[u->ninputs++].start = u->len;
	do {
		if (*cap - u->len < 65536)
			*buf = pvas_xrealloc(*buf, *cap = 2 * *cap + 65536);
		n = fread(*buf + u->len, 1, *cap - u->len - 1, f);
		u->len += n;
	} while (n > 0);
	if (ferror(f)) {
		char what[600];
		snprintf(what, sizeof what, "read %s", name);
		pvas_die(what, strerror(errno));
	}
	/* gas reads files one after the other: never let a last line run into the next file */
	if (u->len && (*buf)[u->len - 1] != '\n')
		(*buf)[u->len++] = '\n';
	(*buf)[u->len] = 0;
}

static void add_marker(struct pvas_unit *u, size_t k)
{
	const char *name = u->inputs[k].name;
	if (!strcmp(name, "<stdin>"))
		return; /* gas has its own name for it */
	char *m = pvas_xrealloc(NULL, 2 * strlen(name) + 16), *p = m;
	p += sprintf(p, "# 1 \"");
	for (; *name; name++) {
		if (*name == '"' || *name == '\\')
			*p++ = '\\';
		*p++ = *name;
	}
	strcpy(p, "\"\n");
	pvas_add_repl(u, u->inputs[k].start, u->inputs[k].start, m);
	free(m);
}

static int run(const char *real, char **args)
{
	pid_t pid = fork();
	if (pid < 0)
		pvas_die("fork", strerror(errno));
	if (pid == 0) {
		execv(real, args);
		char what[600];
		snprintf(what, sizeof what, "exec %s", real);
		pvas_die(what, strerror(errno));
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			pvas_die("wait for the assembler", strerror(errno));
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int main(int argc, char **argv)
{
	const char *real = getenv("PVAS_REAL_AS");
	const char *dbg = getenv("PVAS_DEBUG");
	int debug = dbg && !strcmp(dbg, "1");
	struct pvas_unit u;
	size_t cap = 0;
	int first_input = -1, passthrough = 0;

	if (!real || !*real)
		real = PVAS_REAL_AS;
	/* a PVAS_REAL_AS pointing back at a wrapper would fork forever */
	if (getenv("PVAS_ACTIVE"))
		pvas_die("run the real assembler", "PVAS_REAL_AS leads back to the pvas wrapper");
	memset(&u, 0, sizeof u);
	u.start_mode = 64;

	char **args = pvas_xrealloc(NULL, (size_t)(argc + 2) * sizeof *args);
	int nargs = 0;
	args[nargs++] = (char *)real;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1]) {
			if (!strcmp(a, "--32"))
				u.start_mode = 32;
			else if (!strcmp(a, "--64") || !strcmp(a, "--x32"))
				u.start_mode = 64;
			else if (!strcmp(a, "--version") || !strcmp(a, "--help") ||
				 !strncmp(a, "--target-help", 13))
				passthrough = 1;
			args[nargs++] = argv[i];
			if (takes_value(a) && i + 1 < argc)
				args[nargs++] = argv[++i];
			continue;
		}
		/* an input file: all of them are read now, the first slot gets the temp file */
		FILE *f = strcmp(a, "-") ? fopen(a, "r") : stdin;
		if (!f) {
			char what[600];
			snprintf(what, sizeof what, "read %s", a);
			pvas_die(what, strerror(errno));
		}
		slurp(&u, f, strcmp(a, "-") ? a : "<stdin>", &cap);
		if (f != stdin)
			fclose(f);
		if (first_input < 0) {
			first_input = nargs;
			args[nargs++] = NULL; /* filled with the temp name below */
		}
	}
	if (passthrough && first_input < 0) {
		args[nargs] = NULL;
		execv(real, args);
		pvas_die("exec the real assembler", strerror(errno));
	}
	if (first_input < 0) { /* no file named: gas would read stdin */
		slurp(&u, stdin, "<stdin>", &cap);
		first_input = nargs++;
	}
	args[nargs] = NULL;

	pvas_scan(&u);
	/*
	 * A cpp-style line marker before each file makes gas name the user's
	 * file, not our temporary one, in diagnostics and in the line tables of
	 * `as -g`.  gas only reads markers with its preprocessor on, which an
	 * input starting with #NO_APP turns off: then we add nothing.
	 */
	if (strncmp(u.src, "#NO_APP", 7))
		for (size_t k = 0; k < u.ninputs; k++)
			add_marker(&u, k);

	const char *tmpdir = getenv("TMPDIR");
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s/pvasXXXXXX.s", tmpdir && *tmpdir ? tmpdir : "/tmp");
	int fd = mkstemps(tmp, 2);
	if (fd < 0)
		pvas_die("create a temporary file", strerror(errno));
	FILE *out = fdopen(fd, "w");
	if (!out || pvas_write(&u, out) || fclose(out)) {
		int e = errno;
		unlink(tmp);
		pvas_die("write the annotated assembly", strerror(e));
	}
	args[first_input] = tmp;
	if (debug)
		fprintf(stderr, "pvas: annotated %zu site(s), kept %s\n", u.nsites, tmp);

	setenv("PVAS_ACTIVE", "1", 1);
	int rc = run(real, args);
	if (!debug)
		unlink(tmp);

	for (size_t i = 0; i < u.nsites; i++)
		free(u.sites[i].copy);
	for (size_t i = 0; i < u.nrepls; i++)
		free(u.repls[i].text);
	free(u.sites);
	free(u.repls);
	free(u.inputs);
	free((char *)u.src);
	free(args);
	return rc;
}
