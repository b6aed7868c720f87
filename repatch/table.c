/* table.c: parse and validate the retained patch table (untrusted bytes from guest memory) */
#include "pvlibc.h"
#include "repatch.h"
#include "repatch_int.h"

_Static_assert(sizeof(struct pvsites_chunk) == 16, "chunk header is 16 bytes");
_Static_assert(sizeof(struct pvsite_rec) == 32, "record is 32 bytes");

static const struct {
	const char *name;
	unsigned len;
} kinds[PVSITE_KIND_COUNT] = {
#define PVSITE_KIND(id, name, len) [PVSITE_##id] = {name, len},
#include "site_kinds.def"
#undef PVSITE_KIND
};

const char *pvsite_kind_name(unsigned kind)
{
	return kind < PVSITE_KIND_COUNT ? kinds[kind].name : NULL;
}

unsigned pvsite_kind_len(unsigned kind)
{
	return kind < PVSITE_KIND_COUNT ? kinds[kind].len : 0;
}

int pvsite_kind_by_name(const char *name)
{
	for (unsigned k = 0; k < PVSITE_KIND_COUNT; k++) {
		const char *a = kinds[k].name, *b = name;
		while (*a && *a == *b)
			a++, b++;
		if (*a == 0 && *b == 0)
			return (int)k;
	}
	return -1;
}

/* Minimal formatter: the library is freestanding, so no snprintf. */
struct msgbuf {
	char *p;
	size_t left;
};

static void put_str(struct msgbuf *m, const char *s)
{
	while (*s && m->left > 1)
		*m->p++ = *s++, m->left--;
	*m->p = 0;
}

static void put_num(struct msgbuf *m, uint64_t v, unsigned base)
{
	char tmp[24];
	int i = 0;
	do
		tmp[i++] = "0123456789abcdef"[v % base];
	while ((v /= base) && i < 23);
	if (base == 16)
		put_str(m, "0x");
	while (i > 0 && m->left > 1)
		*m->p++ = tmp[--i], m->left--;
	*m->p = 0;
}

static int fail(struct repatch_err *err, int code, long site, uint64_t addr, const char *what,
		const char *detail)
{
	if (!err)
		return -1;
	struct msgbuf m = {err->msg, sizeof(err->msg)};
	err->code = code;
	err->site = site;
	err->addr = addr;
	err->msg[0] = 0;
	put_str(&m, what);
	if (site >= 0) {
		put_str(&m, " (site ");
		put_num(&m, (uint64_t)site, 10);
		put_str(&m, " at ");
		put_num(&m, addr, 16);
		put_str(&m, ")");
	} else {
		put_str(&m, " at table offset ");
		put_num(&m, addr, 16);
	}
	if (detail) {
		put_str(&m, ": ");
		put_str(&m, detail);
	}
	return -1;
}

int repatch_fail(struct repatch_err *err, int code, long site, uint64_t addr, const char *what,
		 const char *detail)
{
	return fail(err, code, site, addr, what, detail);
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	pv_memcpy(&v, p, 8);
	return v;
}

/*
 * Walk the chunk headers.  Calls `each(ctx, rec_offset, count)` per chunk
 * once its header and extent are proven to lie inside the table.
 */
static long walk(const uint8_t *t, size_t size, struct repatch_err *err,
		 int (*each)(void *ctx, size_t off, uint32_t count), void *ctx)
{
	size_t off = 0;
	long total = 0;

	if (size % 8)
		return fail(err, REPATCH_ETABLE, -1, size, "table size is not a multiple of 8", NULL);
	while (off < size) {
		if (load64(t + off) == 0) { /* alignment padding between chunks */
			off += 8;
			continue;
		}
		struct pvsites_chunk h;
		if (size - off < sizeof(h))
			return fail(err, REPATCH_ETABLE, -1, off, "truncated chunk header", NULL);
		pv_memcpy(&h, t + off, sizeof(h));
		if (h.magic != PVSITES_MAGIC)
			return fail(err, REPATCH_ETABLE, -1, off, "bad chunk magic", NULL);
		if (h.version != PVSITES_VERSION)
			return fail(err, REPATCH_ETABLE, -1, off, "unsupported table version", NULL);
		if (h.rec_size != sizeof(struct pvsite_rec))
			return fail(err, REPATCH_ETABLE, -1, off, "unexpected record size", NULL);
		if (h.reserved != 0)
			return fail(err, REPATCH_ETABLE, -1, off, "reserved header field is not zero",
				    NULL);
		off += sizeof(h);
		if (h.count > (size - off) / sizeof(struct pvsite_rec))
			return fail(err, REPATCH_ETABLE, -1, off, "record count runs past the table",
				    NULL);
		if (each && each(ctx, off, h.count) < 0)
			return -1;
		off += (size_t)h.count * sizeof(struct pvsite_rec);
		total += h.count;
	}
	return total;
}

long pvsites_count(const void *table, size_t size, struct repatch_err *err)
{
	return walk(table, size, err, NULL, NULL);
}

struct decode_ctx {
	const uint8_t *t;
	uint64_t table_addr;
	struct pvsite *out;
	size_t cap, n;
	struct repatch_err *err;
};

static int decode_one(struct decode_ctx *d, size_t off)
{
	struct pvsite_rec r;
	struct pvsite *s = &d->out[d->n];
	uint64_t rec_addr = d->table_addr + off;
	long idx = (long)d->n;

	pv_memcpy(&r, d->t + off, sizeof(r));
	s->addr = rec_addr + (uint64_t)r.where;
	if (r.kind >= PVSITE_KIND_COUNT)
		return fail(d->err, REPATCH_ETABLE, idx, s->addr, "unknown site kind", NULL);
	if (r.len > PVSITES_LEN_MAX || r.orig_len == 0 || r.orig_len > PVSITES_ORIG_MAX ||
	    r.orig_len > r.len)
		return fail(d->err, REPATCH_ETABLE, idx, s->addr, "impossible site length", NULL);
	if (s->addr + r.len < s->addr)
		return fail(d->err, REPATCH_ETABLE, idx, s->addr, "site wraps the address space",
			    NULL);
	if (r.flags & ~PVSITE_F_KNOWN)
		return fail(d->err, REPATCH_ETABLE, idx, s->addr, "unknown flags", NULL);
	if (r.reserved != 0)
		return fail(d->err, REPATCH_ETABLE, idx, s->addr, "reserved field is not zero",
			    NULL);
	if (r.reg > 15 && r.reg != PVSITES_NONE)
		return fail(d->err, REPATCH_ETABLE, idx, s->addr, "bad register number", NULL);
	for (unsigned i = r.orig_len; i < sizeof(r.orig); i++)
		if (r.orig[i])
			return fail(d->err, REPATCH_ETABLE, idx, s->addr,
				    "bytes after the original instruction are not zero", NULL);
	s->kind = r.kind;
	s->len = r.len;
	s->orig_len = r.orig_len;
	s->flags = r.flags;
	s->reg = r.reg;
	s->aux = r.aux;
	s->width = r.width;
	pv_memcpy(s->orig, r.orig, sizeof(s->orig));
	pv_fill_nops(s->orig + r.orig_len, sizeof(s->orig) - r.orig_len); /* see native_emit */
	if (r.flags & PVSITE_F_RIPREL) {
		/* The copy in the record was assembled at &rec->orig: move its
		 * displacement so it is relative to the site instead. */
		int32_t disp;
		uint64_t copy = rec_addr + __builtin_offsetof(struct pvsite_rec, orig);
		if (r.orig_len < 5)
			return fail(d->err, REPATCH_ETABLE, idx, s->addr,
				    "rip-relative instruction too short", NULL);
		pv_memcpy(&disp, s->orig + r.orig_len - 4, 4);
		int64_t moved = (int64_t)disp + (int64_t)(copy - s->addr);
		if (moved != (int32_t)moved)
			return fail(d->err, REPATCH_ETABLE, idx, s->addr,
				    "rip-relative target out of reach of the site", NULL);
		disp = (int32_t)moved;
		pv_memcpy(s->orig + r.orig_len - 4, &disp, 4);
	}
	d->n++;
	return 0;
}

static int decode_chunk(void *ctx, size_t off, uint32_t count)
{
	struct decode_ctx *d = ctx;
	if (count > d->cap - d->n)
		return fail(d->err, REPATCH_ETABLE, -1, off, "more sites than room for them", NULL);
	for (uint32_t i = 0; i < count; i++, off += sizeof(struct pvsite_rec))
		if (decode_one(d, off) < 0)
			return -1;
	return 0;
}

/* Heapsort by address: O(n log n) on hostile input, no allocation. */
static void sift(struct pvsite *a, size_t root, size_t n)
{
	for (;;) {
		size_t c = 2 * root + 1;
		if (c >= n)
			return;
		if (c + 1 < n && a[c + 1].addr > a[c].addr)
			c++;
		if (a[root].addr >= a[c].addr)
			return;
		struct pvsite t = a[root];
		a[root] = a[c];
		a[c] = t;
		root = c;
	}
}

static void sort_sites(struct pvsite *a, size_t n)
{
	for (size_t i = 1; i < n; i++) /* the linker's order is nearly always sorted */
		if (a[i - 1].addr > a[i].addr)
			goto heap;
	return;
heap:
	for (size_t i = n / 2; i-- > 0;)
		sift(a, i, n);
	for (size_t end = n; end-- > 1;) {
		struct pvsite t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift(a, 0, end);
	}
}

long pvsites_decode(const void *table, size_t size, uint64_t table_addr, struct pvsite *out,
		    size_t cap, struct repatch_err *err)
{
	struct decode_ctx d = {table, table_addr, out, cap, 0, err};

	if (walk(table, size, err, decode_chunk, &d) < 0)
		return -1;
	sort_sites(out, d.n);
	for (size_t i = 1; i < d.n; i++)
		if (out[i - 1].addr + out[i - 1].len > out[i].addr)
			return fail(err, REPATCH_ETABLE, (long)i, out[i].addr,
				    "site overlaps the previous one", NULL);
	return (long)d.n;
}

long pvsites_lookup(const struct pvsite *sites, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* first site starting after addr */
		size_t mid = lo + (hi - lo) / 2;
		if (sites[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr - sites[lo - 1].addr >= sites[lo - 1].len)
		return -1;
	return (long)(lo - 1);
}
