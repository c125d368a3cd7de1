"""Local web servers to harvest: Python's `pydoc -b` pages and Django's admin on sqlite.

Both bind 127.0.0.1 only and live in a `with` block:

    with pydoc_server() as base:            # "http://127.0.0.1:PORT/"
    with django_admin_server() as admin:    # admin.base, admin.username, admin.password

The Django site is a throw-away project in a temporary folder: `startproject`,
`migrate`, a superuser and a few users and groups (so the change lists have
rows), then `runserver --noreload`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from vlagent.environments.xserver import log_tail, stop_process
from vlagent.grounding.harvest import HarvestError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarvestError(f"the server for {url} exited (code {proc.returncode}):\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise HarvestError(f"{url} did not answer within {timeout:g}s:\n{log_tail(log)}")


@contextlib.contextmanager
def pydoc_server() -> Iterator[str]:
    """Python's documentation server (`python -m pydoc -n 127.0.0.1 -p PORT`); yields its base URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="vlagent-pydoc-") as tmp:
        log = Path(tmp) / "pydoc.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pydoc", "-n", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
            )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/"
            _wait_http(base, proc, log)
            yield base
        finally:
            stop_process(proc)


@dataclass(frozen=True)
class DjangoAdmin:
    base: str  # "http://127.0.0.1:PORT/"
    username: str
    password: str


_SETUP = r"""
import django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "site_admin.settings"
sys.path.insert(0, os.getcwd())
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from django.contrib.auth.models import Group, Permission, User
User.objects.create_superuser("admin", "admin@example.com", sys.argv[1], first_name="Ada", last_name="Admin")
for name in ("Editors", "Reviewers", "Support"):
    Group.objects.create(name=name)
Group.objects.get(name="Editors").permissions.set(Permission.objects.filter(codename__in=["add_user", "view_user"]))
people = [("grace", "Grace", "Hopper"), ("linus", "Linus", "Pauling"), ("marie", "Marie", "Curie"),
          ("alan", "Alan", "Turing"), ("katherine", "Katherine", "Johnson")]
for username, first, last in people:
    u = User.objects.create_user(username, f"{username}@example.org", "x-" + username, first_name=first, last_name=last)
    u.is_staff = username in ("grace", "alan")
    u.save()
    u.groups.set(Group.objects.filter(name__in=["Editors"] if u.is_staff else ["Support"]))
"""


def django_available() -> str | None:
    """None when Django can be imported by this Python, else how to get it."""
    try:
        import django  # noqa: F401
    except ImportError:
        return "Django is not installed (pip install 'vlagent[harvest]')"
    return None


@contextlib.contextmanager
def django_admin_server(timeout: float = 60.0) -> Iterator[DjangoAdmin]:
    """A throw-away Django project (sqlite, admin enabled) served on 127.0.0.1."""
    reason = django_available()
    if reason:
        raise HarvestError(f"cannot harvest the Django admin: {reason}")
    with tempfile.TemporaryDirectory(prefix="vlagent-django-") as tmp:
        root = Path(tmp)
        log = root / "server.log"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        made = subprocess.run([sys.executable, "-m", "django", "startproject", "site_admin", str(root)],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        if made.returncode != 0:
            raise HarvestError(f"django startproject failed: {made.stderr.strip()}")
        settings = root / "site_admin" / "settings.py"
        text = settings.read_text()
        # Keep the database inside the temporary folder whatever the template says.
        text = re.sub(r"\"NAME\": .*?,\n", f'"NAME": {str(root / "db.sqlite3")!r},\n', text, count=1)
        settings.write_text(text + '\nALLOWED_HOSTS = ["127.0.0.1", "localhost"]\n')
        password = "harvest-" + os.urandom(4).hex()
        setup = subprocess.run([sys.executable, "-c", _SETUP, password], cwd=root, capture_output=True, text=True,
                               env=env, timeout=timeout)  # fmt: skip
        if setup.returncode != 0:
            raise HarvestError(f"setting up the Django admin failed:\n{setup.stderr.strip()[-2000:]}")
        port = _free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/"
            _wait_http(base + "admin/login/", proc, log, timeout)
            yield DjangoAdmin(base, "admin", password)
        finally:
            stop_process(proc)


__all__ = ["DjangoAdmin", "django_admin_server", "django_available", "pydoc_server"]
