"""Layer 1, the method API: what a federated method is (a server rule, :mod:`.aggregator`, and what it asks
of the clients, :mod:`.objective`), how its hyperparameters are named (:mod:`.arms`) and searched
(:mod:`.space`), and the tensor math several rules share (:mod:`.merging`, :mod:`.streaming`). Builds on
:mod:`harness.core` only; Fed-CMP (:mod:`harness.fedcmp`) and the baselines (``baselines/``) build on it."""
