"""Figure: observed Best-of-N curves of public proxies with the law and the refined prediction.

    python paper_figures/public_data/figure.py --out docs/figures/public_data_law_vs_refined.png
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import ttp_diag as td  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _tables beside this script
from _tables import load  # noqa: E402

PANELS = [("hanna", "score_bartscore_sh", "HANNA: BARTScore-SH"),
          ("hanna", "score_judge_chatgpt", "HANNA: ChatGPT judge"),
          ("summeval", "score_rouge2", "SummEval: ROUGE-2"),
          ("summeval", "score_src_rouge1_p", "SummEval: ROUGE-1 P vs source")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/figures/public_data_law_vs_refined.png")
    ap.add_argument("--concomitant-out", default="docs/figures/concomitant_hanna_bartscore.png",
                    help="the concomitant curve of HANNA BARTScore-SH (ConcomitantFit.plot)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    fits = {}
    fig, axes = plt.subplots(1, len(PANELS), figsize=(13.5, 3.4), constrained_layout=True)
    for ax, (name, score, title) in zip(axes, PANELS, strict=True):
        if name not in fits:
            t = load(name)
            fits[name] = td.BestOfN(prediction="refined").fit(
                t[[c for c in t.columns if c != "doc"]])
        fit = fits[name]
        ns = np.array(fit.ns_)
        far = np.unique(np.round(np.geomspace(ns[-1], 4 * ns[-1], 12)).astype(int))
        rnd, orc, obs = (fit._observed(k) for k in ("random", "oracle", score))
        law_in = fit.predict(ns, score, prediction="law")
        ref_in = fit.predict(ns, score)
        ge = {k: td.gain_error(p, obs, rnd) for k, p in (("law", law_in), ("refined", ref_in))}
        ax.plot(ns, orc, color="0.55", lw=1, ls=":", label="oracle")
        ax.axhline(rnd[0], color="0.7", lw=1, label="random")
        ax.plot(ns, obs, "o", color="k", ms=3.5, label="observed (exact)")
        ax.plot(ns, law_in, color="tab:red", ls="-.", lw=1.6,
                label=f"paper's law (gain err {ge['law']:.2f})")
        ax.plot(ns, ref_in, color="tab:blue", lw=1.8,
                label=f"refined (gain err {ge['refined']:.2f})")
        ax.plot(far, fit.predict(far, score, prediction="law"), color="tab:red", ls="-.",
                lw=1.0, alpha=0.5)
        ax.plot(far, fit.predict(far, score), color="tab:blue", lw=1.0, alpha=0.5)
        ax.axvline(ns[-1], color="0.85", lw=0.8)
        ax.set_xscale("log")
        ticks = [1, 2, 5, int(ns[-1]), 2 * int(ns[-1]), 4 * int(ns[-1])]
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.minorticks_off()
        ax.set_title(f"{title}\n(rho_eff {fit.diagnostics_[score].rho_eff:.2f})", fontsize=9.5)
        ax.set_xlabel("N (log; faint: past the pool)", fontsize=9)
        ax.tick_params(labelsize=8)
        top = max(orc.max(), obs.max())
        ax.set_ylim(rnd[0] - 0.08 * (top - rnd[0]), top + 0.08 * (top - rnd[0]))
        ax.legend(fontsize=6.8, loc="upper left", frameon=False)
    axes[0].set_ylabel("expected human score of the pick", fontsize=9)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=160)
    print(f"wrote {args.out}")
    ax = fits["hanna"].concomitant_["score_bartscore_sh"].plot()
    ax.set_title("HANNA, BARTScore-SH: reward expected at each score rank", fontsize=9.5)
    ax.figure.savefig(args.concomitant_out, dpi=160)
    print(f"wrote {args.concomitant_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
