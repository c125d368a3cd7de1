"""Hand the top-level name `kernels` back to Hugging Face's `kernels` distribution.

Only used when this folder is imported as `kernels` (the repository root on sys.path) rather than as
`vlagent.kernels`. The installed distribution's package is executed under its own name and put in
sys.modules, so `import kernels` / `from kernels import ...` get the real thing.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path


def load_hub_kernels() -> None:
    try:
        dist = importlib.metadata.distribution("kernels")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            "'kernels' resolved to vlagent's kernels/ folder because the repository root is on sys.path; "
            "import it as vlagent.kernels (no 'kernels' distribution is installed to hand over to)"
        ) from None
    init = Path(str(dist.locate_file("kernels/__init__.py")))
    if not init.is_file():
        raise ImportError(f"the installed 'kernels' distribution {dist.version} has no {init}")
    spec = importlib.util.spec_from_file_location("kernels", init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["kernels"] = module  # the import statement returns whatever sys.modules holds at the end
    spec.loader.exec_module(module)
