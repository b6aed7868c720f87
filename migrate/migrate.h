/* migrate.h: live migration of a native guest between two VMs: pre-copy sender, all-or-nothing receiver, and their reply channel */
#ifndef MIGRATE_H
#define MIGRATE_H

/*
 * One migration is one connection.  The sender writes a pvmigrate stream
 * (state/stream.h) on it: STREAM_HEADER, PAGE_BATCH records in pre-copy
 * rounds while the source guest runs, then, frozen, the last dirty pages,
 * the NIC's held frames (STREAM_REC_NIC_HELD, optional), MACHINE_STATE and
 * END.  The receiver answers on the same connection, the other way, with
 * one reply (OK, or ERROR and a reason) and nothing else.
 *
 * The source guest is only ever resumed by the sender, and only when the
 * target has not confirmed: a target that said OK has the guest, and the
 * caller destroys the source.  A target that refused, closed the
 * connection, or stayed silent past the timeout has nothing running: the
 * sender resumes the source and says why.  So there are never two running
 * copies and, if the target fails before its OK, nothing is lost.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "stream.h"

#define MIGRATE_IMAGE_ABI 1u /* guest-image ABI this build sends and runs */
#define MIGRATE_PATCH_TABLE_VERSION 1u /* .pvsites version (PVSITES_VERSION) */

/* The NIC's host hold queue at freeze travels in STREAM_REC_NIC_HELD. */

/* ---- personalities (migrate_patch.c) ---- */

/*
 * The stream carries the guest as the bare machine would hold it (vCPUs
 * with the IF and IDTR the guest set, devices as DeviceSet) plus its patch
 * state: which personality its sites hold and where its retained table is.
 * A target of another personality re-patches every site through that
 * table before the guest runs there; under kvm it then installs the
 * runtime beneath the guest (personality_kvm_adopt.h).
 */
/* "kvm" when the kvm runtime is attached, else "native". */
const char *migrate_personality(const struct vm *vm);
/* The guest's patch state as the source sends it (vm->sites_*). */
int migrate_patch_state(struct vm *vm, struct stream_patch *p, char *why, size_t whylen);
/* Target: check the received table against the digest and rewrite every
 * site from p->personality to this VM's, moving vcpus[] to safe points. */
int migrate_repatch(struct vm *vm, const struct stream_patch *p, struct vm_vcpu_state *vcpus,
		    char *why, size_t whylen);

/* ---- the connection ---- */

/*
 * A socket (socketpair in tests, TCP later) as a struct stream_io whose
 * reads and writes give up after timeout_ms without progress (ETIMEDOUT),
 * and never raise SIGPIPE (a closed peer is EPIPE).  Both directions use
 * the same io: the stream one way, the reply the other.
 */
struct migrate_conn {
	struct stream_io io;
	int fd;
	int timeout_ms; /* <= 0: wait forever */
};

void migrate_conn_init(struct migrate_conn *c, int fd, int timeout_ms);

/* ---- the reply (reverse channel) ---- */

/*
 * u32 magic "PVMR", u32 code, u32 length, u32 0, then length bytes of
 * message (at most MIGRATE_REPLY_MAX, no NUL), all little-endian.
 */
#define MIGRATE_REPLY_MAX 512u
enum migrate_reply_code { MIGRATE_REPLY_OK = 0, MIGRATE_REPLY_ERROR = 1 };

int migrate_reply_send(const struct stream_io *io, enum migrate_reply_code code,
		       const char *msg);
/* 0 with *code and msg filled; -1 with why (no reply, garbled reply). */
int migrate_reply_recv(const struct stream_io *io, enum migrate_reply_code *code, char *msg,
		       size_t msglen, char *why, size_t whylen);

/* ---- sending ---- */

struct migrate_policy {
	unsigned max_rounds;	  /* pre-copy rounds after round 0 (0: default 30) */
	uint64_t stop_pages;	  /* freeze once a round's dirty set is this small (0: default 64) */
	int no_shrink_stop;	  /* freeze when a round dirtied no fewer pages than the one before */
	int send_zero_pages;	  /* round 0 also sends all-zero pages (target RAM not fresh) */
	const struct stream_patch *patch; /* the image's patch state; NULL: native, no sites known */
	FILE *log;		  /* one line per round, or NULL */
};

#define MIGRATE_MAX_ROUNDS 64

struct migrate_round {
	uint64_t pages;	   /* pages sent in this round */
	uint64_t bytes;	   /* stream bytes of those pages */
	uint64_t ns;	   /* time the round took */
	uint64_t dirtied;  /* pages found dirty at its end (what the next round sends) */
};

struct migrate_report {
	unsigned rounds;   /* pre-copy rounds, round 0 included; the frozen one not */
	struct migrate_round round[MIGRATE_MAX_ROUNDS];
	uint64_t final_pages, final_bytes; /* sent frozen */
	uint64_t held_frames;		   /* NIC frames carried over */
	uint64_t zero_pages_skipped;	   /* round 0 */
	uint64_t total_pages, total_bytes; /* whole stream */
	uint64_t total_ns;		   /* connect to confirmation */
	uint64_t downtime_ns;		   /* freeze to the target's confirmation */
	uint64_t pause_ns, sent_ns;	   /* of which: vm__pause; until END was written */
	uint64_t dirty_rate;		   /* pages/s dirtied while pre-copy ran */
	int resumed;			   /* the source guest was resumed after a failure */
	char err[256];			   /* why it failed */
};

/*
 * Migrate the running guest in `src` (vm__run() active on another thread)
 * over `out` (usually a migrate_conn's io).  Returns 0 once the target
 * confirmed: the source is still paused, and the caller destroys it.
 * Returns -1 on any failure before that with rep->err set; the source
 * guest then runs again (rep->resumed) unless it had already ended.  The
 * caller then closes the connection: a target still reading sees the
 * stream end before END and discards what it had.
 *
 * Downtime is measured here, from vm__pause to the target's OK; the
 * target resumes right after sending it.
 */
int migrate_send(struct vm *src, const struct stream_io *out, const struct migrate_policy *pol,
		 struct migrate_report *rep);

/* Print rep in a few lines (figures for people and test logs). */
void migrate_report_print(const struct migrate_report *rep, FILE *out);

/* ---- receiving ---- */

/*
 * Load the stream on `in` into `dst`: a VM made by vm__create() with the
 * source's RAM size and vCPU count, platform (and NIC, if the source had
 * one) initialised, nothing loaded and never run.  Pages go straight into
 * its RAM; vCPUs and devices are set only after END was read and checked.
 * Returns 0 after sending OK: the caller now runs dst.  Returns -1 after
 * sending ERROR (when the connection still takes it), with the reason in
 * why: dst holds garbage and must be destroyed, never run.
 */
int migrate_receive(struct vm *dst, const struct stream_io *in, char *why, size_t whylen);

#endif
