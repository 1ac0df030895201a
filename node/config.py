"""Settings: every ``COLLEGIUM_*`` environment variable is read here and nowhere else.

``Settings`` is the node's (``collegium up`` and the commands that open a data directory);
command-line flags override the environment, both end up here. ``CliSettings`` holds what
only the command-line client reads: the node's URL, the wallet password and a hex key.
Secrets are ``SecretStr``: never in a repr, a log or an error text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal

from pydantic import ByteSize, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX: Final = "COLLEGIUM_"
DATA_DIR_ENV: Final = "COLLEGIUM_DATA_DIR"
PASSWORD_ENV: Final = "COLLEGIUM_PASSWORD"
"""The wallet password of the node's keystore or of ``--keystore FILE`` (else a prompt)."""
KEY_ENV: Final = "COLLEGIUM_KEY"
"""The default ``--key-env``: the variable holding a person's hex private key."""
URL_ENV: Final = "COLLEGIUM_URL"
DEFAULT_URL: Final = "http://127.0.0.1:8000"

DEFAULT_DATA_DIR = Path("~/.collegium")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_EPOCH_PERIOD = 100
DEFAULT_MAX_TX_BYTES = 16 * 1024
DEFAULT_HOME_SUBSYSTEM = "main"
DEFAULT_BATCH_MAX = 256
DEFAULT_ANCHOR_WAIT = 30.0
DEFAULT_ANCHOR_PACE = 1.0
DEFAULT_PARTICIPANT_TTL = 10.0
DEFAULT_FOLLOWER_POLL = 1.0
DEFAULT_SYNC_INTERVAL = 15.0
DEFAULT_VERIFY_WORKERS = 2
DEFAULT_EPOCH_SECONDS = 60.0
DEFAULT_EPOCH_POLL_SECONDS = 1.0
DEFAULT_AUTH_NONCE_TTL = 300.0
DEFAULT_AUTH_SESSION_TTL = 24 * 3600.0
DEFAULT_RATE_LIMIT = 200.0
DEFAULT_RATE_BURST = 400
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RPC_GAS_CAP = 10_000_000  # a third of the embedded chain's block (30,029,122)
DEFAULT_RPC_CALL_TIMEOUT = 3.0
DEFAULT_RPC_RATE_LIMIT = 20.0
DEFAULT_RPC_RATE_BURST = 40
DEFAULT_RPC_MAX_BATCH = 20
DEFAULT_JSON_MAX_DEPTH = 64  # every route's JSON nests < 10 levels
#: No cross-origin caller by default; list origins (e.g. the vite dev server,
#: ``["http://localhost:5173"]``) in ``COLLEGIUM_CORS_ORIGINS`` to allow them, with credentials.
DEFAULT_CORS_ORIGINS: tuple[str, ...] = ()
KEYSTORE_FILE = "keystore.json"
NODE_FILE = "node.json"
DB_FILE = "index.sqlite"


class Settings(BaseSettings):
    """Everything a running node needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # COLLEGIUM_DATA_DIR, else ~/.collegium (``~`` expanded)
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # URLs may carry credentials (user:password@): kept out of the repr
    chain_url: str | None = Field(default=None, repr=False)
    ipfs_api: str | None = Field(default=None, repr=False)
    database_url: str | None = Field(default=None, repr=False)
    # where data lives (docs/operations.md): the block store's directory, the embedded chain's
    # directory (defaults: <data_dir>/ipfs, <data_dir>/chain) and the space donated to the store
    blocks_dir: Path | None = None
    chain_dir: Path | None = None
    store_quota: ByteSize | None = None
    epoch_period: int = DEFAULT_EPOCH_PERIOD
    max_tx_bytes: int = DEFAULT_MAX_TX_BYTES
    public_url: str | None = None
    batch_max: int = DEFAULT_BATCH_MAX
    anchor_wait: float = DEFAULT_ANCHOR_WAIT
    # under load (an anchor of at least BUSY_BATCH = 8 leaves, not full) the next anchor starts
    # at least this long after the previous one: fewer, larger anchors (node/ledger/anchorer.py);
    # one a second is the embedded chain's block time (faster would use up chain_max_lead)
    anchor_pace: float = Field(default=DEFAULT_ANCHOR_PACE, ge=0)
    # ledger: only participants of a subsystem may sign its transactions
    require_participant: bool = True
    # worker processes checking the signatures of large batch requests and, under load, the
    # bodies of concurrent single submissions (node/api/bodychecks.py); 0: in-process only
    verify_workers: int = DEFAULT_VERIFY_WORKERS
    participant_ttl: float = DEFAULT_PARTICIPANT_TTL
    # a signed transaction timestamp further than this past the node's clock is refused (422)
    tx_max_future_seconds: float = Field(default=300.0, ge=0)
    # chain follower: confirmations before indexing (None: 0 embedded, 2 over RPC)
    follower: bool = True
    confirmations: int | None = None
    # also wait for the chain's "safe" or "finalized" block where it has that tag (issue 15)
    finality: Literal["confirmations", "safe", "finalized"] = "confirmations"
    follower_poll: float = DEFAULT_FOLLOWER_POLL
    epoch_service: bool = True
    # embedded chain: one empty block each block_seconds unless the newest block is stamped this
    # second (0: no block clock); a transaction waits rather than stamp its block more than
    # chain_max_lead seconds ahead of the wall clock (docs/operations.md)
    block_seconds: float = Field(default=1.0, ge=0)
    chain_max_lead: float = Field(default=5.0, ge=1)
    # mine empty blocks to end a quiet epoch (None: off; the embedded chain has its block clock)
    epoch_autoadvance: bool | None = None
    epoch_seconds: float = DEFAULT_EPOCH_SECONDS
    epoch_poll_seconds: float = DEFAULT_EPOCH_POLL_SECONDS
    sync: bool = True
    sync_interval: float = DEFAULT_SYNC_INTERVAL
    # login (SIWE) and the API edge (node/api/edge.py)
    auth_domains: list[str] = Field(default_factory=list)  # besides the endpoint's host:port
    auth_nonce_ttl: float = DEFAULT_AUTH_NONCE_TTL
    auth_session_ttl: float = DEFAULT_AUTH_SESSION_TTL
    # session keys and signed requests (docs/security.md)
    auth_clock_skew: float = 60.0
    auth_signature_max_age: float = 300.0
    auth_delegation_max_ttl: float = 24 * 3600.0
    rate_limit: float = DEFAULT_RATE_LIMIT  # requests/s per client; 0 disables
    rate_burst: int = DEFAULT_RATE_BURST
    # requests/s per registered node that signs its requests (Collegium-Peer); 0: unlimited
    peer_rate_limit: float = 2000.0
    # clients whose X-Forwarded-For is believed (a reverse proxy in front of the node); none
    trusted_proxies: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=lambda: list(DEFAULT_CORS_ORIGINS))
    # peers (node/chain/endpoints.py): None = dev mode (loopback/private endpoints allowed) only
    # on the embedded chain or a JSON-RPC chain on a loopback host; hosts allowed anyway
    allow_private_peers: bool | None = None
    peer_allowed_hosts: list[str] = Field(default_factory=list)
    # request bodies (node/api/limits.py): bytes of any body but single/batch transactions
    # (max_tx_bytes, batch_max × max_tx_bytes), and nesting depth of JSON, checked before parsing
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    json_max_depth: int = Field(default=DEFAULT_JSON_MAX_DEPTH, ge=1)
    # POST /rpc (node/api/routes/rpc.py): gas and seconds of one eth_call/eth_estimateGas
    # (embedded chain: stopped past the time), calls/s per client (its own bucket, besides
    # rate_limit; 0 disables) and calls per JSON-RPC batch
    rpc_gas_cap: int = Field(default=DEFAULT_RPC_GAS_CAP, ge=21_000)
    rpc_call_timeout: float = Field(default=DEFAULT_RPC_CALL_TIMEOUT, gt=0)
    rpc_rate_limit: float = Field(default=DEFAULT_RPC_RATE_LIMIT, ge=0)
    rpc_rate_burst: int = Field(default=DEFAULT_RPC_RATE_BURST, ge=1)
    rpc_max_batch: int = Field(default=DEFAULT_RPC_MAX_BATCH, ge=1)
    # the front-end build served and published (None: the bundled one, node/resources.py)
    frontend_dir: Path | None = None

    @field_validator("data_dir", "frontend_dir", "blocks_dir", "chain_dir")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        """Return ``value`` with ``~`` expanded."""
        return value.expanduser() if value is not None else None

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
    def store_path(self) -> Path:
        """Return the embedded block store's directory."""
        return (self.blocks_dir or self.data_dir / "ipfs").expanduser()

    @property
    def chain_path(self) -> Path:
        """Return the embedded chain's directory."""
        return (self.chain_dir or self.data_dir / "chain").expanduser()

    @property
    def endpoint(self) -> str:
        """Return the URL peers and users reach this node at."""
        return self.public_url or f"http://{self.host}:{self.port}"


class CliSettings(BaseSettings):
    """What the command-line client reads from the environment, besides ``Settings``:
    ``COLLEGIUM_URL`` (the node to talk to), ``COLLEGIUM_PASSWORD`` (a keystore's password,
    set even when empty) and ``COLLEGIUM_KEY`` (a hex private key)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    url: str | None = None
    password: SecretStr | None = None
    key: SecretStr | None = None

    @property
    def node_url(self) -> str:
        """Return the node URL: ``COLLEGIUM_URL`` if set and not empty, else the default."""
        return self.url or DEFAULT_URL

    def key_from(self, variable: str = KEY_ENV) -> SecretStr | None:
        """Return the hex key held by environment variable ``variable`` (``--key-env``), or
        None when it is unset or empty."""
        if variable == KEY_ENV:
            value = self.key
        else:
            raw = os.environ.get(variable)
            value = SecretStr(raw) if raw is not None else None
        return value if value is not None and value.get_secret_value() else None
