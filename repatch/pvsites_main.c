/* pvsites_main.c: the pvsites command: list, audit and patch the sites of an ELF image */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "elfimage.h"
#include "pvsites_ram.h"
#include "repatch.h"
#include "table_print.h"

/* Exit statuses, as pvsites(1) documents them. */
enum { EXIT_OK = 0, EXIT_FINDINGS = 1, EXIT_USAGE = 2 };

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;    /* synopsis after the command name */
	const char *summary; /* one line for usage() */
};

static int cmd_list(int argc, char **argv);
static int cmd_audit(int argc, char **argv);
static int cmd_patch(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{"list", cmd_list, "[--json] [--ram FILE | --stream FILE] IMAGE",
	 "print every site and the personality it holds (in IMAGE or a guest's memory)"},
	{"audit", cmd_audit, "[--json] IMAGE",
	 "list sensitive instructions that no site covers (exit 1 if any)"},
	{"patch", cmd_patch, "--from P --to P IMAGE -o OUT",
	 "rewrite every site from one personality to another, all or nothing"},
	{"help", cmd_help, "[COMMAND]", "show this help, or one command's"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fputs("usage: pvsites COMMAND [ARGS]\n\ncommands:\n", out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-6s %s\n         %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	fputs("\npersonalities:", out);
	for (unsigned i = 0; personality_at(i); i++)
		fprintf(out, "\n  %-10s %s", personality_at(i)->name, personality_at(i)->summary);
	fputs("\n\nexit status: 0 success, 1 findings (uncovered instructions, sites matching no "
	      "personality, a failed patch), 2 usage or input error\n",
	      out);
}

static const struct command *command_named(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int usage_error(const struct command *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const struct command *c, const char *fmt, ...)
{
	va_list ap;
	fputs("pvsites: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: pvsites %s %s\n", c->name, c->args);
	return EXIT_USAGE;
}

/* Options shared by the commands; each command says which it accepts. */
struct options {
	int json;
	const char *from, *to, *out, *image;
	const char *ram, *stream; /* list: read the sites' bytes from a guest's memory */
};

enum {
	OPT_JSON = 'j',
	OPT_FROM = 'f',
	OPT_TO = 't',
	OPT_OUT = 'o',
	OPT_HELP = 'h',
	OPT_RAM = 'r',
	OPT_STREAM = 's',
};

/* Returns -1 to go on, or the exit status (help printed, or a usage error). */
static int parse_options(const struct command *c, int argc, char **argv, const char *accepted,
			 struct options *o)
{
	static const struct option all[] = {
		{"json", no_argument, NULL, OPT_JSON},	 {"from", required_argument, NULL, OPT_FROM},
		{"to", required_argument, NULL, OPT_TO}, {"output", required_argument, NULL, OPT_OUT},
		{"help", no_argument, NULL, OPT_HELP},	 {"ram", required_argument, NULL, OPT_RAM},
		{"stream", required_argument, NULL, OPT_STREAM}, {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	opterr = 0; /* getopt would name the command, not the program: report ourselves */
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":o:h", all, NULL)) != -1) {
		if (ch == OPT_HELP) {
			printf("usage: pvsites %s %s\n  %s\n", c->name, c->args, c->summary);
			return EXIT_OK;
		}
		if (ch == ':')
			return usage_error(c, "option %s needs an argument", argv[optind - 1]);
		if (ch == '?' || !strchr(accepted, ch))
			return usage_error(c, "unknown option %s", argv[optind - 1]);
		if (ch == OPT_JSON)
			o->json = 1;
		else if (ch == OPT_FROM)
			o->from = optarg;
		else if (ch == OPT_TO)
			o->to = optarg;
		else if (ch == OPT_OUT)
			o->out = optarg;
		else if (ch == OPT_RAM)
			o->ram = optarg;
		else if (ch == OPT_STREAM)
			o->stream = optarg;
	}
	if (optind >= argc)
		return usage_error(c, "missing IMAGE");
	if (optind + 1 < argc)
		return usage_error(c, "unexpected argument %s", argv[optind + 1]);
	o->image = argv[optind];
	return -1;
}

static int load_image(struct elfimage *img, const char *path)
{
	char why[256];
	if (elfimage_load(img, path, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "pvsites: %s: %s\n", path, why);
	return -1;
}

/* Decode `size` table bytes that live at guest address `addr` into `t`; `who` names them in errors. */
static int decode_table(const char *who, const uint8_t *bytes, uint64_t size, uint64_t addr,
			struct site_table *t)
{
	struct repatch_err err = {0};
	long n = pvsites_count(bytes, (size_t)size, &err);

	memset(t, 0, sizeof(*t));
	t->addr = addr;
	if (n >= 0) {
		t->sites = calloc(n ? (size_t)n : 1, sizeof(*t->sites));
		if (!t->sites) {
			fprintf(stderr, "pvsites: %s: out of memory for %ld sites\n", who, n);
			return -1;
		}
		n = pvsites_decode(bytes, (size_t)size, addr, t->sites, (size_t)n, &err);
	}
	if (n < 0) {
		fprintf(stderr, "pvsites: %s: corrupt table: %s\n", who, err.msg);
		free(t->sites);
		t->sites = NULL;
		return -1;
	}
	t->n = (size_t)n;
	return 0;
}

/*
 * Decode the image's table into `t`.  An image without one yields an empty
 * table if `optional` (audit reports everything as uncovered), else an error.
 */
static int load_table(struct elfimage *img, struct site_table *t, int optional)
{
	const struct elf_section *sec = img->pvsites;

	memset(t, 0, sizeof(*t));
	if (!sec) {
		if (optional)
			return 0;
		fprintf(stderr, "pvsites: %s: no .pvsites table (not built with the annotator?)\n",
			img->path);
		return -1;
	}
	return decode_table(img->path, elfimage_section_bytes(img, sec), sec->size, sec->addr, t);
}

/*
 * The table as the guest holds it: IMAGE's .pvsites section gives where it
 * is and how long; the bytes come from the guest's memory (the retained
 * table is what the runtime rewrites from).  A copy that differs from the
 * image's is reported: the image is then likely not the guest's.
 */
static int load_table_ram(struct elfimage *img, struct guest_ram *ram, struct site_table *t,
			  int *differs)
{
	const struct elf_section *sec = img->pvsites;
	struct repatch_mem mem = guest_ram_mem(ram);
	char who[512];

	*differs = 0;
	if (!sec) {
		fprintf(stderr, "pvsites: %s: no .pvsites table (not built with the annotator?)\n",
			img->path);
		return -1;
	}
	snprintf(who, sizeof(who), "%s (%s)", ram->path, ram->what);
	const uint8_t *bytes = mem.map(mem.ctx, sec->addr, (size_t)sec->size, 0);
	if (!bytes) {
		fprintf(stderr,
			"pvsites: %s: the table at %#llx (%llu bytes, gpa %#llx) lies outside guest "
			"memory (%zu bytes)\n",
			who, (unsigned long long)sec->addr, (unsigned long long)sec->size,
			(unsigned long long)guest_ram_gpa(ram, sec->addr), ram->size);
		return -1;
	}
	*differs = memcmp(bytes, elfimage_section_bytes(img, sec), (size_t)sec->size) != 0;
	return decode_table(who, bytes, sec->size, sec->addr, t);
}

static const char *kind_or_unknown(unsigned kind)
{
	const char *n = pvsite_kind_name(kind);
	return n ? n : "?";
}

#define FIRST_BAD_MAX (sizeof(((struct site_tally *)0)->first_bad) / sizeof(long))

/* The findings of a listing on stderr, naming the first sites; returns the exit status. */
static int list_findings(const struct site_table *t, const struct site_tally *tl,
			 const struct site_source *src)
{
	size_t bad = tl->foreign + tl->unmapped;

	if (tl->foreign)
		fprintf(stderr, "pvsites: %zu site%s no personality\n", tl->foreign,
			tl->foreign == 1 ? " matches" : "s match");
	if (tl->unmapped)
		fprintf(stderr, "pvsites: %zu site%s outside %s %s\n", tl->unmapped,
			tl->unmapped == 1 ? " lies" : "s lie", src->kind, src->path);
	for (size_t i = 0; i < bad && i < FIRST_BAD_MAX; i++) {
		const struct pvsite *s = &t->sites[tl->first_bad[i]];
		fprintf(stderr, "pvsites:   site %ld at %#llx (%s)\n", tl->first_bad[i],
			(unsigned long long)s->addr, kind_or_unknown(s->kind));
	}
	if (bad > FIRST_BAD_MAX)
		fprintf(stderr, "pvsites:   and %zu more\n", bad - FIRST_BAD_MAX);
	return bad ? EXIT_FINDINGS : EXIT_OK;
}

static int cmd_list(int argc, char **argv)
{
	const struct command *c = command_named("list");
	struct options o;
	struct elfimage img;
	struct site_table t;
	struct site_tally tally;
	struct guest_ram ram = {0};
	int differs = 0, rc = parse_options(c, argc, argv, "jrs", &o);

	if (rc >= 0)
		return rc;
	if (o.ram && o.stream)
		return usage_error(c, "--ram and --stream exclude each other");
	if (load_image(&img, o.image) < 0)
		return EXIT_USAGE;
	struct site_source src = {img.path, "image", img.path, elfimage_mem(&img)};
	if (o.ram || o.stream) {
		rc = o.ram ? guest_ram_load_dump(&ram, o.ram) : guest_ram_load_stream(&ram, o.stream);
		if (rc < 0 || guest_ram_segments(&ram, &img) < 0 ||
		    load_table_ram(&img, &ram, &t, &differs) < 0) {
			guest_ram_free(&ram);
			elfimage_free(&img);
			return EXIT_USAGE;
		}
		src = (struct site_source){img.path, ram.what, ram.path, guest_ram_mem(&ram)};
	} else if (load_table(&img, &t, 0) < 0) {
		elfimage_free(&img);
		return EXIT_USAGE;
	}
	if (o.stream && !o.json)
		printf("# stream: the sender ran the guest as %s; its patch state: %s, %u sites\n",
		       ram.personality, ram.patch_personality[0] ? ram.patch_personality : "none",
		       ram.patch_sites);
	if (o.json)
		table_print_json(stdout, &src, &t, &tally);
	else
		table_print_text(stdout, &src, &t, &tally);
	rc = list_findings(&t, &tally, &src);
	if (differs) {
		fprintf(stderr,
			"pvsites: %s: its table differs from the .pvsites of %s: is that the "
			"guest's image?\n",
			src.path, img.path);
		rc = EXIT_FINDINGS;
	}
	free(t.sites);
	guest_ram_free(&ram);
	elfimage_free(&img);
	return rc;
}

static int cmd_audit(int argc, char **argv)
{
	struct options o;
	struct elfimage img;
	struct site_table t;
	int rc = parse_options(command_named("audit"), argc, argv, "j", &o);

	if (rc >= 0)
		return rc;
	if (load_image(&img, o.image) < 0)
		return EXIT_USAGE;
	if (load_table(&img, &t, 1) < 0) {
		elfimage_free(&img);
		return EXIT_USAGE;
	}
	long uncovered = audit_image(stdout, &img, &t, o.json);
	free(t.sites);
	elfimage_free(&img);
	if (uncovered < 0)
		return EXIT_USAGE;
	return uncovered > 0 ? EXIT_FINDINGS : EXIT_OK;
}

static const struct personality *personality_arg(const char *name)
{
	const struct personality *p = personality_find(name);
	if (p)
		return p;
	fprintf(stderr, "pvsites: unknown personality '%s'; available:", name);
	for (unsigned i = 0; personality_at(i); i++)
		fprintf(stderr, "%s %s", i ? "," : "", personality_at(i)->name);
	fputc('\n', stderr);
	return NULL;
}

/*
 * A failed patch leaves no OUT behind, not even one from an earlier run, so
 * that nothing downstream mistakes a stale image for the patched one.  OUT
 * naming the input itself is never removed.
 */
static void discard_output(const char *out, const char *image)
{
	struct stat so, si;
	if (stat(out, &so) != 0)
		return;
	if (stat(image, &si) == 0 && so.st_dev == si.st_dev && so.st_ino == si.st_ino)
		return;
	if (unlink(out) != 0)
		fprintf(stderr, "pvsites: %s: cannot remove: %s\n", out, strerror(errno));
}

static int cmd_patch(int argc, char **argv)
{
	const struct command *c = command_named("patch");
	struct options o;
	struct elfimage img;
	struct site_table t;
	struct repatch_err err = {0};
	char why[256];
	int rc = parse_options(c, argc, argv, "fto", &o);

	if (rc >= 0)
		return rc;
	if (!o.from || !o.to || !o.out)
		return usage_error(c, "patch needs --from, --to and -o");
	const struct personality *from = personality_arg(o.from), *to = personality_arg(o.to);
	if (!from || !to)
		return EXIT_USAGE;
	if (load_image(&img, o.image) < 0) {
		discard_output(o.out, o.image);
		return EXIT_USAGE;
	}
	if (load_table(&img, &t, 0) < 0) {
		elfimage_free(&img);
		discard_output(o.out, o.image);
		return EXIT_USAGE;
	}
	rc = EXIT_OK;
	struct repatch_mem mem = elfimage_mem(&img);
	if (repatch_rewrite(t.sites, t.n, &mem, from, to, &err) != 0) {
		fprintf(stderr, "pvsites: %s: cannot patch from %s to %s: %s", o.image, from->name,
			to->name, err.msg);
		/* The library's message names the site; make sure it names the kind too. */
		if (err.site >= 0 && (size_t)err.site < t.n) {
			const char *kind = kind_or_unknown(t.sites[err.site].kind);
			if (!strstr(err.msg, kind))
				fprintf(stderr, " [%s]", kind);
		}
		fputc('\n', stderr);
		rc = EXIT_FINDINGS;
	} else if (elfimage_write(&img, o.out, why, sizeof(why)) != 0) {
		fprintf(stderr, "pvsites: %s: %s\n", o.out, why);
		rc = EXIT_FINDINGS;
	}
	if (rc != EXIT_OK)
		discard_output(o.out, o.image);
	free(t.sites);
	elfimage_free(&img);
	return rc;
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return EXIT_OK;
	}
	const struct command *c = command_named(argv[1]);
	if (!c) {
		fprintf(stderr, "pvsites: no command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	printf("usage: pvsites %s %s\n  %s\n", c->name, c->args, c->summary);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	const struct command *c = command_named(argv[1]);
	if (!c) {
		fprintf(stderr, "pvsites: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	int rc = c->run(argc - 1, argv + 1);
	/* Output to a full disk or closed pipe must not pass for success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "pvsites: writing output: %s\n", strerror(errno));
		return EXIT_USAGE;
	}
	return rc;
}
