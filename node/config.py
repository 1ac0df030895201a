"""Node settings: one ``Settings`` class, read from the environment (``COLLEGIUM_*``).

Command-line flags of ``collegium up`` override the environment; both end up here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("~/.collegium")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_EPOCH_PERIOD = 100
DEFAULT_MAX_TX_BYTES = 16 * 1024
DEFAULT_HOME_SUBSYSTEM = "main"
DEFAULT_BATCH_MAX = 256
DEFAULT_ANCHOR_WAIT = 30.0
KEYSTORE_FILE = "keystore.json"
NODE_FILE = "node.json"
DB_FILE = "index.sqlite"


def default_data_dir() -> Path:
    """Return the data directory from ``COLLEGIUM_DATA_DIR`` or ``~/.collegium``."""
    return Path(os.environ.get("COLLEGIUM_DATA_DIR", str(DEFAULT_DATA_DIR))).expanduser()


class Settings(BaseSettings):
    """Everything a running node needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="COLLEGIUM_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    chain_url: str | None = None
    ipfs_api: str | None = None
    database_url: str | None = None
    epoch_period: int = DEFAULT_EPOCH_PERIOD
    max_tx_bytes: int = DEFAULT_MAX_TX_BYTES
    public_url: str | None = None
    batch_max: int = DEFAULT_BATCH_MAX
    anchor_wait: float = DEFAULT_ANCHOR_WAIT

    @property
    def keystore_path(self) -> Path:
        """Return the path of the node wallet's keystore JSON."""
        return self.data_dir / KEYSTORE_FILE

    @property
    def node_file(self) -> Path:
        """Return the path of the node's identity/deployment record."""
        return self.data_dir / NODE_FILE

    @property
    def sqlalchemy_url(self) -> str:
        """Return the index database URL (SQLite in the data dir unless set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / DB_FILE}"

    @property
    def endpoint(self) -> str:
        """Return the URL peers and users reach this node at."""
        return self.public_url or f"http://{self.host}:{self.port}"
