/* test_frames.h: the numbered frames the NIC tests send through the reference guest's echo: make one, check what comes back */
#ifndef TEST_FRAMES_H
#define TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A test frame is the shortest Ethernet frame without FCS: destination,
 * source, the IEEE local experimental EtherType 0x88b5, the sequence
 * number (u32, host order) at byte 14, and bytes 18..59 derived from that
 * number, so that a damaged, shifted or stale echo shows.  The reference
 * guest echoes every frame with the addresses swapped
 * (tests/guest/dp83820.c).
 *
 * Two payload rules are in use, and each program keeps its own so that
 * its bytes on the wire stay what they were: TEST_FRAME_XOR (seq ^ 13 i:
 * frame_peer, test_migrate_net) and TEST_FRAME_MUL (31 seq + 7 i:
 * net_echo).
 */
#define TEST_FRAME_LEN 60
#define TEST_FRAME_ETHERTYPE 0x88b5

enum test_frame_fill { TEST_FRAME_XOR, TEST_FRAME_MUL };

/* Frame `seq` from src to dst into f[0..TEST_FRAME_LEN). */
static inline void test_frame_make(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint32_t seq,
				   enum test_frame_fill fill)
{
	unsigned i;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = TEST_FRAME_ETHERTYPE >> 8;
	f[13] = TEST_FRAME_ETHERTYPE & 0xff;
	memcpy(f + 14, &seq, 4);
	for (i = 18; i < TEST_FRAME_LEN; i++)
		f[i] = fill == TEST_FRAME_XOR ? (uint8_t)(seq ^ i * 13u) : (uint8_t)(seq * 31u + i * 7u);
}

/*
 * f[0..len) came back from the guest: 0 if it is the echo (guest -> us)
 * of one of the first `sent` frames we sent, intact, its number in *seq;
 * -1 if it is anything else.
 */
static inline int test_frame_check_echo(const uint8_t *f, size_t len, const uint8_t *us,
					const uint8_t *guest, uint32_t sent, enum test_frame_fill fill,
					uint32_t *seq)
{
	uint8_t want[TEST_FRAME_LEN];

	if (len != TEST_FRAME_LEN)
		return -1;
	memcpy(seq, f + 14, 4);
	if (*seq >= sent)
		return -1;
	test_frame_make(want, us, guest, *seq, fill);
	return memcmp(f, want, TEST_FRAME_LEN) ? -1 : 0;
}

#endif
