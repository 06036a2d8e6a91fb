"""The method registry: ``@register`` a WeakMethod subclass in its own module and ``--method NAME`` finds it.

Every module of this package that is not infrastructure is imported on first lookup, so adding a method is
adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from vad_pipeline.errors import UserError

if TYPE_CHECKING:
    from .base import WeakMethod

_METHODS: dict[str, type["WeakMethod"]] = {}
#: the modules of this package that define no method (every other module is imported to register its methods)
INFRASTRUCTURE = frozenset({"apply", "base", "bundle", "config", "data", "export", "kinds", "losses", "registry",
                            "score", "trainer", "weak_kind"})
_loaded = False


def register(cls: type["WeakMethod"]) -> type["WeakMethod"]:
    """Class decorator: make ``cls`` available as ``--method cls.name``."""
    _METHODS[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in INFRASTRUCTURE and not module.name.startswith("_") and not module.ispkg:
            importlib.import_module(f"{__package__}.{module.name}")
    _loaded = True


def method_names() -> list[str]:
    _load_all()
    return sorted(_METHODS)


def get_method(name: str) -> type["WeakMethod"]:
    _load_all()
    try:
        return _METHODS[name]
    except KeyError:
        raise UserError(f"--method {name}: unknown method; choose one of {', '.join(sorted(_METHODS))}") from None
