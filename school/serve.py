"""`make run`: start gunicorn (the site) and the job worker together; Ctrl-C stops both.

If either stops on its own, the other is stopped too, so nothing keeps running half-alive.
"""

import os
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)


def main() -> int:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "5000")
    commands = {
        "web": [os.path.join(BIN, "gunicorn"), "-c", "school/gunicorn_conf.py", "app:app"],
        "worker": [os.path.join(BIN, "flask"), "--app", "app", "jobs", "worker"],
    }
    # Children ignore the terminal's Ctrl-C; we forward one clean TERM to each instead.
    procs = {
        name: subprocess.Popen(  # noqa: S603 # nosec B603 # fixed commands of our own venv
            cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
        )
        for name, cmd in commands.items()
    }
    print(f"手机党校 is running on http://{host}:{port}/  (Ctrl-C stops the site and the worker)", flush=True)
    stopping = False

    def stop(*_args):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in procs.values()):
        time.sleep(0.3)
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + 15
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
    codes = {name: p.returncode for name, p in procs.items()}
    print(f"stopped: {codes}", flush=True)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
