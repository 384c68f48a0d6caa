"""Configuration: defaults, then a TOML file, then ``SHINGAN_*`` variables, then explicit values.

Read by the CLI and by ``create_app`` at start-up, never at import time. Every problem is a
:class:`ConfigError` with a message that names the setting and what is wrong with it.

File keys (TOML, top level or under ``[shingan]``) and their variables:

==========================  ==============================  ===================================
key                         variable                        meaning
==========================  ==============================  ===================================
data_dir                    SHINGAN_DATA_DIR                where the service keeps its state
host / port                 SHINGAN_HOST / SHINGAN_PORT     where ``shingan serve`` listens
max_upload_mb               SHINGAN_MAX_UPLOAD_MB           largest accepted file, MiB
max_pixels                  SHINGAN_MAX_PIXELS              largest accepted image, pixels (120 M)
max_frame_pixels            SHINGAN_MAX_FRAME_PIXELS        largest accepted video frame (8192x4320)
trust_anchors               SHINGAN_TRUST_ANCHORS           PEM/DER files or directories
user_anchors                SHINGAN_USER_ANCHORS            more anchors (your organisation's)
tsa_anchors                 SHINGAN_TSA_ANCHORS             time-stamp authority roots
allowed_list                SHINGAN_ALLOWED_LIST            end-entity certificates to accept
allowed_ekus                SHINGAN_ALLOWED_EKUS            OIDs, a store.cfg path, or ``sdk``
remote_manifest_fetch       SHINGAN_REMOTE_MANIFEST_FETCH   fetch remote manifests (off)
ocsp_fetch                  SHINGAN_OCSP_FETCH              fetch OCSP responses (off)
threads                     SHINGAN_THREADS                 request threads of ``serve`` (32)
models_dirs                 SHINGAN_MODELS_DIRS             extra folders of detector models
detectors                   SHINGAN_DETECTORS               names to run (default: all)
onnx_providers              SHINGAN_ONNX_PROVIDERS          e.g. CUDAExecutionProvider,CPU...
onnx_threads                SHINGAN_ONNX_THREADS            intra-op threads (0: one per core)
video_every_s               SHINGAN_VIDEO_EVERY_S           seconds between analysed frames (1)
video_max_frames            SHINGAN_VIDEO_MAX_FRAMES        frames analysed at most (64)
video_max_duration_s        SHINGAN_VIDEO_MAX_DURATION_S    seconds of video covered (600)
stage_timeout_s             SHINGAN_STAGE_TIMEOUT_S         deadline of each analysis stage, s
                                                            (120; 0: none); past it the stage's
                                                            signal is dropped (``timed_out``)
banks                       SHINGAN_BANKS                   known-media bank CSV files
database_url                SHINGAN_DATABASE_URL            reports, batches, banks, keys, audit log
                                                            (SQLite file in the data dir by default)
broker_url                  SHINGAN_BROKER_URL              redis://... to run batches on Celery
                                                            workers (``shingan worker``)
broker_visibility_timeout_s SHINGAN_BROKER_VISIBILITY_TIMEOUT_S  seconds before a task of a dead
                                                            worker is handed to another (3600)
batch_workers               SHINGAN_BATCH_WORKERS           in-process batch threads (1)
max_batch_files             SHINGAN_MAX_BATCH_FILES         files in one batch at most (10000)
max_batch_mb                SHINGAN_MAX_BATCH_MB            one batch upload at most, MiB (4096)
max_zip_ratio               SHINGAN_MAX_ZIP_RATIO           zip expansion ratio at most (100)
media_retention_days        SHINGAN_MEDIA_RETENTION_DAYS    keep analysed media this long (0: no)
webhook_attempts            SHINGAN_WEBHOOK_ATTEMPTS        webhook tries before giving up (5)
webhook_backoff_s           SHINGAN_WEBHOOK_BACKOFF_S       first retry delay, doubled each time (2)
webhook_allowed_hosts       SHINGAN_WEBHOOK_ALLOWED_HOSTS   hosts, addresses or networks that
                                                            webhooks may reach though not public
api_keys                    SHINGAN_API_KEYS                ``auto`` (required beyond loopback),
                                                            ``required`` or ``off``
rate_limit_per_minute       SHINGAN_RATE_LIMIT_PER_MINUTE   API requests per key (or address) (600)
allowed_hosts               SHINGAN_ALLOWED_HOSTS           Host names the service answers to
                                                            (localhost and this machine's names;
                                                            IP addresses always; ``*``: any)
analysis_slots              SHINGAN_ANALYSIS_SLOTS          analyses running at once (0: one
                                                            per CPU core, at least 2)
queue_timeout_s             SHINGAN_QUEUE_TIMEOUT_S         how long a request waits for a
                                                            slot before 503 busy (60)
max_concurrent_per_client   SHINGAN_MAX_CONCURRENT_PER_CLIENT  analyses one client may have
                                                            running or waiting (0: half)
trusted_proxy               SHINGAN_TRUSTED_PROXY           address of a reverse proxy whose
                                                            X-Forwarded-For/-Proto are believed
==========================  ==============================  ===================================

Path lists in variables are separated by ``os.pathsep`` (``:`` on Linux).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.registry import BUILTIN_MODELS, DetectorSet, Registry, RegistryError
from detectors.runtime import Runtime, RuntimeConfig
from provenance.errors import ShinganError
from provenance.media import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_PIXELS, Limits
from provenance.trust import C2PA_SIGNER_EKUS, TrustConfig, TrustConfigError, build_trust
from service.banks import BankError, BankSet
from service.pipeline import AnalyzeOptions

if TYPE_CHECKING:
    from service.media_store import MediaStore
    from service.store import Store

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(ShinganError):
    """A setting is missing, malformed or points at something unusable."""

    code = "config"


@dataclass(frozen=True)
class Config:
    data_dir: Path = field(default_factory=lambda: _default_data_dir())
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 32
    max_upload_mb: float = 200.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    trust_anchors: tuple[str, ...] = ()
    user_anchors: tuple[str, ...] = ()
    tsa_anchors: tuple[str, ...] = ()
    allowed_list: tuple[str, ...] = ()
    allowed_ekus: str | tuple[str, ...] | None = C2PA_SIGNER_EKUS
    remote_manifest_fetch: bool = False
    ocsp_fetch: bool = False
    models_dirs: tuple[str, ...] = ()
    detectors: tuple[str, ...] | None = None
    onnx_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    onnx_threads: int = 0
    video_every_s: float = 1.0
    video_max_frames: int = 64
    video_max_duration_s: float = 600.0
    stage_timeout_s: float = 120.0
    banks: tuple[str, ...] = ()
    database_url: str | None = None
    broker_url: str | None = None
    broker_visibility_timeout_s: float = 3600.0
    batch_workers: int = 1
    max_batch_files: int = 10_000
    max_batch_mb: float = 4096.0
    max_zip_ratio: float = 100.0
    media_retention_days: float = 0.0
    webhook_attempts: int = 5
    webhook_backoff_s: float = 2.0
    webhook_allowed_hosts: tuple[str, ...] = ()
    api_keys: str = "auto"
    rate_limit_per_minute: int = 600
    allowed_hosts: tuple[str, ...] = ()
    max_concurrent_per_client: int = 0
    analysis_slots: int = 0
    queue_timeout_s: float = 60.0
    trusted_proxy: str | None = None

    def analyze_options(self, **extra: Any) -> AnalyzeOptions:
        """Everything ``analyze`` needs, loaded from this configuration (trust files, models).

        Raises:
            ConfigError: a trust file or a model configuration is unusable.
        """
        return AnalyzeOptions(
            trust=self.build_trust(),
            limits=self.limits,
            detectors=self.build_detectors(),
            video_every_s=self.video_every_s,
            video_max_frames=self.video_max_frames,
            video_max_duration_s=self.video_max_duration_s,
            stage_timeout_s=self.stage_timeout_s,
            banks=self.build_banks(),
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
        from service.store import default_url

        return self.database_url or default_url(self.data_dir)

    def open_store(self) -> Store:
        """Open (and migrate) the database."""
        from service.store import Store

        return Store(self.store_url)

    def media_store(self) -> MediaStore:
        from service.media_store import MediaStore

        return MediaStore(self.data_dir / "media", self.media_retention_days)

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
        try:
            return BankSet.load(self.banks)
        except BankError as exc:
            raise ConfigError(f"banks: {exc}") from exc

    @property
    def limits(self) -> Limits:
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
        return [BUILTIN_MODELS, *(Path(p).expanduser() for p in self.models_dirs)]

    def build_registry(self) -> Registry:
        """Raises: ConfigError on duplicate model names."""
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


_PATH_LISTS = (
    "trust_anchors",
    "user_anchors",
    "tsa_anchors",
    "allowed_list",
    "models_dirs",
    "banks",
)
_NAME_LISTS = ("detectors", "onnx_providers", "webhook_allowed_hosts", "allowed_hosts")
_BOOLS = ("remote_manifest_fetch", "ocsp_fetch")
_KEYS = {
    "data_dir",
    "host",
    "port",
    "threads",
    "max_upload_mb",
    "max_pixels",
    "max_frame_pixels",
    "allowed_ekus",
    "onnx_threads",
    "video_every_s",
    "video_max_frames",
    "video_max_duration_s",
    "stage_timeout_s",
    "database_url",
    "broker_url",
    "broker_visibility_timeout_s",
    "batch_workers",
    "max_batch_files",
    "max_batch_mb",
    "max_zip_ratio",
    "media_retention_days",
    "webhook_attempts",
    "webhook_backoff_s",
    "api_keys",
    "rate_limit_per_minute",
    "max_concurrent_per_client",
    "analysis_slots",
    "queue_timeout_s",
    "trusted_proxy",
    *_PATH_LISTS,
    *_NAME_LISTS,
    *_BOOLS,
}


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
    for key in _KEYS:
        var = f"SHINGAN_{key.upper()}"
        if var in env and env[var] != "":
            values[key] = _from_env(key, env[var])
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    unknown = set(values) - _KEYS
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return replace(Config(), **{k: _coerce(k, v) for k, v in values.items()})


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
    for key in (*_PATH_LISTS, "data_dir"):
        if key in out:
            value = out[key]
            if isinstance(value, str):
                value = [value] if key != "data_dir" else value
            if key == "data_dir" and isinstance(value, str):
                out[key] = str(base / _expand(value, key))
            elif isinstance(value, list):
                out[key] = [str(base / _expand(str(v), key)) for v in value]
    return out


def _from_env(key: str, raw: str) -> Any:
    if key in _PATH_LISTS:
        return [p for p in raw.split(os.pathsep) if p]
    if key in _NAME_LISTS:
        return [p.strip() for p in raw.split(",") if p.strip()]
    if key in _BOOLS:
        return raw
    return raw


def _coerce(key: str, value: Any) -> Any:
    try:
        if key == "data_dir":
            return _expand(str(value), key)
        if key == "onnx_threads":
            number = int(value)
            if number < 0:
                raise ValueError("must be 0 or more")
            return number
        if key in _NAME_LISTS:
            items = [value] if isinstance(value, str) else list(value)
            return tuple(str(v).strip() for v in items if str(v).strip())
        if key in ("video_every_s", "video_max_duration_s"):
            seconds = float(value)
            if seconds <= 0:
                raise ValueError("must be positive")
            return seconds
        if key in ("broker_visibility_timeout_s", "max_batch_mb", "max_zip_ratio"):
            number_f = float(value)
            if number_f <= 0:
                raise ValueError("must be positive")
            return number_f
        if key in ("max_concurrent_per_client", "analysis_slots"):
            number = int(value)
            if number < 0:
                raise ValueError("must be 0 (automatic) or more")
            return number
        if key in (
            "media_retention_days",
            "webhook_backoff_s",
            "stage_timeout_s",
            "queue_timeout_s",
        ):
            number_f = float(value)
            if number_f < 0:
                raise ValueError("must be 0 or more")
            return number_f
        if key == "api_keys":
            mode = str(value).strip().lower()
            if mode not in ("auto", "required", "off"):
                raise ValueError("must be auto, required or off")
            return mode
        if key == "broker_url":
            url = str(value)
            if not url.startswith(("redis://", "rediss://")):
                raise ValueError("only redis:// and rediss:// brokers are supported")
            return url
        if key in (
            "port",
            "threads",
            "max_pixels",
            "max_frame_pixels",
            "video_max_frames",
            "batch_workers",
            "max_batch_files",
            "webhook_attempts",
            "rate_limit_per_minute",
        ):
            number = int(value)
            if number <= 0 or (key == "port" and number > 65535):
                raise ValueError("out of range")
            return number
        if key == "max_upload_mb":
            size = float(value)
            if size <= 0:
                raise ValueError("must be positive")
            return size
        if key in ("host", "database_url", "trusted_proxy"):
            return str(value)
        if key in _BOOLS:
            return _bool(value)
        if key in _PATH_LISTS:
            if isinstance(value, str | os.PathLike):
                return (str(_expand(str(value), key)),)
            return tuple(str(_expand(str(v), key)) for v in value)
        if key == "allowed_ekus":
            if value is None or (isinstance(value, str) and value.strip().lower() == "sdk"):
                return None
            if isinstance(value, str):
                return str(_expand(value, key)) if value.startswith("~") else value
            return tuple(str(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key}: invalid value {value!r} ({exc})") from exc
    raise ConfigError(f"unknown setting {key}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")
