/*
 * ucbench.c - the C API benchmark plugin (`--plugin build/bench/ucbench_plugin.so`).
 *
 * Who runs it: bench/run.py, twice per measurement, with the same uwsgi
 * binary and the same options, once on the stock cache and once with
 * `--plugin ./ucache_plugin.so` added.  It only calls what both
 * implementations serve: the core's exported uwsgi_cache_magic_get / set /
 * exists (the functions every language plugin calls; ucache redirects them).
 * It links nothing of ucache and never looks inside a cache.
 *
 * Modes (--ucbench MODE), each writing one JSON object to --ucbench-out:
 *   capi   in the plugin's init hook (master, after the core or ucache built
 *          the caches, before any worker): prefill once, then for every
 *          workload of --ucbench-workload (a comma list) and every count of
 *          --ucbench-procs (a comma list), in that order: fork that many
 *          children pinned one per CPU, run the workload's loop for
 *          --ucbench-duration seconds, sum ops/s; then _exit().
 *   mem    prefill, then sum Rss / Pss / Size of every shared mapping of
 *          the process from /proc/self/smaps (and list each one), _exit().
 *          The runner subtracts the resident figure of a run with a tiny
 *          cache, and the mapped figure of a run with no cache at all
 *          (--ucbench-fill 0, no --cache2: only mem accepts a fill of 0).
 *   sweep  init prefills, then gives every --ucbench-expire-every'th item an
 *          expiry --ucbench-expires s later; uwsgi then starts normally
 *          (--master), and worker 1's post_fork (unpinned, like a real
 *          worker) times every get of a random key for --ucbench-duration s
 *          while the master's sweeper runs, classifies the slow ones (see
 *          struct lat), writes a latency histogram and waits for the runner
 *          to stop the instance.
 *   instr  prefill, then ucb_instr_loop() does exactly --ucbench-ops ops in
 *          this process; run under callgrind with
 *          --toggle-collect=ucb_instr_loop (the "noop" workload measures the
 *          loop's own instructions, which the runner subtracts).
 *   hitratio  no prefill: replay the request trace of bench/trace.h
 *          (--ucbench-trace zipf or scan, --ucbench-keys, --ucbench-ops
 *          draws, --ucbench-alpha, --ucbench-scan-every, --ucbench-scan-len,
 *          --ucbench-seed) as get, then set on a miss, on an empty cache (a
 *          purge_lru one), count hits, _exit().  bench/hitratio.c replays
 *          the same trace on the engine and on an exact LRU.
 *
 * Workloads (--ucbench-workload; instr uses the first): get_hit, get_miss, update, mixed (95% get
 * / 5% update), lru (insert a new key per op into a full purge_lru cache),
 * noop (instr only).  Value sizes are --ucbench-vlen, or uniform in
 * [vlen, --ucbench-vlen-max] (bitmap mode).  Keys are exactly
 * --ucbench-klen bytes: "k" + zero-padded index (hit), "m" + index (miss),
 * "n" + tag + 8 counter chars (lru inserts), all pre-generated except the
 * counter so that no formatting is timed.
 *
 * Timing as in bench/engine.c: children signal ready and spin on a shared
 * start flag; each checks CLOCK_MONOTONIC every BATCH ops and reports
 * ops / its own elapsed time through a MAP_SHARED page.  Each also reports
 * its CPU time (CLOCK_THREAD_CPUTIME_ID): ops per CPU-second does not drop
 * when other processes of a shared machine take the CPU away, while ops per
 * wall-second does; contention between the benchmark's own processes
 * (cache-line transfers, lock waits spent spinning) still shows in both.
 */
#include <uwsgi.h>

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "../bench_rand.h"
#include "../trace.h"

extern struct uwsgi_server uwsgi;

#define BATCH 128
#define MAXP 64
#define HBUCKETS 1600            /* latency histogram: 32 sub-buckets per power of 2 */
#define TOPN 16                  /* slowest gets kept with their time */

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define INLINE static inline __attribute__((always_inline))

enum wl { WL_GET_HIT, WL_GET_MISS, WL_UPDATE, WL_MIXED, WL_LRU, WL_NOOP, WL_COUNT };
static const char *const wl_names[WL_COUNT] = {
	"get_hit", "get_miss", "update", "mixed", "lru", "noop",
};

static struct ucb_opts {
	char *mode, *workload, *out, *duration, *procs;
	int nopin;
	uint64_t fill, klen, vlen, vlen_max, ops, expire_every, expires, window_ms;
	char *trace, *alpha;
	uint64_t keys, scan_every, scan_len, seed;
} O = { .fill = 100000, .klen = 16, .vlen = 100, .ops = 100000,
	.expire_every = 10, .expires = 2, .window_ms = 20, .keys = TRACE_KEYS,
	.scan_every = TRACE_SCAN_EVERY, .scan_len = TRACE_SCAN_LEN, .seed = TRACE_SEED };

/* One child's report. */
struct pslot {
	uint64_t ops, errs, ns, cpu_ns, sink;
	int ready;
};

struct shared {
	int go;
	struct pslot slot[MAXP];
};

static int wl;                    /* the workload being run */
static int wls[WL_COUNT * 2], nwls;
static int plist[16], nplist;
static unsigned next_tag = 1;     /* lru key tags: 0 = prefill, then one per process run */
static double duration = 1.0;
static char *hit_keys, *miss_keys, *valbuf;
static struct shared *SH;
static int cpus[1024], ncpus;
static int sweep_filled;
static uint64_t fill_done_ns, fill_ms, expiry_pass_ms, sweep_t0_ns;  /* sweep: set by the master, read by worker 1 */

/* ------------------------------------------------------------ small tools */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

INLINE char *hkey(uint64_t i)
{
	return hit_keys + i * O.klen;
}

INLINE char *mkey(uint64_t i)
{
	return miss_keys + i * O.klen;
}

INLINE uint64_t vlen_of(uint64_t r)
{
	if (O.vlen_max <= O.vlen)
		return O.vlen;
	return O.vlen + (r & 0xffff) % (O.vlen_max - O.vlen + 1);
}

/* prefix + zero-padded decimal n, exactly klen bytes. */
static void make_key(char *k, char prefix, uint64_t n)
{
	k[0] = prefix;
	for (uint64_t i = O.klen - 1; i >= 1; i--, n /= 10)
		k[i] = (char)('0' + n % 10);
}

/* The last 8 bytes of an lru key: the counter as 8 nibble chars 'a'..'p'. */
INLINE void fresh_key_n(char *k, uint32_t n)
{
	uint64_t x = n;

	x = (x | x << 16) & 0x0000ffff0000ffffull;
	x = (x | x << 8) & 0x00ff00ff00ff00ffull;
	x = (x | x << 4) & 0x0f0f0f0f0f0f0f0full;
	x += 0x6161616161616161ull;
	memcpy(k + O.klen - 8, &x, 8);
}

static void fresh_key_init(char *k, unsigned tag)
{
	memset(k, '-', O.klen);
	k[0] = 'n';
	k[1] = (char)('A' + tag % 26);
	k[2] = (char)('A' + tag / 26 % 26);
}

/* Does uwsgi_cache_magic_get start with ucache's absolute jump?  x86_64:
 * movabs rax (48 b8), aarch64: ldr x17, #8 (51 00 00 58).  Reported in the
 * JSON so the runner can refuse a "stock" run that is not stock. */
static int redirected(void)
{
	const unsigned char *p = (const unsigned char *)(uintptr_t)uwsgi_cache_magic_get;

#if defined(__x86_64__)
	return p[0] == 0x48 && p[1] == 0xb8;
#elif defined(__aarch64__)
	return p[0] == 0x51 && p[1] == 0x00 && p[2] == 0x00 && p[3] == 0x58;
#else
	return -1;
#endif
}

/* ------------------------------------------------------------------ json */

static char json_tmp[4096];

/* The result goes to O.out + ".tmp", renamed by json_close(): the runner
 * never reads half a file. */
static FILE *json_open(void)
{
	FILE *f;

	snprintf(json_tmp, sizeof(json_tmp), "%s.tmp", O.out);
	f = fopen(json_tmp, "w");

	if (!f) {
		uwsgi_log("ucbench: cannot write %s: %s\n", O.out, strerror(errno));
		_exit(2);
	}
	fprintf(f, "{\"mode\": \"%s\", \"workload\": \"%s\", \"redirected\": %d, "
			"\"klen\": %llu, \"vlen\": %llu, \"vlen_max\": %llu, \"fill\": %llu",
			O.mode, wl_names[wls[0]], redirected(), (unsigned long long)O.klen,
			(unsigned long long)O.vlen, (unsigned long long)O.vlen_max,
			(unsigned long long)O.fill);
	return f;
}

static void json_close(FILE *f)
{
	fprintf(f, "}\n");
	if (fclose(f) || rename(json_tmp, O.out)) {
		uwsgi_log("ucbench: cannot write %s: %s\n", O.out, strerror(errno));
		_exit(2);
	}
}

/* -------------------------------------------------------------- prefill */

static void make_keys(uint64_t n, int with_miss)
{
	hit_keys = uwsgi_malloc(n * O.klen + 1);
	miss_keys = with_miss ? uwsgi_malloc(n * O.klen + 1) : NULL;
	for (uint64_t i = 0; i < n; i++) {
		make_key(hkey(i), 'k', i);
		if (with_miss)
			make_key(mkey(i), 'm', i);
	}
	valbuf = uwsgi_malloc(O.vlen_max > O.vlen ? O.vlen_max : O.vlen);
	for (uint64_t i = 0; i < (O.vlen_max > O.vlen ? O.vlen_max : O.vlen); i++)
		valbuf[i] = (char)('a' + i % 26);
}

/* Store the fill keys (lru: as many fresh keys, tag 0, so that the cache is
 * full).  Returns the number of refused sets. */
static uint64_t prefill(void)
{
	uint64_t rng = 0x1234567, errs = 0;
	char fk[256];

	fresh_key_init(fk, 0);
	for (uint64_t i = 0; i < O.fill; i++) {
		char *k = hkey(i);

		if (wls[0] == WL_LRU) {
			fresh_key_n(fk, (uint32_t)i);
			k = fk;
		}
		if (uwsgi_cache_magic_set(k, (uint16_t)O.klen, valbuf, vlen_of(bench_xorshift(&rng)), 0, 0, NULL))
			errs++;
	}
	return errs;
}

/* Give every every'th key an expiry at one common instant, `after` seconds
 * from now: relative expiries (the only ones the stock sweeper schedules,
 * through next_scan) computed per item from the second-resolution clock
 * both implementations use.  Returns the number of refused updates. */
static uint64_t set_expiries(uint64_t every, uint64_t after)
{
	int64_t target = uwsgi_now() + (int64_t)after;
	uint64_t errs = 0;

	for (uint64_t i = 0; i < O.fill; i += every) {
		int64_t rel = target - uwsgi_now();

		if (uwsgi_cache_magic_set(hkey(i), (uint16_t)O.klen, valbuf, O.vlen,
				(uint64_t)(rel > 0 ? rel : 1), UWSGI_CACHE_FLAG_UPDATE, NULL))
			errs++;
	}
	return errs;
}

/* -------------------------------------------------------------- op loops */

struct lstate {
	uint64_t rng, ops, errs, sink, n;
	char fkey[256];
};

INLINE void do_get(struct lstate *s, const char *k, int want_hit)
{
	uint64_t vl = 0;
	char *v = uwsgi_cache_magic_get((char *)k, (uint16_t)O.klen, &vl, NULL, NULL);

	if (v) {
		s->sink += (unsigned char)v[vl - 1];
		free(v);
	}
	if (UNLIKELY((v == NULL) == want_hit))
		s->errs++;
}

INLINE void do_set(struct lstate *s, const char *k, uint64_t vl, uint64_t flags)
{
	if (UNLIKELY(uwsgi_cache_magic_set((char *)k, (uint16_t)O.klen, valbuf, vl, 0, flags, NULL)))
		s->errs++;
}

/* One op of workload w (a constant after inlining). */
INLINE void one_op(int w, struct lstate *s)
{
	uint64_t r = bench_xorshift(&s->rng);

	if (w == WL_GET_HIT || (w == WL_MIXED && (r & 1023) >= 51)) {
		do_get(s, hkey(bench_pick(r, O.fill)), 1);
	} else if (w == WL_GET_MISS) {
		do_get(s, mkey(bench_pick(r, O.fill)), 0);
	} else if (w == WL_UPDATE || w == WL_MIXED) {
		do_set(s, hkey(bench_pick(r, O.fill)), vlen_of(r), UWSGI_CACHE_FLAG_UPDATE);
	} else if (w == WL_LRU) {
		fresh_key_n(s->fkey, (uint32_t)s->n++);
		do_set(s, s->fkey, vlen_of(r), 0);
	} else { /* WL_NOOP: the loop's own cost */
		s->sink += (unsigned char)hkey(bench_pick(r, O.fill))[O.klen - 1];
	}
}

INLINE void timed_loop(int w, struct lstate *s, uint64_t deadline)
{
	do {
		for (int i = 0; i < BATCH; i++)
			one_op(w, s);
		s->ops += BATCH;
	} while (now_ns() < deadline);
}

#define LOOP_CASE(w) case w: timed_loop(w, s, deadline); break

static void run_timed(struct lstate *s, uint64_t deadline)
{
	switch (wl) {
	LOOP_CASE(WL_GET_HIT);
	LOOP_CASE(WL_GET_MISS);
	LOOP_CASE(WL_UPDATE);
	LOOP_CASE(WL_MIXED);
	LOOP_CASE(WL_LRU);
	LOOP_CASE(WL_NOOP);
	}
}

/* Exactly n ops; callgrind collects inside this function only. */
__attribute__((noinline, visibility("default"))) uint64_t ucb_instr_loop(struct lstate *s, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		switch (wl) {
		case WL_GET_HIT: one_op(WL_GET_HIT, s); break;
		case WL_GET_MISS: one_op(WL_GET_MISS, s); break;
		case WL_UPDATE: one_op(WL_UPDATE, s); break;
		case WL_MIXED: one_op(WL_MIXED, s); break;
		case WL_LRU: one_op(WL_LRU, s); break;
		default: one_op(WL_NOOP, s); break;
		}
	}
	return s->sink;
}

/* ------------------------------------------------------------ processes */

static void pin_self(int idx)
{
	cpu_set_t set;

	if (O.nopin || ncpus <= 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpus[idx % ncpus], &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void load_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int i = 0; i < CPU_SETSIZE && ncpus < 1024; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpus++] = i;
}

static void child_main(int idx)
{
	struct pslot *out = &SH->slot[idx];
	struct lstate s;
	uint64_t t0, t1, c0, c1;

	memset(&s, 0, sizeof(s));
	pin_self(idx);
	s.rng = 0x9e3779b97f4a7c15ull * (uint64_t)(idx + 1) ^ (uint64_t)getpid() << 17;
	fresh_key_init(s.fkey, next_tag + (unsigned)idx);
	__atomic_store_n(&out->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&SH->go, __ATOMIC_ACQUIRE))
		sched_yield();
	c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = now_ns();
	run_timed(&s, t0 + (uint64_t)(duration * 1e9));
	t1 = now_ns();
	c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	out->ops = s.ops;
	out->cpu_ns = c1 - c0;
	out->errs = s.errs;
	out->sink = s.sink;
	out->ns = t1 - t0;
	_exit(0);
}

/* Fork the children, start them together, wait; 0 or -1 if one failed. */
static int run_children(int n, pid_t *pids)
{
	int ready = 0, failed = 0;

	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			uwsgi_log("ucbench: fork(): %s\n", strerror(errno));
			_exit(2);
		}
		if (pids[i] == 0)
			child_main(i);
	}
	while (ready < n) {
		ready = 0;
		for (int i = 0; i < n; i++)
			ready += __atomic_load_n(&SH->slot[i].ready, __ATOMIC_ACQUIRE);
		usleep(200);
	}
	__atomic_store_n(&SH->go, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < n; i++) {
		int st = 0;

		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	}
	return failed ? -1 : 0;
}

/* One (workload, processes) cell; appends its JSON object to f. */
static void capi_cell(FILE *f, int n, int first)
{
	pid_t pids[MAXP];
	uint64_t ops = 0, errs = 0;
	double total = 0, cpu_total = 0;
	int failed;

	memset(SH, 0, sizeof(*SH));
	failed = run_children(n, pids);
	next_tag += (unsigned)n;
	fprintf(f, "%s\n  {\"workload\": \"%s\", \"procs\": %d, \"failed\": %d, \"per_proc_ops_s\": [",
			first ? "" : ",", wl_names[wl], n, failed);
	for (int i = 0; i < n; i++) {
		double r = SH->slot[i].ns ? (double)SH->slot[i].ops * 1e9 / (double)SH->slot[i].ns : 0;

		total += r;
		cpu_total += SH->slot[i].cpu_ns ? (double)SH->slot[i].ops * 1e9 / (double)SH->slot[i].cpu_ns : 0;
		ops += SH->slot[i].ops;
		errs += SH->slot[i].errs;
		fprintf(f, "%s%.1f", i ? ", " : "", r);
	}
	fprintf(f, "], \"per_proc_cpu_share\": [");
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%.3f", i ? ", " : "", SH->slot[i].ns ? (double)SH->slot[i].cpu_ns / (double)SH->slot[i].ns : 0);
	fprintf(f, "], \"ops_s\": %.1f, \"ops_per_cpu_s\": %.1f, \"ops\": %llu, \"errors\": %llu}", total,
			cpu_total, (unsigned long long)ops, (unsigned long long)errs);
}

/* Every workload x every process count, in order, on one prefilled cache. */
static void mode_capi(void)
{
	uint64_t fill_errs;
	FILE *f;
	int first = 1;

	make_keys(O.fill, 1);
	fill_errs = prefill();
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (SH == MAP_FAILED)
		_exit(2);
	f = json_open();
	fprintf(f, ", \"duration\": %.3f, \"fill_errors\": %llu, \"runs\": [", duration,
			(unsigned long long)fill_errs);
	for (int w = 0; w < nwls; w++) {
		wl = wls[w];
		for (int p = 0; p < nplist; p++, first = 0)
			capi_cell(f, plist[p], first);
	}
	fprintf(f, "]");
	json_close(f);
	_exit(0);
}

/* ----------------------------------------------------------------- instr */

static void mode_instr(void)
{
	struct lstate s;
	FILE *f;
	uint64_t fill_errs;

	make_keys(O.fill, 1);
	fill_errs = prefill();
	memset(&s, 0, sizeof(s));
	s.rng = 0x9e3779b97f4a7c15ull;
	fresh_key_init(s.fkey, 1);
	ucb_instr_loop(&s, O.ops);
	f = json_open();
	fprintf(f, ", \"ops\": %llu, \"errors\": %llu, \"fill_errors\": %llu",
			(unsigned long long)O.ops, (unsigned long long)s.errs,
			(unsigned long long)fill_errs);
	json_close(f);
	_exit(0);
}

/* -------------------------------------------------------------- hitratio */

/* The value stored for key id (as bench/hitratio.c): "v" + the key id,
 * padded with '.' to 32 bytes. */
#define HR_VLEN 32

static void hr_value(char *v, uint32_t id)
{
	memset(v, '.', HR_VLEN);
	v[0] = 'v';
	trace_key(v + 1, id);
}

static void mode_hitratio(void)
{
	struct trace t;
	int scan = O.trace && !strcmp(O.trace, "scan");
	double alpha = O.alpha ? strtod(O.alpha, NULL) : TRACE_ALPHA;
	uint64_t hits = 0, zipf_hits = 0, sets = 0, set_errs = 0, bad = 0, t0, t1;
	char key[TRACE_KLEN], val[HR_VLEN], want[HR_VLEN];
	FILE *f;

	if (O.trace && !scan && strcmp(O.trace, "zipf")) {
		uwsgi_log("ucbench: --ucbench-trace is zipf or scan\n");
		exit(1);
	}
	if (O.keys < 2 || O.keys > UINT32_MAX || !O.ops || !O.scan_every || !(alpha > 0) ||
			trace_build(&t, (uint32_t)O.keys, O.ops, alpha, scan ? O.scan_every : 0, O.scan_len, O.seed)) {
		uwsgi_log("ucbench: cannot build the %s trace\n", scan ? "scan" : "zipf");
		_exit(2);
	}
	t0 = now_ns();
	for (uint64_t q = 0; q < t.n; q++) {
		uint32_t id = t.id[q];
		uint64_t vl = 0;
		char *v;

		trace_key(key, id);
		v = uwsgi_cache_magic_get(key, TRACE_KLEN, &vl, NULL, NULL);
		if (v) {
			hits++;
			zipf_hits += id < t.keys;
			hr_value(want, id);
			if (vl != HR_VLEN || memcmp(v, want, HR_VLEN))
				bad++;
			free(v);
			continue;
		}
		hr_value(val, id);
		sets++;
		if (uwsgi_cache_magic_set(key, TRACE_KLEN, val, HR_VLEN, 0, 0, NULL))
			set_errs++;
	}
	t1 = now_ns();
	f = json_open();
	fprintf(f, ", \"trace\": \"%s\", \"keys\": %llu, \"draws\": %llu, \"alpha\": %.4f, "
			"\"scan_every\": %llu, \"scan_len\": %llu, \"seed\": %llu, \"requests\": %llu, "
			"\"scan_requests\": %llu, \"hits\": %llu, \"zipf_hits\": %llu, \"sets\": %llu, "
			"\"set_errors\": %llu, \"bad_values\": %llu, \"seconds\": %.3f",
			scan ? "scan" : "zipf", (unsigned long long)O.keys, (unsigned long long)O.ops, alpha,
			(unsigned long long)O.scan_every, (unsigned long long)O.scan_len,
			(unsigned long long)O.seed, (unsigned long long)t.n, (unsigned long long)t.scan,
			(unsigned long long)hits, (unsigned long long)zipf_hits, (unsigned long long)sets,
			(unsigned long long)set_errs, (unsigned long long)bad, (double)(t1 - t0) / 1e9);
	json_close(f);
	trace_free(&t);
	_exit(0);
}

/* ------------------------------------------------------------------- mem */

#define MAXMAPS 64

struct smaps_sum {
	uint64_t size_kb, rss_kb, pss_kb, largest_rss_kb, mappings;
	uint64_t map_size_kb[MAXMAPS], map_rss_kb[MAXMAPS];  /* the first MAXMAPS, in address order */
};

/* Sum Size/Rss/Pss of the shared mappings ("rw-s") of this process. */
static void smaps_shared(struct smaps_sum *sum)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512], perms[8];
	int shared = 0;
	unsigned long long v;

	memset(sum, 0, sizeof(*sum));
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*x-%*x %7s", perms) == 1 && strchr(line, '-') < strchr(line, ' ')) {
			shared = perms[3] == 's';
			sum->mappings += shared;
		} else if (shared && sscanf(line, "Size: %llu kB", &v) == 1) {
			sum->size_kb += v;
			if (sum->mappings <= MAXMAPS)
				sum->map_size_kb[sum->mappings - 1] = v;
		} else if (shared && sscanf(line, "Rss: %llu kB", &v) == 1) {
			sum->rss_kb += v;
			if (sum->mappings <= MAXMAPS)
				sum->map_rss_kb[sum->mappings - 1] = v;
			if (v > sum->largest_rss_kb)
				sum->largest_rss_kb = v;
		} else if (shared && sscanf(line, "Pss: %llu kB", &v) == 1) {
			sum->pss_kb += v;
		}
	}
	fclose(f);
}

static uint64_t count_missing(void)
{
	uint64_t missing = 0;

	for (uint64_t i = 0; i < O.fill; i++)
		if (!uwsgi_cache_magic_exists(hkey(i), (uint16_t)O.klen, NULL))
			missing++;
	return missing;
}

static void mode_mem(void)
{
	struct smaps_sum before, after;
	uint64_t fill_errs, missing;
	FILE *f;

	smaps_shared(&before);
	make_keys(O.fill, 0);
	fill_errs = prefill();
	missing = count_missing();
	smaps_shared(&after);
	f = json_open();
	fprintf(f, ", \"fill_errors\": %llu, \"missing\": %llu, \"shared_size_kb\": %llu, "
			"\"shared_rss_kb\": %llu, \"shared_pss_kb\": %llu, \"largest_rss_kb\": %llu, "
			"\"shared_mappings\": %llu, \"shared_rss_before_fill_kb\": %llu",
			(unsigned long long)fill_errs, (unsigned long long)missing,
			(unsigned long long)after.size_kb, (unsigned long long)after.rss_kb,
			(unsigned long long)after.pss_kb, (unsigned long long)after.largest_rss_kb,
			(unsigned long long)after.mappings, (unsigned long long)before.rss_kb);
	fprintf(f, ", \"shared_maps_kb\": [");
	for (uint64_t i = 0; i < after.mappings && i < MAXMAPS; i++)
		fprintf(f, "%s[%llu, %llu]", i ? ", " : "", (unsigned long long)after.map_size_kb[i],
				(unsigned long long)after.map_rss_kb[i]);
	fprintf(f, "]");
	json_close(f);
	_exit(0);
}

/* ----------------------------------------------------------------- sweep */

/* Why a slow get (>= SLOW_NS) was slow.  After each slow get the worker
 * reads its thread's scheduler counters, /proc/thread-self/schedstat
 * (ns on CPU, ns waiting on a run queue) and getrusage's context switches:
 *   - run-queue wait: the thread was runnable but the scheduler ran another
 *     task on its CPU (on a shared 2-CPU machine, often another process):
 *     machine noise, not the cache;
 *   - stall = latency - run-queue wait: what is left is the cache's (a spin,
 *     a lock wait) or the hypervisor's: steal, which the guest only sees in
 *     10 ms ticks of /proc/stat (all CPUs), so a stall that saw no steal
 *     tick at all is also reported (max_stall_nosteal);
 *   - kind: slept (voluntary switch: blocked on a lock or a fault),
 *     preempted (involuntary switch), or on_cpu (neither).
 * Run-queue wait is attributed to the slow get that follows it; preemptions
 * shorter than SLOW_NS inside fast gets are too small to matter. */
enum slow_kind { SLOW_ONCPU, SLOW_PREEMPTED, SLOW_SLEPT, SLOW_KINDS };
static const char *const slow_names[SLOW_KINDS] = { "on_cpu", "preempted", "slept" };
#define SLOW_NS 50000

struct lat {
	uint64_t hist[HBUCKETS];
	uint64_t n, max, misses, max_stall, max_stall_nosteal, steal_total;
	uint64_t top_ns[TOPN], top_at[TOPN], top_kind[TOPN], top_stall[TOPN], top_steal[TOPN];
	uint64_t slow[SLOW_KINDS], slow_max[SLOW_KINDS];
	long nvcsw, nivcsw;
	uint64_t rq_wait;           /* last run_delay read */
	uint64_t steal;             /* last steal ticks read (all CPUs) */
	int schedstat_fd, stat_fd;
	uint64_t *win_max;          /* per-window max latency */
	uint64_t *win_stall;        /* per-window max stall (latency - run-queue wait) */
	uint64_t nwin;
};

static uint64_t read_run_delay(struct lat *l)
{
	char buf[128];
	unsigned long long cpu = 0, delay = 0;
	ssize_t n;

	if (l->schedstat_fd < 0)
		return 0;
	n = pread(l->schedstat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%llu %llu", &cpu, &delay) != 2)
		return 0;
	return delay;
}

/* Hypervisor steal of all CPUs so far, in clock ticks (/proc/stat). */
static uint64_t read_steal(struct lat *l)
{
	char buf[256];
	unsigned long long v[8] = { 0 };
	ssize_t n;

	if (l->stat_fd < 0)
		return 0;
	n = pread(l->stat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
			&v[4], &v[5], &v[6], &v[7]) != 8)
		return 0;
	return v[7];
}

/* Classify the slow get that just ended; *wait = its run-queue wait,
 * *steal = hypervisor steal ticks (any CPU) since the last slow get. */
static enum slow_kind slow_kind(struct lat *l, uint64_t *wait, uint64_t *steal)
{
	struct rusage ru;
	enum slow_kind k = SLOW_ONCPU;
	uint64_t delay = read_run_delay(l), st = read_steal(l);

	*steal = st > l->steal ? st - l->steal : 0;
	l->steal = st;

	*wait = delay > l->rq_wait ? delay - l->rq_wait : 0;
	l->rq_wait = delay;
	if (getrusage(RUSAGE_THREAD, &ru))
		return SLOW_ONCPU;
	if (ru.ru_nvcsw > l->nvcsw)
		k = SLOW_SLEPT;
	else if (ru.ru_nivcsw > l->nivcsw)
		k = SLOW_PREEMPTED;
	l->nvcsw = ru.ru_nvcsw;
	l->nivcsw = ru.ru_nivcsw;
	return k;
}

INLINE unsigned hbucket(uint64_t v)
{
	unsigned e;

	if (v < 64)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	if (64 + (e - 6) * 32 + 31 >= HBUCKETS)
		return HBUCKETS - 1;
	return 64 + (e - 6) * 32 + (unsigned)((v >> (e - 5)) & 31);
}

static uint64_t hbucket_low(unsigned b)
{
	unsigned e;

	if (b < 64)
		return b;
	e = (b - 64) / 32 + 6;
	return (1ull << e) + ((uint64_t)((b - 64) % 32) << (e - 5));
}

static void lat_top(struct lat *l, uint64_t ns, uint64_t at, enum slow_kind kind, uint64_t stall,
		uint64_t steal)
{
	int lo = 0;

	for (int i = 1; i < TOPN; i++)
		if (l->top_ns[i] < l->top_ns[lo])
			lo = i;
	if (ns > l->top_ns[lo]) {
		l->top_ns[lo] = ns;
		l->top_at[lo] = at;
		l->top_kind[lo] = kind;
		l->top_stall[lo] = stall;
		l->top_steal[lo] = steal;
	}
}

static uint64_t lat_pct(const struct lat *l, double p)
{
	uint64_t want = (uint64_t)((double)l->n * p), seen = 0;

	for (unsigned b = 0; b < HBUCKETS; b++) {
		seen += l->hist[b];
		if (seen > want)
			return hbucket_low(b);
	}
	return l->max;
}

static void sweep_measure(struct lat *l, uint64_t t0, uint64_t dur_ns)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid(), win_ns = O.window_ms * 1000000ull;
	uint64_t t = t0, ignored, ignored2;

	slow_kind(l, &ignored, &ignored2); /* baseline of the counters */
	while (t - t0 < dur_ns) {
		char *k = hkey(bench_pick(bench_xorshift(&rng), O.fill));
		uint64_t vl = 0, d, w;
		char *v = uwsgi_cache_magic_get(k, (uint16_t)O.klen, &vl, NULL, NULL);
		uint64_t t1 = now_ns();

		if (v)
			free(v);
		else
			l->misses++;
		d = t1 - t;
		l->hist[hbucket(d)]++;
		l->n++;
		if (d > l->max)
			l->max = d;
		w = (t - t0) / win_ns;
		if (w >= l->nwin)
			w = l->nwin - 1;
		if (d > l->win_max[w])
			l->win_max[w] = d;
		if (d < SLOW_NS && d > l->win_stall[w])
			l->win_stall[w] = d;
		if (UNLIKELY(d >= SLOW_NS)) {
			uint64_t wait, stall, steal;
			enum slow_kind kind = slow_kind(l, &wait, &steal);

			stall = d > wait ? d - wait : 0;
			if (stall > l->win_stall[w])
				l->win_stall[w] = stall;
			if (stall > l->max_stall)
				l->max_stall = stall;
			if (!steal && stall > l->max_stall_nosteal)
				l->max_stall_nosteal = stall;
			l->steal_total += steal;
			l->slow[kind]++;
			if (d > l->slow_max[kind])
				l->slow_max[kind] = d;
			lat_top(l, d, t - t0, kind, stall, steal);
			t1 = now_ns(); /* getrusage's own time is no get's */
		}
		t = t1;
	}
}

static void sweep_report(const struct lat *l, uint64_t fill_age_ms)
{
	FILE *f = json_open();

	fprintf(f, ", \"duration\": %.3f, \"gets\": %llu, \"misses\": %llu, \"max_ns\": %llu, "
			"\"p50_ns\": %llu, \"p99_ns\": %llu, \"p999_ns\": %llu, \"p9999_ns\": %llu, "
			"\"expire_every\": %llu, \"expires\": %llu, \"fill_age_ms_at_start\": %llu, "
			"\"window_ms\": %llu, \"fill_ms\": %llu, \"expiry_pass_ms\": %llu, \"window_max_ns\": [",
			duration, (unsigned long long)l->n, (unsigned long long)l->misses,
			(unsigned long long)l->max, (unsigned long long)lat_pct(l, 0.5),
			(unsigned long long)lat_pct(l, 0.99), (unsigned long long)lat_pct(l, 0.999),
			(unsigned long long)lat_pct(l, 0.9999), (unsigned long long)O.expire_every,
			(unsigned long long)O.expires, (unsigned long long)fill_age_ms,
			(unsigned long long)O.window_ms, (unsigned long long)fill_ms,
			(unsigned long long)expiry_pass_ms);
	for (uint64_t i = 0; i < l->nwin; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)l->win_max[i]);
	fprintf(f, "], \"window_max_stall_ns\": [");
	for (uint64_t i = 0; i < l->nwin; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)l->win_stall[i]);
	fprintf(f, "], \"top\": [");
	for (int i = 0; i < TOPN; i++)
		fprintf(f, "%s[%llu, %llu, \"%s\", %llu, %llu]", i ? ", " : "",
				(unsigned long long)l->top_at[i] / 1000000, (unsigned long long)l->top_ns[i],
				slow_names[l->top_kind[i]], (unsigned long long)l->top_stall[i],
				(unsigned long long)l->top_steal[i]);
	fprintf(f, "], \"slow_threshold_ns\": %d, \"max_stall_ns\": %llu, \"schedstat\": %d, "
			"\"t0_monotonic_ns\": %llu, \"max_stall_nosteal_ns\": %llu, \"steal_ticks\": %llu, "
			"\"clk_tck\": %ld", SLOW_NS, (unsigned long long)l->max_stall,
			l->schedstat_fd >= 0, (unsigned long long)sweep_t0_ns,
			(unsigned long long)l->max_stall_nosteal, (unsigned long long)l->steal_total,
			sysconf(_SC_CLK_TCK));
	for (int k = 0; k < SLOW_KINDS; k++)
		fprintf(f, ", \"slow_%s\": %llu, \"max_%s_ns\": %llu", slow_names[k],
				(unsigned long long)l->slow[k], slow_names[k], (unsigned long long)l->slow_max[k]);
	json_close(f);
}


/* init hook, master: prefill only; worker 1 measures (post_fork). */
static void mode_sweep_fill(void)
{
	uint64_t errs, t0 = now_ns(), t1;

	make_keys(O.fill, 0);
	errs = prefill();
	t1 = now_ns();
	errs += set_expiries(O.expire_every, O.expires);
	fill_done_ns = now_ns();
	fill_ms = (t1 - t0) / 1000000;
	expiry_pass_ms = (fill_done_ns - t1) / 1000000;
	uwsgi_log("ucbench: sweep prefill: %llu items in %llu ms (%llu refused), 1 in %llu "
			"expires %llu s after the %llu ms expiry pass began\n",
			(unsigned long long)O.fill, (unsigned long long)fill_ms, (unsigned long long)errs,
			(unsigned long long)O.expire_every, (unsigned long long)O.expires,
			(unsigned long long)expiry_pass_ms);
	sweep_filled = 1;
}

static void mode_sweep_measure(void)
{
	struct lat *l = uwsgi_calloc(sizeof(*l));
	uint64_t dur_ns = (uint64_t)(duration * 1e9), t0;

	l->nwin = dur_ns / (O.window_ms * 1000000ull) + 1;
	l->win_max = uwsgi_calloc(l->nwin * sizeof(uint64_t));
	l->win_stall = uwsgi_calloc(l->nwin * sizeof(uint64_t));
	l->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY);
	l->stat_fd = open("/proc/stat", O_RDONLY);
	t0 = now_ns();
	sweep_measure(l, t0, dur_ns);
	sweep_t0_ns = t0;
	sweep_report(l, (t0 - fill_done_ns) / 1000000);
	/* the runner sees the file and stops the instance (SIGINT to the master) */
	for (;;)
		pause();
}

/* ----------------------------------------------------------------- hooks */

static int parse_workload(const char *name, size_t len)
{
	for (int i = 0; i < WL_COUNT; i++)
		if (strlen(wl_names[i]) == len && !memcmp(name, wl_names[i], len))
			return i;
	uwsgi_log("ucbench: unknown workload \"%.*s\" in --ucbench-workload\n", (int)len, name);
	exit(1);
}

/* "get_hit,update" -> wls[]; "1,2" -> plist[]. */
static void parse_lists(void)
{
	const char *p = O.workload ? O.workload : "get_hit";
	char *end;

	while (*p && nwls < (int)(sizeof(wls) / sizeof(wls[0]))) {
		size_t len = strcspn(p, ",");

		wls[nwls++] = parse_workload(p, len);
		p += len + (p[len] == ',');
	}
	p = O.procs ? O.procs : "1";
	while (*p && nplist < (int)(sizeof(plist) / sizeof(plist[0]))) {
		long n = strtol(p, &end, 10);

		if (end == p || n < 1 || n > MAXP) {
			uwsgi_log("ucbench: bad --ucbench-procs \"%s\" (1..%d, comma-separated)\n", O.procs, MAXP);
			exit(1);
		}
		plist[nplist++] = (int)n;
		p = end + (*end == ',');
	}
	if (!nwls || !nplist) {
		uwsgi_log("ucbench: empty --ucbench-workload or --ucbench-procs\n");
		exit(1);
	}
	wl = wls[0];
}

static int ucb_init(void)
{
	if (!O.mode)
		return 0;
	if (!O.out) {
		uwsgi_log("ucbench: --ucbench-out FILE is required\n");
		exit(1);
	}
	parse_lists();
	if (O.duration)
		duration = strtod(O.duration, NULL);
	if (O.klen < 10 || O.klen > 250 || (!O.fill && strcmp(O.mode, "mem")) || !O.vlen) {
		uwsgi_log("ucbench: need 10 <= klen <= 250, fill > 0 (mem: >= 0), vlen > 0\n");
		exit(1);
	}
	load_cpus();
	if (!strcmp(O.mode, "capi"))
		mode_capi();
	else if (!strcmp(O.mode, "instr"))
		mode_instr();
	else if (!strcmp(O.mode, "mem"))
		mode_mem();
	else if (!strcmp(O.mode, "sweep"))
		mode_sweep_fill();
	else if (!strcmp(O.mode, "hitratio"))
		mode_hitratio();
	else {
		uwsgi_log("ucbench: unknown --ucbench mode \"%s\"\n", O.mode);
		exit(1);
	}
	return 0;
}

static void ucb_post_fork(void)
{
	if (sweep_filled && uwsgi.mywid == 1 && uwsgi.workers[1].respawn_count == 1) /* the first spawn only */
		mode_sweep_measure();
}

static struct uwsgi_option ucb_options[] = {
	{"ucbench", required_argument, 0, "benchmark mode: capi, mem, sweep, instr or hitratio", uwsgi_opt_set_str, &O.mode, 0},
	{"ucbench-workload", required_argument, 0, "comma-separated list of get_hit, get_miss, update, mixed, lru, noop", uwsgi_opt_set_str, &O.workload, 0},
	{"ucbench-out", required_argument, 0, "write the JSON result here", uwsgi_opt_set_str, &O.out, 0},
	{"ucbench-duration", required_argument, 0, "seconds per measured run (capi, sweep)", uwsgi_opt_set_str, &O.duration, 0},
	{"ucbench-procs", required_argument, 0, "process counts, comma-separated (capi)", uwsgi_opt_set_str, &O.procs, 0},
	{"ucbench-no-pin", no_argument, 0, "do not pin processes to CPUs", uwsgi_opt_true, &O.nopin, 0},
	{"ucbench-fill", required_argument, 0, "items stored before measuring", uwsgi_opt_set_64bit, &O.fill, 0},
	{"ucbench-klen", required_argument, 0, "key length (10..250)", uwsgi_opt_set_64bit, &O.klen, 0},
	{"ucbench-vlen", required_argument, 0, "value length (or the minimum)", uwsgi_opt_set_64bit, &O.vlen, 0},
	{"ucbench-vlen-max", required_argument, 0, "maximum value length (sizes uniform in [vlen, max])", uwsgi_opt_set_64bit, &O.vlen_max, 0},
	{"ucbench-ops", required_argument, 0, "ops of the instr loop", uwsgi_opt_set_64bit, &O.ops, 0},
	{"ucbench-expire-every", required_argument, 0, "sweep: every Nth item expires", uwsgi_opt_set_64bit, &O.expire_every, 0},
	{"ucbench-expires", required_argument, 0, "sweep: their expiry (relative seconds)", uwsgi_opt_set_64bit, &O.expires, 0},
	{"ucbench-window-ms", required_argument, 0, "sweep: window of the max-latency series", uwsgi_opt_set_64bit, &O.window_ms, 0},
	{"ucbench-trace", required_argument, 0, "hitratio: zipf or scan (bench/trace.h)", uwsgi_opt_set_str, &O.trace, 0},
	{"ucbench-keys", required_argument, 0, "hitratio: distinct Zipf keys", uwsgi_opt_set_64bit, &O.keys, 0},
	{"ucbench-alpha", required_argument, 0, "hitratio: Zipf exponent", uwsgi_opt_set_str, &O.alpha, 0},
	{"ucbench-scan-every", required_argument, 0, "hitratio: draws between two scan bursts", uwsgi_opt_set_64bit, &O.scan_every, 0},
	{"ucbench-scan-len", required_argument, 0, "hitratio: cold keys per scan burst", uwsgi_opt_set_64bit, &O.scan_len, 0},
	{"ucbench-seed", required_argument, 0, "hitratio: trace seed", uwsgi_opt_set_64bit, &O.seed, 0},
	{0, 0, 0, 0, 0, 0, 0},
};

struct uwsgi_plugin ucbench_plugin = {
	.name = "ucbench",
	.options = ucb_options,
	.init = ucb_init,
	.post_fork = ucb_post_fork,
};
