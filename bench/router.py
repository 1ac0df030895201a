"""Router cost: proxy overhead over a direct request, and failover time after a host dies.

Starts three real HTTP nodes on 127.0.0.1 (uvicorn threads, each behind the real
``RouterMiddleware`` with the same assignment) and measures, side by side in one run with
the requests interleaved:

* ``direct``: GET of a ``be_subsystem`` path at the slot's first host (served there);
* ``proxied``: the same GET at a node outside the slot (proxied to the first host);
* ``failover``: after the first host is stopped, the first request through the outsider
  (connect refused -> next host), then the next one (the dead host is cached as down).

Runs in under 60 s with no arguments; ``--full`` makes more requests. Prints the headline
figures last, one per line, as ``metric: value unit``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.router.cluster import SUBSYSTEM, cluster  # noqa: E402

PATH = f"/api/v1/subsystems/{SUBSYSTEM}/data/ping"
WARMUP = 50


def percentile(values: list[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_get(client: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="5000 requests of each kind")
    args = parser.parse_args()
    count = 5000 if args.full else 1000

    with cluster() as c, httpx.Client(timeout=10) as client:
        first, second = c.hosts("be_subsystem", SUBSYSTEM)
        outsider = c.outsider("be_subsystem", SUBSYSTEM)
        for _ in range(WARMUP):
            timed_get(client, first.url + PATH)
            timed_get(client, outsider.url + PATH)
        direct: list[float] = []
        proxied: list[float] = []
        for _ in range(count):
            direct.append(timed_get(client, first.url + PATH))
            proxied.append(timed_get(client, outsider.url + PATH))

        first.kill()
        failover = timed_get(client, outsider.url + PATH)
        after = statistics.median(timed_get(client, outsider.url + PATH) for _ in range(50))

    d50, p50 = statistics.median(direct), statistics.median(proxied)
    print(f"requests: {count} direct + {count} proxied, interleaved, one keep-alive client")
    print(f"direct: p50 {d50:.2f} ms, p99 {percentile(direct, 0.99):.2f} ms")
    print(f"proxied: p50 {p50:.2f} ms, p99 {percentile(proxied, 0.99):.2f} ms")
    print(f"after failover (dead host cached as down): p50 {after:.2f} ms")
    print(f"proxy_overhead_p50: {p50 - d50:.2f} ms")
    print(f"failover: {failover:.1f} ms")


if __name__ == "__main__":
    main()
