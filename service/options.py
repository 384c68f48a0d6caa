"""Per-call analysis settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.registry import DetectorSet
from provenance.media import Limits
from provenance.trust import TrustConfig
from service.banks import BankLookup, BankSet


@dataclass(frozen=True)
class AnalyzeOptions:
    """Per-call settings; built once from :class:`service.config.Config` and reused."""

    trust: TrustConfig = field(default_factory=TrustConfig)
    limits: Limits = field(default_factory=Limits)
    include_thumbnails: bool = False
    detectors: DetectorSet = field(default_factory=DetectorSet)
    banks: BankLookup = field(default_factory=BankSet)
    include_forensics: bool = False
    language: str = "en"  # summary and reasons: "en" or "ja"
    video_every_s: float = 1.0
    video_max_frames: int = 64
    video_max_duration_s: float = 600.0
    stage_timeout_s: float = 120.0  # each stage's deadline; 0 for none
    #: Look for a sidecar manifest (``photo.c2pa``, ``photo.jpg.c2pa``) beside a file that has
    #: none embedded: on for the CLI's own files, off for uploads.
    find_sidecars: bool = False
