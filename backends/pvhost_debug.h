/* pvhost_debug.h: pvhost's inspection tools: the signal thread (samples, counters, RAM dumps), the parking test (--park-test), one lock for every pauser */
#ifndef PVHOST_DEBUG_H
#define PVHOST_DEBUG_H

#include <pthread.h>
#include <stdint.h>

#include "backend.h"

/* vm__pause/vm__resume pairs must not interleave: every pvhost thread
 * that pauses (sampler, park test, dumps) holds this around the pair. */
void pvhost_pause_lock(void);
void pvhost_pause_unlock(void);

/* Guest RAM (gpa 0 .. mem_size) to (path), zero pages left as holes.
 * 0, or -1 with (why).  The VM must be paused or ended. */
int pvhost_dump_ram(struct vm *vm, const char *path, char *why, size_t whylen);

/*
 * The signal thread: SIGUSR1 prints vCPU 0's RIP, SIGUSR2 the exit
 * counters (and dumps RAM to DUMP.<n> when dump_ram is set), SIGTERM
 * powers off.  Block the three in every thread before starting it.
 */
struct sampler;
struct sampler *sampler_start(struct vm *vm, const char *dump_ram);
void sampler_stop(struct sampler *sp);

/*
 * --park-test MS: a thread that pauses the VM every MS milliseconds,
 * prints every vCPU's effective RIP and checks it is a safe point for
 * (personality): outside the runtime window and not inside a site of the
 * retained table (read from guest RAM).  stop() joins it, prints the
 * verdict and returns 0 (all safe) or -1.
 */
struct park_test;
struct park_test *park_test_start(struct vm *vm, const char *personality, const char *image,
				  unsigned ms, char *why, size_t whylen);
int park_test_stop(struct park_test *pt);

#endif
