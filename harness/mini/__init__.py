"""Fed-MA-mini: the embedded synthetic five-domain world and its pretrained tiny LLaVA (SPEC section 8).

Numbers from this world are not comparable with the paper's. ``mini_bundle`` (the ``mini`` preset),
``ensure_models`` and ``ensure_world`` live in :mod:`harness.mini.models`, the benchmark sets
(``ensure_benchmarks``, ``eval_overrides``) in :mod:`harness.mini.bench`, imported on first use so that
``fedma --help`` stays free of torch."""
_LAZY = {"mini_bundle": "models", "ensure_models": "models", "ensure_world": "models", "ensure_clip": "models",
         "ensure_benchmarks": "bench", "eval_overrides": "bench"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"harness.mini.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'harness.mini' has no attribute {name!r}")
