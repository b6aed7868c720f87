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
 *
 * Every move ends with a commit (below, "the commit"): after END the
 * target answers READY, the source stops for good and says GO, the target
 * runs and says OK.  Before GO any failure leaves the source running and
 * the target empty.  After GO the source never resumes on a mere
 * failure: on a direct socket the end of the connection without OK proves
 * the target never ran (resume); through relays (pvmigrated) it proves
 * nothing, and the outcome is MIGRATE_OUTCOME_UNKNOWN: the source stays
 * paused and its caller asks whoever runs the target.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "stream.h"

struct migrate_share; /* shared RAM, below */

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
	/* Shared RAM (migrate_shared.c) on an AF_UNIX socket: pass_fd, if
	 * >= 0, goes with the next write (SCM_RIGHTS), once; got_fd is the
	 * first descriptor that came with a read (later ones are closed),
	 * the caller's to take.  Both -1 after migrate_conn_init. */
	int pass_fd, got_fd;
};

void migrate_conn_init(struct migrate_conn *c, int fd, int timeout_ms);

/* ---- the reply (reverse channel) ---- */

/*
 * u32 magic "PVMR", u32 code, u32 length, u32 0, then length bytes of
 * message (at most MIGRATE_REPLY_MAX, no NUL), all little-endian.
 */
#define MIGRATE_REPLY_MAX 512u
enum migrate_reply_code {
	MIGRATE_REPLY_OK = 0, MIGRATE_REPLY_ERROR = 1,
	/* shared RAM only (migrate_shared.c): target -> source READY, source -> target GO */
	MIGRATE_REPLY_READY = 2, MIGRATE_REPLY_GO = 3,
};

/* All of len bytes read or written on io (EINTR retried); -1 with errno,
 * an early end being ECONNRESET (read) or EPIPE (write). */
int migrate_io_full(const struct stream_io *io, void *buf, size_t len, int writing);
int migrate_reply_send(const struct stream_io *io, enum migrate_reply_code code,
		       const char *msg);
/* 0 with *code and msg filled; -1 with why (no reply, garbled reply). */
int migrate_reply_recv(const struct stream_io *io, enum migrate_reply_code *code, char *msg,
		       size_t msglen, char *why, size_t whylen);

/* ---- the commit (migrate_conn.c): READY, GO, OK ---- */

/*
 *   target: END read and checked, everything applied, nothing run -> READY
 *   source: stops for good (paused, not destroyed)                 -> GO
 *   target: runs the guest                                         -> OK
 *
 * Shared RAM moves (migrate_shared.c) do their own steps between GO and
 * OK around the same two calls.  pvmigrate-stream(5), "The commit".
 */
struct migrate_commit {
	struct migrate_conn *conn; /* source: after GO wait on it without its timeout; NULL: with it */
	int relayed;		   /* the connection passes relays: its end after GO proves nothing */
	/* what happened */
	int committed;		   /* GO was being sent */
	int in_doubt;		   /* after GO, no clear answer: the outcome is unknown */
	uint64_t ready_ns, go_ns;  /* READY came, the last word came (from the call) */
};
/* Source, frozen, END sent: READY, GO, the target's last word in *code (OK,
 * or ERROR: before GO, or after it from a target that never ran the guest).
 * -1 with why: no usable answer; cm->in_doubt says whether the target may
 * run the guest (never resume then). */
int migrate_commit_send(const struct stream_io *io, struct migrate_commit *cm,
			enum migrate_reply_code *code, char *msg, size_t msglen, char *why,
			size_t whylen);
/* Target, everything applied: READY, then wait for GO.  0: GO read, the
 * guest is ours to run; -1 with why: no GO (nothing was sent: the source is
 * gone or gave up); 1 with why: refused (hook at "ready", or a garbled GO):
 * the caller sends ERROR.  hook: TEST ONLY (migrate_share.test_hook). */
int migrate_commit_await(const struct stream_io *io, int (*hook)(void *ctx, const char *step),
			 void *ctx, uint64_t *t_ready, char *why, size_t whylen);

/* ---- sending ---- */

struct migrate_policy {
	unsigned max_rounds;	  /* pre-copy rounds after round 0 (0: default 30) */
	uint64_t stop_pages;	  /* freeze once a round's dirty set is this small (0: default 64) */
	int no_shrink_stop;	  /* freeze when a round dirtied no fewer pages than the one before */
	int send_zero_pages;	  /* round 0 also sends all-zero pages (target RAM not fresh) */
	const struct stream_patch *patch; /* the image's patch state; NULL: native, no sites known */
	FILE *log;		  /* one line per round, or NULL */
	struct migrate_share *share; /* RAM shared with the target, not sent (migrate_shared.c); NULL: copied */
	unsigned late_ms;	  /* the tail (migrate_late.c): after the OK, forward what the
				   * NIC's connection still receives, at most this long; 0: none */
	int relayed;		  /* `out` passes relays (pvmigrated): after GO, any failure
				   * is MIGRATE_OUTCOME_UNKNOWN (see above) */
};

/* How a migrate_send ended (migrate_report.outcome). */
enum migrate_outcome {
	MIGRATE_OUTCOME_MOVED = 1,   /* the target confirmed: destroy the source */
	MIGRATE_OUTCOME_STAYED = 2,  /* failed before the commit, or refused: the source runs (if resumed) */
	MIGRATE_OUTCOME_UNKNOWN = 3, /* after GO, no clear answer: the source is paused (NIC
				      * frozen) and must neither run nor go until the caller
				      * learns whether the target runs: migrate_resume() or destroy */
};

#define MIGRATE_MAX_ROUNDS 64

/* The tail's figures (migrate_late.c), either side. */
struct migrate_late_report {
	uint64_t frames;	/* source: forwarded; target: handed to the NIC */
	uint64_t records;	/* NIC_LATE records */
	uint64_t dropped;	/* target: frames its NIC could not take in time */
	uint32_t how;		/* enum stream_late_how; 0: there was no tail */
	uint64_t ns;		/* source: from the OK to NIC_LATE_END; target: the whole tail */
	char err[256];		/* the tail broke off: why (the running guest is not affected) */
};

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
	int outcome;			   /* enum migrate_outcome */
	int committed;			   /* GO was sent */
	char err[256];			   /* why it failed */
	struct migrate_late_report late;   /* the tail, after the OK (policy late_ms) */
};

/*
 * Migrate the running guest in `src` (vm__run() active on another thread)
 * over `out` (usually a migrate_conn's io).  Returns 0 once the target
 * confirmed (MIGRATE_OUTCOME_MOVED): the source is still paused, and the
 * caller destroys it.  Returns -1 on any failure with rep->err set: with
 * MIGRATE_OUTCOME_STAYED the source guest runs again (rep->resumed)
 * unless it had already ended; with MIGRATE_OUTCOME_UNKNOWN (after GO,
 * pol->relayed or a garbled answer) it stays paused until the caller
 * calls migrate_resume() or destroys it.  The caller then closes the
 * connection: a target still reading sees the stream end before END (or
 * before GO) and discards what it had.
 *
 * Downtime is measured here, from vm__pause to the target's OK; the
 * target resumes right after sending it.
 */
int migrate_send(struct vm *src, const struct stream_io *out, const struct migrate_policy *pol,
		 struct migrate_report *rep);

/* MIGRATE_OUTCOME_UNKNOWN resolved: the target does not run the guest, so
 * the source runs on (NIC thawed, vCPUs resumed). */
void migrate_resume(struct vm *src);

/* Print rep in a few lines (figures for people and test logs). */
void migrate_report_print(const struct migrate_report *rep, FILE *out);

/* ---- receiving ---- */

/*
 * Load the stream on `in` into `dst`: a VM made by vm__create() with the
 * source's RAM size and vCPU count, platform (and NIC, if the source had
 * one) initialised, nothing loaded and never run.  Pages go straight into
 * its RAM; vCPUs and devices are set only after END was read and checked.
 * Then the commit (READY, GO) and OK.  Returns 0 after sending OK: the
 * caller now runs dst.  Returns -1 after sending ERROR (when the
 * connection still takes it and there is someone to tell), with the
 * reason in why: dst holds garbage and must be destroyed, never run.
 */
int migrate_receive(struct vm *dst, const struct stream_io *in, char *why, size_t whylen);
/* The same, taking the guest's RAM instead of pages if the stream says it
 * is shared (share: the connection it came on; NULL: refuse such a stream). */
int migrate_receive_ex(struct vm *dst, const struct stream_io *in, struct migrate_share *share,
		       char *why, size_t whylen);

/* ---- shared RAM: in-place moves (migrate_shared.c) ---- */

/*
 * Between two processes of one host the guest's RAM is not copied: the
 * source passes its memory file (vm->mem_fd) with the stream header's
 * bytes, the header says so (StreamHeader.shared_ram: the file's dev,
 * inode and size), and no PAGE_BATCH follows: no pre-copy, the source
 * freezes at once and sends its machine state.  The target maps the file
 * copy-on-write (MAP_PRIVATE): whatever it does before the commit, its
 * re-patching included, never reaches the source's RAM.  Then a commit:
 *
 *   target: everything applied -> READY
 *   source: from here it never resumes on a timeout -> GO
 *   target: maps the file shared, re-patches the sites in it -> OK, runs
 *
 * The target runs no vCPU before its OK is written; the source resumes
 * only on ERROR or the connection's end without OK (the target is gone),
 * after putting every site back to its own personality whatever it finds
 * there (migrate_shared_restore).  A target that stays silent after GO is
 * waited for: only whoever can end it (pvmigrated) can break the tie.
 * pvmigrate-stream(5), "Shared RAM"; docs/RUNTIME.md.
 */
/*
 * The frozen phase of a shared move is well under a millisecond of work
 * split between two processes that wake each other three times; on a
 * loaded host each wake-up can wait for a time slice (milliseconds).  A
 * thread that may (CAP_SYS_NICE) runs that phase under SCHED_FIFO: it is
 * blocked most of the time and never runs guest code, so it takes nothing
 * from anyone.  Ended before any thread the guest uses is started, since
 * new threads inherit the policy.  Idempotent; a no-op without the right.
 */
struct migrate_boost {
	int on, policy;
	int param;
};
void migrate_boost_start(struct migrate_boost *b);
/* A receiver before the stream: what a fresh process does slowly the first
 * time and the frozen phase needs (the first SHA-256 loads OpenSSL's
 * configuration: ~1-3 ms, measured in the downtime before this). */
void migrate_warm_up(void);
void migrate_boost_end(struct migrate_boost *b);

struct migrate_share {
	struct migrate_conn *conn; /* the stream's connection: an AF_UNIX socket */
	struct migrate_boost boost; /* the calling thread's, while frozen (see above) */
	/* TEST ONLY (target): called at "ready" (READY sent) and "repatched"
	 * (GO taken, the shared RAM re-patched, OK not sent); nonzero fails
	 * the move there as a refusal would.  NULL in production. */
	int (*test_hook)(void *ctx, const char *step);
	void *test_ctx;
	/* target, copied RAM: called once GO was read, before the OK is
	 * written and before anything runs (pvguest tells its daemon); NULL: none */
	void (*on_go)(void *ctx);
	void *on_go_ctx;
	/* what happened, for the caller */
	int committed;		  /* source: GO was sent */
	int in_doubt;		  /* source: after GO, no clear answer: never resume */
	unsigned sites_restored;  /* source: sites put back after a failed move */
	uint64_t ready_ns, go_ns; /* source: READY came, OK came (from the freeze: see migrate_send) */
	/* vm__now_ns() at: source: END flushed (the commit begins); target:
	 * the state applied, READY sent, GO read, RAM shared, sites re-patched
	 * (OK follows) */
	uint64_t t_sent, t_applied, t_ready, t_go, t_mapped, t_repatched;
};

/* Source: fill info->shared from vm->mem_fd and arm the connection to pass it. */
int migrate_shared_header(struct vm *vm, struct migrate_share *sh, struct stream_info *info,
			  char *why, size_t whylen);
/* Target, at the header: check the file that came with it, map it copy-on-write. */
int migrate_shared_map(struct vm *vm, const struct stream_info *info, struct migrate_share *sh,
		       char *why, size_t whylen);
/* Source, frozen and END sent: READY, GO, then the target's last word in
 * *code as migrate_reply_recv gives it.  After OK the caller of
 * migrate_send detaches the RAM (vm__ram_detach) before anything else. */
int migrate_shared_commit(struct vm *src, const struct stream_io *io, struct migrate_share *sh,
			  enum migrate_reply_code *code, char *msg, size_t msglen, char *why,
			  size_t whylen);
/* Target, everything applied: READY, GO, the RAM shared and re-patched,
 * OK.  -1: refused (ERROR sent if the connection takes it; RAM detached). */
int migrate_shared_commit_recv(struct vm *dst, const struct stream_io *io,
			       struct migrate_share *sh, const struct stream_patch *patch,
			       struct vm_vcpu_state *vcpus, char *why, size_t whylen);
/* Source, before resuming after a failed shared move: every site back to
 * this VM's personality.  -1: a site could not be (the guest must not run). */
int migrate_shared_restore(struct vm *vm, struct migrate_share *sh, char *why, size_t whylen);

/* ---- the tail: late frames of a NIC whose connection moved (migrate_late.c) ---- */

/*
 * A guest that moves to another host gets a new NIC connection there;
 * what the far end still sends to the old one until it learns the new
 * port reaches the source after the freeze.  Those "late frames" are the
 * guest's: after the OK the source reads its old connection and sends
 * them on the same stream (NIC_LATE records, state/stream.h), until the
 * far end closes it (EOF) or late_ms passed, then NIC_LATE_END.  The
 * target, already running the guest, announces the guest's MAC on its
 * new connection (so that a learning switch moves the port at once),
 * reads the tail on a thread and hands each frame to its NIC.  A tail
 * that breaks off costs those frames only: both guests' fates were
 * decided by the OK.  pvmigrate-stream(5), "The tail"; docs/RUNTIME.md.
 */
#define MIGRATE_LATE_MS 1000u	   /* the source's bound, for a connection without an end (tap) */
#define MIGRATE_LATE_WAIT_MS 6000u /* the target's: the source's plus the link's slack */

/* Source, from migrate_send after the OK (the NIC frozen): the whole tail. */
void migrate_late_send(struct vm *src, const struct stream_io *out, unsigned ms,
		       struct migrate_late_report *lr);
/* Target, from migrate_receive: the MAC the guest's NIC had (DeviceSet). */
void migrate_late_note(struct vm *dst, const uint8_t *devices, size_t devices_len);
/*
 * Target, after migrate_receive returned 0, when the NIC's connection is
 * a new one: send the announce, then read the tail from (fd) on a thread
 * (fd is ours from here, closed at the end; the figures go to log then,
 * if not NULL).  NULL with why when it could not start (fd closed; the
 * guest runs on without the late frames); else why says what went wrong
 * with the announce, or is "".
 */
struct migrate_late *migrate_late_recv_start(struct vm *dst, int fd, FILE *log, char *why,
					     size_t whylen);
/* Wait at most wait_ms for the tail to end by itself, then stop it; the
 * figures; frees l.  Before the VM is migrated again or destroyed. */
void migrate_late_recv_end(struct migrate_late *l, unsigned wait_ms,
			   struct migrate_late_report *lr);
/* One line of figures: "late frames: 12 forwarded in 3 records, ended at EOF after 4.1 ms". */
void migrate_late_print(const struct migrate_late_report *lr, const char *verb, FILE *out);

#endif
