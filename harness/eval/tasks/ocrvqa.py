"""OCRVQA (Mishra et al., 2019; the paper's Appendix B): questions about book covers (title, author,
genre, ...), scored as accuracy: the normalized answer equals the normalized reference (lower case, no
punctuation, whitespace collapsed), the way LLaVA-1.5 scores its OCRVQA split."""
from __future__ import annotations

import re
import string

POST_PROMPT = "\nAnswer the question using a single word or phrase."
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize(text: str) -> str:
    return " ".join(_PUNCT.sub("", str(text).lower()).split())


def ocrvqa_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def ocrvqa_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', POST_PROMPT)}"


def ocrvqa_process_results(doc, results):
    answer = results[0] if results else ""
    return {"ocrvqa_accuracy": float(normalize(answer) == normalize(doc["answer"]))}
