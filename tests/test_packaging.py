"""The distribution installs one top-level package, `vlagent`, with model/,
kernels/ and environments/ mapped inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
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


# What a build must not see or leave: version control, caches, earlier build output.
NOT_SOURCE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".pytest_cache",
                                    "runs", ".venv", ".whl", ".gl", ".cache")


def _build_wheel(workdir: Path) -> Path:
    # Built from a copy: setuptools writes build/ and rewrites vlagent.egg-info in the folder it
    # builds, and the checkout's egg-info belongs to its editable install.
    source = workdir / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = workdir / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("vlagent-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("build"))


def _tree_state() -> dict[str, float]:
    """Build leftovers in the checkout: build/ and the egg-info, with their modification times."""
    paths = [ROOT / "build", *ROOT.glob("*.egg-info")]
    return {str(p): p.stat().st_mtime for p in paths if p.exists()}


@pytest.mark.slow
def test_building_the_wheel_leaves_the_checkout_as_it_was(tmp_path: Path) -> None:
    before = _tree_state()
    egg_info = {p.name: p.read_bytes() for p in ROOT.glob("*.egg-info/*") if p.is_file()}
    assert zipfile.ZipFile(_build_wheel(tmp_path)).namelist()
    assert _tree_state() == before
    assert {p.name: p.read_bytes() for p in ROOT.glob("*.egg-info/*") if p.is_file()} == egg_info


def _source_modules() -> set[str]:
    """Every .py file of the four folders, as the path it must have inside the installed `vlagent`."""
    found = set()
    for folder, dotted in FOLDER_TO_PACKAGE.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add("/".join([*dotted.split("."), *path.relative_to(ROOT / folder).parts]))
    return found


@pytest.mark.slow
def test_wheel_has_only_the_vlagent_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"vlagent"}
    for sub in ("model", "kernels", "environments"):
        assert f"vlagent/{sub}/__init__.py" in names
    # The same modules under the same names as the working tree (what `pip install -e .` imports).
    missing = _source_modules() - {n for n in names if n.endswith(".py")}
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "vlagent/kernels/attention/cpu_flash.c" in names  # built on first use from the installed source
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vlagent = vlagent.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


INSTALLED_CHECK = """
import importlib.util, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
for name in ("vlagent", "vlagent.model", "vlagent.kernels", "vlagent.environments", "vlagent.actions"):
    origin = importlib.util.find_spec(name).origin
    assert origin.startswith(site), (name, origin, site)
from vlagent.actions import parse_actions
from vlagent.environments.practice.desktop_app import launch
print("installed ok")
"""


@pytest.mark.slow
def test_plain_install_of_the_wheel_imports_from_site_packages(wheel: Path, tmp_path: Path) -> None:
    # A venv that sees this machine's packages (torch, ...) but gets vlagent only from the wheel.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    assert not {"model", "kernels", "environments"} & {p.name for p in site.iterdir()}
    # Run outside the checkout, so its folders are not on sys.path.
    done = subprocess.run([str(python), "-c", INSTALLED_CHECK], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and "installed ok" in done.stdout, done.stdout + done.stderr
    done = subprocess.run([str(venv / "bin" / "vlagent"), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("vlagent "), done.stderr


# Optional dependencies (the extras): the base API must work without any of them.
OPTIONAL_MODULES = (
    "torch", "transformers", "triton", "safetensors", "tokenizers",  # model, gpu
    "mss", "pyautogui", "pyscreeze", "Xlib",  # desktop
    "openai", "httpx",  # api
    "adbutils",  # android
    "av",  # video
)  # fmt: skip

BASE_API_SCRIPT = """
import importlib.abc, sys
from pathlib import Path

BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, Block())

import vlagent
from vlagent.actions import Action, parse_actions
from vlagent.agent import Agent
from vlagent.environments import BaseEnvironment, EnvironmentUnavailable, Observation
from vlagent.policy import ScriptedPolicy
from PIL import Image

assert parse_actions('<tool_call>{"name": "computer_use", "arguments": {"action": "left_click", '
                     '"coordinate": [500, 250]}}</tool_call>') == [Action("click", point=(0.5, 0.25))]

class Screen(BaseEnvironment):
    name = "screen"
    def __init__(self):
        self.executed = []
    def observe(self):
        return Observation(image=Image.new("RGB", (64, 48), "white"), screen_size=(64, 48))
    def execute(self, action):
        self.executed.append(action)

env = Screen()
result = Agent(ScriptedPolicy([Action("click", point=(0.5, 0.5))]), env, run_dir=Path(sys.argv[2]) / "run").run("t")
assert result.status == "done" and len(env.executed) == 1 and result.report.is_file(), result

# The optional parts say which extra to install.
from vlagent.cli import EXIT_POLICY, main
assert main(["run", "t", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"]) == EXIT_POLICY
from vlagent.environments.desktop import DesktopEnv
try:
    DesktopEnv(display=":0")
except EnvironmentUnavailable as e:
    assert "vlagent[desktop]" in str(e), e
else:
    raise AssertionError("DesktopEnv started without mss")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("base API ok")
"""


def test_base_api_works_without_the_optional_dependencies(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BASE_API_SCRIPT, ",".join(OPTIONAL_MODULES), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "base API ok" in done.stdout, done.stdout + done.stderr
    assert "vlagent[api]" in done.stderr  # the CLI named the extra that provides openai


def test_base_dependencies_stay_light() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {dep.split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in config["dependencies"]}
    assert base <= {"pillow", "numpy", "rich"}, f"heavy base dependencies: {sorted(base)}"
    extras = config["optional-dependencies"]
    assert {"desktop", "android", "api", "video", "model", "gpu", "all", "dev"} <= set(extras)
    for module, extra in (("mss", "desktop"), ("pyautogui", "desktop"), ("openai", "api"), ("adbutils", "android"),
                          ("av", "video"), ("torch", "model"), ("transformers", "model"), ("triton", "gpu")):  # fmt: skip
        assert any(dep.lower().startswith(module) for dep in extras[extra]), f"{module} missing from [{extra}]"
