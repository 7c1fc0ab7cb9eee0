/*
 * packet.c - the uwsgi packet every wire format here is made of (packet.h):
 * header, vars, strict numbers, little-endian integers, parse errors.  No
 * uWSGI, no allocation, no state: safe from any thread, and linked alone by
 * the unit tests and the fuzzers.
 *
 * The parser's one rule: a length is compared with the bytes left before
 * anything is read through it.  Comparisons are written as "left < n"
 * (left = len - pos, never negative) so that no sum can overflow.
 */
#include "packet.h"

#include <stdio.h>
#include <string.h>

int ucp_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned) (unsigned char) s[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static const char *const err_names[UCP_UDPW_EMAX] = {
	[0] = "ok",
	[UCP_PERR_EMPTY] = "empty body",
	[UCP_PERR_TRUNCATED] = "truncated (a length runs past the packet)",
	[UCP_PERR_VARNAME] = "var with an empty name",
	[UCP_PERR_NUMBER] = "size or expires is not a number",
	[UCP_PERR_NOKEY] = "no key",
	[UCP_PERR_KEYSIZE] = "key too long",
	[UCP_PERR_ARRAY] = "set without key and value",
	[UCP_PERR_COMMAND] = "missing or unknown cmd",
	[UCP_PERR_SIZE] = "bad size",
	[UCP_PERR_MODIFIER2] = "unknown modifier2",
	[UCP_PERR_TAGS] = "invalidate without tags (or with an empty one)",
	[UCP_UDPW_ESHORT] = "shorter than a header",
	[UCP_UDPW_EMOD1] = "modifier1 is not 111",
	[UCP_UDPW_EPKTSIZE] = "pktsize does not match the datagram",
	[UCP_UDPW_ECMD] = "modifier2 is not 10 (set) or 11 (del)",
	[UCP_UDPW_EKEY] = "bad or truncated key",
	[UCP_UDPW_EVALUE] = "bad or truncated value",
	[UCP_UDPW_EEXPIRY] = "bad or truncated expiry",
	[UCP_UDPW_ETRAILING] = "bytes after the body",
	[UCP_UDPW_EUNSIGNED] = "unsigned (udp_secret_file is set)",
	[UCP_UDPW_EMAC] = "bad signature",
	[UCP_UDPW_EWINDOW] = "timestamp outside the window",
	[UCP_UDPW_EREPLAY] = "replayed",
	[UCP_UDPW_EBUSY] = "too many senders",
};

/* 0 is "ok" in every class. */
const char *ucp_wire_err_name(int err, int min, int max)
{
	if (err < 0)
		err = -err;
	if (err != 0 && (err < min || err >= max))
		return "unknown error";
	return err_names[err];
}

const char *ucp_perr_str(int err)
{
	return ucp_wire_err_name(err, UCP_PERR_EMPTY, UCP_PERR_MAX);
}

/* ------------------------------------------------------------------ vars */

int ucp_vars_each(const char *buf, size_t len, ucp_var_fn field, void *ctx)
{
	struct ucp_vars it = { buf, len, 0 };
	const char *k, *v;
	uint16_t kl, vl;
	int rc;

	while ((rc = ucp_vars_next(&it, &k, &kl, &v, &vl)) > 0) {
		rc = field(ctx, k, kl, v, vl);
		if (rc)
			return rc;
	}
	return rc;
}

size_t ucp_put_var(char *out, const char *k, const char *v, size_t vl)
{
	size_t kl = strlen(k);

	ucp_put_le16(out, (uint16_t) kl);
	memcpy(out + 2, k, kl);
	ucp_put_le16(out + 2 + kl, (uint16_t) vl);
	memcpy(out + 4 + kl, v, vl);
	return 4 + kl + vl;
}

size_t ucp_put_num_var(char *out, const char *k, uint64_t num)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) num);

	return ucp_put_var(out, k, digits, (size_t) n);
}
