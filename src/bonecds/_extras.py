"""Optional parts of bonecds and what each needs: a plain install has no web stack and no Dask.

A command that needs an extra checks for it first, so a missing one is one line naming the
extra to install (the CLI exits 2), never an ImportError traceback."""

from __future__ import annotations

import importlib.util

from bonecds.errors import InputError

__all__ = ["require_extra"]

# The modules each extra installs (pyproject.toml), as imported.
EXTRAS = {
    "service": ("fastapi", "uvicorn", "httpx", "jwt"),
    "dask": ("dask", "distributed"),
}


def require_extra(extra: str, *also: str) -> None:
    """Raise InputError naming `extra` if one of its modules (or of `also`) cannot be imported."""
    for module in (*EXTRAS[extra], *also):
        if importlib.util.find_spec(module) is None:
            raise InputError(
                f"this needs the '{extra}' extra ({module} is not installed): "
                f"pip install 'bonecds[{extra}]'"
            )
