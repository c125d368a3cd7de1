"""Suite-wide settings.

Triton kernels run on CPU tensors only in Triton's interpreter; the variable
must be set before triton is first imported, whichever test module does that.

The suite tests this checkout or refuses to run (see checkout.py): an editable
install made from another clone would otherwise supply model/, kernels/ and
environments/ while the tests pass.
"""

import os

import pytest

from checkout import foreign_packages, refusal_message

os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_sessionstart(session: pytest.Session) -> None:
    foreign = foreign_packages()
    if foreign:
        pytest.exit(refusal_message(foreign), returncode=pytest.ExitCode.USAGE_ERROR)
