/* stream.c: the migration stream's byte streams, record framing, record reader and the ordered writer */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream_int.h"
#include "vcpustate.h"

/* ---- shared helpers ---- */

void st_err(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!why || !whylen)
		return;
	n = snprintf(why, whylen, "stream: ");
	if (n < 0 || (size_t)n >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
	va_end(ap);
}

const char *stream_rec_name(uint32_t type)
{
	switch (type) {
	case STREAM_REC_END:
		return "END";
	case STREAM_REC_HEADER:
		return "STREAM_HEADER";
	case STREAM_REC_PAGE_BATCH:
		return "PAGE_BATCH";
	case STREAM_REC_MACHINE_STATE:
		return "MACHINE_STATE";
	case STREAM_REC_STATISTICS:
		return "STATISTICS";
	case STREAM_REC_NIC_HELD:
		return "NIC_HELD";
	case STREAM_REC_NIC_LATE:
		return "NIC_LATE";
	case STREAM_REC_NIC_LATE_END:
		return "NIC_LATE_END";
	}
	return NULL;
}

const char *st_what(uint32_t type, char *buf, size_t len)
{
	const char *name = stream_rec_name(type);

	if (name)
		return name;
	snprintf(buf, len, "record type 0x%08x", type);
	return buf;
}

int st_name_ok(const char *name)
{
	size_t i;

	if (!name || !*name)
		return 0;
	for (i = 0; name[i]; i++)
		if (i >= STREAM_NAME_MAX ||
		    !((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}

int st_vendor_ok(const char *vendor)
{
	size_t i;

	if (!vendor)
		return 0;
	for (i = 0; i < 12; i++)
		if (vendor[i] < 0x20 || vendor[i] > 0x7e)
			return 0;
	return vendor[12] == '\0';
}

/* ---- byte streams ---- */

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(*(int *)ctx, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

static ssize_t fd_write(void *ctx, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = write(*(int *)ctx, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

void stream_io_fd(struct stream_io *io, int *fd)
{
	io->ctx = fd;
	io->read = fd_read;
	io->write = fd_write;
}

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct stream_mem *m = ctx;
	size_t n = m->len - m->pos < len ? m->len - m->pos : len;

	memcpy(buf, m->buf + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static ssize_t mem_write(void *ctx, const void *buf, size_t len)
{
	struct stream_mem *m = ctx;
	size_t cap;
	uint8_t *p;

	if (len > m->cap - m->len) {
		cap = m->cap ? m->cap : 4096;
		while (cap - m->len < len) {
			if (cap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			cap *= 2;
		}
		if (!(p = realloc(m->buf, cap)))
			return -1;
		m->buf = p;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return (ssize_t)len;
}

void stream_io_mem(struct stream_io *io, struct stream_mem *m)
{
	io->ctx = m;
	io->read = mem_read;
	io->write = mem_write;
}

void stream_mem_free(struct stream_mem *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

/* ---- writing ---- */

void stream_writer_init(struct stream_writer *w, const struct stream_io *io)
{
	memset(w, 0, sizeof(*w));
	w->io = io;
}

static int w_bytes(struct stream_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	if (!w->io || !w->io->write) {
		st_err(w->err, sizeof(w->err), "write: the byte stream cannot be written");
		return -1;
	}
	while (len) {
		n = w->io->write(w->io->ctx, p, len);
		if (n <= 0) {
			st_err(w->err, sizeof(w->err), "write: %s",
			       n < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		p += n;
		len -= (size_t)n;
		w->bytes += (uint64_t)n;
	}
	return 0;
}

static int w_frame(struct stream_writer *w, uint32_t type, uint64_t len)
{
	uint8_t h[STREAM_REC_HDR_LEN];
	char what[32];

	if (len > STREAM_MAX_RECORD) {
		st_err(w->err, sizeof(w->err), "%s: length %llu exceeds the limit of %llu bytes",
		       st_what(type, what, sizeof(what)), (unsigned long long)len,
		       (unsigned long long)STREAM_MAX_RECORD);
		return -1;
	}
	st_put32(h, type);
	st_put32(h + 4, 0);
	st_put64(h + 8, len);
	return w_bytes(w, h, sizeof(h));
}

static int w_pad(struct stream_writer *w, uint64_t len)
{
	static const uint8_t zero[8];

	return w_bytes(w, zero, (size_t)st_pad(len));
}

int stream_write_record(struct stream_writer *w, uint32_t type, const void *body, uint64_t len)
{
	if (w_frame(w, type, len) < 0 || w_bytes(w, body, (size_t)len) < 0)
		return -1;
	return w_pad(w, len);
}

static int w_order(struct stream_writer *w, const char *what, int lo, int hi)
{
	static const char *const after[] = { "nothing", "STREAM_HEADER", "MACHINE_STATE", "END" };

	if (w->phase >= lo && w->phase <= hi)
		return 0;
	st_err(w->err, sizeof(w->err), "%s: out of order (after %s)", what, after[w->phase]);
	return -1;
}

static void cpu_to_wire(const struct stream_cpu *c, Pvmigrate__CpuFeatures *m)
{
	pvmigrate__cpu_features__init(m);
	m->vendor = (char *)c->vendor;
	m->has_leaf1_ecx = m->has_leaf1_edx = m->has_leaf7_ebx = m->has_leaf7_ecx = 1;
	m->has_leaf7_edx = m->has_ext1_ecx = m->has_ext1_edx = 1;
	m->leaf1_ecx = c->word[STREAM_CPU_1_ECX];
	m->leaf1_edx = c->word[STREAM_CPU_1_EDX];
	m->leaf7_ebx = c->word[STREAM_CPU_7_EBX];
	m->leaf7_ecx = c->word[STREAM_CPU_7_ECX];
	m->leaf7_edx = c->word[STREAM_CPU_7_EDX];
	m->ext1_ecx = c->word[STREAM_CPU_X1_ECX];
	m->ext1_edx = c->word[STREAM_CPU_X1_EDX];
}

int stream_write_header(struct stream_writer *w, const struct stream_info *info)
{
	Pvmigrate__StreamHeader h = PVMIGRATE__STREAM_HEADER__INIT;
	Pvmigrate__SharedRam shared = PVMIGRATE__SHARED_RAM__INIT;
	Pvmigrate__CpuFeatures cpu;
	uint8_t *body;
	size_t n;
	int rc;

	if (w_order(w, "STREAM_HEADER", 0, 0) < 0)
		return -1;
	if (!st_name_ok(info->personality) || !st_vendor_ok(info->cpu.vendor) ||
	    info->page_size != STREAM_PAGE_SIZE || !info->ram_size ||
	    info->ram_size % STREAM_PAGE_SIZE || !info->nr_vcpus ||
	    info->nr_vcpus > STREAM_MAX_VCPUS) {
		st_err(w->err, sizeof(w->err), "STREAM_HEADER: invalid personality, CPU vendor, "
		       "page size, RAM size or vCPU count");
		return -1;
	}
	cpu_to_wire(&info->cpu, &cpu);
	h.has_stream_version = 1;
	h.stream_version = STREAM_VERSION;
	h.personality = (char *)info->personality;
	h.has_image_abi = h.has_patch_table_version = 1;
	h.image_abi = info->image_abi;
	h.patch_table_version = info->patch_table_version;
	h.cpu = &cpu;
	h.has_ram_size = h.has_nr_vcpus = h.has_page_size = 1;
	h.ram_size = info->ram_size;
	h.nr_vcpus = info->nr_vcpus;
	h.page_size = info->page_size;
	if (info->shared.present) {
		if (info->shared.size != info->ram_size) {
			st_err(w->err, sizeof(w->err), "STREAM_HEADER: shared RAM of %llu bytes for "
			       "a guest of %llu", (unsigned long long)info->shared.size,
			       (unsigned long long)info->ram_size);
			return -1;
		}
		shared.has_dev = shared.has_ino = shared.has_size = 1;
		shared.dev = info->shared.dev;
		shared.ino = info->shared.ino;
		shared.size = info->shared.size;
		h.shared_ram = &shared;
	}
	n = pvmigrate__stream_header__get_packed_size(&h);
	if (!(body = malloc(STREAM_MAGIC_LEN + n))) {
		st_err(w->err, sizeof(w->err), "STREAM_HEADER: out of memory");
		return -1;
	}
	memcpy(body, STREAM_MAGIC, STREAM_MAGIC_LEN);
	pvmigrate__stream_header__pack(&h, body + STREAM_MAGIC_LEN);
	rc = stream_write_record(w, STREAM_REC_HEADER, body, STREAM_MAGIC_LEN + n);
	free(body);
	if (rc < 0)
		return -1;
	w->phase = 1;
	w->ram_pages = info->ram_size / STREAM_PAGE_SIZE;
	w->nr_vcpus = info->nr_vcpus;
	memcpy(w->personality, info->personality, sizeof(w->personality));
	return 0;
}

int stream_write_pages(struct stream_writer *w, const uint64_t *gfns, uint32_t count,
		       const uint8_t *ram)
{
	uint8_t buf[512 * 8];
	uint32_t i, j;

	if (w_order(w, "PAGE_BATCH", 1, 1) < 0)
		return -1;
	if (!count || count > STREAM_MAX_BATCH) {
		st_err(w->err, sizeof(w->err), "PAGE_BATCH: count %u, want 1..%u", count,
		       STREAM_MAX_BATCH);
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (gfns[i] >= w->ram_pages || (i && gfns[i] <= gfns[i - 1])) {
			st_err(w->err, sizeof(w->err), "PAGE_BATCH: gfn %#llx outside guest RAM or "
			       "not increasing", (unsigned long long)gfns[i]);
			return -1;
		}
	}
	if (w_frame(w, STREAM_REC_PAGE_BATCH,
		    STREAM_BATCH_HDR_LEN + (uint64_t)count * (8 + STREAM_PAGE_SIZE)) < 0)
		return -1;
	st_put32(buf, count);
	st_put32(buf + 4, 0);
	if (w_bytes(w, buf, STREAM_BATCH_HDR_LEN) < 0)
		return -1;
	for (i = 0; i < count; i += j) {
		for (j = 0; j < 512 && i + j < count; j++)
			st_put64(buf + 8 * j, gfns[i + j]);
		if (w_bytes(w, buf, 8 * j) < 0)
			return -1;
	}
	for (i = 0; i < count; i++)
		if (w_bytes(w, ram + gfns[i] * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE) < 0)
			return -1;
	return 0; /* 8 + 4104 * count: already a multiple of 8 */
}

/* The message's parts, allocated together. */
struct ms_wire {
	Pvmigrate__MachineState ms;
	Pvmigrate__PatchState patch;
	Pvmigrate__RuntimeState runtime;
	Pvmigrate__X86VcpuState *vp[STREAM_MAX_VCPUS];
	struct vcpu_wire v[STREAM_MAX_VCPUS];
};

int stream_write_machine_state(struct stream_writer *w, const struct stream_machine *m)
{
	struct ms_wire *x;
	uint8_t *body = NULL;
	size_t n;
	unsigned i;
	int rc = -1;

	if (w_order(w, "MACHINE_STATE", 1, 1) < 0)
		return -1;
	if (m->nr_vcpus != w->nr_vcpus) {
		st_err(w->err, sizeof(w->err), "MACHINE_STATE: %u vCPUs, the header says %u",
		       m->nr_vcpus, w->nr_vcpus);
		return -1;
	}
	if (m->patch && (!st_name_ok(m->patch->personality) ||
			 strcmp(m->patch->personality, w->personality))) {
		st_err(w->err, sizeof(w->err), "MACHINE_STATE: patch.personality '%.32s', the "
		       "header says '%s'", m->patch->personality, w->personality);
		return -1;
	}
	if (!(x = calloc(1, sizeof(*x)))) {
		st_err(w->err, sizeof(w->err), "MACHINE_STATE: out of memory");
		return -1;
	}
	pvmigrate__machine_state__init(&x->ms);
	for (i = 0; i < m->nr_vcpus; i++) {
		vcpustate_to_wire(&m->vcpus[i], &x->v[i]);
		x->vp[i] = &x->v[i].msg;
	}
	x->ms.n_vcpus = m->nr_vcpus;
	x->ms.vcpus = x->vp;
	if (m->devices) {
		x->ms.devices = pvmigrate__device_set__unpack(NULL, m->devices_len, m->devices);
		if (!x->ms.devices) {
			st_err(w->err, sizeof(w->err), "MACHINE_STATE: devices: not a DeviceSet");
			goto out;
		}
	}
	if (m->patch) {
		pvmigrate__patch_state__init(&x->patch);
		x->patch.personality = (char *)m->patch->personality;
		x->patch.has_nr_sites = x->patch.has_digest = 1;
		x->patch.nr_sites = m->patch->nr_sites;
		x->patch.digest.len = STREAM_DIGEST_LEN;
		x->patch.digest.data = (uint8_t *)m->patch->digest;
		if (m->patch->table_size) {
			x->patch.has_table_addr = x->patch.has_table_size = 1;
			x->patch.table_addr = m->patch->table_addr;
			x->patch.table_size = m->patch->table_size;
		}
		x->ms.patch = &x->patch;
	}
	n = pvmigrate__machine_state__get_packed_size(&x->ms);
	if (n > STREAM_MAX_RECORD || !(body = malloc(n ? n : 1))) {
		st_err(w->err, sizeof(w->err), "MACHINE_STATE: %zu bytes: %s", n,
		       n > STREAM_MAX_RECORD ? "too large" : "out of memory");
		goto out;
	}
	pvmigrate__machine_state__pack(&x->ms, body);
	if (stream_write_record(w, STREAM_REC_MACHINE_STATE, body, n) == 0) {
		w->phase = 2;
		rc = 0;
	}
out:
	if (x->ms.devices)
		pvmigrate__device_set__free_unpacked(x->ms.devices, NULL);
	free(body);
	free(x);
	return rc;
}

int stream_write_statistics(struct stream_writer *w, const struct stream_stats *st)
{
	uint8_t body[24];

	if (w_order(w, "STATISTICS", 1, 2) < 0)
		return -1;
	st_put64(body, st->rounds);
	st_put64(body + 8, st->pages);
	st_put64(body + 16, st->elapsed_ns);
	return stream_write_record(w, STREAM_REC_STATISTICS, body, sizeof(body));
}

int stream_write_end(struct stream_writer *w)
{
	if (w_order(w, "END", 2, 2) < 0 || stream_write_record(w, STREAM_REC_END, NULL, 0) < 0)
		return -1;
	w->phase = 3;
	return 0;
}

/* ---- reading ---- */

void stream_reader_init(struct stream_reader *r, const struct stream_io *io)
{
	memset(r, 0, sizeof(*r));
	r->io = io;
}

void stream_reader_free(struct stream_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

/* Up to len bytes, fewer only at end of input; -1 on a read error. */
static ssize_t r_bytes(struct stream_reader *r, uint8_t *p, size_t len)
{
	size_t got = 0;
	ssize_t n;

	if (!r->io || !r->io->read) {
		st_err(r->err, sizeof(r->err), "read: the byte stream cannot be read");
		return -1;
	}
	while (got < len) {
		n = r->io->read(r->io->ctx, p + got, len - got);
		if (n < 0) {
			st_err(r->err, sizeof(r->err), "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r->offset += got;
	return (ssize_t)got;
}

/* Grow the body buffer as data arrives, never ahead of it by more than 2x. */
static int r_body(struct stream_reader *r, const char *what, uint64_t len)
{
	size_t have = 0, want, cap;
	uint8_t *p;
	ssize_t n;

	while (have < len) {
		if (have == r->cap) {
			cap = r->cap ? 2 * r->cap : 65536;
			if (cap > len)
				cap = (size_t)len;
			if (!(p = realloc(r->buf, cap))) {
				st_err(r->err, sizeof(r->err), "%s: out of memory", what);
				return -1;
			}
			r->buf = p;
			r->cap = cap;
		}
		want = r->cap < len ? r->cap - have : (size_t)len - have;
		if ((n = r_bytes(r, r->buf + have, want)) < 0)
			return -1;
		have += (size_t)n;
		if ((size_t)n < want) {
			st_err(r->err, sizeof(r->err), "%s: truncated at offset %llu (body %zu of "
			       "%llu bytes)", what, (unsigned long long)r->offset, have,
			       (unsigned long long)len);
			return -1;
		}
	}
	return 0;
}

int stream_read_record(struct stream_reader *r, struct stream_record *rec)
{
	uint8_t h[STREAM_REC_HDR_LEN], pad[8];
	char whatbuf[32];
	const char *what;
	uint32_t flags;
	uint64_t npad, i;
	ssize_t n;

	memset(rec, 0, sizeof(*rec));
	rec->offset = r->offset;
	if ((n = r_bytes(r, h, sizeof(h))) < 0)
		return -1;
	if (n == 0)
		return 0;
	if ((size_t)n < sizeof(h)) {
		st_err(r->err, sizeof(r->err), "record: truncated at offset %llu (header %zd of "
		       "%d bytes)", (unsigned long long)r->offset, n, STREAM_REC_HDR_LEN);
		return -1;
	}
	rec->type = st_get32(h);
	flags = st_get32(h + 4);
	rec->len = st_get64(h + 8);
	what = st_what(rec->type, whatbuf, sizeof(whatbuf));
	if (flags) {
		st_err(r->err, sizeof(r->err), "%s: reserved flags %#x, want 0", what, flags);
		return -1;
	}
	if (rec->len > STREAM_MAX_RECORD) {
		st_err(r->err, sizeof(r->err), "%s: length %llu exceeds the limit of %llu bytes",
		       what, (unsigned long long)rec->len, (unsigned long long)STREAM_MAX_RECORD);
		return -1;
	}
	if (r_body(r, what, rec->len) < 0)
		return -1;
	npad = st_pad(rec->len);
	if ((n = r_bytes(r, pad, (size_t)npad)) < 0)
		return -1;
	if ((uint64_t)n < npad) {
		st_err(r->err, sizeof(r->err), "%s: truncated at offset %llu (padding %zd of "
		       "%llu bytes)", what, (unsigned long long)r->offset, n,
		       (unsigned long long)npad);
		return -1;
	}
	for (i = 0; i < npad; i++)
		if (pad[i]) {
			st_err(r->err, sizeof(r->err), "%s: padding byte %#x not zero", what, pad[i]);
			return -1;
		}
	rec->body = r->buf;
	return 1;
}
