/*
 * plugin.c - the ucache uWSGI plugin: registration, options, start-up order.
 *
 * Start-up, in the master, whatever the plugin load order
 * (--plugin python3,ucache / --plugin ucache --plugin python3 / plugins =):
 *
 *   1. dlopen -> on_load: route engine logs to uwsgi_log and append
 *      "ucache_asap" to uwsgi.call_asap.
 *   2. the core parses every option, then calls the call_asap symbols:
 *      ucache_asap() redirects the stock cache API (takeover/hook.c, exits
 *      if it cannot), registers the core hash algorithms, builds every cache
 *      (takeover/options.c), sets uwsgi.cache_setup and takes modifier1 111.
 *   3. the core calls uwsgi_cache_create_all() - now ours: it gives the
 *      shims their legacy locks (the core's lock ops exist only now).
 *   4. init: take modifier1 111 again (a "cache" plugin loaded after us
 *      would have overwritten uwsgi.p[111]) and check that step 2 ran.
 *
 * Why two plugin structs: uWSGI keeps one request plugin per modifier1 and
 * the last one loaded wins; a plugin that is displaced from uwsgi.p[] also
 * loses its options and hooks.  ucache_plugin is therefore a generic plugin
 * (no .request: it lives in uwsgi.gp[] for good) and the request handler is
 * a second struct that ucache_asap() and init put into uwsgi.p[111].
 */
#include "ucp.h"
#include "takeover/takeover.h"
#include "serve/serve.h"

static int asap_done;
static int check_rpc;  /* --ucache-check-rpc */
UCP_EXPORT struct uwsgi_plugin ucache_plugin;

static struct uwsgi_plugin ucache_server_plugin = {
	.name = "ucache",
	.modifier1 = 111,
	.request = ucp_request,
};

static void engine_log(enum ucache_log_level level, const char *msg, void *ud)
{
	(void) level;
	(void) ud;
	uwsgi_log("%s\n", msg);
}

static void claim_modifier1(void)
{
	struct uwsgi_plugin *old = uwsgi.p[111];

	if (old == &ucache_server_plugin)
		return;
	if (old && old->name && strcmp(old->name, "unconfigured"))
		uwsgi_log("ucache: serving modifier1 111 in place of the \"%s\" plugin\n", old->name);
	uwsgi.p[111] = &ucache_server_plugin;
}

/* Step 2 above; exported so that uwsgi_call_symbol() finds it. */
UCP_EXPORT void ucache_asap(void)
{
	if (asap_done++)
		return;
	if (uwsgi.cache_setup || uwsgi.caches) {
		uwsgi_log("ucache: FATAL: the core built its caches before ucache could claim "
				"the configuration; refusing to start\n");
		exit(1);
	}
	ucp_hook_install();
	uwsgi_hash_algo_register_all();
	ucp_caches_build();
	uwsgi.cache_setup = 1;
	claim_modifier1();
}

static void ucp_on_load(void)
{
	ucache_set_logger(engine_log, NULL);
	uwsgi_string_new_list(&uwsgi.call_asap, "ucache_asap");
}

static int ucp_init(void)
{
	if (!asap_done) {
		uwsgi_log("ucache: FATAL: the plugin was loaded after option parsing; "
				"load it with --plugin or plugins = so that it can take over the cache\n");
		exit(1);
	}
	claim_modifier1();
	ucp_server_init();
	ucp_metrics_init();
	return 0;
}

/* In the master, once the worker table exists (uwsgi_register_rpc needs it;
 * init runs too early): RPC functions registered here are inherited by
 * every worker. */
static void ucp_preinit_apps(void)
{
	ucp_metrics_bind();
	ucp_rpc_register(&ucache_plugin);
	ucp_tags_register(&ucache_plugin);
	if (check_rpc)
		ucp_check_register(&ucache_plugin);
}

/* The plugin's RPC dispatcher: func is one of our RPC functions. */
static uint64_t ucp_rpc(void *func, uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	uint64_t (*fn)(uint8_t, char **, uint16_t *, char **) = func;

	return fn(argc, argv, argvs, buffer);
}

/* Master-less single process: it is the last user of the stores. */
static void ucp_atexit(void)
{
	if (!uwsgi.master_process && uwsgi.numproc <= 1 && uwsgi.workers &&
			uwsgi.workers[0].pid == getpid())
		ucp_caches_close();
}

static void opt_budget(char *opt, char *value, void *data)
{
	uint64_t n = 0;

	(void) data;
	if (ucp_parse_u64(value, strlen(value), &n) || n == 0) {
		uwsgi_log("ucache: invalid value \"%s\" for --%s (a positive number)\n", value, opt);
		exit(1);
	}
	ucp_sweep_budget = n;
}

static struct uwsgi_option ucache_options[] = {
	{ "ucache-sweep-budget", required_argument, 0,
		"expired items the sweeper frees per step (it examines 8x as many slots; default 256)",
		opt_budget, NULL, 0 },
	{ "ucache-readonly", no_argument, 0,
		"modifier1 111: refuse set, update, del, clear and dump on every socket",
		uwsgi_opt_true, &ucp_readonly, 0 },
	{ "ucache-readonly-socket", required_argument, 0,
		"modifier1 111: refuse writes and dumps on this socket (as written in --socket; repeatable)",
		uwsgi_opt_add_string_list, &ucp_readonly_sockets, 0 },
	{ "ucache-write-socket", required_argument, 0,
		"modifier1 111: allow writes and dumps only on this socket (as written in --socket; repeatable)",
		uwsgi_opt_add_string_list, &ucp_write_sockets, 0 },
	{ "ucache-check-rpc", no_argument, 0,
		"register the RPC function ucache_check: uwsgi.call('ucache_check'[, cache]) runs the "
		"full invariant check and answers \"ok NAME ITEMS\" or \"FAIL NAME: why\" per cache",
		uwsgi_opt_true, &check_rpc, 0 },
	{ "ucache-metrics", required_argument, 0,
		"serve Prometheus metrics of every cache on http://ADDR/metrics (HOST:PORT or :PORT), "
		"from a master thread (needs --master)",
		uwsgi_opt_set_str, &ucp_metrics_addr, 0 },
	{ NULL, 0, 0, NULL, NULL, NULL, 0 },
};

UCP_EXPORT struct uwsgi_plugin ucache_plugin = {
	.name = "ucache",
	.modifier1 = 111,
	.on_load = ucp_on_load,
	.init = ucp_init,
	.preinit_apps = ucp_preinit_apps,
	.post_fork = ucp_metrics_post_fork,
	.options = ucache_options,
	.master_cleanup = ucp_caches_close,
	.rpc = ucp_rpc,
	.atexit = ucp_atexit,
};
