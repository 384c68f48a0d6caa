"""The table of detector implementations, filled by :func:`register` as their modules load.

Kept apart from :mod:`detectors.registry` so an implementation module imports only this and
:mod:`detectors.base`: the registry imports the implementations (to load the built-in ones),
never the other way round, and the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from detectors.base import Detector
from provenance.errors import ShinganError

_IMPLEMENTATIONS: dict[str, type[Detector]] = {}
D = TypeVar("D", bound=type[Detector])


class RegistryError(ShinganError):
    """Duplicate names or unknown implementations: a configuration error found at start-up."""

    code = "registry"


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make an implementation available to cards under ``name``."""

    def wrap(cls: D) -> D:
        if name in _IMPLEMENTATIONS and _IMPLEMENTATIONS[name] is not cls:
            raise RegistryError(f"implementation '{name}' is registered twice")
        cls.implementation = name
        _IMPLEMENTATIONS[name] = cls
        return cls

    return wrap


__all__ = ["RegistryError", "register"]
