/*
 * fuzz_udp.c - libFuzzer target for the replication datagram parser and
 * receiver pipeline (plugins/ucache/udpwire.c): the code that reads every
 * datagram arriving on a udp= socket.
 *
 * Input: one datagram as recvfrom() returns it, copied into a buffer of
 * exactly its size (any read past it is an ASan report).  It goes through
 * ucp_udpw_accept() twice: without a secret (as a stock-compatible node)
 * and with the corpus's secret and clock (tests/fuzz/make_udp_corpus.py),
 * with a replay guard that lives across inputs.
 *
 * Checked besides memory safety (a violation is __builtin_trap()):
 *   - every result is 0 or a -UCP_UDPW_E* that has a name;
 *   - an accepted datagram's key (and a set's value) is non-empty and lies
 *     inside the datagram; a parse error is the same with or without a secret;
 *   - re-encoding an accepted datagram gives back its body byte for byte
 *     (a stock del is re-encoded padded), and parses to the same fields.
 *
 * Built two ways by the Makefile: with -fsanitize=fuzzer for
 * `make fuzz FUZZ_TARGET=udp`, and with replay.c's main() for `make test`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "udpwire.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const char secret[] = "ucache-fuzz-secret-0123456789";
#define NOW 1800000000u

static struct ucp_udpw_guard guard = { .window = 30 };

static void inside(const char *p, size_t n, const unsigned char *lo, size_t len)
{
	volatile unsigned sum = 0;
	size_t i;

	CHECK(p && n > 0 && (const unsigned char *) p >= lo && n <= len &&
			(size_t) ((const unsigned char *) p - lo) <= len - n);
	for (i = 0; i < n; i++)
		sum += (unsigned char) p[i];
	(void) sum;
}

static void reencode(const struct ucp_udpw_msg *m)
{
	static unsigned char out[UCP_UDPW_MAX];
	struct ucp_udpw_msg back;
	size_t len;

	if (m->cmd == UCP_UDPW_SET)
		len = ucp_udpw_encode_set(out, sizeof(out), m->key, m->key_len, m->value, m->value_len,
				m->expires);
	else
		len = ucp_udpw_encode_del(out, sizeof(out), m->key, m->key_len);
	CHECK(len > 0);
	CHECK(ucp_udpw_parse(out, len, &back) == 0);
	CHECK(back.cmd == m->cmd && back.key_len == m->key_len && !memcmp(back.key, m->key, m->key_len));
	CHECK(back.value_len == m->value_len && back.expires == m->expires && !back.has_trailer);
	if (m->cmd == UCP_UDPW_SET)
		CHECK(!memcmp(back.value, m->value, m->value_len));
}

static void check(const unsigned char *d, size_t len, int ret, const struct ucp_udpw_msg *m)
{
	CHECK(ret <= 0 && -ret < UCP_UDPW_EMAX && ucp_udpw_strerror(ret));
	if (ret)
		return;
	inside(m->key, m->key_len, d, len);
	if (m->cmd == UCP_UDPW_SET)
		inside(m->value, m->value_len, d, len);
	else
		CHECK(m->cmd == UCP_UDPW_DEL && !m->value && !m->value_len);
	reencode(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ucp_udpw_msg m;
	unsigned char *d = malloc(size ? size : 1);
	int plain, sec;

	if (!d)
		return 0;
	memcpy(d, data, size);
	plain = ucp_udpw_accept(d, size, &m, NULL, 0, NULL, NOW);
	check(d, size, plain, &m);
	sec = ucp_udpw_accept(d, size, &m, secret, sizeof(secret) - 1, &guard, NOW);
	check(d, size, sec, &m);
	if (plain)
		CHECK(sec == plain);
	free(d);
	return 0;
}
