/* guest_msg.h: the command socket between pvmigrated and one pvguest process (verbs, limits) */
#ifndef GUEST_MSG_H
#define GUEST_MSG_H

/*
 * One SOCK_SEQPACKET socketpair per guest, fd 3 in pvguest.  Each packet
 * is one text message "VERB[ REST]", at most GUEST_MSG_MAX bytes, no NUL.
 * pvguest is the daemon's own child, but its words still pass a length
 * and verb check: a guest process that went wrong must not be able to
 * confuse the daemon either.
 *
 * pvguest -> daemon
 *   ready                  run: the VM runs; receive: the VM exists and
 *                          waits for the stream on fd 4
 *   failed WHY             run: the guest could not be started; pvguest
 *                          exits 1
 *   ram shared | ram copied WHY
 *                          after migrate-local, before the stream: the
 *                          guest's RAM is handed over (migrate_shared.c),
 *                          or copied, and why it cannot be shared
 *   estimate BYTES         before sending: round 0's size (pages not all
 *                          zero), for the progress bar
 *   log TEXT               a line of migrate_send's round log
 *   sent BYTES             stream bytes written so far (every 250 ms and
 *                          at the end), for in-place and direct moves'
 *                          progress
 *   migrated D T B R [L H] the target confirmed: downtime ns, total ns,
 *                          stream bytes, pre-copy rounds; after
 *                          migrate-late also the tail's late frames
 *                          forwarded and how it ended (enum
 *                          stream_late_how, 0: it broke off); pvguest
 *                          ends its copy and exits 0
 *   migrate-failed R WHY   the target did not confirm; R = 1 if the
 *                          guest was resumed (it runs on here)
 *   migrate-unknown WHY    across daemons, after GO (the commit) no clear
 *                          answer came: the guest stays paused here until
 *                          the daemon says resume or destroy
 *   committed              receive, copied RAM: GO came; nothing runs
 *                          until the daemon answers run (it may instead
 *                          end us with SIGKILL: then the guest never ran)
 *   received               receive: the stream was loaded, confirmed,
 *                          and the guest now runs here
 *   resumed NS | resumed ? receive, after received: the guest really ran
 *                          again NS ns after its OK (native: 0; kvm: when
 *                          the runtime's adopt ended, RT_BELL_BOOTED);
 *                          ?: not within 5 s, unknown
 *   receive-failed WHY     receive: nothing runs; pvguest exits 1
 *
 * daemon -> pvguest
 *   migrate                with one fd (SCM_RIGHTS): the stream socket;
 *                          pvguest sends the guest over it (migrate_send)
 *   migrate-late           the same, to another host where the guest's NIC
 *                          has a new connection: after the OK, pvguest
 *                          forwards what its own still receives (the
 *                          stream's tail, migrate_late.c)
 *   migrate-local          the same, to a receiver on this host (an
 *                          in-place move): the RAM is shared if it can be
 *   migrate-direct HOST PORT IDHEX TOKENHEX LATE\nCERT\nKEY\nCA
 *                          no fd: the direct data path (pvmigrated(8)):
 *                          connect to HOST:PORT, write the preamble for
 *                          move IDHEX, mutual TLS with those PEM files,
 *                          present the token, then send as for migrate
 *                          (LATE 1: as for migrate-late); a failure before
 *                          the stream is "migrate-failed 0 WHY"
 *   direct TOKENHEX        receive --direct, with one fd: the source's own
 *                          connection (its preamble read by the daemon);
 *                          TLS, the token checked, then the stream; the
 *                          OK waits for "run"
 *   resume | destroy       after migrate-unknown: the target's daemon said
 *                          the guest is not there (run it again here) or
 *                          runs there (end this paused copy)
 *   run                    after committed: the guest may run now
 */
#define GUEST_MSG_MAX 1024
#define GUEST_CMD_FD 3
#define GUEST_STREAM_FD 4

#endif
