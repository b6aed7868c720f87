/* daemon_link.h: what the two sides of a migration share: the TLS link's errors, frames on it, and the relay between it and a guest process */
#ifndef DAEMON_LINK_H
#define DAEMON_LINK_H

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "daemon.h"
#include "fault_inject.h"

/*
 * Source:  client --Migrate--> daemon A --TLS--> daemon B
 *          A sends PeerRequest; B checks what it can, starts `pvguest
 *          receive`, and once that VM exists answers PeerAccept.  Only
 *          then does A hand its guest process one end of a socketpair
 *          ("migrate"): nothing is frozen before the target said yes.
 *          From there both daemons relay bytes: pvguest(A) <-> A <-TLS->
 *          B <-> pvguest(B).  The stream and the target's reply are the
 *          migrate library's (migrate.h); the daemons only carry them.
 *          The commit (READY, GO, OK) decides: before GO the source
 *          resumes on any failure; after GO a source that did not hear
 *          the OK stays paused and its daemon asks the target's on a
 *          fresh link (PeerQuery), which kills an uncommitted receiver
 *          before it answers "absent" (pvmigrated(8), "The commit").
 *
 * Direct data path (data_path direct, pvmigrated(8)): PeerAccept carries
 * a one-time token, A tells its pvguest "migrate-direct", which connects
 * to B's peer port itself: a 24-byte preamble, then mutual TLS between the
 * guest processes; B's listener sorts that connection out by its first
 * byte and hands it to the receiver (daemon_mig_in.c).  The link stays
 * open, and no relay runs.
 *
 * A peer is whoever holds a certificate signed by tls_ca: the handshake
 * requires one both ways, and a peer without one never gets a byte read.
 */

#define PEER_HANDSHAKE_S 15	/* a peer has this long for TLS and its request */

/* Every queued TLS error (of bev, then the thread's), for a log line. */
const char *ssl_error(struct bufferevent *bev);
/* TCP_NODELAY: the target's small reply must not wait for Nagle. */
void no_delay(evutil_socket_t fd);

/* Frames (ctl_proto.h) on a bufferevent.  take_frame: 1 with the body
 * copied out (free it), 0 for more bytes, -1 with why. */
void send_frame(struct bufferevent *bev, const ProtobufCMessage *msg);
int take_frame(struct bufferevent *bev, uint8_t **body, uint32_t *len, char *why, size_t whylen);
void peer_error(struct bufferevent *bev, uint32_t code, const char *msg);

/*
 * The relay: bytes both ways between an established peer link and a
 * local stream socket (the guest process's), with back-pressure.  When
 * one side ends, what it sent still reaches the other, then done() is
 * called once (why: NULL for a clean end) and the relay frees itself.
 *
 * It follows what it carries without parsing bodies: the 16-byte record
 * headers of the stream one way (only while a test fault is armed,
 * fault_inject.h; after END the source's GO has a reply's header), the
 * migrate reply's 16-byte headers the other way: READY, then the last
 * word (OK or ERROR).  On the target READY passes at once, and the last
 * word is held back until relay_release(): the daemon lets the OK go only
 * once its pvguest said "committed" (GO reached it), and knows at the end
 * whether a whole, well-formed OK left (reply_out).
 */
enum relay_role { RELAY_SOURCE, RELAY_TARGET };
struct relay_track {		/* one direction */
	uint8_t hdr[16];
	unsigned have;			/* header bytes gathered, not yet passed on */
	uint64_t left, pos;		/* of the current body (and padding) */
	uint64_t corrupt_at;		/* body offset to flip, UINT64_MAX: none */
	int off;			/* lost track (absurd length): pass as is */
	int final;			/* the message passing is the reply's last (OK, ERROR) */
	int pass;			/* target: the message passing is READY: not held */
	int complete;			/* reply: all of its last message passed */
};
typedef void (*relay_done_fn)(void *ctx, const char *why);
typedef void (*relay_kill_fn)(void *ctx);	/* test fault kill-target */
struct relay {
	struct bufferevent *peer, *local;
	uint64_t to_peer, to_local;
	int draining;
	enum relay_role role;
	struct fault *fault;		/* armed test fault, or NULL */
	struct relay_track track[2];	/* [0] local -> peer, [1] peer -> local */
	int holding, doomed, local_gone; /* target: the reply waits in held */
	struct evbuffer *held;
	int reply_ok;			/* the reply read was a well-formed OK */
	int reply_out;			/* target: a whole well-formed OK was written to the peer */
	char end_why[300];
	relay_done_fn done;
	relay_kill_fn kill;
	void *ctx;
};
struct relay *relay_start(struct daemon *d, struct bufferevent *peer, int local_fd,
			  enum relay_role role, struct fault *fault, relay_done_fn done,
			  relay_kill_fn kill, void *ctx);
/* Target: pvguest's verdict came (forward: let the reply go), or it ended
 * without one (the link is closed; done() runs). */
void relay_release(struct relay *r, int forward);
/* Abandon a relay without calling done (its owner is going away). */
void relay_drop(struct relay *r);
/* Let a relay finish on its own, without its owner: what is in flight
 * still arrives (the source's tail of late frames), no callback, no
 * fault hook.  The relay frees itself once both sides ended. */
void relay_detach(struct relay *r);

/* guest_proc.c: "migrate-late" with the stream's fd: after the OK,
 * pvguest forwards the frames the guest's NIC connection still gets
 * (its NIC has a new connection on the target); -1 with why. */
int guest_cmd_migrate_late(struct guest *g, int fd, char *why, size_t whylen);

/* daemon_mig_in.c: the peer listener's accept, and its cleanup */
void mig_in_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		   void *arg);
void mig_in_shutdown(void);

#endif
