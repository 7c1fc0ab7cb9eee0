/*
 * packet.h - the uwsgi packet every wire format of the plugin is made of:
 *
 *   packet  = header(4) body
 *   header  = modifier1 (u8) | pktsize (u16 LE: bytes of body) | modifier2 (u8)
 *   vars    = { keylen (u16 LE, > 0) key vallen (u16 LE) val }*
 *
 * with strict decimal numbers, little-endian integers and the parse errors
 * every parser here returns.  No uWSGI (tests/check_layering.py refuses a
 * uWSGI header under wire/): the unit tests and the fuzzers link wire/
 * alone.  The small helpers are inline: the request parser calls them per
 * byte run.
 */
#ifndef UCP_PACKET_H
#define UCP_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UCP_MODIFIER1 111
#define UCP_HEADER_SIZE 4
/* Largest key the engine accepts (UCACHE_KEYSIZE_MAX). */
#define UCP_KEY_MAX 65534

/* The modifier2 of modifier1 111 packets (docs/PROTOCOLS.md has them all;
 * 10 and 11 are the replication datagram's, udpwire.h). */
enum ucp_modifier2 {
	UCP_M2_GET = 0,
	UCP_M2_SET = 1,
	UCP_M2_DEL = 2,
	UCP_M2_HTTP_KEY = 3,
	UCP_M2_HTTP_GET = 4,
	UCP_M2_STREAM = 5,
	UCP_M2_DUMP = 6,
	UCP_M2_DUMP_REPLY = 7,     /* modifier2 of a dump reply's header */
	UCP_M2_MAGIC = 17,
};

/* Why a request was refused by the parser; ucp_request_parse() returns the
 * negated value.  Each class has a packet in tests/fuzz/regressions/. */
enum ucp_perr {
	UCP_PERR_EMPTY = 1,     /* no body where the command needs one */
	UCP_PERR_TRUNCATED,     /* a length runs past the end of the packet */
	UCP_PERR_VARNAME,       /* a var with an empty name */
	UCP_PERR_NUMBER,        /* size or expires is not a decimal u64 */
	UCP_PERR_NOKEY,         /* the command needs a key and has none */
	UCP_PERR_KEYSIZE,       /* key longer than UCP_KEY_MAX */
	UCP_PERR_ARRAY,         /* set: fewer than two non-empty items */
	UCP_PERR_COMMAND,       /* magic: cmd missing or unknown */
	UCP_PERR_SIZE,          /* magic set/update: size missing or 0 */
	UCP_PERR_MODIFIER2,     /* a modifier2 this protocol does not have */
	UCP_PERR_TAGS,          /* magic invalidate: tags missing, or an empty tag */
	UCP_PERR_MAX
};

/* The replication datagram's, after them (one enum, one name table). */
/* Why a datagram was refused; the functions return the negated value.
 * Each class has a datagram in tests/fuzz/udp-regressions/ (named after
 * the class), replayed by `make test`. */
enum ucp_udpw_err {
	UCP_UDPW_ESHORT = UCP_PERR_MAX, /* shorter than the 4-byte header */
	UCP_UDPW_EMOD1,         /* modifier1 is not 111 */
	UCP_UDPW_EPKTSIZE,      /* pktsize is not the datagram's length - 4 */
	UCP_UDPW_ECMD,          /* modifier2 is neither 10 (set) nor 11 (del) */
	UCP_UDPW_EKEY,          /* key length missing, 0 or past the end */
	UCP_UDPW_EVALUE,        /* set: value length missing, 0 or past the end */
	UCP_UDPW_EEXPIRY,       /* set: expiry truncated or not decimal */
	UCP_UDPW_ETRAILING,     /* bytes after the body that are no trailer */
	UCP_UDPW_EPARSE_MAX,
	/* refusals of a well-formed datagram (udp.c, the replay guard) */
	UCP_UDPW_EUNSIGNED = UCP_UDPW_EPARSE_MAX, /* no trailer, a secret is set */
	UCP_UDPW_EMAC,          /* the mac does not match */
	UCP_UDPW_EWINDOW,       /* timestamp too far from now */
	UCP_UDPW_EREPLAY,       /* (sender, seq) already seen, or too old */
	UCP_UDPW_EBUSY,         /* too many live senders to track */
	UCP_UDPW_EMAX
};

/* A short name for a wire error ("truncated ...", "bad signature"); never
 * NULL: "unknown error" past the class's max.  perr_str: a request parse
 * error; udpw_strerror (udpwire.h): a datagram refusal. */
const char *ucp_perr_str(int err);
const char *ucp_wire_err_name(int err, int min, int max);

/* Strict decimal (1-20 digits, no sign, no overflow) -> *out.  0 or -1. */
int ucp_parse_u64(const char *s, size_t len, uint64_t *out);


/* Does the counted string (s, len) equal the C string lit? */
static inline int ucp_streq(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && (n == 0 || memcmp(s, lit, n) == 0);
}

static inline uint16_t ucp_le16(const void *p)
{
	const unsigned char *u = p;

	return (uint16_t) (u[0] | (u[1] << 8));
}

static inline uint64_t ucp_le64(const void *p)
{
	const unsigned char *u = p;
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | u[i];
	return v;
}

static inline void ucp_put_le16(void *p, uint16_t v)
{
	unsigned char *u = p;

	u[0] = (unsigned char) v;
	u[1] = (unsigned char) (v >> 8);
}

static inline void ucp_put_le64(void *p, uint64_t v)
{
	unsigned char *u = p;
	int i;

	for (i = 0; i < 8; i++, v >>= 8)
		u[i] = (unsigned char) v;
}

static inline void ucp_header(void *out, uint16_t pktsize, uint8_t modifier2)
{
	unsigned char *u = out;

	u[0] = UCP_MODIFIER1;
	ucp_put_le16(u + 1, pktsize);
	u[3] = modifier2;
}

struct ucp_vars {
	const char *buf;
	size_t len, pos;
};

/* The next var: 1 with (k, kl, v, vl) set, 0 at the end, or -UCP_PERR_*. */
static inline int ucp_vars_next(struct ucp_vars *it, const char **k, uint16_t *kl, const char **v, uint16_t *vl)
{
	size_t left = it->len - it->pos;

	if (left == 0)
		return 0;
	if (left < 2)
		return -UCP_PERR_TRUNCATED;
	*kl = ucp_le16(it->buf + it->pos);
	if (*kl == 0)
		return -UCP_PERR_VARNAME;
	if (left - 2 < (size_t) *kl + 2)
		return -UCP_PERR_TRUNCATED;
	*k = it->buf + it->pos + 2;
	*vl = ucp_le16(*k + *kl);
	left -= 4 + (size_t) *kl;
	if (left < *vl)
		return -UCP_PERR_TRUNCATED;
	*v = *k + *kl + 2;
	it->pos += 4 + (size_t) *kl + *vl;
	return 1;
}


/* Hand every var of buf to field; stop at its first non-zero return.
 * 0, or -UCP_PERR_* (the iterator's or field's). */
typedef int (*ucp_var_fn)(void *ctx, const char *k, uint16_t kl, const char *v, uint16_t vl);
int ucp_vars_each(const char *buf, size_t len, ucp_var_fn field, void *ctx);

/* Append var (k, v) at out (4 + strlen(k) + vl bytes); returns the bytes
 * written.  put_num: v is num in decimal (at most 20 digits). */
size_t ucp_put_var(char *out, const char *k, const char *v, size_t vl);
size_t ucp_put_num_var(char *out, const char *k, uint64_t num);

#endif
