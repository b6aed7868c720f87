/* test_pvsites_ram.c: `pvsites list --ram/--stream` on the reference guest's memory, rewritten to kvm, whole and half-written */
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elfimage.h"
#include "repatch.h"
#include "rt_abi.h"
#include "stream.h"
#include "../lib/tap.h"

#define RAM_SIZE (4u << 20) /* the guest's image ends near 1.2 MiB */

static uint8_t ram[RAM_SIZE];
static Elf64_Phdr segs[8];
static unsigned nsegs;
static struct pvsite *sites;
static long nsites;
static const char *pvsites_bin, *guest, *dir;
static char out_text[1 << 20], err_text[1 << 16];

/* The guest as a loader leaves it: PT_LOAD segments at their p_paddr. */
static int load_guest(struct elfimage *img)
{
	Elf64_Ehdr eh;
	memcpy(&eh, img->data, sizeof(eh));
	memset(ram, 0, sizeof(ram));
	for (unsigned i = 0; i < eh.e_phnum && nsegs < 8; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img->data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_paddr + ph.p_memsz > RAM_SIZE)
			return -1;
		memcpy(ram + ph.p_paddr, img->data + ph.p_offset, ph.p_filesz);
		segs[nsegs++] = ph;
	}
	return nsegs ? 0 : -1;
}

/* Guest-virtual to RAM, as pvsites translates: through PT_LOAD, else identity. */
static uint8_t *map_ram(void *ctx, uint64_t addr, size_t len, int write)
{
	uint64_t gpa = addr;
	for (unsigned i = 0; i < nsegs; i++)
		if (addr - segs[i].p_vaddr < segs[i].p_memsz) {
			gpa = segs[i].p_paddr + (addr - segs[i].p_vaddr);
			break;
		}
	return gpa <= RAM_SIZE && len <= RAM_SIZE - gpa ? ram + gpa : NULL;
}

static const struct repatch_mem ram_mem = {NULL, map_ram};

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0, "write %s", path);
}

static void slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
}

/* Run pvsites with the arguments (NULL-terminated); stdout and stderr land in out_text/err_text. */
static int run(const char *arg, ...)
{
	char *argv[16], out[512], err[512];
	va_list ap;
	int n = 0, status;

	argv[n++] = (char *)pvsites_bin;
	va_start(ap, arg);
	for (const char *a = arg; a && n < 15; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	snprintf(out, sizeof(out), "%s/out.txt", dir);
	snprintf(err, sizeof(err), "%s/err.txt", dir);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		execv(pvsites_bin, argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	slurp(out, out_text, sizeof(out_text));
	slurp(err, err_text, sizeof(err_text));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The PERSONALITY column of the line listing the site at `addr`, or "". */
static const char *column_of(uint64_t addr, char *buf, size_t cap)
{
	char key[32];
	snprintf(key, sizeof(key), "\n%#llx ", (unsigned long long)addr);
	const char *line = strstr(out_text, key);
	buf[0] = 0;
	if (!line)
		return buf;
	const char *end = strchr(line + 1, '\n');
	const char *sp = end;
	while (sp > line && sp[-1] != ' ')
		sp--;
	snprintf(buf, cap, "%.*s", (int)(end - sp), sp);
	return buf;
}

static int is_call_kind(unsigned kind)
{
#define IS(k) kind == PVSITE_##k ||
	return RT_CALL_KINDS(IS) 0;
#undef IS
}

static void check_all_kvm(const char *what)
{
	char col[64], want[64];
	long wrong = 0, calls = 0;

	for (long i = 0; i < nsites; i++) {
		column_of(sites[i].addr, col, sizeof(col));
		/* a 0- or 1-byte pad holds the same bytes under native and kvm */
		const char *w = sites[i].len - sites[i].orig_len <= 1 ? "native|kvm" : "kvm";
		if (strcmp(col, w) != 0 && wrong++ < 3)
			fprintf(stderr, "%s: site %#llx shows '%s', want %s\n", what,
				(unsigned long long)sites[i].addr, col, w);
		calls += is_call_kind(sites[i].kind) && !(sites[i].flags & PVSITE_F_CODE32) &&
			 strcmp(col, "kvm") == 0;
	}
	CHECK(wrong == 0, "%s: %ld sites not shown as kvm", what, wrong);
	CHECK(calls > 50, "%s: %ld call-kind sites shown as kvm", what, calls);
	snprintf(want, sizeof(want), "\npersonalities: kvm %ld\n", nsites);
	CHECK(strstr(out_text, want), "%s: summary line '%s'", what, want + 1);
}

static void test_ram(void)
{
	char path[512], col[64];
	int rc;

	snprintf(path, sizeof(path), "%s/ram.bin", dir);
	write_file(path, ram, sizeof(ram));
	rc = run("list", "--ram", path, guest, NULL);
	CHECK(rc == 0, "native RAM: exit %d: %s", rc, err_text);
	CHECK(strstr(out_text, "\npersonalities: native "), "native RAM lists native");

	struct repatch_err e;
	CHECK(repatch_rewrite(sites, (size_t)nsites, &ram_mem, personality_find("native"),
			      personality_find("kvm"), &e) == 0, "RAM native->kvm: %s", e.msg);
	write_file(path, ram, sizeof(ram));
	rc = run("list", "--ram", path, guest, NULL);
	CHECK(rc == 0, "kvm RAM: exit %d: %s", rc, err_text);
	check_all_kvm("--ram");
	rc = run("list", "--json", "--ram", path, guest, NULL);
	CHECK(rc == 0 && strstr(out_text, "\"source\": \"RAM dump\"") &&
	      strstr(out_text, "\"personalities\": {\"kvm\": "), "--json --ram: exit %d", rc);
	CHECK(run("list", guest, NULL) == 0 && strstr(out_text, "\npersonalities: native "),
	      "the image itself still lists native");

	/* Half-written: the first two bytes of one call site back to native. */
	long v = -1;
	for (long i = 0; i < nsites && v < 0; i++)
		if (sites[i].kind == PVSITE_OUT && !(sites[i].flags & PVSITE_F_CODE32))
			v = i;
	uint8_t *b = map_ram(NULL, sites[v].addr, 2, 1);
	b[0] = sites[v].orig[0];
	b[1] = sites[v].orig[1];
	write_file(path, ram, sizeof(ram));
	rc = run("list", "--ram", path, guest, NULL);
	char want[96];
	snprintf(want, sizeof(want), "site %ld at %#llx (out)", v, (unsigned long long)sites[v].addr);
	CHECK(rc == 1, "half-written: exit %d", rc);
	CHECK(strstr(err_text, "pvsites: 1 site matches no personality") && strstr(err_text, want),
	      "half-written site named ('%s'): %s", want, err_text);
	CHECK(strcmp(column_of(sites[v].addr, col, sizeof(col)), "HALF-WRITTEN/FOREIGN") == 0,
	      "its line says HALF-WRITTEN/FOREIGN, not '%s'", col);
	snprintf(want, sizeof(want), "personalities: kvm %ld, HALF-WRITTEN/FOREIGN 1\n", nsites - 1);
	CHECK(strstr(out_text, want), "summary counts it: want '%s'", want);
	uint8_t seq[PVSITES_LEN_MAX]; /* whole again, for the stream */
	CHECK(personality_emit(personality_find("kvm"), &sites[v], seq) == 0, "re-emit");
	memcpy(b, seq, 2);

	/* Refusals: RAM too small for the table, both inputs at once. */
	write_file(path, ram, 1u << 20);
	rc = run("list", "--ram", path, guest, NULL);
	CHECK(rc == 2 && strstr(err_text, "lies outside guest memory"), "short RAM: %d %s", rc,
	      err_text);
	rc = run("list", "--ram", path, "--stream", path, guest, NULL);
	CHECK(rc == 2 && strstr(err_text, "exclude each other"), "--ram with --stream: %d", rc);
}

static void test_stream(void)
{
	static uint64_t gfns[RAM_SIZE / STREAM_PAGE_SIZE];
	static struct vm_vcpu_state vcpu;
	struct stream_info info = {.personality = "kvm", .image_abi = 1, .patch_table_version = 1,
				   .ram_size = RAM_SIZE, .nr_vcpus = 1,
				   .page_size = STREAM_PAGE_SIZE};
	struct stream_patch patch = {.personality = "kvm", .nr_sites = (uint32_t)nsites};
	struct stream_machine ms = {&vcpu, 1, NULL, 0, &patch, NULL, NULL, 0};
	struct stream_io io;
	struct stream_writer w;
	char path[512];
	uint32_t n = 0;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/guest.stream", dir);
	CHECK(stream_cpu_local(&info.cpu) == 0, "CPUID");
	vcpu.rflags = 2; /* a vCPU at reset, as far as the decoder checks */
	vcpu.rip = 0xfff0;
	/* Only pages that hold something, as a sender skipping zero pages would. */
	for (uint64_t g = 0; g < RAM_SIZE / STREAM_PAGE_SIZE; g++) {
		static const uint8_t zero[STREAM_PAGE_SIZE];
		if (memcmp(ram + g * STREAM_PAGE_SIZE, zero, STREAM_PAGE_SIZE) != 0)
			gfns[n++] = g;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	stream_io_fd(&io, &fd);
	stream_writer_init(&w, &io);
	CHECK(stream_write_header(&w, &info) == 0 && stream_write_pages(&w, gfns, n, ram) == 0 &&
	      stream_write_machine_state(&w, &ms) == 0 && stream_write_end(&w) == 0,
	      "write stream: %s", w.err);
	close(fd);
	rc = run("list", "--stream", path, guest, NULL);
	CHECK(rc == 0, "--stream: exit %d: %s", rc, err_text);
	check_all_kvm("--stream");
	char want[128];
	snprintf(want, sizeof(want), "its patch state: kvm, %ld sites", nsites);
	CHECK(strstr(out_text, "the sender ran the guest as kvm") && strstr(out_text, want),
	      "stream's own view printed: want '%s'", want);

	/* A stream cut short is refused by the decoder, with its reason. */
	FILE *f = fopen(path, "r+");
	fseek(f, 0, SEEK_END);
	CHECK(ftruncate(fileno(f), ftell(f) - 24) == 0, "truncate");
	fclose(f);
	rc = run("list", "--stream", path, guest, NULL);
	CHECK(rc == 2 && strstr(err_text, "stream"), "truncated stream: %d %s", rc, err_text);
}

int main(int argc, char **argv)
{
	struct elfimage img;
	struct repatch_err e;
	char why[256], tmpl[] = "/tmp/pvsites-ram-XXXXXX";

	if (argc != 3) {
		fprintf(stderr, "usage: test_pvsites_ram PVSITES GUEST_ELF\n");
		return 2;
	}
	pvsites_bin = argv[1];
	guest = argv[2];
	dir = mkdtemp(tmpl);
	if (!dir || elfimage_load(&img, guest, why, sizeof(why)) != 0 || !img.pvsites ||
	    load_guest(&img) < 0) {
		fprintf(stderr, "test_pvsites_ram: cannot set up: %s\n", dir ? why : "mkdtemp");
		return 1;
	}
	const uint8_t *tb = elfimage_section_bytes(&img, img.pvsites);
	nsites = pvsites_count(tb, img.pvsites->size, &e);
	sites = calloc((size_t)nsites, sizeof(*sites));
	nsites = pvsites_decode(tb, img.pvsites->size, img.pvsites->addr, sites, (size_t)nsites, &e);
	CHECK(nsites > 100, "guest table: %ld sites", nsites);
	test_ram();
	test_stream();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_pvsites_ram: could not remove %s\n", dir);
	free(sites);
	elfimage_free(&img);
	return tap_done("test_pvsites_ram");
}
