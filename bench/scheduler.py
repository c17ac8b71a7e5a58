#!/usr/bin/env python3
"""Scheduler and watcher figures for `bench/run scheduler`.

Two measurements against the release binary, each in a fresh temporary directory:

1. Hot reload: 100 edits of one job file, each written atomically; the latency is from the
   write to the server's "reconciled" log line, which is written once the scheduler holds the
   new schedule. Target: p95 under 0.5 s.
2. 100,000 scheduled jobs (yearly schedules, so they stay idle): resident memory and CPU over
   an idle period once they are loaded, then 20 every-second jobs are added and the lateness of
   their firings is read from the server's log. Targets: under 200 MB, idle CPU near zero,
   lateness p99 under 50 ms.

Prints rows of bench/run's table (see bench_row in bench/lib.sh); there is no peer to compare
with, so the peer and ratio columns are empty.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("CURATOR") or os.path.join(REPO, "target", "release", "curator")

JOB = """apiVersion: curator/v1
kind: LibraryJob
id: {id}
library: {library}
schedule:
  cron: "{cron}"
type: metadata_refresh
provider: curated
scope: series_only
fieldGroups: [ratings]
skipRecentlySyncedWithinS: 0
"""


def row(name, figure, unit, target, ok):
    line = "%-42s %10s %10s %8s %8s  %s" % (name, f"{figure} {unit}", "-", "-", target, "yes" if ok else "NO")
    print(line, flush=True)


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[index]


class Server:
    """curator serve in `root`, its JSON log lines collected on a thread."""

    def __init__(self, root):
        env = dict(os.environ, CURATOR_LISTEN="127.0.0.1:0", CURATOR_LOG="curator=info")
        self.proc = subprocess.Popen(
            [BINARY, "--log-format", "json", "serve"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.lines.append((time.monotonic(), record))
                self.cond.notify_all()

    def wait_for(self, predicate, start=0, timeout=600):
        """The first (time, record) from index `start` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.lines):
                    when, record = self.lines[index]
                    index += 1
                    if predicate(record):
                        return when, record, index
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching log line")
                self.cond.wait(left)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def message(record):
    return record.get("fields", {}).get("message", "")


def field(record, name):
    return record.get("fields", {}).get(name)


def sandbox():
    root = tempfile.mkdtemp(prefix="curator-bench-")
    os.makedirs(os.path.join(root, "jobs.d"))
    with open(os.path.join(root, "catalog.yaml"), "w") as f:
        f.write("libraries:\n  - id: manga\n    name: Manga\n  - id: empty\n    name: Empty\n")
    with open(os.path.join(root, "curator.yaml"), "w") as f:
        f.write(
            "database: sqlite://data/curator.db\njobsDir: jobs.d\ntimezone: UTC\n"
            "catalog: [catalog.yaml]\nretention: { maxRuns: 5, maxAgeDays: 1 }\n"
            "providers:\n  - name: curated\n    kind: directory\n"
            f"    path: {os.path.join(REPO, 'examples', 'metadata')}\n"
            "    permissions: ['metadata:write:ratings']\n"
        )
    return root


def write_atomically(path, text):
    temp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(temp, "w") as f:
        f.write(text)
    os.rename(temp, path)


def hot_reload():
    root = sandbox()
    path = os.path.join(root, "jobs.d", "edited.yaml")
    with open(path, "w") as f:
        f.write(JOB.format(id="edited", library="manga", cron="30 5 2 2 *"))
    server = Server(root)
    try:
        _, _, index = server.wait_for(lambda r: message(r) == "reconciled")
        latencies = []
        for i in range(100):
            written = time.monotonic()
            write_atomically(path, JOB.format(id="edited", library="manga", cron=f"{i % 60} 4 1 1 *"))
            when, _, index = server.wait_for(
                lambda r: message(r) == "reconciled" and field(r, "updated") == 1, start=index
            )
            latencies.append(when - written)
            time.sleep(0.05)
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        row("hot reload p50", f"{p50 * 1000:.0f}", "ms", "-", True)
        row("hot reload p95", f"{p95 * 1000:.0f}", "ms", "<500ms", p95 < 0.5)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def many_jobs(count=100_000, ticking=20):
    root = sandbox()
    folder = os.path.join(root, "jobs.d", "many")
    os.makedirs(folder)
    for i in range(count):
        cron = f"{i % 60} {i // 60 % 24} {i % 28 + 1} {i % 12 + 1} *"
        with open(os.path.join(folder, f"job-{i:06}.yaml"), "w") as f:
            f.write(JOB.format(id=f"many-{i:06}", library="manga", cron=cron))
    started = time.monotonic()
    server = Server(root)
    try:
        when, record, index = server.wait_for(lambda r: message(r) == "reconciled", timeout=1800)
        row(f"start-up with {count} jobs", f"{when - started:.1f}", "s", "-", True)
        row("jobs scheduled", str(field(record, "scheduled")), "", str(count), field(record, "scheduled") == count)
        time.sleep(5)
        pid = server.proc.pid
        cpu_before, idle_started = cpu_seconds(pid), time.monotonic()
        time.sleep(20)
        idle_cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - idle_started) * 100
        rss = rss_mb(pid)
        row(f"resident memory, {count} jobs", f"{rss:.0f}", "MB", "<200MB", rss < 200)
        row("idle CPU", f"{idle_cpu:.2f}", "%", "~0", idle_cpu < 1.0)

        tick_folder = os.path.join(root, "jobs.d", "tick")
        os.makedirs(tick_folder)
        for i in range(ticking):
            with open(os.path.join(tick_folder, f"tick-{i:02}.yaml"), "w") as f:
                f.write(JOB.format(id=f"tick-{i:02}", library="empty", cron="* * * * * *"))
        _, _, index = server.wait_for(
            lambda r: message(r) == "reconciled" and (field(r, "created") or 0) > 0, start=index
        )
        time.sleep(30)
        late = [
            field(r, "late_ms")
            for _, r in server.lines[index:]
            if message(r) == "job fired" and field(r, "late_ms") is not None
        ]
        p99 = percentile(late, 99) if late else float("inf")
        row(f"firing lateness p99 ({len(late)} firings)", f"{p99:.0f}", "ms", "<50ms", p99 < 50)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def main():
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} is missing: build it with `cargo build --release`")
    which = sys.argv[1:] or ["hot-reload", "many-jobs"]
    if "hot-reload" in which:
        hot_reload()
    if "many-jobs" in which:
        many_jobs()


if __name__ == "__main__":
    main()
