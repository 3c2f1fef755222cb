"""weir's thumbnails against the seed's Pillow code, on one core, in one run (bench/images.sh).

For a set of generated 12-megapixel JPEGs (bench/gen_photos.py), each contender makes the three
thumbnails (150, 300, 600 px, JPEG quality 85) and the metadata of every picture:

  weir-image      the pipeline's core (weir_image::process) in one process, pictures in memory
                  (crates/weir-image/examples/thumbnails.rs)
  weir process    the CLI, one process per picture: start, read, thumbnails and metadata written
  Pillow          the seed's process_image (bench/pillow_seed.py): Image.thumbnail(LANCZOS) on a
                  copy per size, save(quality=85, optimize=True)

Every process is pinned to one CPU (taskset). Reported: images/s (best of --repeat rounds),
CPU seconds per image, peak RSS (the process's maximum resident set, from wait4), the ratios,
and how alike the outputs are (PSNR of weir's large thumbnail against Pillow's).
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

ROOT = Path(__file__).resolve().parent.parent


def run_measured(cmd, cpu):
    """As run, with the child's own CPU time and peak RSS (wait4 on that child alone)."""
    started = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", str(cpu), *map(str, cmd)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err.decode()}")
    return out.decode(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def rate(stdout):
    m = re.search(r"([\d.]+) images/s", stdout)
    return float(m.group(1))


def psnr(a, b):
    a, b = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    if a.size != b.size:
        b = b.resize(a.size, Image.Resampling.LANCZOS)
    mse = sum(v * v for v in ImageStat.Stat(ImageChops.difference(a, b)).rms) / 3
    return float("inf") if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10, help="how many 12 MP photos (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per contender; the best counts (default 3)")
    ap.add_argument("--weir", default=str(ROOT / "target/release/weir"))
    ap.add_argument("--thumbnails", default=str(ROOT / "target/release/examples/thumbnails"))
    ap.add_argument("--out", default=str(ROOT / "bench/out"))
    args = ap.parse_args()

    out = Path(args.out)
    photos_dir = out / "photos"
    subprocess.run([sys.executable, ROOT / "bench/gen_photos.py", str(args.images), photos_dir], check=True)
    photos = sorted(photos_dir.glob("photo*.jpg"))[: args.images]
    mb = sum(p.stat().st_size for p in photos) / 1e6
    cpu = max(os.sched_getaffinity(0))
    print(f"{len(photos)} photos, 4000 x 3000, {mb:.1f} MB in all; every process pinned to CPU {cpu}; best of {args.repeat}")

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        contenders = {
            "weir-image (in process)": [args.thumbnails, "--out", tmp / "weir", *photos],
            "Pillow (seed's code)": [sys.executable, ROOT / "bench/pillow_seed.py", "--out", tmp / "pillow", *photos],
        }
        for _ in range(args.repeat):
            # In turn, so a busy moment of a shared machine falls on both alike.
            for name, cmd in contenders.items():
                stdout, wall, cpu_s, rss = run_measured(cmd, cpu)
                best = rows.get(name)
                ips = rate(stdout)
                if best is None or ips > best[0]:
                    rows[name] = (ips, cpu_s / len(photos), max(rss, best[2] if best else 0))
                else:
                    rows[name] = (best[0], best[1], max(rss, best[2]))
            # weir process: one process per photo, end to end.
            total, cpu_total, peak = 0.0, 0.0, 0
            for p in photos:
                _, wall, cpu_s, rss = run_measured([args.weir, "process", p, "--out", tmp / "cli"], cpu)
                total, cpu_total, peak = total + wall, cpu_total + cpu_s, max(peak, rss)
            name = "weir process (a process each)"
            ips = len(photos) / total
            best = rows.get(name)
            if best is None or ips > best[0]:
                rows[name] = (ips, cpu_total / len(photos), max(peak, best[2] if best else 0))
            else:
                rows[name] = (best[0], best[1], max(peak, best[2]))

        print()
        print(f"{'':32} {'images/s':>9} {'CPU ms/image':>13} {'peak RSS':>10}")
        for name in ["weir-image (in process)", "weir process (a process each)", "Pillow (seed's code)"]:
            ips, cpu_per, rss = rows[name]
            print(f"{name:32} {ips:9.2f} {cpu_per * 1e3:13.1f} {rss / 1024:7.1f} MiB")
        pil = rows["Pillow (seed's code)"][0]
        print()
        print(f"weir-image vs Pillow:    {rows['weir-image (in process)'][0] / pil:.2f}x the images/s on one core")
        print(f"weir process vs Pillow:  {rows['weir process (a process each)'][0] / pil:.2f}x (process start and file writes included)")
        scores = {size: [psnr(tmp / "weir" / f"{p.name}_{size}.jpg", tmp / "pillow" / f"{p.name}_{size}.jpg") for p in photos]
                  for size in ["small", "medium", "large"]}
        alike = ", ".join(f"{s} {min(v):.1f}-{max(v):.1f} dB" for s, v in scores.items())
        print(f"outputs alike (PSNR of weir's thumbnails against Pillow's): {alike}")


if __name__ == "__main__":
    main()
