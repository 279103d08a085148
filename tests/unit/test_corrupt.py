"""Clients with mismatched captions (harness/data/corrupt.py): only the chosen clients change, by the
asked share, each moved caption is another picked sample's, and the copy is seeded."""
import os

import pytest

from harness.data.corrupt import _read_records, corrupt_root
from harness.data.layout import read_manifest, round_dir
from harness.data.synthetic import write_synthetic_federation
from harness.core.errors import DataError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_synthetic_federation(tmp_path_factory.mktemp("src") / "data", clients=3, rounds=2, per_round=10)


def test_only_the_chosen_client_changes_by_the_asked_share(source, tmp_path):
    out = corrupt_root(source, tmp_path / "bad", clients=[1], rate=0.5, seed=3)
    assert os.path.islink(out / "client_00") and os.path.islink(out / "heldout")
    for t in (1, 2):
        before = {k: (img, cap) for k, img, cap, _ in _read_records(round_dir(source, 1, t))}
        after = {k: (img, cap, meta) for k, img, cap, meta in _read_records(round_dir(out, 1, t))}
        assert set(after) == set(before) and all(after[k][0] == before[k][0] for k in before)   # same images
        moved = {k for k in before if "caption_from" in after[k][2]}
        assert len(moved) == 5                                   # 0.5 x 10, none left with its own caption
        assert all(after[k][1] == before[k][1] for k in set(before) - moved)
        for k in moved:                                          # each came from another moved sample
            src = after[k][2]["caption_from"]
            assert src in moved and src != k and after[k][1] == before[src][1]
    manifest = read_manifest(out)
    assert manifest["corrupt"]["params"] == {"clients": [1], "rate": 0.5, "seed": 3}
    assert manifest["corrupt"]["mismatched_per_round"] == {"1": [5, 5]}


def test_seeded_and_idempotent(source, tmp_path):
    a = corrupt_root(source, tmp_path / "a", clients=[0, 2], rate=1.0, seed=1)
    b = corrupt_root(source, tmp_path / "b", clients=[0, 2], rate=1.0, seed=1)
    assert _read_records(round_dir(a, 2, 1)) == _read_records(round_dir(b, 2, 1))
    stamp = (a / "manifest.json").stat().st_mtime_ns
    corrupt_root(source, a, clients=[0, 2], rate=1.0, seed=1)
    assert (a / "manifest.json").stat().st_mtime_ns == stamp


def test_bad_input_is_one_line(source, tmp_path):
    with pytest.raises(DataError, match="not in 0..2"):
        corrupt_root(source, tmp_path / "x", clients=[5], rate=0.5)
    with pytest.raises(DataError, match="rate=1.5"):
        corrupt_root(source, tmp_path / "x", clients=[0], rate=1.5)
