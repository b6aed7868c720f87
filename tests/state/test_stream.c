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
	free(devs);
	free(cause);
	return tap_done("test_stream");
}
