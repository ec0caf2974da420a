"""Convert two public human-evaluation sets into ttp_diag score tables (issue 21).

Both sets have several candidates per input (one per generating system), a human score and
automatic or LLM-judge scores, which is what a Best-of-N analysis with a *heterogeneous* pool
needs. Provenance, licences and the field mapping are in ``docs/public_data.md``.

* **HANNA** (dig-team/hanna-benchmark-asg, MIT): 96 WritingPrompts prompts x 10 story
  generators (the human-written reference story is left out: the reference-based metrics
  compare against it). ``reward`` = mean of the six human criteria (each the mean of three
  raters, 1-5); ``score_*`` = automatic metrics and LLM judges from
  ``hanna_metric_scores_llm.csv``.
* **SummEval** (Fabbri et al. 2021, via neulab/BARTScore ``SUM/SummEval/data.pkl``, whose
  texts and expert scores are SummEval's, MIT; the BARTScore repository is Apache-2.0):
  100 CNN/DailyMail articles x 16 summarisers. ``reward`` = mean of the four expert criteria
  (coherence, consistency, fluency, relevance; 1-5). The automatic scores are computed here
  with ``rouge-score`` (ROUGE-1/2/L F1 averaged over the 11 references; ROUGE-1 precision
  against the source article; length in words).

Usage (the raw files are read from local copies, or downloaded at the pinned commits)::

    python scripts/public_data.py --out scripts/public_data
    python scripts/public_data.py --hanna-csv hanna_metric_scores_llm.csv \
        --summeval-pkl data.pkl --out scripts/public_data

Each table: ``user_id`` = ``query_id`` = the input (so the bootstrap over users resamples
inputs), ``cand_id`` = the system, ``split`` = ``val``, ``reward``, ``score_<metric>``.
"""

from __future__ import annotations

import argparse
import ast
import io
import pickle
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

HANNA_REPO = "dig-team/hanna-benchmark-asg"
HANNA_COMMIT = "282f27536a5d05ad4ce14298abcd70c45668fed2"
HANNA_FILE = "hanna_metric_scores_llm.csv"
SUMMEVAL_REPO = "neulab/BARTScore"
SUMMEVAL_COMMIT = "248f511cb34ae3753fc81f7d7a945de5bfe33458"
SUMMEVAL_FILE = "SUM/SummEval/data.pkl"

HANNA_CRITERIA = ["Relevance", "Coherence", "Empathy", "Surprise", "Engagement", "Complexity"]
#: column of hanna_metric_scores_llm.csv -> score column (higher = better for every one kept;
#: distances such as BaryScore and InfoLM are left out rather than sign-flipped)
HANNA_PROXIES = {
    "BLEU": "score_bleu", "ROUGE-1 F-Score": "score_rouge1", "ROUGE-L F-Score": "score_rougeL",
    "METEOR": "score_meteor", "chrF": "score_chrf", "BERTScore F1": "score_bertscore",
    "MoverScore": "score_moverscore", "BARTScore-SH": "score_bartscore_sh",
    "SUPERT-PS": "score_supert", "BLANC-Help-PS": "score_blanc",
    "Text length": "score_length",
    "Beluga-13B AVG 1": "score_judge_beluga13b", "Mistral-7B AVG 1": "score_judge_mistral7b",
    "Llama-13B AVG 1": "score_judge_llama13b", "OrcaPlatypus AVG 1": "score_judge_orcaplatypus",
    "ChatGPT AVG 1": "score_judge_chatgpt",
}


def _raw_url(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def _read_bytes(local: str | None, repo: str, commit: str, path: str) -> bytes:
    if local:
        return Path(local).read_bytes()
    url = _raw_url(repo, commit, path)
    print(f"downloading {url}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 - a pinned https URL
        return r.read()


def _hanna_column(columns, name: str) -> str:
    """The CSV's headers carry a category marker after the metric name ('BLEU Ξ§')."""
    hits = [c for c in columns if c == name or c.startswith(name + " ")]
    if len(hits) != 1:
        raise KeyError(f"HANNA column {name!r}: found {hits} among the CSV's headers.")
    return hits[0]


def convert_hanna(raw: bytes) -> pd.DataFrame:
    """HANNA's per-system rows of per-story lists -> one row per (prompt, system)."""
    wide = pd.read_csv(io.BytesIO(raw))
    rows = []
    for _, sysrow in wide.iterrows():
        system = str(sysrow["Model"])
        if system == "Human":  # the reference story itself
            continue
        crit = np.array([ast.literal_eval(sysrow[c]) for c in HANNA_CRITERIA], dtype=float)
        cols = {out: np.array(ast.literal_eval(sysrow[_hanna_column(wide.columns, src)]),
                              dtype=float)
                for src, out in HANNA_PROXIES.items()}
        n = crit.shape[1]
        for i in range(n):
            rows.append({"user_id": f"prompt_{i:03d}", "query_id": f"prompt_{i:03d}",
                         "cand_id": system, "split": "val", "reward": crit[:, i].mean(),
                         **{k: v[i] for k, v in cols.items()}})
    return pd.DataFrame(rows)


def convert_summeval(raw: bytes) -> pd.DataFrame:
    """SummEval (BARTScore's unified pickle) -> one row per (article, system), ROUGE computed."""
    from rouge_score import rouge_scorer

    data = pickle.loads(raw)  # noqa: S301 - a pinned file of a public repository
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    src_scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    crits = ["coherence", "consistency", "fluency", "relevance"]
    rows = []
    for j, (doc_id, doc) in enumerate(sorted(data.items())):
        refs = doc["ref_summs"]
        for system, s in sorted(doc["sys_summs"].items()):
            summ = s["sys_summ"]
            per_ref = [scorer.score(ref, summ) for ref in refs]
            rows.append({
                "user_id": f"doc_{j:03d}", "query_id": f"doc_{j:03d}", "cand_id": system,
                "split": "val", "doc": doc_id,
                "reward": float(np.mean([s["scores"][c] for c in crits])),
                "score_rouge1": float(np.mean([p["rouge1"].fmeasure for p in per_ref])),
                "score_rouge2": float(np.mean([p["rouge2"].fmeasure for p in per_ref])),
                "score_rougeL": float(np.mean([p["rougeL"].fmeasure for p in per_ref])),
                "score_src_rouge1_p": src_scorer.score(doc["src"], summ)["rouge1"].precision,
                "score_length": float(len(summ.split())),
            })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hanna-csv", help=f"local copy of {HANNA_REPO}:{HANNA_FILE}")
    ap.add_argument("--summeval-pkl", help=f"local copy of {SUMMEVAL_REPO}:{SUMMEVAL_FILE}")
    ap.add_argument("--out", default="scripts/public_data", help="output folder")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from ttp_diag.io import atomic_write_bytes

    for name, table in (
            ("hanna", convert_hanna(_read_bytes(args.hanna_csv, HANNA_REPO, HANNA_COMMIT,
                                                HANNA_FILE))),
            ("summeval", convert_summeval(_read_bytes(args.summeval_pkl, SUMMEVAL_REPO,
                                                      SUMMEVAL_COMMIT, SUMMEVAL_FILE)))):
        buf = io.BytesIO()
        table.to_csv(buf, index=False, float_format="%.6g", compression={"method": "gzip",
                                                                          "mtime": 0})
        atomic_write_bytes(out / f"{name}.csv.gz", buf.getvalue())
        print(f"{name}: {table['query_id'].nunique()} inputs x "
              f"{table['cand_id'].nunique()} systems, {len(table)} rows -> "
              f"{out / (name + '.csv.gz')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
