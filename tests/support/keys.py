"""A wallet password source for tests: ``$COLLEGIUM_PASSWORD``, else the terminal prompt."""

from __future__ import annotations

import getpass
import os

from node.config import PASSWORD_ENV
from node.errors import ConfigError


def password_from_env_or_prompt(prompt: str = "Wallet password: ") -> str:
    """Return the wallet password from ``$COLLEGIUM_PASSWORD``, else ask on the terminal.

    Raise ConfigError if neither is available (no variable and no terminal to ask on).
    """
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    try:
        return getpass.getpass(prompt)
    except (EOFError, OSError) as exc:
        raise ConfigError(f"no wallet password: set {PASSWORD_ENV} or run on a terminal") from exc
