"""Sample-size planner: how many users, queries and candidates a conclusion needs.

:func:`plan_sample` (``SamplePlanner(...).fit(pilot)``) simulates experiments of every design in a
grid (users x queries per user x candidates per query) and analyses each with the package's own
tests, so the power it reports is that of the analysis a researcher will actually run:

* ``gain``: Best-of-N of reward model ``a`` beats random at N (paired sign-flip test of
  :func:`ttp_diag.compare_selectors` on user means, level ``test_level``);
* ``difference``: ``a`` and ``b`` differ at N (the same test on ``a - b``);
* ``prediction``: the law's predicted gain ``rho_total * (oracle - random)`` at N lies within
  ``share`` of its true value;
* ``collapse`` / ``hacking`` of each model: the null-model tests of :func:`ttp_diag.diagnose`
  reject "one shared correlation" / "each user's own correlation" at ``test_level``.

Gains and predictions are simulated by resampling the pilot (users, then their queries, with
replacement; a random subset of each pool when the design has fewer candidates), so they keep
the pilot's real reward distribution; the pilot's own estimates are the truth of that world.
Collapse and hacking are simulated from the pilot's *fitted* hierarchical mixture
(``alpha_corrected``, ``beta_corrected`` and their correlations): resampling observed
correlations would carry the pilot's sampling noise into the truth as spurious differences
between users. Without a pilot, every question is simulated from stated parameters
(:class:`ttp_diag.SimulatedRM` for ``a`` and ``b``). Each power comes with its Clopper-Pearson
interval over the simulated experiments, and each design with its cost from measured unit
costs (:data:`UNIT_COSTS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ttp_diag._checks import check_seed
from ttp_diag._summary import Result
from ttp_diag.analysis import planner_power as pp
from ttp_diag.exceptions import ConfigError, ConfigTypeError, ScoreTableError

__all__ = ["QUESTIONS", "UNIT_COSTS", "SamplePlan", "SamplePlanner", "UnitCosts", "plan_sample"]

QUESTIONS = ("gain", "difference", "prediction", "collapse", "hacking")


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per candidate to generate, label (ROUGE) and score with one reward model."""

    name: str
    generate_s: float
    label_s: float
    score_s: float
    source: str = ""

    def hours(self, candidates: float, n_models: int) -> float:
        """Hours to generate, label and score ``candidates`` with ``n_models`` models."""
        return candidates * (self.generate_s + self.label_s + n_models * self.score_s) / 3600.0


#: Measured unit costs (README, "Generating score tables" and "Planning an experiment").
UNIT_COSTS = {
    "cpu": UnitCosts(
        "this CPU machine", generate_s=1.034, label_s=0.00008, score_s=0.113,
        source="2 shared cores, load ~10: SmolLM2-135M prefix generation 1034 ms/candidate and "
               "MiniLM+LoRA scoring 113 ms/candidate (benchmarks/bench_costs.py, one run); "
               "ROUGE label 0.08 ms (2,000 demo headlines, median of 3 rounds)"),
    "gpu": UnitCosts(
        "one GPU", generate_s=1.0 / 686.0, label_s=0.00008, score_s=0.0023,
        source="SmolLM2-135M batched bf16 generation 686 candidates/s on one H100 (issue 12, "
               "256 rows per call; 509-686 by batch); scoring 2.3 ms/candidate is the paper's "
               "GPU figure (not measured here); ROUGE labels on the CPU"),
}


def _binom_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a proportion k/n."""
    from scipy import stats

    a = 1.0 - level
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def _ints(values, name: str, minimum: int) -> tuple[int, ...]:
    vals = tuple(int(v) for v in np.atleast_1d(values))
    if not vals or any(v < minimum for v in vals) or any(
            float(v) != float(w) for v, w in zip(vals, np.atleast_1d(values), strict=True)):
        raise ConfigError(f"{name} must be whole numbers >= {minimum}; got {values!r}.")
    return tuple(sorted(set(vals)))


class SamplePlanner:
    """Power of the package's tests as a function of users, queries and candidates.

    Parameters
    ----------
    a, b : str or SimulatedRM
        With a pilot: its score columns (``b`` may be None: no ``difference`` question).
        Without one: :class:`ttp_diag.SimulatedRM` truths, named ``score_a`` and ``score_b``.
    n : int, optional
        Best-of-N size of the gain questions. Default: the smallest design candidate count.
    users : sequence of int, default (10, 20, 40, 80, 160)
    queries : sequence of int, optional
        Queries per user; default the pilot's median (10 without a pilot).
    candidates : sequence of int, optional
        Candidates per query; default the pilot's median pool (16 without a pilot).
    questions : sequence of str, default all of :data:`QUESTIONS`
    target : float, default 0.8
        Power the recommended design must reach.
    test_level : float, default 0.05
        Significance level of every test (a test rejects when p <= test_level).
    share : float, default 0.25
        ``prediction`` succeeds when the predicted gain is within this share of its truth.
    n_sims : int, default 200
        Simulated experiments per design (the binomial interval of a power of 0.5 is then
        about +-0.07).
    n_null : int, default 39
        Null draws of each simulated collapse and hacking test. A Monte Carlo test with 39
        draws has exactly the size 0.05 (p in steps of 1/40) and at most slightly less power
        than the report's 1000 draws, so the planned power errs on the safe side.
    conservative : float, optional
        With a pilot: plan the gain and the difference for the limit of a one-sided interval
        at this level (e.g. 0.8) of the pilot's estimate (bootstrap over the pilot's users)
        instead of the estimate itself; the limit is 0 when the interval reaches past 0. A
        10-user pilot's estimate is itself noisy: planning at its point value reaches the
        target only about half of the time.
    collapse_rate : float, optional
        Plan collapse for this share of users collapsed (an effect of interest; their
        correlation the fitted collapsed one, or 0 where the pilot has none) instead of the
        pilot's ``alpha_corrected``; the other users keep the pilot's fitted correlations.
    failure : sequence of str, optional
        Models whose collapse and hacking are planned (default both ``a`` and ``b``; without a
        pilot they are named ``score_a`` and ``score_b``).
    collapse_threshold : float, default 0.1
    sigma : float, default 0.05
        Within-query reward spread without a pilot.
    costs : sequence of str or UnitCosts, default ("cpu", "gpu")
        Unit costs (keys of :data:`UNIT_COSTS` or :class:`UnitCosts`) for ``cost_<name>_h``.
    split : str or None, default "val"
    seed : int, default 0

    Examples
    --------
    >>> import ttp_diag as td
    >>> pilot = td.simulate_score_table(n_users=10, n_queries=6, n_candidates=8, seed=0)
    >>> plan = td.plan_sample(pilot, "score_prob", "score_det", users=[10, 40],
    ...                       questions=["difference"], n_sims=50)
    >>> plan.power_[["n_users", "power"]].to_numpy().round(2).tolist()
    [[10.0, 0.62], [40.0, 1.0]]
    """

    def __init__(self, a="score_prob", b="score_det", *, n: int | None = None,
                 users: Sequence[int] = (10, 20, 40, 80, 160),
                 queries: Sequence[int] | None = None,
                 candidates: Sequence[int] | None = None,
                 questions: Sequence[str] = QUESTIONS, target: float = 0.8,
                 test_level: float = 0.05, share: float = 0.25, n_sims: int = 200,
                 n_null: int = 39, conservative: float | None = None,
                 collapse_rate: float | None = None,
                 failure: Sequence[str] | None = None, collapse_threshold: float = 0.1,
                 sigma: float = 0.05,
                 costs: Sequence[str | UnitCosts] = ("cpu", "gpu"), split: str | None = "val",
                 seed: int = 0):
        self.a, self.b, self.n = a, b, n
        self.users, self.queries, self.candidates = users, queries, candidates
        self.questions, self.target, self.share = questions, target, share
        self.test_level = test_level
        self.n_sims, self.n_null, self.collapse_rate = n_sims, n_null, collapse_rate
        self.conservative = conservative
        self.collapse_threshold, self.sigma = collapse_threshold, sigma
        self.failure = failure
        self.costs, self.split, self.seed = costs, split, seed

    # ------------------------------------------------------------------ checks
    def _check(self):
        for name, lo, hi in (("target", 0.0, 1.0), ("test_level", 0.0, 1.0),
                             ("share", 0.0, None)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > lo
                    and (hi is None or v < hi)):
                rng = f"({lo:g}, {hi:g})" if hi is not None else f"> {lo:g}"
                raise ConfigError(f"{name} must be a number in {rng}; got {v!r}.")
        bad = [q for q in self.questions if q not in QUESTIONS]
        if bad or not len(self.questions):
            raise ConfigError(f"questions must be a non-empty subset of {QUESTIONS}; got "
                              f"{list(self.questions)!r}.")
        if int(self.n_sims) < 10 or int(self.n_null) < 19:
            raise ConfigError(f"need n_sims >= 10 and n_null >= 19 (p-values in steps of "
                              f"1/(n_null+1)); got n_sims={self.n_sims!r}, "
                              f"n_null={self.n_null!r}.")
        check_seed(self.seed)
        if self.conservative is not None and not 0.5 <= self.conservative < 1.0:
            raise ConfigError(f"conservative must be a one-sided confidence level in [0.5, 1), "
                             f"e.g. 0.8, or None; got {self.conservative!r}.")
        if self.collapse_rate is not None and not 0.0 <= self.collapse_rate < 1.0:
            raise ConfigError(f"collapse_rate must be a share of users in [0, 1) or None; got "
                             f"{self.collapse_rate!r}.")
        costs = []
        for c in self.costs:
            if isinstance(c, UnitCosts):
                costs.append((c.name.replace(" ", "_"), c))
            elif c in UNIT_COSTS:
                costs.append((c, UNIT_COSTS[c]))
            else:
                raise ConfigError(f"costs must name {sorted(UNIT_COSTS)} or be UnitCosts; got "
                                  f"{c!r}.")
        return costs

    # ------------------------------------------------------------------ fit
    def fit(self, pilot: pd.DataFrame | None = None) -> SamplePlanner:
        """Simulate every design of the grid (from ``pilot``, or from the stated truths)."""
        costs = self._check()
        questions = list(dict.fromkeys(self.questions))
        self._user_diffs, self._shifts = None, {}
        if pilot is None:
            src_pairs, truths, defaults = self._law_source()
        else:
            src_pairs, truths, defaults = self._pilot_source(pilot)
        a, b = self.a_, self.b_
        if b is None:
            questions = [q for q in questions if q != "difference"]
        self.users_ = _ints(self.users, "users", 2)
        self.queries_ = _ints(self.queries if self.queries is not None
                              else defaults["queries"], "queries", 1)
        self.candidates_ = _ints(self.candidates if self.candidates is not None
                                 else defaults["candidates"], "candidates", 2)
        if pilot is not None and max(self.candidates_) > defaults["max_pool"]:
            raise ConfigError(f"candidates {max(self.candidates_)} exceeds the pilot's largest "
                              f"pool ({defaults['max_pool']}): resampling cannot show candidates "
                              f"the pilot does not have; lower candidates, or plan larger pools "
                              f"from stated truths (pilot=None, td.SimulatedRM).")
        n = int(self.n) if self.n is not None else min(self.candidates_)
        if n < 2 or n > min(self.candidates_):
            raise ConfigError(f"n (Best-of-N) must lie in [2, smallest candidates value "
                              f"{min(self.candidates_)}]; got {self.n!r}: lower n or raise "
                              f"candidates.")
        self.n_ = n
        sels = [s for s in (a, b) if s is not None]
        specs: dict[tuple, tuple] = {}
        for q in questions:
            if q == "gain":
                specs[("gain", a, "random")] = ("gain", a, "random", self._shift("gain", n))
            elif q == "difference":
                specs[("difference", a, b)] = ("difference", a, b,
                                               self._shift("difference", n))
            elif q == "prediction":
                specs[("prediction", a, "")] = ("prediction", a, truths[("prediction", a)](n))
            else:
                failure = sels if self.failure is None else list(self.failure)
                bad = [s for s in failure if s not in sels]
                if bad:
                    raise ConfigError(f"failure names {bad}, which are not among the planned "
                                      f"models {sels}; pass some of them or leave it out.")
                for s in failure:
                    specs[(q, s, "")] = (q, s)
        rows = []
        ss = np.random.SeedSequence(self.seed)
        grid = [(u, k, m) for m in self.candidates_ for k in self.queries_ for u in self.users_]
        for (u, k, m), child in zip(grid, ss.spawn(len(grid)), strict=True):
            rng = np.random.default_rng(child)
            for which, source in src_pairs:
                sub = {key: spec for key, spec in specs.items()
                       if (key[0] in ("collapse", "hacking")) == (which == "failure")}
                if not sub:
                    continue
                res = pp.simulate_design(
                    source, n_users=u, n_queries=k, n_cand=m, n=n,
                    questions={key: spec for key, spec in sub.items()}, sims=int(self.n_sims),
                    level=self.test_level, share=self.share, threshold=self.collapse_threshold,
                    n_null=int(self.n_null), rng=rng)
                for key, flags in res.items():
                    hits, total = int(flags.sum()), int(flags.size)
                    lo, hi = _binom_ci(hits, total)
                    n_models = 2 if key[0] == "difference" else 1
                    est = truths[(key[0], key[1])](n)
                    planned = est + (self._shift(key[0], n)
                                     if key[0] in ("gain", "difference") else 0.0)
                    row = {"question": key[0], "selector": key[1], "versus": key[2],
                           "truth": planned, "pilot_estimate": est, "n_users": u,
                           "n_queries": k,
                           "n_candidates": m, "n": n, "power": hits / total, "power_low": lo,
                           "power_high": hi, "n_sims": total,
                           "total_candidates": u * k * m}
                    for cname, c in costs:
                        row[f"cost_{cname}_h"] = c.hours(u * k * m, n_models)
                    rows.append(row)
        self.power_ = pd.DataFrame(rows)
        self.costs_ = {cname: c for cname, c in costs}
        self.recommended_ = self._recommend()
        self.verdicts_ = [self._verdict(g) for _, g in
                          self.power_.groupby(["question", "selector", "versus"], sort=False)]
        return self

    def _shift(self, question: str, n: int) -> float:
        """Shift of every query's difference that moves the resampled world's mean difference
        from the pilot's estimate to its conservative limit (0 without ``conservative``)."""
        if self.conservative is None or self._user_diffs is None:
            return 0.0
        key = (question, n)
        if key not in self._shifts:
            d = self._user_diffs(question, n)
            rng = np.random.default_rng(self.seed)
            boot = rng.multinomial(d.size, np.full(d.size, 1.0 / d.size), size=4000) @ d / d.size
            est = float(d.mean())
            tail = 1.0 - float(self.conservative)
            limit = float(np.quantile(boot, tail if est >= 0 else 1.0 - tail))
            # a limit across 0 plans for no effect at all: the pilot does not exclude 0
            limit = max(limit, 0.0) if est >= 0 else min(limit, 0.0)
            self._shifts[key] = limit - est
        return self._shifts[key]

    def _law_source(self):
        from ttp_diag.simulate import SimulatedRM
        from ttp_diag.theory import expected_max_normal

        for name, rm in (("a", self.a), ("b", self.b)):
            if not (isinstance(rm, SimulatedRM) or (name == "b" and rm is None)):
                raise ConfigTypeError(f"without a pilot, {name} must be a td.SimulatedRM (the "
                                      f"truth to simulate); got {type(rm).__name__} {rm!r}. Pass "
                                      f"a pilot table to plan from score columns.")
        self.a_, self.b_ = "score_a", (None if self.b is None else "score_b")
        mix = {"score_a": pp.Mixture.from_rm(self.a)}
        if self.b is not None:
            mix["score_b"] = pp.Mixture.from_rm(self.b)
        sigma = float(self.sigma)
        source = pp.LawPools(mix, sigma=sigma)
        emax = lambda n: sigma * float(expected_max_normal(n))  # noqa: E731
        truths = {("gain", "score_a"): lambda n: mix["score_a"].rho_total * emax(n),
                  ("prediction", "score_a"): lambda n: mix["score_a"].rho_total * emax(n)}
        if self.b is not None:
            truths[("difference", "score_a")] = lambda n: (
                mix["score_a"].rho_total - mix["score_b"].rho_total) * emax(n)
        for s, m in mix.items():
            truths[("collapse", s)] = lambda n, m=m: m.alpha
            truths[("hacking", s)] = lambda n, m=m: m.beta
        if self.conservative is not None:
            raise ConfigError("conservative plans for a limit of a pilot's estimate; without a "
                              "pilot the stated truth is known: leave conservative out.")
        self.mixtures_ = mix
        self.source_ = "stated parameters (td.SimulatedRM) drawn from the law"
        return ([("main", source), ("failure", source)], truths,
                {"queries": (10,), "candidates": (16,)})

    def _pilot_source(self, pilot):
        from ttp_diag.diagnostics import inference as inf
        from ttp_diag.table import validate_score_table

        for name, s in (("a", self.a), ("b", self.b)):
            if not (isinstance(s, str) or (name == "b" and s is None)):
                raise ConfigTypeError(f"with a pilot table, {name} must be a score column name; "
                                      f"got {type(s).__name__} {s!r}.")
        sels = [s for s in (self.a, self.b) if s is not None]
        if len(set(sels)) < len(sels):
            raise ConfigError(f"a and b must be two different score columns; got {self.a!r} "
                              f"twice.")
        table = validate_score_table(pilot, scores=sels, split=self.split)
        self.a_, self.b_ = self.a, self.b
        source = pp.PilotPools(table, sels)
        nu = source.n_users
        # the pilot's own numbers are the truth of the resampled world
        uq = source.user_of_query
        cnt_u = np.bincount(uq, minlength=nu)

        def per_user_mean(v):
            return float((np.bincount(uq, weights=v, minlength=nu) / cnt_u).mean())

        def cache(n):
            return source.per_query(n, sels)

        a = self.a
        truths = {("gain", a): lambda n: per_user_mean(cache(n)["util"][a] - cache(n)["random"]),
                  ("prediction", a): lambda n: per_user_mean(cache(n)["rho"][a][0])
                  * per_user_mean(cache(n)["oracle"] - cache(n)["random"])}
        if self.b is not None:
            truths[("difference", a)] = lambda n: per_user_mean(cache(n)["util"][a]
                                                                - cache(n)["util"][self.b])
        rho = cache(2)["rho"]
        m_eff = source.pool

        def user_diffs(question, n):
            c = cache(n)
            v = c["util"][a] - (c["util"][self.b] if question == "difference" else c["random"])
            return np.bincount(uq, weights=v, minlength=nu) / cnt_u

        self._user_diffs = user_diffs
        mix = {}
        for s in sels:
            qs = inf.QueryStats(rho=rho[s][0], undefined=rho[s][1], pool=m_eff.astype(float),
                                user=uq, n_users=nu)
            est = inf.estimate(qs, np.arange(uq.size), uq, nu, threshold=self.collapse_threshold,
                               weights="user")
            if est.get("joint_mix") is None:
                raise ScoreTableError(f"{s!r}: every query of the pilot has constant scores or "
                                      f"rewards; collapse and hacking cannot be planned from it "
                                      f"(leave them out of questions).")
            alpha = (est["alpha_corrected"] if self.collapse_rate is None
                     else float(self.collapse_rate))
            mix[s] = pp.Mixture.from_fit(est["joint_mix"], alpha, est["beta_corrected"],
                                         fitted_collapse=est["alpha_corrected"] > 0)
            truths[("collapse", s)] = lambda n, v=alpha: float(v)
            truths[("hacking", s)] = lambda n, v=est["beta_corrected"]: float(v)
        self.mixtures_ = mix
        self.source_ = (f"pilot of {nu} users, {uq.size} queries (gains, differences and "
                        f"predictions resampled from it; collapse and hacking drawn from its "
                        f"fitted mixture)")
        if self.conservative is not None:
            self.source_ += (f"; gains and differences planned for the {self.conservative:.0%} "
                             f"one-sided limit of the pilot's estimate")
        if self.collapse_rate is not None:
            self.source_ += f"; collapse planned for a stated rate of {self.collapse_rate:g}"
        law = pp.LawPools(mix, sigma=1.0)
        defaults = {"queries": (int(np.median(cnt_u)),), "candidates": (int(np.median(m_eff)),),
                    "max_pool": int(m_eff.max())}
        return [("main", source), ("failure", law)], truths, defaults

    # ------------------------------------------------------------------ results
    def _recommend(self) -> pd.DataFrame:
        rows = []
        for _, g in self.power_.groupby(["question", "selector", "versus"], sort=False):
            ok = g[g["power"] >= self.target]
            if len(ok):
                best = ok.sort_values(["total_candidates", "n_users"]).iloc[0]
                rows.append({**best.to_dict(), "reached": True})
            else:
                best = g.sort_values(["power", "total_candidates"],
                                     ascending=[False, True]).iloc[0]
                rows.append({**best.to_dict(), "reached": False})
        return pd.DataFrame(rows)

    def _verdict(self, g: pd.DataFrame) -> str:
        from ttp_diag.names import selector_label

        q, a, b = g["question"].iloc[0], g["selector"].iloc[0], g["versus"].iloc[0]
        k0, m0 = min(self.queries_), min(self.candidates_)
        line = g[(g["n_queries"] == k0) & (g["n_candidates"] == m0)].sort_values("n_users")
        eff = f"{g['truth'].iloc[0]:+.4f}"
        if q in ("gain", "difference") and self.conservative is not None:
            eff += (f", the {self.conservative:.0%} one-sided limit of the pilot's "
                    f"{g['pilot_estimate'].iloc[0]:+.4f}")
        what = {
            "gain": f"the Best-of-{self.n_} gain of {selector_label(a)} over random ({eff})",
            "difference": f"the {selector_label(a)} - {selector_label(b)} difference at "
                          f"N={self.n_} ({eff})",
            "prediction": f"the law's predicted gain of {selector_label(a)} at N={self.n_} "
                          f"({g['truth'].iloc[0]:.4f}) within {self.share:.0%}",
            "collapse": f"collapse of {selector_label(a)} (true rate "
                        f"{g['truth'].iloc[0]:.2f})",
            "hacking": f"hacking by {selector_label(a)} (true rate {g['truth'].iloc[0]:.2f})",
        }[q]
        verb = "estimated" if q == "prediction" else "detected"
        first = line.iloc[0]
        s = (f"With {int(first['n_users'])} users ({k0} queries each, {m0} candidates) "
             f"{what} is {verb} {first['power']:.0%} [{first['power_low']:.0%}, "
             f"{first['power_high']:.0%}] of the time")
        hit = line[line["power"] >= self.target]
        if len(hit):
            h = hit.iloc[0]
            s += (f"; {int(h['n_users'])} users reach {self.target:.0%} ({h['power']:.0%} "
                  f"[{h['power_low']:.0%}, {h['power_high']:.0%}])")
        else:
            s += (f"; {int(line['n_users'].max())} users do not reach {self.target:.0%} "
                  f"({line['power'].iloc[-1]:.0%})")
        mix = self.mixtures_.get(a)
        if q == "collapse" and mix is not None:
            active = float(np.dot(mix.shares, mix.rhos))
            if active < self.collapse_threshold:
                s += (f" (the other users' mean correlation, {active:.2f}, is itself below the "
                      f"collapse threshold {self.collapse_threshold:g}, so the test cannot tell "
                      f"collapsed users from them at any size: a better reward model, not more "
                      f"data, is what would show collapse)")
        rec = self.recommended_
        r = rec[(rec["question"] == q) & (rec["selector"] == a) & (rec["versus"] == b)].iloc[0]
        if r["reached"]:
            cost = ", ".join(f"{r[f'cost_{c}_h']:.2g} h on {u.name}"
                             for c, u in self.costs_.items())
            s += (f". Cheapest design reaching it: {int(r['n_users'])} users x "
                  f"{int(r['n_queries'])} queries x {int(r['n_candidates'])} candidates "
                  f"({int(r['total_candidates']):,} candidates; {cost}).")
        else:
            s += (f". No design of the grid reaches {self.target:.0%} (best "
                  f"{r['power']:.0%} at {int(r['n_users'])} users x {int(r['n_queries'])} "
                  f"queries x {int(r['n_candidates'])} candidates).")
        return s

    def _check_fitted(self):
        if not hasattr(self, "power_"):
            from ttp_diag.exceptions import NotFittedError

            raise NotFittedError("this SamplePlanner is not fitted yet; call .fit(pilot) (or "
                                 "use td.plan_sample(pilot, ...)) first.")

    def result(self) -> SamplePlan:
        """The fitted plan as a result object (``.summary``, ``str``, ``.plot``)."""
        self._check_fitted()
        return SamplePlan(self)


class SamplePlan(Result):
    """Result of :func:`plan_sample`: ``power`` (every design), ``recommended`` (per question
    the cheapest design reaching the target), ``verdicts`` (sentences), ``summary``."""

    def __init__(self, planner: SamplePlanner):
        self.planner = planner
        self.power_ = planner.power_
        self.recommended_ = planner.recommended_
        self.verdicts_ = planner.verdicts_
        self.n_ = planner.n_
        self.target = planner.target
        self.test_level = planner.test_level
        self.source_ = planner.source_
        self.costs_ = planner.costs_

    def _summary_frame(self) -> pd.DataFrame:
        return self.recommended_

    def _text(self) -> str:
        head = (f"Sample plan ({self.source_}); power of each test at level {self.test_level:g} "
                f"over {int(self.power_['n_sims'].iloc[0])} simulated experiments per design "
                f"(95% Clopper-Pearson interval); target {self.target:.0%}.")
        costs = "\n".join(f"  {c}: {u.source}" for c, u in self.costs_.items())
        return head + "\n" + "\n".join("* " + v for v in self.verdicts_) + \
            "\nUnit costs:\n" + costs

    def plot(self, question: str = "difference", selector: str | None = None, ax=None):
        """Power against users, one line per queries-per-user value (and candidates)."""
        from ttp_diag.plots.planner import plot_power

        return plot_power(self, question=question, selector=selector, ax=ax)


def plan_sample(pilot: pd.DataFrame | None = None, a="score_prob", b="score_det",
                **settings) -> SamplePlan:
    """Plan an experiment: the power of the package's tests by users, queries and candidates.

    ``SamplePlanner(a, b, **settings).fit(pilot).result()``; see :class:`SamplePlanner` for the
    settings and :mod:`ttp_diag.analysis.planner_sample` for what is simulated.

    Returns
    -------
    SamplePlan
        ``power_`` (tidy: question, selector, versus, truth, n_users, n_queries,
        n_candidates, n, power, power_low, power_high, n_sims, total_candidates,
        cost_<unit>_h), ``recommended_`` (= ``summary``: per question the cheapest design with
        power >= target, ``reached``), ``verdicts_`` (one sentence per question), ``plot()``.

    Examples
    --------
    >>> import ttp_diag as td
    >>> truth = td.SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.3)
    >>> plan = td.plan_sample(None, truth, None, users=[10, 30], queries=[4], candidates=[8],
    ...                       questions=["gain"], n_sims=40)
    >>> bool(plan.recommended_["reached"].iloc[0])
    True
    """
    return SamplePlanner(a, b, **settings).fit(pilot).result()


def normal_power(effect: float, sd: float, n: int, test_level: float = 0.05) -> float:
    """Normal-approximation power of a two-sided paired test of a mean difference ``effect``
    with per-user standard deviation ``sd`` over ``n`` users.

    Examples
    --------
    >>> round(normal_power(0.5, 1.0, 32), 3)
    0.807
    """
    from scipy import stats

    z = stats.norm.ppf(1 - test_level / 2)
    shift = effect * math.sqrt(n) / sd
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))

