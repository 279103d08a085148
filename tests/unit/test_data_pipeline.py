"""The data pipeline (SPEC 5): clustering on planted structure, cap, split, stats, skips, resume.

Planted structure: five family directions mu_f in R^32; a sample's unit embedding is
normalize(mu_f + 0.35 * noise). Where image and caption share the family (and the aligned direction,
as in SigLIP's joint space) every metric must recover it; where only the image (or only the caption)
carries a family, II (TT) must recover it and TT (II) must not (ARI near 0).
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from harness.data.layout import read_manifest, round_dir, write_json, write_shards
from harness.data.store import embed_dir, part_path
from harness.core.errors import ConfigError, DataError

pytestmark = pytest.mark.unit
D, N, K = 32, 600, 5


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def family_vectors(rng, fam, means, noise=0.35):
    return unit(means[fam] + noise * rng.standard_normal((len(fam), means.shape[1])) / np.sqrt(means.shape[1]) * 4)


def write_store(work, x, y, parts=3):
    """Write embeddings directly in the embed step's layout (as if embedded from ``parts`` shards)."""
    (embed_dir(work) / "parts").mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(x), parts + 1).astype(int)
    for i in range(parts):
        a, b = bounds[i], bounds[i + 1]
        np.save(part_path(work, i, "img.npy"), x[a:b].astype(np.float16))
        np.save(part_path(work, i, "txt.npy"), y[a:b].astype(np.float16))
        write_json(part_path(work, i, "json"), {"url": f"s{i}.tar", "keys": [f"k{j}" for j in range(a, b)],
                                                "skipped": {}})
    write_json(embed_dir(work) / "manifest.json", {"model": "planted", "shards": [f"s{i}.tar" for i in range(parts)],
                                                   "complete": True, "dim_image": x.shape[1], "dim_text": y.shape[1]})


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(7)
    mu, nu = unit(rng.standard_normal((K, D))), unit(rng.standard_normal((K, D)))
    fam = rng.integers(0, K, N)
    other = rng.integers(0, K, N)
    both = (family_vectors(rng, fam, mu), family_vectors(rng, fam, mu))            # aligned, both modalities
    image_only = (family_vectors(rng, fam, mu), family_vectors(rng, other, nu))   # caption family independent
    return fam, other, both, image_only


def labels_of(tmp_path, name, x, y, metric, **kw):
    from harness.data.cluster import cluster
    work = tmp_path / name
    write_store(work, x, y)
    cluster(work, metric, k=K, seed=0, restarts=2, sample=400, **kw)
    return work, np.load(work / metric / "labels.npy")


@pytest.mark.parametrize("metric", ["ii", "tt", "it", "xm"])
def test_each_metric_recovers_shared_families(tmp_path, planted, metric):
    fam, _, (x, y), _ = planted
    _, labels = labels_of(tmp_path, "both", x, y, metric)
    assert adjusted_rand_score(fam, labels) >= 0.9


def test_image_only_and_caption_only_families(tmp_path, planted):
    fam, other, _, (x, y) = planted
    _, ii = labels_of(tmp_path, "img", x, y, "ii")
    _, tt = labels_of(tmp_path, "txt", x, y, "tt")
    assert adjusted_rand_score(fam, ii) >= 0.9 and adjusted_rand_score(other, ii) < 0.1
    assert adjusted_rand_score(other, tt) >= 0.9 and adjusted_rand_score(fam, tt) < 0.1


def test_cluster_is_seeded_and_idempotent(tmp_path, planted):
    from harness.data.cluster import cluster
    _, _, (x, y), _ = planted
    work, first = labels_of(tmp_path, "a", x, y, "xm")
    stamp = (work / "xm" / "labels.npy").stat().st_mtime_ns
    cluster(work, "xm", k=K, seed=0, restarts=2, sample=400)             # same params: no-op
    assert (work / "xm" / "labels.npy").stat().st_mtime_ns == stamp
    _, again = labels_of(tmp_path, "b", x, y, "xm")
    assert np.array_equal(first, again)


def test_full_chunked_passes_match_in_memory(tmp_path, planted):
    """A subsample smaller than the data forces the chunked Lloyd passes; the result is the same partition."""
    fam, _, (x, y), _ = planted
    _, labels = labels_of(tmp_path, "chunked", x, y, "it", chunk=97)
    assert adjusted_rand_score(fam, labels) >= 0.9


def test_cap_keeps_exactly_the_closest(tmp_path, planted):
    from harness.data.cap import cap
    _, _, (x, y), _ = planted
    work, labels = labels_of(tmp_path, "cap", x, y, "ii")
    cap(work, "ii", cap=50)
    keep = np.load(work / "ii" / "keep.npy")
    cent = np.load(work / "ii" / "centroids.npy")
    xs = x.astype(np.float16).astype(np.float64)            # what the store holds
    for c in range(K):
        members = np.flatnonzero(labels == c)
        cos = xs[members] @ cent[c] / np.linalg.norm(cent[c])
        expected = set(members[np.argsort(-cos)[:50]])
        assert set(np.flatnonzero(keep & (labels == c))) == expected


def test_assign_rounds_disjoint_covering_seeded():
    from harness.data.split import assign_rounds
    labels = np.repeat(np.arange(3), [40, 25, 7])
    keep = np.ones(len(labels), bool)
    keep[::5] = False
    rnd = assign_rounds(labels, keep, 3, 10, seed=1)
    assert np.all((rnd == 0) == ~keep)                      # every kept row in exactly one round
    for c, n in enumerate([40, 25, 7]):
        sizes = np.bincount(rnd[(labels == c) & keep], minlength=11)[1:]
        assert sizes.sum() == keep[labels == c].sum() and sizes.max() - sizes.min() <= 1
    assert np.array_equal(rnd, assign_rounds(labels, keep, 3, 10, seed=1))
    assert not np.array_equal(rnd, assign_rounds(labels, keep, 3, 10, seed=2))


def test_stats_short_counts_and_tables(tmp_path):
    from harness.data.stats import latex, markdown, short
    assert [short(n) for n in (1_000_000, 368_123, 979_400, 950)] == ["1M", "368K", "979K", "950"]
    rows = [{"scenario": "TT", "cluster": c, "count": n, "count_short": short(n), "percent": p}
            for c, (n, p) in enumerate([(368000, 10.22), (1000000, 27.73)])]
    assert "| Text-Text | Count | 368K | 1M |" in markdown(rows)
    assert r"Text-Text & Count & 368K & 1M \\" in latex(rows)


# ---- end to end through webdataset shards and a tiny random CLIP ------------------------------------------

def tiny_clip(path: Path) -> Path:
    from harness.data.tiny import save_tiny_clip
    return save_tiny_clip(path)


def source_shards(root: Path, shards=3, per=20) -> Path:
    """img2dataset-style shards; shard 0 holds a corrupt JPEG and an empty caption; the last is truncated."""
    import random

    from harness.data.synthetic import synthetic_record
    rng = random.Random(0)
    for s in range(shards):
        recs = [synthetic_record(rng, i % 5, f"{s:03d}{i:04d}") for i in range(per)]
        if s == 0:
            recs[1] = (recs[1][0], b"not a jpeg", recs[1][2], recs[1][3])
            recs[2] = (recs[2][0], recs[2][1], "   ", recs[2][3])
        write_shards(root / f"tmp{s}", recs, per_shard=per)
        (root / f"tmp{s}" / "shard-00000.tar").rename(root / f"{s:05d}.tar")
    last = root / f"{shards - 1:05d}.tar"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2 + 100])       # truncated mid-record
    return root


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, clip_dir):
    from harness.data.prepare import prepare
    base = tmp_path_factory.mktemp("e2e")
    src = base / "src"
    src.mkdir()
    source_shards(src)
    work = base / "work"
    reports = prepare(str(src), work, scenario="ii,xm", model=str(clip_dir), batch=8, k=3, restarts=2,
                      cap=12, rounds=3, heldout=5, tsne_samples=0, progress=False)
    return work, reports


def keys_in(directory: Path):
    keys = []
    for shard in sorted(directory.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            keys += [m.name[:-4] for m in tar.getmembers() if m.name.endswith(".txt")]
    return keys


def test_end_to_end_counts_skips(prepared):
    work, reports = prepared
    parts = [json.loads(part_path(work, s, "json").read_text()) for s in range(3)]
    assert parts[0]["skipped"] == {"corrupt_image": 1, "empty_caption": 1} and len(parts[0]["keys"]) == 18
    assert parts[1]["skipped"] == {} and len(parts[1]["keys"]) == 20
    truncated = parts[2]["skipped"]                  # a cut record: member missing or unreadable
    assert truncated.get("missing_caption", 0) + truncated.get("unreadable_record", 0) + \
        truncated.get("missing_image", 0) >= 1 and 0 < len(parts[2]["keys"]) < 20
    total = {r: sum(p["skipped"].get(r, 0) for p in parts) for r in ("corrupt_image", "empty_caption")}
    assert all(reports["embed"]["skipped"][r] == n for r, n in total.items())
    assert reports["embed"]["embedded"] == sum(len(p["keys"]) for p in parts)


def test_end_to_end_split_disjoint_covering(prepared):
    from harness.data.reader import SkipReport, ordered_samples
    work, _ = prepared
    for metric in ("ii", "xm"):
        root = work / metric / "data"
        manifest = read_manifest(root)
        assert (manifest["clients"], manifest["rounds"], manifest["scenario"]) == (3, 3, metric.upper())
        labels, keep = np.load(work / metric / "labels.npy"), np.load(work / metric / "keep.npy")
        all_keys = [k for s in range(3) for k in json.loads(part_path(work, s, "json").read_text())["keys"]]
        seen = []
        for c in range(3):
            client_keys = []
            for t in range(1, 4):
                keys = keys_in(round_dir(root, c, t))
                assert json.loads((round_dir(root, c, t) / "index.json").read_text())["count"] == len(keys)
                client_keys += keys
            expected = {all_keys[i] for i in np.flatnonzero(keep & (labels == c))}
            assert sorted(client_keys) == sorted(expected) and len(expected) <= 12
            seen += client_keys
        assert len(seen) == len(set(seen)) == keep.sum()
        held = keys_in(root / "heldout")                      # heldout=5 of the rows cap pruned
        pruned = {all_keys[i] for i in np.flatnonzero(~keep)}
        assert len(held) == min(5, len(pruned)) > 0 and set(held) <= pruned
        assert json.loads((root / "heldout" / "index.json").read_text())["count"] == len(held)
    samples = list(ordered_samples(round_dir(work / "ii" / "data", 0, 1), 0, 0, 1, SkipReport()))
    assert samples and all(s.caption for s in samples)


def test_end_to_end_stats_match_split(prepared):
    work, reports = prepared
    text = (work / "stats" / "table9.csv").read_text().splitlines()
    assert text[0] == "scenario,cluster,count,count_short,percent"
    for metric in ("ii", "xm"):
        counts = [sum(len(keys_in(round_dir(work / metric / "data", c, t))) for t in range(1, 4)) for c in range(3)]
        rows = [r for r in reports["stats"] if r["scenario"] == metric.upper()]
        assert [r["count"] for r in rows] == counts
        assert [r["percent"] for r in rows] == [round(100 * n / sum(counts), 2) for n in counts]
    assert (work / "stats" / "table9.tex").is_file() and (work / "stats" / "table9.md").is_file()


def test_prepare_again_is_a_no_op(prepared, clip_dir):
    from harness.data.prepare import prepare
    work, _ = prepared
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and "stats" not in p.parts}

    def forbidden(images, captions):
        raise AssertionError("a finished embed must not call the embedder")
    prepare(json.loads((embed_dir(work) / "manifest.json").read_text())["shards"][0].rsplit("/", 1)[0], work,
            scenario="ii,xm", model=str(clip_dir), k=3, restarts=2, cap=12, rounds=3, heldout=5, tsne_samples=0,
            embedder=forbidden, progress=False)
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after


def test_tsne_grid_png(prepared):
    from harness.data.tsne import distances, tsne
    work, _ = prepared
    png = tsne(work, ["ii", "xm"], ["ii", "xm"], samples=20, max_iter=250)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x = unit(np.random.default_rng(0).standard_normal((4, 3)))
    y = unit(np.random.default_rng(1).standard_normal((4, 3)))
    d = distances("xm", x, y)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert np.isclose(d[0, 1], max(0.0, 1 - (x[0] @ y[1] + y[0] @ x[1]) / 2))


def test_interrupted_embed_resumes_without_recomputing(tmp_path):
    from harness.data.embed import embed
    src = tmp_path / "src"
    src.mkdir()
    source_shards(src, shards=3, per=16)
    calls = []

    def fake(images, captions, fail_at=None):
        calls.append(len(images))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        x = np.array([[len(c), 1.0, 0.0] for c in captions])
        return x / np.linalg.norm(x, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1, keepdims=True)
    with pytest.raises(KeyboardInterrupt):               # dies in the first batch of shard 1 (batch 8: 2 per shard)
        embed(str(src), tmp_path / "w", model="fake", batch=8, progress=False,
              embedder=lambda i, c: fake(i, c, fail_at=3))
    assert part_path(tmp_path / "w", 0, "json").is_file() and not part_path(tmp_path / "w", 1, "json").is_file()
    calls.clear()
    report = embed(str(src), tmp_path / "w", model="fake", batch=8, progress=False, embedder=fake)
    shard2 = len(json.loads(part_path(tmp_path / "w", 2, "json").read_text())["keys"])
    assert calls == [8, 8] + [8] * (shard2 // 8) + ([shard2 % 8] if shard2 % 8 else [])   # shards 1 and 2 only
    assert report["embedded"] == 14 + 16 + shard2


def test_siglip2_loads_through_the_same_path(tmp_path):
    from PIL import Image
    from transformers import Siglip2Config, Siglip2ImageProcessor, Siglip2Model

    from harness.data.embed import HFEmbedder
    from harness.model.build import byte_tokenizer
    tok = byte_tokenizer()
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    cfg = Siglip2Config(text_config=dict(vocab_size=len(tok), max_position_embeddings=64, **small),
                        vision_config=dict(patch_size=8, num_patches=16, **small))
    Siglip2Model(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    Siglip2ImageProcessor(patch_size=8, max_num_patches=16).save_pretrained(tmp_path)
    x, y = HFEmbedder(str(tmp_path))([Image.new("RGB", (40, 30), (200, 10, 10))] * 2, ["a red square", "b"])
    assert x.shape == y.shape == (2, 32)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5) and np.allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)


def test_bad_paths_fail_at_once(tmp_path):
    from harness.data.cap import cap
    from harness.data.embed import HFEmbedder, embed
    with pytest.raises(DataError, match="no webdataset shards found"):
        embed(str(tmp_path / "nowhere"), tmp_path / "w")
    with pytest.raises(ConfigError, match="no config.json"):
        HFEmbedder(str(tmp_path / "no-model"))
    with pytest.raises(DataError, match="not clustered yet"):
        cap(tmp_path / "w", "ii")


def test_cli_runs_steps_and_reports_errors(prepared, tmp_path, capsys):
    from harness.cli import main
    work, _ = prepared
    assert main(["data", "stats", "--work", str(work), "--metric", "ii", "--out", str(tmp_path / "s")]) == 0
    assert "| Image-Image | Count |" in capsys.readouterr().out
    assert main(["data", "cluster", "--work", str(work), "--metric", "iii"]) == 2
    assert "did you mean 'ii'" in capsys.readouterr().err
    assert main(["data", "embed", "--work", str(tmp_path / "w"), "--shards", str(tmp_path / "none")]) == 2


def test_an_embedding_is_identified_by_content_not_by_path(tmp_path):
    """The issue's case in miniature: shards and model embedded at one path, then both moved (another
    checkout, a moved cache). A new split of the same embedding reads the shards from where they are now
    and never calls the embedder; another model, or a changed shard, is refused in one line."""
    from harness.data.prepare import prepare
    for name in ("src", "clip"):
        (tmp_path / name).mkdir()
    source_shards(tmp_path / "src", shards=2, per=12)
    tiny_clip(tmp_path / "clip")
    args = dict(scenario="ii", batch=8, k=2, restarts=1, rounds=2, tsne_samples=0, progress=False)
    prepare(str(tmp_path / "src"), tmp_path / "w", model=str(tmp_path / "clip"), cap=8, heldout=2, **args)
    (tmp_path / "src").rename(tmp_path / "src2")
    (tmp_path / "clip").rename(tmp_path / "clip2")
    fresh = tmp_path / "w2"                       # a second work dir sharing the embedding, as the mini cache does
    fresh.mkdir()
    (fresh / "embed").symlink_to(Path("..") / "w" / "embed", target_is_directory=True)

    def forbidden(images, captions):
        raise AssertionError("an embedding of the same shards by the same model must be reused")
    report = prepare(str(tmp_path / "src2"), fresh, model=str(tmp_path / "clip2"), cap=6, heldout=3,
                     embedder=forbidden, **args)
    assert report["split/ii"]["total"] == sum(len(keys_in(round_dir(fresh / "ii" / "data", c, t)))
                                              for c in range(2) for t in (1, 2)) > 0
    from safetensors.torch import load_file, save_file
    other = tiny_clip(tmp_path / "other")         # the same model with one weight changed
    weights = load_file(str(other / "model.safetensors"))
    weights["logit_scale"] = weights["logit_scale"] + 1.0
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(DataError, match=r"embedded from another model .*; remove .* to embed again"):
        prepare(str(tmp_path / "src2"), fresh, model=str(other), cap=6, heldout=3, embedder=forbidden, **args)
    with open(tmp_path / "src2" / "00000.tar", "r+b") as f:    # same name and size, other bytes
        f.seek(600)
        f.write(b"X")
    with pytest.raises(DataError, match=r"embedded from other shards \(shard 0: 00000.tar"):
        prepare(str(tmp_path / "src2"), fresh, model=str(tmp_path / "clip2"), cap=6, heldout=3,
                embedder=forbidden, **args)


def test_synthetic_command_writes_a_federation_the_tiny_preset_reads(tmp_path, capsys):
    from harness.cli import main
    from harness.core.config import load_config
    from harness.engine.rounds import check_data
    assert main(["data", "synthetic", "--out", str(tmp_path / "d"), "--rounds", "2", "--per-round", "4"]) == 0
    assert read_manifest(tmp_path / "d") == {"clients": 5, "rounds": 2, "scenario": "synthetic", "seed": 0}
    assert check_data(load_config("tiny", [f"data.root={tmp_path / 'd'}", "rounds=2"])) == tmp_path / "d"
    assert len(keys_in(round_dir(tmp_path / "d", 4, 2))) == 4


def test_dirichlet_clients_deal_each_cluster_and_follow_alpha():
    """Every kept row gets exactly one of K clients (pruned rows none); alpha = 1e6 deals each cluster
    almost evenly (1000 rows over 10 clients: 100 +- 2 each), alpha = 1e-3 gives each cluster to one
    client (the others get at most a row or two); same seed, same deal."""
    from harness.data.split import client_cluster_counts, dirichlet_clients
    labels = np.repeat(np.arange(5), 1000)
    keep = np.ones(5000, bool)
    keep[::50] = False
    even = dirichlet_clients(labels, keep, 5, 10, 1e6, seed=0)
    assert (even[~keep] == -1).all() and set(even[keep]) == set(range(10))
    counts = np.array(client_cluster_counts(even, labels, keep, 5, 10))
    assert counts.sum() == keep.sum() and counts.shape == (10, 5)
    assert np.abs(counts - 98).max() <= 2                       # 980 kept rows per cluster / 10
    skewed = np.array(client_cluster_counts(dirichlet_clients(labels, keep, 5, 10, 1e-3, seed=0), labels, keep, 5, 10))
    assert (skewed.max(axis=0) >= 975).all()
    assert np.array_equal(even, dirichlet_clients(labels, keep, 5, 10, 1e6, seed=0))


def test_end_to_end_dirichlet_split_into_more_clients(prepared, tmp_path):
    """The 3 II clusters dealt among 7 clients: the layout has 7 clients, the rows are the kept ones,
    each once, and client_clusters.json counts them."""
    from harness.data.split import split
    work, _ = prepared
    report = split(work, "ii", rounds=3, seed=0, out=tmp_path / "d7", heldout=5, clients=7, alpha=0.5)
    assert report["clients"] == 7 and read_manifest(tmp_path / "d7")["clients"] == 7
    keep = np.load(work / "ii" / "keep.npy")
    keys = [k for c in range(7) for t in range(1, 4) for k in keys_in(round_dir(tmp_path / "d7", c, t))]
    assert len(keys) == len(set(keys)) == keep.sum() == report["total"]
    counts = json.loads((tmp_path / "d7" / "client_clusters.json").read_text())["counts"]
    assert [sum(row) for row in counts] == [sum(report["per_client_round"][c]) for c in range(7)]
