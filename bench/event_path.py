#!/usr/bin/env python3
"""Event path latency: a 1 KB CSV uploaded through the S3 endpoint -> its job `succeeded`.

Starts `weir run` on a temporary data dir (free loopback ports), uploads N small sales CSVs one
after another with boto3, and for each measures from just before PutObject to the job's own
`finished_at` (same machine, same clock). Then uploads N more from several threads at once and
reports files/s until all have succeeded. Prints p50/p90/p99/max; nothing is asserted.

    cargo build --release
    .venv/bin/python bench/event_path.py --weir target/release/weir -n 300
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

ROW = "ORD{i},Customer {i},Widget,{q},9.99,2024-03-01\n"
HEADER = "order_id,customer_name,product,quantity,price,date\n"


def csv_1kb(i):
    body, j = HEADER, 0
    while len(body) < 1024 - 48:
        j += 1
        body += ROW.format(i=f"{i}-{j}", q=j % 9 + 1)
    return body.encode()


def parse_time(s):
    # RFC 3339 with nanoseconds; Python takes microseconds.
    s = s.replace("Z", "+00:00")
    head, _, tail = s.partition(".")
    if tail:
        frac, _, tz = tail.partition("+")
        s = f"{head}.{frac[:6]}+{tz}"
    return datetime.datetime.fromisoformat(s).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", default="target/release/weir")
    ap.add_argument("-n", type=int, default=300, help="sequential uploads (latency)")
    ap.add_argument("--burst", type=int, default=1000, help="concurrent uploads (throughput); 0 skips")
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="weir-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env["WEIR_LOG"] = "warn"
    weir = subprocess.Popen(
        [args.weir, "--data-dir", data, "run", "--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "weir.log"), "w"),
    )
    try:
        endpoints = pathlib.Path(data, "endpoints.json")
        for _ in range(300):
            if endpoints.exists():
                break
            time.sleep(0.05)
        ep = json.loads(endpoints.read_text())
        creds = dict(
            line.split(" = ", 1) for line in pathlib.Path(data, "credentials.toml").read_text().splitlines()
            if " = " in line
        )
        creds = {k: v.strip('"') for k, v in creds.items()}
        s3 = boto3.client(
            "s3", endpoint_url=ep["s3"], region_name="us-east-1",
            aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"],
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=args.threads * 2),
        )
        token = creds["api_token"]

        def job(job_id):
            req = urllib.request.Request(f"{ep['api']}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req) as r:
                return json.load(r)

        put_ms = []

        def upload(i):
            t0 = time.time()
            r = s3.put_object(Bucket="weir-input", Key=f"raw/bench/{i}.csv", Body=csv_1kb(i))
            put_ms.append((time.time() - t0) * 1000)
            return t0, r["ResponseMetadata"]["HTTPHeaders"]["x-weir-job-id"]

        def wait(job_id, timeout=30):
            deadline = time.time() + timeout
            while time.time() < deadline:
                j = job(job_id)
                if j["status"] not in ("queued", "running"):
                    return j
                time.sleep(0.001)
            raise RuntimeError(f"job {job_id} not finished in {timeout}s")

        for i in range(20):  # warm up connections, the page cache and SQLite
            wait(upload(f"warm-{i}")[1])

        latencies, waits, runs = [], [], []
        put_ms.clear()
        for i in range(args.n):
            t0, job_id = upload(i)
            j = wait(job_id)
            assert j["status"] == "succeeded", j
            latencies.append((parse_time(j["finished_at"]) - t0) * 1000)
            waits.append((parse_time(j["started_at"]) - t0) * 1000)
            runs.append((parse_time(j["finished_at"]) - parse_time(j["started_at"])) * 1000)
        latencies.sort()
        q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
        print(f"upload -> succeeded, 1 KB CSV via the S3 endpoint, {args.n} sequential uploads:")
        print(f"  p50 {q(0.50):.1f} ms  p90 {q(0.90):.1f} ms  p99 {q(0.99):.1f} ms  max {latencies[-1]:.1f} ms"
              f"  mean {statistics.mean(latencies):.1f} ms")
        print(f"  medians: PutObject round trip {statistics.median(put_ms):.1f} ms, upload -> worker starts "
              f"{statistics.median(waits):.1f} ms, workflow run {statistics.median(runs):.1f} ms")

        if args.burst:
            t0 = time.time()
            with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
                ids = list(pool.map(lambda i: upload(f"burst-{i}")[1], range(args.burst)))
            uploaded = time.time() - t0
            for job_id in ids:
                assert wait(job_id, timeout=300)["status"] == "succeeded"
            total = time.time() - t0
            print(f"{args.burst} uploads from {args.threads} threads: uploaded in {uploaded:.2f} s, "
                  f"all succeeded after {total:.2f} s = {args.burst / total:.0f} files/s")
    finally:
        weir.terminate()
        weir.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
