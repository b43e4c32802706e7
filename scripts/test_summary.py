#!/usr/bin/python3
"""Prints one line, `N passed, N failed[, N skipped]`, for a `bazel test` run.

Usage: test_summary.py BEP_JSON [RESULTS...]
  (from: bazel test --keep_going --build_event_json_file=BEP_JSON //...
   and e.g. scripts/fuzz.sh --results=RESULTS, scripts/check_layers.sh
   --results=RESULTS)

Counts test cases from the test.xml files that the run's Build Event Protocol
file names (not a glob of bazel-testlogs, which holds stale results and only
the last config). A requested target that failed to build, a test.xml that is
missing or unreadable, and an unreadable BEP line count as one failure each; Bazel's synthetic
testcase for a crash or timeout (<error>) counts as a failure. See
BAZEL_NOTES.md section 6. Each "PASSED <target>" / "FAILED <target>" line of
a RESULTS file (one per fuzzer run or check) adds one passed / failed case; a
missing RESULTS file counts as one failure. Exits 1 if anything failed or nothing
passed.
"""
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET


def count(bep_path):
    passed = failed = skipped = 0
    with open(bep_path, encoding="utf-8") as bep:
        for line in bep:
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:  # a truncated file: Bazel was killed mid-run
                failed += 1
                continue
            if "targetCompleted" in ev["id"] and "aborted" not in ev and not ev.get("completed", {}).get("success"):
                failed += 1  # a requested target that failed to build
            for out in ev.get("testResult", {}).get("testActionOutput", []):
                if out["name"] != "test.xml":
                    continue
                try:
                    cases = list(ET.parse(urllib.parse.unquote(urllib.parse.urlparse(out["uri"]).path)).iter("testcase"))
                except (OSError, ET.ParseError):
                    failed += 1
                    continue
                for tc in cases:  # <error> = Bazel's synthetic testcase for a crash or timeout
                    bad = tc.find("failure") is not None or tc.find("error") is not None
                    skip = not bad and (tc.get("status") == "notrun" or tc.find("skipped") is not None)
                    failed, skipped, passed = failed + bad, skipped + skip, passed + (not bad and not skip)
    return passed, failed, skipped


def count_results(results_path):
    passed = failed = 0
    with open(results_path, encoding="utf-8") as results:
        for line in results:
            verdict = line.split(maxsplit=1)[0] if line.strip() else ""
            passed += verdict == "PASSED"
            failed += verdict != "PASSED" and bool(verdict)
    return passed, failed


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        passed, failed, skipped = count(argv[1])
    except OSError as e:
        print(f"test_summary: cannot read {argv[1]}: {e}", file=sys.stderr)
        passed, failed, skipped = 0, 1, 0
    for results_path in argv[2:]:
        try:
            more_passed, more_failed = count_results(results_path)
        except OSError as e:
            print(f"test_summary: cannot read {results_path}: {e}",
                  file=sys.stderr)
            more_passed, more_failed = 0, 1
        passed, failed = passed + more_passed, failed + more_failed
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line, flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
