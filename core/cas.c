/*
 * cas.c - the atomic operations on one item: versions, compare-and-set,
 * conditional delete, update keeping the TTL, touch, remaining TTL.
 *
 * Each is one uc_write_cond() (write.c): the decision is taken under the
 * key's stripe lock, so it and the write it allows are one step for every
 * other process.  A version is the value's 64-bit xxh3 (ucache.h says why
 * that is enough); computing it costs ~0.1 ns a byte under the lock, 1 us
 * for the largest single-block value of 64 KiB.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "write.h"

uint64_t ucache_version_of(const void *val, size_t vlen)
{
	uint64_t h = XXH3_64bits(val, vlen);

	return h ? h : 1;
}

void *ucache_gets(ucache_t *c, const void *key, size_t klen, size_t *vallen, uint64_t *version,
		  struct ucache_item_info *info)
{
	size_t len = 0;
	void *v = ucache_get_alloc(c, key, klen, &len, info);

	if (v && version)
		*version = ucache_version_of(v, len);
	if (v && vallen)
		*vallen = len;
	return v;
}

static uint64_t item_version(const ucache_t *c, uint32_t id)
{
	return ucache_version_of(uc_slot_val(c, id), c->slots[id].vallen);
}

struct cas_cond {
	uint64_t version;
	unsigned flags;
};

static int cas_cond(const ucache_t *c, uint32_t id, uint64_t *expires, void *ud)
{
	struct cas_cond *k = ud;

	if (!k->version)
		return id ? -EEXIST : 0;
	if (!id || item_version(c, id) != k->version)
		return -ESTALE;
	if (k->flags & UCACHE_CAS_KEEP_TTL)
		*expires = c->slots[id].expires;
	return 0;
}

int ucache_cas(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t expires,
	       unsigned flags, uint64_t version)
{
	struct cas_cond k = { .version = version, .flags = flags };

	if (!val || !vlen)
		return -EINVAL;
	return uc_write_cond(c, key, klen, val, vlen, expires, 0, cas_cond, &k);
}

static int del_if_cond(const ucache_t *c, uint32_t id, uint64_t *expires, void *ud)
{
	(void)expires;
	if (id && item_version(c, id) != *(uint64_t *)ud)
		return -ESTALE;
	return UC_COND_DELETE;
}

int ucache_del_if(ucache_t *c, const void *key, size_t klen, uint64_t version)
{
	return uc_write_cond(c, key, klen, NULL, 0, 0, 0, del_if_cond, &version);
}

static int replace_cond(const ucache_t *c, uint32_t id, uint64_t *expires, void *ud)
{
	(void)ud;
	if (!id)
		return -ENOENT;
	*expires = c->slots[id].expires;
	return 0;
}

int ucache_replace(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (!val || !vlen)
		return -EINVAL;
	return uc_write_cond(c, key, klen, val, vlen, 0, 0, replace_cond, NULL);
}

static int touch_cond(const ucache_t *c, uint32_t id, uint64_t *expires, void *ud)
{
	(void)c, (void)id, (void)expires, (void)ud;
	return UC_COND_TOUCH;
}

int ucache_touch(ucache_t *c, const void *key, size_t klen, uint64_t expires)
{
	return uc_write_cond(c, key, klen, NULL, 0, expires, 0, touch_cond, NULL);
}

/* ttl reads under the lock too: a decision-free condition that records the
 * expiry and cancels the write (exact, and drops an expired item). */
static int ttl_cond(const ucache_t *c, uint32_t id, uint64_t *expires, void *ud)
{
	(void)expires;
	if (!id)
		return -ENOENT;
	*(uint64_t *)ud = c->slots[id].expires;
	return -ECANCELED;
}

int ucache_ttl(ucache_t *c, const void *key, size_t klen, int64_t *ttl)
{
	uint64_t exp = 0, now;
	int rc = uc_write_cond(c, key, klen, NULL, 0, 0, 0, ttl_cond, &exp);

	if (rc != -ECANCELED)
		return rc;
	now = ucache_now();
	*ttl = !exp ? -1 : exp > now ? (int64_t)(exp - now) : 0;
	return 0;
}
