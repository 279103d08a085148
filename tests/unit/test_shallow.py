"""The paper-width shallow checkpoints' tokenizer, read through the llava-1.5-7b preset's tokenizer path."""
import pytest

from harness.mini.shallow import llama_vocab, write_tokenizer

pytestmark = pytest.mark.unit


def test_vocabulary_is_llamas_layout_at_32000():
    vocab, merges = llama_vocab()
    assert len(vocab) == 32000 and sorted(vocab.values()) == list(range(32000))
    assert [vocab[t] for t in ("<unk>", "<s>", "</s>", "<0x00>", "<0xFF>", "▁", "a")] == [0, 1, 2, 3, 258, 259, 260]
    assert all(left + right in vocab for left, right in merges)


def test_the_presets_tokenizer_path_by_hand(tmp_path):
    """Singles are ids 259..325 (``▁`` 259, a-z 260..285, ...), then ``▁x`` = 326 + x, ``▁xy`` = 352 +
    26 x + y, ``▁xyz`` = 1028 + 26 (26 x + y) + z, then word-inner ``xy`` = 18604 + 26 x + y and ``xyz``
    = 19280 + 26 (26 x + y) + z (letters a=0 .. z=25). Word-initial merges rank first, so
    "a red square" is ▁a (326), ▁red (1028 + 26 x 446 + 3 = 12627), ▁squ (1028 + 26 x 484 + 20 = 13632),
    are (19280 + 26 x 17 + 4 = 19726); "é" has no piece: ▁ then its UTF-8 bytes C3 A9 (3 + 195, 3 + 169)."""
    from transformers import AutoTokenizer

    from harness.model.build import _llava_tokenizer
    write_tokenizer(tmp_path)
    tok = _llava_tokenizer(AutoTokenizer, str(tmp_path))
    ids = tok("a red square é", add_special_tokens=False).input_ids
    assert ids == [326, 12627, 13632, 19726, 259, 198, 172]
    assert tok.decode(ids) == "a red square é"
    assert tok.convert_tokens_to_ids("<image>") == 32000 and len(tok) == 32001   # LLaVA-1.5's image token
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 0)    # pad = <unk>
    assert tok("a", add_special_tokens=True).input_ids == [1, 326]
