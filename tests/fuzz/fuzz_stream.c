/* fuzz_stream.c: libFuzzer target: arbitrary bytes through stream_decode and the tail's decoder; whatever they hand out must be in bounds and self-consistent */
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "vcpustate.h"

/* The seeds (corpus/stream/) come from tests/state/test_stream.c: a 64 KiB
 * guest with two vCPUs on a "GenuineIntel" CPU, and the same stream with
 * a tail after END (NIC_LATE records, NIC_LATE_END).  This host has every
 * feature bit and room for 1 MiB, so mutations reach past the header.
 * What follows an accepted stream goes through the tail's decoder, and
 * so does the whole input on its own (a tail is rarely reached through
 * a whole valid stream). */
#define RAM_SIZE (1u << 20)

static uint8_t ram[RAM_SIZE];
static uint64_t ram_pages;
static unsigned nr_vcpus, stage;
static volatile uint8_t touched;

static int on_header(void *ctx, const struct stream_info *info, char *why, size_t whylen)
{
	if (stage != 0 || info->ram_size > RAM_SIZE || info->ram_size % STREAM_PAGE_SIZE ||
	    !info->nr_vcpus || info->nr_vcpus > 16 || info->page_size != STREAM_PAGE_SIZE)
		abort(); /* the compatibility check let through what it must not */
	ram_pages = info->ram_size / STREAM_PAGE_SIZE;
	nr_vcpus = info->nr_vcpus;
	stage = 1;
	return 0;
}

static int on_pages(void *ctx, const uint64_t *gfns, uint32_t count, const uint8_t *data,
		    char *why, size_t whylen)
{
	uint32_t i;

	if (stage != 1 || !count || count > STREAM_MAX_BATCH)
		abort();
	for (i = 0; i < count; i++) {
		if (gfns[i] >= ram_pages || (i && gfns[i] <= gfns[i - 1]))
			abort();
		/* ASan checks the decoder really has count pages behind `data` */
		memcpy(ram + gfns[i] * STREAM_PAGE_SIZE, data + (size_t)i * STREAM_PAGE_SIZE,
		       STREAM_PAGE_SIZE);
	}
	return 0;
}

static int on_machine(void *ctx, const struct stream_machine *m, char *why, size_t whylen)
{
	static struct vm_vcpu_state back;
	struct vcpu_wire w;
	Pvmigrate__DeviceSet *ds;
	unsigned i;

	if (stage != 1 || m->nr_vcpus != nr_vcpus || !m->msg || !m->raw)
		abort();
	stage = 2;
	/* a checked vCPU state survives the trip to the wire and back unchanged */
	for (i = 0; i < m->nr_vcpus; i++) {
		vcpustate_to_wire(&m->vcpus[i], &w);
		if (vcpustate_from_wire(&w.msg, i, &back, why, whylen) != 0 ||
		    memcmp(&back, &m->vcpus[i], sizeof(back)))
			abort();
	}
	if (m->devices) {
		ds = pvmigrate__device_set__unpack(NULL, m->devices_len, m->devices);
		if (!ds)
			abort(); /* the decoder re-packed what it had unpacked */
		pvmigrate__device_set__free_unpacked(ds, NULL);
	}
	if (m->patch && (!m->patch->personality[0] || m->patch->personality[STREAM_NAME_MAX]))
		abort();
	return 0;
}

static int on_optional(void *ctx, uint32_t type, const uint8_t *body, uint64_t len, char *why,
		       size_t whylen)
{
	uint64_t i;

	if (stage == 0 || len % 8)
		abort();
	for (i = 0; i < len; i++)
		touched ^= body[i]; /* ASan: the whole body is there */
	return 0;
}

static const struct stream_sink sink = { NULL, on_header, on_pages, on_machine, on_optional };

static uint64_t late_frames;

static int on_late(void *ctx, const uint8_t *f, size_t len, char *why, size_t whylen)
{
	size_t i;

	if (!len || len > STREAM_MAX_RECORD)
		abort();
	for (i = 0; i < len; i++)
		touched ^= f[i]; /* ASan: the whole frame is there */
	late_frames++;
	return 0;
}

/* The tail from where m stands: a refusal says why, an end is consistent. */
static void tail(struct stream_mem *m)
{
	struct stream_late_end end;
	struct stream_io io;
	char why[256];
	int rc;

	stream_io_mem(&io, m);
	late_frames = 0;
	why[0] = '\0';
	rc = stream_decode_tail(&io, on_late, NULL, &end, why, sizeof(why));
	if (rc == 0 && (end.how > STREAM_LATE_HOW_MAX || end.frames != late_frames ||
			(!end.how && late_frames)))
		abort();
	if (rc != 0 && (rc != -1 || strncmp(why, "stream: ", 8)))
		abort();
	if (m->pos > m->len)
		abort();
}
static const char *const pers[] = { "native", "kvm", "xen" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream_host host = { .personalities = pers, .nr_personalities = 3,
				    .max_ram = RAM_SIZE, .max_vcpus = 16, .image_abi = 1,
				    .patch_table_version = 1 };
	struct stream_mem m = { (uint8_t *)data, size, size, 0 };
	struct stream_io io;
	char why[256];
	int rc;

	strcpy(host.cpu.vendor, "GenuineIntel");
	memset(host.cpu.word, 0xff, sizeof(host.cpu.word));
	stage = 0;
	stream_io_mem(&io, &m);
	why[0] = '\0';
	rc = stream_decode(&io, &host, &sink, why, sizeof(why));
	if (rc == 0 && stage != 2)
		abort(); /* accepted without a machine state */
	if (rc != 0 && (rc != -1 || strncmp(why, "stream: ", 8)))
		abort(); /* a refusal must say why */
	if (m.pos > m.len)
		abort();
	if (rc == 0)
		tail(&m);
	m.pos = 0;
	tail(&m);
	return 0;
}
