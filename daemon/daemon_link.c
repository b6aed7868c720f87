/* daemon_link.c: the TLS link between daemons: contexts and listener, error text, frames, and the relay that carries a migration stream */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <event2/dns.h>
#include <openssl/err.h>

#include "daemon_link.h"

#define RELAY_HIGH (4u << 20)	/* buffered bytes one way before reading stops */

/* Every queued TLS error, oldest first (the first is usually the cause). */
const char *ssl_error(struct bufferevent *bev)
{
	static char buf[512];
	size_t used = 0;
	unsigned long e;
	char one[200];

	buf[0] = '\0';
	for (;;) {
		e = bev ? bufferevent_get_openssl_error(bev) : 0;
		if (!e)
			e = ERR_get_error();
		if (!e)
			break;
		/* library 0: libevent's own codes for a plain EOF or close */
		if (ERR_GET_LIB(e) == 0)
			continue;
		ERR_error_string_n(e, one, sizeof one);
		if (used < sizeof buf)
			used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? "; " : "",
						 one);
	}
	if (!buf[0])
		return errno ? strerror(errno) : "connection closed";
	return buf;
}

/* Small records (the target's reply) must not wait for Nagle's timer:
 * it would be downtime. */
void no_delay(evutil_socket_t fd)
{
	int one = 1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- the relay ---- */

static struct bufferevent *relay_other(struct relay *r, struct bufferevent *bev)
{
	return bev == r->peer ? r->local : r->peer;
}

static void relay_finish(struct relay *r, const char *why)
{
	if (r->peer)
		bufferevent_free(r->peer);
	if (r->local)
		bufferevent_free(r->local);
	r->peer = r->local = NULL;
	if (r->done)
		r->done(r->ctx, why);
	free(r);
}

static void relay_read(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *dst = relay_other(r, bev);
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	if (!dst || r->draining) {
		evbuffer_drain(in, n);
		return;
	}
	*(bev == r->local ? &r->to_peer : &r->to_local) += n;
	evbuffer_add_buffer(bufferevent_get_output(dst), in);
	/* back-pressure: the fast side waits for the slow one */
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= RELAY_HIGH)
		bufferevent_disable(bev, EV_READ);
}

static void relay_write(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *src = relay_other(r, bev);

	if (r->draining) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			relay_finish(r, NULL);
		return;
	}
	if (src && evbuffer_get_length(bufferevent_get_output(bev)) < RELAY_HIGH)
		bufferevent_enable(src, EV_READ);
}

static void relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other = relay_other(r, bev);
	char why[300];

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		snprintf(why, sizeof why, "%s link: %s", bev == r->peer ? "peer" : "guest process",
			 bev == r->peer ? ssl_error(bev) : strerror(errno));
	else
		snprintf(why, sizeof why, "%s closed", bev == r->peer ? "peer" : "guest process");
	/* what arrived before the end still goes through */
	if (other && !r->draining) {
		struct evbuffer *in = bufferevent_get_input(bev);

		*(bev == r->local ? &r->to_peer : &r->to_local) += evbuffer_get_length(in);
		evbuffer_add_buffer(bufferevent_get_output(other), in);
	}
	bufferevent_free(bev);
	if (bev == r->peer)
		r->peer = NULL;
	else
		r->local = NULL;
	if (!other || evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		relay_finish(r, (what & BEV_EVENT_ERROR) ? why : NULL);
		return;
	}
	r->draining = 1;
	bufferevent_disable(other, EV_READ);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
}

/* Relay between an established peer link and a local stream socket. */
struct relay *relay_start(struct daemon *d, struct bufferevent *peer, int local_fd,
				 relay_done_fn done, void *ctx)
{
	struct relay *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->local = bufferevent_socket_new(d->base, local_fd, BEV_OPT_CLOSE_ON_FREE);
	if (!r->local) {
		free(r);
		return NULL;
	}
	r->peer = peer;
	r->done = done;
	r->ctx = ctx;
	bufferevent_set_timeouts(peer, NULL, NULL);
	bufferevent_setcb(r->peer, relay_read, relay_write, relay_event, r);
	bufferevent_setcb(r->local, relay_read, relay_write, relay_event, r);
	bufferevent_setwatermark(r->peer, EV_WRITE, RELAY_HIGH / 2, 0);
	bufferevent_setwatermark(r->local, EV_WRITE, RELAY_HIGH / 2, 0);
	bufferevent_enable(r->peer, EV_READ | EV_WRITE);
	bufferevent_enable(r->local, EV_READ | EV_WRITE);
	/* anything the peer sent along with its handshake */
	if (evbuffer_get_length(bufferevent_get_input(peer)))
		relay_read(peer, r);
	return r;
}

/* Abandon a relay without its callback (the owner is going away). */
void relay_drop(struct relay *r)
{
	if (!r)
		return;
	r->done = NULL;
	if (r->peer)
		bufferevent_free(r->peer);
	if (r->local)
		bufferevent_free(r->local);
	free(r);
}

/* ---- frames on the peer link ---- */

void send_frame(struct bufferevent *bev, const ProtobufCMessage *msg)
{
	size_t len;
	uint8_t *f = ctl_frame_pack(msg, &len);

	if (f) {
		bufferevent_write(bev, f, len);
		free(f);
	}
}

/* 1 with a frame's body copied out (free it), 0 for more bytes, -1 bad. */
int take_frame(struct bufferevent *bev, uint8_t **body, uint32_t *len, char *why,
		      size_t whylen)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[CTL_FRAME_HDR];
	int rc;

	if (evbuffer_get_length(in) < CTL_FRAME_HDR)
		return 0;
	evbuffer_copyout(in, hdr, sizeof hdr);
	rc = ctl_frame_peek(hdr, sizeof hdr, len, why, whylen);
	if (rc < 0)
		return -1;
	if (evbuffer_get_length(in) < CTL_FRAME_HDR + (size_t)*len)
		return 0;
	*body = malloc(*len ? *len : 1);
	if (!*body) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	evbuffer_drain(in, CTL_FRAME_HDR);
	evbuffer_remove(in, *body, *len);
	return 1;
}

void peer_error(struct bufferevent *bev, uint32_t code, const char *msg)
{
	Pvmigrate__Ctl__PeerResponse rsp = PVMIGRATE__CTL__PEER_RESPONSE__INIT;
	Pvmigrate__Ctl__Error err = PVMIGRATE__CTL__ERROR__INIT;

	rsp.has_protocol_major = rsp.has_protocol_minor = 1;
	rsp.protocol_major = CTL_PROTO_MAJOR;
	rsp.protocol_minor = CTL_PROTO_MINOR;
	err.has_code = 1;
	err.code = code;
	err.message = (char *)msg;
	rsp.body_case = PVMIGRATE__CTL__PEER_RESPONSE__BODY_ERROR;
	rsp.error = &err;
	send_frame(bev, &rsp.base);
}

/* ---- setup ---- */

static SSL_CTX *tls_ctx(const struct conf *c, int server, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
		snprintf(why, whylen, "tls_cert %s: %s", c->tls_cert, ssl_error(NULL));
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, whylen, "tls_key %s: %s", c->tls_key, ssl_error(NULL));
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1) {
		snprintf(why, whylen, "tls_ca %s: %s", c->tls_ca, ssl_error(NULL));
		goto out;
	}
	/* A peer that vanishes without close_notify is an EOF like any
	 * other: the migration stream has its own END record and reply, so a
	 * cut is noticed there, and the log is spared OpenSSL's complaint. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* mutual: both ends must show a certificate signed by tls_ca */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
fail:
	snprintf(why, whylen, "TLS: %s", ssl_error(NULL));
out:
	SSL_CTX_free(ctx);
	return NULL;
}

int peer_setup(struct daemon *d, char *why, size_t whylen)
{
	const struct conf *c = &d->conf;
	int have = !!c->tls_cert[0] + !!c->tls_key[0] + !!c->tls_ca[0];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	char host[256], port[8];
	unsigned p;
	int rc;

	if (have && have < 3) {
		snprintf(why, whylen, "tls_cert, tls_key and tls_ca go together (pvmigrate.conf(5))");
		return -1;
	}
	if (c->listen[0] && !have) {
		snprintf(why, whylen, "listen = %s needs tls_cert, tls_key and tls_ca: peers are only "
			 "ever spoken to over mutual TLS", c->listen);
		return -1;
	}
	d->dns = evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!d->dns)
		d->dns = evdns_base_new(d->base, 0); /* no resolv.conf: numeric hosts still work */
	if (!have)
		return 0;
	if (!(d->tls_server = tls_ctx(c, 1, why, whylen)) ||
	    !(d->tls_client = tls_ctx(c, 0, why, whylen)))
		return -1;
	if (!c->listen[0])
		return 0;
	if (!ctl_parse_dest(c->listen, host, sizeof host, &p)) {
		snprintf(why, whylen, "listen = %s: not HOST:PORT", c->listen);
		return -1;
	}
	snprintf(port, sizeof port, "%u", p);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(why, whylen, "listen = %s: %s", c->listen, gai_strerror(rc));
		return -1;
	}
	d->peer_listener = evconnlistener_new_bind(d->base, mig_in_accept, d,
						   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
						   LEV_OPT_REUSEABLE, 16, ai->ai_addr,
						   (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (!d->peer_listener) {
		snprintf(why, whylen, "listen on %s: %s", c->listen, strerror(errno));
		return -1;
	}
	snprintf(d->peer_listen, sizeof d->peer_listen, "%s", c->listen);
	return 0;
}

void peer_shutdown(struct daemon *d)
{
	mig_in_shutdown();
	if (d->peer_listener)
		evconnlistener_free(d->peer_listener);
	if (d->dns)
		evdns_base_free(d->dns, 0);
	SSL_CTX_free(d->tls_server);
	SSL_CTX_free(d->tls_client);
	d->peer_listener = NULL;
	d->dns = NULL;
	d->tls_server = d->tls_client = NULL;
}
