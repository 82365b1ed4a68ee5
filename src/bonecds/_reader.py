"""Reading one knowledge-base file and reporting problems at positions inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bonecds._yaml import YamlDocument, YamlProblem, parse_yaml
from bonecds.errors import Diagnostic


class Reader:
    """Reads one file and records diagnostics at positions inside it."""

    def __init__(self, path: Path, diagnostics: list[Diagnostic]) -> None:
        self.file = str(path)
        self.diagnostics = diagnostics
        self.doc = YamlDocument(None)
        try:
            self.doc = parse_yaml(path.read_text(encoding="utf-8"))
        except YamlProblem as problem:
            self.report(problem.code, problem.message, line=problem.line, column=problem.column)
        except (OSError, UnicodeDecodeError) as error:
            self.report("unreadable-file", f"cannot read file ({error.__class__.__name__})")

    def report(
        self,
        code: str,
        message: str,
        path: tuple[Any, ...] = (),
        rule_id: str = "",
        hint: str = "",
        line: int = 0,
        column: int = 0,
    ) -> None:
        if not line:
            line, column = self.doc.position(path)
        self.diagnostics.append(Diagnostic(code, message, self.file, line, column, rule_id, hint))

    def validate(
        self, model: type[BaseModel], data: Any, path: tuple[Any, ...], rule_id: str = ""
    ) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                loc = (*path, *item["loc"])
                code = "unknown-key" if item["type"] == "extra_forbidden" else "invalid-value"
                name = ".".join(str(part) for part in item["loc"])
                self.report(code, f"{name}: {item['msg']}", loc, rule_id)
            return None
