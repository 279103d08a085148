"""Compressed uploads (harness.wire.compress, harness.wire.hooks): each codec against an independent
numpy re-implementation, the bytes it sends, topk's error feedback, and the server's reconstruction."""
import math

import numpy as np
import pytest
import torch

from harness.core.config import load_config
from harness.wire import compress
from harness.core.types import ClientResult, FailedClient
from harness.wire.hooks import ServerWire, client_send


def sample(n=1000, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(scale=1e-3, size=n).astype(np.float32))


def test_fp16_is_numpys_half_cast():
    x = sample()
    payload, residual = compress.encode("fp16", x, None, 64, 0.1)
    assert residual is None and compress.payload_bytes(payload) == 2 * x.numel()
    want = x.numpy().astype(np.float16).astype(np.float32)
    assert np.array_equal(compress.decode("fp16", payload, x.numel(), 64).numpy(), want)


def test_bf16_rounds_to_nearest_even_on_the_top_16_bits():
    x = sample()
    bits = x.numpy().view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16        # round half to even, by hand
    want = rounded.astype(np.uint32).view(np.float32)
    payload, _ = compress.encode("bf16", x, None, 64, 0.1)
    assert np.array_equal(compress.decode("bf16", payload, x.numel(), 64).numpy(), want)


def numpy_int8(x: np.ndarray, block: int):
    """Blockwise absmax int8, written out: q = round(127 x / absmax) per block of ``block`` entries."""
    q, scales = np.zeros(x.size, np.int8), []
    for start in range(0, x.size, block):
        part = x[start:start + block].astype(np.float64)
        absmax = np.abs(part).max()
        scales.append(absmax)
        q[start:start + block] = np.rint(part / (absmax if absmax > 0 else 1.0) * 127)
    return q, np.array(scales)


@pytest.mark.parametrize("n, block", [(1000, 64), (4096, 4096), (130, 64)])
def test_int8_matches_a_numpy_blockwise_absmax(n, block):
    x = sample(n)
    x[:block] = 0.0 if n > block else x[:block]           # an all-zero block codes as zeros
    payload, _ = compress.encode("int8", x, None, block, 0.1)
    q, scales = numpy_int8(x.numpy(), block)
    assert np.array_equal(payload["q"].numpy(), q)
    assert np.allclose(payload["absmax"].numpy(), scales, rtol=1e-7, atol=0)
    assert compress.payload_bytes(payload) == n + 4 * math.ceil(n / block)
    back = compress.decode("int8", payload, n, block).numpy()
    per_entry = np.repeat(scales, block)[:n]
    assert np.all(np.abs(back - x.numpy()) <= per_entry / 254 * (1 + 1e-6))   # half a step of absmax/127


def test_topk_keeps_the_largest_and_feeds_the_rest_back():
    d1, d2 = sample(1000, 1), sample(1000, 2)
    p1, r1 = compress.encode("topk", d1, None, 64, 0.05)
    want = np.sort(np.argsort(-np.abs(d1.numpy()))[:50])
    assert p1["idx"].numpy().tolist() == want.tolist() and p1["idx"].dtype == torch.int32
    assert compress.payload_bytes(p1) == 50 * 8
    sent1 = compress.decode("topk", p1, 1000, 64)
    assert torch.equal(sent1 + r1, d1)                       # a partition: nothing lost, nothing doubled
    p2, r2 = compress.encode("topk", d2, r1, 64, 0.05)
    c2 = d2 + r1
    want2 = np.sort(np.argsort(-np.abs(c2.numpy()))[:50])
    assert p2["idx"].numpy().tolist() == want2.tolist()
    assert torch.equal(compress.decode("topk", p2, 1000, 64) + r2, c2)


def test_client_sends_and_server_rebuilds_theta_plus_the_decoded_update():
    cfg = load_config("tiny", ["federation.compression=topk", "federation.topk_fraction=0.1"])
    theta = {"w": torch.zeros(10, 4), "b": torch.ones(10)}
    state = {"w": sample(40).reshape(10, 4), "b": torch.ones(10) + sample(10, 3)}
    package = {"global": theta, "round": 1, "participants": [0], "client_state": {}}
    sent = client_send(cfg, package, ClientResult(0, state, 4, 0.0, 1.0, 0.1))
    assert sent.state is None and sent.wire_bytes == 8 * (4 + 1)      # 10% of 40 and of 10 entries
    wire = ServerWire(cfg)
    [got] = wire.receive([sent], theta)
    for k in theta:
        rebuilt = theta[k].double() + (state[k].double() - theta[k].double()).float().double() \
            - wire.residuals[0][k].double()
        assert torch.allclose(got.state[k].double(), rebuilt, atol=1e-7)
    assert set(wire.residuals) == {0} and wire.load(wire.state_tensors()) is None and set(wire.residuals) == {0}


def test_a_poisoned_update_drops_its_client_before_encoding():
    cfg = load_config("tiny", ["federation.compression=int8"])
    theta = {"w": torch.zeros(4)}
    bad = client_send(cfg, {"global": theta, "round": 1, "participants": [0]},
                      ClientResult(0, {"w": torch.tensor([0.0, float("nan"), 1.0, 2.0])}, 1, 0.0, 1.0, 0.1))
    assert isinstance(bad, FailedClient) and bad.error == "non-finite values in w" and bad.result is None


def test_an_unknown_codec_is_one_line_naming_the_valid_ones():
    with pytest.raises(Exception, match="federation.compression"):
        load_config("tiny", ["federation.compression=int4"])
