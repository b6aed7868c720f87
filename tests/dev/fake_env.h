/* fake_env.h: a dev_env for the device-model tests: clock you advance, guest RAM, recorded IRQs and output */
#ifndef FAKE_ENV_H
#define FAKE_ENV_H

#include <stdint.h>
#include <string.h>

#include "devmodel.h"

#define FAKE_RAM   (1u << 20)
#define FAKE_NTX   32
#define FAKE_FRAME 2048

struct fake {
	struct dev_env env;
	uint64_t now;
	int irq[16];		/* current level of each line */
	unsigned raises[16];	/* rising edges seen on each line */
	uint8_t tx[FAKE_NTX][FAKE_FRAME];
	size_t txlen[FAKE_NTX];
	unsigned ntx;
	int tx_ret;
	char console[256];
	unsigned ncon;
	const char *input;	/* bytes the UART's host input hands out */
	uint8_t ram[FAKE_RAM];
};

static inline void fake_set_irq(void *ctx, unsigned irq, int level)
{
	struct fake *f = ctx;

	if (irq >= 16)
		return;
	if (level && !f->irq[irq])
		f->raises[irq]++;
	f->irq[irq] = level != 0;
}

static inline uint8_t *fake_dma(void *ctx, uint64_t gpa, size_t len)
{
	struct fake *f = ctx;

	if (gpa >= FAKE_RAM || len > FAKE_RAM - gpa)
		return NULL;
	return f->ram + gpa;
}

static inline uint64_t fake_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static inline int fake_net_tx(void *ctx, const uint8_t *frame, size_t len)
{
	struct fake *f = ctx;

	if (f->ntx < FAKE_NTX && len <= FAKE_FRAME) {
		memcpy(f->tx[f->ntx], frame, len);
		f->txlen[f->ntx] = len;
		f->ntx++;
	}
	return f->tx_ret;
}

static inline void fake_console_tx(void *ctx, uint8_t byte)
{
	struct fake *f = ctx;

	if (f->ncon < sizeof(f->console) - 1)
		f->console[f->ncon++] = (char)byte;
}

static inline int fake_input(void *ctx)
{
	struct fake *f = ctx;

	if (!f->input || !*f->input)
		return -1;
	return (uint8_t)*f->input++;
}

static inline void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->env.ctx = f;
	f->env.set_irq = fake_set_irq;
	f->env.dma = fake_dma;
	f->env.now_ns = fake_now;
	f->env.net_tx = fake_net_tx;
	f->env.console_tx = fake_console_tx;
}

static inline void fake_put32(struct fake *f, uint64_t gpa, uint32_t v)
{
	f->ram[gpa] = (uint8_t)v;
	f->ram[gpa + 1] = (uint8_t)(v >> 8);
	f->ram[gpa + 2] = (uint8_t)(v >> 16);
	f->ram[gpa + 3] = (uint8_t)(v >> 24);
}

static inline uint32_t fake_get32(const struct fake *f, uint64_t gpa)
{
	return f->ram[gpa] | (uint32_t)f->ram[gpa + 1] << 8 | (uint32_t)f->ram[gpa + 2] << 16 |
	       (uint32_t)f->ram[gpa + 3] << 24;
}

#endif
