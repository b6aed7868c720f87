/* daemon_mig_in.c: the target side of a migration: accept a certified peer, check its request, start a receiving pvguest, then relay */
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
#include <openssl/x509v3.h>

#include "daemon_link.h"

#define MAX_INCOMING 8 /* links at once, handshakes included */

struct mig_in {
	struct daemon *d;
	struct mig_in *next;
	struct guest *g;
	char addr[INET6_ADDRSTRLEN + 8];
	enum { MI_TLS, MI_REQUEST, MI_SPAWNED, MI_STREAM } phase;
	struct bufferevent *peer;
	int local_fd;			/* our end of pvguest's stream, until the relay */
	struct relay *relay;
	struct fault fault;		/* test hook (fault_inject.h), usually none */
	int kill_spawned;		/* test fault kill-target@offer */
	int doomed;			/* our OK never left: the receiver is being killed */
	int failed;			/* the receiver said receive-failed: it exits by itself */
};

static struct mig_in *incoming;
static unsigned nr_incoming;

static void mi_free(struct mig_in *mi)
{
	struct mig_in **pp;

	for (pp = &incoming; *pp; pp = &(*pp)->next)
		if (*pp == mi) {
			*pp = mi->next;
			break;
		}
	nr_incoming--;
	if (mi->peer)
		bufferevent_free(mi->peer);
	relay_drop(mi->relay);
	if (mi->local_fd >= 0)
		close(mi->local_fd);
	if (mi->g)
		mi->g->mig_in = NULL;
	free(mi);
}

/*
 * The link is over.  The source destroys its copy only on our OK; if no
 * whole, well-formed OK of ours reached the link, the source resumes its
 * copy (or never froze it), so ours must not run, whatever our pvguest
 * thinks: the link cut while the reply waited, the reply garbled, the
 * source gone before it.  A receiver that got nothing exits by itself;
 * one that has sent its OK into our relay would run on.
 */
static void mi_relay_done(void *ctx, const char *why)
{
	struct mig_in *mi = ctx;
	int sent = mi->relay->reply_out;

	mi->relay = NULL;
	if (why)
		dlog("peer %s: migration link: %s", mi->addr, why);
	if (sent || mi->failed || !mi->g || mi->g->pid <= 0) {
		mi_free(mi);
		return;
	}
	dlog("%s: the link ended before an OK of ours went out, so %s keeps the guest: "
	     "ending our receiver (pid %d)", mi->g->name, mi->addr, (int)mi->g->pid);
	snprintf(mi->g->detail, sizeof mi->g->detail,
		 "not taken over: the source kept the guest (no confirmation reached it)");
	mi->g->state = G_INCOMING; /* forgotten when it exits, like any failed arrival */
	mi->doomed = 1;
	kill(mi->g->pid, SIGKILL);
	/* mi lives until the receiver is reaped (mig_in_gone) */
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

static void mi_request(struct mig_in *mi, const Pvmigrate__Ctl__PeerMigrate *pm)
{
	struct daemon *d = mi->d;
	char avail[128], namebuf[CTL_NAME_MAX + 1], why[300], mark[200];
	const char *name;
	int sv[2];

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
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		mi_refuse(mi, CTL_ERR_FAILED, "socketpair: %s", strerror(errno));
		return;
	}
	/* with a NIC: our own connection to what the spec names, opened now,
	 * before the source freezes anything (pvmigrated(8), "NIC") */
	mi->g = guest_spawn_receiver(d, name, pm->to, pm->vcpus, pm->memory,
				     pm->image ? pm->image : "", pm->net ? pm->net : "", sv[1], why,
				     sizeof why);
	close(sv[1]);
	if (!mi->g) {
		close(sv[0]);
		mi_refuse(mi, CTL_ERR_FAILED, "cannot start a receiver: %s", why);
		return;
	}
	evutil_make_socket_nonblocking(sv[0]);
	mi->local_fd = sv[0];
	mi->g->mig_in = mi;
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
	dlog("peer %s: asks to send %s (%s -> %s, %u vCPUs, %llu MiB)", mi->addr,
	     req->migrate->guest, req->migrate->from, req->migrate->to, req->migrate->vcpus,
	     (unsigned long long)(req->migrate->memory >> 20));
	mi_request(mi, req->migrate);
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

void mig_in_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		   void *arg)
{
	struct daemon *d = arg;
	struct timeval to = { PEER_HANDSHAKE_S, 0 };
	struct mig_in *mi;
	SSL *ssl;
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
	if (nr_incoming >= MAX_INCOMING) {
		dlog("peer %s: refused, already %u incoming links", host, nr_incoming);
		close(fd);
		return;
	}
	no_delay(fd);
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

void mig_in_event(struct guest *g, const char *verb, const char *rest)
{
	Pvmigrate__Ctl__PeerResponse rsp = PVMIGRATE__CTL__PEER_RESPONSE__INIT;
	Pvmigrate__Ctl__PeerAccept acc = PVMIGRATE__CTL__PEER_ACCEPT__INIT;
	struct mig_in *mi = g->mig_in;
	uint8_t *f;
	size_t flen;
	int fd, kill_now = 0;

	if (!strcmp(verb, "received")) {
		if (mi && mi->doomed)
			return; /* its OK never left: it is being killed */
		dlog("%s: received and running", g->name);
		g->state = G_RUNNING;
		g->t_start = now_ns();
		/* only now may its OK go to the source (relay_release) */
		if (mi && mi->relay)
			relay_release(mi->relay, 1);
		return;
	}
	if (!strcmp(verb, "receive-failed")) {
		snprintf(g->detail, sizeof g->detail, "%s", rest);
		dlog("%s: receiving failed: %s", g->name, rest);
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
	rsp.body_case = PVMIGRATE__CTL__PEER_RESPONSE__BODY_ACCEPT;
	rsp.accept = &acc;
	send_frame(mi->peer, &rsp.base);
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
	if (mi->phase == MI_SPAWNED)
		mi_refuse(mi, CTL_ERR_FAILED, "the target could not prepare the guest: %s",
			  g->detail[0] ? g->detail : "its runner exited");
	else if (mi->relay)
		/* a reply still held back is not forwarded: ended without running
		 * means the source must keep its copy (done() frees mi) */
		relay_release(mi->relay, 0);
	else if (mi->doomed)
		mi_free(mi);
}

void mig_in_shutdown(void)
{
	while (incoming)
		mi_free(incoming);
}
