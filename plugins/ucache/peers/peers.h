/*
 * peers/peers.h - the other nodes: remote caches by "name@addr"
 * (remote.c), the start-up sync (sync.c), replication over UDP (udp.c),
 * all but UDP over one modifier1 111 client (client.c).
 */
#ifndef UCP_PEERS_H
#define UCP_PEERS_H

#include "ucp.h"
#include "wire/image.h"

/* ------------------------------------------------------------- client.c */

/* The modifier1 111 client transport, every wait bounded by
 * --socket-timeout.  connect: a socket to addr ("host:port" or a unix
 * path), or -1.  write/read: all len bytes, 0 or -1 (error, timeout, end
 * of stream).  read_some: at most len bytes, 0 at the end, -1 on error. */
int ucp_client_connect(const char *addr);
int ucp_client_write(int fd, const char *buf, size_t len);
int ucp_client_read(int fd, char *buf, size_t len);
ssize_t ucp_client_read_some(int fd, char *buf, size_t len);

/* ------------------------------------------------------------- remote.c */

/* Split "name@addr": *addr points after '@', *name_len = bytes before it.
 * Returns 0 if cache names a remote cache, -1 otherwise. */
int ucp_remote_split(const char *cache, const char **addr, uint16_t *name_len);

char *ucp_remote_get(const char *cache, char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires);
int ucp_remote_set(const char *cache, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags);
int ucp_remote_simple(const char *cmd, const char *cache, char *key, uint16_t klen);

/* Build a modifier2 17 request: header + vars.  NULL on allocation failure. */
struct uwsgi_buffer *ucp_magic_request(const char *cmd, const char *cache, uint16_t cache_len,
		const char *key, uint16_t key_len, int with_size, uint64_t size, uint64_t expires);

/* --------------------------------------------------------------- sync.c */

/* Import cache c's contents from the first of nodes (';'-separated) that
 * answers, in the master before fork; exits 1 naming the nodes if none
 * does (as stock does). */
void ucp_sync_cache(struct ucp_cache *c, const char *nodes);

/* Stock's memory layout of an item, and this cache's geometry, as
 * wire/image.c reads and writes them (serve/stockimage.c too). */
struct ucp_image_layout ucp_stock_layout(void);
struct ucp_image_geom ucp_own_geom(const struct ucache_config *cfg);

/* ---------------------------------------------------------------- udp.c */

struct ucp_udp;

/* Read and check the cache's nodes/udp/udp_allow/udp_secret_file (legacy:
 * --cache-udp-node/--cache-udp-server), bind udp=, log the stock lines;
 * exits naming the option on a bad value.  In the master, before fork. */
void ucp_udp_setup(struct ucp_cache *c, int legacy);

/* Replicate a successful local write (only when c->udp is set): a set with
 * its expiry (relative seconds unless absolute), a del, or the current
 * stored item of a key after math or an atomic (RPC) write. */
void ucp_udp_send_set(struct ucp_cache *c, const char *key, uint16_t klen, const char *val,
		uint64_t vlen, uint64_t expires, int absolute);
void ucp_udp_send_del(struct ucp_cache *c, const char *key, uint16_t klen);
void ucp_udp_send_item(struct ucp_cache *c, const char *key, uint16_t klen);

/* The master's receiver threads (in place of uwsgi_cache_start_sync_servers). */
void ucp_udp_servers_start(void);

/* Stop applying received datagrams for good (before the caches close). */
void ucp_udp_quiesce(void);

/* The i-th udp_* counter of c: 1 with *name and *value set, 0 past the last
 * (or without nodes/udp). */
int ucp_udp_stat(const struct ucp_cache *c, size_t i, const char **name, uint64_t *value);

#endif
