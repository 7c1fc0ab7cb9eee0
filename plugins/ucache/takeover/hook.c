/*
 * hook.c - redirect the running binary's exported cache API to ucache.
 *
 * Why: every language plugin, router and core module reaches the cache
 * through functions exported by the uwsgi executable.  The executable's own
 * definitions win symbol lookup, so a plugin cannot interpose them by link
 * order.  Instead, once, in the master, before any fork or thread (called
 * from ucache_asap), we overwrite the first bytes of each function below
 * with an absolute jump to ours:
 *
 *   x86_64   48 b8 <imm64>   movabs rax, target     (12 bytes; rax is a
 *            ff e0           jmp    rax              scratch register here)
 *   aarch64  58000051        ldr    x17, #8          (16 bytes; x17 = ip1,
 *            d61f0220        br     x17              the intra-procedure
 *            <imm64>         .quad  target           scratch, BTI-friendly)
 *
 * The pages are made writable (never writable and executable at once),
 * patched, made executable again and the instruction cache is flushed.  The
 * copy-on-write pages are inherited by every forked worker.
 *
 * Checks, all before the first byte is written (on failure the plugin
 * refuses to start; it never runs half on the stock cache):
 *   - architecture: x86_64 or aarch64 Linux only;
 *   - the binary is the uWSGI version this plugin was built against (the
 *     struct layouts we rely on come from its uwsgi.h);
 *   - every symbol resolves inside the main executable;
 *   - every function is at least as long as the jump, or is followed by
 *     alignment padding up to that length (uwsgi_cache_item_key is 5 bytes).
 * After patching, a self-test reads every patched prologue back and calls
 * uwsgi_cache_by_name() through the executable's entry point: only ucache
 * answers the self-test name with its sentinel.
 *
 * Two generic stats helpers are redirected too (see statkeys.c): it is the only
 * way to make the stats server's "caches" array live and to add ucache's
 * counters to it without rewriting the whole stats generator.
 */
#include "ucp.h"
#include "takeover/takeover.h"
#include "peers/peers.h"

#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>

struct redirect {
	const char *symbol;
	void *target;
};

#define R(sym, fn) { #sym, (void *) (fn) }

/* Every exported uwsgi_cache_* function of uWSGI 2.0.21 (nm -D), plus the
 * UDP loop and two stats helpers. */
static const struct redirect redirects[] = {
	/* magic API: every language plugin, router_cache, --check-cache */
	R(uwsgi_cache_magic_get, ucp_api_magic_get),
	R(uwsgi_cache_magic_set, ucp_api_magic_set),
	R(uwsgi_cache_magic_del, ucp_api_magic_del),
	R(uwsgi_cache_magic_exists, ucp_api_magic_exists),
	R(uwsgi_cache_magic_clear, ucp_api_magic_clear),
	R(uwsgi_cache_magic_context_hook, ucp_api_magic_context_hook),
	R(uwsgi_cache_prepare_magic_exists, ucp_api_prepare_exists),
	R(uwsgi_cache_prepare_magic_del, ucp_api_prepare_del),
	R(uwsgi_cache_prepare_magic_clear, ucp_api_prepare_clear),
	R(uwsgi_cache_prepare_magic_set, ucp_api_prepare_set),
	R(uwsgi_cache_prepare_magic_update, ucp_api_prepare_update),
	/* struct uwsgi_cache * callers: ssl, static paths, corerouter, python */
	R(uwsgi_cache_get2, ucp_api_get2),
	R(uwsgi_cache_get3, ucp_api_get3),
	R(uwsgi_cache_get4, ucp_api_get4),
	R(uwsgi_cache_set2, ucp_api_set2),
	R(uwsgi_cache_del2, ucp_api_del2),
	R(uwsgi_cache_exists2, ucp_api_exists2),
	R(uwsgi_cache_num2, ucp_api_num2),
	R(uwsgi_cache_by_name, ucp_api_by_name),
	R(uwsgi_cache_by_namelen, ucp_api_by_namelen),
	R(uwsgi_cache_keys, ucp_api_keys),
	R(uwsgi_cache_rlock, ucp_api_rlock),
	R(uwsgi_cache_rwunlock, ucp_api_rwunlock),
	R(uwsgi_cache_item_key, ucp_api_item_key),
	/* creation: ucache has built everything already */
	R(uwsgi_cache_create, ucp_api_create),
	R(uwsgi_cache_create_all, ucp_api_create_all),
	R(uwsgi_cache_init, ucp_api_noop_uc),
	R(uwsgi_cache_fix, ucp_api_noop_uc),
	R(uwsgi_cache_setup_nodes, ucp_api_noop_uc),
	R(uwsgi_cache_sync_from_nodes, ucp_api_noop_uc),
	/* master side */
	R(uwsgi_cache_start_sweepers, ucp_master_threads_start),
	R(uwsgi_cache_start_sync_servers, ucp_udp_servers_start),
	R(uwsgi_cache_sync_all, ucp_flush_all),
	R(cache_udp_server_loop, ucp_api_udp_loop),
	/* stats server */
	R(uwsgi_stats_key, ucp_stats_key),
	R(uwsgi_stats_keylong, ucp_stats_keylong),
};

#define N_REDIRECTS (sizeof(redirects) / sizeof(redirects[0]))

/* ---------------------------------------------------------- trampolines */

/* UCP_FORCE_UNSUPPORTED (tests only) builds the refusing variant. */
#if defined(__linux__) && defined(__x86_64__) && !defined(UCP_FORCE_UNSUPPORTED)
#define UCP_ARCH "x86_64"
#define UCP_SUPPORTED 1
#define TRAMP_LEN 12

static void tramp_encode(uint8_t *out, const void *target)
{
	out[0] = 0x48;
	out[1] = 0xb8;
	memcpy(out + 2, &target, 8);
	out[10] = 0xff;
	out[11] = 0xe0;
}

/* Bytes GCC/Clang emit as inter-function padding: nop, int3 and the bytes
 * of the multi-byte nops (66 2e 0f 1f 84 00 ...). */
static int is_padding(const uint8_t *p, size_t n)
{
	static const uint8_t ok[] = { 0x90, 0xcc, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x80, 0x44, 0x40, 0x00 };
	size_t i;

	for (i = 0; i < n; i++) {
		if (!memchr(ok, p[i], sizeof(ok)))
			return 0;
	}
	return 1;
}

#elif defined(__linux__) && defined(__aarch64__) && !defined(UCP_FORCE_UNSUPPORTED)
#define UCP_ARCH "aarch64"
#define UCP_SUPPORTED 1
#define TRAMP_LEN 16

static void tramp_encode(uint8_t *out, const void *target)
{
	const uint32_t ldr_x17 = 0x58000051, br_x17 = 0xd61f0220;

	memcpy(out, &ldr_x17, 4);
	memcpy(out + 4, &br_x17, 4);
	memcpy(out + 8, &target, 8);
}

/* nop, or zero words (udf) that linkers use as padding. */
static int is_padding(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 4 <= n; i += 4) {
		uint32_t w;
		memcpy(&w, p + i, 4);
		if (w != 0xd503201f && w != 0)
			return 0;
	}
	return i == n;
}

#else
#define UCP_ARCH "unsupported"
#define UCP_SUPPORTED 0
#define TRAMP_LEN 16

static void tramp_encode(uint8_t *out, const void *target)
{
	(void) target;
	memset(out, 0, TRAMP_LEN);
}

static int is_padding(const uint8_t *p, size_t n)
{
	(void) p;
	(void) n;
	return 0;
}
#endif

/* ---------------------------------------------------------------- checks */

struct site {
	uint8_t *addr;
	uint8_t code[TRAMP_LEN];
};

static void refuse(const char *why, const char *detail)
{
	uwsgi_log("ucache: FATAL: cannot take over the stock cache: %s%s%s\n", why,
			detail ? ": " : "", detail ? detail : "");
	uwsgi_log("ucache: refusing to start rather than run half on the stock cache\n");
	exit(1);
}

static void check_version(void)
{
	char *cflags = uwsgi_get_cflags();
	int same = cflags && strstr(cflags, "\\\"" UWSGI_VERSION "\\\"") != NULL;

	free(cflags);
	if (!same)
		refuse("this plugin was built for uWSGI " UWSGI_VERSION
				"; rebuild it against the running binary", NULL);
}

/* Is [addr, addr + TRAMP_LEN) inside the function (or its padding)? */
static int fits(uint8_t *addr, size_t size)
{
	uintptr_t end = (uintptr_t) addr + size;
	uintptr_t aligned = (end + 15) & ~(uintptr_t) 15;

	if (size >= TRAMP_LEN)
		return 1;
	if (aligned < (uintptr_t) addr + TRAMP_LEN)
		return 0;
	return is_padding(addr + size, TRAMP_LEN - size);
}

static void locate(const struct redirect *r, void *exe_base, struct site *s)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	void *addr = dlsym(RTLD_DEFAULT, r->symbol);

	if (!addr)
		refuse("symbol not exported by the binary", r->symbol);
	if (!dladdr1(addr, &info, (void **) &sym, RTLD_DL_SYMENT) || !sym)
		refuse("cannot inspect symbol", r->symbol);
	if (info.dli_fbase != exe_base)
		refuse("symbol does not live in the uwsgi executable", r->symbol);
	if (!fits(addr, sym->st_size))
		refuse("function too short for a jump", r->symbol);
	s->addr = addr;
	tramp_encode(s->code, r->target);
}

/* ---------------------------------------------------------------- patch */

static int patch(struct site *s)
{
	uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t) s->addr & ~(page - 1);
	uintptr_t end = ((uintptr_t) s->addr + TRAMP_LEN + page - 1) & ~(page - 1);

	if (mprotect((void *) start, end - start, PROT_READ | PROT_WRITE))
		return -1;
	memcpy(s->addr, s->code, TRAMP_LEN);
	if (mprotect((void *) start, end - start, PROT_READ | PROT_EXEC))
		return -1;
	__builtin___clear_cache((char *) s->addr, (char *) s->addr + TRAMP_LEN);
	return 0;
}

static void selftest(const struct site *sites)
{
	struct uwsgi_cache *(*volatile by_name)(char *) = uwsgi_cache_by_name;
	size_t i;

	for (i = 0; i < N_REDIRECTS; i++) {
		if (memcmp(sites[i].addr, sites[i].code, TRAMP_LEN))
			refuse("self-test: prologue not patched", redirects[i].symbol);
	}
	if (by_name((char *) UCP_SELFTEST_NAME) != &ucp_selftest_sentinel.uc)
		refuse("self-test: uwsgi_cache_by_name() is not served by ucache", NULL);
}

void ucp_hook_install(void)
{
	struct site sites[N_REDIRECTS];
	sigset_t all, old;
	Dl_info exe;
	size_t i;

	if (!UCP_SUPPORTED)
		refuse("unsupported platform (only x86_64 and aarch64 Linux)", NULL);
	check_version();
	if (!dladdr(&uwsgi, &exe))
		refuse("cannot locate the uwsgi executable", NULL);
	for (i = 0; i < N_REDIRECTS; i++)
		locate(&redirects[i], exe.dli_fbase, &sites[i]);

	/* No thread exists yet; block signals so that no handler runs while a
	 * text page is writable but not executable. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < N_REDIRECTS; i++) {
		if (patch(&sites[i])) {
			int err = errno;
			sigprocmask(SIG_SETMASK, &old, NULL);
			refuse("mprotect() on the executable's text failed", strerror(err));
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	selftest(sites);
	uwsgi_log("ucache: %zu cache entry points redirected (" UCP_ARCH "), self-test passed "
			"(ucache " UCACHE_VERSION " for uWSGI " UWSGI_VERSION ")\n",
			(size_t) N_REDIRECTS);
}
