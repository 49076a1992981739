#!/usr/bin/env python3
"""Top lines of a perf profile, by symbol, with the binary's symbols resolved from its own
symbol table (Debian's perf 6.1 leaves a current Rust binary's addresses unresolved).

    perf-top.py <perf.data> <binary> [lines=30]
"""
import bisect
import collections
import re
import subprocess
import sys

data, binary = sys.argv[1], sys.argv[2]
lines = int(sys.argv[3]) if len(sys.argv) > 3 else 30
name = binary.rsplit("/", 1)[-1]

symbols = []
for line in subprocess.run(["nm", "-C", "--defined-only", binary], capture_output=True,
                           text=True).stdout.splitlines():
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[1].lower() in ("t", "w"):
        symbols.append((int(parts[0], 16), parts[2]))
symbols.sort()
starts = [s for s, _ in symbols]

# perf leaves unresolved addresses as file offsets: map them into the executable segments.
segments = []
for line in subprocess.run(["readelf", "-lW", binary], capture_output=True,
                           text=True).stdout.splitlines():
    fields = line.split()
    if fields[:1] == ["LOAD"] and "E" in fields[6:-1]:
        segments.append((int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)))


def virtual(offset):
    for start, vaddr, size in segments:
        if start <= offset < start + size:
            return offset - start + vaddr
    return offset


def short(symbol):
    symbol = re.sub(r"::h[0-9a-f]{16}$", "", symbol)
    return symbol if len(symbol) < 110 else symbol[:107] + "..."


report = subprocess.run(["perf", "report", "-i", data, "--no-children", "-g", "none", "--stdio",
                         "--sort", "dso,symbol", "--percent-limit", "0"],
                        capture_output=True, text=True).stdout
totals = collections.Counter()
for line in report.splitlines():
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$", line)
    if not m:
        continue
    percent, dso, _, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4)
    if dso == name and symbol.startswith("0x"):
        address = virtual(int(symbol, 16))
        i = bisect.bisect_right(starts, address) - 1
        symbol = short(symbols[i][1]) if i >= 0 else symbol
    totals[(dso, symbol)] += percent
for (dso, symbol), percent in totals.most_common(lines):
    print(f"{percent:6.2f}%  {dso:<18} {symbol}")
