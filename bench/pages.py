"""Requests/s of a signed-in member's home page against a bare Flask "hello", same gunicorn, same run.

    python bench/pages.py

Sets up a throwaway instance (db upgrade + demo content), starts our site and a one-route Flask app
under gunicorn with the same config file (2 sync workers, access log off), signs member1 in, then
loads each with `wrk -t2 -c8 -d10s` after a 2 s warm-up. The last line is `ratio: X.XX` (ours ÷ hello):
the share of a bare Flask app's throughput the real page keeps on this machine.
Also prints the sign-in page weight (HTML + linked css, icons, manifest).
"""

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests
import yaml
from live_site import BIN, ROOT, free_port, instance_env, set_up_instance, stop, wait_healthy

MEMBER = "member1"
WARM_UP, DURATION, THREADS, CONNECTIONS = 2, 10, 2, 8
HELLO_APP = '''"""A bare Flask app: the ceiling for any page served by this gunicorn set-up."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"
'''


def start_gunicorn(app: str, env: dict, port: int, log: Path, extra: list[str]) -> subprocess.Popen:
    """gunicorn with our config file (2 sync workers) and no access log, so both servers match."""
    command = [
        str(BIN / "gunicorn"),
        "-c",
        "school/gunicorn_conf.py",
        "--access-logfile",
        "/dev/null",
        *extra,
        app,
    ]
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env={**env, "PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT
        )


def demo_account(login: str) -> tuple[str, str]:
    """(password, display name) of a demo account, from the demo content itself."""
    people = yaml.safe_load((ROOT / "content" / "demo" / "people.yaml").read_text(encoding="utf-8"))
    return people["password"], next(u["name"] for u in people["users"] if u.get("username") == login)


def sign_in_cookie(base: str, login: str, password: str) -> str:
    """The Cookie header of a session signed in through the real form."""
    session = requests.Session()
    page = session.get(base + "/sign-in", timeout=5)
    token = re.search(r'name="csrf_token"[^>]* value="([^"]+)"', page.text)
    if not token:
        sys.exit("no CSRF token on /sign-in")
    done = session.post(
        base + "/sign-in",
        data={"login": login, "password": password, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=5,
    )
    if done.status_code != 302:
        sys.exit(f"sign-in as {login} answered {done.status_code}, expected a redirect")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def check_home(base: str, cookie: str, name: str) -> None:
    """Fail loudly unless the cookie alone (as wrk sends it, no browser headers) shows the member's home."""
    response = requests.get(
        base + "/",
        headers={"Cookie": cookie, "User-Agent": None, "Accept-Language": "zh-CN"},
        allow_redirects=False,
        timeout=5,
    )
    if response.status_code != 200 or name not in response.text:
        sys.exit(
            f"member home answered {response.status_code} without {name!r}; not measuring a sign-in page"
        )


class Links(HTMLParser):
    """Collects the URLs a browser fetches to show a page: stylesheets, icons, manifest, images."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        rels = set((a.get("rel") or "").lower().split())
        if tag == "link" and rels & {"stylesheet", "icon", "manifest", "apple-touch-icon"} and a.get("href"):
            self.urls.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.urls.append(a["src"])


def sign_in_weight(base: str) -> list[tuple[str, int]]:
    """Bytes of the sign-in page and each distinct resource it links."""
    page = requests.get(base + "/sign-in", headers={"Accept-Language": "zh-CN"}, timeout=5)
    parser = Links()
    parser.feed(page.text)
    sizes = [("/sign-in", len(page.content))]
    for url in dict.fromkeys(parser.urls):
        sizes.append((url, len(requests.get(urljoin(base + "/", url), timeout=5).content)))
    return sizes


def run_wrk(url: str, seconds: int, cookie: str | None) -> tuple[float, str]:
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "-H", "Accept-Language: zh-CN"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw errors on {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), out


def run_threads(url: str, seconds: int, cookie: str | None) -> tuple[float, str]:
    """Fallback without wrk: CONNECTIONS Python threads looping requests (the client is the limit)."""
    stop = time.monotonic() + seconds
    counts, failures = [0] * CONNECTIONS, [0] * CONNECTIONS  # one slot per thread: no lock needed

    def loop(i: int) -> None:
        session = requests.Session()
        headers = {"Accept-Language": "zh-CN", **({"Cookie": cookie} if cookie else {})}
        while time.monotonic() < stop:
            ok = session.get(url, headers=headers, allow_redirects=False, timeout=10).status_code == 200
            counts[i] += ok
            failures[i] += not ok

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(loop, range(CONNECTIONS)))
    if sum(failures):
        sys.exit(f"{sum(failures)} requests to {url} did not answer 200")
    rate = sum(counts) / (time.monotonic() - started)
    return rate, f"{sum(counts)} requests in {seconds} s with {CONNECTIONS} threads"


def measure(label: str, url: str, cookie: str | None, load) -> float:
    load(url, WARM_UP, cookie)
    rate, out = load(url, DURATION, cookie)
    print(f"{label}: {rate:.1f} requests/s")
    for line in out.splitlines():
        if line.strip().startswith("Latency") or "requests in" in line:
            print(f"  {line.strip()}")
    return rate


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="school-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        env = instance_env(folder)
        set_up_instance(env)
        (folder / "bench_hello.py").write_text(HELLO_APP)
        ours, hello = free_port(), free_port()
        ours_log, hello_log = folder / "ours.log", folder / "hello.log"
        procs.append(start_gunicorn("app:app", env, ours, ours_log, []))
        procs.append(start_gunicorn("bench_hello:app", env, hello, hello_log, ["--pythonpath", str(folder)]))
        ours_url, hello_url = f"http://127.0.0.1:{ours}/", f"http://127.0.0.1:{hello}/"
        wait_healthy(ours_url + "healthz", procs[0], ours_log)
        wait_healthy(hello_url, procs[1], hello_log)

        base = ours_url.rstrip("/")
        password, name = demo_account(MEMBER)
        cookie = sign_in_cookie(base, MEMBER, password)
        check_home(base, cookie, name)

        sizes = sign_in_weight(base)
        for url, size in sizes:
            print(f"{size:>7}  {url}")
        print(f"sign-in page weight: {sum(size for _, size in sizes)} bytes")

        if shutil.which("wrk"):
            load = run_wrk
            print(
                f"load: wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s after a {WARM_UP} s warm-up, "
                f"gunicorn 2 sync workers, {os.cpu_count()} CPUs shared with the client"
            )
        else:
            load = run_threads
            print(
                f"load: wrk not found, falling back to {CONNECTIONS} Python threads with requests "
                f"({DURATION} s after a {WARM_UP} s warm-up); the client limits these numbers"
            )
        ours_rate = measure(f"member home (GET / as {MEMBER})", ours_url, cookie, load)
        check_home(base, cookie, name)  # still signed in: we measured the real page
        hello_rate = measure("bare Flask hello", hello_url, None, load)
        print(f"ratio: {ours_rate / hello_rate:.2f}")
        return 0
    finally:
        stop(procs)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
