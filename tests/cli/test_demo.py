"""`koda demo`: a scripted run, offline, that leaves nothing behind."""

from __future__ import annotations

import time

from .helpers import Koda, clean_env


def demo_env(koda: Koda) -> dict[str, str]:
    """No provider, no script; a private temp dir so we can see the demo clean up after itself."""
    tmp = koda.base / "tmp"
    tmp.mkdir(exist_ok=True)
    return clean_env({"KODA_HOME": str(koda.home), "TMPDIR": str(tmp)})


def test_demo_fast(koda: Koda) -> None:
    env = demo_env(koda)
    before = sorted(p.name for p in koda.project.iterdir())
    proc = koda.run("demo", "--fast", env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "Fixed: `greet()` now returns `Hello, {name}!`" in proc.stdout
    assert "SCRIPTED" in proc.stderr
    assert "no model is called" in proc.stderr
    assert "Hello, Ada!" in proc.stderr, "the edited file really ran"
    assert "✓ Edit" in proc.stderr
    assert "SCRIPTED" not in proc.stdout, "banners and progress belong on stderr"
    assert not koda.home.exists(), "the demo must not touch the user's session store"
    assert sorted(p.name for p in koda.project.iterdir()) == before
    assert list((koda.base / "tmp").iterdir()) == [], "the throwaway folder is removed"


def test_demo_at_normal_pace_is_short(koda: Koda) -> None:
    start = time.monotonic()
    proc = koda.run("demo", env=demo_env(koda), timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 10, f"the demo took {elapsed:.1f}s"
    assert "Hello, Ada!" in proc.stderr
    assert not koda.home.exists()


def test_demo_rejects_unknown_flags(koda: Koda) -> None:
    proc = koda.run("demo", "--slow", env=demo_env(koda))
    assert proc.returncode == 2
    assert "unrecognized arguments" in proc.stderr
