#!/usr/bin/env python3
"""test_report.py - the benchmark's report (tools/bench/report.py) on made-up
figures: the ratios in its table, the medians of repeated runs, the goals'
verdicts (met, missed, n/a when a figure is missing), the check of the
drivers' data and its exit status.

usage: test_report.py PATH-TO-report.py
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

REPORT = None  # the path, from the command line
M = 1000000
BIG = 10000000


def load_report():
    spec = importlib.util.spec_from_file_location("report", REPORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def figures(**over):
    """R for goals(): 1M and 10M, every goal's figures on the met side of
    its target; over maps 'n peer metric' to a new value (None: removed)."""
    R = {
        M: {
            "guildtab": {"fanout_ms": 0.4, "fanout_cold_ms": 0.5,
                         "lookup_ns": 40.0,
                         "lookup_many_ns": 30.0, "lookup_dep_ns": 140.0,
                         "lookup_scaling": 1.9, "load_mps": 6.0,
                         "load_many_mps": 7.0, "flip_mps": 11.0,
                         "flip_many_mps": 12.0, "bytes_member": 95.0},
            "plain": {"fanout_ms": 7.0, "fanout_cold_ms": 8.0,
                      "lookup_ns": 35.0, "lookup_scaling": 2.0},
            "lmdb": {"fanout_ms": 20.0, "lookup_ns": 500.0},
            "ets": {"fanout_ms": 200.0, "lookup_ns": 450.0},
            "floor": {"lookup_dep_ns": 100.0},
        },
        BIG: {
            "guildtab": {"fanout_ms": 4.4, "fanout_cold_ms": 5.0,
                         "lookup_ns": 50.0,
                         "lookup_dep_ns": 200.0, "miss_ns": 50.0,
                         "load_mps": 5.0, "flip_mps": 10.0,
                         "churn_mps": 5.0},
            "plain": {"fanout_ms": 60.0, "fanout_cold_ms": 90.0,
                      "lookup_ns": 45.0,
                      "lookup_dep_ns": 190.0, "miss_ns": 46.0,
                      "load_mps": 5.5, "flip_mps": 11.0, "churn_mps": 5.5},
        },
    }
    for key, v in over.items():
        n, peer, metric = key.split()
        n = {"1M": M, "10M": BIG}[n]
        if v is None:
            R[n][peer].pop(metric, None)
        else:
            R[n][peer][metric] = v
    return R


def verdicts(rep, R):
    return {g["goal"]: g for g in rep.goals(R)}


def find(G, prefix):
    hits = [g for what, g in G.items() if what.startswith(prefix)]
    assert len(hits) == 1, "%d goals start with %r" % (len(hits), prefix)
    return hits[0]


class Goals(unittest.TestCase):
    def setUp(self):
        self.rep = load_report()

    def test_all_met(self):
        G = verdicts(self.rep, figures())
        self.assertEqual(len(G), 20)
        missed = [what for what, g in G.items() if g["met"] is not True]
        self.assertEqual(missed, [])

    def test_each_goal_can_miss(self):
        # one figure moved past its target misses exactly that goal
        cases = [
            ("1M guildtab fanout_ms", 0.6, "1M: fanout by worker <= 0.5 ms"),
            ("1M plain fanout_ms", 3.0, "1M: fanout >= 10x faster than plain"),
            ("1M lmdb fanout_ms", 11.0, "1M: fanout >= 30x faster than lmdb"),
            ("1M ets fanout_ms", 100.0, "1M: fanout >= 300x faster than ets"),
            ("1M plain lookup_ns", 30.0,
             "1M: lookup within 1.25x of plain"),
            ("1M lmdb lookup_ns", 390.0,
             "1M: lookup >= 10x faster than lmdb"),
            ("1M ets lookup_ns", 390.0, "1M: lookup >= 10x faster than ets"),
            ("1M floor lookup_dep_ns", 90.0,
             "1M: dependent lookup within 1.5x"),
            ("1M guildtab lookup_scaling", 1.7, "1M: 2-process scaling"),
            ("1M guildtab load_mps", 4.9, "1M: load >= 5 M/s"),
            ("1M guildtab load_many_mps", 4.9, "1M: load, gt_insert_many"),
            ("1M guildtab flip_mps", 9.9, "1M: presence flips >= 10 M/s"),
            ("1M guildtab flip_many_mps", 9.9,
             "1M: presence flips, gt_update_flags_many"),
            ("1M guildtab bytes_member", 101.0, "1M: <= 100 B/member"),
            ("10M guildtab flip_mps", 8.0, "10M: every per-op figure"),
            ("10M guildtab fanout_ms", 6.0, "fanout grows linearly:"),
            ("10M guildtab fanout_cold_ms", 7.0,
             "cold fanout grows linearly"),
        ]
        for key, value, prefix in cases:
            with self.subTest(key=key):
                G = verdicts(self.rep, figures(**{key: value}))
                missed = [w for w, g in G.items() if g["met"] is False]
                self.assertEqual(len(missed), 1, missed)
                self.assertTrue(missed[0].startswith(prefix), missed)

    def test_lookup_many_misses_alone(self):
        G = verdicts(self.rep, figures(**{"1M guildtab lookup_many_ns": 44.0}))
        self.assertIs(find(G, "1M: lookup, gt_lookup_many, within")["met"],
                      False)
        self.assertIs(find(G, "1M: lookup within")["met"], True)

    def test_ratios_and_targets(self):
        G = verdicts(self.rep, figures())
        self.assertAlmostEqual(find(G, "1M: fanout >= 10x")["measured"],
                               7.0 / 0.4)
        self.assertAlmostEqual(find(G, "1M: lookup within")["measured"],
                               40.0 / 35.0)
        self.assertAlmostEqual(
            find(G, "1M: lookup >= 10x faster than lmdb")["measured"],
            500.0 / 40.0)
        scaling = find(G, "1M: 2-process scaling")
        self.assertAlmostEqual(scaling["measured"], 1.9 / 2.0)
        self.assertAlmostEqual(scaling["target"], 0.9)
        self.assertIn("(plain's: 2.00)", scaling["goal"])
        # the worst 10M figure, each the way round that makes > 1 worse:
        # costs guildtab / plain, rates plain / guildtab
        worst = find(G, "10M: every per-op figure")
        self.assertIn("(worst: lookup_ns)", worst["goal"])
        self.assertAlmostEqual(worst["measured"], 50.0 / 45.0)
        G = verdicts(self.rep, figures(**{"10M guildtab churn_mps": 2.0}))
        worst = find(G, "10M: every per-op figure")
        self.assertIn("(worst: churn_mps)", worst["goal"])
        self.assertAlmostEqual(worst["measured"], 5.5 / 2.0)
        grow = find(G, "fanout grows linearly:")
        self.assertAlmostEqual(grow["measured"], 4.4 / 0.4 / 10)
        self.assertIn("(plain's scan: %.2f)" % (60.0 / 7.0 / 10), grow["goal"])
        cold = find(G, "cold fanout grows linearly")
        self.assertAlmostEqual(cold["measured"], 5.0 / 0.5 / 10)
        self.assertIn("(plain's scan: %.2f)" % (90.0 / 8.0 / 10), cold["goal"])

    def test_ratios_to_plain_and_floor_pair_runs(self):
        # runs in order: guildtab's k-th run over plain's (or the floor's)
        # k-th, the median of those ratios; each differs from the ratio of
        # the figures in R (40/35, 30/35, 140/100, 1.9/2.0)
        runs = {M: {"guildtab": {"lookup_ns": [40.0, 80.0, 30.0],
                                 "lookup_many_ns": [20.0, 60.0, 30.0],
                                 "lookup_dep_ns": [140.0, 300.0, 150.0],
                                 "lookup_scaling": [1.9, 1.2, 1.6]},
                    "plain": {"lookup_ns": [35.0, 50.0, 20.0],
                              "lookup_scaling": [2.0, 1.5, 1.9]},
                    "floor": {"lookup_dep_ns": [100.0, 200.0, 100.0]}}}
        G = {g["goal"]: g for g in self.rep.goals(figures(), runs)}
        self.assertAlmostEqual(find(G, "1M: lookup within")["measured"],
                               30.0 / 20.0)
        self.assertAlmostEqual(
            find(G, "1M: lookup, gt_lookup_many, within")["measured"],
            60.0 / 50.0)
        self.assertAlmostEqual(find(G, "1M: dependent lookup")["measured"],
                               1.5)
        self.assertAlmostEqual(find(G, "1M: 2-process scaling")["measured"],
                               1.6 / 1.9)
        # unequal numbers of runs: the ratio of the figures in R
        runs[M]["plain"]["lookup_ns"].pop()
        G = {g["goal"]: g for g in self.rep.goals(figures(), runs)}
        self.assertAlmostEqual(find(G, "1M: lookup within")["measured"],
                               40.0 / 35.0)

    def test_missing_figures_are_na(self):
        G = verdicts(self.rep, figures(**{"1M lmdb lookup_ns": None,
                                          "1M plain lookup_scaling": None,
                                          "1M guildtab flip_mps": None}))
        self.assertIsNone(find(G, "1M: lookup >= 10x faster than lmdb")["met"])
        self.assertIsNone(find(G, "1M: 2-process scaling")["met"])
        self.assertIsNone(find(G, "1M: presence flips >= 10 M/s")["met"])
        self.assertIs(find(G, "1M: lookup >= 10x faster than ets")["met"],
                      True)

    def test_sizes_without_goals(self):
        self.assertEqual(self.rep.goals({100000: figures()[M]}), [])
        R = figures()
        del R[BIG]["plain"]
        G = verdicts(self.rep, R)
        self.assertFalse(any(w.startswith("10M") for w in G))


def line(peer, n, metric, value):
    return json.dumps({"peer": peer, "n": n, "metric": metric,
                       "value": value}) + "\n"


class Run(unittest.TestCase):
    """report.py as bench.sh runs it, on a raw file."""

    def run_report(self, lines, huge="0"):
        with tempfile.TemporaryDirectory() as d:
            raw = os.path.join(d, "raw.jsonl")
            with open(raw, "w") as f:
                f.writelines(lines)
            env = dict(os.environ, PATH="/nonexistent",  # no gnuplot
                       BENCH_HUGE=huge)
            p = subprocess.run([sys.executable, REPORT, raw, d], env=env,
                               capture_output=True, text=True)
            with open(os.path.join(d, "bench.json")) as f:
                js = json.load(f)
            with open(os.path.join(d, "bench.md")) as f:
                md = f.read()
        return p, js, md

    def test_medians_ratios_and_files(self):
        n = 100000
        lines = [line("guildtab", n, "lookup_ns", v) for v in (50, 10, 40)]
        lines += [line("plain", n, "lookup_ns", v) for v in (20, 30, 90)]
        lines += [line("guildtab", n, "load_mps", 4.0),
                  line("plain", n, "load_mps", 8.0)]
        p, js, md = self.run_report(lines)
        self.assertEqual(p.returncode, 0, p.stderr)
        res = js["results"][str(n)]
        self.assertEqual(res["guildtab"]["lookup_ns"], 40)
        self.assertEqual(res["plain"]["lookup_ns"], 30)
        self.assertEqual(js["runs"]["%d guildtab" % n], 3)
        self.assertTrue(js["checks_ok"])
        # costs: the peer's over guildtab's; rates: guildtab's over the
        # peer's; each row once in the text and once in Markdown
        self.assertRegex(p.stdout, r"lookup, independent +ns +40\.0 +"
                                   r"30\.0 \(0\.75x\)")
        self.assertRegex(p.stdout, r"load +M/s +4\.00 +8\.00 \(0\.50x\)")
        self.assertIn("| lookup, independent (ns) | 40.0 | 30.0 (0.75×) |", md)
        self.assertIn("median of several runs (guildtab 3, plain 3)",
                      p.stdout)
        self.assertEqual(js["goals"], [])

    def test_huge_pages_are_named(self):
        lines = [line("guildtab", 100000, "lookup_ns", 40)]
        for huge in ("0", "1"):
            p, js, md = self.run_report(lines, huge)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(js["huge_pages"], huge == "1")
            first = p.stdout.splitlines()[0]
            self.assertEqual("2 MiB pages (BENCH_HUGE=1)" in first, huge == "1")
            self.assertEqual("2 MiB pages" in md.splitlines()[0], huge == "1")

    def test_a_check_that_disagrees_fails(self):
        n = 100000
        good = load_report().expected(n)["check_active"]
        lines = [line("guildtab", n, "check_active", good),
                 line("plain", n, "check_active", good + 1)]
        p, js, md = self.run_report(lines)
        self.assertEqual(p.returncode, 1)
        self.assertIn("CHECK FAILED: plain n=100000 check_active", p.stderr)
        self.assertFalse(js["checks_ok"])
        self.assertIn("SOME CHECKS FAILED", p.stdout)
        self.assertIn("**Some checks failed**", md)

    def test_hits_are_checked_against_the_lookups_made(self):
        n = 100000
        lines = [line("ck_ht", n, "ops_lookup", 1000),
                 line("ck_ht", n, "check_hits", 999)]
        p, _, _ = self.run_report(lines)
        self.assertEqual(p.returncode, 1)
        self.assertIn("check_hits = 999, expected 1000", p.stderr)

    def test_goals_pair_the_runs_in_the_file(self):
        lines = [line("guildtab", M, "lookup_ns", v) for v in (40, 80, 30)]
        lines += [line("plain", M, "lookup_ns", v) for v in (35, 50, 20)]
        p, js, md = self.run_report(lines)
        self.assertEqual(p.returncode, 0, p.stderr)
        goal = [g for g in js["goals"]
                if g["goal"] == "1M: lookup within 1.25x of plain"]
        self.assertEqual(len(goal), 1)
        self.assertAlmostEqual(goal[0]["measured"], 30.0 / 20.0)
        self.assertIn("the median of the run-by-run ratios", p.stdout)
        self.assertIn("the median of the run-by-run ratios", md)

    def test_verdicts_printed(self):
        lines = []
        for n, peers in figures(**{"1M guildtab fanout_ms": 0.6,
                                   "1M lmdb lookup_ns": None}).items():
            for peer, ms in peers.items():
                lines += [line(peer, n, m, v) for m, v in ms.items()]
        p, js, md = self.run_report(lines)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"1M: fanout by worker <= 0\.5 ms +0\.60 "
                                   r"+target 0\.50 +MISSED")
        self.assertRegex(p.stdout, r"1M: lookup >= 10x faster than lmdb +- "
                                   r"+target 10\.0 +n/a")
        self.assertIn("| 1M: fanout by worker ≤ 0.5 ms | 0.60 | 0.50 | "
                      "**missed** |", md)
        self.assertEqual(len(js["goals"]), 20)
        # the fanout's growth both ways: back to back, and from cold caches
        self.assertIn("| fanout, caches flushed (ms) | 0.50 | 8.00 (16.0×) |",
                      md)
        self.assertRegex(p.stdout, r"cold fanout grows linearly: .* 1\.00 "
                                   r"+target 1\.30 +met")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    REPORT = os.path.abspath(sys.argv.pop(1))
    unittest.main()
