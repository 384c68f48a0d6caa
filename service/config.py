"""Configuration: defaults, then a TOML file, then ``SHINGAN_*`` variables, then explicit values.

Read by the CLI and by ``create_app`` at start-up, never at import time. Every setting is declared
once, as a field of :class:`Config` with its type, bounds, default and description; the file keys,
the variables (``SHINGAN_`` + the key in capitals), the validation and the README's settings table
(:func:`settings_table`, checked by a test) all come from that declaration. A setting that holds
several paths takes them ``os.pathsep``-separated in a variable (``:`` on Linux), a list of names
takes them comma-separated; relative paths in a file are relative to the file. Every problem is a
:class:`ConfigError` with a message that names the setting and what is wrong with it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from provenance.defaults import C2PA_SIGNER_EKUS, DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_PIXELS
from provenance.errors import ShinganError
from service.db_url import default_url, sqlite_file

# What the settings build (trust, detectors, banks, limits, the database) is imported where it
# is built: ``shingan --help`` and ``shingan config`` import this module and need none of it.
if TYPE_CHECKING:
    from detectors.registry import DetectorSet, Registry
    from provenance.media import Limits
    from provenance.trust import TrustConfig
    from service.banks import BankLookup, BankSet, BankSource
    from service.media_store import MediaStore
    from service.options import AnalyzeOptions
    from service.store import Store

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(ShinganError):
    """A setting is missing, malformed or points at something unusable."""

    code = "config"


PATHS: dict[str, Any] = {"list": "paths"}  # several paths: os.pathsep-separated in a variable
NAMES: dict[str, Any] = {"list": "names"}  # several names: comma-separated in a variable


class Config(BaseModel):
    """Every setting of the service and the CLI (see the module's docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(
        default_factory=lambda: _default_data_dir(),
        description="where the service, `./dev serve` and every `shingan` command keep their "
        "state (default `$XDG_DATA_HOME/shingan`, else `~/.local/share/shingan`; "
        "`shingan config` shows it)",
    )
    host: str = Field("127.0.0.1", description="the address `shingan serve` listens on")
    port: int = Field(8080, gt=0, le=65535, description="the port `shingan serve` listens on")
    threads: int = Field(
        32, gt=0, description="request threads of `serve` (two always stay free of analyses)"
    )
    max_upload_mb: float = Field(200.0, gt=0, description="largest accepted file, MiB")
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, gt=0, description="largest accepted image, in pixels"
    )
    max_frame_pixels: int = Field(
        DEFAULT_MAX_FRAME_PIXELS, gt=0, description="largest accepted video frame, in pixels"
    )
    trust_anchors: tuple[str, ...] = Field(
        (), description="C2PA trust anchors: PEM/DER files or directories", json_schema_extra=PATHS
    )
    user_anchors: tuple[str, ...] = Field(
        (), description="more anchors (your organisation's)", json_schema_extra=PATHS
    )
    tsa_anchors: tuple[str, ...] = Field(
        (), description="time-stamp authority roots", json_schema_extra=PATHS
    )
    allowed_list: tuple[str, ...] = Field(
        (), description="end-entity certificates accepted as trusted", json_schema_extra=PATHS
    )
    allowed_ekus: str | tuple[str, ...] | None = Field(
        C2PA_SIGNER_EKUS,
        description="signer EKUs accepted: comma-separated OIDs, a store.cfg file, or `sdk` "
        "(the SDK's own list)",
    )
    remote_manifest_fetch: bool = Field(
        False, description="fetch remote C2PA manifests (a network request per file)"
    )
    ocsp_fetch: bool = Field(False, description="fetch OCSP responses for signers")
    models_dirs: tuple[str, ...] = Field(
        (), description="extra folders of detector models (card.toml)", json_schema_extra=PATHS
    )
    detectors: tuple[str, ...] | None = Field(
        None,
        description="detector names to run (default: every default one)",
        json_schema_extra=NAMES,
    )
    onnx_providers: tuple[str, ...] = Field(
        ("CPUExecutionProvider",),
        description="onnxruntime execution providers, in order of preference",
        json_schema_extra=NAMES,
    )
    onnx_threads: int = Field(0, ge=0, description="intra-op threads per model (0: one per core)")
    video_every_s: float = Field(1.0, gt=0, description="seconds between analysed video frames")
    video_max_frames: int = Field(64, gt=0, description="video frames analysed at most")
    video_max_duration_s: float = Field(600.0, gt=0, description="seconds of video covered")
    stage_timeout_s: float = Field(
        120.0,
        ge=0,
        description="deadline of each analysis stage, s (0: none); an overrun costs the stage's "
        "signal (`timed_out` abstention)",
    )
    banks: tuple[str, ...] = Field(
        (),
        description="known-media bank CSV files (read-only; banks in the database need no setting)",
        json_schema_extra=PATHS,
    )
    database_url: str | None = Field(
        None,
        description="reports, batches, banks, keys and the audit log (default: SQLite "
        "`shingan.db` in the data dir; `postgresql://...` for several machines)",
    )
    broker_url: str | None = Field(
        None,
        description="`redis://...`: run batches on `shingan worker` processes; also shares "
        "rate limits",
    )
    broker_visibility_timeout_s: float = Field(
        3600.0, gt=0, description="seconds before a dead worker's task goes to another"
    )
    batch_workers: int = Field(
        0,
        ge=0,
        description="batch items analysed at once without a broker (0: one per CPU core, at "
        "most 4); with `batch_runner = processes` each is a worker process of its own",
    )
    batch_runner: Literal["processes", "threads"] = Field(
        "processes",
        description="without a broker, batch items are analysed in worker `processes` (each "
        "loads the models: about 0.5 GB with the detectors on, 0.2 GB without; ended after a "
        "minute idle) or in the service's own `threads` (less memory, about half the files/s)",
    )
    max_batch_files: int = Field(10_000, gt=0, description="files in one batch at most")
    max_batch_mb: float = Field(4096.0, gt=0, description="one batch's files at most, MiB")
    max_zip_ratio: float = Field(100.0, gt=0, description="zip expansion ratio at most")
    media_retention_days: float = Field(
        0.0, ge=0, description="keep analysed media this many days (0: delete after analysis)"
    )
    webhook_attempts: int = Field(5, gt=0, description="webhook tries before giving up")
    webhook_backoff_s: float = Field(
        2.0, ge=0, description="first webhook retry delay, s, doubled each time"
    )
    webhook_allowed_hosts: tuple[str, ...] = Field(
        (),
        description="hosts, addresses or networks webhooks may reach although not public",
        json_schema_extra=NAMES,
    )
    api_keys: Literal["auto", "required", "off"] = Field(
        "auto", description="`auto` (required beyond loopback), `required` or `off`"
    )
    rate_limit_per_minute: int = Field(
        600, gt=0, description="API requests a minute per key (or address)"
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="`Host` names the service answers to (default: `localhost` and this "
        "machine's names; IP addresses always; `*`: any)",
        json_schema_extra=NAMES,
    )
    max_concurrent_per_client: int = Field(
        0, ge=0, description="analyses one client may have running or waiting (0: half)"
    )
    analysis_slots: int = Field(
        0, ge=0, description="analyses running at once (0: one per CPU core, at least 2)"
    )
    queue_timeout_s: float = Field(
        60.0, ge=0, description="how long a request waits for an analysis slot before 503 busy"
    )
    trusted_proxy: str | None = Field(
        None, description="a reverse proxy's address whose X-Forwarded-For/-Proto are believed"
    )

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Path:
        return _expand(str(value), "data_dir")

    @field_validator(
        "trust_anchors",
        "user_anchors",
        "tsa_anchors",
        "allowed_list",
        "models_dirs",
        "banks",
        mode="before",
    )
    @classmethod
    def _paths(cls, value: Any, info: ValidationInfo) -> tuple[str, ...]:
        items = [value] if isinstance(value, str | os.PathLike) else value
        if not isinstance(items, list | tuple):
            raise ValueError("expected a path or a list of paths")
        return tuple(str(_expand(str(v), str(info.field_name))) for v in items)

    @field_validator(
        "detectors", "onnx_providers", "webhook_allowed_hosts", "allowed_hosts", mode="before"
    )
    @classmethod
    def _names(cls, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("expected a name or a list of names")
        return tuple(str(v).strip() for v in items if str(v).strip())

    @field_validator("remote_manifest_fetch", "ocsp_fetch", mode="before")
    @classmethod
    def _bools(cls, value: Any) -> bool:
        return _bool(value)

    @field_validator("host", "database_url", "trusted_proxy", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> str:
        return str(value)

    @field_validator("api_keys", "batch_runner", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> str:
        return str(value).strip().lower()

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("only redis:// and rediss:// brokers are supported")
        return value

    @field_validator("allowed_ekus", mode="before")
    @classmethod
    def _ekus(cls, value: Any) -> str | tuple[str, ...] | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "sdk"):
            return None
        if isinstance(value, str):
            return str(_expand(value, "allowed_ekus")) if value.startswith("~") else value
        if not isinstance(value, list | tuple):
            raise ValueError("expected OIDs, a store.cfg path or sdk")
        return tuple(str(v) for v in value)

    def analyze_options(
        self,
        *,
        store: Store | None = None,
        bank_source: BankSource | None = None,
        **extra: Any,
    ) -> AnalyzeOptions:
        """Everything ``analyze`` needs, loaded from this configuration (trust files, models).
        With ``store`` (or ``bank_source``, its banks read another way), the banks kept in its
        database are looked up too (with the CSV banks), kept current as they change.

        Raises:
            ConfigError: a trust file or a model configuration is unusable.
        """
        from service.banks import LiveBanks
        from service.options import AnalyzeOptions

        banks: BankLookup = self.build_banks()
        if store is not None:
            bank_source = store.banks
        if bank_source is not None:
            banks = LiveBanks(banks, bank_source)
        return AnalyzeOptions(
            trust=self.build_trust(),
            limits=self.limits,
            detectors=self.build_detectors(),
            video_every_s=self.video_every_s,
            video_max_frames=self.video_max_frames,
            video_max_duration_s=self.video_max_duration_s,
            stage_timeout_s=self.stage_timeout_s,
            banks=banks,
            **extra,
        )

    @property
    def max_batch_bytes(self) -> int:
        """The most a batch's files may hold in all (zips counted expanded)."""
        return int(self.max_batch_mb * 1024 * 1024)

    @property
    def max_batch_request_bytes(self) -> int:
        """A batch request's body: its files plus multipart framing."""
        return self.max_batch_bytes + 1024 * 1024

    @property
    def store_url(self) -> str:
        return self.database_url or default_url(self.data_dir)

    def open_store(self) -> Store:
        """Open (and migrate) the database."""
        from service.store import Store

        return Store(self.store_url)

    def existing_store(self) -> Store | None:
        """The database if there is one: a configured ``database_url``, or the data folder's
        SQLite file once something (a bank, a key, the service) has made it. A one-off
        ``shingan verify`` never creates it."""
        path = sqlite_file(self.store_url)
        if path is not None and not path.is_file():
            return None
        return self.open_store()

    def media_store(self) -> MediaStore:
        from service.media_store import MediaStore

        return MediaStore(self.data_dir / "media", self.media_retention_days)

    @property
    def batch_slots(self) -> int:
        """Batch items analysed at once by the in-process runner: the setting, or one per CPU
        core, at most 4 (each worker process holds its own models)."""
        return self.batch_workers or max(1, min(4, os.cpu_count() or 1))

    @property
    def running_slots(self) -> int:
        """Analyses that run at once: the setting, or one per CPU core (at least two).
        Analysis is CPU work; more at once only adds latency and memory."""
        return self.analysis_slots or max(2, os.cpu_count() or 2)

    @property
    def waiting_slots(self) -> int:
        """Requests that may wait for an analysis slot: every request thread but two, which
        stay free for health checks, status pages and downloads."""
        return max(0, self.threads - 2 - self.running_slots)

    @property
    def per_client_slots(self) -> int:
        """Analyses one client may have running or waiting at once."""
        return self.max_concurrent_per_client or max(
            1, (self.running_slots + self.waiting_slots) // 2
        )

    def keys_required(self) -> bool:
        """API keys are needed whenever the service listens beyond loopback (``auto``)."""
        if self.api_keys == "auto":
            return self.host not in LOOPBACK_HOSTS
        return self.api_keys == "required"

    def build_banks(self) -> BankSet:
        """Raises: ConfigError when a bank file is missing or malformed."""
        from service.banks import BankError, BankSet

        try:
            return BankSet.load(self.banks)
        except BankError as exc:
            raise ConfigError(f"banks: {exc}") from exc

    @property
    def limits(self) -> Limits:
        from provenance.media import Limits

        return Limits(
            max_bytes=int(self.max_upload_mb * 1024 * 1024),
            max_pixels=self.max_pixels,
            max_frame_pixels=self.max_frame_pixels,
        )

    def build_trust(self) -> TrustConfig:
        """Load the trust files named by this configuration.

        Raises:
            ConfigError: a trust file is missing or malformed.
        """
        from provenance.trust import TrustConfigError, build_trust

        try:
            return build_trust(
                anchors=self.trust_anchors,
                user_anchors=self.user_anchors,
                tsa_anchors=self.tsa_anchors,
                allowed_list=self.allowed_list,
                allowed_ekus=self.allowed_ekus,
                remote_manifest_fetch=self.remote_manifest_fetch,
                ocsp_fetch=self.ocsp_fetch,
            )
        except TrustConfigError as exc:
            raise ConfigError(f"trust configuration: {exc}") from exc

    def model_folders(self) -> list[Path]:
        """The project's own models, then the configured extra folders."""
        from detectors.registry import BUILTIN_MODELS

        return [BUILTIN_MODELS, *(Path(p).expanduser() for p in self.models_dirs)]

    def build_registry(self) -> Registry:
        """Raises: ConfigError on duplicate model names."""
        from detectors.registry import Registry, RegistryError
        from detectors.runtime import Runtime, RuntimeConfig

        runtime = Runtime(
            RuntimeConfig(providers=self.onnx_providers, intra_op_threads=self.onnx_threads)
        )
        try:
            return Registry(self.model_folders(), runtime)
        except RegistryError as exc:
            raise ConfigError(f"detectors: {exc}") from exc

    def build_detectors(self) -> DetectorSet:
        """Discover and load the configured detectors (disabled ones carry their reason).

        Raises:
            ConfigError: duplicate model names, or a requested detector that does not exist.
        """
        from detectors.registry import BUILTIN_MODELS, DetectorSet, Registry, RegistryError
        from detectors.runtime import Runtime, RuntimeConfig

        folders = [BUILTIN_MODELS, *(Path(p).expanduser() for p in self.models_dirs)]
        runtime = Runtime(
            RuntimeConfig(providers=self.onnx_providers, intra_op_threads=self.onnx_threads)
        )
        try:
            registry = Registry(folders, runtime)
        except RegistryError as exc:
            raise ConfigError(f"detectors: {exc}") from exc
        if self.detectors is not None:
            unknown = set(self.detectors) - set(registry.statuses)
            if unknown:
                raise ConfigError(f"detectors: unknown model(s) {', '.join(sorted(unknown))}")
        if self.detectors == ():
            # Provenance only: no model is loaded, and each report says which detectors it
            # went without, so that no reader takes their silence for a finding.
            defaults = [s.name for s in registry.list() if s.card is not None and s.card.default]
            return DetectorSet(disabled=tuple((name, PROVENANCE_ONLY) for name in defaults))
        return DetectorSet.load(registry, self.detectors)


def _expand(raw: str, key: str) -> Path:
    """``~`` and ``~user`` expanded; an unknown user or no home directory is a ConfigError
    (pathlib raises RuntimeError, which would otherwise stop start-up with a traceback)."""
    try:
        return Path(raw).expanduser()
    except RuntimeError as exc:
        raise ConfigError(f"setting {key}: cannot expand {raw!r} ({exc})") from exc


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shingan"


def _list_kind(key: str) -> str | None:
    extra = Config.model_fields[key].json_schema_extra
    return extra.get("list") if isinstance(extra, dict) else None  # type: ignore[return-value]


#: Why a detector did not run when ``detectors = []`` (``--provenance-only``).
PROVENANCE_ONLY = "turned off (provenance-only analysis: detectors = [])"


def load_config(
    file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build a :class:`Config`. ``env`` defaults to ``os.environ``; ``SHINGAN_CONFIG`` names a
    file when ``file`` is not given.

    Raises:
        ConfigError: unknown keys, wrong types, unreadable file.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file = file or env.get("SHINGAN_CONFIG") or None
    if file:
        values.update(_read_file(Path(file)))
    for key in Config.model_fields:
        raw = env.get(f"SHINGAN_{key.upper()}")
        if raw:
            values[key] = _from_env(key, raw)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    unknown = set(values) - set(Config.model_fields)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    try:
        return Config.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = first["loc"][0] if first["loc"] else "?"
        raise ConfigError(
            f"setting {where}: invalid value {first.get('input')!r} ({first['msg']})"
        ) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("shingan", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [shingan] must be a table")
    base = path.parent
    out = dict(section)
    # Relative paths in a config file are relative to the file, not to the working directory.
    for key, value in section.items():
        if key == "data_dir" and isinstance(value, str):
            out[key] = str(base / _expand(value, key))
        elif key in Config.model_fields and _list_kind(key) == "paths":
            items = [value] if isinstance(value, str) else value
            if isinstance(items, list):
                out[key] = [str(base / _expand(str(v), key)) for v in items]
    return out


def parse_setting(assignment: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line, read as its ``SHINGAN_KEY`` variable would be.

    Raises:
        ConfigError: no ``=``, or a key that is not a setting.
    """
    key, sep, raw = assignment.partition("=")
    key = key.strip().lower()
    if not sep or not key:
        raise ConfigError(f"expected KEY=VALUE, got {assignment!r}")
    if key not in Config.model_fields:
        raise ConfigError(f"unknown setting: {key}")
    return key, _from_env(key, raw)


def _from_env(key: str, raw: str) -> Any:
    kind = _list_kind(key)
    if kind == "paths":
        return [p for p in raw.split(os.pathsep) if p]
    if kind == "names":
        return [p.strip() for p in raw.split(",") if p.strip()]
    return raw


def settings_table() -> str:
    """The README's table of settings, from the declarations (a test keeps the README equal)."""
    rows = ["| variable | file key | default | meaning |", "|---|---|---|---|"]
    for key, info in Config.model_fields.items():
        default = "" if info.default_factory is not None else info.default
        if isinstance(default, tuple):
            default = ", ".join(default)
        shown = f"`{default}`" if default not in ("", None, ()) else ""
        note = {"paths": " (several: `:`-separated)", "names": " (several: comma-separated)"}
        rows.append(
            f"| `SHINGAN_{key.upper()}` | `{key}` | {shown} | "
            f"{info.description}{note.get(_list_kind(key) or '', '')} |"
        )
    return "\n".join(rows) + "\n"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


if __name__ == "__main__":  # python -m service.config: the README's settings table
    print(settings_table(), end="")
