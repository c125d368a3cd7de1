"""The distribution installs one top-level package, `vlagent`, with model/,
kernels/ and environments/ mapped inside it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER_TO_PACKAGE = {
    "vlagent": "vlagent",
    "model": "vlagent.model",
    "kernels": "vlagent.kernels",
    "environments": "vlagent.environments",
}


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def _package_folders() -> set[str]:
    found = set()
    for folder, dotted in FOLDER_TO_PACKAGE.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([dotted, *rel.parts]) if rel.parts else dotted)
    return found


def test_every_package_folder_is_declared() -> None:
    missing = _package_folders() - _declared_packages()
    assert not missing, f"add these to [tool.setuptools].packages in pyproject.toml: {sorted(missing)}"


def test_declared_packages_exist() -> None:
    stale = _declared_packages() - _package_folders()
    assert not stale, f"pyproject.toml lists packages with no folder: {sorted(stale)}"


@pytest.mark.slow
def test_wheel_has_only_the_vlagent_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("vlagent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"vlagent"}
    for sub in ("model", "kernels", "environments"):
        assert f"vlagent/{sub}/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vlagent = vlagent.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
