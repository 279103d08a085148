import atexit
import os
import shutil
import tempfile

# Before lmms-eval/datasets are imported: offline, a private datasets cache, one thread (2 shared cores).
_CACHE = tempfile.mkdtemp(prefix="fedma-eval-cache-")
atexit.register(shutil.rmtree, _CACHE, True)
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "HF_DATASETS_CACHE": _CACHE, "LMMS_EVAL_DATASETS_CACHE": _CACHE}
for _k, _v in OFFLINE.items():
    os.environ.setdefault(_k, _v)

import pytest
import torch

from tests.eval.fixtures import write_benchmarks

ALL = ["mmvet", "mmbench", "seed", "llava_bench", "pope", "mme", "mmvp"]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    torch.set_num_threads(1)
    return write_benchmarks(tmp_path_factory.mktemp("benchdata"))


@pytest.fixture(scope="session")
def tiny_bundle():
    from harness.model.build import build_bundle
    return build_bundle("tiny")


def fixed_model(bundle, answer: str):
    """The adapter, forced to answer ``answer`` to every generation request."""
    from harness.eval.adapter import FedmaLlava

    class Fixed(FedmaLlava):
        def _generate(self, jobs):
            return [answer] * len(jobs)
    return Fixed(bundle=bundle, max_new_tokens=4)


def by_metric(rows):
    return {(r[0], r[1]): r for r in rows}
