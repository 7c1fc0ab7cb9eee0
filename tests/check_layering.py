#!/usr/bin/env python3
"""check_layering.py - core/ has no cycles: no file calls into a file that
calls back into it, directly or through others (ISSUE 9's layering rule).

Reads the symbol tables of build/core/*.o (nm): a file depends on another
when it references a function or object the other defines.  Prints the
dependency list, bottom first, and exits 1 naming a cycle if there is one.
Run by `make test` (target `layering`)."""
import glob
import os
import subprocess
import sys


def graph(objdir):
    defs, uses = {}, {}
    for obj in sorted(glob.glob(os.path.join(objdir, '*.o'))):
        name = os.path.basename(obj)[:-2]
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
            raise ValueError(' -> '.join(path[path.index(n):] + [n]))
        path.append(n)
        for m in g[n]:
            visit(m)
        path.pop()
        done.add(n)
        out.append(n)
    for n in sorted(g):
        visit(n)
    return out


def main():
    g = graph(sys.argv[1] if len(sys.argv) > 1 else 'build/core')
    if not g:
        print('check_layering: no objects found (build the engine first)')
        return 1
    try:
        files = order(g)
    except ValueError as e:
        print('check_layering: core/ has a cycle: %s' % e)
        return 1
    for n in files:
        print('  %-8s -> %s' % (n, ' '.join(g[n]) or '-'))
    print('check_layering: %d files, no cycles' % len(files))
    return 0


if __name__ == '__main__':
    sys.exit(main())
