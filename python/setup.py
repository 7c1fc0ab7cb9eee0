"""setup.py - what pyproject.toml cannot say about the ucache package: its
version, read from the repository's VERSION file (the one place it lives)
and written into the built package as ucache/_version.py, which
ucache/__init__.py reads once installed (a venv has no VERSION file)."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

VERSION_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'VERSION')


def read_version():
    try:
        with open(VERSION_FILE) as f:
            # '~' (a Debian pre-release) is not PEP 440: 0.6.0~rc1 -> 0.6.0rc1
            return f.read().strip().replace('~', '')
    except OSError as e:
        raise SystemExit('ucache: %s: %s (build the package from the repository: '
                         'pip install ./python)' % (VERSION_FILE, e.strerror))


class BuildPyWithVersion(build_py):
    def run(self):
        super().run()
        path = os.path.join(self.build_lib, 'ucache', '_version.py')
        with open(path, 'w') as f:
            f.write("__version__ = '%s'\n" % self.distribution.get_version())


setup(version=read_version(), cmdclass={'build_py': BuildPyWithVersion})
