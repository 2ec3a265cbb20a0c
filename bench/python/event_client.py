"""Event benchmark client for the `echo` service, with the output of bench_client.py.

Dispatches N `bench_source.ping` events one after the other through nameko's
standalone `event_dispatcher` (publisher confirms on, persistent), then waits
until the service's handler has seen them all (`echo.pings_seen()` over RPC).
Latencies are those of the dispatches; calls_per_s counts events handled per
second, from the first dispatch to the moment the handler had seen the last.
"""
import argparse
import json
import math
import os
import statistics
import time

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy


def pct(sorted_vals, p):
    k = max(0, min(len(sorted_vals) - 1,
                   math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def run_events(dispatch, echo, n, timeout=60.0):
    target = echo.pings_seen() + n
    lats = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        dispatch("bench_source", "ping", {"n": i})
        lats.append(time.perf_counter() - s)
    while echo.pings_seen() < target:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("the handler did not see every event")
        time.sleep(0.001)
    return lats, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default=os.environ.get(
        "AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--event-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    args = ap.parse_args()

    config = {"AMQP_URI": args.uri}
    dispatch = event_dispatcher(config)
    with ClusterRpcProxy(config) as proxy:
        echo = proxy.echo
        for run in range(1, args.runs + 1):
            run_events(dispatch, echo, args.warmup)
            lats, elapsed = run_events(dispatch, echo, args.event_n)
            lat_ms = sorted(x * 1000.0 for x in lats)
            print(json.dumps({
                "impl": "python-nameko",
                "scenario": "event",
                "run": run,
                "calls": len(lats),
                "elapsed_s": round(elapsed, 4),
                "calls_per_s": round(len(lats) / elapsed, 1),
                "p50_ms": round(pct(lat_ms, 50), 3),
                "p99_ms": round(pct(lat_ms, 99), 3),
                "mean_ms": round(statistics.fmean(lat_ms), 3),
                "max_ms": round(lat_ms[-1], 3),
            }), flush=True)


if __name__ == "__main__":
    main()
