/* daemon_mig_in.c: the target side of a migration: accept a certified peer, check its request, start a receiving pvguest, then relay (or hand it the source's direct connection) */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "daemon_link.h"
#include "daemon_mig_local.h" /* guest_drain_cmd */
#include "migrate_tls.h"      /* the direct path's preamble */

#define MAX_INCOMING 8 /* links at once, handshakes and queries included */
#define MAX_RECORDS 64 /* moves remembered for PeerQuery */

/*
 * What this daemon knows of each move it took part in as the target, by
 * its migration id: the answer to the source's PeerQuery (pvmigrated(8),
 * "The commit").  A receiver is R_INCOMING until it says "committed"
 * (GO came), then R_COMMITTED until it runs ("received"): R_RUNNING.
 * R_ENDED: it never ran and never will (refused, killed, died).  The
 * word "run" goes to a receiver only from R_COMMITTED, and R_INCOMING
 * becomes R_ENDED only with the receiver killed: so what a query hears
 * and what runs here never disagree.
 */
struct mig_rec {
	struct mig_rec *next;
	char id[CTL_MIG_ID_LEN + 1];
	char guest[CTL_NAME_MAX + 1];
	enum { R_INCOMING, R_COMMITTED, R_RUNNING, R_ENDED } st;
	struct mig_in *mi;		/* while the move is under way */
	pid_t pid;			/* R_RUNNING: the runner that runs it */
};

struct mig_in {
	struct daemon *d;
	struct mig_in *next;
	struct guest *g;
	char addr[INET6_ADDRSTRLEN + 8];
	/* MI_DIRECT: accepted on the direct path, the source's own
	 * connection not yet here (the listener hands it over, once) */
	enum { MI_TLS, MI_REQUEST, MI_SPAWNED, MI_DIRECT, MI_STREAM } phase;
	int direct;			/* the source asked for the direct data path */
	uint8_t token[CTL_DIRECT_TOKEN_LEN]; /* direct: what its connection must present */
	uint8_t bin_id[MIGRATE_ID_LEN];	/* direct: the move id as the preamble carries it */
	struct bufferevent *peer;
	int local_fd;			/* our end of pvguest's stream, until the relay */
	struct relay *relay;
	struct fault fault;		/* test hook (fault_inject.h), usually none */
	int kill_spawned;		/* test fault kill-target@offer */
	int doomed;			/* uncommitted at the link's end: the receiver is being killed */
	int failed;			/* the receiver said receive-failed: it exits by itself */
	int committed, received;	/* the receiver said so (GO came; it runs) */
	int settling;			/* mi_relay_done reads the receiver's last words */
	struct mig_rec *rec;		/* this move's record, or NULL (a query link) */
};

static struct mig_in *incoming;
static unsigned nr_incoming;
static struct mig_rec *records;

static struct mig_rec *rec_find(const char *id)
{
	struct mig_rec *r;

	for (r = records; r; r = r->next)
		if (!strcmp(r->id, id))
			return r;
	return NULL;
}

/* A new record, first in the list; the oldest finished one goes past MAX_RECORDS. */
static struct mig_rec *rec_new(const char *id, const char *guest)
{
	struct mig_rec *r = calloc(1, sizeof *r), **pp, *old = NULL;
	unsigned n = 0;

	if (!r)
		return NULL;
	snprintf(r->id, sizeof r->id, "%s", id);
	snprintf(r->guest, sizeof r->guest, "%s", guest);
	r->next = records;
	records = r;
	for (pp = &records; *pp; pp = &(*pp)->next)
		if (++n > MAX_RECORDS && !(*pp)->mi)
			old = *pp;
	if (old) {
		for (pp = &records; *pp != old; pp = &(*pp)->next)
			;
		*pp = old->next;
		free(old);
	}
	return r;
}

static void rec_set(struct mig_in *mi, int st)
{
	if (mi && mi->rec && mi->rec->st != R_RUNNING && mi->rec->st != R_ENDED)
		mi->rec->st = st;
}

static void mi_free(struct mig_in *mi)
{
	struct mig_in **pp;

	for (pp = &incoming; *pp; pp = &(*pp)->next)
		if (*pp == mi) {
			*pp = mi->next;
			break;
		}
	nr_incoming--;
	if (mi->rec) {
		/* nothing more will change what runs here: never ran means never will */
		rec_set(mi, R_ENDED);
		mi->rec->mi = NULL;
	}
	if (mi->peer)
		bufferevent_free(mi->peer);
	relay_drop(mi->relay);
	if (mi->local_fd >= 0)
		close(mi->local_fd);
	if (mi->g)
		mi->g->mig_in = NULL;
	free(mi);
}

/* Decide an uncommitted receiver's fate: it never runs.  It took no "run"
 * from us, so whatever it read, no vCPU of it ran; SIGKILL makes sure. */
static void mi_doom(struct mig_in *mi, const char *why)
{
	dlog("%s: %s: ending our uncommitted receiver (pid %d); it never ran the guest",
	     mi->g->name, why, (int)mi->g->pid);
	snprintf(mi->g->detail, sizeof mi->g->detail,
		 "not taken over: %s before the commit; the source keeps the guest", why);
	mi->g->state = G_INCOMING; /* forgotten when it exits, like any failed arrival */
	mi->doomed = 1;
	if (mi->rec)
		mi->rec->st = R_ENDED;
	kill(mi->g->pid, SIGKILL);
}

/*
 * The link is over.  Before the receiver said "committed" (GO reached
 * it), the source never stopped for good: ours must not run, whatever our
 * pvguest thinks, so it is killed.  After that the guest is ours: it runs
 * on whatever the source heard (a source that missed our OK asks us,
 * PeerQuery).  A receiver that got nothing exits by itself.
 */
static void mi_relay_done(void *ctx, const char *why)
{
	struct mig_in *mi = ctx;

	mi->relay = NULL;
	if (why)
		dlog("peer %s: migration link: %s", mi->addr, why);
	/* a "committed" already on its way counts: read what it said (mi
	 * stays ours meanwhile, whatever it said) */
	mi->settling = 1;
	if (mi->g && mi->g->pid > 0)
		guest_drain_cmd(mi->g);
	mi->settling = 0;
	if (mi->committed && !mi->received && mi->g && mi->g->pid > 0)
		return; /* kept until it runs ("received") or ends (mig_in_gone) */
	if (mi->committed || mi->failed || !mi->g || mi->g->pid <= 0) {
		mi_free(mi);
		return;
	}
	mi_doom(mi, "the link ended");
	/* mi lives until the receiver is reaped (mig_in_gone) */
}

/* The direct path: the daemons' link stays open during the stream and its
 * end means what the relay's end means (mi_relay_done).  Nothing is
 * expected on it. */
static void mi_link_read(struct bufferevent *bev, void *arg)
{
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void mi_link_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig_in *mi = arg;
	char why[300];

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	snprintf(why, sizeof why, "%s", what & BEV_EVENT_EOF ? "the source closed the link"
							     : ssl_error(bev));
	bufferevent_free(mi->peer);
	mi->peer = NULL;
	mi_relay_done(mi, why);
}

/* Test fault kill-target: the receiving pvguest dies at this step. */
static void mi_kill(void *ctx)
{
	struct mig_in *mi = ctx;

	if (mi->g && mi->g->pid > 0) {
		dlog("TEST FAULT: SIGKILL to %s's receiving pvguest (pid %d)", mi->g->name,
		     (int)mi->g->pid);
		kill(mi->g->pid, SIGKILL);
	}
}

/* Refuse with a PeerResponse error, then hang up once it is written. */
static void mi_refuse(struct mig_in *mi, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void mi_flushed(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		mi_free(arg);
}

static void mi_refuse(struct mig_in *mi, uint32_t code, const char *fmt, ...)
{
	char msg[CTL_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dlog("peer %s: refused: %s", mi->addr, msg);
	peer_error(mi->peer, code, msg);
	bufferevent_disable(mi->peer, EV_READ);
	bufferevent_setcb(mi->peer, NULL, mi_flushed, NULL, mi);
}

/* PeerQuery: settle the move's fate here first if it is still open, then say it. */
static void mi_query(struct mig_in *mi, const char *id)
{
	Pvmigrate__Ctl__PeerResponse rsp = PVMIGRATE__CTL__PEER_RESPONSE__INIT;
	Pvmigrate__Ctl__PeerQueryResult qr = PVMIGRATE__CTL__PEER_QUERY_RESULT__INIT;
	struct mig_rec *r = rec_find(id);
	char detail[CTL_MSG_MAX];
	struct guest *g;

	if (r && r->st == R_INCOMING && r->mi && r->mi->g && r->mi->g->pid > 0)
		guest_drain_cmd(r->mi->g); /* its "committed" may be waiting */
	if (r && r->st == R_INCOMING) {
		if (r->mi && r->mi->g && r->mi->g->pid > 0 && !r->mi->doomed)
			mi_doom(r->mi, "the source asked about the move");
		r->st = R_ENDED;
	}
	qr.has_state = 1;
	if (!r) {
		qr.state = CTL_QUERY_ABSENT;
		snprintf(detail, sizeof detail, "no move %s known here", id);
	} else if (r->st == R_RUNNING && (g = guest_find(mi->d, r->guest)) && g->pid == r->pid &&
		   g->pid > 0 && g->state == G_RUNNING) {
		qr.state = CTL_QUERY_RUNS;
		snprintf(detail, sizeof detail, "%s runs here", r->guest);
	} else if (r->st == R_RUNNING) {
		/* it ran here and ended since (killed, crashed): the source's
		 * paused copy is all that is left of the guest */
		qr.state = CTL_QUERY_ABSENT;
		snprintf(detail, sizeof detail, "%s ran here but does not run any more", r->guest);
	} else if (r->st == R_COMMITTED) {
		qr.state = CTL_QUERY_PENDING;
		snprintf(detail, sizeof detail, "%s committed, not yet running", r->guest);
	} else {
		qr.state = CTL_QUERY_ABSENT;
		snprintf(detail, sizeof detail, "%s does not run here and never will", r->guest);
	}
	qr.detail = detail;
	dlog("peer %s: query about move %s: %s", mi->addr, id, detail);
	rsp.has_protocol_major = rsp.has_protocol_minor = 1;
	rsp.protocol_major = CTL_PROTO_MAJOR;
	rsp.protocol_minor = CTL_PROTO_MINOR;
	rsp.body_case = PVMIGRATE__CTL__PEER_RESPONSE__BODY_QUERY;
	rsp.query = &qr;
	send_frame(mi->peer, &rsp.base);
	bufferevent_disable(mi->peer, EV_READ);
	bufferevent_setcb(mi->peer, NULL, mi_flushed, NULL, mi);
}

/* The daemons' move id (32 hex digits) as the preamble's 16 bytes. */
static int mig_id_bin(const char *hex, uint8_t *out)
{
	unsigned i, v;

	if (!hex || strlen(hex) != 2 * MIGRATE_ID_LEN)
		return -1;
	for (i = 0; i < MIGRATE_ID_LEN; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void mi_request(struct mig_in *mi, const Pvmigrate__Ctl__PeerMigrate *pm,
		       unsigned minor)
{
	struct daemon *d = mi->d;
	char avail[128], namebuf[CTL_NAME_MAX + 1], why[300], mark[200];
	const char *name;
	int sv[2];

	/* an older source stops for good at our first reply and knows no GO */
	if (minor < CTL_PROTO_MINOR_COMMIT || !pm->migration_id) {
		mi_refuse(mi, CTL_ERR_VERSION, "the source speaks protocol %u.%u, without the "
			  "commit (READY, GO) this target needs (%u.%u has it)", CTL_PROTO_MAJOR,
			  minor, CTL_PROTO_MAJOR, CTL_PROTO_MINOR_COMMIT);
		return;
	}
	if (rec_find(pm->migration_id)) {
		mi_refuse(mi, CTL_ERR_INVALID, "migration id %s was used before", pm->migration_id);
		return;
	}
	daemon_available_text(d, avail, sizeof avail);
	if (!ctl_personality_known(pm->to) || !daemon_available(d, pm->to)) {
		mi_refuse(mi, CTL_ERR_UNAVAILABLE,
			  "hypervisor '%s' is not available on the target (available: %s)",
			  pm->to, avail);
		return;
	}
	/* any source personality: the receiver re-patches the guest to pm->to */
	name = guest_pick_name(d, pm->guest, namebuf, sizeof namebuf);
	if (!name)
		name = guest_pick_name(d, NULL, namebuf, sizeof namebuf);
	mi->direct = pm->has_direct && pm->direct;
	if (mi->direct) {
		/* the receiver does TLS with our files; the token is one-time */
		if (!d->conf.tls_cert[0] || !d->conf.tls_key[0] || !d->conf.tls_ca[0] ||
		    !d->peer_listen[0]) {
			mi_refuse(mi, CTL_ERR_UNAVAILABLE, "the direct data path needs listen, tls_cert, "
				  "tls_key and tls_ca on the target");
			return;
		}
		if (RAND_bytes(mi->token, sizeof mi->token) != 1) {
			mi_refuse(mi, CTL_ERR_FAILED, "no random bytes for the direct path's token");
			return;
		}
		if (mig_id_bin(pm->migration_id, mi->bin_id) < 0) {
			mi_refuse(mi, CTL_ERR_INVALID, "migration id %s: not 32 hex digits",
				  pm->migration_id);
			return;
		}
		sv[0] = sv[1] = -1;
	} else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		mi_refuse(mi, CTL_ERR_FAILED, "socketpair: %s", strerror(errno));
		return;
	}
	/* with a NIC: our own connection to what the spec names, opened now,
	 * before the source freezes anything (pvmigrated(8), "NIC") */
	mi->g = guest_spawn_receiver(d, name, pm->to, pm->vcpus, pm->memory,
				     pm->image ? pm->image : "", pm->net ? pm->net : "", sv[1],
				     mi->direct, why, sizeof why);
	if (sv[1] >= 0)
		close(sv[1]);
	if (!mi->g) {
		if (sv[0] >= 0)
			close(sv[0]);
		mi_refuse(mi, CTL_ERR_FAILED, "cannot start a receiver: %s", why);
		return;
	}
	if (sv[0] >= 0)
		evutil_make_socket_nonblocking(sv[0]);
	mi->local_fd = sv[0];
	mi->g->mig_in = mi;
	mi->rec = rec_new(pm->migration_id, mi->g->name);
	if (mi->rec)
		mi->rec->mi = mi;
	else
		dlog("%s: out of memory for the move's record: a query about it will hear "
		     "'absent'", mi->g->name);
	/* the console so far, so that `console` here shows the whole story */
	if (pm->has_console && pm->console.len)
		guest_console_put(mi->g, pm->console.data, pm->console.len);
	snprintf(mark, sizeof mark, "\npvmigrated: --- %s arrives from %s ---\n", pm->guest, mi->addr);
	guest_console_put(mi->g, (const uint8_t *)mark, strlen(mark));
	mi->phase = MI_SPAWNED; /* the answer waits for pvguest's "ready" */
	bufferevent_disable(mi->peer, EV_READ);
	if (mi->kill_spawned)
		mi_kill(mi);
}

static void mi_read(struct bufferevent *bev, void *arg)
{
	struct mig_in *mi = arg;
	Pvmigrate__Ctl__PeerRequest *req;
	uint8_t *body;
	uint32_t len, code;
	char why[300];
	int rc;

	if (mi->phase != MI_REQUEST)
		return;
	rc = take_frame(bev, &body, &len, why, sizeof why);
	if (rc == 0)
		return;
	if (rc < 0) {
		mi_refuse(mi, CTL_ERR_PROTOCOL, "%s", why);
		return;
	}
	fault_arm(&mi->fault, "target");
	switch (fault_hit(&mi->fault, FSTEP_OFFER)) {
	case FAULT_CUT:
		dlog("TEST FAULT: peer %s: cutting the link at its offer", mi->addr);
		free(body);
		mi_free(mi);
		return;
	case FAULT_CORRUPT:
		fault_corrupt_protobuf(body, len);
		break;
	case FAULT_KILL_TARGET:
		mi->kill_spawned = 1;
		break;
	case FAULT_KILL_DAEMON:
		fault_kill_daemon(&mi->fault);
		break;
	default:
		break;
	}
	req = ctl_peer_request_decode(body, len, &code, why, sizeof why);
	free(body);
	if (!req) {
		mi_refuse(mi, code, "%s", why);
		return;
	}
	if (req->body_case == PVMIGRATE__CTL__PEER_REQUEST__BODY_QUERY) {
		mi_query(mi, req->query->migration_id);
		ctl_peer_request_free(req);
		return;
	}
	dlog("peer %s: asks to send %s (%s -> %s, %u vCPUs, %llu MiB, move %s)", mi->addr,
	     req->migrate->guest, req->migrate->from, req->migrate->to, req->migrate->vcpus,
	     (unsigned long long)(req->migrate->memory >> 20),
	     req->migrate->migration_id ? req->migrate->migration_id : "without id");
	mi_request(mi, req->migrate, req->protocol_minor);
	ctl_peer_request_free(req);
}

static void mi_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig_in *mi = arg;
	X509 *cert;
	char subject[256] = "?";

	if (what & BEV_EVENT_CONNECTED) {
		cert = SSL_get_peer_certificate(bufferevent_openssl_get_ssl(bev));
		if (cert) {
			X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
			X509_free(cert);
		}
		dlog("peer %s: TLS up, certificate %s", mi->addr, subject);
		mi->phase = MI_REQUEST;
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		dlog("peer %s: no request within %d s, closing", mi->addr, PEER_HANDSHAKE_S);
		mi_free(mi);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		if (mi->phase == MI_TLS)
			dlog("peer %s: TLS handshake failed, nothing read: %s", mi->addr, ssl_error(bev));
		else
			dlog("peer %s: closed before the stream began", mi->addr);
		/* a receiver already started sees its stream end and exits */
		mi_free(mi);
	}
}

/* A peer's connection on the TLS path (the daemons' link). */
static void mi_tls_accept(struct daemon *d, evutil_socket_t fd, const char *host)
{
	struct timeval to = { PEER_HANDSHAKE_S, 0 };
	struct mig_in *mi;
	SSL *ssl;

	if (nr_incoming >= MAX_INCOMING) {
		dlog("peer %s: refused, already %u incoming links", host, nr_incoming);
		close(fd);
		return;
	}
	mi = calloc(1, sizeof *mi);
	ssl = SSL_new(d->tls_server);
	if (!mi || !ssl) {
		free(mi);
		if (ssl)
			SSL_free(ssl);
		close(fd);
		return;
	}
	mi->d = d;
	mi->local_fd = -1;
	snprintf(mi->addr, sizeof mi->addr, "%s", host);
	mi->peer = bufferevent_openssl_socket_new(d->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						  BEV_OPT_CLOSE_ON_FREE);
	if (!mi->peer) {
		SSL_free(ssl);
		close(fd);
		free(mi);
		return;
	}
	mi->next = incoming;
	incoming = mi;
	nr_incoming++;
	bufferevent_openssl_set_allow_dirty_shutdown(mi->peer, 1);
	bufferevent_setcb(mi->peer, mi_read, NULL, mi_event, mi);
	bufferevent_set_timeouts(mi->peer, &to, NULL);
	bufferevent_enable(mi->peer, EV_READ | EV_WRITE);
}

/*
 * Every connection to the peer port is looked at before TLS: a TLS
 * ClientHello begins with 0x16, the direct path's preamble with "PVMD".
 * One byte is peeked (nothing consumed): anything but 'P' goes to the TLS
 * path untouched.  A preamble is read, exactly its 24 bytes and never
 * one more (the guest processes' TLS follows), without blocking the loop,
 * within PEER_HANDSHAKE_S; then the socket goes, raw, to the receiver of
 * the move it names, if that move waits for it (once), else it is closed.
 */
struct peek {
	struct daemon *d;
	struct peek *next;
	evutil_socket_t fd;
	struct event *ev;
	int preamble;			/* the first byte was 'P' */
	unsigned have;
	uint8_t buf[MIGRATE_PREAMBLE_LEN];
	char host[INET6_ADDRSTRLEN];
};
static struct peek *peeks;
static unsigned nr_peeks;

static void peek_free(struct peek *p, int close_fd)
{
	struct peek **pp;

	for (pp = &peeks; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	nr_peeks--;
	event_free(p->ev);
	if (close_fd)
		close(p->fd);
	free(p);
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A whole preamble: hand the socket to the move it names, or close it. */
static void peek_preamble(struct peek *p)
{
	uint8_t id[MIGRATE_ID_LEN];
	char why[200], idhex[2 * MIGRATE_ID_LEN + 1], msg[16 + 2 * CTL_DIRECT_TOKEN_LEN];
	struct mig_in *mi;

	if (migrate_preamble_parse(p->buf, id, why, sizeof why) < 0) {
		dlog("peer %s: direct connection: bad preamble (%s), closed", p->host, why);
		peek_free(p, 1);
		return;
	}
	hex_of(id, sizeof id, idhex);
	for (mi = incoming; mi; mi = mi->next)
		if (mi->direct && mi->phase == MI_DIRECT && mi->g && mi->g->pid > 0 && !mi->doomed &&
		    !memcmp(mi->bin_id, id, sizeof id))
			break;
	if (!mi) {
		dlog("peer %s: direct connection for move %s, which waits for none here (unknown, "
		     "over or already connected): closed", p->host, idhex);
		peek_free(p, 1);
		return;
	}
	memcpy(msg, "direct ", 7);
	hex_of(mi->token, sizeof mi->token, msg + 7);
	if (guest_cmd_direct(mi->g, msg, p->fd, why, sizeof why) < 0) {
		dlog("peer %s: direct connection for move %s: %s: closed", p->host, idhex, why);
		peek_free(p, 1);
		return;
	}
	/* once only: the receiver owns it now, and checks the token itself */
	mi->phase = MI_STREAM;
	dlog("peer %s: direct connection for move %s handed to %s's receiver (pid %d), which "
	     "checks its TLS certificate and the move's token", p->host, idhex, mi->g->name,
	     (int)mi->g->pid);
	peek_free(p, 1);
}

static void peek_read(evutil_socket_t fd, short what, void *arg)
{
	struct peek *p = arg;
	struct daemon *d = p->d;
	char host[INET6_ADDRSTRLEN];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		dlog("peer %s: nothing %s within %d s, closing", p->host,
		     p->preamble ? "but part of a preamble" : "sent", PEER_HANDSHAKE_S);
		peek_free(p, 1);
		return;
	}
	if (!p->preamble) {
		n = recv(fd, p->buf, 1, MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			dlog("peer %s: closed before sending anything", p->host);
			peek_free(p, 1);
			return;
		}
		if (p->buf[0] != 'P') {
			/* TLS (or garbage the TLS handshake refuses): the link's path */
			snprintf(host, sizeof host, "%s", p->host);
			peek_free(p, 0);
			mi_tls_accept(d, fd, host);
			return;
		}
		p->preamble = 1;
	}
	n = recv(fd, p->buf + p->have, MIGRATE_PREAMBLE_LEN - p->have, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		dlog("peer %s: direct connection closed after %u bytes of its preamble", p->host,
		     p->have);
		peek_free(p, 1);
		return;
	}
	p->have += (unsigned)n;
	if (p->have == MIGRATE_PREAMBLE_LEN)
		peek_preamble(p);
}

void mig_in_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		   void *arg)
{
	struct timeval to = { PEER_HANDSHAKE_S, 0 };
	struct daemon *d = arg;
	struct peek *p;
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
	if (nr_peeks >= MAX_INCOMING) {
		dlog("peer %s: refused, already %u connections not yet sorted", host, nr_peeks);
		close(fd);
		return;
	}
	no_delay(fd);
	evutil_make_socket_nonblocking(fd);
	p = calloc(1, sizeof *p);
	if (!p || !(p->ev = event_new(d->base, fd, EV_READ | EV_PERSIST, peek_read, p))) {
		free(p);
		close(fd);
		return;
	}
	p->d = d;
	p->fd = fd;
	snprintf(p->host, sizeof p->host, "%s", host);
	p->next = peeks;
	peeks = p;
	nr_peeks++;
	event_add(p->ev, &to);
}

void mig_in_event(struct guest *g, const char *verb, const char *rest)
{
	Pvmigrate__Ctl__PeerResponse rsp = PVMIGRATE__CTL__PEER_RESPONSE__INIT;
	Pvmigrate__Ctl__PeerAccept acc = PVMIGRATE__CTL__PEER_ACCEPT__INIT;
	struct mig_in *mi = g->mig_in;
	uint8_t *f;
	size_t flen;
	int fd, kill_now = 0;

	if (!strcmp(verb, "committed")) {
		/* GO reached it.  Unless we decided otherwise already (the link
		 * ended first, or a query came: it is being killed), the guest
		 * is ours from here: "run", and its OK may go to the source. */
		if (!mi || mi->doomed || !mi->rec || mi->rec->st != R_INCOMING)
			return;
		mi->committed = 1;
		mi->rec->st = R_COMMITTED;
		dlog("%s: committed (GO came): it runs here", g->name);
		if (guest_cmd(g, "run") < 0)
			dlog("%s: cannot tell the receiver to run (it is going away)", g->name);
		if (mi->relay)
			relay_release(mi->relay, 1);
		return;
	}
	if (!strcmp(verb, "received")) {
		if (!mi || mi->doomed || !mi->committed)
			return; /* it is being killed (and never got "run") */
		dlog("%s: received and running", g->name);
		g->state = G_RUNNING;
		g->t_start = now_ns();
		mi->received = 1;
		rec_set(mi, R_RUNNING);
		if (mi->rec)
			mi->rec->pid = g->pid;
		if (!mi->relay && !mi->settling && (!mi->direct || !mi->peer))
			mi_free(mi); /* the link ended after the commit */
		return;
	}
	if (!strcmp(verb, "resumed")) {
		/* across daemons the source's daemon has answered its client
		 * already: the real stop is only logged here */
		if (rest[0] >= '0' && rest[0] <= '9')
			dlog("%s: ran again %.3f ms after its OK", g->name, strtoull(rest, NULL, 10) / 1e6);
		else
			dlog("%s: when it ran again after its OK is not known", g->name);
		return;
	}
	if (!strcmp(verb, "receive-failed")) {
		snprintf(g->detail, sizeof g->detail, "%s", rest);
		dlog("%s: receiving failed: %s", g->name, rest);
		rec_set(mi, R_ENDED);
		if (mi)
			mi->failed = 1;
		if (mi && mi->relay)
			relay_release(mi->relay, 1); /* its ERROR tells the source why */
		return; /* pvguest exits; exited() forgets the guest */
	}
	/* ready: the VM exists and waits; now the source may freeze */
	if (!mi || mi->phase != MI_SPAWNED)
		return;
	switch (fault_hit(&mi->fault, FSTEP_ACCEPT)) {
	case FAULT_CUT:
		dlog("TEST FAULT: peer %s: cutting the link instead of accepting", mi->addr);
		mi_free(mi); /* the receiver sees its stream end and exits */
		return;
	case FAULT_KILL_DAEMON:
		fault_kill_daemon(&mi->fault);
		break;
	case FAULT_KILL_TARGET:
		kill_now = 1;
		break;
	case FAULT_CORRUPT:
		rsp.has_protocol_major = rsp.has_protocol_minor = 1;
		rsp.protocol_major = CTL_PROTO_MAJOR;
		rsp.protocol_minor = CTL_PROTO_MINOR;
		acc.guest = g->name;
		rsp.body_case = PVMIGRATE__CTL__PEER_RESPONSE__BODY_ACCEPT;
		rsp.accept = &acc;
		f = ctl_frame_pack(&rsp.base, &flen);
		if (f) {
			dlog("TEST FAULT: peer %s: sending a corrupted accept", mi->addr);
			fault_corrupt_protobuf(f + CTL_FRAME_HDR, flen - CTL_FRAME_HDR);
			bufferevent_write(mi->peer, f, flen);
			free(f);
		}
		goto relay;
	default:
		break;
	}
	rsp.has_protocol_major = rsp.has_protocol_minor = 1;
	rsp.protocol_major = CTL_PROTO_MAJOR;
	rsp.protocol_minor = CTL_PROTO_MINOR;
	acc.guest = g->name;
	acc.migration_id = mi->rec ? mi->rec->id : NULL;
	if (mi->direct) {
		acc.has_direct_token = 1;
		acc.direct_token.data = mi->token;
		acc.direct_token.len = sizeof mi->token;
	}
	rsp.body_case = PVMIGRATE__CTL__PEER_RESPONSE__BODY_ACCEPT;
	rsp.accept = &acc;
	send_frame(mi->peer, &rsp.base);
	if (mi->direct) {
		/* the link stays (its end before the commit dooms the receiver);
		 * the stream comes on the source's own connection (mig_in_accept) */
		mi->phase = MI_DIRECT;
		bufferevent_set_timeouts(mi->peer, NULL, NULL);
		bufferevent_setcb(mi->peer, mi_link_read, NULL, mi_link_event, mi);
		bufferevent_enable(mi->peer, EV_READ);
		dlog("%s: accepted on the direct data path; waiting for the source's connection",
		     g->name);
		if (kill_now)
			mi_kill(mi);
		return;
	}
relay:
	fd = mi->local_fd;
	mi->local_fd = -1;
	mi->relay = relay_start(mi->d, mi->peer, fd, RELAY_TARGET, &mi->fault, mi_relay_done,
				mi_kill, mi);
	if (!mi->relay) {
		close(fd);
		mi_free(mi);
		return;
	}
	mi->peer = NULL;
	mi->phase = MI_STREAM;
	if (kill_now)
		mi_kill(mi);
}

void mig_in_gone(struct guest *g)
{
	struct mig_in *mi = g->mig_in;

	mi->g = NULL;
	g->mig_in = NULL;
	rec_set(mi, R_ENDED); /* ended before it ran: never will */
	if (mi->phase == MI_SPAWNED)
		mi_refuse(mi, CTL_ERR_FAILED, "the target could not prepare the guest: %s",
			  g->detail[0] ? g->detail : "its runner exited");
	else if (mi->relay)
		/* a reply still held back is not forwarded: ended without running
		 * means the source must keep its copy (done() frees mi) */
		relay_release(mi->relay, 0);
	else
		mi_free(mi); /* killed after the link ended, or committed and died before it ran */
}

void mig_in_shutdown(void)
{
	struct mig_rec *r;

	while (peeks)
		peek_free(peeks, 1);
	while (incoming)
		mi_free(incoming);
	while ((r = records)) {
		records = r->next;
		free(r);
	}
}
