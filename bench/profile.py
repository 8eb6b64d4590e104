#!/usr/bin/env python3
"""Instructions per request of every proxy path, by function (callgrind).

    python3 bench/profile.py                  all proxy paths, report to bench/results/
    python3 bench/profile.py --requests 4000  more requests per path

Each proxy (nginx, pingora-bare, tollgate, tollgate-full, configured as in
bench/run.py) runs alone under `valgrind --tool=callgrind` in front of the
mock, which runs natively. After a warm-up, the counters are zeroed
(`callgrind_control --zero`), exactly N requests are sent at c=8 from a
Python client, and the counters are dumped: the dump holds the instructions
that N requests cost the proxy (every thread), nothing of its start-up. The
instruction count is deterministic, unlike wall or CPU time on a shared
machine, so it is the figure to compare changes by; bench/run.py measures the
same paths by time.

The report, bench/results/profile-<UTC time>.md, gives the instructions per
request of every path, the top functions of each (self and inclusive), and
the itemised difference tollgate − pingora-bare and tollgate-full −
pingora-bare: the functions whose self cost differs most between them.
Standard library only (and valgrind).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  the benchmark's own path setup

PROXIES = ("nginx", "pingora-bare", "tollgate", "tollgate-full")


def drive(port: int, path: str, n: int, conns: int) -> None:
    """`n` chat requests over `conns` keep-alive connections; every answer must be 200."""
    left = [n]
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    if left[0] == 0 or errors:
                        return
                    left[0] -= 1
                c.request("POST", path, body=run.BODY, headers={
                    "Content-Type": "application/json", "apikey": run.CLIENT_KEY})
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(f"status {r.status}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            c.close()

    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise run.BenchError(f"profile requests failed: {errors[:3]}")


def control(*args: str) -> None:
    r = subprocess.run(["callgrind_control", *args], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise run.BenchError(f"callgrind_control {' '.join(args)}: {r.stdout}{r.stderr}")


def parse_dump(path: Path) -> tuple[int, dict[str, int], dict[str, int]]:
    """(total Ir, self Ir by function, inclusive Ir by function) from a
    callgrind dump. Read directly rather than through callgrind_annotate,
    which attributes the whole run to every function that was on a stack
    when the counters were zeroed."""
    ids: dict[str, str] = {}

    def name(v: str) -> str:
        m = re.match(r"\((\d+)\)(?: (.*))?", v)
        if not m:
            return function_name(v)
        if m.group(2) is not None:
            ids[m.group(1)] = function_name(m.group(2))
        return ids.get(m.group(1), v)

    own: dict[str, int] = {}
    calls: dict[tuple[str, str], int] = {}
    fn = callee = ""
    after_calls = False
    total = 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                v = int(parts[1])
                if after_calls:  # the inclusive cost of the call just named
                    calls[(fn, callee)] = calls.get((fn, callee), 0) + v
                    after_calls = False
                else:
                    own[fn] = own.get(fn, 0) + v
            elif line.startswith("fn="):
                fn = name(line[3:].strip())
            elif line.startswith("cfn="):
                callee = name(line[4:].strip())
            elif line.startswith("calls="):
                after_calls = True
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    # Inclusive: a function's own cost and its calls' (recursion counted once).
    incl = dict(own)
    for (caller, callee_), v in calls.items():
        if caller != callee_:
            incl[caller] = incl.get(caller, 0) + v
    return total or sum(own.values()), own, incl


def function_name(entry: str) -> str:
    """One name for a function in every binary: without a symbol hash."""
    return re.sub(r"::h[0-9a-f]{16}", "", entry)


def short(name: str, width: int = 110) -> str:
    name = name.replace("|", "\\|")
    return name if len(name) <= width else name[:width - 1] + "…"


def profile_path(name: str, bins: Path, tmp: Path, nginx: str, mock: run.Proc, n: int,
                 conns: int, warmup: int) -> dict:
    procs: list[run.Proc] = []
    out = tmp / f"callgrind.{name}"
    wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
            "--dump-instr=no", "--collect-jumps=no"]
    pin = run.Pinning(False)
    try:
        if name == "nginx":
            ep = run.start_nginx(nginx, tmp, pin, mock.port, procs, 64, 1, wrap)
        elif name == "pingora-bare":
            ep = run.start_bare(bins, tmp, pin, mock.port, procs, 1, wrap)
        else:
            ep = run.start_tollgate(bins, tmp, pin, mock.port, name, name == "tollgate-full",
                                    procs, 1, wrap)
        status, body = run.post(ep.port, ep.chat_path, run.BODY, timeout=60)
        if status != 200:
            raise run.BenchError(f"{name} under callgrind answered {status}: {body[:200]!r}")
        drive(ep.port, ep.chat_path, warmup, conns)
        pid = str(ep.proc.pid)
        control("--zero", pid)
        t0 = time.monotonic()
        drive(ep.port, ep.chat_path, n, conns)
        wall = time.monotonic() - t0
        control("--dump", pid)
        time.sleep(0.5)
    finally:
        for p in reversed(procs):
            p.stop()
    dumps = sorted(tmp.glob(f"callgrind.{name}.*"), key=lambda f: f.stat().st_mtime)
    dumps = [d for d in dumps if re.search(r"\.\d+\.\d+$", d.name)] or dumps
    if not dumps:
        raise run.BenchError(f"{name}: callgrind wrote no dump")
    dump = dumps[0]
    total, own, incl = parse_dump(dump)
    return {"name": name, "total": total, "n": n, "self": own, "incl": incl, "wall": wall}


def render(results: list[dict], conns: int, warmup: int, started: dt.datetime) -> str:
    L = [f"# tollgate profile (callgrind), {started.strftime('%Y-%m-%d %H:%M:%S')} UTC", "",
         f"Each proxy alone under `valgrind --tool=callgrind` (every thread), the mock native; "
         f"{warmup} warm-up requests, then the counters zeroed and {results[0]['n']:,} "
         f"requests at c={conns} (the bench's chat request, 200 each), then dumped. "
         "Instruction counts (Ir) are deterministic: compare changes by them. "
         f"Made by `bench/profile.py`; the checkout was at git {run.git_rev()}.", "",
         "## Instructions per request", "",
         "| path | Ir per request | ratio to pingora-bare | ratio to nginx |",
         "|---|---:|---:|---:|"]
    per = {r["name"]: r["total"] / r["n"] for r in results}
    for r in results:
        p = per[r["name"]]
        L.append(f"| {r['name']} | {p:,.0f} | {run.ratio(p, per.get('pingora-bare'))} | "
                 f"{run.ratio(p, per.get('nginx'))} |")
    bare = next((r for r in results if r["name"] == "pingora-bare"), None)
    if bare:
        for r in results:
            if not r["name"].startswith("tollgate"):
                continue
            diff = {f: (r["self"].get(f, 0) - bare["self"].get(f, 0)) / r["n"]
                    for f in set(r["self"]) | set(bare["self"])}
            gap = (r["total"] - bare["total"]) / r["n"]
            L += ["", f"## {r['name']} − pingora-bare, itemised by function (self Ir per request)",
                  "", f"Total gap {gap:,.0f} Ir per request. The functions whose own "
                  "instructions differ most (positive: tollgate spends more), and the sum of "
                  "the rest.", "",
                  "| Δ Ir/req | tollgate | bare | function |", "|---:|---:|---:|---|"]
            top = sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:40]
            for f, d in top:
                L.append(f"| {d:+,.0f} | {r['self'].get(f, 0) / r['n']:,.0f} | "
                         f"{bare['self'].get(f, 0) / r['n']:,.0f} | {short(f)} |")
            rest = gap - sum(d for _, d in top)
            L.append(f"| {rest:+,.0f} | | | (every other function) |")
    for r in results:
        for kind in ("self", "incl"):
            title = "self" if kind == "self" else "inclusive"
            L += ["", f"## {r['name']}: top functions, {title} Ir per request", "",
                  "| Ir/req | % | function |", "|---:|---:|---|"]
            for f, ir in sorted(r[kind].items(), key=lambda kv: -kv[1])[:30]:
                L.append(f"| {ir / r['n']:,.0f} | {100 * ir / r['total']:.1f} | {short(f)} |")
    L.append("")
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per path")
    ap.add_argument("--conns", type=int, default=8, help="concurrent connections (8)")
    ap.add_argument("--warmup", type=int, default=300, help="warm-up requests per path")
    ap.add_argument("--paths", default=",".join(PROXIES), help="comma-separated proxy paths")
    ap.add_argument("--bin-dir", type=Path, default=run.ROOT / "target" / "release")
    ap.add_argument("--out-dir", type=Path, default=run.RESULTS)
    ap.add_argument("--no-report", action="store_true", help="print the summary only")
    ap.add_argument("--keep", type=Path, help="copy the callgrind dumps into this folder")
    a = ap.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"profile: {tool} is needed (apt-get install valgrind)", file=sys.stderr)
            return 2
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    bins = a.bin_dir.resolve()
    started = dt.datetime.now(dt.timezone.utc)
    tmp = Path(tempfile.mkdtemp(prefix="tollgate-profile-"))
    tmp.chmod(0o755)
    procs: list[run.Proc] = []
    results = []
    try:
        mock = run.start_mock(bins, tmp, run.Pinning(False), 8, 5, procs)
        for name in a.paths.split(","):
            run.log(f"profiling {name}: {a.requests} requests at c={a.conns} under callgrind")
            r = profile_path(name, bins, tmp, nginx, mock, a.requests, a.conns, a.warmup)
            run.log(f"{name}: {r['total'] / r['n']:,.0f} Ir per request ({r['wall']:.1f} s)")
            results.append(r)
    except run.BenchError as e:
        print(f"PROFILE FAILED: {e}\nfiles kept in {tmp}", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            p.stop()
    report = render(results, a.conns, a.warmup, started)
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)
        for d in tmp.glob("callgrind.*"):
            shutil.copy(d, a.keep / d.name)
    shutil.rmtree(tmp, ignore_errors=True)
    if a.no_report:
        print("\n".join(report.splitlines()[:12 + len(results)]))
        return 0
    a.out_dir.mkdir(parents=True, exist_ok=True)
    path = a.out_dir / f"profile-{started.strftime('%Y-%m-%dT%H%M%SZ')}.md"
    path.write_text(report)
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
