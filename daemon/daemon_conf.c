/* daemon_conf.c: pvmigrate.conf: defaults, and the KEY = VALUE reader shared by pvmigrated and pvmigrate */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#ifndef PVM_BINDIR
#define PVM_BINDIR "/usr/local/bin"
#endif
#ifndef PVM_LIBEXECDIR
#define PVM_LIBEXECDIR "/usr/local/libexec"
#endif

/* (dir of self)/rel if that file exists, else fallback. */
static void pick_program(char *out, size_t len, const char *self, const char *rel,
			 const char *fallback)
{
	char path[PATH_LEN];
	const char *slash = self ? strrchr(self, '/') : NULL;

	if (slash && (size_t)(slash - self) + strlen(rel) + 2 < sizeof path) {
		snprintf(path, sizeof path, "%.*s/%s", (int)(slash - self), self, rel);
		if (access(path, X_OK) == 0) {
			char real[PATH_MAX];

			snprintf(out, len, "%s", realpath(path, real) ? real : path);
			return;
		}
	}
	snprintf(out, len, "%s", fallback);
}

void conf_defaults(struct conf *c, const char *self)
{
	char exe[PATH_LEN];
	ssize_t n;

	memset(c, 0, sizeof *c);
	snprintf(c->socket, sizeof c->socket, "/run/pvmigrate/control");
	/* The running binary, not argv[0]: a build tree's daemon uses the
	 * build tree's runners wherever it was started from. */
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		self = exe;
	}
	pick_program(c->pvhost, sizeof c->pvhost, self, "../backends/pvhost", PVM_BINDIR "/pvhost");
	pick_program(c->pvguest, sizeof c->pvguest, self, "pvguest", PVM_LIBEXECDIR "/pvguest");
	c->console_buffer = 1u << 20;
	c->max_guests = 64;
	c->max_clients = 64;
	c->boot_wait_ms = 1000;
	c->migrate_timeout_ms = 30000;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int set_path(char *dst, size_t len, const char *v)
{
	if (v[0] != '/' || strlen(v) >= len)
		return -1;
	strcpy(dst, v);
	return 0;
}

/* A count with an optional K, M or G suffix, within [min, max]. */
static int set_number(unsigned long long *dst, const char *v, unsigned long long min,
		      unsigned long long max)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v)
		return -1;
	switch (*end) {
	case 'G': n <<= 10; /* fall through */
	case 'M': n <<= 10; /* fall through */
	case 'K': n <<= 10; end++; break;
	default: break;
	}
	if (*end || n < min || n > max)
		return -1;
	*dst = n;
	return 0;
}

static int set_key(struct conf *c, const char *k, const char *v)
{
	unsigned long long n;
	char host[256];
	unsigned port;

	if (!strcmp(k, "socket"))
		return set_path(c->socket, sizeof c->socket, v);
	if (!strcmp(k, "listen")) {
		if (v[0] && !ctl_parse_dest(v, host, sizeof host, &port))
			return -1;
		snprintf(c->listen, sizeof c->listen, "%s", v);
		return 0;
	}
	if (!strcmp(k, "tls_cert"))
		return set_path(c->tls_cert, sizeof c->tls_cert, v);
	if (!strcmp(k, "tls_key"))
		return set_path(c->tls_key, sizeof c->tls_key, v);
	if (!strcmp(k, "tls_ca"))
		return set_path(c->tls_ca, sizeof c->tls_ca, v);
	if (!strcmp(k, "pvhost"))
		return set_path(c->pvhost, sizeof c->pvhost, v);
	if (!strcmp(k, "pvguest"))
		return set_path(c->pvguest, sizeof c->pvguest, v);
	if (!strcmp(k, "console_buffer")) {
		if (set_number(&n, v, 4096, 64u << 20))
			return -1;
		c->console_buffer = (size_t)n;
		return 0;
	}
	if (!strcmp(k, "max_guests") || !strcmp(k, "max_clients")) {
		if (set_number(&n, v, 1, 4096))
			return -1;
		*(k[4] == 'g' ? &c->max_guests : &c->max_clients) = (unsigned)n;
		return 0;
	}
	if (!strcmp(k, "data_path")) {
		if (strcmp(v, "relay") && strcmp(v, "direct"))
			return -1;
		c->data_direct = !strcmp(v, "direct");
		return 0;
	}
	if (!strcmp(k, "boot_wait_ms") || !strcmp(k, "migrate_timeout_ms")) {
		if (set_number(&n, v, 100, 600000))
			return -1;
		*(k[0] == 'b' ? &c->boot_wait_ms : &c->migrate_timeout_ms) = (unsigned)n;
		return 0;
	}
	return -2;
}

int conf_load(struct conf *c, const char *path, char *why, size_t whylen)
{
	char line[PATH_LEN + 64], *k, *v, *eq;
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(why, whylen, "%s:%u: line too long", path, lineno);
			goto bad;
		}
		k = trim(line);
		if (!k[0] || k[0] == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			snprintf(why, whylen, "%s:%u: expected KEY = VALUE", path, lineno);
			goto bad;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		rc = set_key(c, k, v);
		if (rc == -2) {
			snprintf(why, whylen, "%s:%u: unknown key '%.40s'", path, lineno, k);
			goto bad;
		}
		if (rc < 0) {
			snprintf(why, whylen, "%s:%u: bad value for %s (pvmigrate.conf(5))", path,
				 lineno, k);
			goto bad;
		}
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	return -1;
}

int conf_socket_from_file(const char *path, char *socket, size_t len, char *why, size_t whylen)
{
	static struct conf c; /* large; the client reads one file once */

	conf_defaults(&c, NULL);
	if (conf_load(&c, path, why, whylen) < 0)
		return -1;
	snprintf(socket, len, "%s", c.socket);
	return 0;
}
