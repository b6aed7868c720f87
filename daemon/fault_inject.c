/* fault_inject.c: the TEST-ONLY fault hook of pvmigrated: reading PVMIGRATED_TEST_FAULT(_FILE), counting steps, acting */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fault_inject.h"

static const char *const action_names[] = { "none", "cut", "corrupt", "kill-target",
					    "kill-daemon" };
static const char *const step_names[] = { "offer", "accept", "header", "pages", "nic",
					  "machine", "stats", "end", "ready", "go", "reply", "none" };

const char *fault_step_name(enum fault_step s)
{
	return step_names[s];
}

/* The record types of state/stream.h (pvmigrate-stream(5)): the daemon
 * does not link the stream code, it only names what passes by. */
enum fault_step fault_step_of_record(uint32_t type)
{
	switch (type) {
	case 1u:
		return FSTEP_HEADER;
	case 2u:
		return FSTEP_PAGES;
	case 0x80000005u:
		return FSTEP_NIC;
	case 3u:
		return FSTEP_MACHINE;
	case 0x80000004u:
		return FSTEP_STATS;
	case 0u:
		return FSTEP_END;
	default:
		return FSTEP_NONE;
	}
}

/* "ACTION@STEP[:N]" into f; -1 with why. */
static int parse(struct fault *f, const char *s, char *why, size_t whylen)
{
	char buf[64], *at, *colon, *end;
	unsigned i;
	long n = 1;

	memset(f, 0, sizeof *f);
	if (strlen(s) >= sizeof buf) {
		snprintf(why, whylen, "too long");
		return -1;
	}
	strcpy(buf, s);
	buf[strcspn(buf, "\r\n")] = '\0';
	at = strchr(buf, '@');
	if (!at) {
		snprintf(why, whylen, "not ACTION@STEP[:N]");
		return -1;
	}
	*at++ = '\0';
	colon = strchr(at, ':');
	if (colon) {
		*colon++ = '\0';
		n = strtol(colon, &end, 10);
		if (*end || n < 1 || n > 1000000) {
			snprintf(why, whylen, "N must be a number from 1");
			return -1;
		}
	}
	for (i = FAULT_CUT; i <= FAULT_KILL_DAEMON; i++)
		if (!strcmp(buf, action_names[i]))
			f->action = (enum fault_action)i;
	for (i = 0; i < FSTEP_NONE; i++)
		if (!strcmp(at, step_names[i]))
			f->step = (enum fault_step)i + 1; /* +1: 0 means not found */
	if (f->action == FAULT_NONE || !f->step) {
		snprintf(why, whylen, "ACTION is cut, corrupt, kill-target or kill-daemon; STEP is "
			 "offer, accept, header, pages, nic, machine, stats, end, ready, go or reply");
		f->action = FAULT_NONE;
		return -1;
	}
	f->step--;
	f->nth = (unsigned)n;
	snprintf(f->text, sizeof f->text, "%s@%s:%u", action_names[f->action], step_names[f->step],
		 f->nth);
	return 0;
}

/* The spec in force now: the variable, else the file's first line. */
static int spec(char *buf, size_t len)
{
	const char *env = getenv("PVMIGRATED_TEST_FAULT"), *path;
	FILE *fp;

	if (env && env[0]) {
		snprintf(buf, len, "%s", env);
		return 1;
	}
	path = getenv("PVMIGRATED_TEST_FAULT_FILE");
	if (!path || !path[0] || !(fp = fopen(path, "r")))
		return 0;
	if (!fgets(buf, (int)len, fp))
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf[0] != '\0';
}

/* A daemon started with a spec it cannot read says so and stops at once,
 * rather than running a test that would show nothing. */
__attribute__((constructor)) static void fault_check_env(void)
{
	const char *env = getenv("PVMIGRATED_TEST_FAULT");
	struct fault f;
	char why[200];

	if (!env || !env[0])
		return;
	if (parse(&f, env, why, sizeof why) < 0) {
		fprintf(stderr, "pvmigrated: PVMIGRATED_TEST_FAULT=%s: %s\n", env, why);
		exit(2);
	}
	fprintf(stderr, "pvmigrated: TEST FAULT HOOK ON: %s (never set this outside tests)\n",
		f.text);
}

void fault_arm(struct fault *f, const char *role)
{
	char buf[128], why[200];

	memset(f, 0, sizeof *f);
	if (!spec(buf, sizeof buf))
		return;
	if (parse(f, buf, why, sizeof why) < 0) {
		dlog("test fault '%s': %s; none armed", buf, why);
		return;
	}
	if ((f->action == FAULT_KILL_TARGET || f->action == FAULT_KILL_DAEMON) &&
	    strcmp(role, "target")) {
		dlog("test fault %s: only a target daemon does that; none armed for this %s",
		     f->text, role);
		f->action = FAULT_NONE;
		return;
	}
	dlog("test fault armed for this migration (%s): %s", role, f->text);
}

enum fault_action fault_hit(struct fault *f, enum fault_step step)
{
	enum fault_action a;

	if (!f || f->action == FAULT_NONE || step != f->step)
		return FAULT_NONE;
	if (++f->seen < f->nth)
		return FAULT_NONE;
	a = f->action;
	dlog("TEST FAULT %s: firing", f->text);
	f->action = FAULT_NONE; /* once */
	return a;
}

void fault_kill_daemon(const struct fault *f)
{
	dlog("TEST FAULT %s: this daemon kills itself", f->text);
	fflush(stderr);
	kill(getpid(), SIGKILL);
	_exit(137); /* not reached */
}

void fault_corrupt_protobuf(uint8_t *body, size_t len)
{
	if (len)
		body[0] |= 7;
}
