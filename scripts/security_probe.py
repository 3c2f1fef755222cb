#!/usr/bin/env python3
"""Replays the security probe of issue #14 against a running `weir run` and prints a table.

Each of the 16 items is sent as the attacker sent it; every row says what was sent, what a safe
weir answers, what this one answered, and whether that is safe. The next probe starts from here.

    .venv/bin/python scripts/security_probe.py --data-dir weir-data [--pid PID] [--log FILE]
        [--weir target/release/weir] [--webhook-listen 127.0.0.1:PORT] [--only 1,2,16] [--json]

It reads the endpoints (`endpoints.json`) and keys (`credentials.toml`) from the data dir. Some
rows need more than the network: peak RSS needs `--pid` (it resets and reads the process's
VmHWM), the secrets-in-logs check the log file of a `weir -vv run` (`--log`), the config checks a
weir binary (`--weir`), the Slack escaping a webhook subscription (`format = "slack"`, topic
`success`) pointed at `--webhook-listen`. Without them those rows are skipped, never passed.
Exit status 1 if any row is unsafe. Needs boto3 (the test venv: scripts/test installs it).
"""

import argparse
import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import http.server
import json
import os
import pathlib
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import zlib

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

HEADER = "order_id,customer_name,product,quantity,price,date"
MIB = 1 << 20


class Rows:
    """The table: one row per check."""

    def __init__(self):
        self.rows = []

    def add(self, item, request, expected, got, ok):
        self.rows.append({"item": item, "request": request, "expected": expected, "got": got,
                          "result": "ok" if ok is True else ("skipped" if ok is None else "UNSAFE")})
        print(f"  [{self.rows[-1]['result']}] {item}: {request} -> {got}", file=sys.stderr, flush=True)

    def print_table(self):
        cols = ["item", "request", "expected", "got", "result"]
        width = {c: max([len(c)] + [len(str(r[c])) for r in self.rows]) for c in cols}
        width["request"] = min(width["request"], 58)
        width["expected"] = min(width["expected"], 52)
        width["got"] = min(width["got"], 52)

        def cell(c, v):
            v = " ".join(str(v).split())
            return (v if len(v) <= width[c] else v[: width[c] - 1] + "…").ljust(width[c])

        print(" | ".join(cell(c, c) for c in cols))
        print("-+-".join("-" * width[c] for c in cols))
        for r in self.rows:
            print(" | ".join(cell(c, r[c]) for c in cols))

    def unsafe(self):
        return [r for r in self.rows if r["result"] == "UNSAFE"]


class Instance:
    """A running weir, found through its data dir."""

    def __init__(self, args):
        self.data = pathlib.Path(args.data_dir)
        endpoints = json.loads((self.data / "endpoints.json").read_text())
        self.s3_url, self.api_url = endpoints["s3"], endpoints["api"]
        self.s3 = urllib.parse.urlsplit(self.s3_url)
        self.api = urllib.parse.urlsplit(self.api_url)
        creds = {}
        path = self.data / "credentials.toml"
        if path.exists():
            for line in path.read_text().splitlines():
                m = re.match(r'^(\w+) = "(.*)"$', line)
                if m:
                    creds[m.group(1)] = m.group(2)
        self.key_id = os.environ.get("WEIR_ACCESS_KEY_ID") or creds["access_key_id"]
        self.secret = os.environ.get("WEIR_SECRET_ACCESS_KEY") or creds["secret_access_key"]
        self.token = os.environ.get("WEIR_API_TOKEN") or creds["api_token"]
        self.pid = args.pid
        self.idle = args.idle_timeout
        cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                     read_timeout=120, connect_timeout=10)
        self.client = boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1", config=cfg,
                                   aws_access_key_id=self.key_id, aws_secret_access_key=self.secret)

    # --- HTTP helpers -------------------------------------------------------------------------

    def api_call(self, method, path, body=None, headers=None, token=True, timeout=30):
        """(status, headers, body) of an HTTP API request."""
        conn = http.client.HTTPConnection(self.api.hostname, self.api.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {self.token}"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, r.headers, data

    def signed(self, method, path, body=b"", headers=None, query=""):
        """Headers of a SigV4-signed request to the S3 endpoint, and its signature."""
        url = f"{self.s3_url}{urllib.parse.quote(path)}" + (f"?{query}" if query else "")
        req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        S3SigV4Auth(Credentials(self.key_id, self.secret), "s3", "us-east-1").add_auth(req)
        auth = req.headers["Authorization"]
        return url, dict(req.headers.items()), auth.rsplit("Signature=", 1)[1]

    def s3_call(self, method, url, headers=None, body=b"", timeout=60):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, r.headers, data

    def job(self, job_id, timeout=300):
        """The job once it reached a final status."""
        end = time.time() + timeout
        while True:
            status, _, body = self.api_call("GET", f"/v1/jobs/{job_id}")
            if status == 200:
                job = json.loads(body)
                if job["status"] not in ("queued", "running"):
                    return job
            if time.time() > end:
                return {"status": "timeout", "error": f"still not finished after {timeout}s"}
            time.sleep(0.2)

    def put(self, key, body, **kw):
        r = self.client.put_object(Bucket="weir-input", Key=key, Body=body, **kw)
        return r["ResponseMetadata"]["HTTPHeaders"].get("x-weir-job-id")

    # --- memory -------------------------------------------------------------------------------

    def reset_peak(self):
        """Starts a new peak-RSS window; False if the peak cannot be reset (then sampled)."""
        if not self.pid:
            return False
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def rss_kib(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0


class Watch(threading.Thread):
    """While an attack runs: the process's peak RSS, /healthz latency, one normal upload."""

    def __init__(self, inst, item):
        super().__init__(daemon=True)
        self.inst, self.item = inst, item
        self.stop = threading.Event()
        self.health_max, self.health_fail = 0.0, 0
        self.upload = None
        self.peak_kib = 0
        self.resettable = inst.reset_peak()
        self.uploader = threading.Thread(target=self.upload_once, daemon=True)

    def upload_once(self):
        time.sleep(0.1)
        t = time.time()
        try:
            self.inst.put(f"notes/probe-{self.item}-{uuid.uuid4().hex}.txt", b"still served\n")
            self.upload = ("200", time.time() - t)
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            self.upload = (f"failed: {e}", time.time() - t)

    def run(self):
        self.uploader.start()
        while not self.stop.is_set():
            if self.inst.pid:
                self.peak_kib = max(self.peak_kib, self.inst.rss_kib("VmRSS"))
            t = time.time()
            try:
                status, _, _ = self.inst.api_call("GET", "/healthz", token=False, timeout=15)
                if status != 200:
                    self.health_fail += 1
            except OSError:
                self.health_fail += 1
            self.health_max = max(self.health_max, time.time() - t)
            self.stop.wait(0.1)

    def finish(self, rows, item, max_rss_mib):
        self.stop.set()
        self.join()
        self.uploader.join(120)
        if self.inst.pid:
            if self.resettable:
                self.peak_kib = max(self.peak_kib, self.inst.rss_kib("VmHWM"))
            peak = self.peak_kib / 1024
            rows.add(item, "peak RSS of weir during the attack", f"<= {max_rss_mib} MiB",
                     f"{peak:.0f} MiB", peak <= max_rss_mib)
        else:
            rows.add(item, "peak RSS of weir during the attack", f"<= {max_rss_mib} MiB", "no --pid", None)
        upload = self.upload or ("not attempted", 0)
        rows.add(item, "GET /healthz and a signed PUT during the attack",
                 "healthz 200 within 2 s; PUT 200",
                 f"healthz max {self.health_max:.2f} s, {self.health_fail} failed; PUT {upload[0]} in {upload[1]:.2f} s",
                 self.health_max <= 2.0 and self.health_fail == 0 and upload[0] == "200")


def raw_exchange(host, port, head, body_chunks=(), timeout=60):
    """Sends `head` then the chunks while reading the answer on the side.

    Returns (status, body text, bytes of body sent, seconds). The server may answer and close
    before the body is sent: the answer is read as it comes, not after the upload.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    sent = [0]
    stop = threading.Event()

    def writer():
        try:
            sock.sendall(head)
            for chunk in body_chunks:
                if stop.is_set():
                    break
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    t0 = time.time()
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    data = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                m = re.search(rb"(?i)content-length:\s*(\d+)", data[:head_end])
                if m and len(data) >= head_end + 4 + int(m.group(1)):
                    break
    except OSError:
        pass
    elapsed = time.time() - t0
    stop.set()
    sock.close()
    w.join(5)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    body = data.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace") if b"\r\n\r\n" in data else ""
    return status, body, sent[0], elapsed


def zeros(total, chunk=256 * 1024):
    block = b"0" * chunk
    left = total
    while left > 0:
        n = min(left, chunk)
        yield block[:n]
        left -= n


def form_head(host, port, path, boundary, fields, file_size, extra_headers=""):
    pre = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields)
    pre += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n").encode()
    post = f"\r\n--{boundary}--\r\n".encode()
    length = len(pre) + file_size + len(post)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n{extra_headers}\r\n").encode()
    return head, pre, post


def slow_senders(host, port, heads, trickles, idle, rows, item, what):
    """Opens one connection per head, each trickling a byte a second; reports how long the
    server keeps them and whether a fresh client is served meanwhile."""
    socks, closed_after = [], {}
    for head in heads:
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(head)
        socks.append(s)
    t0 = time.time()
    stop = threading.Event()

    def trickle(i, s):
        payload = iter(trickles[i])
        while not stop.is_set():
            try:
                s.sendall(bytes([next(payload, ord("x"))]))
                s.settimeout(1.0)
                try:
                    if s.recv(65536) == b"":
                        closed_after[i] = time.time() - t0
                        return
                except socket.timeout:
                    pass
            except OSError:
                closed_after[i] = time.time() - t0
                return
            if time.time() - t0 > idle * 4 + 30:
                return

    threads = [threading.Thread(target=trickle, args=(i, s), daemon=True) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    # A fresh client while every slot is held by a slow sender.
    t = time.time()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=idle * 2 + 20)
        conn.request("GET", "/")
        status = conn.getresponse().status
        conn.close()
        fresh = (status, time.time() - t)
    except OSError as e:
        fresh = (f"failed: {e}", time.time() - t)
    for th in threads:
        th.join(idle * 4 + 35)
    stop.set()
    for s in socks:
        s.close()
    held = max(closed_after.values()) if len(closed_after) == len(socks) else None
    bound = idle * 2 + 5
    rows.add(item, f"{len(socks)} {what} sending 1 byte/s",
             f"each closed within {bound} s (idle timeout {idle} s)",
             f"closed after {held:.1f} s" if held is not None else f"{len(socks) - len(closed_after)} still open",
             held is not None and held <= bound)
    rows.add(item, "a new client while those hold the connection slots", f"answered within {bound} s",
             f"{fresh[0]} after {fresh[1]:.1f} s", isinstance(fresh[0], int) and fresh[1] <= bound)


# --- the items ----------------------------------------------------------------------------------


def item1(inst, rows, args):
    host, port = inst.s3.hostname, inst.s3.port
    size = args.attack_mib * MIB
    watch = Watch(inst, 1)
    watch.start()
    results = []

    def attack():
        boundary = uuid.uuid4().hex
        head, pre, post = form_head(host, port, "/weir-input", boundary, [("key", "raw/posted.csv")], size)

        def body():
            yield pre
            yield from zeros(size)
            yield post

        results.append(raw_exchange(host, port, head, body(), timeout=300))

    threads = [threading.Thread(target=attack) for _ in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [r for r in results if r[0] == 403 and "AccessDenied" in r[1]]
    most_sent = max(r[2] for r in results)
    rows.add(1, f"{args.parallel}x unsigned form POST /weir-input of {args.attack_mib} MiB",
             "403 AccessDenied before the file is read (< 32 MiB sent)",
             f"{[r[0] for r in results]} after up to {most_sent / MIB:.0f} MiB sent, {max(r[3] for r in results):.1f} s",
             len(refused) == len(results) and most_sent < 32 * MIB)
    watch.finish(rows, 1, args.max_rss_mib)

    # A browser-style POST with a valid policy: stored, streamed rather than held in memory.
    watch = Watch(inst, 1)
    watch.start()
    post = inst.client.generate_presigned_post("weir-input", "notes/probe-posted.bin", ExpiresIn=300)
    boundary = uuid.uuid4().hex
    u = urllib.parse.urlsplit(post["url"])
    head, pre, tail = form_head(u.hostname, u.port, u.path, boundary, list(post["fields"].items()), size)

    def body():
        yield pre
        yield from zeros(size)
        yield tail

    status, text, sent, secs = raw_exchange(u.hostname, u.port, head, body(), timeout=600)
    head_ok = False
    try:
        h = inst.client.head_object(Bucket="weir-input", Key="notes/probe-posted.bin")
        head_ok = h["ContentLength"] == size
        inst.client.delete_object(Bucket="weir-input", Key="notes/probe-posted.bin")
    except Exception:  # noqa: BLE001
        pass
    rows.add(1, f"signed form POST (boto3 presigned policy) of {args.attack_mib} MiB",
             "204, object stored whole", f"{status} after {secs:.1f} s, stored={head_ok}",
             status in (200, 201, 204) and head_ok)
    watch.finish(rows, 1, args.max_rss_mib)

    # Slow senders: headers complete, the form's fields one byte a second.
    # Slow senders: half send the fields at once and trickle the file, half trickle the fields.
    heads, trickles = [], []
    for i in range(args.slots):
        boundary = uuid.uuid4().hex
        head, pre, _ = form_head(host, port, "/weir-input", boundary, [("key", "raw/slow.csv")], 1000)
        heads.append(head + pre if i % 2 else head)
        trickles.append(b"0" * 1000 if i % 2 else pre)
    slow_senders(host, port, heads, trickles, inst.idle, rows, 1, "unsigned form POSTs (fields or file)")


def item2(inst, rows, args):
    n = args.ingest_records
    body = "".join(json.dumps({f"k{i}": "v"}) + "\n" for i in range(n)).encode()
    watch = Watch(inst, 2)
    watch.start()
    t = time.time()
    status, _, text = inst.api_call("POST", "/v1/ingest", body=body, headers={"Content-Type": "application/x-ndjson"},
                                    timeout=300)
    secs = time.time() - t
    rows.add(2, f"POST /v1/ingest: {n} NDJSON records, one distinct key each ({len(body) // 1024} KiB)",
             "400 too many fields, at once (< 2 s)", f"{status} in {secs:.1f} s: {text[:80].decode('utf-8', 'replace')}",
             status in (400, 413) and secs < 2.0)
    watch.finish(rows, 2, args.max_rss_mib)
    ok_body = json.dumps({"data": [{"order_id": "P1", "customer_name": "Probe", "product": "Widget", "quantity": 1,
                                    "price": 2.5, "date": "2024-01-01"}]}).encode()
    status, _, text = inst.api_call("POST", "/v1/ingest", body=ok_body, headers={"Content-Type": "application/json"})
    rows.add(2, "POST /v1/ingest: one ordinary record", "202", str(status), status == 202)


def item3(inst, rows, args):
    extra = args.wide_columns
    key = f"raw/probe-wide-{uuid.uuid4().hex[:8]}.csv"
    path = pathlib.Path(tempfile.mkdtemp()) / "wide.csv"
    with open(path, "w") as f:
        f.write(HEADER + "".join(f",c{i}" for i in range(extra)) + "\n")
        filler = ",v" * extra
        for i in range(args.wide_rows):
            f.write(f"W{i},Wide,Widget,not-a-number,1.0,2024-01-01{filler}\n")
    watch = Watch(inst, 3)
    watch.start()
    inst.client.upload_file(str(path), "weir-input", key)
    job_id = None
    end = time.time() + 300
    while job_id is None and time.time() < end:
        status, _, body = inst.api_call("GET", "/v1/jobs?limit=200")
        for j in json.loads(body)["jobs"]:
            if j["source_key"] == key:
                job_id = j["job_id"]
        time.sleep(0.2)
    job = inst.job(job_id) if job_id else {"status": "no job"}
    path.unlink()
    report_key = f"errors/weir-input/{key}.errors.json"
    try:
        head = inst.client.get_object(Bucket="weir-output", Key=report_key, Range="bytes=0-4095")
        size = int(head["ContentRange"].rsplit("/", 1)[1])
        start = head["Body"].read().decode("utf-8", "replace")
    except Exception as e:  # noqa: BLE001
        size, start = None, f"no report: {e}"
    said = "truncated" in start or "omitted" in start
    rows.add(3, f"CSV of {extra + 6} columns, {args.wide_rows} invalid rows: the error report",
             "report <= 8 MiB, saying what it left out",
             f"job {job['status']}; report {size if size is None else f'{size / MIB:.1f} MiB'}, says so: {said}",
             size is not None and size <= 8 * MIB and said)
    watch.finish(rows, 3, args.max_rss_mib)


def item4(inst, rows, args):
    host, port = inst.api.hostname, inst.api.port
    size = 64 * MIB
    watch = Watch(inst, 4)
    watch.start()
    results = []

    def attack():
        head = (f"POST /session HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {size}\r\n\r\n").encode()
        results.append(raw_exchange(host, port, head, zeros(size), timeout=120))

    threads = [threading.Thread(target=attack) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows.add(4, "8x POST /session with a 64 MiB body (no token)", "413 before the body is read (< 8 MiB sent)",
             f"{[r[0] for r in results]} after up to {max(r[2] for r in results) / MIB:.1f} MiB sent",
             all(r[0] == 413 for r in results) and max(r[2] for r in results) < 8 * MIB)
    watch.finish(rows, 4, args.max_rss_mib)
    heads = [(f"POST /session HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              f"Content-Length: 2000\r\n\r\n").encode() for _ in range(args.slots)]
    slow_senders(host, port, heads, [b"token="] * len(heads), inst.idle, rows, 4, "POST /session")


def sigv2(inst, method, resource, date):
    sts = f"{method}\n\n\n{date}\n{resource}"
    sig = base64.b64encode(hmac.new(inst.secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    return {"Date": date, "Authorization": f"AWS {inst.key_id}:{sig}"}


def sigv2_presigned(inst, path, expires, tamper=False):
    sts = f"GET\n\n\n{expires}\n{path}"
    sig = base64.b64encode(hmac.new(inst.secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    if tamper:
        sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    q = urllib.parse.urlencode({"AWSAccessKeyId": inst.key_id, "Expires": expires, "Signature": sig})
    status, _, _ = inst.s3_call("GET", f"{inst.s3_url}{path}?{q}")
    return status


def item5(inst, rows, args):
    for date, what in [("Mon, 01 Jan 2001 00:00:00 GMT", "Date in 2001"), ("whenever", "Date: whenever"),
                       (email.utils.formatdate(usegmt=True), "a current Date")]:
        status, _, body = inst.s3_call("GET", f"{inst.s3_url}/weir-input/", headers=sigv2(inst, "GET", "/weir-input/", date))
        rows.add(5, f"SigV2 header-signed GET /weir-input/ ({what})", "403 (header SigV2 is off by default)",
                 f"{status} {re.search(r'<Code>(.*?)</Code>', body.decode()).group(1) if b'<Code>' in body else ''}",
                 status == 403)
    # Presigned SigV2 URLs (what `aws s3 presign` of AWS CLI v1 makes) carry their own expiry.
    now = int(time.time())
    for expires, tamper, expected, what in [
        (now + 600, False, 200, "expiring in 10 minutes"),
        (now + 600, True, 403, "with one signature character changed"),
        (now + 30 * 86400, False, 400, "expiring in 30 days"),
        (now - 60, False, 403, "expired a minute ago"),
    ]:
        status = sigv2_presigned(inst, "/weir-input/", expires, tamper)
        rows.add(5, f"SigV2 presigned GET /weir-input/ {what}", str(expected), str(status), status == expected)


def item6(inst, rows, args):
    secrets = {"secret access key": inst.secret, "API token": inst.token}
    for i, value in enumerate(args.secret or []):
        secrets[f"--secret #{i + 1}"] = value
    # A job, so that notifications are sent (and, to a subscription that is down, retried).
    job_id = inst.put(f"raw/probe-log-{uuid.uuid4().hex[:8]}.csv", f"{HEADER}\nL1,Log,Widget,1,1.0,2024-01-01\n".encode())
    job = inst.job(job_id) if job_id else {"status": "no job"}
    rows.add(6, "a CSV uploaded to raw/ (its notifications go out)", "a job that succeeds", job["status"],
             job["status"] == "succeeded")
    # A GET with a junk signature: the correct one for the same request must not be logged.
    url, headers, correct = inst.signed("GET", "/weir-input/", query="list-type=2")
    secrets["signature of a request"] = correct
    headers["Authorization"] = headers["Authorization"].replace(correct, "0" * 64)
    status, _, _ = inst.s3_call("GET", url, headers=headers)
    rows.add(6, "GET with a junk SigV4 signature", "403 SignatureDoesNotMatch", str(status), status == 403)
    url, headers, sig = inst.signed("GET", "/weir-input/", query="list-type=2")
    secrets["signature of a good request"] = sig
    inst.s3_call("GET", url, headers=headers)
    presigned = inst.client.generate_presigned_url("list_objects_v2", Params={"Bucket": "weir-input"}, ExpiresIn=60)
    secrets["presigned URL signature"] = urllib.parse.parse_qs(urllib.parse.urlsplit(presigned).query)["X-Amz-Signature"][0]
    inst.s3_call("GET", presigned)
    status, h, _ = inst.api_call("POST", "/session", body=f"token={inst.token}".encode(), token=False,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    cookie = (h.get("Set-Cookie") or "").split(";")[0]
    if "=" in cookie:
        secrets["session cookie"] = cookie.split("=", 1)[1]
        inst.api_call("GET", "/v1/jobs", token=False, headers={"Cookie": cookie})
    inst.api_call("GET", f"/?token={inst.token}", token=False)
    inst.api_call("GET", "/v1/jobs")
    if not args.log:
        rows.add(6, "the log of `weir -vv run` after those requests", "no secret, token, signature or session",
                 "no --log given", None)
        return
    time.sleep(2.0)
    log = pathlib.Path(args.log).read_text(errors="replace")
    found = [name for name, value in secrets.items() if value and value in log]
    for pattern in ["Signature=", "X-Amz-Signature", "Authorization", "authorization"]:
        if pattern in log:
            found.append(f"'{pattern}'")
    rows.add(6, f"the log ({len(log) // 1024} KiB) after sign-ins, signed, junk-signed and presigned requests",
             "no secret, token, signature or session", "found: " + ", ".join(found) if found else "none found",
             not found)


def gzip_of(inflated, rows_text):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress((HEADER + "\n").encode())]
    block = rows_text * max(1, MIB // len(rows_text))
    left = inflated
    while left > 0:
        out.append(c.compress(block[: min(left, len(block))]))
        left -= len(block)
    out.append(c.flush())
    return b"".join(out)


def item7(inst, rows, args):
    if args.bomb_mib:
        bomb_row(inst, rows, args)
    if args.output_probe_mib:
        output_row(inst, rows, args)


def bomb_row(inst, rows, args):
    inflated = args.bomb_mib * MIB
    # Blank lines: the decompression limit is what stops it, not the size of its outputs.
    bomb = gzip_of(inflated, b"\n")
    key = f"raw/probe-bomb-{uuid.uuid4().hex[:8]}.csv.gz"
    job_id = inst.put(key, bomb)
    job = inst.job(job_id, timeout=600) if job_id else {"status": "no job"}
    reason = job.get("error") or ""
    rows.add(7, f".csv.gz of {len(bomb) / MIB:.1f} MiB inflating to {args.bomb_mib} MiB",
             "rejected: inflates past max_decompressed_bytes (with the figures)",
             f"{job['status']}: {reason[:120]}",
             job["status"] == "rejected" and "max_decompressed_bytes" in reason)


def output_row(inst, rows, args):
    body = (HEADER + "\n").encode() + b"".join(
        f"O{i},Output probe customer,Widget,1,1.0,2024-01-01\n".encode() for i in range(args.output_probe_mib * MIB // 48))
    job_id = inst.put(f"raw/probe-output-{uuid.uuid4().hex[:8]}.csv", body)
    job = inst.job(job_id, timeout=600) if job_id else {"status": "no job"}
    reason = job.get("error") or ""
    rows.add(7, f"CSV of {len(body) / MIB:.1f} MiB whose outputs pass output.max_bytes",
             "rejected: outputs past output.max_bytes (with the figures)", f"{job['status']}: {reason[:120]}",
             job["status"] == "rejected" and "output.max_bytes" in reason)


def item8(inst, rows, args):
    # Something in every store first: an upload that becomes a job with outputs and an archive.
    job_id = inst.put(f"raw/probe-modes-{uuid.uuid4().hex[:8]}.csv", f"{HEADER}\nM1,Modes,Widget,1,1.0,2024-01-01\n".encode())
    job = inst.job(job_id) if job_id else {"status": "no job"}
    rows.add(8, "a CSV uploaded to raw/", "a job that succeeds (outputs, archive)", job["status"], job["status"] == "succeeded")
    loose = []
    mode = stat.S_IMODE(os.stat(inst.data).st_mode)
    if mode & 0o077:
        loose.append(f". ({mode:o})")
    count = 0
    for root, dirs, files in os.walk(inst.data):
        for name in dirs + files:
            p = os.path.join(root, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            count += 1
            m = stat.S_IMODE(st.st_mode)
            if m & 0o077:
                loose.append(f"{os.path.relpath(p, inst.data)} ({m:o})")
    rows.add(8, f"modes of the data dir and its {count} files and folders", "0700 folders, 0600 files",
             f"{len(loose)} readable by others: {', '.join(loose[:4])}" if loose else "all private", not loose)


def item9(inst, rows, args):
    for expires, expected in [(4294967295, 400), (604801, 400), (604800, 200)]:
        url = inst.client.generate_presigned_url("list_objects_v2", Params={"Bucket": "weir-input"}, ExpiresIn=expires)
        status, _, body = inst.s3_call("GET", url)
        code = re.search(rb"<Code>(.*?)</Code>", body)
        rows.add(9, f"presigned GET with X-Amz-Expires={expires}",
                 f"{expected}" + (" AuthorizationQueryParametersError" if expected == 400 else ""),
                 f"{status} {code.group(1).decode() if code else ''}", status == expected)


METRIC_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? [-+0-9.eEInfNa]+$')


def item10(inst, rows, args):
    status, _, body = inst.api_call("GET", "/metrics")
    lines = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
    bad = [l for l in lines if not METRIC_LINE.match(l)]
    series = [l.rsplit(" ", 1)[0] for l in lines]
    dupes = {s for s in series if series.count(s) > 1}
    rows.add(10, "GET /metrics", "every sample line well formed, no series twice",
             f"{status}; {len(lines)} samples, {len(bad)} malformed, {len(dupes)} repeated",
             status == 200 and not bad and not dupes)
    if not args.weir:
        rows.add(10, "weir check of an alarm named with '\"' and a newline", "refused", "no --weir given", None)
        return
    name = json.dumps('x"} 1\nweir_files_total{status="succeeded"} 999999')
    toml = f'[[alarms.rule]]\nname = {name}\nmetric = "dlq_messages"\nstatistic = "Maximum"\nperiod_secs = 60\n' \
           f'evaluation_periods = 1\nthreshold = 1\ncomparison = "GreaterThanOrEqualToThreshold"\n'
    out = run_check(args.weir, toml)
    rows.add(10, "weir check of an alarm named with '\"' and a newline", "refused, naming alarms.rule",
             f"exit {out.returncode}: {(out.stdout + out.stderr).strip()[-100:]}",
             out.returncode != 0 and "alarm" in (out.stdout + out.stderr))


def run_check(weir, toml, mode=0o600):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "weir.toml")
    with open(path, "w") as f:
        f.write(toml)
    os.chmod(path, mode)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    out = subprocess.run([weir, "--data-dir", os.path.join(d, "data"), "--config", path, "check"],
                         capture_output=True, text=True, env=env, timeout=60)
    return out


class WebhookSink(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (the http.server API)
        n = int(self.headers.get("Content-Length", 0))
        WebhookSink.received.append(self.rfile.read(n))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def item11(inst, rows, args):
    if not args.webhook_listen:
        rows.add(11, "a key with <!channel> and <mailto:…|…> through a Slack webhook", "& < > escaped",
                 "no --webhook-listen given", None)
        return
    host, port = args.webhook_listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), WebhookSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = f"raw/probe <!channel> <mailto:a@example.com|click> & {uuid.uuid4().hex[:6]}.csv"
    body = f"{HEADER}\nS1,Slack,Widget,1,1.0,2024-01-01\n".encode()
    inst.put(key, body)
    end = time.time() + 60
    text = None
    while time.time() < end and text is None:
        for raw in WebhookSink.received:
            t = json.loads(raw).get("text", "")
            if "probe" in t:
                text = t
        time.sleep(0.2)
    server.shutdown()
    ok = text is not None and "<!channel>" not in text and "<mailto:" not in text and "&lt;!channel&gt;" in text
    rows.add(11, "a key with <!channel> and <mailto:…|…> through a Slack webhook",
             "&lt;!channel&gt; (escaped, no mention or link)", (text or "no message")[:120].replace("\n", " "), ok)


def item12(inst, rows, args):
    creds = inst.data / "credentials.toml"
    if creds.exists():
        st = os.stat(creds)
        m = stat.S_IMODE(st.st_mode)
        rows.add(12, "credentials.toml", "0600, owned by weir's user", f"{m:o}, uid {st.st_uid}",
                 not m & 0o077 and st.st_uid == os.geteuid())
    if not args.weir:
        rows.add(12, "weir check of a world-readable weir.toml holding a secret", "refused (chmod 600)",
                 "no --weir given", None)
        return
    out = run_check(args.weir, '[server]\napi_token = "weir_probe_token_0123456789abcdef"\n', mode=0o644)
    rows.add(12, "weir check of a world-readable (0644) weir.toml holding api_token", "refused, saying chmod 600",
             f"exit {out.returncode}: {(out.stdout + out.stderr).strip()[-100:]}",
             out.returncode != 0 and "chmod 600" in out.stdout + out.stderr)


def item13(inst, rows, args):
    for name in ["records.db", "weir.toml", "outbox.db", "weir.db-wal"]:
        try:
            inst.client.create_bucket(Bucket=name)
            got = "created"
        except inst.client.exceptions.ClientError as e:
            got = e.response["Error"]["Code"]
        rows.add(13, f"CreateBucket {name}", "InvalidBucketName (reserved)", got, got == "InvalidBucketName")


def item14(inst, rows, args):
    key = "raw/" + "a" * 300 + ".csv"
    try:
        inst.client.put_object(Bucket="weir-input", Key=key, Body=b"x")
        got = "200"
    except inst.client.exceptions.ClientError as e:
        got = f"{e.response['ResponseMetadata']['HTTPStatusCode']} {e.response['Error']['Code']}"
    rows.add(14, "PutObject with a 304-byte path segment", "400 KeyTooLongError", got, got == "400 KeyTooLongError")
    up = inst.client.create_multipart_upload(Bucket="weir-input", Key="notes/probe-mp.bin")["UploadId"]
    parts = "".join(f"<Part><PartNumber>{i % 10000 + 1}</PartNumber><ETag>\"{'0' * 32}\"</ETag></Part>"
                    for i in range(5 * MIB // 70))
    xml = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
    url, headers, _ = inst.signed("POST", "/weir-input/notes/probe-mp.bin", body=xml, query=f"uploadId={up}")
    u = urllib.parse.urlsplit(url)
    head = f"POST {u.path}?{u.query} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(xml)}\r\n\r\n"
    status, body, _, _ = raw_exchange(u.hostname, u.port, head.encode(), [xml])
    code = re.search(r"<Code>(.*?)</Code>", body)
    got = f"{status} {code.group(1) if code else ''}"
    rows.add(14, f"CompleteMultipartUpload with a {len(xml) / MIB:.1f} MiB body", "400 MalformedXML", got,
             got == "400 MalformedXML")
    inst.client.abort_multipart_upload(Bucket="weir-input", Key="notes/probe-mp.bin", UploadId=up)

    # A refusal before the body (here a part for no such upload, sent as boto3 sends uploads,
    # with Expect: 100-continue and the body held back), with the client's next request right
    # behind it on the same connection: that request must not be read as the refused body.
    url, headers, _ = inst.signed("PUT", "/weir-input/raw/x.csv", body=b"x", headers={"Expect": "100-continue"},
                                  query=f"partNumber=2&uploadId={'0' * 32}")
    u = urllib.parse.urlsplit(url)
    host = f"Host: {u.hostname}:{u.port}\r\n"
    put = f"PUT {u.path}?{u.query} HTTP/1.1\r\n{host}" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    url, headers, _ = inst.signed("GET", "/weir-input/notes/missing.txt")
    get = f"GET {urllib.parse.urlsplit(url).path} HTTP/1.1\r\n{host}" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = socket.create_connection((u.hostname, u.port), timeout=5)
    sock.sendall((put + "Content-Length: 1\r\n\r\n" + get + "\r\n").encode())
    data = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except OSError:
        pass
    sock.close()
    answers = [f"{m.group(1).decode()} {(c.group(1).decode() if c else '')}".strip()
               for m, c in ((m, re.search(rb"<Code>(.*?)</Code>", data[m.end():].split(b"HTTP/1.1", 1)[0]))
                            for m in re.finditer(rb"HTTP/1\.1 (\d+)", data))]
    rows.add(14, "an upload refused before its body (Expect: 100-continue), the next request right behind it",
             "404, then the connection closed (or 404 NoSuchKey): never a garbled request",
             "; ".join(answers) or "nothing", answers in (["404 NoSuchUpload"], ["404 NoSuchUpload", "404 NoSuchKey"]))


def item15(inst, rows, args):
    inst.client.put_object(Bucket="weir-input", Key="notes/probe.html", Body=b"<script>alert(1)</script>",
                           ContentType="text/html")
    url = inst.client.generate_presigned_url("get_object", Params={"Bucket": "weir-input", "Key": "notes/probe.html"},
                                             ExpiresIn=60)
    status, h, _ = inst.s3_call("GET", url)
    got = f"{status}; type {h.get('Content-Type')}; {h.get('Content-Disposition')}; nosniff={h.get('X-Content-Type-Options')}"
    rows.add(15, "GET (presigned) of an uploaded text/html object", "served as an attachment, nosniff", got,
             (h.get("Content-Disposition") or "").startswith("attachment") and h.get("X-Content-Type-Options") == "nosniff")
    url = inst.client.generate_presigned_url("get_object", ExpiresIn=60, Params={
        "Bucket": "weir-input", "Key": "notes/probe.html", "ResponseContentType": "text/html"})
    status, h, _ = inst.s3_call("GET", url)
    rows.add(15, "... with response-content-type=text/html", "still an attachment",
             f"{status}; {h.get('Content-Disposition')}", (h.get("Content-Disposition") or "").startswith("attachment"))
    inst.client.put_object(Bucket="weir-input", Key="notes/probe.csv", Body=b"a,b\n", ContentType="text/csv")
    h = inst.client.head_object(Bucket="weir-input", Key="notes/probe.csv")
    rows.add(15, "HEAD of an object uploaded as text/csv", "Content-Type: text/csv", h.get("ContentType"),
             h.get("ContentType") == "text/csv")
    for k in ["notes/probe.html", "notes/probe.csv"]:
        inst.client.delete_object(Bucket="weir-input", Key=k)


def item16(inst, rows, args):
    statuses = []
    for i in range(args.signin_attempts):
        status, h, _ = inst.api_call("POST", "/session", body=f"token=wrong-{i}".encode(), token=False,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        statuses.append(status)
    rows.add(16, f"{args.signin_attempts} sign-ins with wrong tokens from one client", "429 after the first few",
             f"{statuses.count(429)} x 429 (first at attempt {statuses.index(429) + 1 if 429 in statuses else '-'})",
             429 in statuses)
    status, h, _ = inst.api_call("GET", "/session", token=False)
    # The right token from the same client now: still limited until the window passes.
    status, h, _ = inst.api_call("POST", "/session", body=f"token={inst.token}".encode(), token=False,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    cookie = h.get("Set-Cookie") or ""
    if status == 429:
        wait = int(h.get("Retry-After") or 60)
        time.sleep(min(wait, 120) + 1)
        status, h, _ = inst.api_call("POST", "/session", body=f"token={inst.token}".encode(), token=False,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        cookie = h.get("Set-Cookie") or ""
    m = re.search(r"Max-Age=(\d+)", cookie)
    rows.add(16, "sign-in with the right token", "a session cookie with an expiry (Max-Age)",
             f"{status}; Max-Age={m.group(1) if m else 'none'}", status == 303 and m is not None)
    value = cookie.split(";")[0].split("=", 1)[1] if "=" in cookie.split(";")[0] else ""
    forged = value
    if "." in value:
        expiry, mac = value.split(".", 1)
        forged = f"{int(expiry) + 10 ** 7}.{mac}" if expiry.isdigit() else value
    status_ok, _, _ = inst.api_call("GET", "/v1/jobs?limit=1", token=False, headers={"Cookie": f"weir_session={value}"})
    status_forged, _, _ = inst.api_call("GET", "/v1/jobs?limit=1", token=False,
                                        headers={"Cookie": f"weir_session={forged}"})
    rows.add(16, "the session cookie, then the same with its expiry pushed out", "200, then 403",
             f"{status_ok}, then {status_forged}", status_ok == 200 and status_forged == 403)


ITEMS = {1: item1, 2: item2, 3: item3, 4: item4, 5: item5, 6: item6, 7: item7, 8: item8, 9: item9,
         10: item10, 11: item11, 12: item12, 13: item13, 14: item14, 15: item15, 16: item16}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--pid", type=int, help="weir's process id: peak RSS under the memory attacks")
    ap.add_argument("--log", help="the stderr of a `weir -vv run`: checked for secrets")
    ap.add_argument("--secret", action="append",
                    help="another value that must not be in the log (a webhook URL's path, an SMTP password)")
    ap.add_argument("--weir", help="a weir binary: `weir check` of unsafe configs")
    ap.add_argument("--webhook-listen", help="where a Slack-format webhook subscription of the instance posts")
    ap.add_argument("--only", help="comma-separated item numbers")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON (one line) instead of a table")
    ap.add_argument("--idle-timeout", type=int, default=30, help="the instance's server.idle_timeout_secs")
    ap.add_argument("--slots", type=int, default=8, help="slow connections to open (the instance's max_connections)")
    ap.add_argument("--attack-mib", type=int, default=200, help="size of each form POST")
    ap.add_argument("--parallel", type=int, default=4, help="form POSTs at once")
    ap.add_argument("--max-rss-mib", type=int, default=160, help="peak RSS a memory attack may cause")
    ap.add_argument("--ingest-records", type=int, default=20000)
    ap.add_argument("--wide-columns", type=int, default=100000)
    ap.add_argument("--wide-rows", type=int, default=50)
    ap.add_argument("--bomb-mib", type=int, default=6144, help="what the gzip bomb inflates to")
    ap.add_argument("--output-probe-mib", type=int, default=0, help="CSV size for the output.max_bytes row")
    ap.add_argument("--signin-attempts", type=int, default=12)
    args = ap.parse_args()
    inst = Instance(args)
    only = {int(x) for x in args.only.split(",")} if args.only else set(ITEMS)
    rows = Rows()
    for n, fn in ITEMS.items():
        if n in only:
            try:
                fn(inst, rows, args)
            except Exception as e:  # noqa: BLE001 - a probe that breaks is reported, not hidden
                rows.add(n, "the probe itself", "runs", f"error: {type(e).__name__}: {e}", False)
    if args.json:
        print(json.dumps(rows.rows))
    else:
        rows.print_table()
    sys.exit(1 if rows.unsafe() else 0)


if __name__ == "__main__":
    main()
