#!/usr/bin/env python3
"""The slowest tests of a run, from the trx file the test project writes (docs/development.md).

Usage: python3 tests/slowest_tests.py tests/OnlineAlign.Tests/TestResults/tests.trx [count]
"""
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}


def seconds(duration: str) -> float:
    h, m, s = duration.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def main() -> None:
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    results = [(seconds(r.get("duration", "0:0:0")), r.get("outcome", "?"), r.get("testName", "?"))
               for r in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", NS)]
    total = sum(d for d, _, _ in results)
    # Per class too: a class's cluster fixture starts once, so its tests' durations leave out that start.
    classes: dict[str, float] = {}
    for d, _, name in results:
        cls = name.split("(")[0].rsplit(".", 1)[0]   # a theory's case names its arguments in parentheses
        classes[cls] = classes.get(cls, 0.0) + d
    print(f"{len(results)} tests, {total / 60:.1f} min of test time (tests run in parallel collections, so more than the wall clock)")
    print(f"\nslowest {count} tests:")
    for d, outcome, name in sorted(results, reverse=True)[:count]:
        print(f"{d:8.1f} s  {100 * d / total:5.1f} %  {outcome:8} {name}")
    print(f"\nslowest {count} classes:")
    for cls, d in sorted(classes.items(), key=lambda kv: -kv[1])[:count]:
        print(f"{d:8.1f} s  {100 * d / total:5.1f} %  {cls}")


if __name__ == "__main__":
    main()
