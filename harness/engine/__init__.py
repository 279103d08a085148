"""Layer 3, the round engine: the paper's Algorithm 1 over one torchrun world (:mod:`.rounds`), rank 0's
server (:mod:`.server`), the clients' DeepSpeed training (:mod:`.client`), the world and its client groups
(:mod:`.dist`), checkpoints, faults and the hang watchdog, and ``fedma run``'s wrapper (:mod:`.runner`).
Builds on the foundations, the methods and the parts (data, model, instruct, eval, wire); the features
and the app build on it (tests/unit/test_layering.py)."""
