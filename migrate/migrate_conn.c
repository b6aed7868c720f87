/* migrate_conn.c: the migration connection: a socket io with timeouts, and the one-message reply the target sends back */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate.h"

/* ---- the socket io ---- */

/*
 * Wait until fd can move bytes in the wanted direction.  A deadline per
 * call, not per migration: a slow but live peer keeps the link, a dead or
 * wedged one is given up on within timeout_ms.
 */
static int conn_wait(const struct migrate_conn *c, short events)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, c->timeout_ms > 0 ? c->timeout_ms : -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0; /* readable, writable, or an error the next call reports */
}

/* recv, keeping a descriptor that came along (shared RAM): plain recv
 * would have the kernel close it unseen. */
static ssize_t conn_recv(struct migrate_conn *c, void *buf, size_t len)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = sizeof u.b };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	int fd;

	if (n < 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
			if (c->got_fd < 0)
				c->got_fd = fd;
			else
				close(fd);
		}
	return n;
}

/* send, with pass_fd along the first time (SCM_RIGHTS, AF_UNIX only) */
static ssize_t conn_send(struct migrate_conn *c, const void *buf, size_t len)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (c->pass_fd >= 0 && len) {
		mh.msg_control = u.b;
		mh.msg_controllen = sizeof u.b;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &c->pass_fd, sizeof c->pass_fd);
	}
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0 && mh.msg_control)
		c->pass_fd = -1; /* it went with the first byte */
	return n;
}

/* Try first, wait only when the socket has nothing (or no room): a poll
 * before every 4 KiB page would double the system calls of a migration. */
static ssize_t conn_read(void *ctx, void *buf, size_t len)
{
	struct migrate_conn *c = ctx;
	ssize_t n;

	for (;;) {
		n = conn_recv(c, buf, len);
		if (n < 0 && errno == ENOTSOCK) {
			if (conn_wait(c, POLLIN) < 0)
				return -1;
			n = read(c->fd, buf, len);
		}
		if (n >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		if (errno != EINTR && conn_wait(c, POLLIN) < 0)
			return -1;
	}
}

static ssize_t conn_write(void *ctx, const void *buf, size_t len)
{
	struct migrate_conn *c = ctx;
	ssize_t n;

	for (;;) {
		/* MSG_NOSIGNAL: a target that hung up must give us EPIPE to
		 * report, not a SIGPIPE that kills the process holding the
		 * source guest. */
		n = conn_send(c, buf, len);
		if (n < 0 && errno == ENOTSOCK) {
			if (conn_wait(c, POLLOUT) < 0)
				return -1;
			n = write(c->fd, buf, len);
		}
		if (n >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		if (errno != EINTR && conn_wait(c, POLLOUT) < 0)
			return -1;
	}
}

void migrate_conn_init(struct migrate_conn *c, int fd, int timeout_ms)
{
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->pass_fd = c->got_fd = -1;
	c->io.ctx = c;
	c->io.read = conn_read;
	c->io.write = conn_write;
}

/* ---- the reply ---- */

#define REPLY_MAGIC 0x524d5650u /* "PVMR" read as a little-endian u32 */
#define REPLY_HDR 16u

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int migrate_io_full(const struct stream_io *io, void *buf, size_t len, int writing)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = writing ? io->write(io->ctx, p, len) : io->read(io->ctx, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = writing ? EPIPE : ECONNRESET;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int migrate_reply_send(const struct stream_io *io, enum migrate_reply_code code,
		       const char *msg)
{
	uint8_t buf[REPLY_HDR + MIGRATE_REPLY_MAX];
	size_t len = msg ? strlen(msg) : 0;

	if (!io->write)
		return -1;
	if (len > MIGRATE_REPLY_MAX)
		len = MIGRATE_REPLY_MAX;
	put32(buf, REPLY_MAGIC);
	put32(buf + 4, (uint32_t)code);
	put32(buf + 8, (uint32_t)len);
	put32(buf + 12, 0);
	if (len)
		memcpy(buf + REPLY_HDR, msg, len);
	return migrate_io_full(io, buf, REPLY_HDR + len, 1);
}

/* The reply is untrusted input like the stream: every field is checked,
 * and the message is cleaned to printable characters before anyone logs it. */
static int reply_recv(const struct stream_io *io, const char *who, enum migrate_reply_code *code,
		      char *msg, size_t msglen, char *why, size_t whylen)
{
	uint8_t hdr[REPLY_HDR], body[MIGRATE_REPLY_MAX];
	uint32_t len, c, i;

	if (msglen)
		msg[0] = 0;
	if (!io->read || migrate_io_full(io, hdr, sizeof hdr, 0) < 0) {
		snprintf(why, whylen, "no reply from the %s: %s", who,
			 errno == ECONNRESET ? "connection closed" : strerror(errno));
		return -1;
	}
	c = get32(hdr + 4);
	len = get32(hdr + 8);
	if (get32(hdr) != REPLY_MAGIC || get32(hdr + 12) || len > MIGRATE_REPLY_MAX ||
	    c > MIGRATE_REPLY_GO) {
		snprintf(why, whylen, "garbled reply from the %s (magic %#x, code %u, length %u)",
			 who, get32(hdr), c, len);
		return -1;
	}
	if (len && migrate_io_full(io, body, len, 0) < 0) {
		snprintf(why, whylen, "reply from the %s cut short: %s", who,
			 errno == ECONNRESET ? "connection closed" : strerror(errno));
		return -1;
	}
	for (i = 0; i < len; i++)
		if (body[i] < 0x20 || body[i] > 0x7e)
			body[i] = '?';
	if (msglen) {
		if (len >= msglen)
			len = (uint32_t)msglen - 1;
		memcpy(msg, body, len);
		msg[len] = 0;
	}
	*code = (enum migrate_reply_code)c;
	return 0;
}

int migrate_reply_recv(const struct stream_io *io, enum migrate_reply_code *code, char *msg,
		       size_t msglen, char *why, size_t whylen)
{
	return reply_recv(io, "target", code, msg, msglen, why, whylen);
}

/* ---- the commit ---- */

int migrate_commit_send(const struct stream_io *io, struct migrate_commit *cm,
			enum migrate_reply_code *code, char *msg, size_t msglen, char *why,
			size_t whylen)
{
	uint64_t t0 = vm__now_ns();
	int timeout = cm->conn ? cm->conn->timeout_ms : 0, e;
	char r[200];

	if (migrate_reply_recv(io, code, msg, msglen, why, whylen) < 0)
		return -1; /* nothing committed: resume */
	cm->ready_ns = vm__now_ns() - t0;
	if (*code == MIGRATE_REPLY_ERROR)
		return 0; /* refused before the commit */
	if (*code != MIGRATE_REPLY_READY) {
		snprintf(why, whylen, "the target said %u where READY was due", (unsigned)*code);
		return -1;
	}
	/* From the first byte of GO on, the target may act on it: no timeout
	 * may make us resume any more, only its word or (on a direct socket)
	 * its end.  A GO that could not be written whole never reached it. */
	cm->committed = 1;
	if (migrate_reply_send(io, MIGRATE_REPLY_GO, NULL) < 0) {
		/* it hung up: after a refusal, whose reason may be waiting */
		e = errno;
		if (migrate_reply_recv(io, code, msg, msglen, why, whylen) == 0 &&
		    *code == MIGRATE_REPLY_ERROR)
			return 0;
		snprintf(why, whylen, "the target went away before the commit: %s", strerror(e));
		return -1;
	}
	if (cm->conn && !cm->relayed)
		cm->conn->timeout_ms = 0; /* only whoever can end it breaks the tie */
	errno = 0;
	if (migrate_reply_recv(io, code, msg, msglen, why, whylen) < 0) {
		e = errno;
		if (cm->conn)
			cm->conn->timeout_ms = timeout;
		snprintf(r, sizeof r, "%s", why);
		if (!cm->relayed && (e == ECONNRESET || e == EPIPE)) {
			/* a direct socket: a target that wrote OK has it in the
			 * socket even if it died right after; it ended without */
			snprintf(why, whylen, "the target ended after GO without its OK (%s); it "
				 "never ran the guest", r);
			return -1;
		}
		/* a garbled answer, silence, or the end of a relayed link: who
		 * runs the guest is unknown here */
		snprintf(why, whylen, "after GO: %s", r);
		cm->in_doubt = 1;
		return -1;
	}
	if (cm->conn)
		cm->conn->timeout_ms = timeout;
	cm->go_ns = vm__now_ns() - t0;
	if (*code == MIGRATE_REPLY_OK || *code == MIGRATE_REPLY_ERROR)
		return 0; /* ERROR: it refused before running anything */
	snprintf(why, whylen, "the target said %u after GO", (unsigned)*code);
	cm->in_doubt = 1;
	return -1;
}

int migrate_commit_await(const struct stream_io *io, int (*hook)(void *ctx, const char *step),
			 void *ctx, uint64_t *t_ready, char *why, size_t whylen)
{
	enum migrate_reply_code code;
	char msg[MIGRATE_REPLY_MAX + 1], reason[300];

	if (migrate_reply_send(io, MIGRATE_REPLY_READY, NULL) < 0) {
		snprintf(why, whylen, "READY not delivered, the source keeps the guest");
		return -1;
	}
	if (t_ready)
		*t_ready = vm__now_ns();
	if (hook && hook(ctx, "ready")) {
		snprintf(why, whylen, "test fault at ready");
		return 1;
	}
	errno = 0;
	if (reply_recv(io, "source", &code, msg, sizeof msg, reason, sizeof reason) < 0) {
		snprintf(why, whylen, "no GO from the source (it keeps the guest): %s", reason);
		/* garbled: the source still listens and resumes on our word */
		return errno == ECONNRESET || errno == EPIPE || errno == ETIMEDOUT ? -1 : 1;
	}
	if (code != MIGRATE_REPLY_GO) {
		snprintf(why, whylen, "the source said %u where GO was due: refused, it keeps the "
			 "guest", (unsigned)code);
		return 1;
	}
	return 0;
}
