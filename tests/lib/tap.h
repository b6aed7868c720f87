/* tap.h: the tiny check harness of the C unit tests (counts, names failures, exit status) */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <stdlib.h>

static int tap_pass, tap_fail;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (cond) {                                                     \
			tap_pass++;                                             \
		} else {                                                        \
			tap_fail++;                                             \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

/* Prints "N passed, N failed" and returns the exit status for main. */
static inline int tap_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, tap_pass, tap_fail);
	return tap_fail ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
