"""Watching runs where researchers already look: the record store mirrored to TensorBoard, W&B and
MLflow (:mod:`harness.engine.loggers`), and a self-contained HTML report of runs and sweeps
(:mod:`harness.observe.report`)."""
