/* client_out.c: pvmigrate's output: tables and lines for people, one JSON object per answer for scripts, a progress bar on a terminal */
#include <inttypes.h>
#include <string.h>

#include "client_out.h"

typedef Pvmigrate__Ctl__ControlResponse Rsp;
typedef Pvmigrate__Ctl__GuestInfo Info;

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s, size_t len)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else if (ch >= 0x80)
			/* console bytes need not be UTF-8: keep them, as code points */
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_cstr(FILE *f, const char *s)
{
	json_str(f, s ? s : "", s ? strlen(s) : 0);
}

static void json_guest(FILE *f, const Info *g)
{
	fputs("{\"name\":", f);
	json_cstr(f, g->name);
	fprintf(f, ",\"pid\":%" PRIu32 ",\"personality\":", g->pid);
	json_cstr(f, g->personality);
	fputs(",\"state\":", f);
	json_cstr(f, g->state);
	fprintf(f, ",\"vcpus\":%" PRIu32 ",\"memory\":%" PRIu64 ",\"uptime_ms\":%" PRIu64, g->vcpus,
		g->memory, g->uptime_ms);
	if (g->has_exit_status)
		fprintf(f, ",\"exit_status\":%" PRId32, g->exit_status);
	else
		fputs(",\"exit_status\":null", f);
	fputs(",\"image\":", f);
	json_cstr(f, g->image);
	fputs(",\"runner\":", f);
	json_cstr(f, g->runner);
	fprintf(f, ",\"console_bytes\":%" PRIu64 ",\"detail\":", g->console_bytes);
	json_cstr(f, g->detail);
	/* absent: a daemon older than minor 3 does not say; "": no NIC */
	fputs(",\"net\":", f);
	if (g->net)
		json_cstr(f, g->net);
	else
		fputs("null", f);
	fputc('}', f);
}

static void json_response(struct out *o, const Rsp *r)
{
	FILE *f = o->out;
	size_t i;

	switch (r->body_case) {
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_OK:
		fputs("{\"ok\":", f);
		json_cstr(f, r->ok->message);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_HELLO:
		fputs("{\"daemon\":", f);
		json_cstr(f, r->hello->daemon);
		fputs(",\"available\":[", f);
		for (i = 0; i < r->hello->n_available; i++) {
			fputs(i ? "," : "", f);
			json_cstr(f, r->hello->available[i]);
		}
		fputs("],\"known\":[", f);
		for (i = 0; i < r->hello->n_known; i++) {
			fputs(i ? "," : "", f);
			json_cstr(f, r->hello->known[i]);
		}
		fputs("],\"peer_listen\":", f);
		json_cstr(f, r->hello->peer_listen);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_LIST:
		fputs("{\"guests\":[", f);
		for (i = 0; i < r->list->n_guests; i++) {
			fputs(i ? "," : "", f);
			json_guest(f, r->list->guests[i]);
		}
		fputc(']', f);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_GUEST:
		fputs("{\"guest\":", f);
		json_guest(f, r->guest);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_CONSOLE:
		fprintf(f, "{\"console\":{\"offset\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"data\":",
			r->console->offset, r->console->dropped);
		json_str(f, (const char *)r->console->data.data, r->console->data.len);
		fputc('}', f);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_PROGRESS:
		fputs("{\"progress\":{\"phase\":", f);
		json_cstr(f, r->progress->phase);
		fprintf(f, ",\"bytes\":%" PRIu64 ",\"total\":%" PRIu64 ",\"rate\":%" PRIu64
			",\"round\":%" PRIu32 "}", r->progress->bytes, r->progress->total,
			r->progress->rate, r->progress->round);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_RESULT:
		fprintf(f, "{\"result\":{\"downtime_us\":%" PRIu64 ",\"total_us\":%" PRIu64
			",\"bytes\":%" PRIu64 ",\"rounds\":%" PRIu32 ",\"dest_guest\":",
			r->result->downtime_us, r->result->total_us, r->result->bytes,
			r->result->rounds);
		json_cstr(f, r->result->dest_guest);
		if (r->result->personality && r->result->personality[0]) {
			fputs(",\"personality\":", f);
			json_cstr(f, r->result->personality);
		}
		if (r->result->ram && r->result->ram[0]) {
			fputs(",\"ram\":", f);
			json_cstr(f, r->result->ram);
		}
		if (r->result->data_path && r->result->data_path[0]) {
			fputs(",\"data_path\":", f);
			json_cstr(f, r->result->data_path);
		}
		if (r->result->has_resume_ns)
			fprintf(f, ",\"resume_ns\":%" PRIu64, r->result->resume_ns);
		if (r->result->note && r->result->note[0]) {
			fputs(",\"note\":", f);
			json_cstr(f, r->result->note);
		}
		fputc('}', f);
		break;
	default:
		return;
	}
	fputs("}\n", f);
	fflush(f);
}

/* ---- text ---- */

static void mib(char *buf, size_t len, uint64_t bytes)
{
	if (bytes % (1u << 30) == 0 && bytes)
		snprintf(buf, len, "%" PRIu64 "G", bytes >> 30);
	else
		snprintf(buf, len, "%" PRIu64 "M", bytes >> 20);
}

static void uptime(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s / 60) % 60);
}

static void text_status(FILE *f, const Info *g)
{
	char m[32], up[32];

	mib(m, sizeof m, g->memory);
	uptime(up, sizeof up, g->uptime_ms);
	fprintf(f, "name:        %s\nstate:       %s\n", g->name, g->state);
	if (g->has_exit_status)
		fprintf(f, "exit status: %" PRId32 "%s\n", g->exit_status,
			g->exit_status < 0 ? " (killed by that signal)" : "");
	fprintf(f, "pid:         %" PRIu32 "\npersonality: %s\nrunner:      %s\nvcpus:       %" PRIu32
		"\nmemory:      %s\nuptime:      %s\nimage:       %s\nconsole:     %" PRIu64 " bytes\n",
		g->pid, g->personality, g->runner ? g->runner : "", g->vcpus, m, up,
		g->image ? g->image : "", g->console_bytes);
	if (g->net) /* absent: a daemon older than minor 3, which does not say */
		fprintf(f, "net:         %s\n", g->net[0] ? g->net : "none");
	if (g->detail && g->detail[0])
		fprintf(f, "detail:      %s\n", g->detail);
}

static void text_list(FILE *f, const Pvmigrate__Ctl__GuestList *l)
{
	char m[32], up[32], st[16];
	size_t i;

	fprintf(f, "%-16s %-10s %7s %-11s %5s %6s %8s %-4s %s\n", "NAME", "STATE", "PID",
		"PERSONALITY", "VCPUS", "MEMORY", "UPTIME", "EXIT", "NET");
	for (i = 0; i < l->n_guests; i++) {
		const Info *g = l->guests[i];

		mib(m, sizeof m, g->memory);
		uptime(up, sizeof up, g->uptime_ms);
		if (g->has_exit_status)
			snprintf(st, sizeof st, "%" PRId32, g->exit_status);
		else
			snprintf(st, sizeof st, "-");
		fprintf(f, "%-16s %-10s %7" PRIu32 " %-11s %5" PRIu32 " %6s %8s %-4s %s\n", g->name,
			g->state, g->pid, g->personality, g->vcpus, m, up, st,
			g->net && g->net[0] ? g->net : "-");
	}
}

static void bar(struct out *o, const Pvmigrate__Ctl__MigrateProgress *p)
{
	enum { WIDTH = 30 };
	char hashes[WIDTH + 1], eta[32];
	uint64_t total = p->total ? p->total : 1;
	unsigned pct = (unsigned)(p->bytes >= total ? 100 : p->bytes * 100 / total);
	unsigned fill = pct * WIDTH / 100;

	memset(hashes, '#', fill);
	memset(hashes + fill, '.', WIDTH - fill);
	hashes[WIDTH] = '\0';
	if (p->rate && p->total > p->bytes)
		snprintf(eta, sizeof eta, "ETA %" PRIu64 "s", (p->total - p->bytes + p->rate - 1) / p->rate);
	else
		snprintf(eta, sizeof eta, "ETA -");
	fprintf(o->out, "\r%-9s %3u%% [%s] %8.1f MiB/s %-9s round %" PRIu32 "\033[K", p->phase, pct,
		hashes, p->rate / 1048576.0, eta, p->round);
	fflush(o->out);
	o->bar_shown = 1;
}

/* An in-place move's stop after the OK (resume_ns): nothing when the
 * guest ran at once, or when the daemon did not know. */
static void resume_text(const Pvmigrate__Ctl__MigrateResult *m, char *buf, size_t len)
{
	buf[0] = '\0';
	if (m->has_resume_ns && m->resume_ns)
		snprintf(buf, len, " (+%.1f ms until the guest ran again: the kvm runtime's adopt)",
			 m->resume_ns / 1e6);
}

void out_response(struct out *o, const Rsp *r)
{
	FILE *f = o->out;
	char resume[96];
	size_t i;

	if (o->json) {
		json_response(o, r);
		return;
	}
	switch (r->body_case) {
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_OK:
		/* the end of a console: the text goes to stderr, stdout is the guest's */
		if (r->ok->message && r->ok->message[0])
			fprintf(!strcmp(o->cmd, "console") ? stderr : f, "%s\n", r->ok->message);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_HELLO:
		fprintf(f, "daemon:    %s\navailable:", r->hello->daemon);
		for (i = 0; i < r->hello->n_available; i++)
			fprintf(f, "%s%s", i ? ", " : " ", r->hello->available[i]);
		fprintf(f, "\nknown:    ");
		for (i = 0; i < r->hello->n_known; i++)
			fprintf(f, "%s%s", i ? ", " : " ", r->hello->known[i]);
		fprintf(f, "\npeers:     %s\n", r->hello->peer_listen && r->hello->peer_listen[0]
						       ? r->hello->peer_listen : "not accepted");
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_LIST:
		text_list(f, r->list);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_GUEST:
		if (!strcmp(o->cmd, "boot"))
			fprintf(f, "%s: %s (pid %" PRIu32 ", %s, %" PRIu32 " vCPU%s, %" PRIu64 " MiB)\n",
				r->guest->name, r->guest->state, r->guest->pid, r->guest->personality,
				r->guest->vcpus, r->guest->vcpus == 1 ? "" : "s",
				r->guest->memory >> 20);
		else
			text_status(f, r->guest);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_CONSOLE:
		if (r->console->offset > o->console_next)
			fprintf(stderr, "pvmigrate: [%" PRIu64 " bytes of console output no longer "
				"buffered]\n", r->console->offset - o->console_next);
		fwrite(r->console->data.data, 1, r->console->data.len, f);
		fflush(f);
		o->console_next = r->console->offset + r->console->data.len;
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_PROGRESS:
		if (o->progress_bar)
			bar(o, r->progress);
		break;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_RESULT:
		out_end(o);
		if (!strcmp(o->cmd, "move")) {
			resume_text(r->result, resume, sizeof resume);
			if (r->result->ram && !strcmp(r->result->ram, "shared")) {
				fprintf(f, "moved in place: %s now runs on %s: downtime %.3f ms%s, total "
					"%.1f ms, RAM shared (0 pages sent, %" PRIu64 " bytes of state)\n",
					r->result->dest_guest, r->result->personality && r->result->personality[0]
					? r->result->personality : "its new personality",
					r->result->downtime_us / 1e3, resume, r->result->total_us / 1e3,
					r->result->bytes);
				break;
			}
			fprintf(f, "moved in place: %s now runs on %s: downtime %.3f ms%s, total %.1f ms, "
				"%.1f MiB in %" PRIu32 " pre-copy rounds%s\n", r->result->dest_guest,
				r->result->personality && r->result->personality[0]
					? r->result->personality : "its new personality",
				r->result->downtime_us / 1e3, resume, r->result->total_us / 1e3,
				r->result->bytes / 1048576.0, r->result->rounds,
				r->result->ram ? ", RAM copied" : "");
			break;
		}
		fprintf(f, "moved: now %s at the target: downtime %.3f ms, total %.1f ms, %.1f MiB in "
			"%" PRIu32 " pre-copy rounds%s%s\n", r->result->dest_guest,
			r->result->downtime_us / 1e3, r->result->total_us / 1e3,
			r->result->bytes / 1048576.0, r->result->rounds,
			r->result->data_path && r->result->data_path[0] ? ", data path: " : "",
			r->result->data_path ? r->result->data_path : "");
		if (r->result->note && r->result->note[0])
			fprintf(f, "note: %s\n", r->result->note);
		break;
	default:
		break;
	}
}

void out_error(struct out *o, uint32_t code, const char *msg)
{
	out_end(o);
	fprintf(stderr, "pvmigrate: %s\n", msg);
	if (o->json) {
		fprintf(o->out, "{\"error\":{\"code\":%" PRIu32 ",\"name\":\"%s\",\"message\":", code,
			ctl_err_name(code));
		json_cstr(o->out, msg);
		fputs("}}\n", o->out);
		fflush(o->out);
	}
}

void out_end(struct out *o)
{
	if (o->bar_shown) {
		fputc('\n', o->out);
		o->bar_shown = 0;
	}
}
