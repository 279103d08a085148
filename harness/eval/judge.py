"""The LLM judge: an OpenAI-compatible chat-completions endpoint (``judge.base_url``, ``judge.model``,
the key read from the environment variable named by ``judge.api_key_env``; never logged or written).

lmms-eval's judged tasks read their endpoint from the environment when their ``utils.py`` is loaded
(mmvet, at task build) or first used (llava_in_the_wild): ``API_TYPE``, ``MODEL_VERSION``,
``OPENAI_API_URL`` (the base URL, ``.../v1``) and ``OPENAI_API_KEY``. :func:`judge_env` sets them for
the duration of task building and of each judged evaluation, and restores them afterwards. MMBench's
evaluator wants the full ``.../chat/completions`` URL in the same variable, so its module-level
evaluator object is pointed at the judge explicitly (:meth:`Judge.patch_mmbench`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)
ENV_KEYS = ("API_TYPE", "MODEL_VERSION", "OPENAI_API_URL", "OPENAI_API_KEY")


@dataclass
class Judge:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/")

    def key(self) -> str:
        # a local endpoint (vLLM, llama.cpp) may need no key; the OpenAI client still wants a non-empty one
        return os.environ.get(self.api_key_env) or "EMPTY"

    def probe(self, timeout: float = 10.0) -> bool:
        """One tiny chat completion: does the endpoint answer at all?"""
        body = json.dumps({"model": self.model, "max_tokens": 1,
                           "messages": [{"role": "user", "content": "ping"}]}).encode()
        req = urllib.request.Request(f"{self.url}/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.key()}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return bool(json.loads(resp.read()).get("choices"))
        except Exception as e:   # noqa: BLE001  (any failure means: no judge)
            log.warning("judge probe failed: %s", type(e).__name__)
            return False

    def patch_mmbench(self, task) -> None:
        for fn in getattr(task, "_aggregation_list", {}).values():
            evaluator = getattr(fn, "__globals__", {}).get("mmbench_evaluator")
            if evaluator is not None:
                evaluator.API_URL = f"{self.url}/chat/completions"
                evaluator.API_KEY = self.key()
                evaluator.API_TYPE = "openai"
                evaluator.model_version = self.model


def build_judge(base_url: str | None, model: str, api_key_env: str) -> Judge | None:
    return Judge(base_url, model, api_key_env) if base_url else None


@contextlib.contextmanager
def judge_env(judge: Judge | None):
    if judge is None:
        yield
        return
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(API_TYPE="openai", MODEL_VERSION=judge.model, OPENAI_API_URL=judge.url,
                      OPENAI_API_KEY=judge.key())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
