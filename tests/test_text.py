"""Prompt encoding and streaming detokenization."""
import pytest

from triattn.core.text import StreamDecoder, encode_prompt, load_tokenizer


@pytest.fixture(scope="module")
def tok(gptoss_dir):
    return load_tokenizer(gptoss_dir)


def test_stream_pieces_join_to_full_decode_with_multibyte_text(tok):
    text = "naïve café → 日本語 ✓ def f(x): return x"
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) > len(text) / 4  # byte-level pieces split the multi-byte characters
    dec = StreamDecoder(tok)
    pieces = [dec.push(i) for i in ids] + [dec.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


def test_encode_prompt_plain_and_empty(tok):
    assert tok.decode(encode_prompt(tok, "class Stack:")) == "class Stack:"
    with pytest.raises(ValueError, match="empty"):
        encode_prompt(tok, "   \n")


def test_chat_template_applied_when_present(tok):
    tok.chat_template = "{% for m in messages %}<|bos|>{{ m['content'] }}{% endfor %}<|eos|>"
    try:
        ids = encode_prompt(tok, "hi")
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert encode_prompt(tok, "hi", chat=False) == tok.encode("hi", add_special_tokens=False)
    finally:
        tok.chat_template = None
