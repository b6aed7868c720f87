/* pvsites_ram.c: guest memory for `pvsites list --ram/--stream`: a RAM dump or the pages of a saved stream */
#include "pvsites_ram.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"

/*
 * A stream's RAM is allocated whole (calloc: untouched pages cost nothing),
 * so its header's ram_size is capped.  Guests run here end below the
 * runtime window (1022 MiB); the cap leaves room for bigger native guests.
 */
#define STREAM_RAM_MAX (64ull << 30)

static int ram_fail(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int ram_fail(const char *path, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pvsites: %s: ", path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

int guest_ram_load_dump(struct guest_ram *ram, const char *path)
{
	struct stat st;
	int fd;

	memset(ram, 0, sizeof(*ram));
	ram->path = path;
	ram->what = "RAM dump";
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ram_fail(path, "cannot open RAM dump: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ram_fail(path, "RAM dump is not a regular file");
	}
	if (st.st_size == 0) {
		close(fd);
		return ram_fail(path, "RAM dump is empty");
	}
	ram->size = (size_t)st.st_size;
	/* Dumps are as big as the guest: map, never copy.  Private and
	 * read-only: nothing here writes guest memory. */
	void *p = mmap(NULL, ram->size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return ram_fail(path, "cannot map RAM dump: %s", strerror(e));
	ram->bytes = p;
	ram->mapped = 1;
	return 0;
}

/* ---- streams: the pages of PAGE_BATCH records, decoded by state/stream_decode.c */

static int sink_header(void *ctx, const struct stream_info *info, char *why, size_t whylen)
{
	struct guest_ram *ram = ctx;

	ram->bytes = calloc(1, (size_t)info->ram_size);
	if (!ram->bytes) {
		snprintf(why, whylen, "no memory for %llu bytes of guest RAM",
			 (unsigned long long)info->ram_size);
		return -1;
	}
	ram->size = (size_t)info->ram_size;
	snprintf(ram->personality, sizeof(ram->personality), "%s", info->personality);
	return 0;
}

/* The decoder proved every gfn lies inside ram_size and the data is count pages. */
static int sink_pages(void *ctx, const uint64_t *gfns, uint32_t count, const uint8_t *data,
		      char *why, size_t whylen)
{
	struct guest_ram *ram = ctx;

	for (uint32_t i = 0; i < count; i++)
		memcpy(ram->bytes + gfns[i] * STREAM_PAGE_SIZE, data + (size_t)i * STREAM_PAGE_SIZE,
		       STREAM_PAGE_SIZE);
	return 0;
}

static int sink_machine(void *ctx, const struct stream_machine *m, char *why, size_t whylen)
{
	struct guest_ram *ram = ctx;

	if (m->patch) {
		snprintf(ram->patch_personality, sizeof(ram->patch_personality), "%s",
			 m->patch->personality);
		ram->patch_sites = m->patch->nr_sites;
	}
	return 0;
}

/*
 * stream_decode checks the header against a host before it hands out a
 * page.  pvsites runs no guest, so the "host" is made to accept whatever
 * the stream was written for: its CPU vendor and personality are read from
 * the header first (peek_header), every feature bit is offered, and the
 * versions are open.  Everything else (framing, order, gfns, lengths) is
 * checked as for a real migration.
 */
static void peek_header(int fd, struct stream_host *host, char *vendor, char *pers)
{
	struct stream_io io;
	struct stream_reader r;
	struct stream_record rec;

	stream_io_fd(&io, &fd);
	stream_reader_init(&r, &io);
	if (stream_read_record(&r, &rec) == 1 && rec.type == STREAM_REC_HEADER &&
	    rec.len > STREAM_MAGIC_LEN && memcmp(rec.body, STREAM_MAGIC, STREAM_MAGIC_LEN) == 0) {
		Pvmigrate__StreamHeader *h = pvmigrate__stream_header__unpack(
			NULL, rec.len - STREAM_MAGIC_LEN, rec.body + STREAM_MAGIC_LEN);
		if (h && h->cpu && h->cpu->vendor && strlen(h->cpu->vendor) == 12)
			memcpy(vendor, h->cpu->vendor, 13);
		if (h && h->personality && strlen(h->personality) <= STREAM_NAME_MAX)
			strcpy(pers, h->personality);
		if (h)
			pvmigrate__stream_header__free_unpacked(h, NULL);
	}
	stream_reader_free(&r);
	memcpy(host->cpu.vendor, vendor, 13);
}

int guest_ram_load_stream(struct guest_ram *ram, const char *path)
{
	char vendor[13], pers[STREAM_NAME_MAX + 1];
	const char *pers_list[1] = {pers};
	struct stream_host host = {
		.personalities = pers_list,
		.nr_personalities = 1,
		.max_ram = STREAM_RAM_MAX,
		.max_vcpus = STREAM_MAX_VCPUS,
		.image_abi = UINT32_MAX,
		.patch_table_version = UINT32_MAX,
	};
	struct stream_sink sink = {ram, sink_header, sink_pages, sink_machine, NULL};
	struct stream_io io;
	char why[320];
	int fd;

	memset(ram, 0, sizeof(*ram));
	ram->path = path;
	ram->what = "stream";
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ram_fail(path, "cannot open stream: %s", strerror(errno));
	/* A header that cannot be peeked leaves the host refusing it: the
	 * decoder then says what is wrong with it. */
	stream_cpu_local(&host.cpu);
	memcpy(vendor, host.cpu.vendor, 13);
	strcpy(pers, "?");
	peek_header(fd, &host, vendor, pers);
	for (unsigned w = 0; w < STREAM_CPU_WORDS; w++)
		host.cpu.word[w] = UINT32_MAX;
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return ram_fail(path, "stream input cannot be read twice (seek failed): %s",
				strerror(errno));
	}
	stream_io_fd(&io, &fd);
	int rc = stream_decode(&io, &host, &sink, why, sizeof(why));
	close(fd);
	if (rc != 0) {
		free(ram->bytes);
		ram->bytes = NULL;
		return ram_fail(path, "%s", why);
	}
	if (!ram->bytes)
		return ram_fail(path, "stream has no guest RAM");
	return 0;
}

int guest_ram_segments(struct guest_ram *ram, const struct elfimage *img)
{
	Elf64_Ehdr eh;
	uint64_t count;

	/* elfimage_load checked the header and that the program headers lie in the file. */
	memcpy(&eh, img->data, sizeof(eh));
	count = eh.e_phoff ? eh.e_phnum : 0;
	if (count == PN_XNUM)
		return ram_fail(img->path, "more program headers than pvsites reads (PN_XNUM)");
	ram->segs = calloc(count ? count : 1, sizeof(*ram->segs));
	if (!ram->segs)
		return ram_fail(img->path, "out of memory");
	for (uint64_t i = 0; i < count; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img->data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		ram->segs[ram->nsegs++] =
			(struct ram_segment){ph.p_vaddr, ph.p_paddr, ph.p_memsz};
	}
	return 0;
}

uint64_t guest_ram_gpa(const struct guest_ram *ram, uint64_t vaddr)
{
	for (size_t i = 0; i < ram->nsegs; i++)
		if (vaddr - ram->segs[i].vaddr < ram->segs[i].memsz)
			return ram->segs[i].paddr + (vaddr - ram->segs[i].vaddr);
	return vaddr;
}

static uint8_t *map_ram(void *ctx, uint64_t addr, size_t len, int write)
{
	struct guest_ram *ram = ctx;
	uint64_t gpa = guest_ram_gpa(ram, addr);

	if (write || gpa > ram->size || len > ram->size - gpa)
		return NULL;
	return ram->bytes + gpa;
}

struct repatch_mem guest_ram_mem(struct guest_ram *ram)
{
	return (struct repatch_mem){ram, map_ram};
}

void guest_ram_free(struct guest_ram *ram)
{
	if (ram->mapped)
		munmap(ram->bytes, ram->size);
	else
		free(ram->bytes);
	free(ram->segs);
	memset(ram, 0, sizeof(*ram));
}
