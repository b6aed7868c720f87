/* fault_inject.h: a TEST-ONLY hook that makes this pvmigrated misbehave at one step of a migration (PVMIGRATED_TEST_FAULT) */
#ifndef FAULT_INJECT_H
#define FAULT_INJECT_H

/*
 * Off unless the daemon's environment says otherwise.  Two ways to turn
 * it on, for tests only (tests/daemon/test_daemon_faults.sh):
 *
 *   PVMIGRATED_TEST_FAULT="ACTION@STEP[:N]"   every migration this daemon
 *                                             takes part in
 *   PVMIGRATED_TEST_FAULT_FILE=PATH           the same text read from PATH
 *                                             when each migration starts
 *                                             (missing or empty: no fault),
 *                                             so that a daemon holding the
 *                                             source guest need not restart
 *
 * ACTION:  cut          close the TLS link there (before that step's bytes)
 *          corrupt      flip bytes of that step's message so its reader
 *                       must refuse it
 *          kill-target  SIGKILL the receiving pvguest (target daemon only)
 *          kill-daemon  SIGKILL this daemon itself (target daemon only)
 * STEP:    offer (PeerRequest), accept (PeerAccept), header, pages (the
 *          Nth PAGE_BATCH, N from 1, default 1), nic (NIC_HELD), machine
 *          (MACHINE_STATE), stats (STATISTICS), end (END), ready (the
 *          target's READY on its way back), go (the source's GO on its
 *          way there), reply (the target's OK or ERROR on its way back).
 *
 * The daemon applies it wherever it sits in the migration, as the source or
 * as the target; stream steps are found by following the 16-byte record
 * headers the relay passes (stream.h), never by parsing bodies.
 */
#include <stddef.h>
#include <stdint.h>

enum fault_action { FAULT_NONE, FAULT_CUT, FAULT_CORRUPT, FAULT_KILL_TARGET, FAULT_KILL_DAEMON };
enum fault_step {
	FSTEP_OFFER, FSTEP_ACCEPT, FSTEP_HEADER, FSTEP_PAGES, FSTEP_NIC, FSTEP_MACHINE,
	FSTEP_STATS, FSTEP_END, FSTEP_READY, FSTEP_GO, FSTEP_REPLY, FSTEP_NONE
};

#define FAULT_MAX_RECORD (64ull << 20) /* STREAM_MAX_RECORD: a longer "record" is not one */

struct fault {
	enum fault_action action;	/* FAULT_NONE: nothing armed (or already fired) */
	enum fault_step step;
	unsigned nth;			/* which occurrence of step, from 1 */
	unsigned seen;			/* occurrences so far */
	char text[64];			/* as given, for the log */
};

/* Arm f for one migration in which this daemon is the source or the
 * target (role: "source" / "target"); f->action stays FAULT_NONE when the
 * hook is off or the action does not apply to that role (logged). */
void fault_arm(struct fault *f, const char *role);

/* One occurrence of step: the action to take now (once), or FAULT_NONE. */
enum fault_action fault_hit(struct fault *f, enum fault_step step);

/* The step a stream record type is, or FSTEP_NONE. */
enum fault_step fault_step_of_record(uint32_t type);
const char *fault_step_name(enum fault_step s);

/* kill-daemon: log and SIGKILL ourselves (never returns). */
void fault_kill_daemon(const struct fault *f) __attribute__((noreturn));

/* Make a protobuf message body unreadable: its first tag gets wire type 7,
 * which no protobuf reader accepts. */
void fault_corrupt_protobuf(uint8_t *body, size_t len);

#endif
