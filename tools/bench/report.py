#!/usr/bin/env python3
"""report.py - turn the drivers' JSON lines into the benchmark table.

Usage: report.py RAW.jsonl OUTDIR

Prints, for each size, every measurement with guildtab's figure and each
peer's figure and ratio (how many times guildtab is better: the peer's cost
over guildtab's, or guildtab's rate over the peer's), then the goals of
issue 4 with their verdicts. Checks that every driver saw the same data
(check_* values) and exits 1 if one did not. Writes OUTDIR/bench.json,
OUTDIR/bench.md (the same tables and goals in Markdown, as README shows
them) and, with gnuplot, OUTDIR/bench.png (lookup and fanout cost against
n).
"""
import json
import os
import platform
import statistics
import subprocess
import sys

PEERS = ["guildtab", "plain", "ck_ht", "lmdb", "ets", "redis", "floor"]
# metric: (label, unit, lower is better)
METRICS = {
    "lookup_ns": ("lookup, independent", "ns", True),
    "lookup_many_ns": ("lookup, batches of 64", "ns", True),
    "lookup_dep_ns": ("lookup, dependent", "ns", True),
    "miss_ns": ("lookup of absent key", "ns", True),
    "lookup_1p_mops": ("lookups, 1 process", "M/s", False),
    "lookup_2p_mops": ("lookups, 2 processes", "M/s", False),
    "lookup_scaling": ("2 processes / 1, paired", "x", False),
    "fanout_ms": ("fanout by worker (10%)", "ms", True),
    "fanout_cold_ms": ("fanout, caches flushed", "ms", True),
    "role_ms": ("role select (12.5%)", "ms", True),
    "count_ms": ("count online (scan)", "ms", True),
    "load_mps": ("load", "M/s", False),
    "load_many_mps": ("load, batches of 256", "M/s", False),
    "flip_mps": ("presence flips", "M/s", False),
    "flip_many_mps": ("presence flips, batch 64", "M/s", False),
    "churn_mps": ("delete+insert", "M/s", False),
    "bytes_member": ("memory, own count", "B/mbr", True),
    "rss_member": ("memory, RSS", "B/mbr", True),
}


def lcg_a(n):
    m, r, p = 1, n, 2
    while p * p <= r:
        if r % p == 0:
            m *= p
            while r % p == 0:
                r //= p
        p += 1
    if r > 1:
        m *= r
    if n % 4 == 0 and m % 4 != 0:
        m *= 2
    a = int(n * 0.6180339887) // m * m + 1
    return a % n or 1


def expected(n):
    a, i, act = lcg_a(n), 0, 0
    for _ in range(10000):
        act += i % 1000
        i = (a * i + 1) % n
    return {"check_misses": 0, "check_dep": act,
            "check_active": (n + 9) // 10,
            "check_role": n // 8 + (n % 8 > 3), "check_count": n}


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 0.1:
        return "%.2f" % v
    return "%.3g" % v


def ratio(metric, gt, peer):
    if gt is None or peer is None or gt <= 0 or peer <= 0:
        return None
    return peer / gt if METRICS[metric][2] else gt / peer


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(mem / 2**30, 1),
            "kernel": platform.release()}


def goals(R, runs=None):
    """The goals of issue 4: (what, measured, target, met) for each. R holds
    each figure (the median of a peer's runs); runs, if given, the runs'
    figures in the order they ran, as R but with lists."""
    out = []

    def get(n, peer, m):
        return R.get(n, {}).get(peer, {}).get(m)

    def over(a, b):
        return a / b if a and b else None

    def paired(n, peer, m, base, base_m):
        """peer's m over base's base_m. When both ran the same number of
        times, the median of the ratios run by run: bench.sh runs floor,
        plain and guildtab in turn, so their k-th runs are a minute apart,
        and a ratio within a round cancels the VM's drift between rounds.
        Else the ratio of the two figures."""
        xs = (runs or {}).get(n, {}).get(peer, {}).get(m)
        ys = (runs or {}).get(n, {}).get(base, {}).get(base_m)
        if xs and ys and len(xs) == len(ys) > 1 and all(xs) and all(ys):
            return statistics.median(x / y for x, y in zip(xs, ys))
        return over(get(n, peer, m), get(n, base, base_m))

    def goal(what, value, target, most):
        """most: the value must be at most the target (else at least).
        Not met or missed (None, n/a) when a figure it needs is missing."""
        met = None
        if value is not None and target is not None:
            met = value <= target if most else value >= target
        out.append({"goal": what, "measured": value, "target": target,
                    "met": met})

    n = 1000000
    if n in R:
        g = lambda m: get(n, "guildtab", m)
        f = g("fanout_ms")
        goal("1M: fanout by worker <= 0.5 ms", f, 0.5, True)
        for peer, times in (("plain", 10), ("lmdb", 30), ("ets", 300)):
            goal("1M: fanout >= %dx faster than %s" % (times, peer),
                 ratio("fanout_ms", f, get(n, peer, "fanout_ms")), times,
                 False)
        goal("1M: lookup within 1.25x of plain",
             paired(n, "guildtab", "lookup_ns", "plain", "lookup_ns"), 1.25,
             True)
        goal("1M: lookup, gt_lookup_many, within 1.25x of plain",
             paired(n, "guildtab", "lookup_many_ns", "plain", "lookup_ns"),
             1.25, True)
        for peer in ("lmdb", "ets"):
            other = get(n, peer, "lookup_ns")
            goal("1M: lookup >= 10x faster than %s" % peer,
                 ratio("lookup_ns", g("lookup_ns"), other), 10, False)
            goal("1M: lookup, gt_lookup_many, >= 10x faster than %s" % peer,
                 ratio("lookup_ns", g("lookup_many_ns"), other), 10, False)
        goal("1M: dependent lookup within 1.5x of one DRAM miss",
             paired(n, "guildtab", "lookup_dep_ns", "floor", "lookup_dep_ns"),
             1.5, True)
        s_pl = get(n, "plain", "lookup_scaling")
        goal("1M: 2-process scaling / plain's >= 0.9"
             + (" (plain's: %.2f)" % s_pl if s_pl else ""),
             paired(n, "guildtab", "lookup_scaling", "plain",
                    "lookup_scaling"), 0.9, False)
        for m, what, target in (("load_mps", "load", 5),
                                ("load_many_mps", "load, gt_insert_many", 5),
                                ("flip_mps", "presence flips", 10),
                                ("flip_many_mps",
                                 "presence flips, gt_update_flags_many", 10)):
            goal("1M: %s >= %d M/s" % (what, target), g(m), target, False)
        goal("1M: <= 100 B/member", g("bytes_member"), 100, True)
    big = 10000000
    if big in R and "plain" in R[big] and "guildtab" in R[big]:
        worst, worst_m = None, None
        for m in ("lookup_ns", "lookup_dep_ns", "miss_ns", "load_mps",
                  "flip_mps", "churn_mps"):
            gv, pv = get(big, "guildtab", m), get(big, "plain", m)
            r = over(gv, pv) if METRICS[m][2] else over(pv, gv)
            if r is not None and (worst is None or r > worst):
                worst, worst_m = r, m
        goal("10M: every per-op figure within 1.3x of plain (worst: %s)"
             % worst_m, worst, 1.3, True)
        # the fanout's growth back to back, and from cold caches at both
        # sizes (fanout_cold_ms): back to back, a large enough last-level
        # cache keeps the 1M set, while the 10M one comes from memory
        for m, what in (("fanout_ms", "fanout grows linearly"),
                        ("fanout_cold_ms", "cold fanout grows linearly")):
            grow = over(get(big, "guildtab", m), get(n, "guildtab", m))
            if grow is None:
                continue
            pg = over(get(big, "plain", m), get(n, "plain", m))
            goal("%s: (10M/1M cost) / 10 <= 1.3%s"
                 % (what, " (plain's scan: %.2f)" % (pg / 10) if pg else ""),
                 grow / 10, 1.3, True)
    return out


def main():
    if len(sys.argv) != 3:
        print("usage: report.py RAW.jsonl OUTDIR", file=sys.stderr)
        return 2
    R = {}
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            R.setdefault(d["n"], {}).setdefault(d["peer"], {}).setdefault(
                d["metric"], []).append(d["value"])

    # Every run's checks must hold; a peer run several times (BENCH_REPEAT)
    # is then reported by the median of its runs, metric by metric.
    ok = True
    runs = {}
    raw = {n: dict(peers) for n, peers in R.items()}  # each run's figures
    for n, peers in sorted(R.items()):
        exp = expected(n)
        for peer, v in peers.items():
            for k, vals in v.items():
                want = exp.get(k)
                if k == "check_hits" and "ops_lookup" in v:
                    want = v["ops_lookup"][0]
                for x in vals:
                    if want is not None and x != want:
                        print("CHECK FAILED: %s n=%d %s = %s, expected %s"
                              % (peer, n, k, x, want), file=sys.stderr)
                        ok = False
            runs[(n, peer)] = max(len(vals) for vals in v.values())
            peers[peer] = {k: statistics.median(vals) for k, vals in v.items()}

    mach = machine()
    G = goals(R, raw)
    text, md = [], []
    text.append("guildtab benchmark: %s, %s cores, %s GiB, Linux %s"
                % (mach["cpu"], mach["cores"], mach["memory_gib"],
                   mach["kernel"]))
    huge = os.environ.get("BENCH_HUGE") == "1"
    if huge:
        text[0] += ("; 2 MiB pages (BENCH_HUGE=1) for guildtab, plain and "
                    "the floor")
    text.append("ratio (x): how many times guildtab is better; < 1: the peer "
                "is better. floor = the memory itself, not an engine.")
    md.append(text[0] + ". Ratio (×): how many times guildtab is better "
              "(< 1: the peer is better); floor = the memory itself.")
    for n, peers in sorted(R.items()):
        cols = [p for p in PEERS if p in peers]
        title = "n = %s members, 10%% active" % format(n, ",")
        text.append("\n## " + title)
        md.append("\n### " + title + "\n")
        rep = ["%s %d" % (c, runs[(n, c)]) for c in cols if runs[(n, c)] > 1]
        if rep:
            text.append("median of several runs (%s); the rest: one run"
                        % ", ".join(rep))
            md.append("Median of several runs (%s); the rest: one run.\n"
                      % ", ".join(rep))
        head = "%-24s %-6s" % ("measurement", "unit") + "".join(
            "%12s" % c if c == "guildtab" else "%18s" % c for c in cols)
        text += [head, "-" * len(head)]
        md.append("| measurement | " + " | ".join(cols) + " |")
        md.append("| --- " * (len(cols) + 1) + "|")
        for m, (label, unit, _) in METRICS.items():
            if not any(m in peers[c] for c in cols):
                continue
            gt = peers.get("guildtab", {}).get(m)
            row = "%-24s %-6s" % (label, unit)
            cells = []  # the Markdown row's
            for c in cols:
                v = peers[c].get(m)
                r = ratio(m, gt, v) if c != "guildtab" else None
                cell = fmt(v) + (" (%s×)" % fmt(r) if r is not None else "")
                cells.append(cell if v is not None else "")
                row += ("%12s" if c == "guildtab" else "%18s") % (
                    cell.replace("×", "x") if v is not None else "-")
            text.append(row)
            md.append("| %s (%s) | %s |" % (label, unit.replace("x", "×"),
                                           " | ".join(cells)))
        if "floor" in peers and "seq_gbps" in peers["floor"]:
            gbps = peers["floor"]["seq_gbps"]
            text.append("floor: sequential read %.1f GB/s; count row = "
                        "reading n x 64 B once" % gbps)
            md.append("\nThe floor's sequential read: %.1f GB/s (its count "
                      "row is one read of n × 64 B)." % gbps)

    if G:
        paired = ("Goals that compare guildtab with plain or the floor take "
                  "the median of the run-by-run ratios where both ran "
                  "equally often.")
        text += ["\n## goals (issue 4)", paired]
        md += ["\n### Goals (issue 4)\n", paired + "\n",
               "| goal | measured | target | verdict |",
               "| --- | --- | --- | --- |"]
        for g in G:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[g["met"]]
            got = fmt(g["measured"]) if g["measured"] is not None else "-"
            text.append("%-66s %10s  target %-6s %s" % (
                g["goal"], got, fmt(g["target"]), verdict))
            md.append("| %s | %s | %s | %s |" % (
                g["goal"].replace("<=", "≤").replace(">=", "≥"), got,
                fmt(g["target"]),
                "**missed**" if verdict == "MISSED" else verdict))
    if not ok:
        text.append("\nSOME CHECKS FAILED: drivers disagree on the data "
                    "(above)")
        md.append("\n**Some checks failed**: drivers disagree on the data.")
    print("\n".join(text))

    out = sys.argv[2]
    with open(os.path.join(out, "bench.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "bench.json"), "w") as f:
        json.dump({"machine": mach, "huge_pages": huge, "checks_ok": ok,
                   "goals": G,
                   "results": {str(n): p for n, p in sorted(R.items())},
                   "runs": {"%d %s" % k: v for k, v in sorted(runs.items())}},
                  f, indent=1, sort_keys=True)
    plot(R, out)
    print("\nwrote %s/bench.json, bench.md%s" % (out, " and bench.png"
          if os.path.exists(os.path.join(out, "bench.png")) else ""))
    return 0 if ok else 1


def plot(R, out):
    sizes = sorted(R)
    if len(sizes) < 2:
        return
    series = []  # (metric, peer, which panel, title)
    for m, panel in (("lookup_ns", "lookup_ns"), ("lookup_many_ns", "lookup_ns"),
                     ("fanout_ms", "fanout_ms")):
        for p in PEERS:
            if sum(1 for n in sizes if R[n].get(p, {}).get(m)) >= 2:
                title = p + (" (gt_lookup_many)" if m == "lookup_many_ns" else "")
                series.append((m, p, panel, title))
    dat = os.path.join(out, "bench.dat")
    with open(dat, "w") as f:
        for m, p, _, _ in series:
            f.write("# %s %s\n" % (p, m))
            for n in sizes:
                v = R[n].get(p, {}).get(m)
                if v:
                    f.write("%d %g\n" % (n, v))
            f.write("\n\n")
    plots = {"lookup_ns": [], "fanout_ms": []}
    for i, (m, p, panel, title) in enumerate(series):
        plots[panel].append("'%s' index %d with linespoints lw 2 title '%s' "
                            "noenhanced" % (dat, i, title))
    script = """
set terminal pngcairo size 1200,500 font ',10'
set output '%s'
set multiplot layout 1,2 title 'guildtab vs peers: cost against guild size (one guild, 10%% active)'
set logscale xy
set grid
set key left top
set xlabel 'members'
set ylabel 'ns per lookup (independent)'
set title 'point lookup'
plot %s
set ylabel 'ms per fanout (active members by worker)'
set title 'fanout'
plot %s
unset multiplot
""" % (os.path.join(out, "bench.png"),
       ", ".join(plots["lookup_ns"]) or "NaN title 'no data'",
       ", ".join(plots["fanout_ms"]) or "NaN title 'no data'")
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("report: gnuplot failed: %s" % e, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
