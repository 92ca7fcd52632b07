"""Full-page phone screenshots (360×740, Chinese) of the main pages, for eyeballing layout changes.

    python bench/page_shots.py [BASE_URL] [OUTDIR]      # defaults: http://127.0.0.1:5000 shots/

Needs a running site with the demo content (`make run` gives one) and Debian's /usr/bin/chromium.
"""

import sys
from pathlib import Path

import yaml
from live_site import CHROMIUM, CHROMIUM_ARGS, ROOT
from playwright.sync_api import sync_playwright

PHONE = {"width": 360, "height": 740}


def demo_password() -> str:
    people = yaml.safe_load((ROOT / "content" / "demo" / "people.yaml").read_text(encoding="utf-8"))
    return people["password"]


def shoot(page, path: str, out: Path, name: str) -> None:
    """Open a page and save it full length as OUTDIR/<name>.png."""
    if path:
        response = page.goto(path)
        if response is None or not response.ok:
            sys.exit(f"{path} answered {response and response.status}")
    file = out / f"{name}.png"
    page.screenshot(path=str(file), full_page=True)
    print(file)


def sign_in(page, login: str, password: str) -> None:
    page.goto("/sign-in")
    page.fill("#login", login)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form.card button[type=submit]")
    if "/sign-in" in page.url:
        sys.exit(f"could not sign in as {login}: is the demo content loaded?")


def main() -> int:
    base = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000").rstrip("/")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "shots")
    out.mkdir(parents=True, exist_ok=True)
    password = demo_password()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def tab():
            context = browser.new_context(locale="zh-CN", viewport=PHONE, base_url=base)
            return context, context.new_page()

        context, page = tab()
        shoot(page, "/sign-in", out, "sign-in")
        context.close()

        context, page = tab()
        sign_in(page, "member1", password)
        shoot(page, "", out, "member1-home")
        shoot(page, "/me", out, "member1-me")
        shoot(page, "/courses", out, "member1-courses")
        for number, query in enumerate(("三会一课", "党费", "PPT 课件", "怎么交党费")):
            shoot(page, f"/search?q={query}", out, f"member1-search-{number}")
        context.close()

        context, page = tab()
        sign_in(page, "org-district", password)
        org_link = page.locator("a[href^='/orgs/']").first.get_attribute("href")
        shoot(page, "", out, "org-district-home")
        shoot(page, "/members", out, "org-district-members")
        shoot(page, org_link, out, "org-district-org")
        for path in ("/warnings", "/compare", "/meetings", "/reports/hours", "/reports/courses", "/plans"):
            shoot(page, path, out, "org-district-" + path.strip("/").replace("/", "-"))
        context.close()

        context, page = tab()
        sign_in(page, "admin", password)
        shoot(page, "", out, "admin-home")
        context.close()

        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
