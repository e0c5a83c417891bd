"""The revision a benchmark measures: results in docs/ come from a committed tree.

A number measured on uncommitted changes cannot be reproduced by anyone else, so a
run that writes docs/performance.md refuses to start from a dirty tree (``.bench/``
and other ignored files do not count) unless told otherwise.
"""

from __future__ import annotations

import subprocess

from bench.servers import ROOT


def describe() -> str:
    """``git describe --always --dirty`` of the repository (``?`` outside git)."""
    out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def dirty_files() -> list[str]:
    """Tracked files changed and untracked files not ignored, as `git status` lists them."""
    out = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                         capture_output=True, text=True)
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def refuse_dirty(writes_docs: bool, allow_dirty: bool) -> str | None:
    """Why this run must not start (None: it may)."""
    if not writes_docs or allow_dirty:
        return None
    files = dirty_files()
    if not files:
        return None
    shown = ", ".join(files[:5]) + (" …" if len(files) > 5 else "")
    return (f"the tree has uncommitted changes ({shown}); results for docs/performance.md "
            "must name a clean commit. Commit first, or pass --allow-dirty (or --output "
            "elsewhere) for a trial run.")
