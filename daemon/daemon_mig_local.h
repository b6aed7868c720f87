/* daemon_mig_local.h: in-place moves (no --dest): a second pvguest on this host receives the guest in its new personality, then takes the old process's place */
#ifndef DAEMON_MIG_LOCAL_H
#define DAEMON_MIG_LOCAL_H

#include "daemon.h"

/*
 * client --Migrate (no dest)--> daemon
 *   the daemon starts `pvguest receive --personality TO` (the "receiver":
 *   a struct guest of the same name that is not listed), and once its VM
 *   exists ("ready") hands the guest's own pvguest the other end of a
 *   socketpair ("migrate-local").  The two processes then speak the migrate
 *   library's stream and reply directly; the daemon only listens to both.
 *   The source shares the guest's RAM with the receiver instead of copying
 *   it ("ram shared", or "ram copied WHY" when it cannot; migrate.h).
 *   The move is over when the source confirmed ("migrated": it got the
 *   target's OK) and the receiver runs the guest ("received"): the
 *   receiver's process, console output and pid become the guest's.  On any
 *   failure before that, the source resumes (the library's rule) and the
 *   receiver is killed: it never ran anything that counts.
 */

/* daemon_mig_local.c */

/* A checked Migrate request without dest: answers c (now, or when done). */
void local_migrate(struct daemon *d, struct conn *c, uint64_t id, const Pvmigrate__Ctl__Migrate *m);
/* g is a guest being moved in place, or the receiver of such a move. */
int mig_local_of(const struct guest *g);
/* A pvguest word from either side of an in-place move. */
void mig_local_event(struct guest *g, const char *verb, const char *rest);
/* From exited(), g's status set and pid 0: 1 when the move took care of it. */
int mig_local_exited(struct guest *g);
/* The receiver whose process is pid, or NULL. */
struct guest *mig_local_pid_owner(struct daemon *d, pid_t pid);
/* A child that belonged to no guest ended: an old runner after a swap? */
void mig_local_reaped(pid_t pid, int wstatus);
void mig_local_shutdown(void);

/* guest_proc.c, for the moves */

/* Start `pvguest receive` for g in personality pers (runtime: "" = the
 * default) on stream_fd, as an unlisted guest of the same name. */
struct guest *guest_spawn_local_receiver(struct guest *g, const char *pers, const char *runtime,
					 int stream_fd, char *why, size_t whylen);
/* "migrate-local" with the stream's fd: the receiver is on this host, the
 * guest's RAM is shared with it if it can be (pvguest says "ram ..."). */
int guest_cmd_migrate_local(struct guest *g, int fd, char *why, size_t whylen);
/* Free a receiver (unlisted); its process, if any, is not touched. */
void guest_free_unlisted(struct guest *in);
/* Take in's process as g's own: g's old pipes are drained and closed, in's
 * console so far is appended to g's, in's pipes and pid become g's. */
void guest_take_process(struct guest *g, struct guest *in);
/* Read what g's runner said and has not been read yet (before its exit). */
void guest_drain_cmd(struct guest *g);
/* g's runner ended with g->status: answer and forget as an exit does. */
void guest_ended(struct guest *g);

#endif
