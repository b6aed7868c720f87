/* test_size_arg.c: the --memory size syntax of pvhost and the pvmigrate client: suffixes, and every malformed or too large size refused */
#include <string.h>

#include "../lib/tap.h"
#include "size_arg.h"

static void ok(const char *s, uint64_t want)
{
	uint64_t v = 0;

	CHECK(size_arg__parse(s, &v) == 0 && v == want, "'%s': %llu, want %llu", s,
	      (unsigned long long)v, (unsigned long long)want);
}

static void bad(const char *s)
{
	uint64_t v = 42;

	CHECK(size_arg__parse(s, &v) == -1 && v == 42, "'%s' accepted as %llu", s,
	      (unsigned long long)v);
}

int main(void)
{
	ok("0", 0);
	ok("4096", 4096);
	ok("64K", 64ull << 10);
	ok("64k", 64ull << 10);
	ok("256M", 256ull << 20);
	ok("3G", 3ull << 30);
	ok("3g", 3ull << 30);
	ok("17179869183G", 17179869183ull << 30); /* the largest G that fits */
	ok("18446744073709551615", UINT64_MAX);
	bad("");
	bad("M");
	bad("-1");
	bad(" 5");
	bad("+5");
	bad("5T");
	bad("5MB");
	bad("5 M");
	bad("17179869184G"); /* 2^64: would wrap to 0 */
	bad("18446744073709551616");
	return tap_done("test_size_arg");
}
