#!/usr/bin/env python3
"""make_udp_corpus.py - (re)write the replication datagram fuzzer's corpora.

  tests/fuzz/udp-corpus/       valid datagrams: stock sets and dels (padded
                               and not), signed ones (fuzzing seeds)
  tests/fuzz/udp-regressions/  one datagram per error class of
                               ucp_udpw_accept() (enum ucp_udpw_err in
                               plugins/ucache/udpwire.h), named
                               <class>--<what>.bin

Signed datagrams use SECRET and timestamp NOW, the values tests/fuzz/fuzz_udp.c
and tests/unit/test_udpwire.c pass to ucp_udpw_accept().  `make test`
replays both directories through the fuzz target under ASan (fuzz-regress);
test_udpwire checks that each regression is refused with the class its name
starts with.  A crash found by `make fuzz FUZZ_TARGET=udp` is added here by
hand (copy the artifact in, name it by its class).

Run from anywhere: python3 tests/fuzz/make_udp_corpus.py
"""
import hashlib
import hmac
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = b'ucache-fuzz-secret-0123456789'
NOW = 1800000000


def head(cmd, body, pktsize=None):
    return struct.pack('<BHB', 111, len(body) if pktsize is None else pktsize, cmd) + body


def counted(b):
    return struct.pack('<H', len(b)) + b


def set_(key, val, expires=b'0'):
    return head(10, counted(key) + counted(val) + (counted(expires) if expires is not None else b''))


def del_(key, pad=True):
    return head(11, counted(key) + (b'\0\0' if pad else b''))


def sign(dgram, secret=SECRET, sender=7, seq=1, ts=NOW):
    t = b'UCS1' + struct.pack('<QQQ', sender, seq, ts)
    d = head(dgram[3], dgram[4:] + t + b'\0' * 32)[:-32]
    return d + hmac.new(secret, d, hashlib.sha256).digest()


def flip(dgram, at):
    b = bytearray(dgram)
    b[at] ^= 1
    return bytes(b)


CORPUS = {
    'set.bin': set_(b'key', b'value', b'1800000100'),
    'set-never.bin': set_(b'k', b'v'),
    'set-no-expiry.bin': set_(b'k', b'v', None),
    'set-empty-expiry.bin': set_(b'k', b'v', b''),
    'del-padded.bin': del_(b'key'),
    'del-stock.bin': del_(b'key', pad=False),
    'signed-set.bin': sign(set_(b'key', b'value', b'1800000100')),
    'signed-del.bin': sign(del_(b'key'), seq=2),
}

REGRESSIONS = {
    'short--3-bytes.bin': b'\x6f\x01\x00',
    'mod1--not-111.bin': b'\x70' + set_(b'k', b'v')[1:],
    'pktsize--too-large.bin': head(10, counted(b'k') + counted(b'v') + counted(b'0'), 40),
    'cmd--modifier2-12.bin': head(12, counted(b'k')),
    'key--past-the-end.bin': head(11, struct.pack('<H', 50) + b'abc'),
    'key--empty.bin': head(11, counted(b'') + b'\0\0'),
    'value--past-the-end.bin': head(10, counted(b'k') + struct.pack('<H', 9) + b'v'),
    'value--empty.bin': head(10, counted(b'k') + counted(b'') + counted(b'0')),
    'expiry--not-decimal.bin': set_(b'k', b'v', b'12x'),
    'expiry--truncated.bin': head(10, counted(b'k') + counted(b'v') + struct.pack('<H', 5) + b'12'),
    'expiry--21-digits.bin': set_(b'k', b'v', b'1' * 21),
    'trailing--set.bin': head(10, set_(b'k', b'v')[4:] + b'xx'),
    'trailing--del-3-bytes.bin': head(11, counted(b'k') + b'\0\0\0'),
    'unsigned--stock-set.bin': set_(b'k', b'v', b'1800000100'),
    'mac--wrong-secret.bin': sign(set_(b'k', b'v'), secret=b'another-secret-0123456789'),
    'mac--flipped-value.bin': flip(sign(set_(b'key', b'value')), 4 + 2 + 3 + 2),
    'window--timestamp-1970.bin': sign(set_(b'k', b'v'), ts=0),
}


def write(sub, files):
    d = os.path.join(HERE, sub)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    for name, data in files.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    write('udp-corpus', CORPUS)
    write('udp-regressions', REGRESSIONS)
