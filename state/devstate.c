/* devstate.c: save every device model into one packed DeviceSet; restore all of them from one, or none */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devstate_int.h"

/* ---- checked field readers (restore side) ---- */

void ds_fail(struct ds_ctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return;
	c->failed = 1;
	if (!c->why || !c->whylen)
		return;
	n = snprintf(c->why, c->whylen, "devstate: ");
	if (n < 0 || (size_t)n >= c->whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why + n, c->whylen - (size_t)n, fmt, ap);
	va_end(ap);
}

void ds_path(struct ds_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->path, sizeof(c->path), fmt, ap);
	va_end(ap);
}

/* A scalar the sender must have written, inside [lo, hi]; 0 on failure. */
uint64_t ds_uint(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v,
		 uint64_t lo, uint64_t hi)
{
	if (c->failed)
		return 0;
	if (!has) {
		ds_fail(c, "%s.%s: missing", c->path, field);
		return 0;
	}
	if (v < lo || v > hi) {
		ds_fail(c, "%s.%s: out of range (%llu, want %llu..%llu)", c->path, field,
			(unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
		return 0;
	}
	return v;
}

uint8_t ds_u8(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint32_t v)
{
	return (uint8_t)ds_uint(c, field, has, v, 0, UINT8_MAX);
}

uint16_t ds_u16(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint32_t v)
{
	return (uint16_t)ds_uint(c, field, has, v, 0, UINT16_MAX);
}

uint32_t ds_u32(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint32_t v)
{
	return (uint32_t)ds_uint(c, field, has, v, 0, UINT32_MAX);
}

uint64_t ds_u64(struct ds_ctx *c, const char *field, protobuf_c_boolean has, uint64_t v)
{
	return ds_uint(c, field, has, v, 0, UINT64_MAX);
}

/* protobuf-c already folds any non-zero varint of a bool field to 1. */
uint8_t ds_flag(struct ds_ctx *c, const char *field, protobuf_c_boolean has,
		protobuf_c_boolean v)
{
	return (uint8_t)ds_uint(c, field, has, v != 0, 0, 1);
}

/* A fixed-size byte array: exactly `want` bytes or nothing. */
void ds_bytes(struct ds_ctx *c, const char *field, protobuf_c_boolean has,
	      ProtobufCBinaryData v, uint8_t *dst, size_t want)
{
	if (c->failed)
		return;
	if (!has)
		ds_fail(c, "%s.%s: missing", c->path, field);
	else if (v.len != want || (want && !v.data))
		ds_fail(c, "%s.%s: %zu bytes, want %zu", c->path, field, v.len, want);
	else
		memcpy(dst, v.data, want);
}

/* A repeated field that mirrors a fixed array: exactly `want` entries. */
int ds_count(struct ds_ctx *c, const char *field, size_t n, size_t want)
{
	if (c->failed)
		return -1;
	if (n != want) {
		ds_fail(c, "%s.%s: %zu entries, want %zu", c->path, field, n, want);
		return -1;
	}
	return 0;
}

int ds_present(struct ds_ctx *c, const char *field, const void *part)
{
	if (c->failed)
		return -1;
	if (!part) {
		ds_fail(c, "%s.%s: missing", c->path, field);
		return -1;
	}
	return 0;
}

/* ---- the set itself ---- */

/* The NIC's config space travels with the bus, so it must be on it. */
static const char *ds_set_problem(const struct devset *set)
{
	unsigned i;

	if (!set->nic)
		return NULL;
	if (!set->pci)
		return "dp83820: no PCI bus in the set to carry its config space";
	for (i = 0; i < PCI_MAX_SLOTS; i++)
		if (set->pci->slot[i] == &set->nic->pci)
			return NULL;
	return "dp83820: not attached to the set's PCI bus";
}

int devstate_save(const struct devset *set, uint8_t **buf, size_t *len, char **cause)
{
	static const Pvmigrate__DeviceSet set_init = PVMIGRATE__DEVICE_SET__INIT;
	struct ds_wire *w;
	const char *problem;
	size_t n;

	*buf = NULL;
	*len = 0;
	*cause = NULL;
	if ((problem = ds_set_problem(set))) {
		if (asprintf(cause, "devstate: %s", problem) < 0)
			*cause = NULL;
		return -1;
	}
	if (!(w = calloc(1, sizeof(*w))))
		goto nomem;
	w->set = set_init;
	if (set->pic) {
		i8259_save(set->pic, &w->pic_snap);
		ds_i8259_to_wire(w);
	}
	if (set->pit) {
		i8254_save(set->pit, &w->pit_snap);
		ds_i8254_to_wire(w);
	}
	if (set->uart) {
		uart16550_save(set->uart, &w->uart_snap);
		ds_uart_to_wire(w);
	}
	if (set->pci) {
		pci_save(set->pci, &w->pci_snap);
		ds_pci_to_wire(w);
	}
	if (set->nic) {
		dp83820_save(set->nic, &w->nic_snap);
		ds_dp83820_to_wire(w);
	}
	if (set->port61)
		DS_SET(&w->set, port61, *set->port61);
	n = pvmigrate__device_set__get_packed_size(&w->set);
	if (n > DEVSTATE_MAX_LEN) {	/* cannot happen with five models; keep restore's promise */
		if (asprintf(cause, "devstate: DeviceSet: %zu bytes, limit %u", n,
			     DEVSTATE_MAX_LEN) < 0)
			*cause = NULL;
		free(w);
		return -1;
	}
	if (!(*buf = malloc(n ? n : 1))) {
		free(w);
		goto nomem;
	}
	*len = pvmigrate__device_set__pack(&w->set, *buf);
	free(w);
	return 0;
nomem:
	*cause = strdup("devstate: save failed: out of memory");
	return -1;
}

/* ---- restore: convert, dry-run, then apply ---- */

/*
 * The models' own restore is the authority on what a snapshot may hold
 * (cross-field rules, PCI identity bytes), and each validates everything
 * before it writes anything.  So trying it on a scratch copy of the model,
 * wired to a quiet env that reads the real clock but drives no line, DMAs
 * nothing and sends nothing, tells without side effects whether the real
 * restore will succeed.  Only when all parts pass does any model change.
 */
struct ds_scratch {
	struct dev_env env[5];
	struct i8259 pic;
	struct i8254 pit;
	struct uart16550 uart;
	struct pci_bus bus;
	struct pci_func fn[PCI_MAX_SLOTS];
	struct dp83820 nic;
};

static void quiet_set_irq(void *ctx, unsigned irq, int level)
{
}

static uint8_t *quiet_dma(void *ctx, uint64_t gpa, size_t len)
{
	return NULL;
}

static uint64_t quiet_now(void *ctx)
{
	const struct dev_env *real = ctx;

	return real && real->now_ns ? real->now_ns(real->ctx) : 0;
}

static int quiet_net_tx(void *ctx, const uint8_t *frame, size_t len)
{
	return -1;
}

static void quiet_console_tx(void *ctx, uint8_t byte)
{
}

static const struct dev_env *quiet(struct dev_env *q, const struct dev_env *real)
{
	q->ctx = (void *)(uintptr_t)real;
	q->set_irq = quiet_set_irq;
	q->dma = quiet_dma;
	q->now_ns = quiet_now;
	q->net_tx = quiet_net_tx;
	q->console_tx = quiet_console_tx;
	return q;
}

static int ds_dry_run(const struct devset *set, const struct ds_snaps *s, struct ds_ctx *c)
{
	struct ds_scratch *t = calloc(1, sizeof(*t));
	unsigned i;

	if (!t) {
		ds_fail(c, "restore failed: out of memory");
		return -1;
	}
	if (set->pci) {
		t->bus = *set->pci;
		t->bus.env = quiet(&t->env[0], set->pci->env);
		for (i = 0; i < PCI_MAX_SLOTS; i++) {
			if (!set->pci->slot[i])
				continue;
			t->fn[i] = *set->pci->slot[i];
			pci_func_set_map(&t->fn[i], NULL, NULL);	/* report no windows */
			t->bus.slot[i] = &t->fn[i];
		}
		if (pci_restore(&t->bus, &s->pci) != DEV_RESTORE_OK)
			ds_fail(c, "pci: refused by the model (config space does not fit the "
				   "devices attached here)");
	}
	if (set->pic) {
		t->pic = *set->pic;
		t->pic.env = quiet(&t->env[1], set->pic->env);
		if (i8259_restore(&t->pic, &s->pic) != DEV_RESTORE_OK)
			ds_fail(c, "i8259: refused by the model (inconsistent fields)");
	}
	if (set->pit) {
		t->pit = *set->pit;
		t->pit.env = quiet(&t->env[2], set->pit->env);
		if (i8254_restore(&t->pit, &s->pit) != DEV_RESTORE_OK)
			ds_fail(c, "i8254: refused by the model (inconsistent fields)");
	}
	if (set->uart) {
		t->uart = *set->uart;
		t->uart.env = quiet(&t->env[3], set->uart->env);
		t->uart.input = NULL;
		if (uart16550_restore(&t->uart, &s->uart) != DEV_RESTORE_OK)
			ds_fail(c, "uart16550: refused by the model (inconsistent fields)");
	}
	if (set->nic) {
		t->nic = *set->nic;
		t->nic.env = quiet(&t->env[4], set->nic->env);
		pci_func_set_map(&t->nic.pci, NULL, NULL);
		if (dp83820_restore(&t->nic, &s->nic) != DEV_RESTORE_OK)
			ds_fail(c, "dp83820: refused by the model (inconsistent fields)");
	}
	free(t);
	return c->failed ? -1 : 0;
}

/* Each model of the set has its part on the wire, and no part lacks a model. */
static void ds_match(struct ds_ctx *c, const char *name, const void *model, const void *part)
{
	if (model && !part)
		ds_fail(c, "%s: missing from the stream", name);
	else if (!model && part)
		ds_fail(c, "%s: in the stream, but this host has no such model", name);
}

static int ds_convert(struct ds_ctx *c, const struct devset *set, const Pvmigrate__DeviceSet *m,
		      struct ds_snaps *s)
{
	const char *problem = ds_set_problem(set);

	if (problem) {
		ds_fail(c, "%s", problem);
		return -1;
	}
	ds_match(c, "i8259", set->pic, m->i8259);
	ds_match(c, "i8254", set->pit, m->i8254);
	ds_match(c, "uart16550", set->uart, m->uart16550);
	ds_match(c, "pci", set->pci, m->pci);
	ds_match(c, "dp83820", set->nic, m->dp83820);
	if (c->failed)
		return -1;
	if (m->i8259)
		ds_i8259_from_wire(c, m->i8259, &s->pic);
	if (m->i8254)
		ds_i8254_from_wire(c, m->i8254, &s->pit);
	if (m->uart16550)
		ds_uart_from_wire(c, m->uart16550, &s->uart);
	if (m->pci)
		ds_pci_from_wire(c, m->pci, &s->pci);
	if (m->dp83820)
		ds_dp83820_from_wire(c, m->dp83820, &s->nic);
	return c->failed ? -1 : 0;
}

/*
 * Order: the bus first, so BAR windows are reported before anything runs;
 * then the PIC, so that the lines the other models re-drive on restore land
 * on a restored controller (a level it already records changes nothing).
 */
static int ds_apply(struct ds_ctx *c, struct devset *set, const struct ds_snaps *s)
{
	const char *bad = NULL;

	if (set->pci && pci_restore(set->pci, &s->pci) != DEV_RESTORE_OK)
		bad = "pci";
	else if (set->pic && i8259_restore(set->pic, &s->pic) != DEV_RESTORE_OK)
		bad = "i8259";
	else if (set->pit && i8254_restore(set->pit, &s->pit) != DEV_RESTORE_OK)
		bad = "i8254";
	else if (set->uart && uart16550_restore(set->uart, &s->uart) != DEV_RESTORE_OK)
		bad = "uart16550";
	else if (set->nic && dp83820_restore(set->nic, &s->nic) != DEV_RESTORE_OK)
		bad = "dp83820";
	if (!bad)
		return 0;
	/* Only a model whose restore depends on more than (model, snapshot) gets here. */
	ds_fail(c, "%s: refused after a successful dry run; earlier models were restored", bad);
	return -1;
}

int devstate_restore(struct devset *set, const uint8_t *buf, size_t len, char *why,
		     size_t whylen)
{
	struct ds_ctx c = { .why = why, .whylen = whylen };
	Pvmigrate__DeviceSet *m;
	struct ds_snaps *s;
	int rc = -1;

	if (why && whylen)
		why[0] = '\0';
	if (len > DEVSTATE_MAX_LEN) {
		ds_fail(&c, "DeviceSet: %zu bytes, limit %u", len, DEVSTATE_MAX_LEN);
		return -1;
	}
	if (!buf && len) {
		ds_fail(&c, "DeviceSet: no buffer");
		return -1;
	}
	m = pvmigrate__device_set__unpack(NULL, len, buf);
	if (!m) {
		ds_fail(&c, "DeviceSet: not a valid protobuf message (%zu bytes)", len);
		return -1;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		ds_fail(&c, "restore failed: out of memory");
		goto out;
	}
	uint8_t port61 = m->has_port61 ? ds_u8(&c, DS_F(m, port61)) : 0;

	if (!c.failed && ds_convert(&c, set, m, s) == 0 && ds_dry_run(set, s, &c) == 0)
		rc = ds_apply(&c, set, s);
	if (rc == 0 && set->port61)
		*set->port61 = port61;
	free(s);
out:
	pvmigrate__device_set__free_unpacked(m, NULL);
	return rc;
}
