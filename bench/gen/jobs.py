"""Writes N valid job files under DIR/jobs.d, for benchmarks that need a big jobs directory.

The files vary the way a real directory does: several libraries, providers, scopes, field
groups, cron expressions and zones, one job per file in folders of 100, each with its schema
modeline. The output depends only on N, so every run measures the same files.
"""

import os
import random
import sys

LIBRARIES = ["manga", "comics", "books"]
PROVIDERS = ["curated", "plugin:curated", "plugin:anilist-mirror", "openlibrary-mirror"]
SERIES_GROUPS = ["identifiers", "descriptive", "status", "counts", "ratings", "cover", "tags",
                 "genres", "age_rating", "classification", "publisher", "external_refs",
                 "summary", "alternate_titles"]
BOOK_GROUPS = ["title", "number", "summary", "authors", "release_date", "page_count", "isbn",
               "publisher", "cover"]
EXTRA_FIELDS = ["language", "readingDirection", "year", "titleSort"]
CRONS = ["0 4 * * *", "30 5 * * 0", "0 3 1 * *", "*/30 * * * *", "15 2 * * 1-5", "@daily",
         "@weekly", "0 0 4 * * *", "0 6,18 * * *", "45 23 L * *"]
ZONES = [None, "Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"]


def job(rng: random.Random, n: int) -> str:
    library = rng.choice(LIBRARIES)
    scope = rng.choice(["series_only", "books_only", "series_and_books"])
    lines = [
        "# yaml-language-server: $schema=../../schemas/library-job.schema.json",
        "apiVersion: curator/v1",
        "kind: LibraryJob",
        f"name: Refresh {n:05d}",
        f"library: {library}",
    ]
    if rng.random() < 0.2:
        lines.append("enabled: false")
    lines.append("schedule:")
    lines.append(f'  cron: "{rng.choice(CRONS)}"')
    zone = rng.choice(ZONES)
    if zone:
        lines.append(f"  timezone: {zone}")
    if rng.random() < 0.3:
        lines.append(f"  jitter: {rng.choice(['90s', '10m', '1h'])}")
    lines += ["type: metadata_refresh", f"provider: {rng.choice(PROVIDERS)}", f"scope: {scope}"]
    if scope != "books_only":
        groups = rng.sample(SERIES_GROUPS, rng.randint(1, 4))
        lines.append(f"fieldGroups: [{', '.join(groups)}]")
        if rng.random() < 0.3:
            lines.append(f"extraFields: [{rng.choice(EXTRA_FIELDS)}]")
    if scope != "series_only":
        lines.append("bookFieldGroups:")
        lines += [f"  - {g}" for g in rng.sample(BOOK_GROUPS, rng.randint(1, 3))]
    if rng.random() < 0.5:
        lines.append(f"skipRecentlySyncedWithinS: {rng.choice([0, 3600, 86400])}")
    if rng.random() < 0.5:
        lines.append(f"maxConcurrency: {rng.randint(1, 16)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    count, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(20261203)
    for n in range(count):
        folder = os.path.join(out, "jobs.d", f"batch-{n // 100:03d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"job-{n:05d}.yaml"), "w", encoding="utf-8") as f:
            f.write(job(rng, n))


if __name__ == "__main__":
    main()
