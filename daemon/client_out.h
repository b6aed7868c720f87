/* client_out.h: how pvmigrate prints the daemon's answers: text, JSON lines, the migration progress bar; its exit codes */
#ifndef CLIENT_OUT_H
#define CLIENT_OUT_H

#include <stdint.h>
#include <stdio.h>

#include "ctl_proto.h"

/* pvmigrate(1), EXIT STATUS */
#define EXIT_OK 0
#define EXIT_FAILED 1	   /* the daemon tried and failed, or no such guest */
#define EXIT_USAGE 2	   /* bad words on the command line, or a request the daemon found invalid */
#define EXIT_UNREACHABLE 3 /* no daemon, connection lost, or an answer that makes no sense */
#define EXIT_REFUSED 4	   /* not allowed, hypervisor unavailable, not implemented, other version */

struct out {
	FILE *out;
	const char *cmd;	/* "list", "boot", "migrate", ... */
	int json;
	int progress_bar;	/* migrate on a terminal */
	int bar_shown;
	uint64_t console_next;	/* offset the next console byte should have */
};

void out_response(struct out *o, const Pvmigrate__Ctl__ControlResponse *rsp);
void out_error(struct out *o, uint32_t code, const char *msg);
/* After the last answer (or a lost connection): finish a progress bar. */
void out_end(struct out *o);

#endif
