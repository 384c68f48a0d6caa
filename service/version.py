"""Shingan's own version, from the installed package's metadata.

Apart from :mod:`service.pipeline` (which records it in every report) so that ``shingan
--version`` and the OpenAPI document read it without importing the analysis.
"""

from __future__ import annotations

from importlib import metadata


def shingan_version() -> str:
    try:
        return metadata.version("shingan")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"
