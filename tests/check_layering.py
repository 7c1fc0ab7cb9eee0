#!/usr/bin/env python3
"""check_layering.py - the whole tree (the engine, core/, and the uWSGI
plugin, plugins/ucache/) has no cycles: no file calls into a file that
calls back into it, directly or through others (issue 9's rule for core/,
issue 22's for the plugin).

Reads the symbol tables of the objects (nm): build/core/*.o, and the
plugin's objects that `make layering` compiles into build/layering/ with
the uwsgi binary's own cflags.  A file depends on another when it
references a function or object the other defines.  Prints the files
bottom first, each with the files it calls, and exits 1 naming a cycle if
there is one.

The plugin's folders are layers (docs/ARCHITECTURE.md), and a file may
call only files of its own layer or below: a call up is refused too,
unless UP_CALLS names it with the reason.

Also refused: a file under plugins/ucache/wire/ that includes a uWSGI
header (uwsgi.h, or any header of the plugin outside wire/, which all
include it): wire/ is built, unit-tested and fuzzed without uWSGI.

Run by `make test` (target `layering`)."""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIRE = os.path.join(ROOT, 'plugins', 'ucache', 'wire')


def objects(core_dir, plugin_dir):
    """{display name: object path}: core/NAME and the plugin's paths
    relative to plugins/ucache/ (e.g. wire/proto)."""
    out = {}
    for obj in sorted(glob.glob(os.path.join(core_dir, '*.o'))):
        out['core/' + os.path.basename(obj)[:-2]] = obj
    for obj in sorted(glob.glob(os.path.join(plugin_dir, '**', '*.o'), recursive=True)):
        out[os.path.relpath(obj, plugin_dir)[:-2]] = obj
    return out


def graph(objs):
    defs, uses = {}, {}
    for name, obj in objs.items():
        uses[name] = set()
        out = subprocess.run(['nm', obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in 'TDBR':
                defs[f[2]] = name
            elif len(f) == 2 and f[0] == 'U':
                uses[name].add(f[1])
    return {n: sorted({defs[s] for s in u if s in defs and defs[s] != n}) for n, u in uses.items()}


def order(g):
    """Files bottom first (a topological order), or raise with a cycle."""
    done, path, out = set(), [], []

    def visit(n):
        if n in done:
            return
        if n in path:
            raise ValueError('cycle: ' + ' -> '.join(path[path.index(n):] + [n]))
        path.append(n)
        for m in g[n]:
            visit(m)
        path.pop()
        done.add(n)
        out.append(n)
    for n in sorted(g):
        visit(n)
    return out


# The plugin's layers, bottom first (a file's layer: its folder, or its
# name at the top of plugins/ucache/).  core/ is below them all.
LAYERS = [['core'], ['wire'], ['registry', 'mthread'], ['nearcache'], ['peers'], ['writepath'],
          ['takeover'], ['serve'], ['plugin']]
# Calls up allowed, (caller, callee): the master starts the metrics
# server's thread with its others (one list of master threads).
UP_CALLS = {('takeover/lifecycle', 'serve/metrics')}


def layer(name):
    head = name.split('/')[0]
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise ValueError('check_layering: %s is in no layer (add it to LAYERS)' % name)


def calls_up(g):
    """'a -> b' for each call from a file to one of a higher layer."""
    return ['%s -> %s' % (a, b) for a in sorted(g) for b in g[a]
            if layer(b) > layer(a) and (a, b) not in UP_CALLS]


INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def wire_uwsgi_includes():
    """'wire/FILE: #include X' for each include of a uWSGI header under wire/."""
    bad = []
    for path in sorted(glob.glob(os.path.join(WIRE, '*.[ch]'))):
        with open(path) as f:
            text = f.read()
        for kind, name in INCLUDE.findall(text):
            base = os.path.basename(name)
            uwsgi = base.startswith('uwsgi') or base == 'ucp.h'
            outside = kind == '"' and not os.path.exists(os.path.join(WIRE, name))
            if uwsgi or outside:
                bad.append('wire/%s: #include %s' % (os.path.basename(path), name))
    return bad


def main():
    core_dir = sys.argv[1] if len(sys.argv) > 1 else 'build/core'
    plugin_dir = sys.argv[2] if len(sys.argv) > 2 else 'build/layering'
    objs = objects(core_dir, plugin_dir)
    if not any(n.startswith('core/') for n in objs) or all(n.startswith('core/') for n in objs):
        print('check_layering: objects missing in %s or %s (run make layering)' % (core_dir, plugin_dir))
        return 1
    bad = wire_uwsgi_includes()
    if bad:
        print('check_layering: wire/ must build without uWSGI:\n  ' + '\n  '.join(bad))
        return 1
    g = graph(objs)
    try:
        files = order(g)
        up = calls_up(g)
    except ValueError as e:
        print('check_layering: %s' % e)
        return 1
    if up:
        print('check_layering: calls up a layer:\n  ' + '\n  '.join(up))
        return 1
    width = max(len(n) for n in files)
    for n in files:
        print('  %-*s -> %s' % (width, n, ' '.join(g[n]) or '-'))
    print('check_layering: %d files (%d engine, %d plugin), no cycles, no call up a layer; '
          'wire/ without uWSGI'
          % (len(files), sum(n.startswith('core/') for n in files),
             sum(not n.startswith('core/') for n in files)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
