"""What the wire carries and what the server may see: secure aggregation (:mod:`harness.wire.secagg`) and
compressed uploads (:mod:`harness.wire.compress`), applied between a client's trained projector and the
server rule by :mod:`harness.wire.hooks` (client side: encode or mask; server side: decode or unmask).
Which rules can run on sums only is each method's declaration (``supports_secure_aggregation``), checked
at config time by :mod:`harness.core.config.wire`. See docs/wire.md.
"""
