"""Which checkout the `vlagent.*` packages are imported from.

The folders are mapped into the `vlagent` namespace by the editable install, so a test run in
one clone can import another clone's model/, kernels/ or environments/ (the editable finder of
the clone that ran `pip install -e .`) while `vlagent/` itself comes from the current directory:
edits in this clone would then be invisible to its own tests. conftest.py refuses to run then.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {
    "vlagent": "vlagent",
    "vlagent.model": "model",
    "vlagent.kernels": "kernels",
    "vlagent.environments": "environments",
}


def package_folder(name: str) -> Path | None:
    """The folder a package would be imported from (None when it cannot be found)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def foreign_packages(root: Path = ROOT) -> dict[str, Path | None]:
    """package -> where it comes from, for each `vlagent.*` package not imported from `root`."""
    found = {name: package_folder(name) for name in PACKAGE_FOLDERS}
    return {name: where for name, where in found.items() if where != (root / PACKAGE_FOLDERS[name]).resolve()}


def refusal_message(foreign: dict[str, Path | None], root: Path = ROOT) -> str:
    lines = [f"these packages do not come from the checkout under test ({root}):"]
    lines += [f"  {name} <- {where or 'not found'}" for name, where in foreign.items()]
    lines.append(f"run `pip install -e .` in {root} (then the tests import this checkout), and run again")
    return "\n".join(lines)
