"""Evaluation through lmms-eval (SPEC section 6).

- :mod:`harness.eval.adapter`: the lmms-eval model ``fedma_llava`` (entry point ``lmms_eval.models``);
- :mod:`harness.eval.suite`: benchmark -> lmms-eval task mapping, local-data task YAML, n/a handling;
- :mod:`harness.eval.judge`: the OpenAI-compatible judge;
- :mod:`harness.eval.hook`: ``lmms_hook(ctx)`` for the round engine (sharded over ranks);
- :mod:`harness.cli.eval`: ``fedma eval CHECKPOINT_OR_RUN_DIR``.

Nothing heavy is imported here: ``fedma --help`` must not import torch or lmms-eval.
"""
