#!/usr/bin/env python3
"""What-if calibration of the label-free guard's KL bound (guard.max_kl_initial) from align bench logs.

The align bench logs, per round, the health signals and what the product's GuardDecision decided with the spec's
thresholds (the run is never stopped). This script asks: had `max_kl_initial` been T instead, which round would the
guard have kept? A round trips when the logged decision tripped (the other thresholds, unchanged) or its
health/kl_initial exceeds T -- GuardDecision's rule is "any threshold crossed", so this is that rule with one bound
changed -- and the guard keeps the round before the first round that tripped (the last round when none did).

T is chosen on the validation stream of the choosing seeds (the largest T among those with the best mean validation
change over round 0), then reported on the test stream of the confirming seeds, paired by seed. For the default bound
and for the chosen one it then prints the issue's criterion per task and pooled, on test: the kept round's change over
round 0, round 1's gain and the share of it kept, and the stops (align_summary.stop_counts: false and missed stops).

A second, length-free signal is calibrated the same way: KL per response token, health/kl_initial divided by the mean
sampled length. The logs hold only health/length_drift, the relative change of that length since round 0, not the
length itself, so the length here is a nominal round-0 length per task times (1 + length_drift). The nominal length
comes from the task's definition (the tiny model's byte tokenizer: one token per answer character, plus the stop
token): `sort` answers 3 to 5 digits (5.0 tokens on average), `reverse` 3 to 6 letters (5.5). Within a task this is
health/kl_initial rescaled by a constant and the drift, so it can only choose other stops through the tasks' ratio of
lengths and the drift; it approximates, and does not replace, a measured per-token KL.

Two more rules add a second signal to the KL bound, an upper bound on health/score_entropy (guard.max_score_entropy)
or a lower bound on health/majority_agreement (guard.min_majority_agreement; logs from before it lack it, and a
missing signal never trips): a round trips when either crosses its bound. Both bounds are chosen together on the same validation stream (the pair with the best mean
validation change; a tie keeps the larger entropy bound, then the larger KL bound: the guard that trips least) and
reported on the confirming seeds' test stream, and on --fresh-seeds (seeds no choice of signal or bound has seen), where
given.

    python3 guard_calibration.py LOGS [MORE_LOGS ...] --choose-seeds 6-9 --confirm-seeds 10-15 [--fresh-seeds 16-20]

A third second signal, health/implicit_agreement (recorded by `self_consistent` and by the LLM judge with
judge.implicit_agreement; absent elsewhere, where it never trips), is bounded with the KL bound the same way
(guard.min_implicit_agreement).

A guard fixed beforehand (no choice made), per arm, on test:

    python3 guard_calibration.py LOGS [MORE_LOGS ...] --apply 0.1,0.1 --seeds 6-15   # max_kl_initial,min_majority_agreement
    python3 guard_calibration.py LOGS --apply 0.1,0.1,0.2 --seeds 16-25   # ... and min_implicit_agreement

Several folders are read as one (a second stream of seeds kept in its own folder). --arms a,b keeps those arms' runs
alone, to calibrate a guard for one kind of judge (e.g. --arms majority,likelihood: judges nothing trains).
"""
import math
import sys

from align_summary import interval, mean, parse, seed_range, stop_counts

GRID = [5, 2, 1, 0.5, 0.3, 0.25, 0.2, 0.15, 0.1, 0.075, 0.05, 0.02]
TOKEN_GRID = [1, 0.4, 0.2, 0.1, 0.06, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.004]
# Mean answer length in tokens at round 0 (answer characters + the stop token), from the tasks' definitions
# (SortDigitsTask: 3-5 digits; ReverseWordTask: 3-6 letters), not measured: the logs do not hold the length.
NOMINAL_LENGTH = {"sort": 5.0, "reverse": 5.5}
DEFAULT_BOUND = 5
ENTROPY_GRID = [1, 0.6, 0.5, 0.45, 0.4, 0.375, 0.35, 0.325, 0.3]
MAJORITY_GRID = [-1, 0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
# health/implicit_agreement (judge.implicit_agreement or self_consistent): a Kendall tau like majority agreement, same grid.
IMPLICIT_GRID = MAJORITY_GRID


def kl_per_sequence(task, signals):
    return signals.get("health/kl_initial", math.nan)


def kl_per_token(task, signals):
    length = NOMINAL_LENGTH.get(task, math.nan) * (1 + signals.get("health/length_drift", math.nan))
    return signals.get("health/kl_initial", math.nan) / length if length > 0 else math.nan


def above(value, bound):
    return not math.isnan(value) and value > bound


def below(value, bound):
    return not math.isnan(value) and value < bound


# Second signals, each bounded together with the KL bound: (metric, spec field, grid from the bound that trips least, crosses).
SECOND = [("health/score_entropy", "max_score_entropy", ENTROPY_GRID, above),
          ("health/majority_agreement", "min_majority_agreement", MAJORITY_GRID, below),
          ("health/implicit_agreement", "min_implicit_agreement", IMPLICIT_GRID, below)]


def kl_or(metric, crosses, kl_bound, bound):
    """1 when health/kl_initial is above kl_bound or the metric crosses its bound (read against 0.5), else 0."""
    return lambda task, s: float(above(s.get("health/kl_initial", math.nan), kl_bound) or crosses(s.get(metric, math.nan), bound))


def kl_per_token_measured(task, signals):
    return signals.get("health/kl_initial_per_token", math.nan)


SIGNALS = [("health/kl_initial (nats per sequence)", "max_kl_initial", kl_per_sequence, GRID),
           ("KL per token (nominal length x (1 + health/length_drift))", "bound per token", kl_per_token, TOKEN_GRID),
           # The product's own per-token signal, in the logs since it exists (missing in older ones: it never trips there).
           ("health/kl_initial_per_token (measured)", "max_kl_initial_per_token", kl_per_token_measured, TOKEN_GRID)]


def first_trip(task, trips, health, signal, bound):
    """The first round that trips (the logged decision, or the signal above the bound; NaN never trips), None if none."""
    return next((k for k in sorted(health) if trips.get(k) or signal(task, health[k]) > bound), None)


def kept_round(rounds, tripped):
    return max(rounds) if tripped is None else tripped - 1


def outcomes(runs, guards, seeds, signal, bound):
    """Per finished run (task, seed) in seeds: its rounds {round: (validation, test, ...)} and its first tripping round."""
    out = []
    for (task, arm), by_seed in sorted(guards.items()):
        for seed, (_, trips, health) in sorted(by_seed.items()):
            rounds = runs[(task, arm)].get(seed)
            if seed in seeds and rounds:
                out.append((task, seed, rounds, first_trip(task, trips, health, signal, bound)))
    return out


def changes(runs, guards, seeds, signal, bound, stream):
    """Per run in seeds: the kept round's accuracy on the stream (0 validation, 1 test) minus round 0's."""
    return [r[kept_round(r, t)][stream] - r[0][stream] for _, _, r, t in outcomes(runs, guards, seeds, signal, bound)]


def calibrate(runs, guards, choose, confirm, name, column, signal, grid):
    print(f"\n#### {name}\n\n| {column} | choosing seeds: validation change | confirming seeds: test change | runs |\n|---|---|---|---|")
    chosen, best = None, float("-inf")
    for bound in grid:
        picked = changes(runs, guards, choose, signal, bound, 0)
        confirmed = changes(runs, guards, confirm, signal, bound, 1)
        print(f"| {bound} | {interval(picked, True)} | {interval(confirmed, True)} | {len(picked)} / {len(confirmed)} |")
        if picked and mean(picked) > best:   # the grid runs from large to small: a tie keeps the larger bound
            chosen, best = bound, mean(picked)
    if chosen is not None:
        print(f"\nChosen on validation: {column} {chosen} (mean validation change {best:+.1f}); on the confirming seeds' "
              f"test stream: {interval(changes(runs, guards, confirm, signal, chosen, 1), True)} points against round 0.")
    return chosen


def calibrate_pair(runs, guards, choose, confirm, metric, field, grid, crosses):
    """Chooses (KL bound, the metric's bound) together on validation; prints, per bound of the metric, its best KL bound."""
    print(f"\n#### health/kl_initial and {metric} together (a round trips when either crosses its bound)\n\n"
          f"| {field} | best max_kl_initial with it | choosing seeds: validation change | confirming seeds: test change | runs |"
          "\n|---|---|---|---|---|")
    chosen, best = None, float("-inf")
    for bound in grid:
        row, row_best = None, float("-inf")
        for kl in GRID:
            picked = changes(runs, guards, choose, kl_or(metric, crosses, kl, bound), 0.5, 0)
            if picked and mean(picked) > row_best:   # both grids run from the bound that trips least: a tie keeps it
                row, row_best = kl, mean(picked)
        if row is None:
            continue
        rule = kl_or(metric, crosses, row, bound)
        picked, confirmed = changes(runs, guards, choose, rule, 0.5, 0), changes(runs, guards, confirm, rule, 0.5, 1)
        print(f"| {bound} | {row} | {interval(picked, True)} | {interval(confirmed, True)} | {len(picked)} / {len(confirmed)} |")
        if row_best > best:
            chosen, best = (row, bound), row_best
    if chosen is not None:
        print(f"\nChosen on validation: max_kl_initial {chosen[0]} with {field} {chosen[1]} (mean validation change {best:+.1f}).")
    return chosen


def criterion(runs, guards, seeds, signal, bound, title):
    """The issue's criterion on test, per task and pooled: the kept round against round 0, round 1's gain kept, stops
    (align_summary's false and missed stops, which judge the run going on; and trips that threw away a round at least
    as good on test as the round kept, which judge the choice)."""
    print(f"\n{title}, on test (percentage points, mean ± 95% t-interval, paired by seed):\n")
    print("| task | runs | kept round - round 0 | round 1 - round 0 | share of round 1's gain kept | last round - round 0 (unguarded) | "
          "kept round (runs) | false stops / stops judged | stops after the last round | missed stops / rounds it went on after | "
          "trips whose round was no worse than the kept one |\n|---|---|---|---|---|---|---|---|---|---|---|")
    results = outcomes(runs, guards, seeds, signal, bound)
    if not results:
        print("| (no finished run on these seeds) | 0 | - | - | - | - | - | - | - | - | - |")
        return
    for task in sorted({t for t, *_ in results}) + ["pooled"]:
        mine = [o for o in results if task in ("pooled", o[0])]
        kept = [r[kept_round(r, t)][1] - r[0][1] for _, _, r, t in mine]
        gain1 = [r[1][1] - r[0][1] for _, _, r, _ in mine if 1 in r]
        share = (f"{max(mean(kept), 0) / mean(gain1):.0%} ({mean(kept):+.1f} of {mean(gain1):+.1f})" if mean(gain1) > 0
                 else "- (no mean gain)") if gain1 else "-"
        counts = [sum(c) for c in zip(*(stop_counts({k: v[1] for k, v in r.items()}, t, max(r)) for _, _, r, t in mine))]
        picks = {}
        for _, _, r, t in mine:
            picks[kept_round(r, t)] = picks.get(kept_round(r, t), 0) + 1
        last = [r[max(r)][1] - r[0][1] for _, _, r, _ in mine]
        print(f"| {task} | {len(mine)} | {interval(kept, True)} | {interval(gain1, True)} | {share} | {interval(last, True)} | "
              + ", ".join(f"{k}: {n}" for k, n in sorted(picks.items())) + f" | {counts[1]} / {counts[0]} | {counts[2]} | "
              f"{counts[3]} / {counts[4]} | {sum(t is not None and r[t][1] >= r[t - 1][1] for _, _, r, t in mine)} |")


def seed_list(seeds):
    return ", ".join(map(str, sorted(seeds)))


def parse_all(folders):
    runs, guards = {}, {}
    for folder in folders:
        more_runs, _, more_guards = parse(folder)
        for merged, more in ((runs, more_runs), (guards, more_guards)):
            for key, by_seed in more.items():
                merged.setdefault(key, {}).update(by_seed)
    return runs, guards


def only_arms(guards, arms):
    """The runs of the named arms alone (None: every arm), to calibrate a guard for one kind of judge."""
    return guards if arms is None else {key: by_seed for key, by_seed in guards.items() if key[1] in arms}


def main(folders, choose, confirm, fresh_seeds=frozenset(), arms=None):
    runs, guards = parse_all(folders)
    guards = only_arms(guards, arms)
    print(f"Logs: {', '.join(folders)}; choosing seeds {sorted(choose)} (validation), confirming seeds {sorted(confirm)} (test)")
    chosen = [calibrate(runs, guards, choose, confirm, *s) for s in SIGNALS]
    fresh = choose | confirm
    for seeds in (fresh, confirm):   # nothing is chosen for the default: every seed reports it; the confirming ones compare
        criterion(runs, guards, seeds, kl_per_sequence, DEFAULT_BOUND,
                  f"The default guard (max_kl_initial {DEFAULT_BOUND}: nothing chosen) on seeds {seed_list(seeds)}")
    for (name, column, signal, _), bound in zip(SIGNALS, chosen):
        if bound is not None:
            criterion(runs, guards, confirm, signal, bound, f"The guard with {name} at the chosen {column} {bound} "
                      f"on the confirming seeds")
    for metric, field, grid, crosses in SECOND:
        pair = calibrate_pair(runs, guards, choose, confirm, metric, field, grid, crosses)
        if pair is None:
            continue
        rule = kl_or(metric, crosses, *pair)
        for seeds, which in ((confirm, "confirming"), (fresh_seeds, "fresh")):
            if seeds:
                criterion(runs, guards, seeds, rule, 0.5, f"The guard with max_kl_initial {pair[0]} and {field} "
                          f"{pair[1]} on the {which} seeds {seed_list(seeds)}")
    if fresh_seeds:
        for bound in (DEFAULT_BOUND, chosen[0]):
            if bound is not None:
                criterion(runs, guards, fresh_seeds, kl_per_sequence, bound, f"For comparison, max_kl_initial {bound} "
                          f"alone on the fresh seeds {seed_list(fresh_seeds)}")
        if chosen[2] is not None:
            criterion(runs, guards, fresh_seeds, kl_per_token_measured, chosen[2], f"For comparison, the measured "
                      f"max_kl_initial_per_token {chosen[2]} alone on the fresh seeds {seed_list(fresh_seeds)}")
    if None not in chosen:
        both = [(a[0], a[1], kept_round(a[2], a[3]), kept_round(b[2], b[3])) for a, b in zip(
            outcomes(runs, guards, fresh, kl_per_sequence, chosen[0]), outcomes(runs, guards, fresh, kl_per_token, chosen[1]))]
        differ = [f"{t} {s}: {a} / {b}" for t, s, a, b in both if a != b]
        print(f"\nKept round, per sequence {chosen[0]} against per token {chosen[1]}: the same in {len(both) - len(differ)} of "
              f"{len(both)} runs (seeds {seed_list(fresh)})" + (f"; they differ on {', '.join(differ)}." if differ else "."))


def apply_fixed(folders, seeds, kl_bound, majority_bound, arms=None, implicit_bound=-1.0):
    """A guard fixed beforehand (nothing chosen here), per arm of the logs: max_kl_initial with min_majority_agreement
    (and min_implicit_agreement, -1 by default: never trips, as in the spec)."""
    runs, guards = parse_all(folders)
    guards = only_arms(guards, arms)
    majority = kl_or("health/majority_agreement", below, kl_bound, majority_bound)
    rule = lambda task, s: float(majority(task, s) > 0.5 or below(s.get("health/implicit_agreement", math.nan), implicit_bound))
    print(f"Logs: {', '.join(folders)}; the guard max_kl_initial {kl_bound} with min_majority_agreement {majority_bound}"
          + (f" and min_implicit_agreement {implicit_bound}" if implicit_bound > -1 else "") + ", fixed beforehand")
    for arm in sorted({a for _, a in guards}):
        criterion(runs, {k: v for k, v in guards.items() if k[1] == arm}, seeds, rule, 0.5, f"Arm `{arm}`, seeds {seed_list(seeds)}")
    criterion(runs, guards, seeds, rule, 0.5, f"Every arm together, seeds {seed_list(seeds)}")


if __name__ == "__main__":
    args = sys.argv[1:]
    folders = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or not args[i - 1].startswith("--"))]
    opts = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    arms = set(opts["--arms"].split(",")) if "--arms" in opts else None
    if "--apply" in opts:
        # python3 guard_calibration.py LOGS --apply 0.1,0.1[,0.2] --seeds 6-15: max_kl_initial,min_majority_agreement
        # [,min_implicit_agreement] as given
        bounds = [float(x) for x in opts["--apply"].split(",")]
        apply_fixed(folders, seed_range(opts.get("--seeds", "1-100")), bounds[0], bounds[1], arms, *bounds[2:3])
    else:
        main(folders, seed_range(opts.get("--choose-seeds", "1-5")), seed_range(opts.get("--confirm-seeds", "6-15")),
             seed_range(opts["--fresh-seeds"]) if "--fresh-seeds" in opts else frozenset(), arms)
