/* net_backend.h: host network backends of the emulated NIC behind one tiny ops table (socket, tap) */
#ifndef NET_BACKEND_H
#define NET_BACKEND_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A backend moves whole Ethernet frames (no FCS) between the NIC model and
 * the host.  `fd` becomes readable when a frame waits; recv() never blocks
 * (-1 with errno EAGAIN when nothing waits).  send() may block briefly, as
 * a wire would push back; it returns 0, or -1 when the frame was lost.
 */
struct net_backend;

struct net_backend_ops {
	const char *name; /* the spec's prefix: "socket", "tap" */
	int (*open)(struct net_backend *nb, const char *arg, char *err, size_t errlen);
	int (*send)(struct net_backend *nb, const void *frame, size_t len);
	ssize_t (*recv)(struct net_backend *nb, void *buf, size_t cap);
	void (*close)(struct net_backend *nb);
};

struct net_backend {
	const struct net_backend_ops *ops;
	int fd;
};

/* "socket:PATH", "tap:IFNAME" or "fd:N" (an inherited, connected frame
 * socket or tap descriptor, taken over): find the backend and open it. */
int net_backend__open(struct net_backend *nb, const char *spec, char *err, size_t errlen);
void net_backend__close(struct net_backend *nb);

#endif
