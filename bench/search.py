"""Search at scale: the project's search function against plain Whoosh + jieba, same corpus, same run.

Generates N (default 50,000) Chinese lesson documents in a temporary SQLite database (500 published
courses), indexes them with the project's rebuild (jieba search mode + user dictionary + grams) and,
for the baseline, with plain Whoosh + jieba's ChineseAnalyzer on title and body; then runs 1,000
queries through `school.search.service.search` (which also checks visibility in the database and
builds highlighted snippets) and through a plain QueryParser search with highlights.
Usage: python bench/search.py [--docs 50000] [--queries 1000]
Last line: `ratio: X` = project mean query time ÷ plain mean query time (goal ≤ 1.2; p95 < 50 ms).
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TMP = tempfile.mkdtemp(prefix="bench-search-")
os.environ.setdefault("INSTANCE_DIR", TMP)
os.environ.setdefault("QUEUE_URL", f"sqlite:///{TMP}/queue.db")
os.environ.setdefault("INDEX_DIR", f"{TMP}/index")

import sqlalchemy as sa  # noqa: E402
from jieba.analyse import ChineseAnalyzer  # noqa: E402
from tqdm import tqdm  # noqa: E402
from whoosh import highlight  # noqa: E402
from whoosh import index as whoosh_index  # noqa: E402
from whoosh.fields import ID, TEXT, Schema  # noqa: E402
from whoosh.qparser import MultifieldParser  # noqa: E402

from school import create_app, db  # noqa: E402
from school.accounts.models import User  # noqa: E402
from school.courses.models import Course, Lesson  # noqa: E402
from school.search import service  # noqa: E402
from school.search.analysis import USER_DICT, load_dictionary  # noqa: E402


def vocabulary() -> tuple[list[str], list[float]]:
    """Words and weights for a realistic corpus: jieba's dictionary (word frequencies are Zipf-like)
    plus the party-work terms of our user dictionary."""
    import jieba

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word, freq, *_ = line.split()
            if len(word) >= 2:
                rows.append((word, int(freq)))
    rows.sort(key=lambda r: -r[1])
    rows = rows[:20_000]
    if USER_DICT.exists():
        terms = [
            line.split()[0] for line in USER_DICT.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        rows += [(term, 3000) for term in terms]
    return [w for w, _f in rows], [float(f) for _w, f in rows]


def sentence(rng: random.Random, vocab: tuple[list[str], list[float]]) -> str:
    words = rng.choices(vocab[0], weights=vocab[1], k=rng.randint(6, 14))
    return "".join(words) + rng.choice("。，；")


def build_database(n_docs: int, vocab: list[str]) -> None:
    rng = random.Random(7)
    owner = User(display_name="讲师", username="bench", password_hash="x", must_change_password=False)
    db.session.add(owner)
    db.session.flush()
    per_course = max(1, n_docs // 500)
    courses = [
        {
            "title": f"课程{c}{rng.choice(vocab[0])}",
            "description": sentence(rng, vocab),
            "owner_id": owner.id,
            "state": "published",
            "published_at": db.utcnow(),
        }
        for c in range(500)
    ]
    db.session.execute(sa.insert(Course), courses)
    course_ids = db.session.scalars(sa.select(Course.id)).all()
    lessons = []
    for i in range(n_docs):
        lessons.append(
            {
                "course_id": course_ids[i // per_course % len(course_ids)],
                "position": i,
                "title": "".join(rng.choices(vocab[0], weights=vocab[1], k=2)),
                "state": "published",
                "completion": "read",
                "body_md": "".join(sentence(rng, vocab) for _ in range(rng.randint(3, 8))),
            }
        )
    db.session.execute(sa.insert(Lesson), lessons)
    db.session.commit()


def plain_index(path: str):
    ix = whoosh_index.create_in(
        path,
        Schema(
            key=ID(stored=True, unique=True),
            title=TEXT(analyzer=ChineseAnalyzer(), stored=True),
            body=TEXT(analyzer=ChineseAnalyzer(), stored=True),
        ),
    )
    writer = ix.writer()
    for lesson_id, title, body in tqdm(
        db.session.execute(sa.select(Lesson.id, Lesson.title, Lesson.body_md)),
        desc="plain whoosh+jieba",
        unit="doc",
    ):
        writer.add_document(key=str(lesson_id), title=title, body=body)
    writer.commit()
    return ix


def folder_mb(path: str) -> float:
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file()) / 2**20


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    app = create_app({"DATABASE_URL": f"sqlite:///{TMP}/bench.db"})
    with app.test_request_context():
        db.Base.metadata.create_all(db.engine)
        load_dictionary()
        vocab = vocabulary()
        build_database(args.docs, vocab)
        with tqdm(desc="project index", unit="course") as bar:
            started = time.perf_counter()
            count = service.rebuild(
                lambda done, total: (setattr(bar, "total", total), bar.update(done - bar.n))
            )
        project_seconds = time.perf_counter() - started
        rate = count / project_seconds
        size = folder_mb(os.path.realpath(os.path.join(os.environ["INDEX_DIR"], "current")))
        print(
            f"project index: {count} documents in {project_seconds:.0f} s ({rate:.0f} docs/s), {size:.0f} MB"
        )
        plain_dir = os.path.join(TMP, "plain")
        os.mkdir(plain_dir)
        started = time.perf_counter()
        plain = plain_index(plain_dir)
        plain_seconds = time.perf_counter() - started
        rate = args.docs / plain_seconds
        size = folder_mb(plain_dir)
        print(
            f"plain index:   {args.docs} documents in {plain_seconds:.0f} s ({rate:.0f} docs/s), "
            f"{size:.0f} MB"
        )

        rng = random.Random(11)
        # What members type: content words (not the 300 commonest), one or two of them.
        words, weights = vocab[0][300:], vocab[1][300:]
        queries = [
            " ".join(rng.choices(words, weights=weights, k=rng.choice((1, 1, 2))))
            for _ in range(args.queries)
        ]
        qparser = MultifieldParser(["title", "body"], plain.schema)
        ours, theirs = [], []
        shown = {"project": 0, "plain  ": 0}
        with plain.searcher() as searcher:
            for q in tqdm(queries, desc="queries", unit="q"):
                started = time.perf_counter()
                shown["project"] += len(service.search(q, per_page=20).hits)
                ours.append(time.perf_counter() - started)
                started = time.perf_counter()
                found = searcher.search(qparser.parse(q), limit=20)
                found.formatter = highlight.HtmlFormatter(tagname="mark")
                for hit in found:
                    hit.highlights("body", top=2)
                    shown["plain  "] += 1
                theirs.append(time.perf_counter() - started)
        for name, times in (("project", ours), ("plain  ", theirs)):
            print(
                f"{name} query: {shown[name] / len(times):.1f} hits shown, "
                f"{sum(times) * 1000 / max(shown[name], 1):.2f} ms per hit shown, "
                f"mean {statistics.mean(times) * 1000:.1f} ms, "
                f"p50 {percentile(times, 0.5) * 1000:.1f} ms, p95 {percentile(times, 0.95) * 1000:.1f} ms"
            )
        # A lone character (课, 党) is also looked up in the gram field, whose lists are long:
        # its cost on its own (plain Whoosh+jieba finds it only where jieba cut it alone).
        characters = "".join(words)
        singles = [rng.choice(characters) for _ in range(max(1, args.queries // 10))]
        times, hits = [], 0
        for q in singles:
            started = time.perf_counter()
            hits += len(service.search(q, per_page=20).hits)
            times.append(time.perf_counter() - started)
        print(
            f"project single-character query ({len(singles)}): {hits / len(singles):.1f} hits shown, "
            f"mean {statistics.mean(times) * 1000:.1f} ms, p95 {percentile(times, 0.95) * 1000:.1f} ms"
        )
        print(f"ratio: {statistics.mean(ours) / statistics.mean(theirs):.2f}")


if __name__ == "__main__":
    main()
