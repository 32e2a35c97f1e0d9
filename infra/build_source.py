"""Build the zip that Cloud Functions deploys, from the repository root.

The archive contains what the python312 runtime needs: ``main.py``, the
``functions`` package and ``requirements.txt``, from which Cloud Build installs
the dependencies. Tests, infrastructure, local tooling, samples, docs, hidden
files and caches stay out.

The build is reproducible: entries are sorted and carry a fixed timestamp and
mode, so the same source gives the same bytes. Terraform names the uploaded
object after the archive's MD5, so an unchanged source redeploys nothing.

Usage: python infra/build_source.py [--repo-root DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import zipfile
from pathlib import Path

# Directory names left out at any depth.
EXCLUDED_DIRS = frozenset(
    {
        "tests",
        "infra",
        "benchmarks",
        "devstack",
        "samples",
        "docs",
        "node_modules",
        "__pycache__",
    }
)

# File name patterns left out at any depth. Cloud Build reads only
# requirements.txt, and the other requirements files list local tooling.
EXCLUDED_FILE_PATTERNS = (
    "*.pyc",
    "*.pyo",
    "*.md",
    "*.log",
    "*.zip",
    "requirements-*.txt",
    "firebase.json",
    "firestore.indexes.json",
    "*.rules",
)

# Files the runtime cannot start without.
REQUIRED_FILES = ("main.py", "requirements.txt")

# 1980-01-01 is the earliest time a zip entry can record.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644


def is_excluded(relative: Path) -> bool:
    """Return True if a path, relative to the repository root, stays out of the archive."""
    for part in relative.parts[:-1]:
        if part.startswith(".") or part in EXCLUDED_DIRS:
            return True
    name = relative.name
    if name.startswith("."):
        return True
    return any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED_FILE_PATTERNS)


def collect_files(repo_root: Path) -> list[Path]:
    """Return the sorted paths, relative to ``repo_root``, that go into the archive.

    Raises:
        FileNotFoundError: a file in REQUIRED_FILES is missing from ``repo_root``.
    """
    for required in REQUIRED_FILES:
        if not (repo_root / required).is_file():
            raise FileNotFoundError(
                f"{required} not found in {repo_root}; run this from the repository root "
                "or pass --repo-root"
            )

    selected = []
    for path in repo_root.rglob("*"):
        relative = path.relative_to(repo_root)
        if path.is_file() and not is_excluded(relative):
            selected.append(relative)
    return sorted(selected, key=lambda item: item.as_posix())


def build_archive(repo_root: Path, output: Path) -> list[Path]:
    """Write the archive of ``repo_root`` to ``output`` and return the paths it contains."""
    files = collect_files(repo_root)
    output.parent.mkdir(parents=True, exist_ok=True)

    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            entry = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_TIMESTAMP)
            entry.external_attr = FILE_MODE << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, (repo_root / relative).read_bytes())
    return files


def main(argv: list[str] | None = None) -> int:
    default_root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description="Build the Cloud Functions source archive.")
    parser.add_argument(
        "--repo-root",
        type=Path,
        default=default_root,
        help="repository to package (default: the parent of infra/)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=default_root / "infra" / "build" / "source.zip",
        help="zip file to write (default: infra/build/source.zip)",
    )
    args = parser.parse_args(argv)

    repo_root = args.repo_root.resolve()
    try:
        files = build_archive(repo_root, args.output)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    size = args.output.stat().st_size
    print(f"wrote {args.output} ({len(files)} files, {size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
