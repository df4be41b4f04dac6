"""Tables of the label-free experiment from align_sweep.sh's logs (one log per task, arm and seed).

Usage: python3 align_summary.py FOLDER [--baseline llm] [--test-seeds 6-15]

The protocol (docs/experiments.md): every run evaluates each round on the validation stream (what recipes, rounds and
hyperparameters are chosen on) and on the disjoint test stream (reported only). Per task this prints:
  1. test accuracy per arm and round (mean and 95% t-interval over seeds), and the change over round 0 paired by seed;
  2. paired differences between arms on test: each arm minus the baseline arm (default llm), by seed and round;
  3. the choice on validation: per arm the round with the best mean validation accuracy, and its test accuracy and paired
     change over round 0 there; the arm chosen on validation among the label-free ones, reported on test;
  4. per round the Kendall tau of the arm's judge against the verifier, CREAM's consistency C and the pairs kept, and
     (rounds 0 on, where the logs have it) the judge's accuracy on the checker-scored pairwise set (judge/pairwise_accuracy);
  5. the label-free guard, where the logs have its lines (the align bench records what the product's GuardDecision would
     decide with the spec's thresholds and lets the run go on): on test, paired by seed, the guard's best round minus
     round 0, the round-1 gain and the share of it the guard keeps, the unguarded last round minus round 0, the rounds
     that tripped and why, false stops (it stopped after round k though round k+1 had test accuracy >= round k's) and
     missed stops (it went on after round k though round k+1 lost); beside it, not label-free, each seed stopped at its
     own best validation round. Only runs that finished (their "guard: best round" line) count; the rule is never
     recomputed here.
With --test-seeds, seeds in that range are left out of every choice (steps 3) and the chosen arm and round are reported
on them alone: confirmation on seeds not used for choosing. Runs that did not finish a round are left out of it.
"""
import glob, math, os, re, sys
from collections import defaultdict

T975 = [float("nan"), 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]
ROUND0 = re.compile(r"^seed (\d+) (\S+): round 0 .*validation accuracy ([\d.]+) ?%, test accuracy ([\d.]+) ?%")
ROUND = re.compile(r"^\s+(\S+)\s+round (\d+): validation accuracy ([\d.]+) ?%, test accuracy ([\d.]+) ?%, pairs (\d+), C ([\d.NaN]+), "
                   r"tau\(judge, verifier\) (\S+?),? ")
PAIRWISE = re.compile(r"judge pairwise accuracy ([\d.]+|NaN)")
GUARD_ROUND = re.compile(r"^\s+guard round (\d+): (tripped \((.*)\)|not tripped);")
SIGNAL = re.compile(r"(health/\w+)=([-\d.eE+]+|NaN)")
GUARD_BEST = re.compile(r"^guard: best round (\d+) \((.*)\)$")
LABELLED = {"verifier"}          # arms that use labels: never chosen as the label-free recipe
CONTROLS = {"random-llm", "rft-llm", "sft-extra", "best-of-8", "shuffled-sppo"}


def t_interval(values):
    """The mean of values and the half-width of its 95% t-interval (NaN for one value)."""
    n = len(values)
    mean = sum(values) / n
    t = T975[n - 1] if n - 1 < len(T975) else 1.96
    half = t * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n) if n > 1 else float("nan")
    return mean, half


def interval(values, points=False):
    if not values:
        return "-"
    mean, half = t_interval(values)
    return f"{mean:+.1f} ± {half:.1f}" if points else f"{mean:.1f} % ± {half:.1f}"


def mean(values):
    return sum(values) / len(values) if values else float("nan")


def parse(folder):
    """(task, arm) -> seed -> {round: (validation, test, pairs, tau, C, pairwise accuracy)}, the first command line, and
    (task, arm) -> seed -> (best round, {round: tripped signals or None}) for runs whose guard verdict was logged."""
    runs, command, guards = defaultdict(dict), None, defaultdict(dict)
    for path in sorted(glob.glob(os.path.join(folder, "*.log"))):
        task = os.path.basename(path).split("-")[0]
        rounds, seed, arm, trips, best, health = {}, None, None, {}, None, {}
        for line in open(path, errors="replace"):
            if g := GUARD_ROUND.match(line):
                trips[int(g.group(1))] = g.group(3)
                health[int(g.group(1))] = {k: float(v) for k, v in SIGNAL.findall(line)}
                continue
            if g := GUARD_BEST.match(line.strip()):
                best = int(g.group(1))
                continue
            if line.startswith("$ ") and command is None:
                command = line.strip()
            pairwise = float(p.group(1)) if (p := PAIRWISE.search(line)) else float("nan")  # logs before it: NaN
            if m := ROUND0.match(line):
                seed, arm = int(m.group(1)), m.group(2)
                rounds[0] = (float(m.group(3)), float(m.group(4)), float("nan"), float("nan"), float("nan"), pairwise)
            elif (m := ROUND.match(line)) and seed is not None:
                rounds[int(m.group(2))] = (float(m.group(3)), float(m.group(4)), float(m.group(5)), float(m.group(7)), float(m.group(6)),
                                           pairwise)
        if seed is not None:
            runs[(task, arm)][seed] = rounds
            if best is not None:
                guards[(task, arm)][seed] = (best, trips, health)
    return runs, command, guards


# Health signals whose values are too small for two decimals (per response token, ~0.001-0.1 nats on the built-in tasks).
HEALTH_DIGITS = {"health/kl_initial_per_token": 4}


def fraction_interval(values, digits=2):
    """"mean ± half-width" of a 95% t-interval of values on their own scale (a tau, an accuracy in 0..1)."""
    if not values:
        return "-"
    m, half = t_interval(values)
    return f"{m:.{digits}f} ± {half:.{digits}f}"


def stop_counts(test, tripped, last):
    """One run's stops, judged on test ({round: accuracy}), the run stopping after round `tripped` (the first round that
    tripped; None: it never did) of rounds 1..last: (stops judged, false stops, stops after the last round, missed
    stops, rounds it went on after). A stop after round k is false when round k+1 still had test accuracy >= round k's
    (a stop after the last round cannot be judged); a missed stop is a round k it went on after whose next round lost."""
    judged = false = unjudged = 0
    if tripped is not None:
        if tripped + 1 in test:
            judged, false = 1, int(test[tripped + 1] >= test[tripped])
        else:
            unjudged = 1
    went_on = [k for k in range(1, tripped if tripped is not None else last + 1) if k + 1 in test]
    return judged, false, unjudged, sum(test[k + 1] < test[k] for k in went_on), len(went_on)


def guard_tables(task, arms, runs, guards):
    """Section 5: the guard's choice against the unguarded trajectory on test, paired by seed."""
    armed = [a for a in arms if guards.get((task, a))]
    if not armed:
        return
    print("\nThe label-free guard with the spec's thresholds (recorded, the run not stopped), on test, paired by seed "
          "(percentage points, 95% t-interval; runs that finished):\n")
    print("| arm | seeds | guard's best round - round 0 | round 1 - round 0 | share of round 1's gain kept | "
          "last round - round 0 | best round chosen (count) | for comparison, with labels: each seed's best validation round - round 0 |"
          "\n|---|---|---|---|---|---|---|---|")
    details = []
    for a in armed:
        g, r = guards[(task, a)], runs[(task, a)]
        seeds = sorted(s for s in g if s in r)
        last = {s: max(r[s]) for s in seeds}
        chosen = [r[s][g[s][0]][1] - r[s][0][1] for s in seeds]
        gain1 = [r[s][1][1] - r[s][0][1] for s in seeds if 1 in r[s]]
        final = [r[s][last[s]][1] - r[s][0][1] for s in seeds]
        kept = (f"{mean(chosen) / mean(gain1):.0%} ({mean(chosen):+.1f} of {mean(gain1):+.1f})" if gain1 and mean(gain1) > 0
                else f"- (round 1 gained {mean(gain1):+.1f} on average)" if gain1 else "-")
        # Not label-free: each seed stopped at its own best validation round (ties: the earlier), reported on test.
        labelled = [r[s][max(r[s], key=lambda k: (r[s][k][0], -k))][1] - r[s][0][1] for s in seeds]
        picks = defaultdict(int)
        for s in seeds:
            picks[g[s][0]] += 1
        print(f"| {a} | {len(seeds)} | {interval(chosen, True)} | {interval(gain1, True)} | {kept} | {interval(final, True)} | "
              + ", ".join(f"round {k}: {n}" for k, n in sorted(picks.items())) + f" | {interval(labelled, True)} |")
        false_stops, judged_stops, unjudged, missed, went_on, signals = 0, 0, 0, 0, 0, defaultdict(int)
        for s in seeds:
            best, trips, _ = g[s]
            tripped = min((k for k, why in trips.items() if why), default=None)
            for k, why in trips.items():
                for crossing in (why or "").split("; "):
                    if crossing:
                        signals[crossing.split(" ")[0]] += 1
            counts = stop_counts({k: v[1] for k, v in r[s].items()}, tripped, last[s])
            judged_stops, false_stops, unjudged, missed, went_on = (a + b for a, b in zip(
                (judged_stops, false_stops, unjudged, missed, went_on), counts))
        details.append((a, len(seeds), judged_stops, false_stops, unjudged, missed, went_on, dict(signals)))
    for a in armed:
        g = guards[(task, a)]
        names = sorted({k for s in g for h in g[s][2].values() for k in h})
        rounds = sorted({k for s in g for k in g[s][2]})
        print(f"\nHealth signals of `{a}` per round (mean ± 95% t-interval over the finished runs; what the guard reads):\n")
        print("| signal | " + " | ".join(f"round {k}" for k in rounds) + " |\n|---|" + "---|" * len(rounds))
        for name in names:
            print(f"| {name} | " + " | ".join(fraction_interval([g[s][2][k][name] for s in g if k in g[s][2] and name in g[s][2][k]
                                                                  and not math.isnan(g[s][2][k][name])], HEALTH_DIGITS.get(name, 2))
                                              for k in rounds) + " |")
    print("\n| arm | runs | runs the guard stopped (next round measured) | false stops | stopped after the last round "
          "(not judged) | missed stops / rounds it went on after | tripped signals (rounds, any round) |\n|---|---|---|---|---|---|---|")
    for a, n, judged_stops, false_stops, unjudged, missed, went_on, signals in details:
        print(f"| {a} | {n} | {judged_stops} | {false_stops} | {unjudged} | {missed} / {went_on} | "
              + (", ".join(f"{k}: {v}" for k, v in sorted(signals.items())) or "none") + " |")


def seed_range(text):
    """Seeds from "6-15" or a comma-separated list of seeds and ranges ("1-15,21-30")."""
    seeds = set()
    for part in filter(None, (text or "").split(",")):
        lo, _, hi = part.partition("-")
        seeds |= set(range(int(lo), int(hi or lo) + 1))
    return seeds


def main(folder, baseline="llm", test_seeds=()):
    runs, command, guards = parse(folder)
    print(f"Logs: {folder}; first command: `{command}` (each log holds its own)\n")
    for task in sorted({t for t, _ in runs}):
        arms = [a for t, a in runs if t == task]
        last = max(max(r) for a in arms for r in runs[(task, a)].values())
        seeds = sorted({s for a in arms for s in runs[(task, a)]})
        choose = [s for s in seeds if s not in test_seeds]
        confirm = [s for s in seeds if s in test_seeds]
        rounds_head = " | ".join(f"round {r}" for r in range(1, last + 1))
        runs_of = lambda a, pool: [runs[(task, a)][s] for s in pool if s in runs[(task, a)]]

        print(f"### Task `{task}`: test accuracy (mean ± 95% t-interval over seeds {', '.join(map(str, seeds))})\n")
        print(f"| arm | " + " | ".join(f"round {r}" for r in range(last + 1)) + " |\n|---|" + "---|" * (last + 1))
        for a in arms:
            print(f"| {a} | " + " | ".join(interval([r[k][1] for r in runs[(task, a)].values() if k in r]) for k in range(last + 1)) + " |")
        print(f"\nTest: change over round 0, paired by seed (percentage points, 95% t-interval):\n")
        print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
        for a in arms:
            print(f"| {a} | " + " | ".join(interval([r[k][1] - r[0][1] for r in runs[(task, a)].values() if k in r], True)
                                           for k in range(1, last + 1)) + " |")

        if (task, baseline) in runs:
            base = runs[(task, baseline)]
            print(f"\nTest: each arm minus `{baseline}`, paired by seed and round (percentage points, 95% t-interval):\n")
            print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
            for a in arms:
                if a == baseline:
                    continue
                cells = []
                for k in range(1, last + 1):
                    d = [r[k][1] - base[s][k][1] for s, r in runs[(task, a)].items() if k in r and s in base and k in base[s]]
                    cells.append(interval(d, True))
                print(f"| {a} | " + " | ".join(cells) + " |")

        print(f"\nChosen on validation (seeds {', '.join(map(str, choose)) or '-'}): per arm the round with the best mean validation "
              f"accuracy, and on test there (seeds {', '.join(map(str, confirm or choose))}):\n")
        print("| arm | chosen round | validation | test | test change over round 0 |\n|---|---|---|---|---|")
        chosen = {}
        for a in arms:
            pool = runs_of(a, choose)
            means = {k: mean([r[k][0] for r in pool if k in r]) for k in range(last + 1)}
            means = {k: v for k, v in means.items() if not math.isnan(v)}
            if not means:
                continue
            k = max(means, key=lambda j: (means[j], -j))  # ties: the earlier round
            chosen[a] = (k, means[k])
            report = [r for r in runs_of(a, confirm or choose) if k in r]
            print(f"| {a} | {k} | {means[k]:.1f} % | {interval([r[k][1] for r in report])} | "
                  f"{interval([r[k][1] - r[0][1] for r in report], True)} |")
        free = {a: v for a, v in chosen.items() if a not in LABELLED and a not in CONTROLS}
        if free:
            a = max(free, key=lambda x: free[x][1])
            print(f"\nThe label-free recipe chosen on validation: `{a}`, round {free[a][0]} (reported on test above"
                  + (f", on seeds {', '.join(map(str, confirm))} that were not used for choosing)." if confirm else ").") + "\n")

        print("\nKendall tau of the judge against the verifier (mean ± 95% t-interval over seeds):\n")
        print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
        for a in arms:
            print(f"| {a} | " + " | ".join(fraction_interval([r[k][3] for r in runs[(task, a)].values() if k in r and not math.isnan(r[k][3])])
                                           for k in range(1, last + 1)) + " |")
        print("\nJudge accuracy on the checker-scored pairwise set, judge/pairwise_accuracy (reported only; ties and unscored "
              "pairs count half; mean ± 95% t-interval over seeds; round 0: the round-0 judge):\n")
        print(f"| arm | " + " | ".join(f"round {r}" for r in range(last + 1)) + " |\n|---|" + "---|" * (last + 1))
        for a in arms:
            print(f"| {a} | " + " | ".join(fraction_interval([r[k][5] for r in runs[(task, a)].values() if k in r and not math.isnan(r[k][5])], 3)
                                           for k in range(last + 1)) + " |")
        for what, idx, fmt in (("CREAM consistency C", 4, "{:.2f}"), ("pairs kept", 2, "{:.0f}")):
            print(f"\n{what} (mean over seeds):\n")
            print(f"| arm | {rounds_head} |\n|---|" + "---|" * last)
            for a in arms:
                cells = []
                for k in range(1, last + 1):
                    v = [r[k][idx] for r in runs[(task, a)].values() if k in r and not math.isnan(r[k][idx])]
                    cells.append(fmt.format(sum(v) / len(v)) if v else "-")
                print(f"| {a} | " + " | ".join(cells) + " |")
        guard_tables(task, arms, runs, guards)
        print()


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {args[i]: args[i + 1] for i in range(1, len(args) - 1, 2)}
    main(args[0], opts.get("--baseline", "llm"), seed_range(opts.get("--test-seeds", "")))
