/*
 * udpwire.h - the cache replication datagram (stock uWSGI's UDP format),
 * ucache's signed trailer, and the receiver's replay guard.  No uWSGI in
 * it: udp.c uses it inside the plugin; tests/unit/test_udpwire.c and the
 * fuzzer (tests/fuzz/fuzz_udp.c) link it alone with the rest of wire/ and libcrypto.
 *
 * Every byte of a received datagram is untrusted: each length is compared
 * with the bytes left before it is used, numbers are strict decimal,
 * nothing is allocated (but the replay guard's table), results point into
 * the caller's buffer.
 *
 * The datagram (integers little endian, as stock 2.0.21 core/cache.c):
 *
 *   header   modifier1 111 | pktsize (u16: bytes after the header) | cmd
 *   set      cmd 10: klen (u16) key | vlen (u16) value | elen (u16) expiry
 *            expiry = the absolute expiry in decimal text ("0" = never)
 *   del      cmd 11: klen (u16) key | 2 padding bytes (ucache sends 0, 0)
 *
 * Why the padding: stock receivers check "4 + klen > pktsize" before any
 * command, which every unpadded del (pktsize = 2 + klen) fails, so stock
 * nodes never applied a replicated del.  Two more bytes make a del pass
 * that check; stock ignores them.  Both forms are accepted here.
 *
 * Accepted like stock: a set that ends after its value (no expiry, = 0),
 * or with an empty expiry text (= 0).  Refused unlike stock: any other
 * bytes after the body (unless they are a signed trailer), an empty key or
 * value, an expiry that is not 1-20 decimal digits.
 *
 * The signed trailer (ucache only, optional: udp_secret_file=), appended
 * after the body and counted in pktsize:
 *
 *   "UCS1" | sender (u64) | seq (u64) | timestamp (u64, s) | mac (32 bytes)
 *   mac = HMAC-SHA256(secret, every byte before it: header, body, "UCS1",
 *         sender, seq, timestamp)
 *
 * A stock receiver still applies a signed datagram (it reads key, value and
 * expiry by their lengths and ignores what follows); it cannot check the
 * mac.  A datagram never parses both as unsigned and as signed: both parses
 * read the same length fields at the same offsets, so their bodies end at
 * the same byte, and the two totals differ by the trailer's 60 bytes.
 */
#ifndef UCP_UDPWIRE_H
#define UCP_UDPWIRE_H

#include "packet.h"

#define UCP_UDPW_SET 10
#define UCP_UDPW_DEL 11
#define UCP_UDPW_DEL_PAD 2
#define UCP_UDPW_MAGIC "UCS1"
#define UCP_UDPW_MAC_LEN 32
#define UCP_UDPW_TRAILER (4 + 8 + 8 + 8 + UCP_UDPW_MAC_LEN)
/* The largest UDP payload over IPv4 (65535 - 20 - 8): a bigger datagram
 * cannot be sent at all, so a value that does not fit goes out as a del. */
#define UCP_UDPW_MAX 65507
/* Longest expiry text (UINT64_MAX has 20 digits). */
#define UCP_UDPW_EXPIRY_MAX 20

/* Why a datagram was refused: UCP_UDPW_E* (packet.h has every wire
 * error in one enum, and their names in one table). */


/* One parsed datagram; pointers are into the caller's buffer. */
struct ucp_udpw_msg {
	uint8_t cmd;              /* UCP_UDPW_SET or UCP_UDPW_DEL */
	const char *key, *value;  /* value: set only */
	uint16_t key_len, value_len;
	uint64_t expires;         /* set: absolute, 0 = never */
	int has_trailer;          /* signed: the fields below are valid */
	uint64_t sender, seq, timestamp;
	size_t mac_off;           /* the mac's offset = bytes it covers */
};

/* Parse a whole datagram (len bytes).  0 or -UCP_UDPW_E* (< EPARSE_MAX). */
int ucp_udpw_parse(const void *buf, size_t len, struct ucp_udpw_msg *m);

/* A short name for an error class ("truncated key", ...); never NULL. */
const char *ucp_udpw_strerror(int err);

/* Encode a set / a padded del into buf (cap bytes).  Returns the length, or
 * 0 if it does not fit in cap or in UCP_UDPW_MAX (keep room for a trailer
 * when signing: pass cap = UCP_UDPW_MAX - UCP_UDPW_TRAILER). */
size_t ucp_udpw_encode_set(void *buf, size_t cap, const void *key, uint16_t klen,
		const void *val, size_t vlen, uint64_t expires);
size_t ucp_udpw_encode_del(void *buf, size_t cap, const void *key, uint16_t klen);

/* Append the signed trailer to the len-byte datagram at buf (cap bytes)
 * and fix its pktsize.  Returns the new length, 0 if it does not fit or
 * libcrypto fails. */
size_t ucp_udpw_sign(void *buf, size_t len, size_t cap, const void *secret, size_t secret_len,
		uint64_t sender, uint64_t seq, uint64_t timestamp);

/* Check a parsed signed datagram's mac (constant time).  0 or
 * -UCP_UDPW_EMAC (also for a datagram without trailer). */
int ucp_udpw_verify(const void *buf, const struct ucp_udpw_msg *m, const void *secret,
		size_t secret_len);

/* ---------------------------------------------------------- replay guard */

/*
 * Anti-replay for signed datagrams, kept by one receiver thread (no lock).
 * A datagram is accepted once: its timestamp must be within window seconds
 * of now, and its (sender, seq) new.  Each sender (a process: a random
 * 64-bit id, seq counting from 1) has a 64-seq sliding bitmap, as IPsec's
 * (RFC 4303 3.4.3): a seq more than 63 behind the sender's highest is
 * refused as a replay, so heavy reordering may drop a datagram, never
 * apply one twice.  A sender's entry is reused only after it has been
 * quiet for more than window seconds past the newest of its arrival times
 * and timestamps: any datagram it was tracking is then out of the window
 * too, so forgetting it lets no replay through.
 *
 * The senders live in an open-addressing hash table (linear probing,
 * malloc'd on first use, grown by doubling at 3/4 full; a rehash drops the
 * entries whose window has passed).  The only limit is on senders heard
 * within one window: max (0 = UCP_UDPW_SENDERS).  65536 is 8 nodes of 32
 * workers respawned 255 times in 30 s; its table is at most 131072 slots
 * of 32 bytes = 4 MiB.  The entry of a sender past that limit would have
 * to evict a live one and let its replays in: such a datagram is refused
 * (-UCP_UDPW_EBUSY) instead, until entries expire.
 */
#define UCP_UDPW_SENDERS 65536

struct ucp_udpw_sender {
	uint64_t id;              /* 0: free */
	uint64_t top;             /* highest seq accepted */
	uint64_t bits;            /* bit i: top - i accepted */
	uint64_t last;            /* max(arrival, timestamp) of the last accepted */
};

/* Zero-initialize, then set window (and max); ucp_udpw_guard_free()
 * releases the table. */
struct ucp_udpw_guard {
	uint64_t window;          /* seconds */
	size_t max;               /* senders heard within a window; 0 = UCP_UDPW_SENDERS */
	size_t cap;               /* slots in s: 0 or a power of two */
	size_t used;              /* slots with an id (live or expired) */
	struct ucp_udpw_sender *s;
};

/* Accept and record (sender, seq, timestamp) at now, or refuse:
 * -UCP_UDPW_EWINDOW, -UCP_UDPW_EREPLAY (also seq 0 or sender 0),
 * -UCP_UDPW_EBUSY (a new sender while max senders were heard within the
 * window, or no memory to grow the table). */
int ucp_udpw_guard_check(struct ucp_udpw_guard *g, uint64_t sender, uint64_t seq,
		uint64_t timestamp, uint64_t now);

/* Free the table (the guard may be used again: it starts empty). */
void ucp_udpw_guard_free(struct ucp_udpw_guard *g);

/* What a receiver runs on each datagram: parse, then with a secret
 * (secret_len > 0) require the trailer, check the mac and ask the guard
 * (at now).  0 if it may be applied; -UCP_UDPW_E*: below EPARSE_MAX the
 * datagram is malformed, from EUNSIGNED on it is refused. */
int ucp_udpw_accept(const void *buf, size_t len, struct ucp_udpw_msg *m, const void *secret,
		size_t secret_len, struct ucp_udpw_guard *g, uint64_t now);

/* -------------------------------------------------------- source networks */

/* One udp_allow= entry: an address (all of its bits) or a CIDR network.
 * IPv4 sources that reach an IPv6 socket as ::ffff:a.b.c.d match IPv4
 * entries. */
struct ucp_udpw_net {
	int family;               /* AF_INET or AF_INET6 */
	unsigned prefix;          /* 0..32 or 0..128 */
	unsigned char addr[16];   /* network byte order, host bits zeroed */
};

/* Parse "ADDR" or "ADDR/PREFIX" (len bytes, numeric IPv4 or IPv6).  0, or
 * -1 for anything else. */
int ucp_udpw_net_parse(const char *s, size_t len, struct ucp_udpw_net *out);

/* Does the source (family, address bytes in network order) lie in one of
 * the n networks?  1 or 0. */
int ucp_udpw_net_match(const struct ucp_udpw_net *nets, size_t n, int family, const void *addr);

#endif
