"""A throwaway site for browser tests and benchmarks: a SQLite instance with the demo content,
served by gunicorn on a free port, and the Chromium that drives it. Shared by tests/test_browser*.py
and the bench/ scripts.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
# Headless Debian Chromium in a closed network: no background calls home, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def instance_env(folder: Path, port: int | None = None) -> dict:
    """Environment for a SQLite instance in folder, whatever database/queue the caller's names
    (PostgreSQL and Redis in CI)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(
        INSTANCE_DIR=str(folder / "instance"),
        DATABASE_URL=f"sqlite:///{folder / 'instance' / 'school.db'}",
        QUEUE_URL=f"sqlite:///{folder / 'q.db'}",
        MEDIA_DIR=str(folder / "media"),
        INDEX_DIR=str(folder / "index"),
        HOST="127.0.0.1",
        WEB_WORKERS="2",
    )
    if port is not None:
        env["PORT"] = str(port)
    return env


def set_up_instance(env: dict) -> None:
    """Migrate the instance and load the demo content (as `make run` does)."""
    for args in (["db", "upgrade"], ["content", "load", "content/demo"]):
        done = subprocess.run(  # noqa: S603 (our own flask, fixed arguments)
            [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, seconds: float = 20) -> None:
    """Wait until url answers below 500; fail with the server's log if it dies or stays silent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (http on loopback)
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server for {url} did not answer within {seconds} s:\n{log.read_text()}")


def stop(procs: list[subprocess.Popen]) -> None:
    """Ask every process to end, then kill those still running after 15 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
