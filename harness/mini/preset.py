"""The ``mini`` preset runs as named: ``fedma run mini method=X`` takes (or builds) the cached Fed-MA-mini
world of its scenario and the mini benchmark sets when ``data.root`` / ``eval.data_root`` are not given,
as ``fedma demo`` does, and says so."""
from __future__ import annotations

from typing import List


def completions(cfg) -> List[str]:
    """``key=value`` overrides that fill what a mini run left unset (none when nothing is missing)."""
    from harness.core.benchmarks import configured
    extra = []
    if cfg.data.root is None and cfg.data.format == "conversation":   # stage 2 (instruct-mini)
        from harness.mini.instruct import ensure_instruct_world
        extra.append(f"data.root={ensure_instruct_world(seed=cfg.federation.seed)}")
    elif cfg.data.root is None:
        from harness.mini.scenario import ensure_scenario
        root = ensure_scenario(cfg.data.scenario, rounds=max(10, cfg.federation.rounds), seed=cfg.federation.seed)
        extra.append(f"data.root={root}")
    if configured(cfg.eval) and cfg.eval.data_root is None:
        from harness.mini.bench import EVAL, ensure_benchmarks
        extra.append(f"eval.data_root={ensure_benchmarks(seed=0)}")
        if cfg.eval.max_new_tokens is None:      # the mini LM answers in one token
            extra.append(f"eval.max_new_tokens={EVAL['max_new_tokens']}")
    return extra
