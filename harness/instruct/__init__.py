"""Stage 2: federated instruction tuning after federated pretraining (the paper's Appendix B).

Every client starts from a stage-1 global projector (``init.projector``), fine-tunes the projector and
LoRA adapters on the LLM's attention and MLP projections (:mod:`harness.model.lora`, through peft),
and the server aggregates both with the configured rule (weighted FedAvg, the paper's choice). The round
engine is the same as stage 1; what differs is the trainable state (projector + ``lora/...`` tensors),
the data (LLaVA's conversation records, loss on the answers only: :func:`harness.data.collate.
conversation_batch`) and the benchmarks (GQA and OCRVQA through lmms-eval).
"""
