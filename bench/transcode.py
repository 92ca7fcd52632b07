"""Transcode pipeline overhead, in the same run on a generated 60 s 1080p30 source:
(a) the pipeline: probe + plan + transcode (one ffmpeg run, then the poster and checks of each output);
(b) raw_command(): the one plain ffmpeg command making the same 360p, high and audio files.
The poster is extra work of (a) only, so it counts as overhead.

Usage: python bench/transcode.py [--seconds 60] [--rounds 1]
Last line: `ratio: X.XX` = pipeline wall time ÷ raw ffmpeg wall time (goal ≤ 1.15). With more rounds
the two alternate and the medians are compared.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from school.media.binaries import paths, version  # noqa: E402
from school.media.probe import probe  # noqa: E402
from school.media.transcode import plan, raw_command, transcode  # noqa: E402


def generate(folder: Path, seconds: int) -> Path:
    src = folder / "source.mp4"
    lavfi = [
        *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
    ]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    subprocess.run([paths()[0], "-hide_banner", "-v", "error", "-y", *lavfi, *codecs, str(src)], check=True)
    return src


def pipeline(src: Path, out: Path) -> dict[str, int]:
    info = probe(src)
    plan(info)  # transcode() plans again; timed here as the worker would call it
    return {name: o.size for name, o in transcode(src, out, info).items()}


def raw(src: Path, out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(raw_command(src, out), check=True)
    return {p.stem: p.stat().st_size for p in sorted(out.iterdir())}


def timed(fn, src: Path, out: Path) -> tuple[float, dict[str, int]]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    sizes = fn(src, out)
    return time.perf_counter() - start, sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(version(paths()[0]), f"| {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        src = generate(folder, args.seconds)
        size = src.stat().st_size
        print(f"source: {args.seconds} s 1080p30 + sine, {size / 1e6:.1f} MB, generated in "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        runs = {"pipeline": [], "raw": []}
        sizes = {}
        for n in range(args.rounds):
            for name, fn in (("pipeline", pipeline), ("raw", raw)):
                seconds, sizes[name] = timed(fn, src, folder / name)
                runs[name].append(seconds)
                print(f"round {n + 1} {name:8} {seconds:6.2f} s ({args.seconds / seconds:.1f}× realtime)")
        for name in runs:
            listed = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes[name].items()))
            print(f"{name:8} median {statistics.median(runs[name]):6.2f} s | {listed}")
    print(f"ratio: {statistics.median(runs['pipeline']) / statistics.median(runs['raw']):.2f}")


if __name__ == "__main__":
    main()
