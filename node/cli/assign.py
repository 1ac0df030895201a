"""``collegium assign --input topology.json``: print the assignment of a topology as JSON.

Output: the JSON object of docs/assignment.md ("JSON interface"), keys sorted, indented by
2 spaces, with a final newline. Malformed or impossible input: a one-line message on stderr
(``error: <kind>: <details>``) and exit status 2; nothing is printed on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from node.assignment import compute_assignment_from_json, encode_assignment
from node.cli.status import ExitStatus
from node.errors import AssignmentError, ValidationError


class DuplicateKeyError(ValueError):
    """A JSON object has the same key twice."""


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Return the JSON object of ``pairs``; raise ``DuplicateKeyError`` on a repeated key."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKeyError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def render_assignment_json(topology: object) -> str:
    """Return the printed JSON of the assignment of ``topology`` (sorted keys, indent 2)."""
    encoded = encode_assignment(compute_assignment_from_json(topology))
    return json.dumps(encoded, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def fail(kind: str, message: str) -> typer.Exit:
    """Print ``error: kind: message`` on stderr and return the exit to raise."""
    typer.echo(f"error: {kind}: {message}", err=True)
    return typer.Exit(code=ExitStatus.INVALID_INPUT)


def assign_command(
    input: Path = typer.Option(  # noqa: A002 - the option is called --input in MISSION.md
        ..., "--input", "-i", help="Topology JSON: seed, epoch, nodes, subsystems, replicas."
    ),
) -> None:
    """Print the assignment of a topology (who hosts which role this epoch) as JSON."""
    try:
        text = input.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail("unreadable_input", f"{input}: {exc}") from exc
    try:
        topology = json.loads(text, object_pairs_hook=reject_duplicate_keys)
    except (json.JSONDecodeError, DuplicateKeyError) as exc:
        raise fail("invalid_json", f"{input}: {exc}") from exc
    try:
        output = render_assignment_json(topology)
    except (AssignmentError, ValidationError) as exc:
        raise fail(getattr(exc, "kind", type(exc).__name__), str(exc)) from exc
    typer.echo(output, nl=False)


app = typer.Typer(help="Deterministic hosting assignment.")
app.command("assign")(assign_command)
