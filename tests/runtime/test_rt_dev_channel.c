/* test_rt_dev_channel.c: the runtime's device side against a fake host: console ring and doorbell policy, TX ring (full ring loses nothing), RX frames held while the NIC has no descriptors */
#include <pthread.h>

#include "test_rt_dev_fake.h"


/* ---- console */

static void test_console_lines(void)
{
	char line[41], want[1000];
	unsigned i, j;

	fake_boot(0);
	for (i = 0; i < 25; i++) {
		for (j = 0; j < 39; j++)
			line[j] = (char)('a' + (i + j) % 26);
		line[39] = '\n';
		for (j = 0; j < 40; j++) {
			g_out(0x3f8, 1, (uint8_t)line[j]);
			want[i * 40 + j] = line[j];
		}
		CHECK(host.bells == i + 1, "one doorbell per line (line %u: %u)", i, host.bells);
	}
	CHECK(host.console_len == 1000 && !memcmp(host.console, want, 1000),
	      "1000 bytes arrive in order (%zu)", host.console_len);
	CHECK(host.bells == 25 && host.bell_or == RT_BELL_CONSOLE, "25 console doorbells, no other");
	CHECK(fake_shared()->doorbells == 25, "doorbells counter %llu",
	      (unsigned long long)fake_shared()->doorbells);
	rt_dev_flush();
	CHECK(host.bells == 25, "flush rings nothing when the host heard of every byte");
}

/* No newline, a host that ignores the first doorbell: the ring fills up,
 * the runtime waits and rings again; nothing is lost or reordered. */
static void test_console_full(void)
{
	static char want[10000];
	unsigned i;

	fake_boot(0);
	host.ignore = 1;
	for (i = 0; i < sizeof want; i++) {
		want[i] = (char)('A' + i % 23);
		g_out(0x3f8, 1, (uint8_t)want[i]);
	}
	CHECK(host.console_len < sizeof want, "some bytes wait for a newline or a flush");
	rt_dev_flush();
	CHECK(host.console_len == sizeof want && !memcmp(host.console, want, sizeof want),
	      "10000 bytes through a 4096-byte ring in order (%zu)", host.console_len);
	CHECK(host.bells >= 3 && host.bells <= 8, "half-full, full and flush doorbells (%u)", host.bells);
	CHECK(fake_shared()->console.prod == sizeof want, "prod counts every byte");
}

/* Queue frame `seq` (length 60 + seq % 700) in TX descriptor i. */
static void tx_queue(unsigned i, unsigned seq)
{
	uint8_t *b = rt_test_ram + TXBUF + 2048 * i;
	uint32_t len = 60 + seq % 700;

	memset(b, 0xff, 6);
	memcpy(b + 6, "\x52\x54\x00\x83\x82\x01\x88\xb5", 8);
	memcpy(b + 14, &seq, 4);
	memset(b + 18, (uint8_t)seq, len - 18);
	g_put32(TXR + DESC * i + 16, CMDSTS_OWN | len);
}

static int tx_frame_is(unsigned k, unsigned seq)
{
	unsigned got;

	memcpy(&got, host.tx_first[k] + 14, 4);
	return got == seq && host.tx_len[k] == 60 + seq % 700 && host.tx_first[k][20] == (uint8_t)seq;
}

static void test_tx_batch(void)
{
	unsigned i, ok = 0;

	fake_boot(1);
	nic_setup(NTX);
	for (i = 0; i < 16; i++)
		tx_queue(i, i);
	g_wr(CR, CR_TXE);
	CHECK(host.tx_frames == 16, "16 frames reached the host (%u)", host.tx_frames);
	CHECK(host.bells == 1 && host.bell_or == RT_BELL_NET_TX, "one doorbell for the batch (%u)",
	      host.bells);
	for (i = 0; i < 16; i++)
		ok += tx_frame_is(i, i) && (g_get32(TXR + DESC * i + 16) & (CMDSTS_OWN | CMDSTS_OK)) == CMDSTS_OK;
	CHECK(ok == 16, "frames in order, descriptors handed back OK (%u)", ok);
	CHECK(fake_shared()->frames_tx == 16, "frames_tx counter");

	/* The host says it is draining: the next batch rings no bell. */
	fake_shared()->host_draining_tx = 1;
	for (i = 16; i < 20; i++)
		tx_queue(i, i);
	g_wr(CR, CR_TXE);
	CHECK(host.bells == 1 && host.tx_frames == 16, "no bell while the host drains");
	fake_tx_take();
	CHECK(host.tx_frames == 20 && tx_frame_is(19, 19), "the host's own drain finds them");
}

/* 100 frames in one CR.TXE through a 32-slot ring whose host never
 * drains on its own (it claims to, so no bell on the first frame) and
 * ignores the first full-ring bell: the runtime waits and rings again. */
static void test_tx_full(void)
{
	unsigned i, ok = 0;

	fake_boot(1);
	nic_setup(NTX);
	fake_shared()->host_draining_tx = 1;
	host.ignore = 1;
	for (i = 0; i < 100; i++)
		tx_queue(i, 1000 + i);
	g_wr(CR, CR_TXE);
	CHECK(host.tx_frames == 96, "three full rings emptied by the host (%u)", host.tx_frames);
	CHECK(host.bells == 4, "3 full-ring bells + 1 repeated after the ignored one (%u)", host.bells);
	fake_tx_take();
	for (i = 0; i < 100; i++)
		ok += tx_frame_is(i, 1000 + i);
	CHECK(host.tx_frames == 100 && ok == 100, "all 100 frames, in order (%u, %u)", host.tx_frames, ok);
	for (i = 0, ok = 0; i < 100; i++)
		ok += (g_get32(TXR + DESC * i + 16) & (CMDSTS_OWN | CMDSTS_OK | CMDSTS_ERR)) == CMDSTS_OK;
	CHECK(ok == 100, "no descriptor reports an error (%u)", ok);
}

/* ---- RX */

static void rx_frame(uint8_t *f, unsigned seq, uint32_t *len)
{
	*len = 64 + seq;
	memcpy(f, "\x52\x54\x00\x83\x82\x01\x02\x00\x00\x00\x00\x07\x88\xb5", 14);
	memcpy(f + 14, &seq, 4);
	memset(f + 18, (uint8_t)(seq * 7), *len - 18);
}

/* The guest's dp83820_poll(): take what the chip filled, check it is the
 * next frame, give the descriptor back; restart the receiver. */
static unsigned rx_guest_poll(unsigned *next_desc, unsigned *next_seq)
{
	unsigned n = 0, seq;
	uint32_t cs, len;
	uint8_t want[2048];

	for (;;) {
		uint64_t d = RXR + DESC * *next_desc;

		cs = g_get32(d + 16);
		if (!(cs & CMDSTS_OWN))
			break;
		rx_frame(want, *next_seq, &len);
		memcpy(&seq, rt_test_ram + RXBUF + 2048 * *next_desc + 14, 4);
		CHECK((cs & CMDSTS_OK) && (cs & CMDSTS_LEN_MASK) == len &&
		      !memcmp(rt_test_ram + RXBUF + 2048 * *next_desc, want, len),
		      "frame %u delivered intact and in order (got %u)", *next_seq, seq);
		g_put32(d + 16, RXSIZE);
		*next_desc = (*next_desc + 1) % NRX;
		(*next_seq)++;
		n++;
	}
	g_wr(CR, CR_RXE);
	return n;
}

static void test_rx_held(void)
{
	struct rt_shared *sh;
	uint8_t f[2048];
	uint32_t len;
	unsigned i, got, desc = 0, seq = 0, rounds = 0;

	fake_boot(1);
	sh = fake_shared();
	CHECK(sh->want_rx_news == 0, "no RX news wanted while the NIC cannot receive");
	nic_setup(NRX);
	g_wr(CR, CR_RXE);
	CHECK(sh->want_rx_news == 1, "RX news wanted once the NIC has descriptors and the ring is empty");

	for (i = 0; i < 10; i++) {
		rx_frame(f, i, &len);
		CHECK(fake_rx_push(f, len) == 0, "host ring takes frame %u", i);
	}
	fake_news(RT_NEWS_RX);
	rt_dev_poll();
	CHECK(sh->news == 0, "news taken");
	CHECK(sh->frames_rx == 4, "4 frames fill the guest's 4 descriptors (%llu)",
	      (unsigned long long)sh->frames_rx);
	CHECK(sh->net_rx.prod - sh->net_rx.cons == 6, "6 frames held in the ring");
	CHECK(sh->frames_rx_held == 6, "frames_rx_held counts each held frame once (%llu)",
	      (unsigned long long)sh->frames_rx_held);
	CHECK(sh->want_rx_news == 0, "no RX news wanted while frames are held");
	rt_dev_poll();
	CHECK(sh->frames_rx == 4 && sh->frames_rx_held == 6, "a poll without news changes nothing");

	for (got = 0; got < 10 && rounds < 10; rounds++)
		got += rx_guest_poll(&desc, &seq);
	CHECK(got == 10 && seq == 10, "all 10 frames delivered in order (%u)", got);
	CHECK(sh->frames_rx == 10 && sh->net_rx.cons == 10, "ring drained");
	CHECK(sh->frames_rx_held == 6, "held counter unchanged by the retries (%llu)",
	      (unsigned long long)sh->frames_rx_held);
	CHECK(sh->want_rx_news == 1, "RX news wanted again");

	/* A frame the host adds while news is wanted comes in with the news. */
	rx_frame(f, 10, &len);
	fake_rx_push(f, len);
	fake_news(RT_NEWS_RX);
	rt_dev_poll();
	CHECK(rx_guest_poll(&desc, &seq) == 1 && seq == 11, "frame 10 after news");
	CHECK(sh->frames_rx_held == 6, "nothing held");
}

/* The NIC's interrupt reaches the PIC as IRQ 11, level-triggered. */
static void test_rx_irq(void)
{
	uint8_t f[2048];
	uint32_t len;

	fake_boot(1);
	g_pic_init(1u << 2 | 1u << FAKE_NIC_IRQ);
	nic_setup(NRX);
	g_wr(IMR, ISR_RXOK);
	g_wr(IER, 1);
	g_wr(CR, CR_RXE);
	CHECK(!rt_dev_irq_pending(), "no interrupt before a frame");
	rx_frame(f, 0, &len);
	fake_rx_push(f, len);
	fake_news(RT_NEWS_RX);
	rt_dev_poll();
	CHECK(rt_dev_irq_pending(), "a received frame raises the NIC's line");
	CHECK(rt_dev_irq_ack() == 0x28 + (FAKE_NIC_IRQ - 8), "vector of IRQ 11");
	CHECK(!rt_dev_irq_pending(), "in service");
	g_rd(ISR); /* read-to-clear lowers the line */
	g_out(0xa0, 1, 0x20);
	g_out(0x20, 1, 0x20);
	CHECK(!rt_dev_irq_pending(), "nothing after EOI with the line low");
}

/* Two vCPUs print at once (the AP uses COM1 too) while a host thread
 * drains: every byte arrives, each CPU's bytes in its own order. */
#define PER_CPU 20000u
static volatile int console_done;

static void *cpu_print(void *arg)
{
	unsigned cpu = (unsigned)(uintptr_t)arg, i;
	uintptr_t refused = 0;
	uint32_t v;

	for (i = 0; i < PER_CPU; i++) {
		v = cpu ? 'a' + i % 26 : 'A' + i % 26;
		refused += rt_dev_pio(0x3f8, 1, 1, &v) != 1;
	}
	return (void *)refused;
}

static void *host_drain(void *arg)
{
	while (!__atomic_load_n(&console_done, __ATOMIC_ACQUIRE))
		fake_console_take();
	fake_console_take();
	return NULL;
}

static void test_console_two_cpus(void)
{
	pthread_t c0, c1, h;
	void *r0, *r1;
	unsigned i, n0 = 0, n1 = 0, bad = 0;

	fake_boot(0);
	host.drain_console = 0; /* only the host thread consumes */
	console_done = 0;
	pthread_create(&h, NULL, host_drain, NULL);
	pthread_create(&c0, NULL, cpu_print, (void *)0);
	pthread_create(&c1, NULL, cpu_print, (void *)1);
	pthread_join(c0, &r0);
	pthread_join(c1, &r1);
	CHECK(!r0 && !r1, "the UART took every byte");
	__atomic_store_n(&console_done, 1, __ATOMIC_RELEASE);
	pthread_join(h, NULL);
	for (i = 0; i < host.console_len; i++) {
		char c = host.console[i];

		if (c >= 'A' && c <= 'Z')
			bad += (unsigned)c != 'A' + n0++ % 26;
		else
			bad += (unsigned)c != 'a' + n1++ % 26;
	}
	CHECK(host.console_len == 2 * PER_CPU && n0 == PER_CPU && n1 == PER_CPU && !bad,
	      "40000 bytes from two CPUs, none lost, each CPU's in order (%zu, %u bad)",
	      host.console_len, bad);
}

int main(void)
{
	test_console_lines();
	test_console_full();
	test_console_two_cpus();
	test_tx_batch();
	test_tx_full();
	test_rx_held();
	test_rx_irq();
	return tap_done("test_rt_dev_channel");
}
