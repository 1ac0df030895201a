"""Is this data dir's node running? The commands that can use a live node ask here."""

from __future__ import annotations

# httpx is imported where it is used: `collegium --help` must not wait for it.

HEALTH_TIMEOUT_SECONDS = 2.0


def is_node_running(endpoint: str | None) -> bool:
    """Return whether a node answers ``GET {endpoint}/health`` with 200 right now."""
    import httpx

    if not endpoint:
        return False
    try:
        return httpx.get(endpoint + "/health", timeout=HEALTH_TIMEOUT_SECONDS).status_code == 200
    except httpx.HTTPError:
        return False


def running_node_rpc(endpoint: str | None) -> str | None:
    """Return the ``/rpc`` URL of the node at ``endpoint`` if it is running now, else None."""
    return endpoint + "/rpc" if endpoint and is_node_running(endpoint) else None
