/* daemon_mig_local.c: in-place moves between personalities on this host: a receiving pvguest, a socketpair to the guest's pvguest, the swap once both confirmed */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon_mig_local.h"

#define TICK_MS 250 /* progress to the client, and the receiver's deadline to get ready */
#define RETIRE_MS 5000 /* an old runner still there this long after the swap is killed */
/* The receiver says "resumed" within 5 s of its OK (pvguest.c); a little
 * more here, so a receiver that never says it cannot hold the answer. */
#define RESUMED_MS 6000

struct mig_local {
	struct daemon *d;
	struct mig_local *next;
	struct guest *g;		/* the guest; NULL once the client has its answer */
	struct guest *in;		/* the receiver; NULL once adopted or freed */
	char from[CTL_NAME_MAX + 1], to[CTL_NAME_MAX + 1];
	int fd;				/* the source's end of the stream, until handed over */
	enum { ML_PREPARE, ML_STREAM } phase;
	/* what each side said */
	int src_confirmed, src_failed, src_resumed, dst_received, dst_gone;
	/* the receiver's "resumed": said; the time from its OK until the
	 * guest really ran (has_resume 0: it did not know) */
	int dst_resumed, has_resume;
	unsigned long long resume;
	uint64_t t_received;
	char src_why[300], dst_why[300];
	unsigned long long down, total, bytes;
	unsigned rounds;
	int ram_shared;			/* the source said "ram shared" */
	char ram_why[200];		/* why it copies */
	/* progress */
	uint64_t t0, estimate, sent, last_sent, last_t, rate, last_start;
	unsigned round;
	struct event *tick, *step;
};

static struct mig_local *moves;

/*
 * Old runners after a swap: each ends its stale copy and exits by itself;
 * one that is still there after RETIRE_MS (stuck tearing its VM down)
 * would hold the guest's RAM for ever, so it is killed.  Listed until
 * reaped, so that the kill can never hit a recycled pid.
 */
struct retiring {
	struct retiring *next;
	pid_t pid;
	char name[CTL_NAME_MAX + 1];
	struct event *timer;
};

static struct retiring *retirees;

static void retire_free(struct retiring *r)
{
	struct retiring **pp;

	for (pp = &retirees; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	event_free(r->timer);
	free(r);
}

static void on_retire_timer(evutil_socket_t fd, short what, void *arg)
{
	struct retiring *r = arg;

	dlog("%s: its old runner (pid %d) is still there %u ms after the move, killing it",
	     r->name, (int)r->pid, RETIRE_MS);
	kill(r->pid, SIGKILL);
}

static void retire(struct daemon *d, const char *name, pid_t pid)
{
	struct timeval tv = { RETIRE_MS / 1000, (RETIRE_MS % 1000) * 1000 };
	struct retiring *r = calloc(1, sizeof *r);

	if (!r || !(r->timer = evtimer_new(d->base, on_retire_timer, r))) {
		free(r);
		return; /* no watch: it still ends by itself */
	}
	r->pid = pid;
	snprintf(r->name, sizeof r->name, "%s", name);
	r->next = retirees;
	retirees = r;
	evtimer_add(r->timer, &tv);
}

void mig_local_reaped(pid_t pid, int wstatus)
{
	struct retiring *r;

	for (r = retirees; r; r = r->next)
		if (r->pid == pid) {
			if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
				dlog("%s: its old runner (pid %d) ended with %s %d", r->name, (int)pid,
				     WIFEXITED(wstatus) ? "status" : "signal",
				     WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
			retire_free(r);
			return;
		}
}

static struct mig_local *find(const struct guest *g)
{
	struct mig_local *ml;

	for (ml = moves; ml; ml = ml->next)
		if (g && (ml->g == g || ml->in == g))
			return ml;
	return NULL;
}

int mig_local_of(const struct guest *g)
{
	return find(g) != NULL;
}

struct guest *mig_local_pid_owner(struct daemon *d, pid_t pid)
{
	struct mig_local *ml;

	for (ml = moves; ml; ml = ml->next)
		if (ml->d == d && ml->in && ml->in->pid == pid)
			return ml->in;
	return NULL;
}

static void ml_free(struct mig_local *ml)
{
	struct mig_local **pp;

	for (pp = &moves; *pp; pp = &(*pp)->next)
		if (*pp == ml) {
			*pp = ml->next;
			break;
		}
	if (ml->fd >= 0)
		close(ml->fd);
	if (ml->in)
		guest_free_unlisted(ml->in);
	if (ml->tick)
		event_free(ml->tick);
	if (ml->step)
		event_free(ml->step);
	free(ml);
}

/* Decide from the loop, never from inside a guest's own callback. */
static void ml_schedule(struct mig_local *ml)
{
	event_active(ml->step, 0, 0);
}

static void ml_progress(struct mig_local *ml, const char *phase)
{
	Pvmigrate__Ctl__ControlResponse rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__MigrateProgress p = PVMIGRATE__CTL__MIGRATE_PROGRESS__INIT;
	struct conn *c;

	if (!ml->g)
		return;
	p.phase = (char *)phase;
	p.has_bytes = p.has_total = p.has_rate = p.has_round = 1;
	p.bytes = ml->sent;
	/* as across daemons: round 0's estimate until the stream is past it */
	p.total = ml->estimate ? ml->estimate : ml->g->memory;
	if (p.total < p.bytes)
		p.total = p.bytes;
	p.rate = ml->rate;
	p.round = ml->round;
	rsp.has_more = 1;
	rsp.more = 1;
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_PROGRESS;
	rsp.progress = &p;
	for (c = ml->g->waiters; c; c = c->wait_next)
		if (c->wait == WAIT_MIGRATE) {
			rsp.id = c->wait_id;
			conn_send(c, &rsp);
		}
}

/* The receiver holds nothing that counts: end it (its exit frees it). */
static void ml_kill_receiver(struct mig_local *ml)
{
	if (ml->in && ml->in->pid > 0)
		kill(ml->in->pid, SIGKILL);
}

/* Answer the client with an error; the guest stays what and where it was. */
static void ml_fail(struct mig_local *ml, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ml_fail(struct mig_local *ml, uint32_t code, const char *fmt, ...)
{
	struct guest *g = ml->g;
	struct conn *c, *next;
	char msg[CTL_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ml_kill_receiver(ml);
	if (ml->fd >= 0) {
		close(ml->fd);
		ml->fd = -1;
	}
	if (!g)
		return;
	dlog("%s: in place %s -> %s: %s", g->name, ml->from, ml->to, msg);
	if (g->state == G_MIGRATING)
		g->state = G_RUNNING;
	for (c = g->waiters; c; c = next) {
		next = c->wait_next;
		if (c->wait == WAIT_MIGRATE) {
			conn_error(c, c->wait_id, code, "%s", msg);
			conn_wait_done(c);
		}
	}
	ml->g = NULL;
	if (!ml->in)
		ml_free(ml);
	/* else: freed when the receiver's exit is reaped */
}

/* Both confirmed: the receiver's process is the guest from now on. */
static void ml_swap(struct mig_local *ml)
{
	Pvmigrate__Ctl__ControlResponse rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__MigrateResult res = PVMIGRATE__CTL__MIGRATE_RESULT__INIT;
	struct guest *g = ml->g, *in = ml->in;
	struct conn *c, *next;
	char mark[160];
	int dead = in->pid <= 0;
	pid_t old = g->pid;

	snprintf(mark, sizeof mark, "\npvmigrated: --- %s moved in place: %s -> %s (RAM %s) ---\n",
		 g->name, ml->from, ml->to, ml->ram_shared ? "shared" : "copied");
	guest_console_put(g, (const uint8_t *)mark, strlen(mark));
	guest_take_process(g, in);
	if (old > 0)
		retire(ml->d, g->name, old);
	snprintf(g->personality, sizeof g->personality, "%s", ml->to);
	snprintf(g->detail, sizeof g->detail, "moved in place %s -> %s", ml->from, ml->to);
	g->state = G_RUNNING;
	dlog("%s: moved in place %s -> %s (pvguest pid %d): downtime %.3f ms, total %.1f ms, "
	     "%llu bytes, %u rounds, RAM %s%s%s", g->name, ml->from, ml->to, (int)g->pid,
	     ml->down / 1e6, ml->total / 1e6, ml->bytes, ml->rounds,
	     ml->ram_shared ? "shared" : "copied", ml->ram_why[0] ? ": " : "", ml->ram_why);
	if (ml->has_resume)
		dlog("%s: the guest ran again %.3f ms after the OK (stopped %.3f ms in all)",
		     g->name, ml->resume / 1e6, (ml->down + ml->resume) / 1e6);
	else
		dlog("%s: when the guest ran again after the OK is not known", g->name);
	res.has_resume_ns = ml->has_resume;
	res.resume_ns = ml->resume;
	res.has_downtime_us = res.has_total_us = res.has_bytes = res.has_rounds = 1;
	res.downtime_us = ml->down / 1000;
	res.total_us = ml->total / 1000;
	res.bytes = ml->bytes;
	res.rounds = ml->rounds;
	res.dest_guest = g->name;
	res.personality = ml->to;
	res.ram = ml->ram_shared ? "shared" : "copied";
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_RESULT;
	rsp.result = &res;
	for (c = g->waiters; c; c = next) {
		next = c->wait_next;
		if (c->wait == WAIT_MIGRATE) {
			rsp.id = c->wait_id;
			conn_send(c, &rsp);
			conn_wait_done(c);
		}
	}
	ml->g = NULL;
	ml_free(ml); /* frees in, whose process is g's now */
	/* The guest ended right after it arrived: its status is the receiver's. */
	if (dead) {
		dlog("%s: ended right after the move, with status %d", g->name, g->status);
		guest_ended(g);
	}
}

static void ml_step(evutil_socket_t fd, short what, void *arg)
{
	struct mig_local *ml = arg;
	const char *rest;

	if (!ml->g) {
		/* answered; only the receiver's end is awaited */
		if (!ml->in || ml->in->pid <= 0)
			ml_free(ml);
		return;
	}
	if (ml->src_failed) {
		if (ml->dst_received)
			/* cannot happen by the library's rule (OK sent means the
			 * source got it or fails without resuming); say so loudly */
			dlog("%s: the receiver ran the guest, yet the source says it resumed: "
			     "the receiver's copy is discarded", ml->g->name);
		rest = ml->dst_why[0] && !strstr(ml->src_why, ml->dst_why) ? ml->dst_why : NULL;
		ml_fail(ml, CTL_ERR_FAILED, "in-place move of %s from %s to %s failed: %s%s%s%s; the "
			"guest %s, still on %s", ml->g->name, ml->from, ml->to,
			ml->src_why[0] ? ml->src_why : "no reason given", rest ? " (receiver: " : "",
			rest ? rest : "", rest ? ")" : "",
			ml->src_resumed ? "was resumed" : "runs on", ml->from);
		return;
	}
	/* the answer waits for the guest's real resumption (its kvm
	 * runtime's adopt may take another 100-250 ms after the OK) */
	if (ml->src_confirmed && ((ml->dst_received && ml->dst_resumed) || ml->dst_gone)) {
		ml_swap(ml);
		return;
	}
	if (ml->dst_gone && ml->phase == ML_PREPARE) {
		ml_fail(ml, CTL_ERR_FAILED, "in-place move of %s from %s to %s: the receiving pvguest "
			"could not prepare the guest: %s; nothing was frozen", ml->g->name, ml->from,
			ml->to, ml->dst_why[0] ? ml->dst_why : "it exited");
		return;
	}
	/* the receiver ended while streaming: the source's word follows */
}

static void ml_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mig_local *ml = arg;
	uint64_t t = now_ns();

	if (!ml->g)
		return;
	if (ml->dst_received && !ml->dst_resumed &&
	    (t - ml->t_received) / 1000000u > RESUMED_MS) {
		dlog("%s: the receiver did not say when the guest ran again within %u ms",
		     ml->g->name, RESUMED_MS);
		ml->dst_resumed = 1;
		ml_schedule(ml);
		return;
	}
	if (ml->phase == ML_PREPARE) {
		if ((t - ml->t0) / 1000000u > ml->d->conf.migrate_timeout_ms)
			ml_fail(ml, CTL_ERR_FAILED, "in-place move of %s: the receiving pvguest was not "
				"ready within %u ms; nothing was frozen", ml->g->name,
				ml->d->conf.migrate_timeout_ms);
		return;
	}
	/* Shared RAM: after its GO the source waits for the receiver's word
	 * with no timeout of its own (it must not resume while the receiver
	 * may write the RAM); ending a receiver that stays silent is ours to
	 * do.  The source then sees the stream end, puts its sites back and
	 * resumes. */
	if (ml->ram_shared && ml->in && ml->in->pid > 0 && !ml->dst_received &&
	    !ml->src_confirmed && (t - ml->last_start) / 1000000u > ml->d->conf.migrate_timeout_ms) {
		dlog("%s: in place %s -> %s: the receiver has not finished within %u ms, ending it",
		     ml->g->name, ml->from, ml->to, ml->d->conf.migrate_timeout_ms);
		ml_kill_receiver(ml);
	}
	if (t > ml->last_t)
		ml->rate = (ml->sent - ml->last_sent) * 1000000000ull / (t - ml->last_t);
	ml->last_sent = ml->sent;
	ml->last_t = t;
	ml_progress(ml, "precopy");
}

/* The receiver's VM exists: now, and only now, the source may start (and freeze). */
static void ml_start_stream(struct mig_local *ml)
{
	char why[300];

	if (guest_cmd_migrate_local(ml->g, ml->fd, why, sizeof why) < 0) {
		ml_fail(ml, CTL_ERR_FAILED, "%s; nothing was frozen", why);
		return;
	}
	close(ml->fd);
	ml->fd = -1;
	ml->phase = ML_STREAM;
	ml->last_t = ml->last_start = now_ns();
	dlog("%s: receiver ready (pid %d); streaming %s -> %s in place", ml->g->name,
	     (int)ml->in->pid, ml->from, ml->to);
	ml_progress(ml, "precopy");
}

void mig_local_event(struct guest *x, const char *verb, const char *rest)
{
	struct mig_local *ml = find(x);
	unsigned round;

	if (!ml)
		return;
	if (x == ml->in) {
		if (!strcmp(verb, "ready")) {
			if (ml->g && ml->phase == ML_PREPARE)
				ml_start_stream(ml);
		} else if (!strcmp(verb, "received")) {
			ml->dst_received = 1;
			ml->t_received = now_ns();
			ml_schedule(ml);
		} else if (!strcmp(verb, "resumed")) {
			ml->dst_resumed = 1;
			ml->has_resume = rest[0] >= '0' && rest[0] <= '9';
			ml->resume = ml->has_resume ? strtoull(rest, NULL, 10) : 0;
			ml_schedule(ml);
		} else if (!strcmp(verb, "receive-failed")) {
			snprintf(ml->dst_why, sizeof ml->dst_why, "%s", rest);
			dlog("%s: receiver: %s", x->name, rest);
		} else if (strcmp(verb, "failed")) {
			dlog("%s: the receiver said '%.20s' out of turn, ignored", x->name, verb);
		}
		return;
	}
	if (!strcmp(verb, "ram")) {
		ml->ram_shared = !strcmp(rest, "shared");
		if (!ml->ram_shared)
			snprintf(ml->ram_why, sizeof ml->ram_why, "%s",
				 strncmp(rest, "copied ", 7) ? rest : rest + 7);
		dlog("%s: in place %s -> %s: RAM %s", x->name, ml->from, ml->to,
		     ml->ram_shared ? "shared, not copied" : rest);
	} else if (!strcmp(verb, "estimate")) {
		ml->estimate = strtoull(rest, NULL, 10);
	} else if (!strcmp(verb, "sent")) {
		ml->sent = strtoull(rest, NULL, 10);
	} else if (!strcmp(verb, "log")) {
		if (sscanf(rest, "migrate: round %u:", &round) == 1) {
			ml->round = round + 1;
			ml_progress(ml, "round");
		}
	} else if (!strcmp(verb, "migrated")) {
		if (sscanf(rest, "%llu %llu %llu %u", &ml->down, &ml->total, &ml->bytes,
			   &ml->rounds) != 4)
			ml->down = ml->total = ml->bytes = ml->rounds = 0;
		ml->src_confirmed = 1;
		ml_schedule(ml);
	} else if (!strcmp(verb, "migrate-failed")) {
		ml->src_failed = 1;
		ml->src_resumed = rest[0] == '1';
		snprintf(ml->src_why, sizeof ml->src_why, "%s", rest[0] && rest[1] ? rest + 2 : "");
		ml_schedule(ml);
	} else {
		dlog("%s: pvguest said '%.20s' during an in-place move, ignored", x->name, verb);
	}
}

int mig_local_exited(struct guest *x)
{
	struct mig_local *ml = find(x);

	if (!ml)
		return 0;
	if (x == ml->in) {
		ml->dst_gone = 1;
		if (!ml->dst_why[0] && x->status != 0)
			guest_last_line(x, ml->dst_why, sizeof ml->dst_why);
		ml_schedule(ml);
		return 1; /* not listed: nothing else to tell anyone */
	}
	/* the source */
	if (ml->src_confirmed || ml->dst_received) {
		/* the target has the guest: the source's end is the move's, not the guest's */
		if (!ml->src_confirmed)
			dlog("%s: the source ended before confirming, but the receiver runs the guest",
			     x->name);
		ml->src_confirmed = 1;
		ml_schedule(ml);
		return 1;
	}
	ml_fail(ml, CTL_ERR_FAILED, "in-place move of %s: its pvguest exited during the move "
		"(status %d); nothing runs in %s", x->name, x->status, ml->to);
	return 0; /* the guest's own end, as usual */
}

void local_migrate(struct daemon *d, struct conn *c, uint64_t id, const Pvmigrate__Ctl__Migrate *m)
{
	struct timeval tick = { 0, TICK_MS * 1000 };
	const char *runtime = m->runtime ? m->runtime : "";
	struct mig_local *ml;
	struct guest *g;
	char why[300];
	int sv[2];

	/* Every refusal before anything starts: the guest is untouched. */
	g = conn_move_guest(c, id, m);
	if (!g)
		return;
	if (g->runner != RUNNER_PVGUEST) {
		conn_error(c, id, CTL_ERR_NOT_IMPLEMENTED,
			   "%s runs under pvhost, which cannot be told to migrate", g->name);
		return;
	}
	if (runtime[0] && strcmp(m->to, "kvm")) {
		conn_error(c, id, CTL_ERR_INVALID, "--runtime: only the kvm personality has a runtime "
			   "(the move is to %s)", m->to);
		return;
	}
	if (runtime[0] && access(runtime, R_OK) < 0) {
		conn_error(c, id, CTL_ERR_INVALID, "--runtime %s: %s", runtime, strerror(errno));
		return;
	}
	ml = calloc(1, sizeof *ml);
	if (!ml) {
		conn_error(c, id, CTL_ERR_FAILED, "out of memory");
		return;
	}
	ml->d = d;
	ml->fd = -1;
	snprintf(ml->from, sizeof ml->from, "%s", m->from);
	snprintf(ml->to, sizeof ml->to, "%s", m->to);
	ml->tick = event_new(d->base, -1, EV_PERSIST, ml_tick, ml);
	ml->step = event_new(d->base, -1, 0, ml_step, ml);
	if (!ml->tick || !ml->step || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, sizeof why, "%s", !ml->tick || !ml->step ? "out of memory"
									: strerror(errno));
		ml_free(ml);
		conn_error(c, id, CTL_ERR_FAILED, "in-place move of %s: %s; nothing was frozen",
			   g->name, why);
		return;
	}
	ml->in = guest_spawn_local_receiver(g, m->to, runtime, sv[1], why, sizeof why);
	close(sv[1]);
	if (!ml->in) {
		close(sv[0]);
		ml_free(ml);
		conn_error(c, id, CTL_ERR_FAILED, "in-place move of %s: cannot start a receiver: %s; "
			   "nothing was frozen", g->name, why);
		return;
	}
	ml->fd = sv[0];
	ml->g = g;
	ml->t0 = now_ns();
	ml->next = moves;
	moves = ml;
	g->state = G_MIGRATING;
	conn_wait_on(c, g, WAIT_MIGRATE, id);
	dlog("%s: moving in place %s -> %s%s%s (receiver pid %d)", g->name, m->from, m->to,
	     runtime[0] ? ", runtime " : "", runtime, (int)ml->in->pid);
	evtimer_add(ml->tick, &tick);
	ml_progress(ml, "handshake"); /* until the receiver's VM exists */
}

void mig_local_shutdown(void)
{
	while (retirees)
		retire_free(retirees);
	while (moves) {
		ml_kill_receiver(moves);
		moves->g = NULL;
		ml_free(moves);
	}
}
