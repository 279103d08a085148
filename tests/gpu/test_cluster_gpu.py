"""The clustering step on a GPU: the passes on CUDA give the CPU's partition of planted data."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.unit.test_data_pipeline import K, family_vectors, unit, write_store

pytestmark = pytest.mark.gpu


def test_gpu_passes_give_the_cpu_partition(tmp_path):
    from harness.data.cluster import cluster
    rng = np.random.default_rng(11)
    mu = unit(rng.standard_normal((K, 32)))
    fam = rng.integers(0, K, 1500)
    x, y = family_vectors(rng, fam, mu), family_vectors(rng, fam, mu)
    for device in ("cpu", "cuda"):
        write_store(tmp_path / device, x, y)
        cluster(tmp_path / device, "xm", k=K, seed=0, restarts=2, sample=300, chunk=97, device=device)
    cpu, gpu = (np.load(tmp_path / d / "xm" / "labels.npy") for d in ("cpu", "cuda"))
    assert adjusted_rand_score(cpu, gpu) == 1.0 and adjusted_rand_score(fam, gpu) == 1.0
