"""Build hook: copy the contract artifacts, the Alembic migrations and the built front-end into
the wheel as package data (``node/_bundle``), where :mod:`node.resources` finds them.

The top-level ``contracts/build``, ``migrations`` and ``frontend/dist`` stay the sources; an
editable install reads them in place and gets no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: keep in step with node/resources.py SOURCES
BUNDLE = {"contracts": "contracts/build", "migrations": "migrations", "frontend": "frontend/dist"}
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")


class BuildPyWithBundle(build_py):
    """``build_py`` that also copies the bundle into ``<build_lib>/node/_bundle``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target_root = Path(self.build_lib) / "node" / "_bundle"
        for name, source in BUNDLE.items():
            src = ROOT / source
            if not src.is_dir():
                raise SystemExit(f"cannot build the wheel: {src} is missing")
            target = target_root / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(src, target, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithBundle})
