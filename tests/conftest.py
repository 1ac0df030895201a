"""Suite-wide collection rules.

The suite runs in two pytest-xdist workers (``-n 2 --dist loadgroup --no-loadscope-reorder``
in pyproject.toml: groups are handed out in the order collected here): most
integration tests wait on real processes, a chain or a browser, so two run side by side on the
2-core machine. Each test module stays on one worker (its module-scoped node, browser or chain
is made once), and groups that share more than a module stay together: the devnets (one
package-scoped pool of node processes, run in the order tests/devnet/conftest.py sets) and the
deployment tests (a wheel build and a Docker engine of their own). Those two groups take
minutes each and are collected first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from hypothesis import settings

# Hypothesis's default 200 ms deadline per example is a wall-clock check: on a loaded 2-core
# machine it fails correct code. The suite checks correctness only.
settings.register_profile("collegium", deadline=None)
settings.load_profile("collegium")

TESTS: Final = Path(__file__).resolve().parent
SHARED_GROUPS: Final = ("devnet", "deploy")


def compute_group(path: Path) -> str:
    """Return the xdist group of the test file at ``path``: its package for SHARED_GROUPS, else
    the file itself."""
    relative = path.resolve().relative_to(TESTS)
    if relative.parts[0] in SHARED_GROUPS:
        return relative.parts[0]
    return relative.as_posix()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its group, and put the longest groups (SHARED_GROUPS: minutes each)
    first, so that a worker starts them while the other takes the many short modules."""
    groups = {id(item): compute_group(Path(str(item.path))) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))

    def rank(item: pytest.Item) -> int:
        group = groups[id(item)]
        return SHARED_GROUPS.index(group) if group in SHARED_GROUPS else len(SHARED_GROUPS)

    items.sort(key=rank)  # stable: the order inside each group is kept
