/*
 * mthread.c - the one way the plugin starts a thread of the master: the
 * sweeper (takeover/sweeper.c), each near cache's Redis listener
 * (nearcache/listener.c) and each UDP receiver (peers/udp.c).
 *
 * Failure policy: exit.  These threads start once, in the master, before
 * the first worker; pthread_create() fails there only without memory or
 * over RLIMIT_NPROC.  Going on would serve a cache that silently never
 * expires, never hears a Redis invalidation (stale reads forever) or never
 * applies a node's writes; stopping at start with the reason is the one
 * outcome an operator sees and can fix.
 */
#include "ucp.h"

#include <pthread.h>

struct start {
	void *(*fn)(void *);
	void *arg;
};

/* Every signal blocked: the master's handlers run in its main thread. */
static void *trampoline(void *p)
{
	struct start s = *(struct start *) p;
	sigset_t all;

	free(p);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	return s.fn(s.arg);
}

void ucp_master_thread(const char *what, void *(*fn)(void *), void *arg)
{
	struct start *s = uwsgi_malloc(sizeof(*s));
	pthread_t tid;
	int err;

	s->fn = fn;
	s->arg = arg;
	err = pthread_create(&tid, NULL, trampoline, s);
	if (err) {
		uwsgi_log("ucache: cannot start %s: pthread_create(): %s\n", what, strerror(err));
		exit(1);
	}
	pthread_detach(tid);
}
