/* pvmigrated.c: the pvmigrate daemon: configuration, the event loop, signals, and what this host can run */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "daemon.h"

#ifndef PVM_VERSION
#define PVM_VERSION "0"
#endif
#ifndef PVM_SYSCONFDIR
#define PVM_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF PVM_SYSCONFDIR "/pvmigrate/pvmigrate.conf"

void dlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("pvmigrated: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int daemon_available(const struct daemon *d, const char *pers)
{
	unsigned i;

	for (i = 0; i < d->nr_available; i++)
		if (!strcmp(d->available[i], pers))
			return 1;
	return 0;
}

void daemon_available_text(const struct daemon *d, char *buf, size_t len)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < d->nr_available && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", d->available[i]);
	if (!d->nr_available)
		snprintf(buf, len, "none: /dev/kvm is not usable here");
}

/*
 * native: the guest's own instructions on our KVM host; kvm: the
 * pre-virtualized personality, whose runtime pvhost loads.  Both need
 * /dev/kvm.  xen and l4 have no host backend in this build.
 */
static void probe_available(struct daemon *d)
{
	d->nr_available = 0;
	if (access("/dev/kvm", R_OK | W_OK) == 0) {
		d->available[d->nr_available++] = "native";
		d->available[d->nr_available++] = "kvm";
	}
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	guest_reap(arg);
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	dlog("signal %d: stopping (guests are stopped with the daemon)", (int)fd);
	event_base_loopbreak(d->base);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pvmigrated [--config FILE] [--socket PATH] [--listen HOST:PORT]\n"
		"                  [--pvhost PATH] [--pvguest PATH] [--check-config]\n"
		"Runs in the foreground and logs to stderr; see pvmigrated(8).\n"
		"Default configuration: %s (read if it exists).\n", DEFAULT_CONF);
}

static int opt_path(char *dst, size_t len, const char *v, const char *what)
{
	if (strlen(v) >= len || v[0] != '/') {
		fprintf(stderr, "pvmigrated: %s takes an absolute path\n", what);
		return -1;
	}
	strcpy(dst, v);
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	const char *conf_path = NULL, *o_socket = NULL, *o_listen = NULL;
	const char *o_pvhost = NULL, *o_pvguest = NULL;
	struct event *ev_chld, *ev_term, *ev_int;
	char why[600], avail[128], host[256];
	unsigned port;
	int i, check = 0, rc = 0;

	setvbuf(stderr, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--config") && i + 1 < argc)
			conf_path = argv[++i];
		else if (!strcmp(a, "--socket") && i + 1 < argc)
			o_socket = argv[++i];
		else if (!strcmp(a, "--listen") && i + 1 < argc)
			o_listen = argv[++i];
		else if (!strcmp(a, "--pvhost") && i + 1 < argc)
			o_pvhost = argv[++i];
		else if (!strcmp(a, "--pvguest") && i + 1 < argc)
			o_pvguest = argv[++i];
		else if (!strcmp(a, "--check-config"))
			check = 1;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	conf_defaults(&d.conf, argv[0]);
	if (!conf_path && access(DEFAULT_CONF, F_OK) == 0)
		conf_path = DEFAULT_CONF;
	if (conf_path && conf_load(&d.conf, conf_path, why, sizeof why) < 0) {
		fprintf(stderr, "pvmigrated: configuration: %s\n", why);
		return 2;
	}
	if ((o_socket && opt_path(d.conf.socket, sizeof d.conf.socket, o_socket, "--socket")) ||
	    (o_pvhost && opt_path(d.conf.pvhost, sizeof d.conf.pvhost, o_pvhost, "--pvhost")) ||
	    (o_pvguest && opt_path(d.conf.pvguest, sizeof d.conf.pvguest, o_pvguest, "--pvguest")))
		return 2;
	if (o_listen) {
		if (o_listen[0] && !ctl_parse_dest(o_listen, host, sizeof host, &port)) {
			fprintf(stderr, "pvmigrated: --listen takes HOST[:PORT]\n");
			return 2;
		}
		snprintf(d.conf.listen, sizeof d.conf.listen, "%s", o_listen);
	}
	signal(SIGPIPE, SIG_IGN);
	probe_available(&d);
	d.base = event_base_new();
	if (!d.base) {
		fprintf(stderr, "pvmigrated: start failed: no event base\n");
		return 1;
	}
	if (peer_setup(&d, why, sizeof why) < 0) {
		fprintf(stderr, "pvmigrated: peers: %s\n", why);
		rc = 2;
		goto out;
	}
	if (check) {
		printf("pvmigrated: configuration ok (socket %s, peers %s, pvguest %s, pvhost %s)\n",
		       d.conf.socket, d.conf.listen[0] ? d.conf.listen : "not accepted",
		       d.conf.pvguest, d.conf.pvhost);
		goto out;
	}
	if (ctl_listen(&d, why, sizeof why) < 0) {
		fprintf(stderr, "pvmigrated: control socket: %s\n", why);
		rc = 1;
		goto out;
	}
	ev_chld = evsignal_new(d.base, SIGCHLD, on_sigchld, &d);
	ev_term = evsignal_new(d.base, SIGTERM, on_sigterm, &d);
	ev_int = evsignal_new(d.base, SIGINT, on_sigterm, &d);
	evsignal_add(ev_chld, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	daemon_available_text(&d, avail, sizeof avail);
	dlog("%s: control socket %s, peers %s; runs: %s", PVM_VERSION, d.conf.socket,
	     d.conf.listen[0] ? d.conf.listen : "not accepted (no listen)", avail);
	event_base_dispatch(&*d.base);
	guest_kill_all(&d);
	ctl_shutdown(&d);
	event_free(ev_chld);
	event_free(ev_term);
	event_free(ev_int);
out:
	peer_shutdown(&d);
	event_base_free(d.base);
	return rc;
}
