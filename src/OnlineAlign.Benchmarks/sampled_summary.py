#!/usr/bin/env python3
"""Sampled accuracy from align-bench logs: how often each round's policy samples a right answer.

Round r's generation phase samples the policy round r-1 trained (8 samples for each of 512 prompts no policy has been
trained on) and the task's checker scores them; the round line logs it ("sampled accuracy X %", or with
ONLINEALIGN_VERBOSE=1 "generation/accuracy=X"). So policy k's sampled accuracy is in round k+1's line, and a run of R
rounds measures policies 0 to R-1. Per arm: the change of policy k over policy 0, paired by seed; with --control ARM,
each arm minus that control, paired by seed and policy (both start from the same round 0, so policy 0's samples are the
same: checked). 95 % t-intervals.

Usage: sampled_summary.py FOLDER [--control shuffled-sppo]   (logs named TASK-ARM-SEED.log, as align_sweep.sh writes them)
"""
import argparse
import glob
import os
import re
import statistics

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201,
       12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086}
ROUND = re.compile(r"^\s+(\S+)\s+round (\d+): .*sampled accuracy ([\d.]+) ?%")
VERBOSE = re.compile(r"generation/accuracy=([\d.]+)")


def sampled(path):
    """Policy k's sampled accuracy (0-1) for k = 0, 1, ...: from round k+1's line, or the verbose metrics line before it."""
    values, pending = [], None
    for line in open(path, encoding="utf-8"):
        if m := VERBOSE.search(line):
            pending = float(m.group(1))
        elif m := ROUND.match(line):
            values.append(float(m.group(3)) / 100)
            pending = None
        elif re.match(r"^\s+\S+\s+round \d+: ", line) and pending is not None:
            values.append(pending)
            pending = None
    return values


def interval(xs):
    if len(xs) < 2:
        return f"{100 * xs[0]:+.1f} (1 seed)" if xs else "-"
    half = T95[len(xs) - 1] * statistics.stdev(xs) / len(xs) ** 0.5
    return f"{100 * statistics.mean(xs):+.1f} ± {100 * half:.1f} ({sum(x > 0 for x in xs)} of {len(xs)} above 0)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--control", help="the arm each other arm is paired with, by seed and policy")
    args = parser.parse_args()
    runs = {}
    for path in sorted(glob.glob(os.path.join(args.folder, "*.log"))):
        name = os.path.basename(path)[:-4]
        task, rest = name.split("-", 1)
        arm, seed = rest.rsplit("-", 1)
        values = sampled(path)
        if len(values) >= 2:
            runs[(task, arm, int(seed))] = values
    for task in sorted({t for t, _, _ in runs}):
        arms = sorted({a for t, a, _ in runs if t == task})
        policies = max(len(v) for (t, _, _), v in runs.items() if t == task)
        print(f"\n{task}: sampled accuracy of policy k minus policy 0's, points (paired by seed)\n")
        print("| arm | seeds | " + " | ".join(f"policy {k}" for k in range(1, policies)) + " |")
        print("|---|---|" + "---|" * (policies - 1))
        for arm in arms:
            seeds = sorted(s for t, a, s in runs if t == task and a == arm)
            cells = [interval([runs[(task, arm, s)][k] - runs[(task, arm, s)][0] for s in seeds if len(runs[(task, arm, s)]) > k])
                     for k in range(1, policies)]
            print(f"| `{arm}` | {seeds[0]}-{seeds[-1]} ({len(seeds)}) | " + " | ".join(cells) + " |")
        if args.control and any(a == args.control for a in arms):
            print(f"\n{task}: each arm minus `{args.control}`, sampled accuracy of the same policy index, points (paired by seed)\n")
            print("| arm | seeds | " + " | ".join(f"policy {k}" for k in range(1, policies)) + " |")
            print("|---|---|" + "---|" * (policies - 1))
            for arm in arms:
                if arm == args.control:
                    continue
                seeds = sorted(s for t, a, s in runs if t == task and a == arm and (task, args.control, s) in runs)
                if not seeds:
                    continue
                for s in seeds:
                    if runs[(task, arm, s)][0] != runs[(task, args.control, s)][0]:
                        raise SystemExit(f"{task} seed {s}: policy 0's samples differ between {arm} and {args.control}: not paired")
                cells = [interval([runs[(task, arm, s)][k] - runs[(task, args.control, s)][k] for s in seeds
                                   if min(len(runs[(task, arm, s)]), len(runs[(task, args.control, s)])) > k]) for k in range(1, policies)]
                print(f"| `{arm}` | {seeds[0]}-{seeds[-1]} ({len(seeds)}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
