"""Transcode pipeline overhead, in the same run on a generated 60 s 1080p30 source:
(a) the pipeline: probe + plan + transcode (one ffmpeg run, then the poster and checks of each output);
(b) raw_command(): the one plain ffmpeg command making the same 360p, high and audio files.
The poster is extra work of (a) only, so it counts as overhead.

Usage: python bench/transcode.py [--seconds 60] [--rounds 1]
Last line: `ratio: X.XX` = pipeline wall time ÷ raw ffmpeg wall time (goal ≤ 1.15). With more rounds
the two alternate and the line gives the median of the per-round ratios; the line before it compares
the CPU time of the child processes, which other load on the machine disturbs less.
"""

import argparse
import os
import resource
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn, src: Path, out: Path) -> tuple[float, float, dict[str, int]]:
    """(wall seconds, CPU seconds of the ffmpeg/ffprobe children, output sizes)."""
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), children_cpu()
    sizes = fn(src, out)
    return time.perf_counter() - start, children_cpu() - cpu, sizes


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
        wall, cpu, sizes = {"pipeline": [], "raw": []}, {"pipeline": [], "raw": []}, {}
        for n in range(args.rounds):
            for name, fn in (("pipeline", pipeline), ("raw", raw)):
                seconds, cpu_seconds, sizes[name] = timed(fn, src, folder / name)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
                speed = f"{args.seconds / seconds:.1f}× realtime"
                print(f"round {n + 1} {name:8} {seconds:6.2f} s ({speed}), CPU {cpu_seconds:.1f} s")
        for name in wall:
            listed = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes[name].items()))
            print(f"{name:8} median {statistics.median(wall[name]):6.2f} s | {listed}")
    # Paired per round (the two runs sit next to each other in time), then the median of the pairs.
    ratios = [p / r for p, r in zip(wall["pipeline"], wall["raw"], strict=True)]
    cpu_ratios = [p / r for p, r in zip(cpu["pipeline"], cpu["raw"], strict=True)]
    print(f"cpu ratio: {statistics.median(cpu_ratios):.2f}  (less sensitive to other load on the machine)")
    print(f"ratio: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
