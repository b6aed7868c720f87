/* vcpustate.c: struct vm_vcpu_state <-> protobuf X86VcpuState; the receiving side checks every field */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vcpustate.h"

/* ---- save: point the message into the state, set every presence flag ---- */

#define SET(m, f, v) ((m)->has_##f = 1, (m)->f = (v))

static void seg_to_wire(const struct vm_segment *s, Pvmigrate__Segment *m)
{
	pvmigrate__segment__init(m);
	SET(m, base_address, s->base);
	SET(m, limit, s->limit);
	SET(m, selector, s->selector);
	SET(m, type, s->type);
	SET(m, present, s->present);
	SET(m, dpl, s->dpl);
	SET(m, db, s->db);
	SET(m, s, s->s);
	SET(m, l, s->l);
	SET(m, g, s->g);
	SET(m, avl, s->avl);
	SET(m, unusable, s->unusable);
}

static void dt_to_wire(const struct vm_dtable *d, Pvmigrate__DescriptorTable *m)
{
	pvmigrate__descriptor_table__init(m);
	SET(m, base_address, d->base);
	SET(m, limit, d->limit);
}

static void events_to_wire(const struct vm_events *e, Pvmigrate__VcpuEvents *m)
{
	pvmigrate__vcpu_events__init(m);
	SET(m, exc_injected, e->exc_injected);
	SET(m, exc_pending, e->exc_pending);
	SET(m, exc_nr, e->exc_nr);
	SET(m, exc_has_error_code, e->exc_has_error_code);
	SET(m, exc_error_code, e->exc_error_code);
	SET(m, irq_injected, e->irq_injected);
	SET(m, irq_nr, e->irq_nr);
	SET(m, irq_soft, e->irq_soft);
	SET(m, irq_shadow, e->irq_shadow);
	SET(m, nmi_injected, e->nmi_injected);
	SET(m, nmi_pending, e->nmi_pending);
	SET(m, nmi_masked, e->nmi_masked);
	SET(m, sipi_vector, e->sipi_vector);
}

void vcpustate_to_wire(const struct vm_vcpu_state *st, struct vcpu_wire *w)
{
	const struct vm_segment *segs[VCPUSTATE_NR_SEGS] = {
		&st->cs, &st->ds, &st->es, &st->fs, &st->gs, &st->ss, &st->tr, &st->ldt,
	};
	Pvmigrate__X86VcpuState *m = &w->msg;
	unsigned i;

	pvmigrate__x86_vcpu_state__init(m);
	for (i = 0; i < VCPUSTATE_NR_SEGS; i++)
		seg_to_wire(segs[i], &w->seg[i]);
	dt_to_wire(&st->gdt, &w->gdt);
	dt_to_wire(&st->idt, &w->idt);
	events_to_wire(&st->events, &w->events);
	/* protobuf-c's pack only reads through these pointers */
	m->n_gpr = VM_NR_GPRS;
	m->gpr = (uint64_t *)st->gpr;
	SET(m, rip, st->rip);
	SET(m, rflags, st->rflags);
	m->cs = &w->seg[0];
	m->ds = &w->seg[1];
	m->es = &w->seg[2];
	m->fs = &w->seg[3];
	m->gs = &w->seg[4];
	m->ss = &w->seg[5];
	m->tr = &w->seg[6];
	m->ldt = &w->seg[7];
	m->gdt = &w->gdt;
	m->idt = &w->idt;
	SET(m, cr0, st->cr0);
	SET(m, cr2, st->cr2);
	SET(m, cr3, st->cr3);
	SET(m, cr4, st->cr4);
	SET(m, cr8, st->cr8);
	SET(m, efer, st->efer);
	SET(m, apic_base, st->apic_base);
	m->n_dr = 4;
	m->dr = (uint64_t *)st->dr;
	SET(m, dr6, st->dr6);
	SET(m, dr7, st->dr7);
	SET(m, fs_base, st->fs_base);
	SET(m, gs_base, st->gs_base);
	SET(m, kernel_gs_base, st->kernel_gs_base);
	SET(m, star, st->star);
	SET(m, lstar, st->lstar);
	SET(m, cstar, st->cstar);
	SET(m, sfmask, st->sfmask);
	SET(m, sysenter_cs, st->sysenter_cs);
	SET(m, sysenter_esp, st->sysenter_esp);
	SET(m, sysenter_eip, st->sysenter_eip);
	SET(m, tsc, st->tsc);
	SET(m, tsc_aux, st->tsc_aux);
	SET(m, pat, st->pat);
	SET(m, misc_enable, st->misc_enable);
	SET(m, xcr0, st->xcr0);
	m->has_xsave = 1;
	m->xsave.len = VM_XSAVE_SIZE;
	m->xsave.data = (uint8_t *)st->xsave;
	m->events = &w->events;
	m->n_pending_irq_bitmap = 4;
	m->pending_irq_bitmap = (uint64_t *)st->pending_irq_bitmap;
	SET(m, mp_state, st->mp_state);
	SET(m, started, st->started != 0);
}

/* ---- restore: the first failure wins, later checks are no-ops ---- */

struct vc_ctx {
	char *why;
	size_t whylen;
	unsigned index;
	const char *part; /* "cs", "events", or "" for top-level fields */
	int failed;
};

static void vc_fail(struct vc_ctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void vc_fail(struct vc_ctx *c, const char *field, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return;
	c->failed = 1;
	if (!c->why || !c->whylen)
		return;
	n = snprintf(c->why, c->whylen, "stream: vcpu[%u]%s%s%s%s: ", c->index,
		     *c->part || *field ? "." : "", c->part, *c->part && *field ? "." : "", field);
	if (n < 0 || (size_t)n >= c->whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why + n, c->whylen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* A scalar the sender must have written, inside [lo, hi]. */
static uint64_t vc_range(struct vc_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v,
			 uint64_t lo, uint64_t hi)
{
	if (c->failed)
		return 0;
	if (!has) {
		vc_fail(c, field, "missing");
		return 0;
	}
	if (v < lo || v > hi) {
		vc_fail(c, field, "out of range (%#llx, want %#llx..%#llx)", (unsigned long long)v,
			(unsigned long long)lo, (unsigned long long)hi);
		return 0;
	}
	return v;
}

/* A scalar whose bits outside `allowed` must be clear. */
static uint64_t vc_bits(struct vc_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v,
			uint64_t allowed)
{
	if (vc_range(c, field, has, v, 0, UINT64_MAX) & ~allowed) {
		vc_fail(c, field, "reserved bits set (%#llx, reserved mask %#llx)",
			(unsigned long long)v, (unsigned long long)~allowed);
		return 0;
	}
	return v;
}

/* A linear address that some host MSR write demands be canonical (57-bit, the widest). */
static uint64_t vc_canon(struct vc_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v)
{
	uint64_t top = vc_range(c, field, has, v, 0, UINT64_MAX) >> 56;

	if (top != 0 && top != 0xff) {
		vc_fail(c, field, "not canonical (%#llx)", (unsigned long long)v);
		return 0;
	}
	return v;
}

static void vc_array(struct vc_ctx *c, const char *field, size_t n, const uint64_t *v,
		     uint64_t *dst, size_t want)
{
	if (c->failed)
		return;
	if (n != want || (want && !v))
		vc_fail(c, field, "%zu entries, want %zu", n, want);
	else
		memcpy(dst, v, want * sizeof(*dst));
}

static int vc_present(struct vc_ctx *c, const char *field, const void *part)
{
	if (c->failed)
		return -1;
	if (!part) {
		vc_fail(c, field, "missing");
		return -1;
	}
	return 0;
}

#define F(m, f) #f, (m)->has_##f, (m)->f
#define FLAG(m, f) (uint8_t)vc_range(c, F(m, f) != 0, 0, 1)

static void seg_from_wire(struct vc_ctx *c, const char *name, const Pvmigrate__Segment *m,
			  struct vm_segment *s)
{
	if (vc_present(c, name, m) < 0)
		return;
	c->part = name;
	s->base = vc_range(c, F(m, base_address), 0, UINT64_MAX);
	s->limit = (uint32_t)vc_range(c, F(m, limit), 0, UINT32_MAX);
	s->selector = (uint16_t)vc_range(c, F(m, selector), 0, UINT16_MAX);
	s->type = (uint8_t)vc_range(c, F(m, type), 0, 15);
	s->present = FLAG(m, present);
	s->dpl = (uint8_t)vc_range(c, F(m, dpl), 0, 3);
	s->db = FLAG(m, db);
	s->s = FLAG(m, s);
	s->l = FLAG(m, l);
	s->g = FLAG(m, g);
	s->avl = FLAG(m, avl);
	s->unusable = FLAG(m, unusable);
	c->part = "";
}

static void dt_from_wire(struct vc_ctx *c, const char *name, const Pvmigrate__DescriptorTable *m,
			 struct vm_dtable *d)
{
	if (vc_present(c, name, m) < 0)
		return;
	c->part = name;
	d->base = vc_range(c, F(m, base_address), 0, UINT64_MAX);
	d->limit = (uint16_t)vc_range(c, F(m, limit), 0, UINT16_MAX);
	c->part = "";
}

static void events_from_wire(struct vc_ctx *c, const Pvmigrate__VcpuEvents *m, struct vm_events *e)
{
	if (vc_present(c, "events", m) < 0)
		return;
	c->part = "events";
	e->exc_injected = FLAG(m, exc_injected);
	e->exc_pending = FLAG(m, exc_pending);
	e->exc_nr = (uint8_t)vc_range(c, F(m, exc_nr), 0, 31);
	e->exc_has_error_code = FLAG(m, exc_has_error_code);
	e->exc_error_code = (uint32_t)vc_range(c, F(m, exc_error_code), 0, UINT32_MAX);
	e->irq_injected = FLAG(m, irq_injected);
	e->irq_nr = (uint8_t)vc_range(c, F(m, irq_nr), 0, UINT8_MAX);
	e->irq_soft = FLAG(m, irq_soft);
	e->irq_shadow = (uint8_t)vc_range(c, F(m, irq_shadow), 0, 3);
	e->nmi_injected = FLAG(m, nmi_injected);
	e->nmi_pending = FLAG(m, nmi_pending);
	e->nmi_masked = FLAG(m, nmi_masked);
	e->sipi_vector = (uint32_t)vc_range(c, F(m, sipi_vector), 0, UINT8_MAX);
	c->part = "";
}

/* Architected bits only (SDM vol. 3 2.2.1; AMD APM 3.1.7). */
#define RFLAGS_OK 0x3f7fd7ull /* CF 1 PF AF ZF SF TF IF DF OF IOPL NT RF VM AC VIF VIP ID */
#define EFER_OK 0x20fd01ull   /* SCE LME LMA NXE SVME LMSLE FFXSR TCE AUTOIBRS */
#define APIC_BASE_OK 0x000ffffffffffd00ull /* BSP, EXTD, EN, base address */
#define PAT_TYPES 0xf3u /* bit t set: memory type t (UC WC WT WP WB UC-) is valid */

static uint64_t pat_check(struct vc_ctx *c, protobuf_c_boolean has, uint64_t pat)
{
	unsigned i, t;

	if (!vc_range(c, "pat", has, pat, 0, UINT64_MAX) || c->failed)
		return 0;
	for (i = 0; i < 8; i++) {
		t = (unsigned)(pat >> 8 * i) & 0xff;
		if (t > 7 || !(PAT_TYPES >> t & 1)) {
			vc_fail(c, "pat", "entry %u holds %#x, not a memory type", i, t);
			return 0;
		}
	}
	return pat;
}

int vcpustate_from_wire(const Pvmigrate__X86VcpuState *m, unsigned index,
			struct vm_vcpu_state *st, char *why, size_t whylen)
{
	struct vc_ctx ctx = { why, whylen, index, "", 0 }, *c = &ctx;

	memset(st, 0, sizeof(*st));
	if (!m) {
		vc_fail(c, "", "missing");
		return -1;
	}
	vc_array(c, "gpr", m->n_gpr, m->gpr, st->gpr, VM_NR_GPRS);
	st->rip = vc_range(c, F(m, rip), 0, UINT64_MAX);
	st->rflags = vc_bits(c, F(m, rflags), RFLAGS_OK);
	if (!c->failed && !(st->rflags & 2))
		vc_fail(c, "rflags", "bit 1 clear (%#llx)", (unsigned long long)st->rflags);
	seg_from_wire(c, "cs", m->cs, &st->cs);
	seg_from_wire(c, "ds", m->ds, &st->ds);
	seg_from_wire(c, "es", m->es, &st->es);
	seg_from_wire(c, "fs", m->fs, &st->fs);
	seg_from_wire(c, "gs", m->gs, &st->gs);
	seg_from_wire(c, "ss", m->ss, &st->ss);
	seg_from_wire(c, "tr", m->tr, &st->tr);
	seg_from_wire(c, "ldt", m->ldt, &st->ldt);
	dt_from_wire(c, "gdt", m->gdt, &st->gdt);
	dt_from_wire(c, "idt", m->idt, &st->idt);
	st->cr0 = vc_range(c, F(m, cr0), 0, UINT32_MAX);
	st->cr2 = vc_range(c, F(m, cr2), 0, UINT64_MAX);
	st->cr3 = vc_range(c, F(m, cr3), 0, UINT64_MAX);
	st->cr4 = vc_range(c, F(m, cr4), 0, UINT32_MAX);
	st->cr8 = vc_range(c, F(m, cr8), 0, 15);
	st->efer = vc_bits(c, F(m, efer), EFER_OK);
	st->apic_base = vc_bits(c, F(m, apic_base), APIC_BASE_OK);
	vc_array(c, "dr", m->n_dr, m->dr, st->dr, 4);
	st->dr6 = vc_range(c, F(m, dr6), 0, UINT32_MAX);
	st->dr7 = vc_range(c, F(m, dr7), 0, UINT32_MAX);
	st->fs_base = vc_canon(c, F(m, fs_base));
	st->gs_base = vc_canon(c, F(m, gs_base));
	st->kernel_gs_base = vc_canon(c, F(m, kernel_gs_base));
	st->star = vc_range(c, F(m, star), 0, UINT64_MAX);
	st->lstar = vc_canon(c, F(m, lstar));
	st->cstar = vc_canon(c, F(m, cstar));
	st->sfmask = vc_range(c, F(m, sfmask), 0, UINT32_MAX);
	st->sysenter_cs = vc_range(c, F(m, sysenter_cs), 0, UINT64_MAX);
	st->sysenter_esp = vc_canon(c, F(m, sysenter_esp));
	st->sysenter_eip = vc_canon(c, F(m, sysenter_eip));
	st->tsc = vc_range(c, F(m, tsc), 0, UINT64_MAX);
	st->tsc_aux = vc_range(c, F(m, tsc_aux), 0, UINT32_MAX);
	st->pat = pat_check(c, m->has_pat, m->pat);
	st->misc_enable = vc_range(c, F(m, misc_enable), 0, UINT64_MAX);
	st->xcr0 = vc_range(c, F(m, xcr0), 0, UINT64_MAX);
	if (!c->failed) {
		if (!m->has_xsave)
			vc_fail(c, "xsave", "missing");
		else if (m->xsave.len != VM_XSAVE_SIZE || !m->xsave.data)
			vc_fail(c, "xsave", "%zu bytes, want %u", m->xsave.len, VM_XSAVE_SIZE);
		else
			memcpy(st->xsave, m->xsave.data, VM_XSAVE_SIZE);
	}
	events_from_wire(c, m->events, &st->events);
	vc_array(c, "pending_irq_bitmap", m->n_pending_irq_bitmap, m->pending_irq_bitmap,
		 st->pending_irq_bitmap, 4);
	st->mp_state = (uint32_t)vc_range(c, F(m, mp_state), 0, 4);
	st->started = FLAG(m, started);
	if (c->failed) {
		memset(st, 0, sizeof(*st));
		return -1;
	}
	return 0;
}
