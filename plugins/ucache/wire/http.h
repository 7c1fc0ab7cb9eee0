/*
 * http.h - a cached value answered as HTTP over modifier1 111 (nginx's
 * uwsgi_pass with modifier2 3/4): the 200 head, ETag and If-None-Match,
 * the 304 and the 404.  No uWSGI.
 */
#ifndef UCP_HTTP_H
#define UCP_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Does the value already hold a whole HTTP response (starts with "HTTP/")?
 * Such a value is sent as it is; any other is the body of a 200. */
int ucp_http_is_response(const char *v, size_t len);

/* Largest head ucp_http_head() writes. */
#define UCP_HTTP_HEAD_MAX 64

/* Write "HTTP/1.1 200 OK" + Content-Length: clen + blank line into out
 * (at least UCP_HTTP_HEAD_MAX bytes); returns its length. */
size_t ucp_http_head(char *out, uint64_t clen);

/* The value of the ETag header of the HTTP response (resp, len), searched
 * in its head only: 0 with (*etag, *elen) pointing into resp, or -1. */
int ucp_http_etag(const char *resp, size_t len, const char **etag, size_t *elen);

/* Does If-None-Match (inm, a comma-separated list of entity tags, or "*")
 * match etag?  Weak comparison (RFC 9110 13.1.2): W/ prefixes ignored. */
int ucp_etag_match(const char *inm, size_t inm_len, const char *etag, size_t elen);

/* Largest 304 reply ucp_http_304() writes for an ETag of elen bytes. */
#define UCP_HTTP_304_FIXED 64

/* Write "HTTP/1.1 304 Not Modified" with the ETag into out (outlen bytes);
 * returns its length, or 0 if it does not fit. */
size_t ucp_http_304(char *out, size_t outlen, const char *etag, size_t elen);

/* The whole reply to a miss on modifier2 4. */
extern const char ucp_http_404[];
extern const size_t ucp_http_404_len;

#endif
