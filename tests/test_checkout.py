"""The suite refuses to test another checkout's packages (conftest.py, checkout.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from checkout import PACKAGE_FOLDERS, ROOT, foreign_packages, refusal_message


def test_this_run_imports_this_checkout():
    assert foreign_packages() == {}


def test_another_root_is_foreign_and_the_message_says_how_to_fix_it(tmp_path: Path):
    foreign = foreign_packages(tmp_path)
    assert set(foreign) == set(PACKAGE_FOLDERS)
    assert foreign["vlagent.model"] == (ROOT / "model").resolve()
    message = refusal_message(foreign, tmp_path)
    assert "pip install -e ." in message and str(tmp_path) in message and "vlagent.kernels" in message


def test_a_second_clone_refuses_to_run(tmp_path: Path):
    # A clone whose vlagent/ is found first (the current directory) but whose model/ etc. come
    # from the editable install of this checkout: the suite must stop before running anything.
    clone = tmp_path / "clone"
    (clone / "tests").mkdir(parents=True)
    shutil.copytree(ROOT / "vlagent", clone / "vlagent", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "checkout.py"):
        shutil.copy(ROOT / "tests" / name, clone / "tests" / name)
    (clone / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=clone,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert "vlagent.model <- " + str((ROOT / "model").resolve()) in done.stdout + done.stderr
    assert f"run `pip install -e .` in {clone}" in done.stdout + done.stderr
    assert "1 passed" not in done.stdout
