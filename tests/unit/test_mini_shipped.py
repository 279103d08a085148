"""The pretrained mini checkpoints that ship in the package (harness/mini/shipped) are the ones their
recipes build: named by the current recipe hashes, and rebuilt byte for byte (one thread, seeded)."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.mini import models
from harness.mini.cache import SHIPPED, cache_root, recipe_tag
from harness.mini.encoder import CLIP_RECIPE


def names() -> set:
    return {f"clip-{recipe_tag(CLIP_RECIPE)}", f"llava-{models.recipe_id()}"}


@pytest.mark.unit
def test_the_shipped_checkpoints_are_named_by_the_current_recipes_and_nothing_else_ships():
    assert {p.name for p in SHIPPED.iterdir() if p.is_dir()} == names()


@pytest.mark.unit
def test_the_shipped_checkpoints_are_used_unless_a_rebuild_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDMA_CACHE", str(tmp_path))
    assert models.ensure_clip().parent == SHIPPED and models.ensure_models().parent == SHIPPED
    assert not any(tmp_path.iterdir()) and models.models_available()
    monkeypatch.setenv("FEDMA_MINI_REBUILD", "1")    # then only a cached build counts, and there is none
    assert not models.models_available()


def differences(built: Path, shipped: Path) -> list:
    mine, theirs = load_file(str(built / "model.safetensors")), load_file(str(shipped / "model.safetensors"))
    assert mine.keys() == theirs.keys()
    return [(k, float((mine[k].double() - theirs[k].double()).abs().max())) for k in sorted(mine)
            if not torch.equal(mine[k], theirs[k])]


@pytest.mark.build
def test_the_recipes_rebuild_the_shipped_checkpoints_byte_for_byte(tmp_path, monkeypatch):
    """If this fails after a recipe or code change: rebuild (``fedma mini build --rebuild``) and replace
    the shipped directories. If it fails with unchanged code, this CPU's float kernels sum in another
    order than the machine that built them; the max differences say by how much."""
    monkeypatch.setenv("FEDMA_CACHE", str(tmp_path))
    monkeypatch.setenv("FEDMA_MINI_REBUILD", "1")
    built = [models.ensure_clip(), models.ensure_models()]
    assert {b.name for b in built} == names() and all(b.parent == cache_root() for b in built)
    for b in built:
        assert differences(b, SHIPPED / b.name) == [], b.name
        assert json.loads((b / "config.json").read_text()) == json.loads((SHIPPED / b.name / "config.json").read_text())
