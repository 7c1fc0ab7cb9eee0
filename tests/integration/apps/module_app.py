"""module_app.py - apps/accel_app.py (the Accelerator, "pages" cache) plus a
writer for tests/integration/test_nginx_module.py's torn-write test:

  POST /_writer?key=K&size=N   forks a process that overwrites K in "pages",
                               in a loop, with whole HTTP responses (four
                               versions) whose N-byte body is one 8-digit
                               version number repeated (a torn copy shows two numbers, or
                               the wrong length); answers the writer's pid,
                               for the test to SIGKILL it mid-write.
  POST /_put?key=K             stores the request's body as K's value in
                               "pages", as it is (no envelope, no TTL).
"""
import os
import sys
from urllib.parse import parse_qs

import uwsgi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accel_app import application as accelerated  # noqa: E402


def version_page(n, size):
    body = (b'%08d' % n) * (size // 8)
    return b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body)


def write_forever(key, size):
    # four versions built once: the loop's time is the write's, so a
    # SIGKILL at a random moment most likely lands inside one
    versions = [version_page(n, size) for n in range(1, 5)]
    try:
        while True:
            for v in versions:
                uwsgi.cache_update(key, v, 0, 'pages')
    finally:
        os._exit(0)


def application(environ, start_response):
    if environ['PATH_INFO'] not in ('/_writer', '/_put') or environ['REQUEST_METHOD'] != 'POST':
        return accelerated(environ, start_response)
    q = {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    if environ['PATH_INFO'] == '/_put':
        value = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(uwsgi.cache_update(q['key'], value, 0, 'pages')).encode()]
    pid = os.fork()
    if pid == 0:
        # every inherited socket (the client's: left open here, the reply
        # never ends); the cache is shared memory, it needs no descriptor
        os.closerange(3, 65536)
        write_forever(q['key'], int(q['size']))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(pid).encode()]
