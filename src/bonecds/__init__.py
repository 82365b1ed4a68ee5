"""bonecds: clinical decision support for bone malignancy and bone metastasis care.

Research prototype, not a medical device.

The public names load on first use (PEP 562), so that `bonecds --help` and `import bonecds.cli.app`
do not pay for the whole library.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bonecds.api import (
        ENGINE_VERSION,
        Knowledge,
        __version__,
        evaluate,
        load_knowledge,
        why_not,
    )
    from bonecds.errors import (
        BonecdsError,
        Diagnostic,
        InputError,
        InternalError,
        ProfileError,
        RuleError,
    )
    from bonecds.profile.model import PatientProfile, load_profile
    from bonecds.report.model import Report, WhyNot

_HOMES = {
    "ENGINE_VERSION": "bonecds.api",
    "Knowledge": "bonecds.api",
    "__version__": "bonecds.api",
    "evaluate": "bonecds.api",
    "load_knowledge": "bonecds.api",
    "why_not": "bonecds.api",
    "BonecdsError": "bonecds.errors",
    "Diagnostic": "bonecds.errors",
    "InputError": "bonecds.errors",
    "InternalError": "bonecds.errors",
    "ProfileError": "bonecds.errors",
    "RuleError": "bonecds.errors",
    "PatientProfile": "bonecds.profile.model",
    "load_profile": "bonecds.profile.model",
    "Report": "bonecds.report.model",
    "WhyNot": "bonecds.report.model",
}

__all__ = [
    "ENGINE_VERSION",
    "BonecdsError",
    "Diagnostic",
    "InputError",
    "InternalError",
    "Knowledge",
    "PatientProfile",
    "ProfileError",
    "Report",
    "RuleError",
    "WhyNot",
    "__version__",
    "evaluate",
    "load_knowledge",
    "load_profile",
    "why_not",
]


# Hidden from type checkers, which would otherwise let any `bonecds.name` through as Any: they
# see the public names in the TYPE_CHECKING imports above.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'bonecds' has no attribute '{name}'")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    """The public names and the submodules already imported, not this file's helpers."""
    submodules = [name for name, value in globals().items() if isinstance(value, ModuleType)]
    return sorted({*__all__, *submodules} - {"importlib"})
