/* fuzz_preamble.c: libFuzzer target: arbitrary bytes from an unauthenticated peer through the direct path's preamble reader, exactly as the target daemon will read them from its socket */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_tls.h"

/*
 * The input is what a stranger writes on the peer port before TLS: it
 * goes into a socketpair, the writing end is shut, and
 * migrate_preamble_read() takes it as the daemon will.  It must never
 * block, never take a byte past the 24 of the preamble (the TLS
 * handshake that follows is not its to eat), accept only what
 * migrate_preamble_pack() makes for the id it returns, and always say why
 * it refused.  Seeds (corpus/preamble/): a valid preamble, and one with
 * the ClientHello's first bytes after it.
 */
#define MAX_IN 4096 /* well inside a socketpair's buffer: the writes never block */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t id[MIGRATE_ID_LEN], again[MIGRATE_PREAMBLE_LEN], rest[MAX_IN];
	char why[300] = "";
	int sv[2], rc;
	ssize_t n;

	if (size > MAX_IN)
		size = MAX_IN;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if (size && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	rc = migrate_preamble_read(sv[1], id, 1000, why, sizeof why);
	if (rc == 0) {
		if (size < MIGRATE_PREAMBLE_LEN)
			abort(); /* accepted fewer bytes than a preamble */
		migrate_preamble_pack(again, id);
		if (memcmp(again, data, sizeof again))
			abort(); /* accepted something we would never send */
		n = recv(sv[1], rest, sizeof rest, MSG_DONTWAIT);
		if ((size_t)(n < 0 ? 0 : n) != size - MIGRATE_PREAMBLE_LEN)
			abort(); /* took bytes past the preamble */
	} else if (rc != -1 || !why[0]) {
		abort(); /* refused without a reason */
	}
	/* the in-memory check agrees with the reader on any 24 bytes */
	if (size >= MIGRATE_PREAMBLE_LEN &&
	    (migrate_preamble_parse(data, id, why, sizeof why) == 0) != (rc == 0))
		abort();
	close(sv[0]);
	close(sv[1]);
	return 0;
}
