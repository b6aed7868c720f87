/* elfimage.c: load and check an ELF64 x86-64 image, map guest addresses to its bytes, write it back */
#include "elfimage.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers are copied out of the file as is: the host must share x86-64's byte order. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "elfimage.c reads little-endian ELF headers in place; port it for a big-endian host"
#endif

static int fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* [off, off+len) lies inside a file of `total` bytes, without overflowing. */
static int range_in_file(uint64_t off, uint64_t len, uint64_t total)
{
	return off <= total && len <= total - off;
}

static int read_whole_file(struct elfimage *img, const char *path, char *why, size_t whylen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(why, whylen, "%s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(why, whylen, "not a regular file");
	}
	img->size = (size_t)st.st_size;
	img->mode = (unsigned)st.st_mode & 0777u;
	img->data = malloc(img->size ? img->size : 1);
	if (!img->data) {
		close(fd);
		return fail(why, whylen, "out of memory");
	}
	for (size_t got = 0; got < img->size;) {
		ssize_t r = read(fd, img->data + got, img->size - got);
		if (r <= 0) { /* a file shrinking under us is as bad as an I/O error */
			int e = r < 0 ? errno : EIO;
			close(fd);
			return fail(why, whylen, "read: %s", strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

static int check_header(const Elf64_Ehdr *eh, size_t size, char *why, size_t whylen)
{
	if (size < SELFMAG || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return fail(why, whylen, "not an ELF file");
	if (size < EI_NIDENT)
		return fail(why, whylen, "truncated ELF header");
	if (eh->e_ident[EI_CLASS] == ELFCLASS32)
		return fail(why, whylen, "32-bit ELF file (only ELF64 x86-64 images are supported)");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return fail(why, whylen, "unknown ELF class %u", eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return fail(why, whylen, "not a little-endian ELF file");
	if (size < sizeof(*eh))
		return fail(why, whylen, "truncated ELF header");
	if (eh->e_machine != EM_X86_64)
		return fail(why, whylen, "not an x86-64 image (ELF machine %u)", eh->e_machine);
	if (eh->e_type == ET_REL)
		return fail(why, whylen, "relocatable object, link it first");
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return fail(why, whylen, "not an executable or shared object (ELF type %u)",
			    eh->e_type);
	return 0;
}

/* Copy section header `i` out of the file (the table was range-checked by the caller). */
static Elf64_Shdr shdr_at(const struct elfimage *img, uint64_t shoff, size_t i)
{
	Elf64_Shdr sh;
	memcpy(&sh, img->data + shoff + i * sizeof(sh), sizeof(sh));
	return sh;
}

/* A name in a string table section: NUL-terminated inside it, else NULL. */
static const char *string_in(const struct elfimage *img, const struct elf_section *strtab,
			     uint64_t off)
{
	if (!strtab || strtab->type == SHT_NOBITS || off >= strtab->size)
		return NULL;
	const char *s = (const char *)img->data + strtab->offset + off;
	return memchr(s, 0, strtab->size - off) ? s : NULL;
}

static int load_sections(struct elfimage *img, const Elf64_Ehdr *eh, char *why, size_t whylen)
{
	uint64_t count = eh->e_shnum, strndx = eh->e_shstrndx;

	if (eh->e_shoff == 0)
		return 0; /* stripped of section headers: nothing to find */
	if (eh->e_shentsize != sizeof(Elf64_Shdr))
		return fail(why, whylen, "unexpected section header size %u", eh->e_shentsize);
	if (!range_in_file(eh->e_shoff, sizeof(Elf64_Shdr), img->size))
		return fail(why, whylen, "section header table lies outside the file");
	/* More than 0xff00 sections: the real numbers live in section 0. */
	Elf64_Shdr sh0 = shdr_at(img, eh->e_shoff, 0);
	if (count == 0)
		count = sh0.sh_size;
	if (strndx == SHN_XINDEX)
		strndx = sh0.sh_link;
	if (count > (img->size - eh->e_shoff) / sizeof(Elf64_Shdr))
		return fail(why, whylen, "section header table lies outside the file");
	if (strndx >= count)
		return fail(why, whylen, "bad section name table index %llu",
			    (unsigned long long)strndx);

	img->sections = calloc((size_t)count, sizeof(*img->sections));
	if (!img->sections)
		return fail(why, whylen, "out of memory");
	img->nsections = (size_t)count;
	for (size_t i = 0; i < count; i++) {
		Elf64_Shdr sh = shdr_at(img, eh->e_shoff, i);
		struct elf_section *s = &img->sections[i];
		if (sh.sh_type != SHT_NOBITS && !range_in_file(sh.sh_offset, sh.sh_size, img->size))
			return fail(why, whylen, "section %zu lies outside the file", i);
		if (sh.sh_flags & SHF_ALLOC && sh.sh_addr + sh.sh_size < sh.sh_addr)
			return fail(why, whylen, "section %zu wraps the address space", i);
		*s = (struct elf_section){.name = "", .index = (uint32_t)i, .type = sh.sh_type,
					  .flags = sh.sh_flags, .addr = sh.sh_addr,
					  .offset = sh.sh_offset, .size = sh.sh_size,
					  .link = sh.sh_link, .entsize = sh.sh_entsize};
	}
	/* Names second: the name table is itself one of the sections just checked. */
	const struct elf_section *names = strndx ? &img->sections[strndx] : NULL;
	for (size_t i = 0; names && i < count; i++) {
		const char *n = string_in(img, names, shdr_at(img, eh->e_shoff, i).sh_name);
		if (!n)
			return fail(why, whylen, "section %zu has a bad name", i);
		img->sections[i].name = n;
	}
	return 0;
}

static int check_segments(const struct elfimage *img, const Elf64_Ehdr *eh, char *why,
			  size_t whylen)
{
	uint64_t count = eh->e_phnum;

	if (eh->e_phoff == 0 || count == 0)
		return 0;
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return fail(why, whylen, "unexpected program header size %u", eh->e_phentsize);
	if (count == PN_XNUM) /* the real count is in section 0 */
		count = img->nsections ? shdr_at(img, eh->e_shoff, 0).sh_info : 0;
	if (!range_in_file(eh->e_phoff, 0, img->size) ||
	    count > (img->size - eh->e_phoff) / sizeof(Elf64_Phdr))
		return fail(why, whylen, "program header table lies outside the file");
	for (uint64_t i = 0; i < count; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img->data + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (!range_in_file(ph.p_offset, ph.p_filesz, img->size))
			return fail(why, whylen, "segment %llu lies outside the file",
				    (unsigned long long)i);
	}
	return 0;
}

static int find_table(struct elfimage *img, char *why, size_t whylen)
{
	for (size_t i = 0; i < img->nsections; i++) {
		const struct elf_section *s = &img->sections[i];
		if (strcmp(s->name, ".pvsites") != 0)
			continue;
		if (img->pvsites)
			return fail(why, whylen, "more than one .pvsites section");
		/* The runtime reads the table from guest memory, so it must be loaded. */
		if (s->type == SHT_NOBITS || !(s->flags & SHF_ALLOC))
			return fail(why, whylen, ".pvsites is not an allocated section with contents");
		img->pvsites = s;
	}
	return 0;
}

static int symbol_order(const void *a, const void *b)
{
	const struct elf_symbol *x = a, *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	/* At one address prefer the FUNC (sorted last, lookups take the last). */
	if (x->is_func != y->is_func)
		return x->is_func - y->is_func;
	return strcmp(x->name, y->name);
}

/* Symbols only decorate audit output: a damaged .symtab is ignored, not fatal. */
static void load_symbols(struct elfimage *img)
{
	const struct elf_section *tab = NULL, *names;

	for (size_t i = 0; i < img->nsections && !tab; i++)
		if (img->sections[i].type == SHT_SYMTAB)
			tab = &img->sections[i];
	if (!tab)
		return;
	if (tab->entsize != sizeof(Elf64_Sym) || tab->link >= img->nsections)
		return;
	names = &img->sections[tab->link];
	if (names->type != SHT_STRTAB)
		return;

	size_t count = (size_t)(tab->size / sizeof(Elf64_Sym));
	img->symbols = calloc(count ? count : 1, sizeof(*img->symbols));
	if (!img->symbols)
		return;
	for (size_t i = 0; i < count; i++) {
		Elf64_Sym sym;
		memcpy(&sym, img->data + tab->offset + i * sizeof(sym), sizeof(sym));
		unsigned type = ELF64_ST_TYPE(sym.st_info);
		if (type != STT_FUNC && type != STT_NOTYPE)
			continue;
		if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE ||
		    sym.st_shndx >= img->nsections || sym.st_name == 0)
			continue;
		const char *n = string_in(img, names, sym.st_name);
		if (!n || !*n)
			continue;
		img->symbols[img->nsymbols++] =
			(struct elf_symbol){n, sym.st_value, sym.st_shndx, type == STT_FUNC};
	}
	qsort(img->symbols, img->nsymbols, sizeof(*img->symbols), symbol_order);
}

int elfimage_load(struct elfimage *img, const char *path, char *why, size_t whylen)
{
	Elf64_Ehdr eh;

	memset(img, 0, sizeof(*img));
	img->path = path;
	if (read_whole_file(img, path, why, whylen) < 0)
		goto bad;
	memset(&eh, 0, sizeof(eh));
	memcpy(&eh, img->data, img->size < sizeof(eh) ? img->size : sizeof(eh));
	if (check_header(&eh, img->size, why, whylen) < 0 ||
	    load_sections(img, &eh, why, whylen) < 0 || check_segments(img, &eh, why, whylen) < 0 ||
	    find_table(img, why, whylen) < 0)
		goto bad;
	load_symbols(img);
	return 0;
bad:
	elfimage_free(img);
	return -1;
}

void elfimage_free(struct elfimage *img)
{
	free(img->data);
	free(img->sections);
	free(img->symbols);
	memset(img, 0, sizeof(*img));
}

const uint8_t *elfimage_section_bytes(const struct elfimage *img, const struct elf_section *sec)
{
	return img->data + sec->offset;
}

int elfimage_is_code(const struct elf_section *sec)
{
	return sec->type != SHT_NOBITS && (sec->flags & SHF_ALLOC) && (sec->flags & SHF_EXECINSTR);
}

const struct elf_section *elfimage_section_at(const struct elfimage *img, uint64_t addr,
					      size_t len)
{
	for (size_t i = 0; i < img->nsections; i++) {
		const struct elf_section *s = &img->sections[i];
		if (s->type == SHT_NOBITS || !(s->flags & SHF_ALLOC))
			continue; /* no guest address, or no bytes in the file */
		if (addr >= s->addr && addr - s->addr <= s->size && len <= s->size - (addr - s->addr))
			return s;
	}
	return NULL;
}

/*
 * Writes are confined to code: a site is an instruction, so a table that
 * points a site into data is wrong, and refusing here keeps a hostile table
 * from rewriting the image's data through the patcher.
 */
static uint8_t *map_guest(void *ctx, uint64_t addr, size_t len, int write)
{
	struct elfimage *img = ctx;
	const struct elf_section *s = elfimage_section_at(img, addr, len);

	if (!s || (write && !elfimage_is_code(s)))
		return NULL;
	return img->data + s->offset + (addr - s->addr);
}

struct repatch_mem elfimage_mem(struct elfimage *img)
{
	return (struct repatch_mem){img, map_guest};
}

const struct elf_symbol *elfimage_symbol_before(const struct elfimage *img,
						const struct elf_section *sec, uint64_t addr,
						uint64_t *off)
{
	size_t lo = 0, hi = img->nsymbols;

	while (lo < hi) { /* first symbol above addr */
		size_t mid = lo + (hi - lo) / 2;
		if (img->symbols[mid].value <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Step back over symbols of other sections that happen to sort between. */
	while (lo > 0 && img->symbols[lo - 1].value >= sec->addr) {
		const struct elf_symbol *sym = &img->symbols[--lo];
		if (sym->shndx == sec->index) {
			*off = addr - sym->value;
			return sym;
		}
	}
	return NULL;
}

int elfimage_write(const struct elfimage *img, const char *out, char *why, size_t whylen)
{
	size_t plen = strlen(out);
	char *tmp = malloc(plen + 8);

	if (!tmp)
		return fail(why, whylen, "out of memory");
	memcpy(tmp, out, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	/* The temporary sits beside `out` so that rename() cannot cross filesystems. */
	int fd = mkstemp(tmp);
	if (fd < 0) {
		fail(why, whylen, "cannot create a file beside %s: %s", out, strerror(errno));
		free(tmp);
		return -1;
	}
	const char *step = "write";
	size_t done = 0;
	while (done < img->size) {
		ssize_t w = write(fd, img->data + done, img->size - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto bad;
		done += (size_t)w;
	}
	step = "chmod";
	if (fchmod(fd, img->mode) < 0)
		goto bad;
	step = "fsync";
	if (fsync(fd) < 0)
		goto bad;
	step = "close";
	int rc = close(fd);
	fd = -1;
	if (rc < 0)
		goto bad;
	step = "rename";
	if (rename(tmp, out) < 0)
		goto bad;
	free(tmp);
	return 0;
bad:
	fail(why, whylen, "%s %s: %s", step, out, errno ? strerror(errno) : "short write");
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}
