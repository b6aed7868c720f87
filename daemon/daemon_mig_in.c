/* daemon_mig_in.c: the target side of a migration: accept a certified peer, check its request, start a receiving pvguest, then relay */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void mi_relay_done(void *ctx, const char *why)
{
	struct mig_in *mi = ctx;

	mi->relay = NULL;
	if (why)
		dlog("peer %s: migration link: %s", mi->addr, why);
	mi_free(mi);
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
	mi->g = guest_spawn_receiver(d, name, pm->to, pm->vcpus, pm->memory,
				     pm->image ? pm->image : "", sv[1], why, sizeof why);
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
	int fd;

	if (!strcmp(verb, "received")) {
		dlog("%s: received and running", g->name);
		g->state = G_RUNNING;
		g->t_start = now_ns();
		return;
	}
	if (!strcmp(verb, "receive-failed")) {
		snprintf(g->detail, sizeof g->detail, "%s", rest);
		dlog("%s: receiving failed: %s", g->name, rest);
		return; /* pvguest exits; exited() forgets the guest */
	}
	/* ready: the VM exists and waits; now the source may freeze */
	if (!mi || mi->phase != MI_SPAWNED)
		return;
	rsp.has_protocol_major = rsp.has_protocol_minor = 1;
	rsp.protocol_major = CTL_PROTO_MAJOR;
	rsp.protocol_minor = CTL_PROTO_MINOR;
	acc.guest = g->name;
	rsp.body_case = PVMIGRATE__CTL__PEER_RESPONSE__BODY_ACCEPT;
	rsp.accept = &acc;
	send_frame(mi->peer, &rsp.base);
	fd = mi->local_fd;
	mi->local_fd = -1;
	mi->relay = relay_start(mi->d, mi->peer, fd, mi_relay_done, mi);
	if (!mi->relay) {
		close(fd);
		mi_free(mi);
		return;
	}
	mi->peer = NULL;
	mi->phase = MI_STREAM;
}

void mig_in_gone(struct guest *g)
{
	struct mig_in *mi = g->mig_in;

	mi->g = NULL;
	g->mig_in = NULL;
	if (mi->phase == MI_SPAWNED)
		mi_refuse(mi, CTL_ERR_FAILED, "the target could not prepare the guest: %s",
			  g->detail[0] ? g->detail : "its runner exited");
	/* streaming: the relay ends when the peer or the socket does */
}

void mig_in_shutdown(void)
{
	while (incoming)
		mi_free(incoming);
}
