"""reaper.py - SIGKILLs the process groups a test runner started once that
runner is gone, however it went: a normal exit, SIGTERM (`timeout`, a CI
watchdog), SIGINT (Ctrl-C), even SIGKILL.

harness.py starts one reaper per runner, lazily, in its own session, and
writes to its stdin, a pipe only the runner holds:
  +PGID   a group the runner started (its leader's pid);
  -PGID   that group is gone (leader reaped, no member left): forget it.
End of file means the runner closed the pipe (at exit) or died: every group
still registered gets SIGKILL, by group id, never by name (other engineers
run tests on the same machine).  SIGINT, SIGTERM and SIGHUP are ignored:
what kills the runner (Ctrl-C, `timeout`'s kill of its process group, a
closed terminal) must leave the reaper to clean up.
"""
import os
import signal
import sys


def read_groups(stream):
    """The groups registered and not forgotten when stream ends."""
    groups = set()
    for line in stream:
        op, pgid = line[:1], line[1:].strip()
        if not pgid.isdigit():
            continue   # a line cut short by the runner's death
        if op == b'+':
            groups.add(int(pgid))
        elif op == b'-':
            groups.discard(int(pgid))
    return groups


def main():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for pgid in read_groups(sys.stdin.buffer):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == '__main__':
    main()
