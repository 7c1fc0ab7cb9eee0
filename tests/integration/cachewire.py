"""cachewire.py - modifier1 111 on the wire, for the server tests.

Requests are built byte by byte (independently of the C code), replies are
read until the server closes.  `exchange` half-closes the client side after
sending, so a server that waits for more bytes sees EOF at once instead of
running into its socket timeout.

The dump reader follows the format documented in docs/PROTOCOLS.md ("Dump format")
and plugins/ucache/wire/proto.h.
"""
import socket
import struct

from harness import uwsgi_vars

DUMP_RECORD = struct.Struct('<HQQ')   # klen, vlen, expires
DUMP_END = struct.Struct('<HQ')       # 0, records


def header(modifier2, pktsize):
    return struct.pack('<BHB', 111, pktsize, modifier2)


def packet(modifier2, body=b''):
    return header(modifier2, len(body)) + body


def array(*items):
    return b''.join(struct.pack('<H', len(i)) + i for i in items)


def magic(cmd, key=None, cache=None, size=None, expires=None, value=b''):
    pairs = [('cmd', cmd)]
    if key is not None:
        pairs.append(('key', key))
    if size is not None:
        pairs.append(('size', str(size)))
    if expires is not None:
        pairs.append(('expires', str(expires)))
    if cache is not None:
        pairs.append(('cache', cache))
    return packet(17, uwsgi_vars(pairs)) + value


def exchange(port, data, timeout=10.0, read_limit=None):
    """Send data, half-close, return the bytes read until the server closes
    (or read_limit bytes).  A reset after the reply counts as a close."""
    chunks, got = [], 0
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
            while read_limit is None or got < read_limit:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except ConnectionResetError:
            pass
    return b''.join(chunks)


def parse_vars(data):
    out, pos = {}, 0
    while pos < len(data):
        (kl,) = struct.unpack_from('<H', data, pos)
        k = data[pos + 2:pos + 2 + kl].decode()
        pos += 2 + kl
        (vl,) = struct.unpack_from('<H', data, pos)
        out[k] = data[pos + 2:pos + 2 + vl]
        pos += 2 + vl
    return out


def split_reply(data):
    """(modifier1, pktsize, modifier2, rest) of a uwsgi reply."""
    m1, size, m2 = struct.unpack_from('<BHB', data, 0)
    return m1, size, m2, data[4:]


def magic_reply(data):
    """The vars of a modifier2 17 reply and the bytes after them, or None."""
    if not data:
        return None
    m1, size, m2, rest = split_reply(data)
    assert (m1, m2) == (111, 17), data[:16]
    return parse_vars(rest[:size]), rest[size:]


def parse_dump(data):
    """Decode a modifier2 6 reply: (geometry vars, [(key, value, expires)],
    complete?).  complete is True when the end marker carries the count."""
    m1, size, m2, rest = split_reply(data)
    assert (m1, m2) == (111, 7), data[:16]
    geometry = parse_vars(rest[:size])
    pos, records = size, []
    while pos + 2 <= len(rest):
        (klen,) = struct.unpack_from('<H', rest, pos)
        if klen == 0:
            _, count = DUMP_END.unpack_from(rest, pos)
            return geometry, records, count == len(records) and pos + DUMP_END.size == len(rest)
        klen, vlen, expires = DUMP_RECORD.unpack_from(rest, pos)
        pos += DUMP_RECORD.size
        records.append((rest[pos:pos + klen], rest[pos + klen:pos + klen + vlen], expires))
        pos += klen + vlen
    return geometry, records, False


def dump_request(cache=b''):
    """ucache's own dump request (modifier2 6 with vars): a plain packet(6,
    name) asks for stock's raw image instead."""
    pairs = [('format', 'ucache-dump'), ('version', '1')]
    if cache:
        pairs.append(('cache', cache))
    return packet(6, uwsgi_vars(pairs))


# struct uwsgi_cache_item of uWSGI 2.0.21 (uwsgi.h): 11 u64 fields, then the key
IMAGE_ITEM = struct.Struct('<11Q')


def parse_image(data, keysize=2048):
    """Decode a stock dump reply (vars items, blocksize + the raw image of
    the sender's memory) for a cache of that keysize and no bitmap:
    (vars, {key: (value, expires)}).  Chains are checked too: every live
    item must be reachable from its chain head by next links."""
    m1, size, m2, rest = split_reply(data)
    assert (m1, m2) == (111, 7), data[:16]
    head = parse_vars(rest[:size])
    img = rest[size:]
    items, blocksize = int(head['items']), int(head['blocksize'])
    stride = IMAGE_ITEM.size + keysize
    assert len(img) == items * (stride + blocksize), (len(img), items, stride, blocksize)
    data_off, out, fields = items * stride, {}, {}
    for i in range(1, items):
        f = IMAGE_ITEM.unpack_from(img, i * stride)
        flags, klen, khash, vlen, block, expires, hits, prev, nxt, lprev, lnext = f
        if not klen:
            continue
        key = img[i * stride + IMAGE_ITEM.size:i * stride + IMAGE_ITEM.size + klen]
        value = img[data_off + block * blocksize:data_off + block * blocksize + vlen]
        out[key] = (value, expires)
        fields[i] = f
    for i, f in fields.items():     # prev/next agree both ways
        if f[8]:
            assert fields[f[8]][7] == i, 'next/prev mismatch at %d' % i
    return head, out
