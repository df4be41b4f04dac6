"""Can a frozen judge choose a run's rounds without labels? From align_sweep.sh's logs with "frozen judge round r" lines.

Usage: python3 frozen_judge_selection.py FOLDER

The align bench logs, for round 0 and every trained round, the round-0 model's LLM judge's mean score of that round's
policy's greedy answers to the validation prompts (no label is read: the judge is the warm-started model, frozen, so
training cannot move it along with the policy as it moves the policy's own judge). Per task and arm this prints, on
test and paired by seed:
  1. the score's change over round 0 per round (mean and 95% t-interval);
  2. whether it follows accuracy: the Pearson correlation, over every (seed, round >= 1), of its change over round 0
     with the change of validation and of test accuracy;
  3. the round it chooses (per seed, the round with the highest score, round 0 included; the earlier on ties) and the
     test change over round 0 there, beside round 1, the last round, and (with labels, for comparison) each seed's
     best validation round.
"""
import glob, math, os, re, sys
from collections import defaultdict

from align_summary import ROUND, ROUND0, interval, t_interval

FROZEN = re.compile(r"^\s+frozen judge round (\d+): .* (-?[\d.]+|NaN)\s*$")


def parse(folder):
    """(task, arm) -> seed -> {round: (validation, test, frozen judge score)} for rounds with all three."""
    runs = defaultdict(dict)
    for path in sorted(glob.glob(os.path.join(folder, "*.log"))):
        task = os.path.basename(path).split("-")[0]
        seed = arm = None
        accuracy, frozen = {}, {}
        for line in open(path, errors="replace"):
            if m := ROUND0.match(line):
                seed, arm = int(m.group(1)), m.group(2)
                accuracy[0] = (float(m.group(3)), float(m.group(4)))
            elif m := FROZEN.match(line):
                frozen[int(m.group(1))] = float(m.group(2))
            elif (m := ROUND.match(line)) and seed is not None:
                accuracy[int(m.group(2))] = (float(m.group(3)), float(m.group(4)))
        rounds = {r: (*accuracy[r], frozen[r]) for r in accuracy if r in frozen and math.isfinite(frozen[r])}
        if seed is not None and 0 in rounds and len(rounds) > 1:
            runs[(task, arm)][seed] = rounds
    return runs


def pearson(xs, ys):
    n = len(xs)
    if n < 3:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    return sxy / (sx * sy) if sx > 0 and sy > 0 else float("nan")


def main(folder):
    runs = parse(folder)
    if not runs:
        sys.exit(f"no log in {folder} has frozen judge lines")
    for task in sorted({t for t, _ in runs}):
        arms = sorted(a for t, a in runs if t == task)
        last = max(max(r) for a in arms for r in runs[(task, a)].values())
        print(f"### Task `{task}`: the round-0 judge's mean score of the validation greedy answers\n")
        print("Change of the score over round 0 (mean ± 95% t-interval over seeds; the score is in 0..5):\n")
        print("| arm | seeds | round 0 | " + " | ".join(f"round {r}" for r in range(1, last + 1)) + " |")
        print("|---|---|---|" + "---|" * last)
        for arm in arms:
            seeds = runs[(task, arm)]
            m0, h0 = t_interval([s[0][2] for s in seeds.values()])
            cells = []
            for r in range(1, last + 1):
                d = [s[r][2] - s[0][2] for s in seeds.values() if r in s]
                cells.append(f"{t_interval(d)[0]:+.3f} ± {t_interval(d)[1]:.3f}" if len(d) > 1 else "-")
            print(f"| {arm} | {len(seeds)} | {m0:.3f} ± {h0:.3f} | " + " | ".join(cells) + " |")
        print("\nHow it follows accuracy: Pearson r over every (seed, round >= 1) of the score's change over round 0 with the "
              "accuracy's change (points), and the round it chooses (per seed, the highest score, round 0 included), on test, "
              "paired by seed (points, 95% t-interval):\n")
        print("| arm | r with validation | r with test | chosen round - round 0 | round 1 - round 0 | last round - round 0 | "
              "rounds chosen (count) | with labels: best validation round - round 0 |")
        print("|---|---|---|---|---|---|---|---|")
        for arm in arms:
            seeds = runs[(task, arm)]
            ds, dv, dt = [], [], []
            chosen, first, final, labelled, counts = [], [], [], [], defaultdict(int)
            for rounds in seeds.values():
                for r in sorted(rounds):
                    if r >= 1:
                        ds.append(rounds[r][2] - rounds[0][2])
                        dv.append(rounds[r][0] - rounds[0][0])
                        dt.append(rounds[r][1] - rounds[0][1])
                pick = max(sorted(rounds), key=lambda r: (rounds[r][2], -r))
                counts[pick] += 1
                chosen.append(rounds[pick][1] - rounds[0][1])
                if 1 in rounds:
                    first.append(rounds[1][1] - rounds[0][1])
                final.append(rounds[max(rounds)][1] - rounds[0][1])
                best_val = max(sorted(rounds), key=lambda r: (rounds[r][0], -r))
                labelled.append(rounds[best_val][1] - rounds[0][1])
            rounds_chosen = ", ".join(f"{r}: {counts[r]}" for r in sorted(counts))
            print(f"| {arm} | {pearson(ds, dv):+.2f} | {pearson(ds, dt):+.2f} | {interval(chosen, True)} | {interval(first, True)} | "
                  f"{interval(final, True)} | {rounds_chosen} | {interval(labelled, True)} |")
        print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
