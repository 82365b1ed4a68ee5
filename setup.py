"""Build hook: the wheel carries the knowledge base (`rules/`) as `bonecds/_rules/`.

`rules/` at the top of the checkout stays the authors' one source; the copy is made only when a
wheel is built, so the checkout and the editable install read `rules/` itself (api.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

if sys.version_info >= (3, 13):  # pip says so too (requires-python); this gives the reason
    raise SystemExit(
        "bonecds needs Python 3.11 or 3.12: durable_rules 2.0.28 builds on 3.13 and later but "
        "cannot be imported there (undefined symbol PyEval_CallObject)"
    )

RULES = Path(__file__).resolve().parent / "rules"


class BuildWithRules(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (RULES / "settings.yaml").is_file():
            raise SystemExit(f"bonecds build: knowledge base not found at {RULES}")
        target = Path(self.build_lib) / "bonecds" / "_rules"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(RULES, target, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


setup(cmdclass={"build_py": BuildWithRules})
