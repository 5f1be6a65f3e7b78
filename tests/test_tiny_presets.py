"""The model presets: real-dims has gpt-oss-20b's widths, and its tokenizer is padded to the real
vocabulary without changing how text is tokenized."""
from triattn.openvino.tiny import MAX_POSITION, PRESETS, VOCAB_SIZE, pad_vocabulary, train_tokenizer

TEXT = "def stack(self):\n    return [x for x in range(10)]  # ünïcode too"


def test_real_dims_has_gpt_oss_20b_widths():
    p = PRESETS[("gpt-oss", "real-dims")]
    assert (p["hidden_size"], p["num_attention_heads"], p["num_key_value_heads"], p["head_dim"]) == (2880, 64, 8, 64)
    assert p["sliding_window"] == 128 and p["num_local_experts"] == 4 and 2 <= p["num_hidden_layers"] <= 4
    assert VOCAB_SIZE["real-dims"] == 201088 and MAX_POSITION["bench"] >= 16384 + 200


def test_padding_the_vocabulary_keeps_tokenization(tmp_path):
    tok = train_tokenizer(512, tmp_path / "small")
    padded = pad_vocabulary(tok, 3000)
    assert len(padded) == 3000
    assert padded.encode(TEXT) == tok.encode(TEXT)
    assert padded.decode(padded.encode(TEXT)) == TEXT
    assert isinstance(padded.decode([2999, 1500]), str)  # every padded id decodes
