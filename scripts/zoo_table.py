"""Print zoo_results.csv (from scripts/zoo_run.py) as the Markdown table of the README."""

import sys

import pandas as pd

r = pd.read_csv(sys.argv[1] if len(sys.argv) > 1 else "runs/zoo/zoo_results.csv")
print("| model | held-out pair acc. [95% CI] | acc. train / adapt users | alpha | beta | rho_eff "
      "| BoN gain N=16 [95% CI] | train s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for _, x in r.iterrows():
    ts = "-" if pd.isna(x.train_s) else f"{x.train_s:.0f}"
    print(f"| {x.model} | {x.acc_heldout:.3f} [{x.acc_lo:.3f}, {x.acc_hi:.3f}] | "
          f"{x.acc_train_users:.3f} / {x.acc_adapt_users:.3f} | {x.alpha:.1f} | {x.beta:.3f} | "
          f"{x.rho_eff:.3f} | {x.bon_gain_N16:+.4f} [{x.gain_lo:+.4f}, {x.gain_hi:+.4f}] | {ts} |")
