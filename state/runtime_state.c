/* runtime_state.c: the kvm runtime's CPU model and device-state area <-> protobuf RuntimeState, checked field by field before anything is used */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devstate_int.h"
#include "runtime_state.h"
#include "stream.pb-c.h"

/*
 * The devices reuse state/devstate's per-model converters (they take the
 * same <chip>_snap structs the runtime's area is made of), so a DeviceSet
 * means the same under native and kvm.  The CPU model is ours: vif, the
 * virtual IDTR, how the CPU is parked, the guest registers at the park
 * point (the runtime resumes from those) and the hardware snapshots.
 */

#define RS_REGS 18u /* rax..rflags, struct rt_cpu_state order */

_Static_assert(offsetof(struct rt_cpu_state, rflags) - offsetof(struct rt_cpu_state, rax) ==
		       (RS_REGS - 1) * 8,
	       "the state block's registers are 18 consecutive words");

static void rs_fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rs_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!why || !whylen)
		return;
	n = snprintf(why, whylen, "runtime_state: ");
	if (n < 0 || (size_t)n >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* ---- save */

struct rs_wire {
	struct ds_wire ds;
	Pvmigrate__RuntimeState rs;
	Pvmigrate__RuntimeCpuState cpu[RT_MAX_CPUS];
	Pvmigrate__RuntimeCpuState *cpup[RT_MAX_CPUS];
	uint64_t regs[RT_MAX_CPUS][RS_REGS];
};

static void cpu_to_wire(Pvmigrate__RuntimeCpuState *m, uint64_t *regs,
			const struct rt_cpu_state *s)
{
	static const Pvmigrate__RuntimeCpuState init = PVMIGRATE__RUNTIME_CPU_STATE__INIT;

	*m = init;
	DS_SET(m, vif, s->vif);
	DS_SET(m, online, s->online);
	DS_SET(m, idt_base, s->idt_base);
	DS_SET(m, idt_limit, s->idt_limit);
	DS_SET(m, parked, s->parked);
	memcpy(regs, &s->rax, RS_REGS * 8);
	m->n_regs = RS_REGS;
	m->regs = regs;
	DS_SET(m, cr0, s->cr0);
	DS_SET(m, cr2, s->cr2);
	DS_SET(m, cr3, s->cr3);
	DS_SET(m, cr4, s->cr4);
	DS_SET(m, gdt_base, s->gdt_base);
	DS_SET(m, gdt_limit, s->gdt_limit);
}

/* The runtime's models as a DeviceSet in w->set (port 0x61 aside: the
 * RuntimeState carries it in its own field). */
static void devs_to_wire(struct ds_wire *w, const struct rt_dev_state *d)
{
	static const Pvmigrate__DeviceSet set_init = PVMIGRATE__DEVICE_SET__INIT;

	w->set = set_init;
	w->pic_snap = d->pic;
	w->pit_snap = d->pit;
	w->uart_snap = d->uart;
	w->pci_snap = d->pci;
	ds_i8259_to_wire(w);
	ds_i8254_to_wire(w);
	ds_uart_to_wire(w);
	ds_pci_to_wire(w);
	if (d->flags & RT_DEV_STATE_NIC) {
		w->nic_snap = d->nic;
		ds_dp83820_to_wire(w);
	}
}

int runtime_state_pack(const struct runtime_state *rs, uint8_t **buf, size_t *len, char *why,
		       size_t whylen)
{
	static const Pvmigrate__RuntimeState rs_init = PVMIGRATE__RUNTIME_STATE__INIT;
	const struct rt_dev_state *d = &rs->dev;
	struct rs_wire *w;
	size_t n;
	unsigned i;

	*buf = NULL;
	if (rs->ncpus == 0 || rs->ncpus > RT_MAX_CPUS) {
		rs_fail(why, whylen, "%u CPUs, want 1..%u", rs->ncpus, RT_MAX_CPUS);
		return -1;
	}
	if (d->magic != RT_DEV_STATE_MAGIC || d->version != RT_DEV_STATE_VERSION ||
	    d->size != sizeof *d || (d->flags & ~RT_DEV_STATE_NIC)) {
		rs_fail(why, whylen, "the device-state area is not layout %u (magic %#x, version %u, "
			"size %u, flags %#x)", RT_DEV_STATE_VERSION, d->magic, d->version, d->size,
			d->flags);
		return -1;
	}
	if (!(w = calloc(1, sizeof *w))) {
		rs_fail(why, whylen, "out of memory");
		return -1;
	}
	devs_to_wire(&w->ds, d);
	w->rs = rs_init;
	DS_SET(&w->rs, abi_version, RT_ABI_VERSION);
	DS_SET(&w->rs, layout_version, d->version);
	DS_SET(&w->rs, sysctl, d->sysctl);
	for (i = 0; i < rs->ncpus; i++) {
		cpu_to_wire(&w->cpu[i], w->regs[i], &rs->cpu[i]);
		w->cpup[i] = &w->cpu[i];
	}
	w->rs.n_cpus = rs->ncpus;
	w->rs.cpus = w->cpup;
	w->rs.devices = &w->ds.set;
	n = pvmigrate__runtime_state__get_packed_size(&w->rs);
	if (n > RUNTIME_STATE_MAX_LEN || !(*buf = malloc(n ? n : 1))) {
		rs_fail(why, whylen, n > RUNTIME_STATE_MAX_LEN ? "%zu bytes, limit %u" :
			"out of memory for %zu bytes (limit %u)", n, RUNTIME_STATE_MAX_LEN);
		free(w);
		return -1;
	}
	*len = pvmigrate__runtime_state__pack(&w->rs, *buf);
	free(w);
	return 0;
}

/* ---- restore */

static int cpu_from_wire(struct ds_ctx *c, const Pvmigrate__RuntimeCpuState *m,
			 struct rt_cpu_state *s)
{
	memset(s, 0, sizeof *s);
	s->version = RT_ABI_VERSION;
	s->vif = (uint32_t)ds_uint(c, DS_F(m, vif), 0, 1);
	s->online = (uint32_t)ds_uint(c, DS_F(m, online), 0, 1);
	s->idt_base = ds_u64(c, DS_F(m, idt_base));
	s->idt_limit = ds_u16(c, DS_F(m, idt_limit));
	s->parked = (uint32_t)ds_uint(c, DS_F(m, parked), RT_CPU_PARKED_NO, RT_CPU_PARKED_DOWN);
	if (ds_count(c, "regs", m->n_regs, RS_REGS) == 0)
		memcpy(&s->rax, m->regs, RS_REGS * 8);
	s->cr0 = ds_u64(c, DS_F(m, cr0));
	s->cr2 = ds_u64(c, DS_F(m, cr2));
	s->cr3 = ds_u64(c, DS_F(m, cr3));
	s->cr4 = ds_u64(c, DS_F(m, cr4));
	s->gdt_base = ds_u64(c, DS_F(m, gdt_base));
	s->gdt_limit = ds_u16(c, DS_F(m, gdt_limit));
	/* A virtual IDT the runtime would copy gates from must lie where a
	 * 64-bit guest can put it: a canonical address. */
	if (!c->failed && (uint64_t)((int64_t)(s->idt_base << 16) >> 16) != s->idt_base)
		ds_fail(c, "%s.idt_base: %#llx is not canonical", c->path,
			(unsigned long long)s->idt_base);
	return c->failed ? -1 : 0;
}

/* The models' own checks, on scratch models that drive nothing.  The PCI
 * bus is left to the runtime, whose restore checks it against the devices
 * it has attached (and rolls every model back if it refuses). */
static void q_set_irq(void *ctx, unsigned irq, int level) {}
static uint8_t *q_dma(void *ctx, uint64_t gpa, size_t len) { return NULL; }
static int q_net_tx(void *ctx, const uint8_t *frame, size_t len) { return -1; }
static void q_console_tx(void *ctx, uint8_t byte) {}
static uint64_t q_now(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct rs_scratch {
	struct dev_env env;
	struct i8259 pic;
	struct i8254 pit;
	struct uart16550 uart;
	struct dp83820 nic;
};

static void models_dry_run(struct ds_ctx *c, const struct rt_dev_state *d)
{
	static const uint8_t mac[6];
	struct rs_scratch *t = calloc(1, sizeof *t);

	if (!t) {
		ds_fail(c, "out of memory");
		return;
	}
	t->env.set_irq = q_set_irq;
	t->env.dma = q_dma;
	t->env.now_ns = q_now;
	t->env.net_tx = q_net_tx;
	t->env.console_tx = q_console_tx;
	i8259_init(&t->pic, &t->env);
	i8254_init(&t->pit, &t->env);
	uart16550_init(&t->uart, &t->env, UART16550_COM1_BASE, UART16550_COM1_IRQ, NULL, NULL);
	if (i8259_restore(&t->pic, &d->pic) != DEV_RESTORE_OK)
		ds_fail(c, "i8259: refused by the model (inconsistent fields)");
	else if (i8254_restore(&t->pit, &d->pit) != DEV_RESTORE_OK)
		ds_fail(c, "i8254: refused by the model (inconsistent fields)");
	else if (uart16550_restore(&t->uart, &d->uart) != DEV_RESTORE_OK)
		ds_fail(c, "uart16550: refused by the model (inconsistent fields)");
	else if (d->flags & RT_DEV_STATE_NIC) {
		dp83820_init(&t->nic, &t->env, mac);
		if (dp83820_restore(&t->nic, &d->nic) != DEV_RESTORE_OK)
			ds_fail(c, "dp83820: refused by the model (inconsistent fields)");
	}
	free(t);
}

static int devices_from_wire(struct ds_ctx *c, const Pvmigrate__DeviceSet *m,
			     struct rt_dev_state *d)
{
	static const char *const need[] = { "i8259", "i8254", "uart16550", "pci" };
	const void *part[] = { m->i8259, m->i8254, m->uart16550, m->pci };
	unsigned i;

	for (i = 0; i < 4; i++)
		if (!part[i])
			ds_fail(c, "%s: missing from the runtime's DeviceSet", need[i]);
	if (c->failed)
		return -1;
	ds_i8259_from_wire(c, m->i8259, &d->pic);
	ds_i8254_from_wire(c, m->i8254, &d->pit);
	ds_uart_from_wire(c, m->uart16550, &d->uart);
	ds_pci_from_wire(c, m->pci, &d->pci);
	if (m->dp83820) {
		ds_dp83820_from_wire(c, m->dp83820, &d->nic);
		d->flags |= RT_DEV_STATE_NIC;
	}
	if (!c->failed)
		models_dry_run(c, d);
	return c->failed ? -1 : 0;
}

int runtime_state_unpack(const uint8_t *buf, size_t len, struct runtime_state *rs, char *why,
			 size_t whylen)
{
	char inner[256] = "";
	struct ds_ctx c = { .why = inner, .whylen = sizeof inner };
	Pvmigrate__RuntimeState *m;
	struct runtime_state *t;
	unsigned i;
	int rc = -1;

	if (why && whylen)
		why[0] = '\0';
	if (len > RUNTIME_STATE_MAX_LEN) {
		rs_fail(why, whylen, "%zu bytes, limit %u", len, RUNTIME_STATE_MAX_LEN);
		return -1;
	}
	m = pvmigrate__runtime_state__unpack(NULL, len, buf);
	if (!m) {
		rs_fail(why, whylen, "not a RuntimeState message (%zu bytes)", len);
		return -1;
	}
	if (!(t = calloc(1, sizeof *t))) {
		rs_fail(why, whylen, "out of memory");
		goto out;
	}
	ds_path(&c, "runtime");
	if (ds_u32(&c, DS_F(m, abi_version)) != RT_ABI_VERSION && !c.failed)
		ds_fail(&c, "runtime.abi_version: %u, this host's runtime ABI is %u", m->abi_version,
			RT_ABI_VERSION);
	if (ds_u32(&c, DS_F(m, layout_version)) != RT_DEV_STATE_VERSION && !c.failed)
		ds_fail(&c, "runtime.layout_version: %u, this host's device-state layout is %u",
			m->layout_version, RT_DEV_STATE_VERSION);
	t->dev.sysctl = ds_u8(&c, DS_F(m, sysctl));
	if (!c.failed && (m->n_cpus == 0 || m->n_cpus > RT_MAX_CPUS))
		ds_fail(&c, "runtime.cpus: %zu entries, want 1..%u", m->n_cpus, RT_MAX_CPUS);
	for (i = 0; !c.failed && i < m->n_cpus; i++) {
		ds_path(&c, "runtime.cpus[%u]", i);
		cpu_from_wire(&c, m->cpus[i], &t->cpu[i]);
	}
	t->ncpus = (unsigned)m->n_cpus;
	if (!c.failed && !m->devices)
		ds_fail(&c, "runtime.devices: missing");
	t->dev.magic = RT_DEV_STATE_MAGIC;
	t->dev.version = RT_DEV_STATE_VERSION;
	t->dev.size = sizeof t->dev;
	if (!c.failed)
		devices_from_wire(&c, m->devices, &t->dev);
	if (c.failed) {
		/* devstate's prefix only for the device parts */
		rs_fail(why, whylen, "%s",
			strncmp(inner, "devstate: runtime", 17) == 0 ? inner + 10 : inner);
	} else {
		*rs = *t;
		rc = 0;
	}
	free(t);
out:
	pvmigrate__runtime_state__free_unpacked(m, NULL);
	return rc;
}

/* ---- the runtime's models next to the native host's: DeviceSet both ways */

int runtime_devs_to_devset(const struct rt_dev_state *d, uint8_t **buf, size_t *len, char *why,
			   size_t whylen)
{
	struct ds_wire *w;
	size_t n;

	*buf = NULL;
	if (d->magic != RT_DEV_STATE_MAGIC || d->version != RT_DEV_STATE_VERSION ||
	    d->size != sizeof *d || (d->flags & ~RT_DEV_STATE_NIC)) {
		rs_fail(why, whylen, "the device-state area is not layout %u", RT_DEV_STATE_VERSION);
		return -1;
	}
	if (!(w = calloc(1, sizeof *w))) {
		rs_fail(why, whylen, "out of memory");
		return -1;
	}
	devs_to_wire(w, d);
	DS_SET(&w->set, port61, d->sysctl);
	n = pvmigrate__device_set__get_packed_size(&w->set);
	if (!(*buf = malloc(n ? n : 1))) {
		rs_fail(why, whylen, "out of memory");
		free(w);
		return -1;
	}
	*len = pvmigrate__device_set__pack(&w->set, *buf);
	free(w);
	return 0;
}

int runtime_devs_from_devset(const uint8_t *buf, size_t len, struct rt_dev_state *d, char *why,
			     size_t whylen)
{
	char inner[256] = "";
	struct ds_ctx c = { .why = inner, .whylen = sizeof inner };
	Pvmigrate__DeviceSet *m;
	struct rt_dev_state *t;
	int rc = -1;

	if (len > DEVSTATE_MAX_LEN) {
		rs_fail(why, whylen, "DeviceSet of %zu bytes, limit %u", len, DEVSTATE_MAX_LEN);
		return -1;
	}
	if (!(m = pvmigrate__device_set__unpack(NULL, len, buf))) {
		rs_fail(why, whylen, "DeviceSet: not a valid protobuf message");
		return -1;
	}
	if (!(t = calloc(1, sizeof *t))) {
		rs_fail(why, whylen, "out of memory");
		goto out;
	}
	t->magic = RT_DEV_STATE_MAGIC;
	t->version = RT_DEV_STATE_VERSION;
	t->size = sizeof *t;
	t->sysctl = m->has_port61 ? ds_u8(&c, DS_F(m, port61)) : 0;
	if (c.failed || devices_from_wire(&c, m, t) < 0) {
		rs_fail(why, whylen, "%s", inner);
	} else {
		*d = *t;
		rc = 0;
	}
	free(t);
out:
	pvmigrate__device_set__free_unpacked(m, NULL);
	return rc;
}
