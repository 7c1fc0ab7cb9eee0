/*
 * options.c - claim the stock cache configuration and build ucache caches.
 *
 * Called once, in the master, from ucache_asap() (plugin.c): uWSGI has parsed
 * every option into struct uwsgi_server but has not built its caches yet.
 * We read the same fields the stock uwsgi_cache_create_all() reads:
 *
 *   --cache N + --cache-blocksize/-store/-store-sync/-use-last-modified
 *                                  -> cache "default", created first
 *   --cache2 KEYVAL (list)         -> one cache each, in order
 *   --load-file-in-cache[-gzip], --add-cache-item "[CACHE ]..."
 *                                  -> stored after each cache is created
 *
 * A configuration error logs one line naming the cache, key and value
 * (ucache_config_parse writes it) and exits with status 1, as the stock does;
 * this is the only place the plugin calls exit() for configuration.
 *
 * The shims (struct ucp_cache) are malloc'd in the master and inherited by
 * fork; the engine caches live in shared mappings.  Nothing here runs after
 * fork, so no locking.
 */
#include "ucp.h"
#include "writepath.h"
#include "takeover/takeover.h"
#include "peers/peers.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <xxhash.h>

static struct ucp_cache *tail;

static void config_fatal(const char *what, const char *err)
{
	uwsgi_log("ucache: %s: %s\n", what, err);
	exit(1);
}

static uint32_t hash_xxh3(char *key, uint64_t len)
{
	return (uint32_t) XXH3_64bits(key, len);
}

/* The shim's hash algorithm: the core's own for djb33x/murmur2 (so the
 * stats and any legacy reader see the stock names), ours for xxh3. */
static void shim_set_hash(struct ucp_cache *c, enum ucache_hash h)
{
	struct uwsgi_hash_algo *core = uwsgi_hash_algo_get((char *) ucache_hash_name(h));

	c->algo.name = (char *) ucache_hash_name(h);
	c->algo.func = core ? core->func : hash_xxh3;
	c->algo.next = NULL;
	c->uc.hash = &c->algo;
}

static struct ucp_cache *shim_new(ucache_t *engine)
{
	const struct ucache_config *cfg = ucache_config(engine);
	struct ucp_cache *c = uwsgi_calloc(sizeof(*c));

	c->magic = UCP_MAGIC;
	c->cache = engine;
	c->uc.name = uwsgi_str(cfg->name);
	c->uc.name_len = (uint16_t) strlen(cfg->name);
	c->uc.keysize = cfg->keysize;
	c->uc.blocks = cfg->blocks;
	c->uc.blocksize = cfg->blocksize;
	c->uc.hashsize = (uint32_t) cfg->hashsize;
	c->uc.use_blocks_bitmap = cfg->bitmap ? 1 : 0;
	c->uc.max_items = cfg->items;
	c->uc.max_item_size = ucache_max_value(engine);
	c->uc.use_last_modified = cfg->lastmod ? 1 : 0;
	c->uc.no_expire = cfg->no_expire ? 1 : 0;
	c->uc.store = cfg->store;
	c->uc.store_sync = cfg->store_sync;
	c->uc.math_initial = cfg->math_initial;
	c->uc.ignore_full = cfg->ignore_full;
	c->uc.purge_lru = cfg->purge_lru;
	c->uc.store_delete = cfg->store_delete;
	c->uc.lazy_expire = cfg->lazy_expire;
	c->uc.sweep_on_full = cfg->sweep_on_full;
	c->uc.clear_on_full = cfg->clear_on_full;
	c->uc.udp_node_socket = -1;
	shim_set_hash(c, cfg->hash);
	return c;
}

static void shim_append(struct ucp_cache *c)
{
	if (tail)
		tail->uc.next = &c->uc;
	else
		uwsgi.caches = &c->uc;
	tail = c;
}

/* Replaces the stock "*** Cache ... initialized" line with real figures:
 * the engine's mapping and its metadata (slots + index), not keysize x items. */
static void announce(ucache_t *engine)
{
	const struct ucache_config *cfg = ucache_config(engine);
	struct ucache_stats st;

	ucache_stats(engine, &st);
	uwsgi_log("*** ucache \"%s\" initialized: %llu KiB mapped, stock would map %llu KiB (metadata: %llu bytes, "
			"data: %llu x %llu bytes%s), %llu usable items, keysize %llu, hash %s ***\n",
			cfg->name, (unsigned long long) (st.mapped_bytes / 1024),
			(unsigned long long) (st.stock_mapped_bytes / 1024),
			(unsigned long long) st.metadata_bytes, (unsigned long long) cfg->blocks,
			(unsigned long long) cfg->blocksize, cfg->bitmap ? " bitmap" : "",
			(unsigned long long) st.capacity, (unsigned long long) cfg->keysize,
			ucache_hash_name(cfg->hash));
}

/* Mapped bytes of this process now (VmSize), 0 if unknown. */
static uint64_t vm_size(void)
{
	char line[128];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t) kb * 1024;
}

/* uWSGI applies --limit-as only after the plugins' start-up hooks, where
 * the caches are mapped, so a cache too big for it would make some later,
 * unrelated allocation fail ("unable to allocate 40 bytes").  Name the
 * cache instead.  (ucache never maps more than stock for the same
 * --cache2, layout.c: a setup stock starts under the limit starts.) */
static void check_limit_as(const struct ucache_config *cfg, ucache_t *engine)
{
	struct ucache_stats st;
	uint64_t used = vm_size();

	if (!uwsgi.rl.rlim_max || uwsgi.rl.rlim_max == RLIM_INFINITY || !used || used <= uwsgi.rl.rlim_max)
		return;
	ucache_stats(engine, &st);
	uwsgi_log("ucache: cache \"%s\" maps %llu KiB (stock would map %llu KiB): with it this process maps "
			"%llu MiB, over --limit-as %llu MiB\n", cfg->name, (unsigned long long) (st.mapped_bytes / 1024),
			(unsigned long long) (st.stock_mapped_bytes / 1024), (unsigned long long) (used >> 20),
			(unsigned long long) (uwsgi.rl.rlim_max >> 20));
	exit(1);
}

/* The uid (or gid) --uid (--gid) will drop to, 0 for none.  uWSGI keeps
 * the option's text until uwsgi_as_root() resolves it, after the plugins'
 * asap hooks; resolved the same way here (a number, else a name; one it
 * cannot find stops uWSGI there). */
static unsigned final_id(unsigned resolved, const char *name, int group)
{
	struct passwd *pw;
	struct group *gr;

	if (resolved || !name || getuid() != 0)
		return resolved;
	if (is_a_number((char *) name))
		return (unsigned) atoi(name);
	if (group)
		return (gr = getgrnam(name)) ? (unsigned) gr->gr_gid : 0;
	return (pw = getpwnam(name)) ? (unsigned) pw->pw_uid : 0;
}

static struct ucp_cache *cache_create(struct ucache_config *cfg, int legacy)
{
	const char *sync;
	int reloaded;
	char err[512];
	ucache_t *engine;
	struct ucp_cache *c;

	if (!cfg->store_sync && uwsgi.cache_store_sync > 0)
		cfg->store_sync = (uint64_t) uwsgi.cache_store_sync;
	reloaded = ucp_reload_prepare(cfg);
	/* the drop comes after this hook: a store is created for, and checked
	 * against, the user that reloads will reopen it as */
	cfg->store_uid = final_id(uwsgi.uid, uwsgi.uidname, 0);
	cfg->store_gid = final_id(uwsgi.gid, uwsgi.gidname, 1);
	engine = ucache_create(cfg, err, sizeof(err));
	if (!engine)
		config_fatal("unable to create cache", err);
	ucp_reload_created(engine);
	check_limit_as(cfg, engine);
	ucache_config_free(cfg);
	announce(engine);
	c = shim_new(engine);
	shim_append(c);
	ucp_ops_attach(c);
	ucp_udp_setup(c, legacy);
	ucp_redis_attach(c);
	/* the engine keeps its own copy of the configuration (cfg is freed) */
	sync = legacy ? uwsgi.cache_sync : ucache_config(engine)->sync;
	if (sync && reloaded)
		uwsgi_log("ucache: cache \"%s\": contents kept across the reload; start-up sync skipped\n", c->uc.name);
	else if (sync)
		ucp_sync_cache(c, sync);
	return c;
}

static void create_legacy(void)
{
	struct ucache_config cfg;
	char err[512];
	uint64_t bs = uwsgi.cache_blocksize ? uwsgi.cache_blocksize : UMAX16;

	if (ucache_config_legacy(&cfg, uwsgi.cache_max_items, bs, uwsgi.cache_store,
			uwsgi.cache_store_sync > 0 ? (uint64_t) uwsgi.cache_store_sync : 0,
			uwsgi.cache_use_last_modified, err, sizeof(err)))
		config_fatal("invalid --cache", err);
	cache_create(&cfg, 1);
}

struct ucp_cache *ucp_cache_add_keyval(const char *keyval)
{
	struct ucache_config cfg;
	char err[512];

	if (ucache_config_parse(&cfg, keyval, err, sizeof(err)))
		config_fatal("invalid --cache2", err);
	return cache_create(&cfg, 0);
}

/* ------------------------------------------------------------ preloading */

static void store_item(struct ucp_cache *c, const char *tag, char *key, size_t klen,
		char *val, size_t vlen)
{
	int ret = -EINVAL;

	if (klen <= UINT16_MAX)
		ret = ucp_set(c, key, klen, val, vlen, 0, UCACHE_SET_UPDATE);
	if (ret)
		uwsgi_log("[%s-error] unable to store \"%.*s\" in \"%s\": %s\n", tag, (int) klen,
				key, c->uc.name, strerror(-ret));
	else
		uwsgi_log("[%s] stored \"%.*s\" in \"%s\"\n", tag, (int) klen, key, c->uc.name);
}

/* "[CACHE ]REST": NULL if the entry names another cache, else REST. */
static char *for_cache(struct ucp_cache *c, char *entry, char *limit)
{
	char *space = memchr(entry, ' ', (size_t) (limit - entry));

	if (!space)
		return entry;
	if (!ucp_streq(entry, (size_t) (space - entry), c->uc.name))
		return NULL;
	return space + 1;
}

static void add_items(struct ucp_cache *c)
{
	struct uwsgi_string_list *usl;

	uwsgi_foreach(usl, uwsgi.add_cache_item) {
		char *end = usl->value + usl->len;
		char *eq = memchr(usl->value, '=', usl->len);
		char *key = for_cache(c, usl->value, eq ? eq : end);

		if (!key)
			continue;
		if (!eq || eq == key) {
			uwsgi_log("[cache-error] unable to store item %s\n", usl->value);
			continue;
		}
		store_item(c, "cache", key, (size_t) (eq - key), eq + 1, (size_t) (end - eq - 1));
	}
}

/* Whole file into a malloc'd buffer; NULL (errno set) on failure. */
static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		goto fail;
	buf = uwsgi_malloc((size_t) st.st_size + 1);
	*len = 0;
	while (*len < (size_t) st.st_size) {
		ssize_t n = read(fd, buf + *len, (size_t) st.st_size - *len);
		if (n <= 0)
			goto fail;
		*len += (size_t) n;
	}
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

static void load_file(struct ucp_cache *c, char *path, int gzip)
{
	size_t len = 0;
	char *data = read_file(path, &len);
	struct uwsgi_buffer *gz = NULL;

	if (!data) {
		uwsgi_log("[cache-error] unable to read file \"%s\": %s\n", path, strerror(errno));
		return;
	}
	if (gzip) {
		gz = uwsgi_gzip(data, len);
		if (!gz || !gz->pos) {
			uwsgi_log("[cache-gzip-error] unable to compress \"%s\"\n", path);
			goto end;
		}
	}
	store_item(c, gzip ? "cache-gzip" : "cache", path, strlen(path),
			gz ? gz->buf : data, gz ? gz->pos : len);
end:
	if (gz)
		uwsgi_buffer_destroy(gz);
	free(data);
}

static void load_files(struct ucp_cache *c, struct uwsgi_string_list *list, int gzip)
{
	struct uwsgi_string_list *usl;

	uwsgi_foreach(usl, list) {
		char *path = for_cache(c, usl->value, usl->value + usl->len);
		if (path && *path)
			load_file(c, path, gzip);
	}
}

/* ----------------------------------------------------------------- entry */

void ucp_caches_build(void)
{
	struct uwsgi_string_list *usl;
	struct ucp_cache *c;

	if (uwsgi.cache_max_items > 0)
		create_legacy();
	uwsgi_foreach(usl, uwsgi.cache2) {
		ucp_cache_add_keyval(usl->value);
	}
	ucp_reload_done();
	for (c = ucp_first(); c; c = ucp_next(c)) {
		load_files(c, uwsgi.load_file_in_cache, 0);
		load_files(c, uwsgi.load_file_in_cache_gzip, 1);
		add_items(c);
	}
}

/* The shim's legacy lock (uc->lock).  Only legacy callers take it (Python's
 * cache_keys, TLS sessions, static paths, corerouters, pypy); the engine
 * needs no lock from them, so it only has to behave like a uWSGI rwlock.
 * With the pthread lock engine it is process-private: malloc'd in the master
 * before fork, so every process has its own copy, and a process killed while
 * holding it (harakiri inside cache_keys) blocks nobody else.  A shared
 * rwlock would deadlock every later writer (stock issue #1202: the core's
 * deadlock detector remembers one reader's pid and misses the others).  The
 * ipcsem engine's locks are undone by the kernel when their holder dies:
 * those stay registered, shared locks. */
static struct uwsgi_lock_item *legacy_lock(const char *name)
{
	char *id = uwsgi_concat2("cache_", (char *) name);
#ifdef UWSGI_LOCK_USE_MUTEX
	if (!uwsgi.lock_engine) {
		struct uwsgi_lock_item *uli = uwsgi_calloc(sizeof(*uli));
		pthread_rwlock_t *rw = uwsgi_calloc(sizeof(*rw));

		if (pthread_rwlock_init(rw, NULL)) {
			uwsgi_log("ucache: cannot initialise the legacy lock of cache \"%s\"\n", name);
			exit(1);
		}
		uli->id = id;
		uli->lock_ptr = rw;
		uli->rw = 1;
		return uli;
	}
#endif
	return uwsgi_rwlock_init(id);
}

void ucp_caches_init_locks(void)
{
	struct uwsgi_cache *uc;

	if (!uwsgi.lock_ops.rwlock_init)
		return;
	for (uc = uwsgi.caches; uc; uc = uc->next) {
		if (!uc->lock)
			uc->lock = legacy_lock(uc->name);
	}
}
