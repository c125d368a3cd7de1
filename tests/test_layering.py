"""The house's layering (DESIGN.md), read from the source: every import statement, at module level or
inside a function, between the four rooms.

    vlagent/       may import model, kernels (only through model), environments
    model/         may import kernels
    kernels/       torch and triton only
    environments/  nothing of ours but the Action type (vlagent.actions)
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {"vlagent": "vlagent", "model": "vlagent.model", "kernels": "vlagent.kernels",
         "environments": "vlagent.environments"}


def _room_of_module(name: str) -> str | None:
    """'vlagent.model.qwen35' -> 'model'; 'vlagent.grounding.ocr' -> 'vlagent'; 'torch' -> None."""
    for room in ("model", "kernels", "environments"):
        prefix = ROOMS[room]
        if name == prefix or name.startswith(prefix + "."):
            return room
    return "vlagent" if name == "vlagent" or name.startswith("vlagent.") else None


def _imports(path: Path, package: str) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name != "vlagent":  # `from vlagent import kernels`: the namespace itself is no room to depend on
                out.append((name, node.lineno))
            out += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    return out


def _edges():
    for folder, package in ROOMS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            module_package = ".".join([package, *parts[:-1]] if path.name != "__init__.py" else [package, *parts])
            for name, line in _imports(path, module_package):
                target = _room_of_module(name)
                if target is not None and target != folder:
                    yield folder, target, name, f"{path.relative_to(ROOT)}:{line}"


ALLOWED = {
    "vlagent": {"model", "environments", "kernels"},
    "model": {"kernels"},
    "kernels": set(),
    "environments": {"vlagent"},
}


def test_rooms_import_only_what_the_design_allows():
    bad = [f"{where}: {src} imports {name}" for src, dst, name, where in _edges() if dst not in ALLOWED[src]]
    assert not bad, "\n".join(bad)


def test_environments_take_only_the_action_type_from_vlagent():
    bad = [f"{where}: {name}" for src, dst, name, where in _edges()
           if src == "environments" and dst == "vlagent" and not name.startswith("vlagent.actions")]
    assert not bad, "\n".join(bad)


def test_vlagent_reaches_kernels_only_through_model():
    bad = [f"{where}: {name}" for src, dst, name, where in _edges() if src == "vlagent" and dst == "kernels"]
    # the doctor reports which C kernels were built: a read-only look, named here on purpose
    bad = [b for b in bad if not b.startswith("vlagent/doctor.py")]
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_planted_violation(tmp_path):
    planted = tmp_path / "bad.py"
    planted.write_text("def f():\n    from vlagent.agent import Agent\n")
    assert ("vlagent.agent", 2) in _imports(planted, "vlagent.model")
    assert _room_of_module("vlagent.agent") == "vlagent" and "vlagent" not in ALLOWED["model"]
