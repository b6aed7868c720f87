/* selftest.h: the guest's per-site-kind self-test (selftest=1): reporting helpers shared by its check files */
#ifndef GUEST_SELFTEST_H
#define GUEST_SELFTEST_H

#include <stdint.h>

/*
 * Every check prints exactly one line,
 *
 *   selftest: KINDS VALUES ok|FAIL
 *   selftest: KINDS skipped (REASON)
 *
 * KINDS is one pvsites(5) kind name, or several joined by '/' when one
 * check needs them together (a write and its read-back).  VALUES are
 * key=0x... pairs that do not depend on the personality, the host's timing
 * or where the loader put things, so the same image prints the same lines
 * under every personality (README.md, "Self-test", names the few that
 * differ between platforms).  `ok` means the check compared what it saw
 * with what it computed beforehand (usually the value it wrote).
 */
void st_check(const char *kinds, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void st_skip(const char *kinds, const char *reason);

/* The checks, one group per file; each reports through st_check/st_skip. */
void selftest_flags(void);   /* selftest.c: cli sti pushf popf hlt iret far-xfer segments cpuid rdtsc ... */
void selftest_system(void);  /* selftest_sys.c: control, debug and descriptor-table registers, MSRs, paging */
void selftest_io(void);      /* selftest_io.c: port I/O and string I/O on the PC's devices */

/*
 * A fault the check provokes on purpose: selftest_trap() sends a fault of
 * vector `st_fault.vector` taken in ring 0 to `fixup`, after noting the
 * error code and CR2.  Armed by one check at a time, with interrupts off.
 */
struct st_fault {
	uint64_t fixup;  /* resume here; 0 = not armed */
	uint64_t vector; /* the one fault expected */
	uint64_t taken, error, cr2;
};
extern volatile struct st_fault st_fault;

#endif
