/* daemon.h: what pvmigrated's parts share: configuration, guests, control connections, migrations */
#ifndef DAEMON_H
#define DAEMON_H

/*
 * pvmigrated is one libevent loop in one thread.  It owns:
 *
 *   - control connections (daemon_ctl.c): a UNIX socket, root only; each
 *     connection runs one request at a time;
 *   - guests (guest_proc.c): one child process each (pvguest for native,
 *     pvhost for other personalities), its console captured into a
 *     bounded ring;
 *   - migrations (daemon_link.c, daemon_mig_out.c, daemon_mig_in.c): a
 *     TLS link to or from another daemon
 *     that relays the migration stream between the two guest processes.
 *
 * Nothing a client or a peer sends can end the loop: every failure is
 * answered and/or closes that one connection (pvmigrated(8)).
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "ctl_proto.h"

#define PATH_LEN 4096

/* ---- configuration (daemon_conf.c, pvmigrate.conf(5)) ---- */

struct conf {
	char socket[108];		/* control socket path */
	char listen[CTL_DEST_MAX + 1];	/* "HOST:PORT" of the TLS peer listener, "" none */
	char tls_cert[PATH_LEN], tls_key[PATH_LEN], tls_ca[PATH_LEN];
	char pvhost[PATH_LEN], pvguest[PATH_LEN];
	size_t console_buffer;		/* bytes kept per guest */
	unsigned max_guests;
	unsigned max_clients;
	unsigned boot_wait_ms;		/* pvhost guests: alive this long = booted */
	unsigned migrate_timeout_ms;	/* one step of a migration without progress */
	int data_direct;		/* data_path direct: our moves' stream goes guest process
					 * to guest process, not through the daemons (pvmigrate.conf(5)) */
};

/* Defaults: the build tree's programs next to argv0's, else the installed ones. */
void conf_defaults(struct conf *c, const char *self);
/* Read KEY = VALUE lines.  -1 with why (file, line, what). */
int conf_load(struct conf *c, const char *path, char *why, size_t whylen);

/* Client side shares the reader for the socket key only. */
int conf_socket_from_file(const char *path, char *socket, size_t len, char *why, size_t whylen);

/* ---- the daemon ---- */

struct guest;
struct conn;

struct daemon {
	struct event_base *base;
	struct conf conf;
	struct guest *guests;		/* in boot order */
	unsigned nr_guests, next_dom;
	struct conn *conns;
	unsigned nr_conns;
	SSL_CTX *tls_server, *tls_client; /* NULL: no TLS configured */
	struct evconnlistener *ctl_listener, *peer_listener;
	struct evdns_base *dns;
	char peer_listen[CTL_DEST_MAX + 1];
	const char *available[4];	/* personalities this host runs */
	unsigned nr_available;
};

void dlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);

/* "native, kvm" */
void daemon_available_text(const struct daemon *d, char *buf, size_t len);
int daemon_available(const struct daemon *d, const char *pers);

/* ---- control connections (daemon_ctl.c) ---- */

enum conn_wait { WAIT_NONE, WAIT_BOOT, WAIT_DESTROY, WAIT_CONSOLE, WAIT_MIGRATE };

struct conn {
	struct daemon *d;
	struct conn *next;
	struct bufferevent *bev;
	uid_t uid;
	pid_t pid;
	int closing;
	/* the one request in progress */
	enum conn_wait wait;
	uint64_t wait_id;
	struct guest *wait_guest;
	struct conn *wait_next;		/* in wait_guest's waiter list */
	uint64_t console_sent;		/* follow: offset already sent */
};

int ctl_listen(struct daemon *d, char *why, size_t whylen);
void ctl_shutdown(struct daemon *d);

void conn_send(struct conn *c, Pvmigrate__Ctl__ControlResponse *rsp);
/* Stop reading from c; it is freed (from the loop) once its answers are out. */
void conn_close(struct conn *c);
void conn_error(struct conn *c, uint64_t id, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void conn_ok(struct conn *c, uint64_t id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void conn_guest(struct conn *c, uint64_t id, struct guest *g, int more);
/* Wait on g for (kind); wait_done detaches (the request is answered). */
void conn_wait_on(struct conn *c, struct guest *g, enum conn_wait kind, uint64_t id);
void conn_wait_done(struct conn *c);
/* The checks every move makes (in place or to a peer) before anything
 * starts: both personalities known and run here, the guest there, on
 * --from, running and in no other move.  The guest, or NULL once c has
 * the refusal. */
struct guest *conn_move_guest(struct conn *c, uint64_t id, const Pvmigrate__Ctl__Migrate *m);

/* ---- guests (guest_proc.c, guest_console.c) ---- */

enum guest_state { G_STARTING, G_RUNNING, G_MIGRATING, G_INCOMING, G_DESTROYING, G_EXITED,
		   G_MIGRATED };
enum guest_runner { RUNNER_PVGUEST, RUNNER_PVHOST };

struct mig_out;

struct guest {
	struct daemon *d;
	struct guest *next;
	char name[CTL_NAME_MAX + 1];
	char personality[CTL_NAME_MAX + 1];
	char image[PATH_LEN];
	char net[CTL_NET_MAX + 1];
	char detail[256];		/* last word from the runner */
	unsigned vcpus;
	uint64_t memory;
	enum guest_state state;
	enum guest_runner runner;
	pid_t pid;
	int status;			/* exit: 0..255, or -signal */
	uint64_t t_start;
	/* console: the child's stdout and stderr */
	int out_fd;
	struct event *out_ev;
	uint8_t *ring;
	size_t ring_cap;
	uint64_t ring_total;		/* bytes ever written */
	/* pvguest's command socket (SOCK_SEQPACKET) */
	int cmd_fd;
	struct event *cmd_ev;
	struct event *timer;		/* boot wait or kill escalation */
	struct conn *waiters;
	struct mig_out *mig;		/* outgoing migration */
	struct mig_in *mig_in;		/* incoming: the link that brings it */
	int migrated_away;		/* confirmed by the target: forget on exit */
};

struct guest *guest_find(struct daemon *d, const char *name);
/* The next free "domN", or (want) if free.  NULL when (want) is taken. */
const char *guest_pick_name(struct daemon *d, const char *want, char *buf, size_t len);
void guest_fill_info(const struct guest *g, Pvmigrate__Ctl__GuestInfo *gi);
const char *guest_state_name(enum guest_state s);

/* Start a guest for a Boot request; answers c itself (now or once booted). */
void guest_boot(struct daemon *d, struct conn *c, uint64_t id, const Pvmigrate__Ctl__Boot *b);
/* Start pvguest in receive mode on (stream_fd); NULL with why.  net: the
 * guest's NIC spec ("" none), for which the daemon opens the guest's own
 * connection here first (the guest comes from another host).  direct:
 * stream_fd is -1; the source's connection comes later (guest_cmd_direct)
 * and the receiver does TLS with conf's tls_ files itself. */
struct guest *guest_spawn_receiver(struct daemon *d, const char *name, const char *pers,
				   unsigned vcpus, uint64_t memory, const char *image,
				   const char *net, int stream_fd, int direct, char *why,
				   size_t whylen);
void guest_destroy(struct guest *g, struct conn *c, uint64_t id);
/* Console: send what is buffered; with follow, keep c waiting. */
void guest_console(struct guest *g, struct conn *c, uint64_t id, int follow);
/* The last (max) bytes of the console, for a peer. */
size_t guest_console_tail(const struct guest *g, uint8_t *buf, size_t max);
void guest_console_put(struct guest *g, const uint8_t *data, size_t len);
/* Send c (a console reader) everything from its offset on. */
void guest_console_push(struct guest *g, struct conn *c);
/* Read the runner's output pipe until it is empty or ends. */
void guest_drain_output(struct guest *g);
void guest_on_output(evutil_socket_t fd, short what, void *arg);
/* The last non-empty console line, control characters replaced. */
void guest_last_line(const struct guest *g, char *buf, size_t len);
/* A command without fd to pvguest (guest_msg.h: run, resume, destroy); -1: not sent. */
int guest_cmd(struct guest *g, const char *verb);
/* Send msg ("direct TOKENHEX") with (fd) to pvguest; -1 with why. */
int guest_cmd_direct(struct guest *g, const char *msg, int fd, char *why, size_t whylen);
/* Send "migrate" with (fd) to pvguest; -1 with why. */
int guest_cmd_migrate(struct guest *g, int fd, char *why, size_t whylen);
void guest_reap(struct daemon *d);
void guest_kill_all(struct daemon *d);

/* ---- migrations (daemon_link.c, daemon_mig_out.c, daemon_mig_in.c) ---- */

int peer_setup(struct daemon *d, char *why, size_t whylen);
void peer_shutdown(struct daemon *d);
/* A checked Migrate request for a guest: answers c. */
void peer_migrate(struct daemon *d, struct conn *c, uint64_t id, const Pvmigrate__Ctl__Migrate *m);
/* From guest_proc.c: pvguest's word about the migration ("log", "migrated", ...). */
void mig_out_event(struct guest *g, const char *verb, const char *rest);
/* The guest process went away while migrating out / coming in. */
void mig_out_gone(struct guest *g);
void mig_in_gone(struct guest *g);
/* Target side: pvguest said ready / received / receive-failed. */
void mig_in_event(struct guest *g, const char *verb, const char *rest);

#endif
