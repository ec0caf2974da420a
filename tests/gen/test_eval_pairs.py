"""User split and pairs table of the evaluation suite (issue 10, item 1)."""

import numpy as np
import pandas as pd
import pytest

from ttp_diag.gen.evaluation.pairs import (
    PAIR_COLUMNS,
    build_pairs,
    candidate_pairs,
    check_pairs,
    hard_negative_pairs,
)
from ttp_diag.gen.evaluation.split import EvaluationInputError, UserSplit, split_users


def _items(n_users=4, n_items=6, seed=0):
    rows = []
    for u in range(n_users):
        for i in range(n_items):
            rows.append(dict(user_id=f"u{u}", item_id=f"u{u}_{i}", position=10 * i + u,
                             body=f"article {u} {i} topic{i % 3}", output=f"Headline {u}-{i}"))
    return pd.DataFrame(rows)


def _emb(items, seed=0):
    # Topic-structured embeddings: items sharing a topic are near each other.
    rng = np.random.default_rng(seed)
    topics = items["body"].str.extract(r"topic(\d)")[0].astype(int).to_numpy()
    e = np.eye(3)[topics] + 0.1 * rng.normal(size=(len(items), 3))
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_split_is_seeded_time_ordered_and_recorded(tmp_path):
    items = _items()
    a = split_users(items, n_train_users=2, query_fraction=0.34, seed=3)
    b = split_users(items, n_train_users=2, query_fraction=0.34, seed=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert len(a.train_users) == 2 and len(a.adapt_users) == 2
    for u in a.adapt_users:
        sup, qry = a.items_in("support", u), a.items_in("query", u)
        assert len(qry) == 3 and len(sup) == 3  # ceil(0.34 * 6) = 3
        assert sup["position"].max() < qry["position"].min()
    a.save(tmp_path)
    c = UserSplit.load(tmp_path)
    pd.testing.assert_frame_equal(a.table, c.table)
    assert c.settings["seed"] == 3 and c.settings["adapt_users"] == a.adapt_users
    other = split_users(items, n_train_users=2, query_fraction=0.34, seed=4)
    assert other.train_users != a.train_users or other.adapt_users != a.adapt_users


def test_split_with_given_query_items_and_errors():
    items = _items()
    q = {f"u{u}_5" for u in range(4)}
    s = split_users(items, n_train_users=1, query_items=q, seed=0)
    assert set(s.items_in("query")["item_id"]) <= q
    with pytest.raises(EvaluationInputError, match="no support items"):
        split_users(items, n_train_users=1, query_items={f"u{u}_0" for u in range(4)})
    with pytest.raises(EvaluationInputError, match="n_train_users=4"):
        split_users(items, n_train_users=4)


def test_hard_negatives_never_use_query_gold_and_nothing_leaks():
    items = _items()
    s = split_users(items, n_train_users=2, query_fraction=0.34, seed=0)
    emb = _emb(s.table.merge(items.drop(columns="user_id"), on="item_id"))
    p = hard_negative_pairs(items, s, k=3, embeddings=emb, seed=0)
    assert list(p.columns[:6]) == PAIR_COLUMNS
    assert len(p) == len(s.table)  # one pair per item
    query = s.items_in("query").merge(items.drop(columns="user_id"), on="item_id")
    q_gold = set(query["output"])
    assert not set(p["rejected"]) & q_gold  # no query gold is ever a rejected side
    assert (p["chosen"] != p["rejected"]).all()
    trs = p[p["split"].isin(["train", "support"])]
    q_texts = q_gold | set(query["body"])
    assert not (set(trs["prompt"]) | set(trs["chosen"]) | set(trs["rejected"])) & q_texts
    # Retrieval follows the embeddings: the rejected item shares the chosen item's topic.
    topic = items.set_index("item_id")["body"].str[-1]
    assert (p["item_id"].map(topic) == p["rejected_item_id"].map(topic)).mean() == 1.0
    check_pairs(p, items, s)


def test_candidate_pairs_gap_and_gold_never_rejected():
    items = _items(n_users=2, n_items=3)
    s = split_users(items, n_train_users=1, query_fraction=0.34, seed=0)
    rows = []
    for it in items.itertuples():
        for txt, r in [(it.output, 1.0), ("meh", 0.3), ("bad", 0.0), ("bad2", 0.05)]:
            rows.append(dict(query_id=it.item_id, text=txt, reward=r, body=it.body))
    cands = pd.DataFrame(rows)
    gold = items.set_index("item_id")["output"]
    p = candidate_pairs(cands, s, min_gap=0.2, max_pairs_per_query=10, gold=gold)
    assert (p["gap"] >= 0.2).all()
    # per query: (gold, meh), (gold, bad), (gold, bad2), (meh, bad), (meh, bad2) = 5 pairs
    assert (p.groupby("item_id").size() == 5).all()
    assert not (p["rejected"] == p["item_id"].map(gold)).any()
    with pytest.raises(EvaluationInputError, match="min_gap=0"):
        candidate_pairs(cands, s, min_gap=0)


def test_check_pairs_catches_own_gold_rejected():
    items = _items(n_users=2, n_items=3)
    s = split_users(items, n_train_users=1, query_fraction=0.34, seed=0)
    bad = pd.DataFrame([dict(user_id="u0", split="query", prompt="x", chosen="Headline 0-2",
                             rejected="Headline 0-2", source="hand", item_id="u0_2")])
    with pytest.raises(EvaluationInputError, match="own item's gold"):
        check_pairs(bad, items, s)


def test_build_pairs_combines_sources():
    items = _items()
    s = split_users(items, n_train_users=2, query_fraction=0.34, seed=0)

    class Enc:
        def encode(self, texts):
            return _emb(pd.DataFrame({"body": texts}))

    cands = pd.DataFrame([dict(query_id=i, text=t, reward=r, body="b")
                          for i in items["item_id"] for t, r in [("good", 0.9), ("poor", 0.1)]])
    p = build_pairs(items, s, candidates=cands, encoder=Enc(), min_gap=0.5)
    assert set(p["source"]) == {"hard_negative", "candidates"}
    assert p.attrs["dropped_leaking"] == 0


def _own_user_emb(t):
    # each user's items are each other's nearest neighbours: without the fix a query item's
    # hard negative is one of the user's own support items (its ICL demonstrations)
    users = t["user_id"].str[1:].astype(int).to_numpy()
    e = np.eye(8)[users] + 0.01 * np.arange(len(t))[:, None] % 1
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_query_hard_negatives_are_never_a_demonstration():
    items = _items(n_users=4, n_items=6)
    s = split_users(items, n_train_users=2, query_fraction=0.34, seed=0)
    t = s.table.merge(items.drop(columns="user_id"), on="item_id")
    p = hard_negative_pairs(items, s, k=2, embeddings=_own_user_emb(t), seed=0)
    sup = s.items_in("support").merge(items.drop(columns="user_id"), on="item_id")
    demos = set(zip(sup["user_id"], sup["output"], strict=True))
    q = p[p["split"] == "query"]
    assert len(q) == len(s.items_in("query"))
    assert not any((u, r) in demos for u, r in zip(q["user_id"], q["rejected"], strict=True))
    check_pairs(p, items, s)
    # a pair whose rejected text is one of that user's support outputs is refused
    u = q["user_id"].iloc[0]
    bad = q.iloc[[0]].assign(rejected=sup.loc[sup["user_id"] == u, "output"].iloc[0])
    with pytest.raises(EvaluationInputError, match="possible ICL demonstration"):
        check_pairs(pd.concat([p, bad], ignore_index=True), items, s)


def test_triple_demonstrations_show_chosen_and_rejected():
    from ttp_diag.gen.evaluation.pairs import demo_triples
    from ttp_diag.gen.evaluation.policy import icl_prompt, select_demos

    items = _items()
    s = split_users(items, n_train_users=2, query_fraction=0.34, seed=0)
    emb = _emb(s.table.merge(items.drop(columns="user_id"), on="item_id"))
    p = hard_negative_pairs(items, s, k=3, embeddings=emb, seed=0)
    u = s.adapt_users[0]
    sup = s.items_in("support", u).merge(items.drop(columns="user_id"), on="item_id")
    demos = demo_triples(select_demos(sup, "a query", 2, seed=1), p)
    want = p.set_index("item_id")["rejected"]
    assert [d["rejected"] for d in demos] == [want[d["item_id"]] for d in demos]
    prompt = icl_prompt("lamp4", "a query", demos, demo_format="triples")
    for d in demos:
        assert f"### Preferred Headline: {d['output']}" in prompt
        assert f"### Rejected Headline: {d['rejected']}" in prompt
    assert prompt.endswith(icl_prompt("lamp4", "a query"))
    with pytest.raises(EvaluationInputError, match="rejected"):
        icl_prompt("lamp4", "a query", [{"body": "x", "output": "y"}], demo_format="triples")
    with pytest.raises(EvaluationInputError, match="no support hard-negative pair"):
        demo_triples([{"item_id": "nope", "body": "x", "output": "y"}], p)
