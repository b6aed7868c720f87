/* stream_decode.c: the stream decoder: record order, header check against this host, pages and state to callbacks */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"
#include "vcpustate.h"

/* ---- the header ---- */

static int header_from_wire(const uint8_t *body, uint64_t len, struct stream_info *info,
			    char *why, size_t whylen)
{
	const Pvmigrate__CpuFeatures *c;
	Pvmigrate__StreamHeader *h;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	if (len < STREAM_MAGIC_LEN || memcmp(body, STREAM_MAGIC, STREAM_MAGIC_LEN)) {
		st_err(why, whylen, "STREAM_HEADER: bad magic (not a pvmigrate stream)");
		return -1;
	}
	h = pvmigrate__stream_header__unpack(NULL, len - STREAM_MAGIC_LEN, body + STREAM_MAGIC_LEN);
	if (!h) {
		st_err(why, whylen, "STREAM_HEADER: not a valid StreamHeader message");
		return -1;
	}
	c = h->cpu;
	if (!h->has_stream_version)
		st_err(why, whylen, "STREAM_HEADER: stream_version: missing");
	else if (!st_name_ok(h->personality))
		st_err(why, whylen, "STREAM_HEADER: personality: %s", h->personality ?
		       "not 1..31 characters of [a-z0-9_-]" : "missing");
	else if (!h->has_image_abi || !h->has_patch_table_version || !c || !h->has_ram_size ||
		 !h->has_nr_vcpus || !h->has_page_size)
		st_err(why, whylen, "STREAM_HEADER: %s: missing", !h->has_image_abi ? "image_abi" :
		       !h->has_patch_table_version ? "patch_table_version" : !c ? "cpu" :
		       !h->has_ram_size ? "ram_size" : !h->has_nr_vcpus ? "nr_vcpus" : "page_size");
	else if (!c->vendor || strlen(c->vendor) != 12 || !st_vendor_ok(c->vendor))
		st_err(why, whylen, "STREAM_HEADER: cpu.vendor: %s", c->vendor ?
		       "not 12 printable characters" : "missing");
	else if (!c->has_leaf1_ecx || !c->has_leaf1_edx || !c->has_leaf7_ebx ||
		 !c->has_leaf7_ecx || !c->has_leaf7_edx || !c->has_ext1_ecx || !c->has_ext1_edx)
		st_err(why, whylen, "STREAM_HEADER: cpu: a feature word is missing");
	else if (!h->ram_size || h->ram_size % STREAM_PAGE_SIZE)
		st_err(why, whylen, "STREAM_HEADER: ram_size: %llu, not a positive multiple of %u",
		       (unsigned long long)h->ram_size, STREAM_PAGE_SIZE);
	else if (!h->nr_vcpus || h->nr_vcpus > STREAM_MAX_VCPUS)
		st_err(why, whylen, "STREAM_HEADER: nr_vcpus: %u, want 1..%u", h->nr_vcpus,
		       STREAM_MAX_VCPUS);
	else if (h->shared_ram && (!h->shared_ram->has_dev || !h->shared_ram->has_ino ||
				   !h->shared_ram->has_size))
		st_err(why, whylen, "STREAM_HEADER: shared_ram: dev, ino or size missing");
	else if (h->shared_ram && h->shared_ram->size != h->ram_size)
		st_err(why, whylen, "STREAM_HEADER: shared_ram.size: %llu, ram_size %llu",
		       (unsigned long long)h->shared_ram->size, (unsigned long long)h->ram_size);
	else
		rc = 0;
	if (rc == 0 && h->shared_ram) {
		info->shared.present = 1;
		info->shared.dev = h->shared_ram->dev;
		info->shared.ino = h->shared_ram->ino;
		info->shared.size = h->shared_ram->size;
	}
	if (rc == 0) {
		info->version = h->stream_version;
		strcpy(info->personality, h->personality);
		info->image_abi = h->image_abi;
		info->patch_table_version = h->patch_table_version;
		memcpy(info->cpu.vendor, c->vendor, 13);
		info->cpu.word[STREAM_CPU_1_ECX] = c->leaf1_ecx;
		info->cpu.word[STREAM_CPU_1_EDX] = c->leaf1_edx;
		info->cpu.word[STREAM_CPU_7_EBX] = c->leaf7_ebx;
		info->cpu.word[STREAM_CPU_7_ECX] = c->leaf7_ecx;
		info->cpu.word[STREAM_CPU_7_EDX] = c->leaf7_edx;
		info->cpu.word[STREAM_CPU_X1_ECX] = c->ext1_ecx;
		info->cpu.word[STREAM_CPU_X1_EDX] = c->ext1_edx;
		info->ram_size = h->ram_size;
		info->nr_vcpus = h->nr_vcpus;
		info->page_size = h->page_size;
	}
	pvmigrate__stream_header__free_unpacked(h, NULL);
	return rc;
}

/* ---- the decoder ---- */

struct dec {
	const struct stream_host *host;
	const struct stream_sink *sink;
	char *why;
	size_t whylen;
	int phase; /* 0 want header, 1 pages, 2 after machine state */
	struct stream_info info;
	uint64_t ram_pages;
	uint64_t gfns[STREAM_MAX_BATCH];
	struct stream_patch patch;
};

/* A callback said no: "stream: <RECORD>: <its reason>". */
static int refused(struct dec *d, const char *what, const char *cb)
{
	st_err(d->why, d->whylen, "%s: %s", what, *cb ? cb : "refused by the receiver");
	return -1;
}

static int dec_pages(struct dec *d, const uint8_t *body, uint64_t len)
{
	uint32_t count, reserved, i;
	char cb[200] = "";

	if (len < STREAM_BATCH_HDR_LEN) {
		st_err(d->why, d->whylen, "PAGE_BATCH: length %llu, shorter than its count",
		       (unsigned long long)len);
		return -1;
	}
	count = st_get32(body);
	reserved = st_get32(body + 4);
	if (reserved) {
		st_err(d->why, d->whylen, "PAGE_BATCH: reserved word %#x, want 0", reserved);
		return -1;
	}
	if (!count || count > STREAM_MAX_BATCH) {
		st_err(d->why, d->whylen, "PAGE_BATCH: count %u, want 1..%u", count,
		       STREAM_MAX_BATCH);
		return -1;
	}
	if (len != STREAM_BATCH_HDR_LEN + (uint64_t)count * (8 + STREAM_PAGE_SIZE)) {
		st_err(d->why, d->whylen, "PAGE_BATCH: length %llu, want %llu for %u pages",
		       (unsigned long long)len,
		       (unsigned long long)(STREAM_BATCH_HDR_LEN + (uint64_t)count * (8 + STREAM_PAGE_SIZE)),
		       count);
		return -1;
	}
	for (i = 0; i < count; i++) {
		d->gfns[i] = st_get64(body + STREAM_BATCH_HDR_LEN + 8 * (size_t)i);
		if (d->gfns[i] >= d->ram_pages) {
			st_err(d->why, d->whylen, "PAGE_BATCH: gfn %#llx outside guest RAM (%llu pages)",
			       (unsigned long long)d->gfns[i], (unsigned long long)d->ram_pages);
			return -1;
		}
		if (i && d->gfns[i] <= d->gfns[i - 1]) {
			st_err(d->why, d->whylen, "PAGE_BATCH: gfn %#llx after %#llx (gfns must "
			       "strictly increase)", (unsigned long long)d->gfns[i],
			       (unsigned long long)d->gfns[i - 1]);
			return -1;
		}
	}
	if (d->sink->pages &&
	    d->sink->pages(d->sink->ctx, d->gfns, count,
			   body + STREAM_BATCH_HDR_LEN + 8 * (size_t)count, cb, sizeof(cb)) < 0)
		return refused(d, "PAGE_BATCH", cb);
	return 0;
}

static int patch_from_wire(struct dec *d, const Pvmigrate__PatchState *p)
{
	if (!st_name_ok(p->personality)) {
		st_err(d->why, d->whylen, "patch.personality: %s",
		       p->personality ? "not 1..31 characters of [a-z0-9_-]" : "missing");
		return -1;
	}
	if (strcmp(p->personality, d->info.personality)) {
		st_err(d->why, d->whylen, "patch.personality: '%s', but the header says '%s'",
		       p->personality, d->info.personality);
		return -1;
	}
	if (!p->has_nr_sites) {
		st_err(d->why, d->whylen, "patch.nr_sites: missing");
		return -1;
	}
	if (!p->has_digest || p->digest.len != STREAM_DIGEST_LEN || !p->digest.data) {
		st_err(d->why, d->whylen, "patch.digest: %s", !p->has_digest ? "missing" :
		       "not 32 bytes");
		return -1;
	}
	if (p->has_table_addr != p->has_table_size ||
	    (p->has_table_size && (!p->table_size || p->table_addr >= d->info.ram_size ||
				   p->table_size > d->info.ram_size - p->table_addr))) {
		st_err(d->why, d->whylen, "patch.table: %s", p->has_table_addr != p->has_table_size ?
		       "address and size must come together" : "not inside guest RAM");
		return -1;
	}
	memset(&d->patch, 0, sizeof(d->patch));
	strcpy(d->patch.personality, p->personality);
	d->patch.table_addr = p->table_addr;
	d->patch.table_size = p->table_size;
	d->patch.nr_sites = p->nr_sites;
	memcpy(d->patch.digest, p->digest.data, STREAM_DIGEST_LEN);
	return 0;
}

static int dec_machine(struct dec *d, const uint8_t *body, uint64_t len)
{
	struct stream_machine m = { 0 };
	Pvmigrate__MachineState *ms;
	struct vm_vcpu_state *v = NULL;
	uint8_t *dev = NULL;
	char cb[200] = "";
	unsigned i;
	int rc = -1;

	ms = pvmigrate__machine_state__unpack(NULL, (size_t)len, body);
	if (!ms) {
		st_err(d->why, d->whylen, "MACHINE_STATE: not a valid MachineState message");
		return -1;
	}
	if (ms->n_vcpus != d->info.nr_vcpus) {
		st_err(d->why, d->whylen, "MACHINE_STATE: vcpus: %zu entries, want %u (the "
		       "header's nr_vcpus)", ms->n_vcpus, d->info.nr_vcpus);
		goto out;
	}
	if (!(v = calloc(ms->n_vcpus, sizeof(*v)))) {
		st_err(d->why, d->whylen, "MACHINE_STATE: out of memory");
		goto out;
	}
	for (i = 0; i < ms->n_vcpus; i++)
		if (vcpustate_from_wire(ms->vcpus[i], i, &v[i], d->why, d->whylen) < 0)
			goto out;
	if (ms->patch && patch_from_wire(d, ms->patch) < 0)
		goto out;
	if (ms->devices) {
		/* devstate_restore takes the packed form; protobuf-c packs canonically */
		m.devices_len = pvmigrate__device_set__get_packed_size(ms->devices);
		if (!(dev = malloc(m.devices_len ? m.devices_len : 1))) {
			st_err(d->why, d->whylen, "MACHINE_STATE: out of memory");
			goto out;
		}
		pvmigrate__device_set__pack(ms->devices, dev);
		/* protobuf-c accepts some encodings it never produces (a field
		 * number 0 spelled as a two-byte varint, found by fuzz-stream)
		 * and packs them into bytes it refuses: such a set is malformed */
		Pvmigrate__DeviceSet *again = pvmigrate__device_set__unpack(NULL, m.devices_len, dev);
		if (!again) {
			st_err(d->why, d->whylen, "MACHINE_STATE: the device set is malformed "
			       "(it does not survive a re-encode)");
			goto out;
		}
		pvmigrate__device_set__free_unpacked(again, NULL);
		m.devices = dev;
	}
	m.vcpus = v;
	m.nr_vcpus = d->info.nr_vcpus;
	m.patch = ms->patch ? &d->patch : NULL;
	m.msg = ms;
	m.raw = body;
	m.raw_len = (size_t)len;
	if (d->sink->machine && d->sink->machine(d->sink->ctx, &m, cb, sizeof(cb)) < 0)
		refused(d, "MACHINE_STATE", cb);
	else
		rc = 0;
out:
	free(dev);
	free(v);
	pvmigrate__machine_state__free_unpacked(ms, NULL);
	return rc;
}

static int dec_header(struct dec *d, const uint8_t *body, uint64_t len)
{
	char cb[200] = "";

	if (header_from_wire(body, len, &d->info, d->why, d->whylen) < 0 ||
	    stream_check_host(&d->info, d->host, d->why, d->whylen) < 0)
		return -1;
	d->ram_pages = d->info.ram_size / STREAM_PAGE_SIZE;
	if (d->sink->header && d->sink->header(d->sink->ctx, &d->info, cb, sizeof(cb)) < 0)
		return refused(d, "STREAM_HEADER", cb);
	return 0;
}

/* One record against the order rules; 1 when it was END. */
static int dec_record(struct dec *d, const struct stream_record *rec)
{
	char whatbuf[32], cb[200] = "";
	const char *what = st_what(rec->type, whatbuf, sizeof(whatbuf));

	if (d->phase == 0 && rec->type != STREAM_REC_HEADER) {
		st_err(d->why, d->whylen, "%s: before STREAM_HEADER", what);
		return -1;
	}
	switch (rec->type) {
	case STREAM_REC_HEADER:
		if (d->phase != 0) {
			st_err(d->why, d->whylen, "STREAM_HEADER: second header");
			return -1;
		}
		d->phase = 1;
		return dec_header(d, rec->body, rec->len);
	case STREAM_REC_PAGE_BATCH:
		if (d->info.shared.present) {
			/* the RAM is the source's own: a page written here would
			 * change the running guest's memory */
			st_err(d->why, d->whylen, "PAGE_BATCH: the header says the RAM is shared");
			return -1;
		}
		if (d->phase == 2) {
			st_err(d->why, d->whylen, "PAGE_BATCH: after MACHINE_STATE");
			return -1;
		}
		return dec_pages(d, rec->body, rec->len);
	case STREAM_REC_MACHINE_STATE:
		if (d->phase == 2) {
			st_err(d->why, d->whylen, "MACHINE_STATE: second machine state");
			return -1;
		}
		d->phase = 2;
		return dec_machine(d, rec->body, rec->len);
	case STREAM_REC_END:
		if (d->phase != 2) {
			st_err(d->why, d->whylen, "END: before MACHINE_STATE");
			return -1;
		}
		if (rec->len) {
			st_err(d->why, d->whylen, "END: length %llu, want 0",
			       (unsigned long long)rec->len);
			return -1;
		}
		return 1;
	case STREAM_REC_NIC_LATE:
	case STREAM_REC_NIC_LATE_END:
		st_err(d->why, d->whylen, "%s: before END (it belongs to the tail)", what);
		return -1;
	case STREAM_REC_STATISTICS:
	case STREAM_REC_NIC_HELD:
		if (rec->len % 8) {
			st_err(d->why, d->whylen, "%s: length %llu, not a multiple of 8", what,
			       (unsigned long long)rec->len);
			return -1;
		}
		if (d->sink->optional &&
		    d->sink->optional(d->sink->ctx, rec->type, rec->body, rec->len, cb,
				      sizeof(cb)) < 0)
			return refused(d, what, cb);
		return 0;
	}
	if (rec->type & STREAM_OPTIONAL)
		return 0; /* unknown optional: skipped */
	st_err(d->why, d->whylen, "%s: unknown mandatory record", what);
	return -1;
}

int stream_decode(const struct stream_io *io, const struct stream_host *host,
		  const struct stream_sink *sink, char *why, size_t whylen)
{
	static const struct stream_sink none;
	struct stream_reader r;
	struct stream_record rec;
	struct dec *d;
	int rc;

	if (!(d = calloc(1, sizeof(*d)))) {
		st_err(why, whylen, "decode: out of memory");
		return -1;
	}
	d->host = host;
	d->sink = sink ? sink : &none;
	d->why = why;
	d->whylen = whylen;
	stream_reader_init(&r, io);
	for (;;) {
		rc = stream_read_record(&r, &rec);
		if (rc < 0) {
			if (why && whylen)
				snprintf(why, whylen, "%s", r.err);
			break;
		}
		if (rc == 0) {
			st_err(why, whylen, "input: ended at offset %llu before the END record",
			       (unsigned long long)r.offset);
			rc = -1;
			break;
		}
		rc = dec_record(d, &rec);
		if (rc != 0) {
			rc = rc > 0 ? 0 : -1;
			break;
		}
	}
	stream_reader_free(&r);
	free(d);
	return rc;
}

/* ---- the tail: NIC_LATE records and NIC_LATE_END, after END ---- */

const char *stream_late_how_name(uint32_t how)
{
	switch (how) {
	case STREAM_LATE_EOF:
		return "EOF";
	case STREAM_LATE_BOUND:
		return "bound";
	case STREAM_LATE_NIC_ERROR:
		return "NIC error";
	}
	return "none";
}

/* A NIC_LATE body (NIC_HELD's layout, at least one frame): checked
 * whole before the first frame is handed out; *count frames. */
static int late_frames(const uint8_t *b, uint64_t len, uint32_t *count, char *why,
		       size_t whylen)
{
	char cb[160];

	if (stream_frames_check(b, len, count, cb, sizeof(cb)) < 0) {
		st_err(why, whylen, "NIC_LATE: %s", cb);
		return -1;
	}
	if (!*count) {
		st_err(why, whylen, "NIC_LATE: no frames");
		return -1;
	}
	return 0;
}

int stream_decode_tail(const struct stream_io *io,
		       int (*frame)(void *ctx, const uint8_t *f, size_t len, char *why,
				    size_t whylen),
		       void *ctx, struct stream_late_end *end, char *why, size_t whylen)
{
	struct stream_reader r;
	struct stream_record rec;
	char whatbuf[32], cb[200];
	const char *what;
	const uint8_t *f;
	uint64_t seen = 0, off;
	uint32_t count, i;
	size_t flen;
	int rc, first = 1;

	memset(end, 0, sizeof(*end));
	stream_reader_init(&r, io);
	for (;; first = 0) {
		rc = stream_read_record(&r, &rec);
		if (rc < 0) {
			if (why && whylen)
				snprintf(why, whylen, "%s", r.err);
			break;
		}
		if (rc == 0) {
			if (first)
				break; /* no tail: end->how stays 0 */
			st_err(why, whylen, "tail: input ended at offset %llu before NIC_LATE_END "
			       "(%llu frames came)", (unsigned long long)r.offset,
			       (unsigned long long)seen);
			rc = -1;
			break;
		}
		what = st_what(rec.type, whatbuf, sizeof(whatbuf));
		if (rec.type == STREAM_REC_NIC_LATE) {
			if (late_frames(rec.body, rec.len, &count, why, whylen) < 0) {
				rc = -1;
				break;
			}
			for (i = 0, off = 0; i < count; i++) {
				f = stream_frames_next(rec.body, &off, &flen);
				cb[0] = '\0';
				if (frame && frame(ctx, f, flen, cb, sizeof(cb)) < 0) {
					st_err(why, whylen, "NIC_LATE: frame %llu: %s",
					       (unsigned long long)seen, cb[0] ? cb : "refused");
					rc = -1;
					break;
				}
				seen++;
			}
			if (rc < 0)
				break;
			continue;
		}
		if (rec.type == STREAM_REC_NIC_LATE_END) {
			if (rec.len != 16 || st_get32(rec.body + 12)) {
				st_err(why, whylen, "NIC_LATE_END: length %llu or reserved word: want 16 "
				       "bytes, reserved 0", (unsigned long long)rec.len);
				rc = -1;
			} else if (!st_get32(rec.body + 8) ||
				   st_get32(rec.body + 8) > STREAM_LATE_HOW_MAX) {
				st_err(why, whylen, "NIC_LATE_END: how %u, want 1..%u",
				       st_get32(rec.body + 8), STREAM_LATE_HOW_MAX);
				rc = -1;
			} else if (st_get64(rec.body) != seen) {
				st_err(why, whylen, "NIC_LATE_END: says %llu frames, %llu came",
				       (unsigned long long)st_get64(rec.body),
				       (unsigned long long)seen);
				rc = -1;
			} else {
				end->frames = seen;
				end->how = st_get32(rec.body + 8);
				rc = 0;
			}
			break;
		}
		if ((rec.type & STREAM_OPTIONAL) && !stream_rec_name(rec.type))
			continue; /* unknown optional: skipped */
		st_err(why, whylen, "%s: has no place in the tail", what);
		rc = -1;
		break;
	}
	stream_reader_free(&r);
	return rc;
}
