"""crashvalues.py - self-proving values for the crash, fault and regression
tests (imported both by apps/crash_app.py inside uwsgi and by the tests).

A value names its key and carries its own checksum:

    KEY|TAG|BODY|CRC

TAG says who wrote it (a writer id and a counter), BODY is filler derived
from KEY|TAG| (so any length can be asked for), CRC is the crc32 (8 hex
digits) of everything before it.  A read that returns a value mixing two
writes (torn), a value written for another key (foreign) or damaged bytes
fails valid(); a value the test wrote itself can also be compared exactly.
"""
import zlib

MIN_SIZE = 40


def make(key, tag, size=MIN_SIZE):
    """A value of about size bytes (at least the header) for key."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(tag, str):
        tag = tag.encode()
    head = key + b'|' + tag + b'|'
    fill = max(0, size - len(head) - 9)
    seed = b'%08x' % zlib.crc32(head)
    body = (seed * (fill // 8 + 1))[:fill]
    v = head + body + b'|'
    return v + b'%08x' % zlib.crc32(v)


def valid(key, value):
    """True if value is intact and was written for key."""
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(value, bytes) or len(value) < 9 or value[-9:-8] != b'|':
        return False
    if b'%08x' % zlib.crc32(value[:-8]) != value[-8:]:
        return False
    return value.startswith(key + b'|')
