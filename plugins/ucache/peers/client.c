/*
 * client.c - the one modifier1 111 client transport: the remote caches
 * (remote.c, in workers) and the start-up sync (sync.c, in the master)
 * connect, write and read through it.
 *
 * Sockets are non-blocking, and every wait (the connect, each write, each
 * read) is bounded by --socket-timeout (4 s when unset, stock's default)
 * and goes through uwsgi.wait_{read,write}_hook when set, so async/gevent
 * workers yield instead of blocking.  A write that makes no progress for
 * the timeout fails: a peer that stops reading cannot hold a worker or the
 * master's start-up.
 */
#include "ucp.h"
#include "peers/peers.h"

#include <poll.h>

static int timeout_s(void)
{
	return uwsgi.socket_timeout > 0 ? uwsgi.socket_timeout : 4;
}

/* Wait for fd to be readable/writable: > 0 ready, 0 timeout, < 0 error. */
static int wait_fd(int fd, int for_write)
{
	struct pollfd p = { .fd = fd, .events = for_write ? POLLOUT : POLLIN };

	if (for_write && uwsgi.wait_write_hook)
		return uwsgi.wait_write_hook(fd, timeout_s());
	if (!for_write && uwsgi.wait_read_hook)
		return uwsgi.wait_read_hook(fd, timeout_s());
	return poll(&p, 1, timeout_s() * 1000);
}

int ucp_client_connect(const char *addr)
{
	char *copy = uwsgi_str((char *) addr);   /* uwsgi_connect() edits its argument */
	int fd = uwsgi_connect(copy, 0, 1);
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	free(copy);
	if (fd < 0)
		return -1;
	if (wait_fd(fd, 1) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One read or write of at most len bytes, waiting while the socket is not
 * ready: the bytes moved (0: end of stream), or -1 (error, timeout). */
static ssize_t io_some(int fd, char *buf, size_t len, int for_write)
{
	for (;;) {
		ssize_t n = for_write ? write(fd, buf, len) : read(fd, buf, len);

		if (n >= 0)
			return n;
		if ((errno != EAGAIN && errno != EINTR) || wait_fd(fd, for_write) <= 0)
			return -1;
	}
}

ssize_t ucp_client_read_some(int fd, char *buf, size_t len)
{
	return io_some(fd, buf, len, 0);
}

/* All len bytes: 0, or -1 (error, timeout, end of stream). */
static int io_all(int fd, char *buf, size_t len, int for_write)
{
	while (len > 0) {
		ssize_t n = io_some(fd, buf, len, for_write);

		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t) n;
	}
	return 0;
}

int ucp_client_write(int fd, const char *buf, size_t len)
{
	return io_all(fd, (char *) buf, len, 1);
}

int ucp_client_read(int fd, char *buf, size_t len)
{
	return io_all(fd, buf, len, 0);
}
