"""Print zoo_results.csv (from scripts/zoo_run.py) as the Markdown table of the README.

alpha and beta come with their bootstrap 95% interval and the p-value of the package's null
model (``Diagnostics.null``: alpha_p, the chance of so many collapsed users if every user
shared one rho; beta_p, the chance of so many hacked queries from noise alone). A row is
flagged ``collapse`` / ``hacking`` when that p-value is below 0.05.
"""

import sys

import pandas as pd

r = pd.read_csv(sys.argv[1] if len(sys.argv) > 1 else "runs/zoo/zoo_results.csv")


def _s(x, f="{:.0f}"):
    return "-" if pd.isna(x) else f.format(x)


print("| model | held-out pair acc. [95% CI] | acc. train / adapt users | alpha [95% CI] (null p) "
      "| beta [95% CI] (null p) | rho_eff [95% CI] | BoN gain N=16 [95% CI] | flag | train s "
      "| score s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for _, x in r.iterrows():
    flag = ", ".join(n for n, p in (("collapse", x.alpha_p), ("hacking", x.beta_p)) if p < 0.05)
    print(f"| {x.model} | {x.acc_heldout:.3f} [{x.acc_lo:.3f}, {x.acc_hi:.3f}] | "
          f"{x.acc_train_users:.3f} / {x.acc_adapt_users:.3f} | "
          f"{x.alpha:.1f} [{x.alpha_lo:.1f}, {x.alpha_hi:.1f}] ({x.alpha_p:.2f}) | "
          f"{x.beta:.3f} [{x.beta_lo:.3f}, {x.beta_hi:.3f}] ({x.beta_p:.2f}) | "
          f"{x.rho_eff:+.3f} [{x.rho_eff_lo:+.3f}, {x.rho_eff_hi:+.3f}] | "
          f"{x.bon_gain_N16:+.4f} [{x.gain_lo:+.4f}, {x.gain_hi:+.4f}] | {flag or '-'} | "
          f"{_s(x.train_s)} | {_s(x.get('score_s'))} |")
