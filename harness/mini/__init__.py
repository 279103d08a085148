"""Fed-MA-mini: the embedded synthetic five-domain world and its pretrained tiny LLaVA (SPEC section 8).

Numbers from this world are not comparable with the paper's. ``mini_bundle`` (the ``mini`` preset),
``ensure_models`` and ``ensure_world`` live in :mod:`harness.mini.models`, imported on first use so that
``fedma --help`` stays free of torch."""
_LAZY = ("mini_bundle", "ensure_models", "ensure_world")


def __getattr__(name):
    if name in _LAZY:
        from harness.mini import models
        return getattr(models, name)
    raise AttributeError(f"module 'harness.mini' has no attribute {name!r}")
