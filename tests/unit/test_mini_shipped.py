"""The pretrained mini checkpoints that ship in the package (harness/mini/shipped) are the ones their
recipes build: named by the current recipe hashes (rebuilding them from the recipes: tests/rebuild)."""
import pytest

from harness.mini import models
from harness.mini.cache import SHIPPED, recipe_tag
from harness.mini.encoder import CLIP_RECIPE

pytestmark = pytest.mark.unit


def names() -> set:
    return {f"clip-{recipe_tag(CLIP_RECIPE)}", f"llava-{models.recipe_id()}"}


def test_the_shipped_checkpoints_are_named_by_the_current_recipes_and_nothing_else_ships():
    assert {p.name for p in SHIPPED.iterdir() if p.is_dir()} == names()


def test_the_shipped_checkpoints_are_used_unless_a_rebuild_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDMA_CACHE", str(tmp_path))
    assert models.ensure_clip().parent == SHIPPED and models.ensure_models().parent == SHIPPED
    assert not any(tmp_path.iterdir()) and models.models_available()
    monkeypatch.setenv("FEDMA_MINI_REBUILD", "1")    # then only a cached build counts, and there is none
    assert not models.models_available()
