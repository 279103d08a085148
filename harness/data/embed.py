"""Step 1, ``embed``: image and caption embeddings of every record (paper Appendix E.1, Eq. 19).

    x_i = f_img(I_i) / ||f_img(I_i)||,   y_i = f_txt(T_i) / ||f_txt(T_i)||

with a HF SigLIP / SigLIP2 / CLIP dual encoder (default ``google/siglip2-large-patch16-512``; any hub
id in the local cache or a directory written by ``save_pretrained``). Records stream through
webdataset one source shard at a time; each shard becomes one part (float16 arrays + its keys), written
atomically, so an interrupted run resumes at the first unfinished shard and a finished run is a no-op.
Corrupt images, empty captions and unreadable tar members are skipped and counted per shard.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.data.identity import describe_shard, model_identity, shard_identity
from harness.data.layout import write_json
from harness.data.store import embed_dir, list_shards, part_path
from harness.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)
DEFAULT_MODEL = "google/siglip2-large-patch16-512"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


class HFEmbedder:
    """``embedder(images, captions) -> (x, y)``: L2-normalized float32 arrays from a HF dual encoder."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
        if model.startswith(("/", ".", "~")) and not (Path(model).expanduser() / "config.json").is_file():
            raise ConfigError(f"embed model={model!r}: no config.json there; expected a directory written by "
                              f"save_pretrained or a HF SigLIP, SigLIP2 or CLIP id")
        try:
            self.model = AutoModel.from_pretrained(model, dtype=getattr(torch, dtype)).to(device).eval()
            self.images = AutoImageProcessor.from_pretrained(model)
            self.tokenizer = AutoTokenizer.from_pretrained(model)
        except (OSError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"embed model={model!r}: cannot load it ({first}); expected a HF SigLIP, SigLIP2 "
                              f"or CLIP id in the local cache or a save_pretrained directory") from None
        if not all(hasattr(self.model, f) for f in ("get_image_features", "get_text_features")):
            raise ConfigError(f"embed model={model!r} is a {type(self.model).__name__}, not a dual "
                              f"image-text encoder (expected SigLIP, SigLIP2 or CLIP)")
        self.name, self.device = model, device
        self.siglip = "siglip" in self.model.config.model_type

    def __call__(self, images: Sequence, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch
        with torch.inference_mode():
            pix = self.images(images=list(images), return_tensors="pt")
            x = _pooled(self.model.get_image_features(**{k: v.to(self.device) for k, v in pix.items()}))
            tok = self.tokenizer(list(captions), return_tensors="pt", truncation=True,
                                 padding="max_length" if self.siglip else True,
                                 max_length=64 if self.siglip else None)
            keep = ("input_ids",) if self.siglip else ("input_ids", "attention_mask")
            y = _pooled(self.model.get_text_features(**{k: tok[k].to(self.device) for k in keep}))
        return _unit(x.float().cpu().numpy()), _unit(y.float().cpu().numpy())


def _pooled(out):
    return out if hasattr(out, "float") else out.pooler_output   # transformers 5 returns an output object


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _records(url: str, report: Counter):
    """Decoded (key, image, caption) of one shard; bad records counted in ``report``."""
    from harness.data.reader import SkipReport, decode, iter_shards
    skips = SkipReport(report)
    for rec in iter_shards([url], skips):
        ext = next((e for e in IMAGE_EXTS if e in rec), None)
        if ext is None:
            skips.skip("missing_image", rec.get("__key__", "?"))
            continue
        if "txt" not in rec:          # also the last record of a truncated tar
            skips.skip("missing_caption", rec.get("__key__", "?"))
            continue
        sample = decode({**rec, "jpg": rec[ext]}, skips)
        if sample is not None:
            yield sample


def embed_shard(url: str, index: int, work, embedder: Callable, batch: int) -> int:
    """Embed one source shard into part ``index`` (atomic: the .json marker is written last)."""
    report, keys, xs, ys, buf = Counter(), [], [], [], []

    def flush():
        x, y = embedder([s.image for s in buf], [s.caption for s in buf])
        xs.append(np.asarray(x, np.float16)), ys.append(np.asarray(y, np.float16))
        keys.extend(s.key for s in buf)
        buf.clear()
    for sample in _records(url, report):
        buf.append(sample)
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    dx, dy = (xs[0].shape[1], ys[0].shape[1]) if xs else (0, 0)
    for suffix, arrs, d in (("img.npy", xs, dx), ("txt.npy", ys, dy)):
        out = part_path(work, index, suffix)
        tmp = out.with_name(f".{out.name}.tmp.npy")
        np.save(tmp, np.concatenate(arrs) if arrs else np.zeros((0, d), np.float16))
        os.replace(tmp, out)
    write_json(part_path(work, index, "json"), {"url": url, "keys": keys, "skipped": dict(report)})
    return len(keys)


def embed(shards: str, work, model: str = DEFAULT_MODEL, batch: int = 64, device: str = "cpu",
          embedder: Callable | None = None, progress: bool = True) -> dict:
    """Embed every shard of ``shards`` into ``WORK/embed``; returns the step report."""
    urls = list_shards(shards)
    root = embed_dir(work)
    manifest = _open_manifest(root, urls, model)
    if manifest.get("complete"):
        return manifest["report"]
    todo = [i for i in range(len(urls)) if not part_path(work, i, "json").is_file()]
    if todo:
        embedder = embedder or HFEmbedder(model, device)
        _run(urls, todo, work, embedder, batch, progress)
    return _finish(root, urls, work, manifest)


def _open_manifest(root: Path, urls: list[str], model: str) -> dict:
    """The step's manifest, opened or started. It records what the embeddings were made from by content
    (:mod:`harness.data.identity`), so the same shards and model at other paths (another checkout, a
    moved cache) reuse it, and other shards or another model are refused in one line."""
    path = root / "manifest.json"
    made_from = {"model": model_identity(model), "shards": [shard_identity(u) for u in urls]}
    if path.is_file():
        manifest = json.loads(path.read_text())
        problem = _mismatch(manifest, made_from, urls, model)
        if problem:
            raise DataError(f"{root}: embedded from {problem}; remove {root} to embed again (the next run "
                            f"rebuilds it) or use a new --work directory")
        return manifest
    (root / "parts").mkdir(parents=True, exist_ok=True)
    manifest = {"model": model, "shards": urls, "made_from": made_from, "complete": False}
    write_json(path, manifest)
    return manifest


def _mismatch(manifest: dict, made_from: dict, urls: list[str], model: str) -> str | None:
    """What differs between a recorded embedding and this request, or None."""
    recorded = manifest.get("made_from")
    if recorded is None:       # written before content identities: only its paths can be compared
        same = manifest["shards"] == urls and manifest["model"] == model
        return None if same else f"other shards or another model ({manifest['model']})"
    if recorded["model"] != made_from["model"]:
        return f"another model ({manifest['model']}, {recorded['model'][:23]}; this one {made_from['model'][:23]})"
    return shards_mismatch(recorded["shards"], made_from["shards"])


def shards_mismatch(recorded: list, given: list) -> str | None:
    """How two lists of shard identities differ (the first difference), or None."""
    if len(recorded) != len(given):
        return f"{len(recorded)} shards, not these {len(given)}"
    for i, (a, b) in enumerate(zip(recorded, given)):
        if a != b:
            return f"other shards (shard {i}: {describe_shard(a)}, not {describe_shard(b)})"
    return None


def _run(urls, todo, work, embedder, batch, progress) -> None:
    from rich.progress import Progress, TextColumn
    began, done = time.perf_counter(), 0
    with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[rate]}"),
                  disable=not progress, transient=True) as bar:
        task = bar.add_task("embed", total=len(todo), rate="")
        for i in todo:
            done += embed_shard(urls[i], i, work, embedder, batch)
            rate = done / max(time.perf_counter() - began, 1e-9)
            bar.update(task, advance=1, rate=f"{rate:.1f} samples/s")
            log.info("embedded shard %d/%d (%s): %.1f samples/s", i + 1, len(urls), urls[i], rate)


def _finish(root: Path, urls, work, manifest: dict) -> dict:
    skipped, count, dims = Counter(), 0, (0, 0)
    for i in range(len(urls)):
        info = json.loads(part_path(work, i, "json").read_text())
        skipped.update(info["skipped"])
        count += len(info["keys"])
        if info["keys"]:
            x = np.load(part_path(work, i, "img.npy"), mmap_mode="r")
            y = np.load(part_path(work, i, "txt.npy"), mmap_mode="r")
            dims = (x.shape[1], y.shape[1])
    if count == 0:
        raise DataError(f"{urls[0]} ...: no readable image-caption record in {len(urls)} shard(s)")
    report = {"step": "embed", "shards": len(urls), "embedded": count, "skipped": dict(skipped)}
    manifest.update(complete=True, dim_image=dims[0], dim_text=dims[1], report=report)
    write_json(root / "manifest.json", manifest)
    write_json(root / "report.json", report)
    return report
