#!/usr/bin/env python3
"""What-if calibration of a relative guard signal, from align bench logs: the rise of health/score_entropy from one
round to the next. Offline only: no spec field reads it yet.

Why this signal: the guard's absolute bounds (max_kl_initial, min_majority_agreement) were chosen on the `tiny` model and
stop every run of `small` on `reverse` after round 0 or 1, gaining or not (docs/experiments.md). There, the judge's
score entropy over a prompt's samples fell round after round while the policy gained (its samples agree on the right
answer) and rose while SPPO's shuffled-score control lost ground (its samples scatter). A rise is relative to the run
itself, so it needs no bound chosen per model.

Which policy a round's entropy describes: round r's samples come from the policy before round r's update, P_{r-1}
(round 1's from the warm-started P_0). So a rise at round r (r >= 2) says P_{r-1} scatters more than P_{r-2}; the rule
keeps P_{r-2}, the last policy not seen to scatter more (`--keep previous` keeps P_{r-1} instead, for comparison).
A round trips when its entropy exceeds the previous round's by more than the margin; the first such round decides.

The margin is chosen on the validation stream of the choosing logs (the largest margin among those with the best mean
validation change of the kept round over round 0, pooled over every run given) and reported on the test stream of the
confirming logs, per task and arm, with align_summary's false and missed stops.

    python3 guard_entropy_rise.py --choose DIR [DIR ...] --confirm DIR [DIR ...] [--keep two-back|previous]
"""
import math
import os
import sys

from align_summary import interval, mean, parse

MARGINS = [1, 0.05, 0.03, 0.02, 0.015, 0.01, 0.005, 0]   # 1: never trips (the entropy is at most 1)


def load(folders):
    """(folder, task, arm, seed) -> (rounds {round: (validation, test, ...)}, {round: score entropy}) for runs with guard
    lines (the folder in the key: two folders may hold the same task, arm and seed of different models)."""
    out = {}
    for folder in folders:
        runs, _, guards = parse(folder)
        for (task, arm), by_seed in guards.items():
            for seed, (_, _, health) in by_seed.items():
                rounds = runs[(task, arm)].get(seed)
                entropy = {k: s.get("health/score_entropy", math.nan) for k, s in health.items()}
                if rounds and 0 in rounds and any(not math.isnan(e) for e in entropy.values()):
                    out[(folder, task, arm, seed)] = (rounds, entropy)
    return out


def kept(rounds, entropy, margin, keep):
    """The round the rule keeps: before the first round whose entropy rose by more than margin, else the last round."""
    for r in sorted(entropy):
        if r >= 2 and r - 1 in entropy and entropy[r] - entropy[r - 1] > margin:
            return r - 2 if keep == "two-back" else r - 1
    return max(rounds)


def changes(runs, margin, keep, stream):
    return [rounds[kept(rounds, entropy, margin, keep)][stream] - rounds[0][stream] for rounds, entropy in runs.values()]


def report(runs, margin, keep, title):
    print(f"\n{title} (test, points against round 0, mean ± 95% t-interval, paired by seed):\n")
    print("| logs | task | arm | runs | kept round - round 0 | round 1 - round 0 | last round - round 0 (unguarded) | kept round (runs) | "
          "stops that threw away a round at least as good on test |\n|---|---|---|---|---|---|---|---|---|")
    groups = sorted({(os.path.basename(f), t, a) for f, t, a, _ in runs})
    for logs, task, arm in groups + [("all", "pooled", "every arm")]:
        mine = [v for (f, t, a, _), v in runs.items() if (os.path.basename(f), t, a) == (logs, task, arm) or task == "pooled"]
        picks, costly = {}, 0
        for rounds, entropy in mine:
            k = kept(rounds, entropy, margin, keep)
            picks[k] = picks.get(k, 0) + 1
            costly += k < max(rounds) and max(rounds[j][1] for j in rounds if j > k) >= rounds[k][1]
        print(f"| {logs} | {task} | {arm} | {len(mine)} | {interval([r[kept(r, e, margin, keep)][1] - r[0][1] for r, e in mine], True)} | "
              f"{interval([r[1][1] - r[0][1] for r, _ in mine if 1 in r], True)} | "
              f"{interval([r[max(r)][1] - r[0][1] for r, _ in mine], True)} | "
              + ", ".join(f"{k}: {n}" for k, n in sorted(picks.items())) + f" | {costly} |")


def main(choose_folders, confirm_folders, keep):
    choose, confirm = load(choose_folders), load(confirm_folders)
    print(f"Choosing logs (validation): {', '.join(choose_folders)} ({len(choose)} runs); confirming logs (test): "
          f"{', '.join(confirm_folders)} ({len(confirm)} runs); a rise at round r keeps "
          + ("P_{r-2}" if keep == "two-back" else "P_{r-1}"))
    print("\n| margin | choosing: validation change | confirming: test change |\n|---|---|---|")
    chosen, best = None, -math.inf
    for margin in MARGINS:
        picked = changes(choose, margin, keep, 0)
        print(f"| {margin} | {interval(picked, True)} | {interval(changes(confirm, margin, keep, 1), True)} |")
        if picked and mean(picked) > best:   # the grid runs from the margin that trips least: a tie keeps it
            chosen, best = margin, mean(picked)
    print(f"\nChosen on validation: margin {chosen} (mean validation change {best:+.2f}).")
    report(choose, chosen, keep, f"The chosen margin {chosen} on the choosing logs")
    report(confirm, chosen, keep, f"The chosen margin {chosen} on the confirming logs")
    report(confirm, 1, keep, "Unguarded (margin 1: never trips) on the confirming logs, for comparison")


if __name__ == "__main__":
    args = sys.argv[1:]
    groups, current = {"--choose": [], "--confirm": []}, None
    keep = "two-back"
    for i, a in enumerate(args):
        if a in groups:
            current = a
        elif a == "--keep":
            current = "keep"
        elif current == "keep":
            keep, current = a, None
        elif current:
            groups[current].append(a)
    if not groups["--choose"] or not groups["--confirm"] or keep not in ("two-back", "previous"):
        sys.exit(__doc__)
    main(groups["--choose"], groups["--confirm"], keep)
