/* daemon_mig_out.c: the source side of a migration: refuse early, TLS to the target, its answer, then the guest process streams through the relay or, on the direct path, on its own connection */
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
#include <event2/dns.h>
#include <openssl/rand.h>

#include "daemon_link.h"
#include "guest_msg.h"

/*
 * Nothing is frozen until the target accepted: every refusal here and
 * every failure up to the PeerAccept leaves the guest running untouched.
 */
#define TICK_MS 250 /* progress to the client, and the handshake's deadline */
#define QUERY_RETRY_MS 1000 /* the commit's query: again after this while the target is silent */
#define QUERY_WAIT_S 5	    /* one query attempt's bound */

struct mig_out {
	struct daemon *d;
	struct guest *g;
	char dest[CTL_DEST_MAX + 1], host[256], to[CTL_NAME_MAX + 1];
	char target_name[CTL_NAME_MAX + 1];
	unsigned port;
	enum { MO_CONNECT, MO_HANDSHAKE, MO_STREAM, MO_QUERY } phase;
	char id[CTL_MIG_ID_LEN + 1];	/* the move's migration id (PeerQuery) */
	char unknown_why[300];		/* pvguest's migrate-unknown */
	struct bufferevent *query;	/* MO_QUERY: the current attempt */
	struct event *retry;
	unsigned queries;
	struct bufferevent *peer;	/* until the relay takes it */
	struct relay *relay;
	struct event *tick;
	uint64_t t0, last_bytes, last_t, rate;
	uint64_t estimate;		/* pvguest's guess of the stream's size */
	unsigned rounds;
	struct fault fault;		/* test hook (fault_inject.h), usually none */
	int direct;			/* data_path direct: pvguest connects to the target itself */
	uint8_t token[CTL_DIRECT_TOKEN_LEN]; /* direct: the target's one-time token */
	uint64_t sent;			/* direct: pvguest's own count of stream bytes ("sent") */
};

/* Stream bytes so far: the relay counts them, or (direct) pvguest does. */
static uint64_t mo_bytes(const struct mig_out *mo)
{
	if (mo->relay)
		return mo->relay->to_peer;
	return mo->direct ? mo->sent : mo->last_bytes;
}

static void mo_progress(struct mig_out *mo, const char *phase)
{
	Pvmigrate__Ctl__ControlResponse rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__MigrateProgress p = PVMIGRATE__CTL__MIGRATE_PROGRESS__INIT;
	uint64_t bytes = mo->relay || mo->direct ? mo_bytes(mo) : 0;
	struct conn *c;

	p.phase = (char *)phase;
	p.has_bytes = p.has_total = p.has_rate = p.has_round = 1;
	p.bytes = bytes;
	/* round 0 sends the pages that are not zero (pvguest counts them
	 * first), later rounds what was written meanwhile: the estimate holds
	 * until we are past it */
	p.total = mo->estimate ? mo->estimate : mo->g->memory;
	if (p.total < bytes)
		p.total = bytes;
	p.rate = mo->rate;
	p.round = mo->rounds;
	rsp.has_more = 1;
	rsp.more = 1;
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_PROGRESS;
	rsp.progress = &p;
	for (c = mo->g->waiters; c; c = c->wait_next)
		if (c->wait == WAIT_MIGRATE) {
			rsp.id = c->wait_id;
			conn_send(c, &rsp);
		}
}

static void mo_free(struct mig_out *mo)
{
	if (mo->peer)
		bufferevent_free(mo->peer);
	if (mo->query)
		bufferevent_free(mo->query);
	if (mo->retry)
		event_free(mo->retry);
	relay_drop(mo->relay);
	if (mo->tick)
		event_free(mo->tick);
	if (mo->g)
		mo->g->mig = NULL;
	free(mo);
}

/* Answer every migrate waiter with an error, and forget the migration. */
static void mo_fail(struct mig_out *mo, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void mo_fail(struct mig_out *mo, uint32_t code, const char *fmt, ...)
{
	struct guest *g = mo->g;
	struct conn *c, *next;
	char msg[CTL_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dlog("%s -> %s: %s", g->name, mo->dest, msg);
	if (g->state == G_MIGRATING)
		g->state = G_RUNNING;
	for (c = g->waiters; c; c = next) {
		next = c->wait_next;
		if (c->wait == WAIT_MIGRATE) {
			conn_error(c, c->wait_id, code, "%s", msg);
			conn_wait_done(c);
		}
	}
	mo_free(mo);
}

static void mo_relay_done(void *ctx, const char *why)
{
	struct mig_out *mo = ctx;

	/* The link is over; pvguest's own word (migrated, failed or
	 * unknown) decides. */
	mo->last_bytes = mo->relay->to_peer;
	mo->relay = NULL;
	if (why)
		dlog("%s: migration link: %s", mo->g->name, why);
}

static void mo_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mig_out *mo = arg;
	uint64_t t = now_ns(), bytes;

	if (mo->phase == MO_QUERY) {
		mo_progress(mo, "unknown");
		return;
	}
	if (mo->phase != MO_STREAM) {
		/* connect and handshake only get so long: nothing is frozen yet */
		if ((t - mo->t0) / 1000000u > mo->d->conf.migrate_timeout_ms)
			mo_fail(mo, CTL_ERR_FAILED, "no answer from %s within %u ms; nothing was frozen",
				mo->dest, mo->d->conf.migrate_timeout_ms);
		return;
	}
	bytes = mo_bytes(mo);
	if (t > mo->last_t)
		mo->rate = (bytes - mo->last_bytes) * 1000000000ull / (t - mo->last_t);
	mo->last_bytes = bytes;
	mo->last_t = t;
	mo_progress(mo, "precopy");
}

/* The direct path: the daemons' link stays open during the stream (the
 * target dooms an uncommitted receiver when it ends); nothing comes on it. */
static void mo_link_read(struct bufferevent *bev, void *arg)
{
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void mo_link_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig_out *mo = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* as on the relay path: pvguest's own word (migrated, failed or
	 * unknown) decides */
	dlog("%s: migration link: %s", mo->g->name, what & BEV_EVENT_EOF ? "the target closed it"
									: ssl_error(bev));
	bufferevent_free(mo->peer);
	mo->peer = NULL;
}

/* The direct path: pvguest connects to the target's peer port, sends the
 * preamble, does TLS with our certificate and presents the token. */
static void mo_start_direct(struct mig_out *mo)
{
	const struct conf *cf = &mo->d->conf;
	char msg[GUEST_MSG_MAX + 1], tok[2 * CTL_DIRECT_TOKEN_LEN + 1];
	static const char hex[] = "0123456789abcdef";
	unsigned i;
	int n;

	for (i = 0; i < CTL_DIRECT_TOKEN_LEN; i++) {
		tok[2 * i] = hex[mo->token[i] >> 4];
		tok[2 * i + 1] = hex[mo->token[i] & 15];
	}
	tok[2 * CTL_DIRECT_TOKEN_LEN] = '\0';
	/* with a NIC, the target has its own connection: after the OK
	 * pvguest forwards what still reaches ours (the stream's tail) */
	n = snprintf(msg, sizeof msg, "migrate-direct %s %u %s %s %d\n%s\n%s\n%s", mo->host,
		     mo->port, mo->id, tok, mo->g->net[0] ? 1 : 0, cf->tls_cert, cf->tls_key,
		     cf->tls_ca);
	OPENSSL_cleanse(tok, sizeof tok);
	if (n < 0 || n > GUEST_MSG_MAX) {
		OPENSSL_cleanse(msg, sizeof msg);
		mo_fail(mo, CTL_ERR_FAILED, "the direct data path: the target's name and the TLS "
			"file paths do not fit in one message to the guest process (%d bytes, at "
			"most %d); nothing was frozen", n, GUEST_MSG_MAX);
		return;
	}
	if (guest_cmd(mo->g, msg) < 0) {
		OPENSSL_cleanse(msg, sizeof msg);
		mo_fail(mo, CTL_ERR_FAILED, "%s: its runner does not listen any more; nothing was "
			"frozen", mo->g->name);
		return;
	}
	OPENSSL_cleanse(msg, sizeof msg);
	bufferevent_setcb(mo->peer, mo_link_read, NULL, mo_link_event, mo);
	bufferevent_enable(mo->peer, EV_READ);
	mo->phase = MO_STREAM;
	mo->last_t = now_ns();
	dlog("%s: %s accepted it as %s; streaming on the direct data path", mo->g->name, mo->dest,
	     mo->target_name);
	mo_progress(mo, "precopy");
}

static void mo_start_stream(struct mig_out *mo)
{
	int sv[2];
	char why[300];

	if (mo->direct) {
		mo_start_direct(mo);
		return;
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		mo_fail(mo, CTL_ERR_FAILED, "socketpair: %s; nothing was frozen", strerror(errno));
		return;
	}
	evutil_make_socket_nonblocking(sv[0]);
	/* with a NIC, the target has its own connection: after the OK
	 * pvguest forwards what still reaches ours (the stream's tail) */
	if ((mo->g->net[0] ? guest_cmd_migrate_late : guest_cmd_migrate)(mo->g, sv[1], why,
									  sizeof why) < 0) {
		close(sv[0]);
		close(sv[1]);
		mo_fail(mo, CTL_ERR_FAILED, "%s; nothing was frozen", why);
		return;
	}
	close(sv[1]);
	mo->relay = relay_start(mo->d, mo->peer, sv[0], RELAY_SOURCE, &mo->fault, mo_relay_done,
				NULL, mo);
	if (!mo->relay) {
		close(sv[0]); /* pvguest sees the stream end and resumes */
		dlog("%s: cannot start the relay", mo->g->name);
		return;
	}
	mo->peer = NULL;
	mo->phase = MO_STREAM;
	mo->last_t = now_ns();
	dlog("%s: %s accepted it as %s; streaming", mo->g->name, mo->dest, mo->target_name);
	mo_progress(mo, "precopy");
}

static void mo_read(struct bufferevent *bev, void *arg)
{
	struct mig_out *mo = arg;
	Pvmigrate__Ctl__PeerResponse *rsp;
	uint8_t *body;
	uint32_t len, code;
	char why[300];
	int rc;

	if (mo->phase != MO_HANDSHAKE)
		return;
	rc = take_frame(bev, &body, &len, why, sizeof why);
	if (rc == 0)
		return;
	if (rc < 0) {
		mo_fail(mo, CTL_ERR_FAILED, "%s answered garbage (%s); nothing was frozen", mo->dest, why);
		return;
	}
	switch (fault_hit(&mo->fault, FSTEP_ACCEPT)) {
	case FAULT_CUT:
		free(body);
		mo_fail(mo, CTL_ERR_FAILED, "test fault: link to %s cut at its answer; nothing was "
			"frozen", mo->dest);
		return;
	case FAULT_CORRUPT:
		dlog("TEST FAULT: corrupting %s's answer", mo->dest);
		fault_corrupt_protobuf(body, len);
		break;
	default:
		break;
	}
	rsp = ctl_peer_response_decode(body, len, &code, why, sizeof why);
	free(body);
	if (!rsp) {
		mo_fail(mo, code == CTL_ERR_VERSION ? CTL_ERR_VERSION : CTL_ERR_FAILED,
			"%s: %s; nothing was frozen", mo->dest, why);
		return;
	}
	if (rsp->body_case == PVMIGRATE__CTL__PEER_RESPONSE__BODY_ERROR) {
		code = rsp->error->code >= 1 && rsp->error->code <= CTL_ERR_MAX ? rsp->error->code
										: CTL_ERR_FAILED;
		snprintf(why, sizeof why, "%s", rsp->error->message);
		ctl_peer_response_free(rsp);
		mo_fail(mo, code, "target %s refused: %s; nothing was frozen", mo->dest, why);
		return;
	}
	/* an older target's receiver knows no commit: it would run the guest
	 * at END, where ours stops only after READY */
	if (rsp->protocol_minor < CTL_PROTO_MINOR_COMMIT || !rsp->accept->migration_id ||
	    strcmp(rsp->accept->migration_id, mo->id)) {
		code = rsp->protocol_minor;
		ctl_peer_response_free(rsp);
		mo_fail(mo, CTL_ERR_VERSION, "%s speaks protocol %u.%u, without the commit (READY, "
			"GO) a move needs (%u.%u has it); nothing was frozen", mo->dest,
			CTL_PROTO_MAJOR, code, CTL_PROTO_MAJOR, CTL_PROTO_MINOR_COMMIT);
		return;
	}
	/* no silent fallback: a target that does not know the direct path
	 * (an older minor ignores PeerMigrate.direct) is refused here */
	if (mo->direct && (rsp->protocol_minor < CTL_PROTO_MINOR_DIRECT ||
			   !rsp->accept->has_direct_token ||
			   rsp->accept->direct_token.len != CTL_DIRECT_TOKEN_LEN)) {
		code = rsp->protocol_minor;
		ctl_peer_response_free(rsp);
		mo_fail(mo, CTL_ERR_VERSION, "data_path direct: %s speaks protocol %u.%u and did "
			"not agree to the direct data path (%u.%u knows it; data_path relay works "
			"with it); nothing was frozen", mo->dest, CTL_PROTO_MAJOR, code,
			CTL_PROTO_MAJOR, CTL_PROTO_MINOR_DIRECT);
		return;
	}
	if (mo->direct)
		memcpy(mo->token, rsp->accept->direct_token.data, CTL_DIRECT_TOKEN_LEN);
	snprintf(mo->target_name, sizeof mo->target_name, "%s", rsp->accept->guest);
	/* an older target ignores PeerMigrate.net: it would receive a guest
	 * with no NIC connection (and refuse its NIC state at the end) */
	if (mo->g->net[0] && rsp->protocol_minor < CTL_PROTO_MINOR_NET) {
		code = rsp->protocol_minor;
		ctl_peer_response_free(rsp);
		mo_fail(mo, CTL_ERR_FAILED, "%s speaks protocol %u.%u, which cannot take a guest "
			"with a NIC (%u.%u can); nothing was frozen", mo->dest, CTL_PROTO_MAJOR, code,
			CTL_PROTO_MAJOR, CTL_PROTO_MINOR_NET);
		return;
	}
	ctl_peer_response_free(rsp);
	mo_start_stream(mo);
}

static void mo_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig_out *mo = arg;
	Pvmigrate__Ctl__PeerRequest req = PVMIGRATE__CTL__PEER_REQUEST__INIT;
	Pvmigrate__Ctl__PeerMigrate pm = PVMIGRATE__CTL__PEER_MIGRATE__INIT;
	static uint8_t tail[CTL_CONSOLE_CHUNK];
	enum fault_action fa;
	uint8_t *f;
	size_t flen;

	if (what & BEV_EVENT_CONNECTED) {
		fa = fault_hit(&mo->fault, FSTEP_OFFER);
		if (fa == FAULT_CUT) {
			mo_fail(mo, CTL_ERR_FAILED, "test fault: link to %s cut before the offer; "
				"nothing was frozen", mo->dest);
			return;
		}
		/* the TLS handshake is done and the target's certificate checked */
		mo->phase = MO_HANDSHAKE;
		no_delay(bufferevent_getfd(bev));
		req.has_protocol_major = req.has_protocol_minor = 1;
		req.protocol_major = CTL_PROTO_MAJOR;
		req.protocol_minor = CTL_PROTO_MINOR;
		pm.guest = mo->g->name;
		pm.from = mo->g->personality;
		pm.to = mo->to;
		pm.has_vcpus = pm.has_memory = pm.has_console = 1;
		pm.vcpus = mo->g->vcpus;
		pm.memory = mo->g->memory;
		pm.image = mo->g->image;
		pm.console.data = tail;
		pm.console.len = guest_console_tail(mo->g, tail, sizeof tail);
		pm.net = mo->g->net; /* the target connects the guest's NIC itself */
		pm.migration_id = mo->id;
		pm.has_direct = pm.direct = mo->direct;
		req.body_case = PVMIGRATE__CTL__PEER_REQUEST__BODY_MIGRATE;
		req.migrate = &pm;
		if (fa == FAULT_CORRUPT && (f = ctl_frame_pack(&req.base, &flen))) {
			dlog("TEST FAULT: sending %s a corrupted offer", mo->dest);
			fault_corrupt_protobuf(f + CTL_FRAME_HDR, flen - CTL_FRAME_HDR);
			bufferevent_write(bev, f, flen);
			free(f);
		} else {
			send_frame(bev, &req.base);
		}
		mo_progress(mo, "handshake");
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		int dns = bufferevent_socket_get_dns_error(bev);

		if (dns)
			mo_fail(mo, CTL_ERR_FAILED, "%s: %s; nothing was frozen", mo->dest,
				evutil_gai_strerror(dns));
		else if (mo->phase == MO_CONNECT)
			mo_fail(mo, CTL_ERR_FAILED, "cannot reach %s over TLS: %s; nothing was frozen",
				mo->dest, ssl_error(bev));
		else /* TLS 1.3: a target that rejects our certificate says so only now */
			mo_fail(mo, CTL_ERR_FAILED, "%s closed the link before answering (%s; does it "
				"accept this host's certificate?); nothing was frozen", mo->dest,
				ssl_error(bev));
	}
}

static int numeric_host(const char *h)
{
	struct in6_addr a;

	return inet_pton(AF_INET, h, &a) == 1 || inet_pton(AF_INET6, h, &a) == 1;
}

/* 32 lowercase hex digits from 16 random bytes. */
static int mig_id_new(char *id)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[CTL_MIG_ID_LEN / 2];
	unsigned i;

	if (RAND_bytes(b, sizeof b) != 1)
		return -1;
	for (i = 0; i < sizeof b; i++) {
		id[2 * i] = hex[b[i] >> 4];
		id[2 * i + 1] = hex[b[i] & 15];
	}
	id[CTL_MIG_ID_LEN] = '\0';
	return 0;
}

/* A TLS link to the target, connecting; NULL with why (ssl_error). */
static struct bufferevent *mo_link(struct mig_out *mo)
{
	SSL *ssl = SSL_new(mo->d->tls_client);
	struct bufferevent *bev;

	if (ssl && !numeric_host(mo->host))
		SSL_set_tlsext_host_name(ssl, mo->host);
	bev = ssl ? bufferevent_openssl_socket_new(mo->d->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						   BEV_OPT_CLOSE_ON_FREE)
		  : NULL;
	if (!bev && ssl)
		SSL_free(ssl);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* ---- the commit's query: after GO our pvguest did not hear the OK ----
 *
 * The guest is paused here (never resumed by pvguest on its own).  The
 * target's daemon decides and says: "runs" (its receiver committed and
 * runs the guest: ours is destroyed) or "absent" (it killed an uncommitted
 * receiver first, or has none: ours resumes).  While the target cannot be
 * reached, or says "pending", we ask again every QUERY_RETRY_MS.
 */
static void mo_query_start(struct mig_out *mo);

static void mo_query_later(struct mig_out *mo, const char *why)
{
	struct timeval tv = { QUERY_RETRY_MS / 1000, (QUERY_RETRY_MS % 1000) * 1000 };

	if (mo->query)
		bufferevent_free(mo->query);
	mo->query = NULL;
	if (mo->queries == 1 || mo->queries % 30 == 0)
		dlog("%s: asking %s about move %s: %s; again in %u ms", mo->g->name, mo->dest,
		     mo->id, why, QUERY_RETRY_MS);
	evtimer_add(mo->retry, &tv);
}

/* The guest runs at the target now: our copy is only to be discarded by
 * its runner; a NIC tail still in the relay finishes alone. */
static void mo_moved(struct mig_out *mo, struct guest *g)
{
	relay_detach(mo->relay);
	mo->relay = NULL;
	g->migrated_away = 1;
	g->state = G_MIGRATED;
	snprintf(g->detail, sizeof g->detail, "moved to %.200s as %s", mo->dest,
		 mo->target_name);
}

static void mo_results(struct mig_out *mo, Pvmigrate__Ctl__ControlResponse *rsp)
{
	struct conn *c, *next;

	for (c = mo->g->waiters; c; c = next) {
		next = c->wait_next;
		if (c->wait == WAIT_MIGRATE) {
			rsp->id = c->wait_id;
			conn_send(c, rsp);
			conn_wait_done(c);
		}
	}
}

/* The target answered: it runs the guest (runs) or it never will. */
static void mo_resolve(struct mig_out *mo, int runs, const char *detail)
{
	Pvmigrate__Ctl__ControlResponse rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__MigrateResult res = PVMIGRATE__CTL__MIGRATE_RESULT__INIT;
	struct guest *g = mo->g;
	char note[CTL_MSG_MAX];

	if (!runs) {
		if (guest_cmd(g, "resume") < 0) {
			mo_fail(mo, CTL_ERR_FAILED, "migration of %s to %s failed after the commit "
				"(%s); %s says the guest does not run there (%s), but this host's "
				"runner cannot be told to resume it", g->name, mo->dest,
				mo->unknown_why, mo->dest, detail);
			return;
		}
		snprintf(g->detail, sizeof g->detail, "resumed: %.100s does not run the move (%.100s)",
			 mo->dest, detail);
		mo_fail(mo, CTL_ERR_FAILED, "migration of %s to %s failed after the commit: %s; %s "
			"says the guest does not run there (%s): it was resumed and runs on here",
			g->name, mo->dest, mo->unknown_why, mo->dest, detail);
		return;
	}
	if (guest_cmd(g, "destroy") < 0)
		dlog("%s: cannot tell the paused copy to end; it ends with its runner", g->name);
	dlog("%s: %s confirmed on asking that it runs the guest (%s): our paused copy is "
	     "destroyed", g->name, mo->dest, detail);
	mo_moved(mo, g);
	snprintf(note, sizeof note, "the target's confirmation was lost (%s); asked, %s "
		 "confirmed it runs the guest as %s (figures unknown)", mo->unknown_why, mo->dest,
		 mo->target_name);
	res.has_downtime_us = res.has_total_us = res.has_bytes = res.has_rounds = 1;
	res.total_us = (now_ns() - mo->t0) / 1000;
	res.bytes = mo->last_bytes;
	res.rounds = mo->rounds;
	res.dest_guest = mo->target_name;
	res.note = note;
	res.data_path = mo->direct ? "direct" : "relay";
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_RESULT;
	rsp.result = &res;
	mo_results(mo, &rsp);
	mo_free(mo);
}

static void mq_read(struct bufferevent *bev, void *arg)
{
	struct mig_out *mo = arg;
	Pvmigrate__Ctl__PeerResponse *rsp;
	uint8_t *body;
	uint32_t len, code;
	char why[300], detail[CTL_MSG_MAX];
	unsigned state;
	int rc;

	rc = take_frame(bev, &body, &len, why, sizeof why);
	if (rc == 0)
		return;
	if (rc < 0) {
		mo_query_later(mo, why);
		return;
	}
	rsp = ctl_peer_response_decode(body, len, &code, why, sizeof why);
	free(body);
	if (!rsp) {
		mo_query_later(mo, why);
		return;
	}
	if (rsp->body_case != PVMIGRATE__CTL__PEER_RESPONSE__BODY_QUERY) {
		snprintf(why, sizeof why, "it answered %s", rsp->body_case ==
			 PVMIGRATE__CTL__PEER_RESPONSE__BODY_ERROR ? rsp->error->message
								    : "something else");
		ctl_peer_response_free(rsp);
		mo_query_later(mo, why);
		return;
	}
	state = rsp->query->state;
	snprintf(detail, sizeof detail, "%s", rsp->query->detail ? rsp->query->detail : "");
	ctl_peer_response_free(rsp);
	if (state == CTL_QUERY_PENDING) {
		mo_query_later(mo, detail);
		return;
	}
	bufferevent_free(mo->query);
	mo->query = NULL;
	mo_resolve(mo, state == CTL_QUERY_RUNS, detail);
}

static void mq_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig_out *mo = arg;
	Pvmigrate__Ctl__PeerRequest req = PVMIGRATE__CTL__PEER_REQUEST__INIT;
	Pvmigrate__Ctl__PeerQuery q = PVMIGRATE__CTL__PEER_QUERY__INIT;

	if (what & BEV_EVENT_CONNECTED) {
		no_delay(bufferevent_getfd(bev));
		req.has_protocol_major = req.has_protocol_minor = 1;
		req.protocol_major = CTL_PROTO_MAJOR;
		req.protocol_minor = CTL_PROTO_MINOR;
		q.migration_id = mo->id;
		req.body_case = PVMIGRATE__CTL__PEER_REQUEST__BODY_QUERY;
		req.query = &q;
		send_frame(bev, &req.base);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
		int dns = bufferevent_socket_get_dns_error(bev);

		mo_query_later(mo, dns ? evutil_gai_strerror(dns)
				       : what & BEV_EVENT_TIMEOUT ? "no answer in time"
				       : ssl_error(bev));
	}
}

static void mo_query_start(struct mig_out *mo)
{
	struct timeval to = { QUERY_WAIT_S, 0 };

	mo->queries++;
	if (!(mo->query = mo_link(mo))) {
		mo_query_later(mo, "cannot set up TLS");
		return;
	}
	bufferevent_setcb(mo->query, mq_read, NULL, mq_event, mo);
	bufferevent_set_timeouts(mo->query, &to, &to);
	bufferevent_enable(mo->query, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect_hostname(mo->query, mo->d->dns, AF_UNSPEC, mo->host,
						(int)mo->port) < 0)
		mo_query_later(mo, "cannot connect");
}

static void mo_retry(evutil_socket_t fd, short what, void *arg)
{
	mo_query_start(arg);
}

/* pvguest: after GO no clear answer; the guest is paused until we say. */
static void mo_unknown(struct mig_out *mo, const char *why)
{
	snprintf(mo->unknown_why, sizeof mo->unknown_why, "%s", why[0] ? why : "no reason given");
	dlog("%s: move %s to %s: after the commit no answer came through (%s): the guest stays "
	     "paused; asking %s", mo->g->name, mo->id, mo->dest, mo->unknown_why, mo->dest);
	snprintf(mo->g->detail, sizeof mo->g->detail, "paused: outcome of the move to %.100s "
		 "unknown, asking %.100s", mo->dest, mo->dest);
	mo->last_bytes = mo_bytes(mo);
	mo->phase = MO_QUERY;
	mo->retry = evtimer_new(mo->d->base, mo_retry, mo);
	if (!mo->retry) {
		dlog("%s: out of memory for the query timer: asking once", mo->g->name);
		mo_query_start(mo);
		return;
	}
	mo_progress(mo, "unknown");
	mo_query_start(mo);
}

void peer_migrate(struct daemon *d, struct conn *c, uint64_t id, const Pvmigrate__Ctl__Migrate *m)
{
	struct timeval tick = { 0, TICK_MS * 1000 };
	struct mig_out *mo;
	struct guest *g;
	const char *no = "live migration through the daemon is not implemented yet";

	/* Everything that can be refused is refused here, before any peer is
	 * contacted and long before anything is frozen. */
	g = conn_move_guest(c, id, m);
	if (!g)
		return;
	if (g->runner != RUNNER_PVGUEST) {
		conn_error(c, id, CTL_ERR_NOT_IMPLEMENTED,
			   "%s: %s runs under pvhost, which cannot be told to migrate", no,
			   g->name);
		return;
	}
	if (!d->tls_client) {
		conn_error(c, id, CTL_ERR_FAILED,
			   "no TLS configured: tls_cert, tls_key and tls_ca in pvmigrate.conf "
			   "are needed to reach a peer");
		return;
	}
	mo = calloc(1, sizeof *mo);
	if (!mo) {
		conn_error(c, id, CTL_ERR_FAILED, "out of memory");
		return;
	}
	mo->d = d;
	mo->g = g;
	if (mig_id_new(mo->id) < 0) {
		free(mo);
		conn_error(c, id, CTL_ERR_FAILED, "no random bytes for the migration id: %s",
			   ssl_error(NULL));
		return;
	}
	fault_arm(&mo->fault, "source");
	mo->direct = d->conf.data_direct;
	snprintf(mo->dest, sizeof mo->dest, "%s", m->dest);
	snprintf(mo->to, sizeof mo->to, "%s", m->to);
	if (!ctl_parse_dest(m->dest, mo->host, sizeof mo->host, &mo->port)) {
		free(mo);
		conn_error(c, id, CTL_ERR_INVALID, "dest: must be HOST[:PORT]");
		return;
	}
	mo->t0 = now_ns();
	mo->peer = mo_link(mo);
	mo->tick = event_new(d->base, -1, EV_PERSIST, mo_tick, mo);
	if (!mo->peer || !mo->tick) {
		mo_free(mo);
		conn_error(c, id, CTL_ERR_FAILED, "cannot set up TLS: %s", ssl_error(NULL));
		return;
	}
	g->mig = mo;
	g->state = G_MIGRATING;
	conn_wait_on(c, g, WAIT_MIGRATE, id);
	dlog("%s: migrating to %s (%s -> %s), move %s, data path %s", g->name, mo->dest, m->from,
	     m->to, mo->id, mo->direct ? "direct" : "relay");
	bufferevent_setcb(mo->peer, mo_read, NULL, mo_event, mo);
	bufferevent_enable(mo->peer, EV_READ | EV_WRITE);
	evtimer_add(mo->tick, &tick);
	mo_progress(mo, "connect");
	if (bufferevent_socket_connect_hostname(mo->peer, d->dns, AF_UNSPEC, mo->host,
						(int)mo->port) < 0)
		mo_fail(mo, CTL_ERR_FAILED, "cannot connect to %s; nothing was frozen", mo->dest);
}

/* pvguest's word for how its tail ended (enum stream_late_how; 0: broke off) */
static const char *late_how(unsigned how)
{
	switch (how) {
	case 1:
		return "ended at EOF (the far end closed the old connection)";
	case 2:
		return "ended at the bound (the old connection never closed)";
	case 3:
		return "ended: reading the old connection failed";
	}
	return "the tail broke off (the guest's console says why)";
}

void mig_out_event(struct guest *g, const char *verb, const char *rest)
{
	Pvmigrate__Ctl__ControlResponse rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__MigrateResult res = PVMIGRATE__CTL__MIGRATE_RESULT__INIT;
	struct mig_out *mo = g->mig;
	unsigned long long down, total, bytes, late = 0;
	unsigned rounds, round, how = 0;
	char late_text[120] = "";
	int resumed;

	if (!mo) {
		dlog("%s: pvguest sent '%s' with no migration running, ignored", g->name, verb);
		return;
	}
	if (!strcmp(verb, "sent")) {
		/* the direct path's only count of the stream: show it at once */
		mo->sent = strtoull(rest, NULL, 10);
		if (mo->direct && mo->phase == MO_STREAM)
			mo_progress(mo, "precopy");
		return;
	}
	if (!strcmp(verb, "estimate")) {
		mo->estimate = strtoull(rest, NULL, 10);
		return;
	}
	if (!strcmp(verb, "log")) {
		if (sscanf(rest, "migrate: round %u:", &round) == 1) {
			mo->rounds = round + 1;
			mo_progress(mo, "round");
		}
		return;
	}
	if (!strcmp(verb, "migrate-unknown")) {
		if (mo->phase == MO_STREAM)
			mo_unknown(mo, rest);
		return;
	}
	if (mo->phase == MO_QUERY) {
		dlog("%s: pvguest said '%s' while the move's outcome is unknown, ignored", g->name,
		     verb);
		return;
	}
	if (!strcmp(verb, "migrate-failed")) {
		/* before GO, or a target that refused: it never ran the guest */
		resumed = rest[0] == '1';
		mo_fail(mo, CTL_ERR_FAILED, "migration of %s to %s failed: %s; the guest %s here",
			g->name, mo->dest, rest[0] && rest[1] ? rest + 2 : "no reason given",
			resumed ? "was resumed and runs on" : "runs on");
		return;
	}
	/* migrated: the target confirmed; with a NIC, the tail's figures follow */
	if (sscanf(rest, "%llu %llu %llu %u %llu %u", &down, &total, &bytes, &rounds, &late,
		   &how) < 4) {
		down = total = bytes = 0;
		rounds = 0;
	}
	if (g->net[0])
		snprintf(late_text, sizeof late_text, "; late frames: %llu forwarded, %s", late,
			 late_how(how));
	dlog("%s: moved to %s as %s: downtime %.3f ms, total %.1f ms, %llu bytes, %u rounds%s, "
	     "data path %s", g->name, mo->dest, mo->target_name, down / 1e6, total / 1e6, bytes,
	     rounds, late_text, mo->direct ? "direct" : "relay");
	mo_moved(mo, g);
	res.has_downtime_us = res.has_total_us = res.has_bytes = res.has_rounds = 1;
	res.downtime_us = down / 1000;
	res.total_us = total / 1000;
	res.bytes = bytes;
	res.rounds = rounds;
	res.dest_guest = mo->target_name;
	res.data_path = mo->direct ? "direct" : "relay";
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_RESULT;
	rsp.result = &res;
	mo_results(mo, &rsp);
	mo_free(mo);
}

void mig_out_gone(struct guest *g)
{
	if (g->migrated_away)
		mo_free(g->mig);
	else
		mo_fail(g->mig, CTL_ERR_FAILED, "%s's runner exited during the migration (status %d)",
			g->name, g->status);
}
