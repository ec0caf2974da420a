"""Tiny models on a 2-core machine: one torch thread avoids spin-waiting (10-50x faster).

``tiny_backbone``: one tiny random BERT per test module, shared by the pipeline, shard and
sweep tests.
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
