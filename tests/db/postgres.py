"""A real PostgreSQL server (Debian's ``postgresql`` package) for the index tests.

``postgres_server`` starts one server per test session in a temporary directory, on a
Unix socket only (no TCP port), and stops it at the end; ``postgres_url`` gives each test
a fresh database on it. Both skip, with the reason, when the server binaries
(``apt-get install postgresql``) or the driver (``pip install 'psycopg[binary]'``) are
absent. Running as root, the server runs as the ``postgres`` system user (``initdb``
refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_PORT = 55432  # only names the socket file: the server listens on no TCP address
START_TIMEOUT_SECONDS = 60


def _bin_dir() -> Path | None:
    found = sorted(glob.glob(PG_BIN_GLOB))
    return Path(found[-1]) if found and Path(found[-1], "initdb").exists() else None


def _run(args: list[str], as_postgres: bool) -> None:
    if as_postgres:
        args = ["su", "postgres", "-c", " ".join(f"'{a}'" for a in args)]
    subprocess.run(args, check=True, capture_output=True, timeout=START_TIMEOUT_SECONDS)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Yield the socket directory of a running PostgreSQL server."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server absent: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL driver absent: pip install 'psycopg[binary]'")
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="collegium-pg-"))
    if as_postgres:
        shutil.chown(root, user="postgres")
    data = root / "data"
    _run([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], as_postgres)
    options = f"-k {root} -p {PG_PORT} -c listen_addresses= -c fsync=on"
    _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
          "-w", "start"], as_postgres)  # fmt: skip
    try:
        yield str(root)
    finally:
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], as_postgres)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """Return the SQLAlchemy URL of a new, empty database on the session's server."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(
        host=postgres_server, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@/{name}?host={postgres_server}&port={PG_PORT}"
