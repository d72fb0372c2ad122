"""Mutation score per module from ``mutmut results --all true`` (one "name: status" a line).

    python scripts/mutation_score.py runs/mutmut-results.txt
"""
import sys
from collections import Counter, defaultdict


def main(path):
    counts = defaultdict(Counter)
    for line in open(path):
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        module = name.split(".x")[0]
        counts[module][status] += 1
    total = Counter()
    print(f"{'module':<24} {'mutants':>8} {'killed':>8} {'survived':>9} {'score':>7}")
    if total_unchecked := sum(c["not checked"] for c in counts.values()):
        print(f"({total_unchecked} mutants not checked yet: the run was interrupted)")
    for module in sorted(counts):
        c = counts[module]
        total.update(c)
        print(_row(module, c))
    print(_row("all", total))


def _row(name, c):
    # killed: a test failed; timeout: the mutant hangs the tests, which they detect;
    # "no tests": no core test runs the mutated function (counted as survived)
    killed = c["killed"] + c["timeout"]
    checked = killed + c["survived"] + c["no tests"]
    score = 100 * killed / checked if checked else 0.0
    survived = c["survived"] + c["no tests"]
    return f"{name:<24} {checked:>8} {killed:>8} {survived:>9} {score:>6.1f}%"


if __name__ == "__main__":
    main(sys.argv[1])
