"""Prompt templates against the paper's appendix E, written out by hand."""

from __future__ import annotations

import pytest

from ttp_diag.gen.prompts import (
    format_history,
    generate_personas,
    persona_request,
    policy_prompt,
    reward_model_prompt,
)


def test_reward_model_prompt_matches_appendix_e2_exactly():
    got = reward_model_prompt("lamp4", "Dogs bark at night.", "Night Dogs")
    want = (
        "[Instruction]: Judge how good the Document is as a headline for the Article. "
        "Higher score = better.\n"
        "[Input]: Dogs bark at night.\n"
        "[Document]: Night Dogs"
    )
    assert got == want


@pytest.mark.parametrize(
    "task,noun",
    [
        ("lamp5", "a title for the Abstract"),
        ("longlamp_abstract", "an abstract for the Title"),
        ("product_review", "a review for the Product"),
        ("topic_writing", "a post for the Topic"),
    ],
)
def test_reward_model_instructions_per_task(task, noun):
    p = reward_model_prompt(task, "q", "c")
    assert (
        p.splitlines()[0]
        == f"[Instruction]: Judge how good the Document is as {noun}. Higher score = better."
    )


def test_reward_model_prompt_optional_history_and_errors():
    p = reward_model_prompt("lamp4", "q", "c", history=[("a1", "h1")])
    assert p.startswith("[History]:\n- Input: a1\n  Output: h1\n[Instruction]:")
    with pytest.raises(ValueError, match="candidate"):
        reward_model_prompt("lamp4", "q", None)
    with pytest.raises(ValueError, match="unknown task"):
        reward_model_prompt("nope", "q", "c")


def test_rag_prompt_lamp4_template():
    hist = [
        {"body": "A cat sat.", "output": "Cat Sits"},
        {"body": "Rain fell.", "output": "It Rains"},
    ]
    got = policy_prompt("lamp4", "Dogs bark.", history=hist)
    want = (
        "[User History]\n"
        "### Article: A cat sat.\n### Headline: Cat Sits\n\n"
        "### Article: Rain fell.\n### Headline: It Rains\n\n"
        "### Instruction: Generate a headline for the following article. "
        "Match the user\u2019s headline style.\n"
        "### Article: Dogs bark.\n"
        "### Headline:"
    )
    assert got == want


def test_rag_prompt_without_history_has_no_empty_block():
    got = policy_prompt("lamp5", "We study X.")
    assert got.startswith("### Instruction: Generate a title for the following abstract.")
    assert got.endswith("### Abstract: We study X.\n### Title:")


def test_persona_policies():
    hist = [{"body": "A cat sat.", "output": "Cat Sits"}]
    p = policy_prompt(
        "lamp4", "Dogs bark.", policy="persona", history=hist, persona="Short, punny."
    )
    assert p.startswith("[User Style]\nShort, punny.\n\n### Instruction:")
    assert "[User History]" not in p  # persona alone carries no retrieved history
    pr = policy_prompt(
        "lamp4", "Dogs bark.", policy="persona_rag", history=hist, persona="Short, punny."
    )
    assert pr.index("[User Style]") < pr.index("[User History]") < pr.index("### Instruction")
    with pytest.raises(ValueError, match="needs a persona"):
        policy_prompt("lamp4", "x", policy="persona")
    with pytest.raises(ValueError, match="unknown policy"):
        policy_prompt("lamp4", "x", policy="zeroshot")


def test_truncation_for_long_form():
    hist = [{"body": "w " * 500, "output": "o " * 500}]
    h = format_history("topic_writing", hist, max_chars=50)
    body_line = h.splitlines()[1]
    assert body_line.startswith("### Topic: ") and body_line.endswith("...")
    assert len(body_line) == len("### Topic: ") + 50


def test_persona_request_and_generation_with_a_fake_backend():
    samples = [{"body": f"article {i}", "output": f"Headline {i}"} for i in range(15)]
    req = persona_request("lamp4", samples)
    assert "15 examples" in req and "Headline: Headline 14" in req

    class Fake:
        name = "fake"

        def generate(self, prompts, n, temperature, top_p, max_new_tokens, seed):
            return [[f" style {len(p)} "] * n for p in prompts]

    got = generate_personas(Fake(), "lamp4", {"u1": samples, "u2": samples[:3]})
    assert set(got) == {"u1", "u2"}
    assert got["u1"] == f"style {len(req)}"
