/*
 * cache.c - the lifecycle of a cache: create (plan, map, format or
 * recover), destroy and close.  The top of core/: it calls layout.c,
 * lock.c, store.c and nothing calls it back.
 *
 * Who calls it: ucache_create() runs once, in the process that later forks
 * the workers; ucache_close() in the last user (the master) at shutdown;
 * ucache_destroy() in any process.  Locking rules and invariants are those
 * of layout.h (which lock each shared field's writer holds), repair.c (the
 * dead-owner protocol) and verify.c (the invariants ucache_check proves).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lock.h"
#include "store.h"
#include "tags.h"
#include "util.h"

static int config_copy(struct ucache_config *dst, const struct ucache_config *src)
{
	char **strs[] = { &dst->name, &dst->store, &dst->nodes, &dst->udp, &dst->sync,
		&dst->udp_allow, &dst->udp_secret_file,
		&dst->redis, &dst->redis_prefix, &dst->redis_password_file };
	size_t i;

	*dst = *src;
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (*strs[i] && !(*strs[i] = strdup(*strs[i]))) {
			while (i-- > 0)
				free(*strs[i]);
			return -ENOMEM;
		}
	}
	return 0;
}

static int map_anonymous(ucache_t *c, char *err, size_t errlen)
{
	c->base = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->base != MAP_FAILED)
		return UC_STORE_FRESH;
	uc_err(err, errlen, "cache \"%s\": mmap of %llu bytes failed: %s", c->cfg.name,
	       (unsigned long long)c->maplen, strerror(errno));
	return -ENOMEM;
}

ucache_t *ucache_create(const struct ucache_config *cfg, char *err, size_t errlen)
{
	struct uc_hdr plan;
	ucache_t *c;
	int rc;

	if (ucache_config_validate(cfg, err, errlen))
		return NULL;
	memset(&plan, 0, sizeof(plan));
	if (uc_plan_layout(cfg, &plan, err, errlen))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c)
		c->store_fd = c->import_fd = -1;
	if (!c || config_copy(&c->cfg, cfg)) {
		uc_err(err, errlen, "cache \"%s\": out of memory", cfg->name);
		free(c);
		return NULL;
	}
	c->maplen = plan.total;
	rc = cfg->store || cfg->keep_region ? uc_store_map(c, &plan, err, errlen) : map_anonymous(c, err, errlen);
	if (rc < 0)
		goto fail;
	if (uc_tags_map(c, &plan, rc == UC_STORE_EXISTING)) {
		uc_err(err, errlen, "cache \"%s\": mmap of the tag generations failed: %s", cfg->name, strerror(errno));
		munmap(c->base, c->maplen);
		goto fail;
	}
	if (rc == UC_STORE_EXISTING) {
		uc_attach(c);
		uc_store_recover(c);
		return c;
	}
	memcpy(c->base, &plan, sizeof(plan));
	uc_attach(c);
	uc_format(c);
	if (uc_locks_init(c)) {
		uc_err(err, errlen, "cache \"%s\": cannot initialise process-shared robust mutexes", cfg->name);
		munmap(c->base, c->maplen);
		uc_tags_unmap(c);
		goto fail;
	}
	if (cfg->store || c->memfd)
		uc_store_import_pending(c);
	return c;
fail:
	if (c->store_fd >= 0)
		close(c->store_fd);
	if (c->import_fd >= 0)
		close(c->import_fd);
	ucache_config_free(&c->cfg);
	free(c);
	return NULL;
}

void ucache_destroy(ucache_t *c)
{
	if (!c)
		return;
	munmap(c->base, c->maplen);
	uc_tags_unmap(c);
	if (c->store_fd >= 0)
		close(c->store_fd);
	free(c->import_note);
	ucache_config_free(&c->cfg);
	free(c);
}


void ucache_close(ucache_t *c)
{
	if (!c)
		return;
	if (c->cfg.store || c->memfd)
		uc_store_close(c);
	ucache_destroy(c);
}

int ucache_region_fd(const ucache_t *c)
{
	return c && c->memfd ? c->store_fd : -1;
}

int ucache_release_region(ucache_t *c)
{
	int fd;

	if (!c || !c->memfd)
		return -1;
	fd = c->store_fd;
	c->store_fd = -1;
	return fd;
}
