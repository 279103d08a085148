"""``fedma config --explain``: each key's one-line description, read from the comment on its field's
line in :mod:`harness.core.config.sections` (so the code and the explanation say the same)."""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from harness.core.config import sections
from harness.core.config.load import SHORT_KEYS
from harness.core.config.sections import JobConfig, _flatten
from harness.core.typecheck import unknown_key


def descriptions() -> dict:
    """{dotted key: its one-line description}, from the comment on each field's line in sections.py."""
    import ast
    import io
    import tokenize
    source = Path(sections.__file__).read_text()
    comments = {tok.start[0]: tok.string.lstrip("# ").strip() for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    fields = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            fields[node.name] = {stmt.target.id: comments.get(stmt.end_lineno, "") for stmt in node.body
                                 if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)}
            for base in node.bases:       # LaunchConfig(SlurmResources)
                if isinstance(base, ast.Name) and base.id in fields:
                    fields[node.name] = {**fields[base.id], **fields[node.name]}
    out = {}

    def walk(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                out[f"{prefix}{f.name}"] = fields.get(cls.__name__, {}).get(f.name, "")
    walk(JobConfig, "")
    return out


def explain(key: str) -> str:
    """``KEY (type, default D): description`` for a dotted key; ConfigError with the valid keys otherwise."""
    key = SHORT_KEYS.get(key, key)
    text = descriptions()
    if key not in text:
        raise unknown_key(key, text)
    value = _flatten(JobConfig().to_dict()).get(key)
    return f"{key} (default {value!r}): {text[key]}"
