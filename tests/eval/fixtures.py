"""Tiny local benchmark sets in each real lmms-eval task's schema (``DATA/<dataset>.parquet``).

The answers are chosen so that the hand-computed scores in the tests are not trivial:

- pope: answers yes, yes, no, yes, no, no (3 yes, 3 no);
- mme (pairs per category/question_id): existence e1 (Yes, No), e2 (Yes, Yes); color c1 (No, No),
  c2 (Yes, No); commonsense_reasoning r1 (Yes, No);
- mmbench_en_dev: answers A, B, A, C (option texts never contain "yes");
- seedbench: answers B, A, B, D, B (image rows);
- mmvp: pairs (1,2) and (3,4), answers (a), (b), (b), (b);
- mmvet: 3 questions; llava_in_the_wild: 3 questions, one per category.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]

POPE = ["yes", "yes", "no", "yes", "no", "no"]
MME = [("existence", "e1", "Yes"), ("existence", "e1", "No"), ("existence", "e2", "Yes"), ("existence", "e2", "Yes"),
       ("color", "c1", "No"), ("color", "c1", "No"), ("color", "c2", "Yes"), ("color", "c2", "No"),
       ("commonsense_reasoning", "r1", "Yes"), ("commonsense_reasoning", "r1", "No")]
MMBENCH = ["A", "B", "A", "C"]
SEED = ["B", "A", "B", "D", "B"]
MMVP = ["(a)", "(b)", "(b)", "(b)"]


def image(i: int, size: int = 24) -> Image.Image:
    img = Image.new("RGB", (size, size), COLORS[i % len(COLORS)])
    img.putpixel((i % size, (3 * i) % size), (255, 255, 255))
    return img


def _write(rows, features, path: Path) -> None:
    from datasets import Dataset
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def write_benchmarks(root) -> Path:
    from datasets import Features, Sequence, Value
    from datasets import Image as HFImage
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    s, img = Value("string"), HFImage()

    _write([{"question_id": str(i), "question": f"Is there a thing number {i} in the image?", "answer": a,
             "image": image(i), "image_source": f"src{i}", "category": "adversarial"} for i, a in enumerate(POPE)],
           Features(question_id=s, question=s, answer=s, image=img, image_source=s, category=s), root / "pope.parquet")

    _write([{"question_id": q, "question": f"Is this {cat} {q} ({k})? Please answer yes or no.", "answer": a,
             "category": cat, "image": image(k)} for k, (cat, q, a) in enumerate(MME)],
           Features(question_id=s, question=s, answer=s, category=s, image=img), root / "mme.parquet")

    _write([{"index": i, "question": f"Which color is shape {i}?", "hint": "nan", "A": "red", "B": "green",
             "C": "blue", "D": "purple", "answer": a, "category": "color", "L2-category": "attribute",
             "source": "fixture", "split": "dev", "image": image(i)} for i, a in enumerate(MMBENCH)],
           Features(index=Value("int64"), question=s, hint=s, A=s, B=s, C=s, D=s, answer=s, category=s,
                    **{"L2-category": s}, source=s, split=s, image=img), root / "mmbench_en_dev.parquet")

    _write([{"question_id": f"s{i}", "question": f"What is shown in picture {i}?", "choice_a": "a cat",
             "choice_b": "a dog", "choice_c": "a car", "choice_d": "a tree", "answer": a, "data_type": "image",
             "image": [image(i)]} for i, a in enumerate(SEED)],
           Features(question_id=s, question=s, choice_a=s, choice_b=s, choice_c=s, choice_d=s, answer=s,
                    data_type=s, image=Sequence(img)), root / "seedbench.parquet")

    _write([{"Index": i + 1, "Question": f"Is the shape in view {i} facing left or right?",
             "Options": "(a) left (b) right", "Correct Answer": a, "image": image(i)} for i, a in enumerate(MMVP)],
           Features(Index=Value("int64"), Question=s, Options=s, **{"Correct Answer": s}, image=img),
           root / "mmvp.parquet")

    _write([{"question_id": f"v{i}", "question": f"What is the main color of picture {i}?", "answer": ans,
             "capability": cap, "image": image(i)}
            for i, (ans, cap) in enumerate([("red", "rec"), ("green<OR>lime", "rec,ocr"), ("blue", "ocr")])],
           Features(question_id=s, question=s, answer=s, capability=s, image=img), root / "mmvet.parquet")

    _write([{"question_id": i, "question": f"Describe picture {i}.", "gpt_answer": "A colored square.",
             "caption": "A square of one color.", "category": cat, "image": image(i)}
            for i, cat in enumerate(["conv", "detail", "complex"])],
           Features(question_id=Value("int64"), question=s, gpt_answer=s, caption=s, category=s, image=img),
           root / "llava_in_the_wild.parquet")
    return root
