/* uart16550.h: the 16550A UART (COM1 at 0x3f8, IRQ4): TX to env->console_tx, RX from a host input function */
#ifndef UART16550_H
#define UART16550_H

#include <stdbool.h>
#include <stdint.h>

#include "devmodel.h"

#define UART16550_COM1_BASE 0x3f8
#define UART16550_COM1_IRQ  4
#define UART16550_FIFO_SIZE 16

/* Host input: returns the next byte, or -1 when none is waiting. */
typedef int (*uart16550_input_fn)(void *ctx);

struct uart16550 {
	const struct dev_env *env;
	uart16550_input_fn input;
	void *input_ctx;
	uint16_t base;
	uint8_t irq;
	uint8_t dll, dlm, ier, lcr, mcr, lsr, msr, scr, fcr;
	uint8_t rx_fifo[UART16550_FIFO_SIZE];
	uint8_t rx_head, rx_count;
	bool thri_pending;	/* THR-empty interrupt armed, not yet read in IIR */
	bool irq_level;
};

struct uart16550_snap {
	uint8_t dll, dlm, ier, lcr, mcr, lsr, msr, scr, fcr;
	uint8_t rx_fifo[UART16550_FIFO_SIZE];
	uint8_t rx_head, rx_count;
	uint8_t thri_pending, irq_level;
};

void uart16550_init(struct uart16550 *dev, const struct dev_env *env, uint16_t base,
		    unsigned irq, uart16550_input_fn input, void *input_ctx);
/* port is absolute (base..base+7); byte accesses. */
uint32_t uart16550_io_read(struct uart16550 *dev, uint32_t port, unsigned size);
void uart16550_io_write(struct uart16550 *dev, uint32_t port, unsigned size, uint32_t value);
/* Host saw input arrive: pull it into the FIFO and raise the interrupt. */
void uart16550_poll(struct uart16550 *dev);
void uart16550_save(const struct uart16550 *dev, struct uart16550_snap *snap);
int uart16550_restore(struct uart16550 *dev, const struct uart16550_snap *snap);

#endif
