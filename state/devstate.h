/* devstate.h: the device models' state as one packed protobuf DeviceSet (save) and back, all-or-nothing (restore) */
#ifndef DEVSTATE_H
#define DEVSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "dp83820.h"
#include "i8254.h"
#include "i8259.h"
#include "pci.h"
#include "uart16550.h"

/*
 * The model instances of one guest, as its host (KVM VMM or runtime glue)
 * holds them.  Any member may be NULL: that model does not exist here.
 * A DeviceSet restores only into a devset with exactly the same models
 * present, and the PCI bus must have the same devices attached at the same
 * slots (pci_restore checks their identity bytes).
 */
struct devset {
	struct i8259 *pic;		/* the master/slave pair */
	struct i8254 *pit;
	struct uart16550 *uart;		/* COM1 */
	struct pci_bus *pci;
	struct dp83820 *nic;		/* its config space travels with pci */
	uint8_t *port61;		/* port 0x61 as last written, or NULL */
};

/* Largest DeviceSet accepted: 32 config spaces are ~8.5 KiB, all else <1 KiB. */
#define DEVSTATE_MAX_LEN 65536u

/*
 * Pack the state of every model in `set` into a DeviceSet.  On success
 * returns 0 and sets *buf (malloc'd, the caller frees) and *len.  On
 * failure returns -1, leaves *buf NULL and sets *cause to a malloc'd
 * message ("devstate: ...") the caller frees.
 */
int devstate_save(const struct devset *set, uint8_t **buf, size_t *len, char **cause);

/*
 * Restore every model in `set` from the DeviceSet in buf[0..len).  The
 * bytes are untrusted: the length is checked, then every part is unpacked,
 * range-checked field by field into snapshot structs, and tried against a
 * scratch copy of its model, before any model is touched.  Returns 0 when
 * every model was restored; -1 when none was, with `why` (if whylen > 0)
 * naming the model and field, e.g. "devstate: dp83820.regs: 63 entries,
 * want 64".
 */
int devstate_restore(struct devset *set, const uint8_t *buf, size_t len, char *why,
		     size_t whylen);

#endif
