"""The environment a run records: the commit and whether the checkout had uncommitted changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from compressor._util import environment as env_module


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_dirty_sees_a_changed_tracked_file_and_ignores_untracked_ones_and_outputs(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    tracked = repo / "pkg" / "mod.py"
    tracked.write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    monkeypatch.setattr(env_module, "__file__", str(tracked))  # as if the package lived in that checkout
    assert env_module.git_dirty() is False and env_module.git_commit()
    (repo / "pkg" / "new.py").write_text("y = 2\n")
    assert env_module.git_dirty() is False  # untracked files are not the code that ran
    report = repo / "reports" / "r" / "README.md"
    report.parent.mkdir(parents=True)
    report.write_text("old\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "report"], check=True)
    report.write_text("regenerated\n")
    assert env_module.git_dirty() is False  # a committed report being rewritten is output, not code
    tracked.write_text("x = 2\n")
    assert env_module.git_dirty() is True
    monkeypatch.setattr(env_module, "__file__", str(tmp_path / "elsewhere" / "mod.py"))
    (tmp_path / "elsewhere").mkdir()
    assert env_module.git_dirty() is None  # not a checkout
    assert "git_dirty" in env_module.environment()
