/* test_stream_frames.c: the NIC_HELD / NIC_LATE frame list: built bodies walk back frame for frame; every malformed body is refused by name */
#include <errno.h>
#include <string.h>

#include "../lib/tap.h"
#include "stream.h"

static uint8_t pattern(size_t frame, size_t at)
{
	return (uint8_t)(frame * 31 + at + 1);
}

/* Build a body of frames with these lengths; walk it; compare. */
static void round_trip(const size_t *lens, unsigned n)
{
	struct stream_frames f = { 0 };
	uint8_t buf[2000];
	const uint8_t *body, *fr;
	uint64_t off = 0;
	uint32_t count;
	size_t len, flen, k;
	char why[160] = "";
	unsigned i;

	for (i = 0; i < n; i++) {
		for (k = 0; k < lens[i]; k++)
			buf[k] = pattern(i, k);
		CHECK(stream_frames_add(&f, buf, lens[i]) == 0, "add frame %u", i);
	}
	body = stream_frames_body(&f, &len);
	CHECK(body && len % 8 == 0, "body of %u frames", n);
	if (!body)
		return;
	CHECK(stream_frames_check(body, len, &count, why, sizeof(why)) == 0 && count == n,
	      "check: %s, %u frames", why, count);
	for (i = 0; i < count; i++) {
		fr = stream_frames_next(body, &off, &flen);
		CHECK(flen == lens[i], "frame %u: length %zu", i, flen);
		for (k = 0; k < flen && fr[k] == pattern(i, k); k++)
			;
		CHECK(k == flen, "frame %u: byte %zu differs", i, k);
	}
	CHECK(off == len, "walk ended at %llu of %zu", (unsigned long long)off, len);
	/* cleared, the memory serves the next body, which holds only its own frames */
	stream_frames_clear(&f);
	CHECK(!stream_frames_body(&f, &len), "cleared: empty");
	CHECK(stream_frames_add(&f, buf, 3) == 0 && stream_frames_body(&f, &len) && len == 24 &&
	      stream_frames_check(f.buf, len, &count, why, sizeof(why)) == 0 && count == 1,
	      "after clear: one frame, %zu bytes", len);
	stream_frames_free(&f);
}

static void refuse(const char *name, const uint8_t *b, uint64_t len, const char *want)
{
	uint32_t count;
	char why[160] = "";

	CHECK(stream_frames_check(b, len, &count, why, sizeof(why)) == -1 && !strcmp(why, want),
	      "%s: got \"%s\", want \"%s\"", name, why, want);
}

static void refusals(void)
{
	static const size_t two[] = { 60, 13 };
	struct stream_frames f = { 0 };
	uint8_t b[256], frame[64] = { 0 };
	const uint8_t *body;
	uint32_t count;
	size_t len;

	CHECK(stream_frames_add(&f, frame, two[0]) == 0 && stream_frames_add(&f, frame, two[1]) == 0,
	      "two frames");
	body = stream_frames_body(&f, &len);
	CHECK(body && len == 8 + 8 + 64 + 8 + 16 && len <= sizeof(b), "body %zu bytes", len);
	if (!body || len > sizeof(b))
		return;
#define EDIT(...)                                    \
	do {                                         \
		memcpy(b, body, len);                \
		__VA_ARGS__;                         \
	} while (0)
	EDIT();
	refuse("short", b, 4, "short body or reserved word not 0");
	EDIT(b[4] = 1);
	refuse("reserved", b, len, "short body or reserved word not 0");
	EDIT(b[8 + 4] = 1);
	refuse("frame reserved", b, len, "frame 0: bad or missing header");
	EDIT(b[0] = 3);
	refuse("count over", b, len, "frame 2: bad or missing header");
	EDIT(b[8] = 200);
	refuse("length", b, len, "frame 0: length 200, 88 bytes left");
	EDIT(b[8] = 0);
	refuse("empty frame", b, len, "frame 0: length 0, 88 bytes left");
	EDIT(b[8 + 8 + 60] = 1);
	refuse("padding", b, len, "frame 0: padding not zero");
	EDIT();
	refuse("padding cut", b, len - 1, "frame 1: padding cut short");
	EDIT(b[0] = 1);
	refuse("trailing", b, len, "24 bytes after 1 frames");
	/* no frames is a body; whether a record may be empty is the record's rule */
	EDIT(memset(b, 0, 8));
	CHECK(stream_frames_check(b, 8, &count, NULL, 0) == 0 && count == 0, "empty body");
	/* what the layout cannot hold is refused when built, not written */
	errno = 0;
	CHECK(stream_frames_add(&f, frame, 0) == -1 && errno == EMSGSIZE, "zero-length frame");
	CHECK(f.count == 2, "the refused frame left the list as it was: %u", f.count);
	stream_frames_free(&f);
}

int main(void)
{
	static const size_t one[] = { 1 }, mixed[] = { 1, 7, 8, 9, 60, 1514, 16 };
	static size_t many[200];
	unsigned i;

	round_trip(one, 1);
	round_trip(mixed, sizeof(mixed) / sizeof(mixed[0]));
	for (i = 0; i < 200; i++)
		many[i] = 1 + i * 7 % 1514; /* past the first 8 KiB: the buffer grows */
	round_trip(many, 200);
	refusals();
	return tap_done("test_stream_frames");
}
