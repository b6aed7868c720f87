/* net_backend.c: the NIC's host side: an AF_UNIX frame socket (one frame per message, for tests), a Linux tap device, or either one handed over as a file descriptor */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_backend.h"

/* ---- socket:PATH
 *
 * The peer (a test, a switch) owns PATH; we connect to it.  SOCK_SEQPACKET
 * first: reliable and ordered, so a frame is never lost between the two
 * processes, and a full peer pushes back instead of dropping.  A peer that
 * bound a SOCK_DGRAM socket instead gets us as a datagram socket with an
 * autobound abstract address, which it learns from recvfrom().
 */

static int sock_connect(const char *path, int type, int *fd, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	sa_family_t fam = AF_UNIX;

	*fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -1;
	if (type == SOCK_DGRAM && bind(*fd, (struct sockaddr *)&fam, sizeof fam) < 0)
		goto fail; /* autobind: the peer needs an address to answer */
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (connect(*fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		return 0;
fail:
	snprintf(err, errlen, "socket %s: %s", path, strerror(errno));
	close(*fd);
	*fd = -1;
	return -1;
}

static int sock_open(struct net_backend *nb, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;

	if (!*path || strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "socket: path must be 1 .. %zu bytes", sizeof sa.sun_path - 1);
		return -1;
	}
	if (sock_connect(path, SOCK_SEQPACKET, &nb->fd, err, errlen) == 0)
		return 0;
	/* EPROTOTYPE: the peer's socket is a datagram one. */
	if (errno != EPROTOTYPE)
		return -1;
	return sock_connect(path, SOCK_DGRAM, &nb->fd, err, errlen);
}

static int sock_send(struct net_backend *nb, const void *frame, size_t len)
{
	ssize_t n;

	do
		n = send(nb->fd, frame, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

static ssize_t sock_recv(struct net_backend *nb, void *buf, size_t cap)
{
	ssize_t n = recv(nb->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);

	if (n == 0) { /* the peer hung up: nothing will come again */
		errno = EPIPE;
		return -1;
	}
	return n; /* > cap: truncated, the caller drops it */
}

static void fd_close(struct net_backend *nb)
{
	if (nb->fd >= 0)
		close(nb->fd);
	nb->fd = -1;
}

static const struct net_backend_ops sock_ops = {
	"socket", sock_open, sock_send, sock_recv, fd_close,
};

/* ---- tap:IFNAME: a tap device without packet info, so a read is a frame */

static int tap_open(struct net_backend *nb, const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;

	if (!*name || strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "tap: interface name must be 1 .. %d bytes", IFNAMSIZ - 1);
		return -1;
	}
	nb->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (nb->fd < 0) {
		snprintf(err, errlen, "tap: /dev/net/tun: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(nb->fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, errlen, "tap %s: TUNSETIFF: %s", name, strerror(errno));
		fd_close(nb);
		return -1;
	}
	return 0;
}

static int tap_send(struct net_backend *nb, const void *frame, size_t len)
{
	ssize_t n;

	do
		n = write(nb->fd, frame, len);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1; /* EAGAIN: the host queue is full, as a wire drops */
}

static ssize_t tap_recv(struct net_backend *nb, void *buf, size_t cap)
{
	return read(nb->fd, buf, cap);
}

static const struct net_backend_ops tap_ops = {
	"tap", tap_open, tap_send, tap_recv, fd_close,
};

/* ---- fd:N: a socket or tap the process was handed, already connected
 *
 * How a guest's NIC survives a move to another process on the same host
 * (pvmigrated's in-place moves): the daemon opens the backend once and
 * hands the same descriptor to each process.  The source stops reading it
 * at the freeze, the target starts after its OK, and frames that arrive
 * in between wait in the kernel's buffer: none is lost.
 */

static int fd_open(struct net_backend *nb, const char *arg, char *err, size_t errlen);

/* What fd:N becomes once open: a frame socket, or a tap. */
static const struct net_backend_ops fd_sock_ops = {
	"fd", fd_open, sock_send, sock_recv, fd_close,
};
static const struct net_backend_ops fd_tap_ops = {
	"fd", fd_open, tap_send, tap_recv, fd_close,
};

static int fd_open(struct net_backend *nb, const char *arg, char *err, size_t errlen)
{
	char *end;
	long n = strtol(arg, &end, 10);
	int type;
	socklen_t tlen = sizeof type;

	if (!*arg || *end || n < 0 || n > 65535 || fcntl((int)n, F_GETFD) < 0) {
		snprintf(err, errlen, "fd:%s: not an open file descriptor", arg);
		return -1;
	}
	if (getsockopt((int)n, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0) {
		if (type != SOCK_SEQPACKET && type != SOCK_DGRAM) {
			snprintf(err, errlen, "fd:%s: a socket, but not a frame socket (seqpacket "
				 "or datagram)", arg);
			return -1;
		}
		nb->ops = &fd_sock_ops;
	} else {
		/* a tap: never wait in the receive path */
		fcntl((int)n, F_SETFL, fcntl((int)n, F_GETFL) | O_NONBLOCK);
		nb->ops = &fd_tap_ops;
	}
	nb->fd = (int)n;
	fcntl(nb->fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* ---- lookup */

static const struct net_backend_ops *const backends[] = { &sock_ops, &tap_ops, &fd_sock_ops };

int net_backend__open(struct net_backend *nb, const char *spec, char *err, size_t errlen)
{
	const char *colon = strchr(spec, ':');
	size_t i, n;

	nb->ops = NULL;
	nb->fd = -1;
	for (i = 0; colon && i < sizeof backends / sizeof backends[0]; i++) {
		n = strlen(backends[i]->name);
		if ((size_t)(colon - spec) == n && strncmp(spec, backends[i]->name, n) == 0) {
			nb->ops = backends[i]; /* open may pick a variant (fd:N) */
			if (backends[i]->open(nb, colon + 1, err, errlen) < 0) {
				nb->ops = NULL;
				return -1;
			}
			return 0;
		}
	}
	snprintf(err, errlen, "net: '%s': want socket:PATH, tap:IFNAME or fd:N", spec);
	return -1;
}

void net_backend__close(struct net_backend *nb)
{
	if (nb->ops)
		nb->ops->close(nb);
	nb->ops = NULL;
}
