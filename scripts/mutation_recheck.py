"""Re-check the surviving mutants of a `scripts/mutation.sh` run against new tests, quickly.

    python scripts/mutation_recheck.py WORKDIR TEST [TEST ...] [-k EXPR] [--only NAME ...] [--jobs 2] [--timeout 300]

WORKDIR is the MUTATION_WORKDIR of a finished or stopped run. Every mutant that mutmut lists as
not killed ("survived", "no tests") is run once against the given tests (pytest -x, in a child
process, with the mutant active through mutmut's own MUTANT_UNDER_TEST switch, in WORKDIR/mutants
with the given test files copied in from this working tree). A mutant is killed when the tests
fail (exit 1) or time out. The old tests already passed on these mutants, so only new tests can
kill them: running just the new tests gives the same verdict as mutmut's `RETEST_SURVIVORS=1`
re-run of all covering tests at a fraction of the CPU. Prints one JSON line per mutant and a
summary line {"rechecked", "killed", "survived"}; results are also written to
WORKDIR/recheck.json (merged over runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


def not_killed(work: Path) -> list[str]:
    out = subprocess.run(["mutmut", "results"], cwd=work, capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and status in ("survived", "no tests"):
            names.append(name)
    return names


def run_one(work: Path, name: str, tests: list[str], timeout: float, select: str | None) -> str:
    env = dict(os.environ, MUTANT_UNDER_TEST=name, PYTHONPATH="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("AVSYNTH_SHARED", str(Path(__file__).resolve().parent.parent.parent / "shared"))
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests,
                               *(["-k", select] if select else [])],
                              cwd=work / "mutants", env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)"
    return {0: "survived", 1: "killed"}.get(proc.returncode, f"error (exit {proc.returncode})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("tests", nargs="+")
    ap.add_argument("-k", dest="select", help="pytest -k expression (only these tests of the files)")
    ap.add_argument("--only", nargs="+", default=None, help="re-check only these mutants (names or suffixes)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    repo = Path(__file__).resolve().parent.parent
    work = args.workdir.resolve()
    for test in args.tests:  # bring the new test files into the mutated copy
        src = repo / test.split("::")[0]
        shutil.copy2(src, work / "mutants" / test.split("::")[0])
    # The tests must pass on the unmutated code in the mutated copy (data found, fixtures working):
    # otherwise every "failure" below would be counted as a kill.
    baseline = run_one(work, "", args.tests, args.timeout, args.select)
    if baseline != "survived":
        sys.exit(f"{work}: the tests do not pass without a mutant ({baseline}); fix that first")
    names = not_killed(work)
    if args.only:
        names = [n for n in names if any(n == o or n.endswith("." + o) for o in args.only)]
    done_path = work / "recheck.json"
    done = json.loads(done_path.read_text()) if done_path.exists() else {}
    verdicts = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_one, work, n, args.tests, args.timeout, args.select): n for n in names}
        for fut in as_completed(futures):  # written as they come, so a stopped re-check keeps its verdicts
            verdicts[futures[fut]] = fut.result()
            print(json.dumps({"mutant": futures[fut], "verdict": verdicts[futures[fut]]}), flush=True)
            done[futures[fut]] = verdicts[futures[fut]]
            done_path.write_text(json.dumps(done, indent=1, sort_keys=True))
    killed = sum(v.startswith("killed") for v in verdicts.values())
    print(json.dumps({"rechecked": len(verdicts), "killed": killed, "survived": len(verdicts) - killed,
                      "errors": sum(v.startswith("error") for v in verdicts.values())}))


if __name__ == "__main__":
    main()
