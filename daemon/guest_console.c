/* guest_console.c: a guest's console: the bounded ring of its runner's output, readers and followers, the last line for error messages */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "daemon.h"

#define FOLLOW_BACKLOG (8u << 20) /* a console follower this far behind is dropped */

/* Copy what is still buffered from offset *from on (at most len bytes);
 * *from moves to the first byte copied. */
static size_t ring_copy(const struct guest *g, uint64_t *from, uint8_t *buf, size_t len)
{
	uint64_t oldest = g->ring_total > g->ring_cap ? g->ring_total - g->ring_cap : 0;
	size_t n, i, pos;

	if (*from < oldest)
		*from = oldest;
	if (*from >= g->ring_total)
		return 0;
	n = (size_t)(g->ring_total - *from);
	if (n > len)
		n = len;
	pos = (size_t)(*from % g->ring_cap);
	for (i = 0; i < n; i++) {
		buf[i] = g->ring[pos];
		if (++pos == g->ring_cap)
			pos = 0;
	}
	return n;
}

size_t guest_console_tail(const struct guest *g, uint8_t *buf, size_t max)
{
	uint64_t from = g->ring_total > max ? g->ring_total - max : 0;

	return ring_copy(g, &from, buf, max);
}

/* Send c everything from its offset on, in chunks. */
void guest_console_push(struct guest *g, struct conn *c)
{
	Pvmigrate__Ctl__ControlResponse rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__ConsoleData cd = PVMIGRATE__CTL__CONSOLE_DATA__INIT;
	static uint8_t chunk[CTL_CONSOLE_CHUNK];
	uint64_t oldest = g->ring_total > g->ring_cap ? g->ring_total - g->ring_cap : 0;
	size_t n;

	for (;;) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > FOLLOW_BACKLOG) {
			conn_error(c, c->wait_id, CTL_ERR_BUSY,
				   "%s: console: this client reads too slowly, dropped", g->name);
			conn_close(c);
			return;
		}
		n = ring_copy(g, &c->console_sent, chunk, sizeof chunk);
		if (!n)
			return;
		pvmigrate__ctl__console_data__init(&cd);
		cd.has_data = cd.has_offset = cd.has_dropped = 1;
		cd.data.data = chunk;
		cd.data.len = n;
		cd.offset = c->console_sent;
		cd.dropped = oldest;
		rsp.has_id = rsp.has_more = 1;
		rsp.id = c->wait_id;
		rsp.more = 1;
		rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_CONSOLE;
		rsp.console = &cd;
		conn_send(c, &rsp);
		c->console_sent += n;
	}
}

void guest_console_put(struct guest *g, const uint8_t *data, size_t len)
{
	struct conn *c, *next;
	size_t i, pos;

	if (len >= g->ring_cap) { /* only the end survives anyway */
		g->ring_total += len - g->ring_cap;
		data += len - g->ring_cap;
		len = g->ring_cap;
	}
	pos = (size_t)(g->ring_total % g->ring_cap);
	for (i = 0; i < len; i++) {
		g->ring[pos] = data[i];
		if (++pos == g->ring_cap)
			pos = 0;
	}
	g->ring_total += len;
	for (c = g->waiters; c; c = next) {
		next = c->wait_next;
		if (c->wait == WAIT_CONSOLE)
			guest_console_push(g, c);
	}
}

void guest_console(struct guest *g, struct conn *c, uint64_t id, int follow)
{
	c->console_sent = 0;
	c->wait_id = id;
	guest_console_push(g, c);
	if (c->closing)
		return;
	if (follow && g->state != G_EXITED) {
		conn_wait_on(c, g, WAIT_CONSOLE, id);
		return;
	}
	if (g->state == G_EXITED)
		conn_ok(c, id, "%s exited with status %d", g->name, g->status);
	else
		conn_ok(c, id, "%s: %llu bytes of output so far", g->name,
			(unsigned long long)g->ring_total);
}

void guest_drain_output(struct guest *g)
{
	uint8_t buf[16384];
	ssize_t n;

	while (g->out_fd >= 0) {
		n = read(g->out_fd, buf, sizeof buf);
		if (n > 0) {
			guest_console_put(g, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF or error: the child closed its side */
		event_free(g->out_ev);
		g->out_ev = NULL;
		close(g->out_fd);
		g->out_fd = -1;
	}
}

void guest_on_output(evutil_socket_t fd, short what, void *arg)
{
	guest_drain_output(arg);
}

/* The last non-empty console line (why a runner gave up). */
void guest_last_line(const struct guest *g, char *buf, size_t len)
{
	uint8_t tail[1024];
	size_t n = guest_console_tail(g, tail, sizeof tail), e, s, i;

	while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
		n--;
	e = n;
	for (s = e; s && tail[s - 1] != '\n'; s--)
		;
	for (i = s; i < e && i - s < len - 1; i++)
		buf[i - s] = (tail[i] < 0x20 || tail[i] == 0x7f) ? '?' : (char)tail[i];
	buf[i - s] = '\0';
}
