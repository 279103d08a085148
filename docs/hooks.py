"""MkDocs hook (mkdocs.yml ``hooks``): a page's relative link to a file of the repository outside docs/,
``[`nodes.py`](../tests/distributed/nodes.py)``, which GitHub follows, becomes that path in code in the
site, which has no pages for code. A link whose target does not exist is left alone, so ``--strict``
still fails on it (and tests/unit/doc_refs.py names it)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!`)\[([^\]\n]+)\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")


def code_link(text: str, page_dir: Path, target: str) -> str | None:
    """The text a link to ``target`` (relative to ``page_dir``) becomes, or None to keep the link."""
    path = (page_dir / target).resolve()
    if not path.exists() or ROOT not in path.parents or ROOT / "docs" in [path, *path.parents]:
        return None
    rel = str(path.relative_to(ROOT))
    return text if text.strip("`").rstrip("/") == rel.rstrip("/") else f"{text} (`{rel}`)"


def on_page_markdown(markdown: str, page, config, files) -> str:
    page_dir = Path(page.file.abs_src_path).parent
    return LINK.sub(lambda m: code_link(m.group(1), page_dir, m.group(2)) or m.group(0), markdown)
