/* test_stream.c: a migration stream written to memory and decoded: pages and state come back identical; every refusal names its cause */
#include "../lib/tap.h"
#include "stream_rig.h"

/* ---- the round trip on a 1 MiB guest, with pre-copy rounds ---- */

static void test_round_trip(void)
{
	static uint64_t gfns[BIG_PAGES];
	static const uint64_t dirty[] = { 5, 77, 200 };
	struct stream_info info = { .personality = "kvm", .image_abi = 1,
				    .patch_table_version = 1,
				    .ram_size = sizeof(src_ram), .nr_vcpus = 2,
				    .page_size = STREAM_PAGE_SIZE };
	struct stream_stats stats = { 2, BIG_PAGES + 3, 123456789 };
	struct stream_machine ms = { vcpus, 2, devs, devs_len, &patch, NULL, NULL, 0 };
	struct stream_mem mem = { 0 };
	struct stream_io io;
	struct stream_writer w;
	struct vm_vcpu_state back;
	struct vcpu_wire vw;
	char why[256];
	unsigned i;

	CHECK(stream_cpu_local(&info.cpu) == 0 && strlen(info.cpu.vendor) == 12, "CPUID here");
	host_local.cpu = info.cpu;
	for (i = 0; i < sizeof(src_ram); i++)
		src_ram[i] = (uint8_t)rnd();
	for (i = 0; i < 2; i++) {
		vcpustate_to_wire(&vcpus[i], &vw);
		CHECK(vcpustate_from_wire(&vw.msg, i, &back, why, sizeof(why)) == 0 &&
		      !memcmp(&back, &vcpus[i], sizeof(back)), "vcpu %u: struct -> wire -> struct", i);
	}

	stream_io_mem(&io, &mem);
	stream_writer_init(&w, &io);
	CHECK(stream_write_pages(&w, gfns, 1, src_ram) < 0 &&
	      !strcmp(w.err, "stream: PAGE_BATCH: out of order (after nothing)"), "%s", w.err);
	CHECK(stream_write_header(&w, &info) == 0, "%s", w.err);
	for (i = 0; i < BIG_PAGES; i++)
		gfns[i] = i;
	CHECK(stream_write_pages(&w, gfns, 128, src_ram) == 0, "%s", w.err);
	for (i = 0; i < 3; i++) /* the guest writes while round 1 runs */
		memset(src_ram + dirty[i] * STREAM_PAGE_SIZE + 100, 0xa0 + i, 50);
	CHECK(stream_write_pages(&w, gfns + 128, 128, src_ram) == 0, "%s", w.err);
	CHECK(stream_write_pages(&w, dirty, 3, src_ram) == 0, "%s", w.err);
	CHECK(stream_write_end(&w) < 0 && strstr(w.err, "END: out of order"), "%s", w.err);
	CHECK(stream_write_machine_state(&w, &ms) == 0, "%s", w.err);
	CHECK(stream_write_pages(&w, dirty, 3, src_ram) < 0, "no pages after the machine state");
	CHECK(stream_write_statistics(&w, &stats) == 0, "%s", w.err);
	CHECK(stream_write_end(&w) == 0, "%s", w.err);
	CHECK(w.bytes == mem.len && mem.len % 8 == 0, "%zu bytes, 8-aligned", mem.len);

	CHECK(decode(mem.buf, mem.len, &host_local, why, sizeof(why)) == 0, "decode: %s", why);
	CHECK(got.headers == 1 && got.batches == 3 && got.pages == BIG_PAGES + 3 && got.machines == 1,
	      "%u headers, %u batches, %u pages, %u machine states", got.headers, got.batches,
	      got.pages, got.machines);
	CHECK(!memcmp(src_ram, dst_ram, sizeof(src_ram)), "guest RAM identical");
	CHECK(got.vcpus_equal, "both vCPU states memcmp-equal after wire -> struct");
	CHECK(got.vcpu_recode, "decoded vCPU structs encode to the received messages");
	CHECK(got.recode, "MachineState: decode -> encode gives identical bytes");
	CHECK(got.devs_equal, "DeviceSet bytes identical to devstate_save's");
	CHECK(got.restored, "DeviceSet restores on a fresh target: %s", got.restore_why);
	CHECK(got.patch_equal, "patch state identical");
	CHECK(got.stats == 1 && got.stat[0] == 2 && got.stat[1] == BIG_PAGES + 3 &&
	      got.stat[2] == 123456789, "STATISTICS handed to the optional callback");
	stream_mem_free(&mem);
}

/* ---- a small stream and its variants ---- */

enum {
	V_NO_HEADER = 1, V_TWO_HEADERS = 2, V_PAGES_AFTER_MS = 4, V_NO_END = 8,
	V_GFN_OOB = 16, V_GFN_ORDER = 32, V_UNKNOWN_MAND = 64, V_UNKNOWN_OPT = 128,
	V_BAD_DPL = 256, V_NO_RIP = 512, V_TWO_MS = 1024, V_RAW = 2048, /* MACHINE_STATE past the writer's checks */
};

static const struct stream_info small_info = {
	.version = STREAM_VERSION, .personality = "kvm", .image_abi = 1,
	.patch_table_version = 1,
	.cpu = { "GenuineIntel", { 0x7ffafbff, 0xbfebfbff, 0x029c67af, 0x40000000, 0xbc000400,
				   0x121, 0x2c100800 } },
	.ram_size = SMALL_PAGES * STREAM_PAGE_SIZE, .nr_vcpus = 2, .page_size = STREAM_PAGE_SIZE,
};

/* A PAGE_BATCH record body, written as is: the writer would refuse bad gfns. */
static void raw_batch(struct stream_writer *w, const uint64_t *gfns, uint32_t n)
{
	size_t len = 8 + (size_t)n * (8 + STREAM_PAGE_SIZE);
	uint8_t *b = calloc(1, len);
	uint32_t i;

	memcpy(b, &n, 4);
	for (i = 0; i < n; i++) {
		memcpy(b + 8 + 8 * i, &gfns[i], 8);
		memset(b + 8 + 8 * n + (size_t)i * STREAM_PAGE_SIZE, (int)(0x11 * (i + 1)),
		       STREAM_PAGE_SIZE);
	}
	CHECK(stream_write_record(w, STREAM_REC_PAGE_BATCH, b, len) == 0, "%s", w->err);
	free(b);
}

/* A MACHINE_STATE packed here, so the writer's own checks do not stop it. */
static void raw_ms(struct stream_writer *w, const struct stream_machine *ms, int no_rip)
{
	struct vcpu_wire vw[2];
	Pvmigrate__X86VcpuState *vp[2] = { &vw[0].msg, &vw[1].msg };
	Pvmigrate__MachineState msg = PVMIGRATE__MACHINE_STATE__INIT;
	Pvmigrate__PatchState pm = PVMIGRATE__PATCH_STATE__INIT;
	uint8_t *b;
	size_t n;

	vcpustate_to_wire(&ms->vcpus[0], &vw[0]);
	vcpustate_to_wire(&ms->vcpus[1], &vw[1]);
	if (no_rip)
		vw[1].msg.has_rip = 0;
	msg.n_vcpus = 2;
	msg.vcpus = vp;
	pm.personality = (char *)ms->patch->personality;
	pm.has_nr_sites = pm.has_digest = 1;
	pm.nr_sites = ms->patch->nr_sites;
	pm.digest.len = STREAM_DIGEST_LEN;
	pm.digest.data = (uint8_t *)ms->patch->digest;
	msg.patch = &pm;
	n = pvmigrate__machine_state__get_packed_size(&msg);
	b = malloc(n);
	pvmigrate__machine_state__pack(&msg, b);
	CHECK(stream_write_record(w, STREAM_REC_MACHINE_STATE, b, n) == 0, "%s", w->err);
	free(b);
	w->phase = 2;
}

static void build(struct stream_mem *m, const struct stream_info *info, unsigned v)
{
	static const uint64_t good[] = { 1, 2, 5 }, oob[] = { 1, SMALL_PAGES }, order[] = { 1, 3, 3 };
	struct vm_vcpu_state bad[2];
	struct stream_machine ms = { vcpus, 2, devs, devs_len, &patch, NULL, NULL, 0 };
	struct stream_io io;
	struct stream_writer w;
	struct stream_stats stats = { 1, 3, 1000 };
	uint8_t *copy;
	size_t n;

	memset(m, 0, sizeof(*m));
	stream_io_mem(&io, m);
	stream_writer_init(&w, &io);
	if (!(v & V_NO_HEADER)) {
		CHECK(stream_write_header(&w, info) == 0, "%s", w.err);
		if (v & V_TWO_HEADERS) {
			n = m->len;
			copy = malloc(n);
			memcpy(copy, m->buf, n);
			io.write(io.ctx, copy, n);
			free(copy);
		}
	}
	if (v & V_UNKNOWN_MAND)
		stream_write_record(&w, 0x42, "hello", 5);
	if (v & V_UNKNOWN_OPT)
		stream_write_record(&w, STREAM_OPTIONAL | 0x42, "hello, world!", 13);
	raw_batch(&w, v & V_GFN_OOB ? oob : v & V_GFN_ORDER ? order : good, v & V_GFN_OOB ? 2 : 3);
	if (v & V_NO_HEADER)
		return;
	if (v & (V_NO_RIP | V_RAW)) {
		raw_ms(&w, &ms, v & V_NO_RIP);
	} else if (v & V_BAD_DPL) {
		memcpy(bad, vcpus, sizeof(bad));
		bad[1].cs.dpl = 4;
		ms.vcpus = bad;
		CHECK(stream_write_machine_state(&w, &ms) == 0, "%s", w.err);
	} else {
		CHECK(stream_write_machine_state(&w, &ms) == 0, "%s", w.err);
	}
	if (v & V_TWO_MS) {
		w.phase = 1;
		stream_write_machine_state(&w, &ms);
	}
	if (v & V_PAGES_AFTER_MS)
		raw_batch(&w, good, 3);
	CHECK(stream_write_statistics(&w, &stats) == 0, "%s", w.err);
	if (!(v & V_NO_END))
		CHECK(stream_write_end(&w) == 0, "%s", w.err);
}

static void refuse(const char *name, const uint8_t *buf, size_t len, const struct stream_host *h,
		   const char *want)
{
	char why[256];
	int rc = decode(buf, len, h, why, sizeof(why));

	CHECK(rc == -1 && !strcmp(why, want), "%s: got %d \"%s\", want \"%s\"", name, rc, why, want);
}

static void refuse_variant(const char *name, const struct stream_info *info, unsigned v,
			   const char *want)
{
	struct stream_mem m;

	build(&m, info, v);
	refuse(name, m.buf, m.len, &host_fake, want);
	stream_mem_free(&m);
}

/* Offset of the first record of `type`, walking the framing of a good stream. */
static size_t find(const struct stream_mem *m, uint32_t type, uint64_t *len)
{
	size_t off = 0;
	uint32_t t;

	while (off + 16 <= m->len) {
		memcpy(&t, m->buf + off, 4);
		memcpy(len, m->buf + off + 8, 8);
		if (t == type)
			return off;
		off += 16 + (size_t)*len + (size_t)((8 - (*len & 7)) & 7);
	}
	abort();
}

static void test_refusals(void)
{
	struct stream_info info = small_info;
	struct stream_mem m;
	char why[256], want[256];
	const char *seed_path = getenv("STREAM_WRITE_SEED");
	uint64_t len, big = STREAM_MAX_RECORD + 1;
	size_t off, cut, at_end = 0, truncated = 0;
	uint8_t save;
	FILE *fp;

	build(&m, &small_info, 0);
	CHECK(decode(m.buf, m.len, &host_fake, why, sizeof(why)) == 0, "small stream: %s", why);
	CHECK(got.pages == 3 && got.vcpus_equal && got.recode && got.devs_equal && got.stats == 1,
	      "small stream delivered");
	if (seed_path) {
		fp = fopen(seed_path, "wb");
		CHECK(fp && fwrite(m.buf, 1, m.len, fp) == m.len && fclose(fp) == 0,
		      "seed written to %s", seed_path);
	}

	/* every proper prefix is refused, by framing or for the missing END */
	for (cut = 0; cut < m.len; cut++) {
		if (decode(m.buf, cut, &host_fake, why, sizeof(why)) != -1 ||
		    strncmp(why, "stream: ", 8)) {
			CHECK(0, "prefix of %zu bytes: \"%s\"", cut, why);
			continue;
		}
		if (strstr(why, "before the END record"))
			at_end++;
		else if (strstr(why, "truncated at offset"))
			truncated++;
		else
			CHECK(0, "prefix of %zu bytes: \"%s\"", cut, why);
	}
	CHECK(at_end == 5 && truncated == m.len - 5, "%zu cut at records, %zu inside", at_end,
	      truncated);
	snprintf(want, sizeof(want), "stream: input: ended at offset %zu before the END record",
		 m.len - 16);
	refuse("missing END (cut)", m.buf, m.len - 16, &host_fake, want);

	off = find(&m, STREAM_REC_HEADER, &len);
	CHECK((len & 7) != 0, "the header record has padding");
	off += 16 + (size_t)len;
	m.buf[off] = 0x20;
	refuse("bad padding", m.buf, m.len, &host_fake, "stream: STREAM_HEADER: padding byte 0x20 not zero");
	m.buf[off] = 0;

	off = find(&m, STREAM_REC_PAGE_BATCH, &len);
	m.buf[off + 4] = 1;
	refuse("reserved flags", m.buf, m.len, &host_fake,
	       "stream: PAGE_BATCH: reserved flags 0x1, want 0");
	m.buf[off + 4] = 0;
	m.buf[off + 16 + 4] = 9;
	refuse("batch reserved word", m.buf, m.len, &host_fake,
	       "stream: PAGE_BATCH: reserved word 0x9, want 0");
	m.buf[off + 16 + 4] = 0;
	memcpy(m.buf + off + 8, &big, 8);
	refuse("oversize", m.buf, m.len, &host_fake,
	       "stream: PAGE_BATCH: length 67108865 exceeds the limit of 67108864 bytes");
	memcpy(m.buf + off + 8, &len, 8);
	save = m.buf[off + 16];
	m.buf[off + 16] = 0;
	refuse("empty batch", m.buf, m.len, &host_fake, "stream: PAGE_BATCH: count 0, want 1..4096");
	m.buf[off + 16] = save;

	off = find(&m, STREAM_REC_HEADER, &len);
	m.buf[off + 16] = 'X';
	refuse("bad magic", m.buf, m.len, &host_fake,
	       "stream: STREAM_HEADER: bad magic (not a pvmigrate stream)");
	m.buf[off + 16] = 'P';
	CHECK(decode(m.buf, m.len, &host_fake, why, sizeof(why)) == 0, "restored bytes: %s", why);
	stream_mem_free(&m);

	refuse_variant("unknown mandatory", &small_info, V_UNKNOWN_MAND,
		       "stream: record type 0x00000042: unknown mandatory record");
	build(&m, &small_info, V_UNKNOWN_OPT);
	CHECK(decode(m.buf, m.len, &host_fake, why, sizeof(why)) == 0 && got.pages == 3 &&
	      got.machines == 1, "unknown optional record skipped: %s", why);
	stream_mem_free(&m);
	refuse_variant("header not first", &small_info, V_NO_HEADER,
		       "stream: PAGE_BATCH: before STREAM_HEADER");
	refuse_variant("two headers", &small_info, V_TWO_HEADERS,
		       "stream: STREAM_HEADER: second header");
	refuse_variant("pages after machine state", &small_info, V_PAGES_AFTER_MS,
		       "stream: PAGE_BATCH: after MACHINE_STATE");
	refuse_variant("two machine states", &small_info, V_TWO_MS,
		       "stream: MACHINE_STATE: second machine state");
	refuse_variant("gfn out of RAM", &small_info, V_GFN_OOB,
		       "stream: PAGE_BATCH: gfn 0x10 outside guest RAM (16 pages)");
	refuse_variant("gfns not increasing", &small_info, V_GFN_ORDER,
		       "stream: PAGE_BATCH: gfn 0x3 after 0x3 (gfns must strictly increase)");
	build(&m, &small_info, V_NO_END);
	snprintf(want, sizeof(want), "stream: input: ended at offset %zu before the END record",
		 m.len);
	refuse("missing END", m.buf, m.len, &host_fake, want);
	stream_mem_free(&m);
	refuse_variant("vCPU field out of range", &small_info, V_BAD_DPL,
		       "stream: vcpu[1].cs.dpl: out of range (0x4, want 0..0x3)");
	refuse_variant("vCPU field missing", &small_info, V_NO_RIP, "stream: vcpu[1].rip: missing");

	/* the compatibility check comes before any page */
	strcpy(info.personality, "l4");
	refuse_variant("personality", &info, V_RAW, "stream: target lacks personality 'l4'");
	CHECK(got.pages == 0 && got.headers == 0, "no page applied");
	info = small_info;
	host_fake.cpu.word[STREAM_CPU_7_EBX] &= ~(1u << 5);
	refuse_variant("CPU feature", &info, 0,
		       "stream: CPU feature avx2 (cpuid 7.ebx bit 5) missing on target");
	CHECK(got.pages == 0, "no page applied");
	host_fake.cpu.word[STREAM_CPU_7_EBX] = ~0u;
	info.cpu.word[STREAM_CPU_1_ECX] |= 1u << 31; /* hypervisor: not a capability */
	host_fake.cpu.word[STREAM_CPU_1_ECX] &= ~(1u << 31);
	build(&m, &info, 0);
	CHECK(decode(m.buf, m.len, &host_fake, why, sizeof(why)) == 0, "hypervisor bit ignored: %s",
	      why);
	stream_mem_free(&m);
	host_fake.cpu.word[STREAM_CPU_1_ECX] = ~0u;
	info = small_info;
	info.ram_size = 4ull << 30;
	refuse_variant("RAM", &info, 0, "stream: guest RAM 4096 MiB: target allows at most 3072 MiB");
	CHECK(got.pages == 0, "no page applied");
	info = small_info;
	strcpy(info.cpu.vendor, "AuthenticAMD");
	refuse_variant("vendor", &info, 0,
		       "stream: CPU vendor 'AuthenticAMD': target is 'GenuineIntel'");
	info = small_info;
	info.image_abi = 2;
	refuse_variant("image ABI", &info, 0, "stream: guest-image ABI 2: target runs up to 1");
	info = small_info;
	info.nr_vcpus = 3;
	refuse_variant("vCPU count", &info, V_RAW,
		       "stream: MACHINE_STATE: vcpus: 2 entries, want 3 (the header's nr_vcpus)");
	strcpy(patch.personality, "xen");
	refuse_variant("patch personality", &small_info, V_RAW,
		       "stream: patch.personality: 'xen', but the header says 'kvm'");
	strcpy(patch.personality, "kvm");
}

/* ---- the tail: NIC_LATE records and NIC_LATE_END, after END ---- */

/* A NIC_LATE body with n frames of lengths len[i], byte j of frame i = i * 16 + j. */
static size_t late_body(uint8_t *b, unsigned n, const unsigned *len)
{
	size_t off = 8;
	unsigned i, j;

	memset(b, 0, 8);
	b[0] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		memset(b + off, 0, 8);
		b[off] = (uint8_t)len[i];
		b[off + 1] = (uint8_t)(len[i] >> 8);
		off += 8;
		for (j = 0; j < len[i]; j++)
			b[off + j] = (uint8_t)(i * 16 + j);
		for (j = len[i]; j & 7; j++)
			b[off + j] = 0;
		off += (len[i] + 7) & ~7u;
	}
	return off;
}

static void late_end(uint8_t *b, uint64_t frames, uint32_t how)
{
	memset(b, 0, 16);
	memcpy(b, &frames, 8);
	memcpy(b + 8, &how, 4);
}

struct tail_seen {
	unsigned frames, bytes, refuse_at;
	int bad;
};

static int on_late(void *ctx, const uint8_t *f, size_t len, char *why, size_t whylen)
{
	struct tail_seen *t = ctx;
	size_t j;

	if (t->refuse_at && t->frames + 1 == t->refuse_at) {
		snprintf(why, whylen, "no room");
		return -1;
	}
	/* the test's frames: the 2nd is frame 1 of its record (bytes 16 + j), the others frame 0 */
	for (j = 0; j < len; j++)
		if (f[j] != (uint8_t)(j + (t->frames == 1 ? 16 : 0)))
			t->bad = 1;
	t->frames++;
	t->bytes += (unsigned)len;
	return 0;
}

static int tail_decode(struct stream_mem *m, struct tail_seen *t, struct stream_late_end *end,
		       char *why, size_t whylen)
{
	struct stream_io io;

	unsigned refuse_at = t->refuse_at;

	m->pos = 0;
	memset(t, 0, sizeof(*t));
	t->refuse_at = refuse_at;
	stream_io_mem(&io, m);
	return stream_decode_tail(&io, on_late, t, end, why, whylen);
}

static void refuse_tail(const char *name, struct stream_mem *m, const char *want)
{
	struct tail_seen t = { 0 };
	struct stream_late_end end;
	char why[256];
	int rc = tail_decode(m, &t, &end, why, sizeof(why));

	CHECK(rc == -1 && !strcmp(why, want), "tail: %s: got %d \"%s\", want \"%s\"", name, rc, why,
	      want);
	stream_mem_free(m);
}

static void test_tail(void)
{
	static const unsigned two[] = { 60, 13 }, one[] = { 1514 };
	uint8_t body[4096], end[16];
	struct stream_mem m = { 0 }, main_stream;
	struct stream_late_end le;
	struct tail_seen t = { 0 };
	struct stream_writer w;
	struct stream_io io;
	size_t n;
	char why[256];
	int rc;

	/* a whole tail: two NIC_LATE, an unknown optional record, NIC_LATE_END */
	stream_io_mem(&io, &m);
	stream_writer_init(&w, &io);
	n = late_body(body, 2, two);
	CHECK(stream_write_record(&w, STREAM_REC_NIC_LATE, body, n) == 0, "%s", w.err);
	stream_write_record(&w, STREAM_OPTIONAL | 0x42, "later", 5);
	n = late_body(body, 1, one);
	CHECK(stream_write_record(&w, STREAM_REC_NIC_LATE, body, n) == 0, "%s", w.err);
	late_end(end, 3, STREAM_LATE_EOF);
	CHECK(stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, 16) == 0, "%s", w.err);
	rc = tail_decode(&m, &t, &le, why, sizeof(why));
	CHECK(rc == 0 && le.frames == 3 && le.how == STREAM_LATE_EOF && t.frames == 3 &&
	      t.bytes == 60 + 13 + 1514 && !t.bad, "tail: rc %d (%s), %u frames, %u bytes, end %llu/%u",
	      rc, rc ? why : "", t.frames, t.bytes, (unsigned long long)le.frames, le.how);
	if (getenv("STREAM_WRITE_TAIL_SEED")) { /* the fuzzer's seed: a stream and this tail */
		FILE *fp = fopen(getenv("STREAM_WRITE_TAIL_SEED"), "ab");

		CHECK(fp && fwrite(m.buf, 1, m.len, fp) == m.len && fclose(fp) == 0, "tail seed");
	}
	CHECK(!strcmp(stream_rec_name(STREAM_REC_NIC_LATE), "NIC_LATE") &&
	      !strcmp(stream_late_how_name(STREAM_LATE_BOUND), "bound"), "tail: names");
	/* the frame callback's refusal stops it, named */
	t.refuse_at = 2;
	m.pos = 0;
	stream_io_mem(&io, &m);
	t.frames = 0;
	rc = stream_decode_tail(&io, on_late, &t, &le, why, sizeof(why));
	CHECK(rc == -1 && !strcmp(why, "stream: NIC_LATE: frame 1: no room"), "tail: refusal: %s",
	      why);
	/* cut anywhere after the first record's header: refused, never a crash */
	for (n = 1; n < m.len; n++) {
		struct stream_mem cut = { m.buf, n, n, 0 };

		stream_io_mem(&io, &cut);
		t.refuse_at = 0;
		CHECK(stream_decode_tail(&io, on_late, &t, &le, why, sizeof(why)) == -1,
		      "tail cut at %zu accepted", n);
	}
	stream_mem_free(&m);

	/* no tail at all: a source that sends none */
	rc = tail_decode(&m, &t, &le, why, sizeof(why));
	CHECK(rc == 0 && le.how == 0 && t.frames == 0, "tail: empty input: rc %d", rc);

#define TAIL(...)                                                                                \
	do {                                                                                     \
		memset(&m, 0, sizeof(m));                                                        \
		stream_io_mem(&io, &m);                                                          \
		stream_writer_init(&w, &io);                                                     \
		__VA_ARGS__;                                                                     \
	} while (0)
	TAIL(n = late_body(body, 2, two); stream_write_record(&w, STREAM_REC_NIC_LATE, body, n);
	     late_end(end, 3, STREAM_LATE_EOF);
	     stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, 16));
	refuse_tail("count", &m, "stream: NIC_LATE_END: says 3 frames, 2 came");
	TAIL(late_end(end, 0, 0); stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, 16));
	refuse_tail("how 0", &m, "stream: NIC_LATE_END: how 0, want 1..3");
	TAIL(late_end(end, 0, 4); stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, 16));
	refuse_tail("how 4", &m, "stream: NIC_LATE_END: how 4, want 1..3");
	TAIL(late_end(end, 0, 1); stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, 8));
	refuse_tail("short end", &m,
		    "stream: NIC_LATE_END: length 8 or reserved word: want 16 bytes, reserved 0");
	TAIL(n = late_body(body, 0, two); stream_write_record(&w, STREAM_REC_NIC_LATE, body, n));
	refuse_tail("no frames", &m, "stream: NIC_LATE: no frames");
	TAIL(n = late_body(body, 2, two); body[8 + 8 + 60] = 1;
	     stream_write_record(&w, STREAM_REC_NIC_LATE, body, n));
	refuse_tail("padding", &m, "stream: NIC_LATE: frame 0: padding not zero");
	TAIL(n = late_body(body, 2, two); body[0] = 3;
	     stream_write_record(&w, STREAM_REC_NIC_LATE, body, n));
	refuse_tail("count over", &m, "stream: NIC_LATE: frame 2: bad or missing header");
	TAIL(n = late_body(body, 1, two); stream_write_record(&w, STREAM_REC_NIC_LATE, body, n + 8));
	refuse_tail("trailing", &m, "stream: NIC_LATE: 8 bytes after 1 frames");
	TAIL(n = late_body(body, 1, two); body[8] = 200;
	     stream_write_record(&w, STREAM_REC_NIC_LATE, body, n));
	refuse_tail("frame length", &m, "stream: NIC_LATE: frame 0: length 200, 64 bytes left");
	TAIL(stream_write_record(&w, STREAM_REC_END, NULL, 0));
	refuse_tail("END", &m, "stream: END: has no place in the tail");
	TAIL(stream_write_record(&w, STREAM_REC_NIC_HELD, body, 8));
	refuse_tail("NIC_HELD", &m, "stream: NIC_HELD: has no place in the tail");
	TAIL(stream_write_record(&w, 0x42, "x", 1));
	refuse_tail("unknown mandatory", &m, "stream: record type 0x00000042: has no place in the "
		    "tail");
	TAIL(n = late_body(body, 1, one); stream_write_record(&w, STREAM_REC_NIC_LATE, body, n));
	refuse_tail("no end", &m, "stream: tail: input ended at offset 1552 before NIC_LATE_END "
		    "(1 frames came)");
#undef TAIL

	/* before END, both belong nowhere */
	build(&main_stream, &small_info, V_NO_END);
	stream_io_mem(&io, &main_stream);
	stream_writer_init(&w, &io);
	w.phase = 2;
	n = late_body(body, 1, one);
	stream_write_record(&w, STREAM_REC_NIC_LATE, body, n);
	refuse("NIC_LATE before END", main_stream.buf, main_stream.len, &host_fake,
	       "stream: NIC_LATE: before END (it belongs to the tail)");
	stream_mem_free(&main_stream);
	build(&main_stream, &small_info, V_NO_END);
	stream_io_mem(&io, &main_stream);
	stream_writer_init(&w, &io);
	late_end(end, 0, 1);
	stream_write_record(&w, STREAM_REC_NIC_LATE_END, end, 16);
	refuse("NIC_LATE_END before END", main_stream.buf, main_stream.len, &host_fake,
	       "stream: NIC_LATE_END: before END (it belongs to the tail)");
	stream_mem_free(&main_stream);
}

/* ---- shared RAM (StreamHeader.shared_ram): no page may follow ---- */

static struct stream_info shared_seen;

static int on_shared_header(void *ctx, const struct stream_info *info, char *why, size_t whylen)
{
	shared_seen = *info;
	return 0;
}

static void test_shared_ram(void)
{
	static const uint64_t gfns[] = { 1 };
	struct stream_info info = small_info;
	struct stream_machine ms = { vcpus, 2, devs, devs_len, &patch, NULL, NULL, 0 };
	struct stream_sink sk = { NULL, on_shared_header, NULL, NULL, NULL };
	struct stream_mem m = { 0 };
	struct stream_io io;
	struct stream_writer w;
	char why[256];

	info.cpu = host_local.cpu;
	info.shared = (struct stream_shared_ram){ 1, 0x803, 4242, info.ram_size + 4096 };
	stream_io_mem(&io, &m);
	stream_writer_init(&w, &io);
	CHECK(stream_write_header(&w, &info) < 0 && strstr(w.err, "shared RAM of"),
	      "shared_ram.size must be ram_size: %s", w.err);
	info.shared.size = info.ram_size;
	CHECK(stream_write_header(&w, &info) == 0 && stream_write_machine_state(&w, &ms) == 0 &&
	      stream_write_end(&w) == 0, "a shared stream: header, machine state, END: %s", w.err);
	stream_io_mem(&io, &m);
	CHECK(stream_decode(&io, &host_local, &sk, why, sizeof(why)) == 0, "decodes: %s", why);
	CHECK(shared_seen.shared.present && shared_seen.shared.dev == 0x803 &&
	      shared_seen.shared.ino == 4242 && shared_seen.shared.size == info.ram_size,
	      "shared_ram comes back: dev, inode, size");
	stream_mem_free(&m);

	memset(&m, 0, sizeof(m));
	stream_io_mem(&io, &m);
	stream_writer_init(&w, &io);
	CHECK(stream_write_header(&w, &info) == 0, "%s", w.err);
	raw_batch(&w, gfns, 1);
	CHECK(stream_write_machine_state(&w, &ms) == 0 && stream_write_end(&w) == 0, "%s", w.err);
	refuse("a page with shared RAM", m.buf, m.len, &host_local,
	       "stream: PAGE_BATCH: the header says the RAM is shared");
	stream_mem_free(&m);

	info.shared.present = 0;
	memset(&shared_seen, 0xff, sizeof(shared_seen));
	build(&m, &info, 0);
	stream_io_mem(&io, &m);
	CHECK(stream_decode(&io, &host_local, &sk, why, sizeof(why)) == 0 &&
	      !shared_seen.shared.present, "no shared_ram: present 0 (%s)", why);
	stream_mem_free(&m);
}

int main(void)
{
	static struct host ha;
	static uint8_t held[90];
	char *cause = NULL;
	unsigned i;

	host_init(&ha, 123456789, rig_mac);
	busy_guest(&ha, held, sizeof(held));
	CHECK(devstate_save(&ha.set, &devs, &devs_len, &cause) == 0, "devstate: %s",
	      cause ? cause : "");
	for (i = 0; i < STREAM_DIGEST_LEN; i++)
		patch.digest[i] = (uint8_t)(i * 37 + 1);
	fill_vcpu(&vcpus[0], 0);
	fill_vcpu(&vcpus[1], 1);

	host_local = (struct stream_host){ .personalities = pers, .nr_personalities = 2,
					   .max_ram = 3ull << 30, .max_vcpus = 16, .image_abi = 1,
					   .patch_table_version = 1 };
	host_fake = host_local;
	strcpy(host_fake.cpu.vendor, "GenuineIntel");
	memset(host_fake.cpu.word, 0xff, sizeof(host_fake.cpu.word));

	test_round_trip();
	test_refusals();
	test_tail();
	test_shared_ram();
	free(devs);
	free(cause);
	return tap_done("test_stream");
}
