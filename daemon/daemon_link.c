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

/*
 * Buffered bytes one way before reading stops.  Small: whatever sits in
 * the relays when the source freezes crosses during the downtime
 * (docs/BENCHMARKS.md, "Where the cross-daemon time goes").
 */
#define RELAY_HIGH (512u << 10)
/* libevent reads 4 KiB per callback unless told otherwise: one event-loop
 * turn per 4 KiB was most of a relay's cost. */
#define RELAY_CHUNK (256u << 10)

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

enum { D_OUT, D_IN }; /* local -> peer, peer -> local */

#define REPLY_MAGIC 0x524d5650u /* "PVMR": migrate_conn.c's reply header */
#define MIGRATE_REPLY_READY_CODE 2u /* migrate.h: MIGRATE_REPLY_READY (GO is 3) */
#define NO_CORRUPT UINT64_MAX

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The migrate reply travels local -> peer on the target, the other way on
 * the source; the stream the opposite way. */
static int is_reply(const struct relay *r, int dir)
{
	return (r->role == RELAY_TARGET) == (dir == D_OUT);
}

/* Stream records are followed only for a test fault (armed, or fired:
 * a corruption may still be on its way); the reply always. */
static int tracked(const struct relay *r, int dir)
{
	return is_reply(r, dir) || (r->fault && (r->fault->action != FAULT_NONE || r->fault->seen));
}

/* What migrate_reply_recv() accepts as an OK. */
static int reply_is_ok(const uint8_t *h)
{
	return get32(h) == REPLY_MAGIC && get32(h + 4) == 0 && get32(h + 8) <= 512 &&
	       get32(h + 12) == 0;
}

/* The target's OK left once all of it was written to the link: noted
 * whenever the link's output runs dry, and before the link goes. */
static void note_reply_out(struct relay *r)
{
	if (r->role == RELAY_TARGET && r->peer && r->track[D_OUT].complete && r->reply_ok &&
	    !r->holding && !evbuffer_get_length(r->held) &&
	    !evbuffer_get_length(bufferevent_get_output(r->peer)))
		r->reply_out = 1;
}

/*
 * Close a link whose last bytes must arrive.  close() with unread input
 * sends a RST instead of a FIN, and the kernel then drops what it has not
 * sent yet (small writes can wait a moment, TCP autocorking): the target's
 * ERROR or OK would be lost whenever the source was still streaming.  So:
 * FIN after the last byte, then read and drop until the peer closes too,
 * or LINGER_S pass.
 */
#define LINGER_S 5

static void linger_read(struct bufferevent *bev, void *arg)
{
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void link_close(struct bufferevent *bev)
{
	struct timeval to = { LINGER_S, 0 };

	if (evbuffer_get_length(bufferevent_get_output(bev)) ||
	    shutdown(bufferevent_getfd(bev), SHUT_WR) < 0) {
		bufferevent_free(bev);
		return;
	}
	linger_read(bev, NULL);
	bufferevent_setcb(bev, linger_read, NULL, linger_event, NULL);
	bufferevent_set_timeouts(bev, &to, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void relay_finish(struct relay *r, const char *why)
{
	note_reply_out(r);
	if (r->peer)
		link_close(r->peer);
	if (r->local)
		bufferevent_free(r->local);
	r->peer = r->local = NULL;
	if (r->done)
		r->done(r->ctx, why);
	evbuffer_free(r->held);
	free(r);
}

static void relay_settle(struct relay *r);

/* Flush what one side still has to write, then finish; or finish now. */
static void relay_drain_to(struct relay *r, struct bufferevent *bev)
{
	if (!bev || evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		relay_finish(r, r->end_why[0] ? r->end_why : NULL);
		return;
	}
	r->draining = 1;
	bufferevent_disable(bev, EV_READ);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
}

/* Test fault "cut": the link closes here; what the local side was given
 * still reaches it. */
static void relay_cut(struct relay *r, enum fault_step step)
{
	snprintf(r->end_why, sizeof r->end_why, "test fault: link cut at %s",
		 fault_step_name(step));
	dlog("TEST FAULT: cutting the link at %s", fault_step_name(step));
	if (r->peer)
		bufferevent_free(r->peer);
	r->peer = NULL;
	evbuffer_drain(r->held, evbuffer_get_length(r->held));
	relay_drain_to(r, r->local);
}

/* A record's (or the reply's) 16-byte header is complete: name the step,
 * let the test fault act, pass the header on.  -1: the relay is gone. */
static int relay_header(struct relay *r, int dir, struct evbuffer *out)
{
	struct relay_track *t = &r->track[dir];
	/* the reply's messages, and the source's GO after END, have a reply's
	 * header: magic "PVMR", code, u32 length (no padding) */
	int go = !is_reply(r, dir) && get32(t->hdr) == REPLY_MAGIC;
	int reply = is_reply(r, dir) || go;
	int ready = is_reply(r, dir) && get32(t->hdr) == REPLY_MAGIC &&
		    get32(t->hdr + 4) == MIGRATE_REPLY_READY_CODE;
	uint64_t len = reply ? get32(t->hdr + 8) : get32(t->hdr + 8) | (uint64_t)get32(t->hdr + 12) << 32;
	enum fault_step step = go ? FSTEP_GO : ready ? FSTEP_READY
			     : reply ? FSTEP_REPLY : fault_step_of_record(get32(t->hdr));
	int ok_before = reply_is_ok(t->hdr);

	t->final = is_reply(r, dir) && !ready;
	/* the target's READY goes at once; only its last word waits */
	t->pass = ready && r->role == RELAY_TARGET && !r->doomed;
	if (t->pass && r->peer)
		out = bufferevent_get_output(r->peer);

	switch (fault_hit(r->fault, step)) {
	case FAULT_CUT:
		relay_cut(r, step);
		return -1;
	case FAULT_CORRUPT:
		/* what the reader must refuse: the reply's magic, the stream
		 * header's magic, a PAGE_BATCH's reserved word, else the
		 * record's flags, which must be 0 */
		if (reply)
			t->hdr[0] ^= 0xff;
		else if (step == FSTEP_HEADER && len)
			t->corrupt_at = 0;
		else if (step == FSTEP_PAGES && len > 4)
			t->corrupt_at = 4;
		else
			t->hdr[4] ^= 0xff;
		dlog("TEST FAULT: corrupting %s", fault_step_name(step));
		break;
	case FAULT_KILL_TARGET:
		if (r->kill)
			r->kill(r->ctx);
		/* its reply, if this is it, never goes out: the process is dead */
		if (is_reply(r, dir)) {
			r->holding = r->doomed = 1;
			t->pass = 0;
			out = r->held;
		}
		break;
	case FAULT_KILL_DAEMON:
		fault_kill_daemon(r->fault);
		break;
	default:
		break;
	}
	if (reply) {
		/* the source judges what came off the link, the target what it sends */
		if (t->final)
			r->reply_ok = r->role == RELAY_SOURCE ? ok_before : reply_is_ok(t->hdr);
		if (len > 512)
			t->off = 1; /* garbled: the reader refuses it anyway */
	} else if (len > FAULT_MAX_RECORD) {
		t->off = 1;
	}
	evbuffer_add(out, t->hdr, sizeof t->hdr);
	*(dir == D_OUT ? &r->to_peer : &r->to_local) += sizeof t->hdr;
	t->have = 0;
	t->pos = 0;
	t->left = reply ? len : (len + 7) & ~7ull;
	if (!t->left) {
		t->complete = t->final;
		t->pass = 0; /* whatever follows is held again */
	}
	return 0;
}

/* Pass what `in` holds on in direction dir, following records.  -1: the
 * relay is gone (a test fault cut the link). */
static int relay_pass(struct relay *r, int dir, struct evbuffer *in)
{
	struct bufferevent *dst = dir == D_OUT ? r->peer : r->local;
	struct relay_track *t = &r->track[dir];
	uint64_t *count = dir == D_OUT ? &r->to_peer : &r->to_local;
	struct evbuffer *out;
	size_t n, k;
	uint8_t b;

	if ((!dst && !(dir == D_OUT && r->holding)) || r->draining) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return 0;
	}
	while ((n = evbuffer_get_length(in))) {
		/* the target's last word waits until its pvguest committed */
		out = dir == D_OUT && r->holding && !(t->pass && dst) ? r->held
								     : bufferevent_get_output(dst);
		if (t->off || t->complete || !tracked(r, dir)) {
			*count += n;
			evbuffer_add_buffer(out, in);
			break;
		}
		if (!t->left) {
			k = sizeof t->hdr - t->have < n ? sizeof t->hdr - t->have : n;
			evbuffer_remove(in, t->hdr + t->have, k);
			t->have += (unsigned)k;
			if (t->have < sizeof t->hdr)
				break;
			if (relay_header(r, dir, out) < 0)
				return -1;
			continue;
		}
		k = t->left < n ? (size_t)t->left : n;
		if (t->corrupt_at != NO_CORRUPT && t->corrupt_at >= t->pos &&
		    t->corrupt_at < t->pos + k) {
			if (t->corrupt_at > t->pos) {
				k = (size_t)(t->corrupt_at - t->pos);
			} else {
				evbuffer_remove(in, &b, 1);
				b ^= 0xff;
				evbuffer_add(out, &b, 1);
				t->corrupt_at = NO_CORRUPT;
				k = 0;
				t->pos++;
				t->left--;
				++*count;
			}
		}
		if (k)
			evbuffer_remove_buffer(in, out, k);
		t->pos += k;
		t->left -= k;
		*count += k;
		if (!t->left) {
			t->corrupt_at = NO_CORRUPT;
			if (t->final)
				t->complete = 1;
			t->pass = 0;
		}
	}
	return 0;
}

static void relay_read(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int dir = bev == r->local ? D_OUT : D_IN;
	struct bufferevent *dst = dir == D_OUT ? r->peer : r->local;

	if (relay_pass(r, dir, bufferevent_get_input(bev)) < 0)
		return;
	/* back-pressure: the fast side waits for the slow one */
	if (dst && evbuffer_get_length(bufferevent_get_output(dst)) >= RELAY_HIGH)
		bufferevent_disable(bev, EV_READ);
}

static void relay_write(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *src = bev == r->peer ? r->local : r->peer;

	if (bev == r->peer)
		note_reply_out(r);
	if (r->draining) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			relay_finish(r, r->end_why[0] ? r->end_why : NULL);
		return;
	}
	if (src && evbuffer_get_length(bufferevent_get_output(bev)) < RELAY_HIGH)
		bufferevent_enable(src, EV_READ);
}

static void relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int dir = bev == r->local ? D_OUT : D_IN, rc;
	struct bufferevent *other;
	struct evbuffer *rest;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		snprintf(r->end_why, sizeof r->end_why, "%s link: %s",
			 bev == r->peer ? "peer" : "guest process",
			 bev == r->peer ? ssl_error(bev) : strerror(errno));
	/* what arrived before the end still goes through, and from the guest
	 * process that is also what its socket still holds: a write error
	 * (it closed: EPIPE) comes before we read the reply it wrote, which
	 * is the reason the source must hear.  (A bufferevent's input takes
	 * no reads but its own: hence the second buffer.) */
	rest = evbuffer_new();
	if (!rest) {
		snprintf(r->end_why, sizeof r->end_why, "out of memory");
		relay_finish(r, r->end_why);
		return;
	}
	evbuffer_add_buffer(rest, bufferevent_get_input(bev));
	if (bev == r->local)
		while (evbuffer_read(rest, bufferevent_getfd(bev), 65536) > 0)
			;
	rc = relay_pass(r, dir, rest);
	evbuffer_free(rest);
	if (rc < 0)
		return;
	if (bev == r->peer)
		note_reply_out(r);
	if (!r->end_why[0] && bev == r->peer && r->role == RELAY_SOURCE && !r->track[D_IN].complete)
		snprintf(r->end_why, sizeof r->end_why, "peer closed before its reply");
	bufferevent_free(bev);
	if (bev == r->peer) {
		r->peer = NULL;
		other = r->local;
	} else {
		r->local = NULL;
		other = r->peer;
		/* the target's pvguest closed its end; its verdict is still due */
		if (r->holding && other) {
			r->local_gone = 1;
			if (r->doomed)
				relay_settle(r);
			return;
		}
	}
	relay_drain_to(r, other);
}

struct relay *relay_start(struct daemon *d, struct bufferevent *peer, int local_fd,
			  enum relay_role role, struct fault *fault, relay_done_fn done,
			  relay_kill_fn kill, void *ctx)
{
	struct relay *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->held = evbuffer_new();
	r->local = r->held ? bufferevent_socket_new(d->base, local_fd, BEV_OPT_CLOSE_ON_FREE)
			   : NULL;
	if (!r->local) {
		if (r->held)
			evbuffer_free(r->held);
		free(r);
		return NULL;
	}
	r->peer = peer;
	r->role = role;
	r->fault = fault;
	r->holding = role == RELAY_TARGET;
	r->track[D_OUT].corrupt_at = r->track[D_IN].corrupt_at = NO_CORRUPT;
	r->done = done;
	r->kill = kill;
	r->ctx = ctx;
	bufferevent_set_timeouts(peer, NULL, NULL);
	bufferevent_setcb(r->peer, relay_read, relay_write, relay_event, r);
	bufferevent_setcb(r->local, relay_read, relay_write, relay_event, r);
	bufferevent_setwatermark(r->peer, EV_WRITE, RELAY_HIGH / 2, 0);
	bufferevent_setwatermark(r->local, EV_WRITE, RELAY_HIGH / 2, 0);
	bufferevent_set_max_single_read(r->peer, RELAY_CHUNK);
	bufferevent_set_max_single_read(r->local, RELAY_CHUNK);
	bufferevent_set_max_single_write(r->peer, RELAY_CHUNK);
	bufferevent_set_max_single_write(r->local, RELAY_CHUNK);
	bufferevent_enable(r->peer, EV_READ | EV_WRITE);
	bufferevent_enable(r->local, EV_READ | EV_WRITE);
	/* anything the peer sent along with its handshake */
	if (evbuffer_get_length(bufferevent_get_input(peer)))
		relay_read(peer, r);
	return r;
}

/*
 * The receiver will never run the guest (it ended without saying it does,
 * or a test fault killed it).  Once all it wrote is in, an ERROR still goes
 * to the source, which resumes either way but hears why; an OK never does.
 */
static void relay_settle(struct relay *r)
{
	if (r->local)
		return; /* more may come: relay_event() settles when it ends */
	if (r->peer && !r->reply_ok && evbuffer_get_length(r->held)) {
		r->holding = 0;
		evbuffer_add_buffer(bufferevent_get_output(r->peer), r->held);
		relay_drain_to(r, r->peer);
		return;
	}
	snprintf(r->end_why, sizeof r->end_why, "the receiving pvguest ended before it ran the "
		 "guest; no OK of its goes to the source");
	relay_finish(r, r->end_why);
}

void relay_release(struct relay *r, int forward)
{
	if (!r || !r->holding)
		return;
	if (!forward || r->doomed) {
		r->doomed = 1;
		relay_settle(r);
		return;
	}
	r->holding = 0;
	if (!r->peer) /* the link is gone: the relay ends once the local side is flushed */
		return;
	evbuffer_add_buffer(bufferevent_get_output(r->peer), r->held);
	if (r->local_gone)
		relay_drain_to(r, r->peer);
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
	evbuffer_free(r->held);
	free(r);
}

void relay_detach(struct relay *r)
{
	if (!r)
		return;
	r->done = NULL;
	r->kill = NULL;
	r->ctx = NULL;
	r->fault = NULL; /* its owner's, going away */
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
