/* daemon_ctl.c: the control socket: root-only accept, frame reading with limits, one request at a time per connection, answers */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "daemon.h"
#include "daemon_mig_local.h"

#ifndef PVM_VERSION
#define PVM_VERSION "0"
#endif

#define PARTIAL_FRAME_S 10    /* a frame started must be complete this soon */
#define OUTPUT_MAX (32u << 20) /* answers a client does not read */

typedef Pvmigrate__Ctl__ControlResponse Rsp;

/* ---- sending ---- */

void conn_send(struct conn *c, Rsp *rsp)
{
	uint8_t *f;
	size_t len;

	if (c->closing)
		return;
	rsp->has_protocol_major = rsp->has_protocol_minor = rsp->has_id = 1;
	rsp->protocol_major = CTL_PROTO_MAJOR;
	rsp->protocol_minor = CTL_PROTO_MINOR;
	f = ctl_frame_pack(&rsp->base, &len);
	if (!f) {
		dlog("client pid %d: an answer did not fit a frame", (int)c->pid);
		return;
	}
	evbuffer_add(bufferevent_get_output(c->bev), f, len);
	free(f);
}

void conn_error(struct conn *c, uint64_t id, uint32_t code, const char *fmt, ...)
{
	char msg[CTL_MSG_MAX];
	uint8_t *f;
	size_t len;
	va_list ap;

	if (c->closing)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	f = ctl_error_frame(id, code, msg, &len);
	if (f) {
		evbuffer_add(bufferevent_get_output(c->bev), f, len);
		free(f);
	}
}

void conn_ok(struct conn *c, uint64_t id, const char *fmt, ...)
{
	Rsp rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__Ok ok = PVMIGRATE__CTL__OK__INIT;
	char msg[CTL_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ok.message = msg;
	rsp.id = id;
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_OK;
	rsp.ok = &ok;
	conn_send(c, &rsp);
}

void conn_guest(struct conn *c, uint64_t id, struct guest *g, int more)
{
	Rsp rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__GuestInfo gi;

	guest_fill_info(g, &gi);
	rsp.id = id;
	rsp.has_more = 1;
	rsp.more = more;
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_GUEST;
	rsp.guest = &gi;
	conn_send(c, &rsp);
}

/* ---- waiting on a guest ---- */

void conn_wait_on(struct conn *c, struct guest *g, enum conn_wait kind, uint64_t id)
{
	c->wait = kind;
	c->wait_id = id;
	c->wait_guest = g;
	c->wait_next = g->waiters;
	g->waiters = c;
}

void conn_wait_done(struct conn *c)
{
	struct conn **pp;

	if (c->wait_guest) {
		for (pp = &c->wait_guest->waiters; *pp; pp = &(*pp)->wait_next)
			if (*pp == c) {
				*pp = c->wait_next;
				break;
			}
	}
	c->wait = WAIT_NONE;
	c->wait_guest = NULL;
	c->wait_next = NULL;
}

/* ---- connection lifetime ---- */

struct conn_priv {
	struct conn c;
	struct event *free_ev; /* frees the connection from the loop, never mid-call */
};

static void conn_free(struct conn *c)
{
	struct conn_priv *cp = (struct conn_priv *)c;
	struct conn **pp;

	conn_wait_done(c);
	for (pp = &c->d->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->d->nr_conns--;
	bufferevent_free(c->bev);
	event_free(cp->free_ev);
	free(cp);
}

static void on_free(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

void conn_close(struct conn *c)
{
	struct conn_priv *cp = (struct conn_priv *)c;

	if (c->closing)
		return;
	c->closing = 1;
	conn_wait_done(c);
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		event_active(cp->free_ev, 0, 0);
}

/* ---- requests ---- */

static void do_hello(struct conn *c, uint64_t id)
{
	Rsp rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__HelloReply h = PVMIGRATE__CTL__HELLO_REPLY__INIT;
	struct daemon *d = c->d;
	unsigned n;

	for (n = 0; ctl_known_personalities[n]; n++)
		;
	h.daemon = "pvmigrated " PVM_VERSION;
	h.n_available = d->nr_available;
	h.available = (char **)d->available;
	h.n_known = n;
	h.known = (char **)ctl_known_personalities;
	h.peer_listen = d->peer_listen;
	rsp.id = id;
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_HELLO;
	rsp.hello = &h;
	conn_send(c, &rsp);
}

static void do_list(struct conn *c, uint64_t id)
{
	Rsp rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__GuestList gl = PVMIGRATE__CTL__GUEST_LIST__INIT;
	Pvmigrate__Ctl__GuestInfo *infos, **ptrs;
	struct guest *g;
	size_t n = 0;

	infos = calloc(c->d->nr_guests + 1, sizeof *infos);
	ptrs = calloc(c->d->nr_guests + 1, sizeof *ptrs);
	if (!infos || !ptrs) {
		conn_error(c, id, CTL_ERR_FAILED, "out of memory");
	} else {
		for (g = c->d->guests; g; g = g->next, n++) {
			guest_fill_info(g, &infos[n]);
			ptrs[n] = &infos[n];
		}
		gl.n_guests = n;
		gl.guests = ptrs;
		rsp.id = id;
		rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_LIST;
		rsp.list = &gl;
		conn_send(c, &rsp);
	}
	free(infos);
	free(ptrs);
}

static struct guest *need_guest(struct conn *c, uint64_t id, const char *name)
{
	struct guest *g = guest_find(c->d, name);

	if (!g)
		conn_error(c, id, CTL_ERR_NOT_FOUND, "no guest named %s", name);
	return g;
}

struct guest *conn_move_guest(struct conn *c, uint64_t id, const Pvmigrate__Ctl__Migrate *m)
{
	struct guest *g;
	char avail[128];

	daemon_available_text(c->d, avail, sizeof avail);
	if (!ctl_personality_known(m->from) || !daemon_available(c->d, m->from)) {
		conn_error(c, id, CTL_ERR_UNAVAILABLE,
			   "hypervisor '%s' is not available on this host (available: %s)",
			   m->from, avail);
		return NULL;
	}
	if (!ctl_personality_known(m->to) || !daemon_available(c->d, m->to)) {
		conn_error(c, id, CTL_ERR_UNAVAILABLE,
			   "hypervisor '%s' is not available on this host (available: %s)",
			   m->to, avail);
		return NULL;
	}
	g = need_guest(c, id, m->guest);
	if (!g)
		return NULL;
	if (strcmp(m->from, g->personality)) {
		conn_error(c, id, CTL_ERR_INVALID, "%s runs on %s, not %s (--from)", g->name,
			   g->personality, m->from);
		return NULL;
	}
	/* an in-place move that is winding up still holds the guest, running or not */
	if (g->state != G_RUNNING || mig_local_of(g)) {
		conn_error(c, id, CTL_ERR_BUSY, "%s is %s, not running", g->name,
			   guest_state_name(g->state));
		return NULL;
	}
	return g;
}

static void handle_frame(struct conn *c, const uint8_t *body, size_t len)
{
	Pvmigrate__Ctl__ControlRequest *req;
	struct guest *g;
	uint32_t code;
	char why[300];

	req = ctl_request_decode(body, len, &code, why, sizeof why);
	if (!req) {
		dlog("client pid %d: %s", (int)c->pid, why);
		conn_error(c, 0, code, "%s", why);
		/* after a frame we cannot read, or from a client of another
		 * version, nothing that follows can be trusted */
		if (code == CTL_ERR_PROTOCOL || code == CTL_ERR_VERSION)
			conn_close(c);
		return;
	}
	if (c->wait != WAIT_NONE) {
		conn_error(c, req->id, CTL_ERR_BUSY,
			   "one request at a time per connection: request %llu is still running",
			   (unsigned long long)c->wait_id);
		ctl_request_free(req);
		return;
	}
	switch (req->body_case) {
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_HELLO:
		do_hello(c, req->id);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_BOOT:
		guest_boot(c->d, c, req->id, req->boot);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_LIST:
		do_list(c, req->id);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_STATUS:
		if ((g = need_guest(c, req->id, req->status->guest)))
			conn_guest(c, req->id, g, 0);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_CONSOLE:
		if ((g = need_guest(c, req->id, req->console->guest)))
			guest_console(g, c, req->id, req->console->follow);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_DESTROY:
		if ((g = need_guest(c, req->id, req->destroy->guest)))
			guest_destroy(g, c, req->id);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_MIGRATE:
		/* no dest: in place, between personalities on this host */
		if (req->migrate->dest && req->migrate->dest[0] && req->migrate->runtime &&
		    req->migrate->runtime[0])
			conn_error(c, req->id, CTL_ERR_INVALID, "runtime: only for a move in place "
				   "(a target daemon runs its own runtime)");
		else if (req->migrate->dest && req->migrate->dest[0])
			peer_migrate(c->d, c, req->id, req->migrate);
		else
			local_migrate(c->d, c, req->id, req->migrate);
		break;
	default: /* ctl_request_check refused it already */
		break;
	}
	ctl_request_free(req);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct timeval partial = { PARTIAL_FRAME_S, 0 };
	uint8_t hdr[CTL_FRAME_HDR], *p;
	uint32_t n;
	size_t have;
	char why[128];

	while (!c->closing) {
		have = evbuffer_get_length(in);
		if (have < CTL_FRAME_HDR)
			break;
		evbuffer_copyout(in, hdr, sizeof hdr);
		if (ctl_frame_peek(hdr, sizeof hdr, &n, why, sizeof why) < 0) {
			dlog("client pid %d: %s", (int)c->pid, why);
			conn_error(c, 0, CTL_ERR_PROTOCOL, "%s", why);
			conn_close(c);
			return;
		}
		if (have < CTL_FRAME_HDR + (size_t)n)
			break;
		p = evbuffer_pullup(in, CTL_FRAME_HDR + (ssize_t)n);
		if (!p || ctl_frame_peek(p, CTL_FRAME_HDR + (size_t)n, &n, why, sizeof why) != 1)
			break; /* cannot happen: the length was just checked */
		handle_frame(c, p + CTL_FRAME_HDR, n);
		evbuffer_drain(in, CTL_FRAME_HDR + (size_t)n);
	}
	if (c->closing)
		return;
	/* a frame begun must end soon; an idle connection (a console
	 * follower, a migration watcher) may wait as long as it likes */
	bufferevent_set_timeouts(bev, evbuffer_get_length(in) ? &partial : NULL, NULL);
	if (evbuffer_get_length(bufferevent_get_output(bev)) > OUTPUT_MAX) {
		dlog("client pid %d: does not read its answers, dropped", (int)c->pid);
		conn_close(c);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn_priv *cp = arg;

	if (cp->c.closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		event_active(cp->free_ev, 0, 0);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		dlog("client pid %d: frame incomplete after %d s, closing", (int)c->pid,
		     PARTIAL_FRAME_S);
		conn_error(c, 0, CTL_ERR_PROTOCOL, "frame: incomplete after %d s", PARTIAL_FRAME_S);
		conn_close(c);
		return;
	}
	/* EOF or error: whatever was asked, nobody listens for the answer */
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (evbuffer_get_length(bufferevent_get_input(bev)))
			dlog("client pid %d: left in the middle of a frame", (int)c->pid);
		c->closing = 1;
		conn_wait_done(c);
		event_active(((struct conn_priv *)c)->free_ev, 0, 0);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct daemon *d = arg;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
	socklen_t clen = sizeof cred;
	struct conn_priv *cp;
	struct conn *c;

	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		cred.uid = (uid_t)-1;
	cp = calloc(1, sizeof *cp);
	if (!cp) {
		close(fd);
		return;
	}
	c = &cp->c;
	c->d = d;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	cp->free_ev = event_new(d->base, -1, 0, on_free, c);
	if (!c->bev || !cp->free_ev) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		free(cp);
		return;
	}
	c->next = d->conns;
	d->conns = c;
	d->nr_conns++;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
	if (cred.uid != 0 && cred.uid != geteuid()) {
		dlog("client pid %d uid %d refused: root only", (int)cred.pid, (int)cred.uid);
		conn_error(c, 0, CTL_ERR_DENIED, "permission denied: uid %d may not use pvmigrated "
			   "(root only)", (int)cred.uid);
		conn_close(c);
		return;
	}
	if (d->nr_conns > d->conf.max_clients) {
		dlog("client pid %d refused: already %u connections", (int)cred.pid, d->nr_conns - 1);
		conn_error(c, 0, CTL_ERR_BUSY, "too many clients (max_clients = %u)",
			   d->conf.max_clients);
		conn_close(c);
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
}

/* Refuse to take over a socket another daemon answers on; clear a stale one. */
static int claim_path(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = fd >= 0 ? connect(fd, (struct sockaddr *)&sa, sizeof sa) : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		snprintf(why, whylen, "another pvmigrated answers on %s", path);
		return -1;
	}
	unlink(path);
	return 0;
}

int ctl_listen(struct daemon *d, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->conf.socket;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(why, whylen, "socket path %s is too long", path);
		return -1;
	}
	/* the default place, without systemd's RuntimeDirectory= */
	if (!strncmp(path, "/run/pvmigrate/", 15))
		mkdir("/run/pvmigrate", 0700);
	if (claim_path(path, why, whylen) < 0)
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(077); /* never a moment where others could connect */
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		umask(old);
		snprintf(why, whylen, "bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	chmod(path, 0600);
	d->ctl_listener = evconnlistener_new(d->base, on_accept, d,
					     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (!d->ctl_listener) {
		snprintf(why, whylen, "listen %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return 0;
}

void ctl_shutdown(struct daemon *d)
{
	if (d->ctl_listener) {
		evconnlistener_free(d->ctl_listener);
		d->ctl_listener = NULL;
		unlink(d->conf.socket);
	}
	while (d->conns)
		conn_free(d->conns);
}
