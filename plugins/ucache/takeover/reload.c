/*
 * reload.c - reloads keep the contents: every cache without a store lives
 * in a memfd (the engine's keep_region) whose descriptor survives the
 * master's re-exec (SIGHUP, --touch-reload, ...), so the next image
 * attaches it and the engine validates it exactly as a store file.
 *
 * Hand-over, in the master only:
 *   - uwsgi_reload() calls the master_cleanup hooks (ucp_caches_close,
 *     lifecycle.c), then closes every fd that is not a socket or a "safe"
 *     fd, then execs.  ucp_reload_handover() takes each cache's memfd from
 *     the engine (registered as safe, uwsgi_add_safe_fd, when created:
 *     the closing loops of uwsgi_reload() and of the next image's start
 *     skip it), clears FD_CLOEXEC and records "HEXNAME=FD" in
 *     UCACHE_REGIONS.
 *   - the new image (ucp_reload_prepare, before each ucache_create) finds
 *     its cache's fd by name, checks that it is one of ours
 *     (/proc/self/fd/N -> "/memfd:ucache-..."), and the engine re-validates
 *     it.  ucp_reload_done() closes what no cache claimed (a cache removed
 *     from the configuration) and unsets the variable.
 * A full stop runs the same hook and then exits: the fds die with the
 * master (and its workers), so the memory is freed.  Workers and their
 * children never see a descriptor without FD_CLOEXEC: it is cleared only
 * in the master, just before the exec.
 *
 * Runs single-threaded in the master (start-up, and the cleanup hook
 * with the sweeper paused): no locking.
 */
#include "ucp.h"
#include "takeover/takeover.h"

#define ENV_NAME "UCACHE_REGIONS"
#define MAX_REGIONS 64

struct region {
	char name[128];
	int fd;
	int claimed;
};

static struct region regions[MAX_REGIONS];
static int nregions, parsed;

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* An fd this process inherited that is a ucache memfd. */
static int is_our_memfd(int fd)
{
	char path[64], target[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = 0;
	return !strncmp(target, "/memfd:ucache-", 14);
}

/* "HEXNAME=FD;..." -> regions[]; anything malformed is skipped. */
static void parse_env(void)
{
	char *env = getenv(ENV_NAME), *p;

	parsed = 1;
	if (!env)
		return;
	for (p = env; *p && nregions < MAX_REGIONS;) {
		struct region *r = &regions[nregions];
		char *eq = strchr(p, '='), *end;
		size_t i, n = eq ? (size_t) (eq - p) / 2 : 0;
		long fd;

		if (!eq || (eq - p) % 2 || n >= sizeof(r->name))
			break;
		for (i = 0; i < n; i++) {
			int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
			if (hi < 0 || lo < 0)
				break;
			r->name[i] = (char) (hi * 16 + lo);
		}
		r->name[i] = 0;
		fd = strtol(eq + 1, &end, 10);
		if (i == n && fd > 2 && fd < INT32_MAX && is_our_memfd((int) fd)) {
			r->fd = (int) fd;
			nregions++;
		}
		p = *end == ';' ? end + 1 : end;
		if (*end != ';')
			break;
	}
}

int ucp_reload_prepare(struct ucache_config *cfg)
{
	int i;

	if (!parsed)
		parse_env();
	if (cfg->store || !uwsgi.master_process)
		return 0;
	cfg->keep_region = 1;
	for (i = 0; i < nregions; i++) {
		if (!regions[i].claimed && !strcmp(regions[i].name, cfg->name)) {
			regions[i].claimed = 1;
			cfg->region_fd = regions[i].fd;
			return 1;
		}
	}
	return 0;
}

void ucp_reload_created(ucache_t *engine)
{
	int fd = ucache_region_fd(engine);

	/* uWSGI closes every fd but its sockets and the "safe" ones at the
	 * start of a reloaded image, after the plugins' asap hooks */
	if (fd >= 0)
		uwsgi_add_safe_fd(fd);
}

void ucp_reload_done(void)
{
	int i;

	for (i = 0; i < nregions; i++) {
		if (!regions[i].claimed) {
			uwsgi_log("ucache: cache \"%s\" is gone from the configuration: its items kept across the "
					"reload are dropped\n", regions[i].name);
			close(regions[i].fd);
		}
	}
	nregions = 0;
	unsetenv(ENV_NAME);
}

void ucp_reload_handover(const char *name, ucache_t *engine)
{
	static char env[MAX_REGIONS * (2 * 127 + 16)];
	size_t len = strlen(env), i, n = strlen(name);
	int fd;

	if (!uwsgi.workers || getpid() != uwsgi.workers[0].pid)
		return;
	fd = ucache_release_region(engine);
	if (fd < 0)
		return;
	if (n > 127 || len + 2 * n + 16 > sizeof(env) || fcntl(fd, F_SETFD, 0)) {
		close(fd);
		return;
	}
	for (i = 0; i < n; i++)
		len += (size_t) snprintf(env + len, 3, "%02x", (unsigned char) name[i]);
	snprintf(env + len, sizeof(env) - len, "=%d;", fd);
	setenv(ENV_NAME, env, 1);
}
