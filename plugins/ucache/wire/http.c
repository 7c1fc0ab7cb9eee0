/*
 * http.c - the HTTP side of modifier1 111 (http.h): a cached value sent
 * as an HTTP response to nginx, ETags and 304s.  No uWSGI, no allocation.
 */
#include "http.h"

#include <stdio.h>
#include <string.h>

const char ucp_http_404[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
	"Content-Length: 9\r\n\r\nNot Found";
const size_t ucp_http_404_len = sizeof(ucp_http_404) - 1;

int ucp_http_is_response(const char *v, size_t len)
{
	return len >= 5 && memcmp(v, "HTTP/", 5) == 0;
}

/* The end of the head of an HTTP response (after its blank line), or len. */
static size_t head_end(const char *resp, size_t len)
{
	const char *end = memmem(resp, len, "\r\n\r\n", 4);

	return end ? (size_t) (end - resp) + 4 : len;
}

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

int ucp_http_etag(const char *resp, size_t len, const char **etag, size_t *elen)
{
	size_t hend = head_end(resp, len), pos = 0;

	while (pos < hend) {
		const char *line = resp + pos, *eol = memchr(line, '\n', hend - pos);
		size_t llen = eol ? (size_t) (eol - line) : hend - pos, i;

		pos += llen + 1;
		if (llen && line[llen - 1] == '\r')
			llen--;
		if (llen < 5)
			continue;
		for (i = 0; i < 5 && lower((unsigned char) line[i]) == "etag:"[i]; i++)
			;
		if (i < 5)
			continue;
		while (i < llen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		while (llen > i && (line[llen - 1] == ' ' || line[llen - 1] == '\t'))
			llen--;
		if (i == llen)
			return -1;
		*etag = line + i;
		*elen = llen - i;
		return 0;
	}
	return -1;
}

/* An entity tag without its weakness prefix. */
static void strip_weak(const char **t, size_t *len)
{
	if (*len >= 2 && (*t)[0] == 'W' && (*t)[1] == '/') {
		*t += 2;
		*len -= 2;
	}
}

int ucp_etag_match(const char *inm, size_t inm_len, const char *etag, size_t elen)
{
	size_t pos = 0;

	strip_weak(&etag, &elen);
	while (pos < inm_len) {
		const char *t;
		size_t tl;

		while (pos < inm_len && (inm[pos] == ' ' || inm[pos] == '\t' || inm[pos] == ','))
			pos++;
		t = inm + pos;
		while (pos < inm_len && inm[pos] != ',')
			pos++;
		tl = (size_t) (inm + pos - t);
		while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
			tl--;
		if (tl == 1 && t[0] == '*')
			return 1;
		strip_weak(&t, &tl);
		if (tl && tl == elen && !memcmp(t, etag, elen))
			return 1;
	}
	return 0;
}

size_t ucp_http_304(char *out, size_t outlen, const char *etag, size_t elen)
{
	static const char a[] = "HTTP/1.1 304 Not Modified\r\nETag: ", b[] = "\r\n\r\n";
	size_t n = sizeof(a) - 1 + elen + sizeof(b) - 1;

	if (n > outlen)
		return 0;
	memcpy(out, a, sizeof(a) - 1);
	memcpy(out + sizeof(a) - 1, etag, elen);
	memcpy(out + sizeof(a) - 1 + elen, b, sizeof(b) - 1);
	return n;
}

size_t ucp_http_head(char *out, uint64_t clen)
{
	int n = snprintf(out, UCP_HTTP_HEAD_MAX, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n",
			(unsigned long long) clen);

	return n > 0 && n < UCP_HTTP_HEAD_MAX ? (size_t) n : 0;
}
