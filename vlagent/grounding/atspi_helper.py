"""Dump a GTK application's accessibility tree over AT-SPI, as JSON lines.

This script is NOT imported by vlagent: `harvest_gtk` runs it with Debian's
own `/usr/bin/python3` (which has `python3-pyatspi`; the project's Python
usually has not) inside the same `dbus-run-session` as the application, so
both talk to one private accessibility bus. It uses only the standard
library and pyatspi.

Protocol: one JSON object per line on stdin, one JSON reply per line on
stdout (nothing else is ever printed there; launched applications write to a
log file).

    {"op": "launch", "argv": [...]}            -> {"ok": true, "pid": N}
    {"op": "tree", "pid": N}                   -> {"ok": true, "nodes": [...]}
    {"op": "action", "pid": N, "path": [...], "action": "click"}
                                               -> {"ok": true}
      (action "select": select the node in its parent, for page tabs)
    {"op": "alive", "pid": N}                  -> {"ok": true, "alive": bool}
    {"op": "quit"}                             -> {"ok": true}, then exit

Errors come back as {"ok": false, "error": "..."}.

A node is {"path": [child indices from the application], "role", "name",
"description", "states": [...], "box": [x, y, w, h] in screen pixels or
null, "labelled_by": [names], "actions": [names], "children": count,
"depth", "interfaces": [names], "image_size": [w, h] or null (an icon's
size; GTK reports -1 when a button shows no image), "text": the first 200
characters of the Text interface or null}. Only showing subtrees are walked (a hidden widget's children are
hidden too), and huge containers (a character map's 65k cells) are cut at
MAX_CHILDREN children, so a dump stays well under a second.
"""

import json
import os
import subprocess
import sys
import time

import pyatspi

MAX_CHILDREN = 600  # children looked at per node; visible cells of big tables come first
MAX_NODES = 6000  # per dump

_STATES = {
    "showing": pyatspi.STATE_SHOWING,
    "visible": pyatspi.STATE_VISIBLE,
    "sensitive": pyatspi.STATE_SENSITIVE,
    "enabled": pyatspi.STATE_ENABLED,
    "editable": pyatspi.STATE_EDITABLE,
    "focusable": pyatspi.STATE_FOCUSABLE,
    "checked": pyatspi.STATE_CHECKED,
    "selected": pyatspi.STATE_SELECTED,
    "active": pyatspi.STATE_ACTIVE,
    "modal": pyatspi.STATE_MODAL,
}

_launched = {}  # pid -> Popen


def _application(pid):
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is None:
            continue
        try:
            if app.get_process_id() == pid:
                return app
        except Exception:  # an application that just went away
            continue
    return None


def _node(acc, path, depth):
    states = acc.getState()
    try:
        ext = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        box = [ext.x, ext.y, ext.width, ext.height]
    except NotImplementedError:
        box = None
    labelled_by = []
    try:
        for rel in acc.getRelationSet():
            if rel.getRelationType() == pyatspi.RELATION_LABELLED_BY:
                for t in range(rel.getNTargets()):
                    target = rel.getTarget(t)
                    if target is not None and target.name:
                        labelled_by.append(target.name)
    except Exception:
        pass
    actions = []
    try:
        action = acc.queryAction()
        actions = [action.getName(i) for i in range(action.nActions)]
    except NotImplementedError:
        pass
    interfaces = []
    try:
        interfaces = list(acc.get_interfaces())
    except Exception:
        pass
    image_size = None
    text = None
    if "Image" in interfaces:
        try:
            image_size = list(acc.queryImage().getImageSize())
        except Exception:
            pass
    if "Text" in interfaces:
        try:
            t = acc.queryText()
            text = t.getText(0, min(t.characterCount, 200))
        except Exception:
            pass
    return {
        "path": path,
        "interfaces": interfaces,
        "image_size": image_size,
        "text": text,
        "depth": depth,
        "role": acc.getRoleName(),
        "name": acc.name or "",
        "description": acc.description or "",
        "states": [k for k, v in _STATES.items() if states.contains(v)],
        "box": box,
        "labelled_by": labelled_by,
        "actions": actions,
        "children": acc.childCount,
    }


def dump(pid):
    app = _application(pid)
    if app is None:
        raise LookupError("no accessible application with pid %d on the bus (yet)" % pid)
    nodes = []
    # Depth-first, children in order, so a node's ancestors always come before it.
    stack = [(app.getChildAtIndex(i), [i], 0) for i in reversed(range(app.childCount))]
    while stack and len(nodes) < MAX_NODES:
        acc, path, depth = stack.pop()
        if acc is None:
            continue
        try:
            node = _node(acc, path, depth)
        except Exception:  # a widget destroyed while we walk; skip it
            continue
        if "showing" not in node["states"]:
            continue
        nodes.append(node)
        count = min(acc.childCount, MAX_CHILDREN)
        for i in reversed(range(count)):
            try:
                child = acc.getChildAtIndex(i)
            except Exception:
                continue
            stack.append((child, path + [i], depth + 1))
    return nodes


def _resolve(pid, path):
    app = _application(pid)
    if app is None:
        raise LookupError("no accessible application with pid %d" % pid)
    acc = app
    for i in path:
        acc = acc.getChildAtIndex(i)
        if acc is None:
            raise LookupError("path %r no longer exists" % (path,))
    return acc


def do_action(pid, path, name):
    acc = _resolve(pid, path)
    if name == "select":
        # Page tabs have no action: their tab list selects them (AT-SPI Selection).
        if not acc.parent.querySelection().selectChild(path[-1]):
            raise RuntimeError("could not select %s %r" % (acc.getRoleName(), acc.name))
        return
    action = acc.queryAction()
    names = [action.getName(i) for i in range(action.nActions)]
    if name not in names:
        raise LookupError("%s %r has no action %r (it has %r)" % (acc.getRoleName(), acc.name, name, names))
    if not action.doAction(names.index(name)):
        raise RuntimeError("action %r on %s %r failed" % (name, acc.getRoleName(), acc.name))


def launch(argv, log):
    proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    _launched[proc.pid] = proc
    return proc.pid


def main():
    log_path = os.environ.get("VLAGENT_ATSPI_APP_LOG", os.devnull)
    log = open(log_path, "ab")
    # Replies get a private copy of stdout; fd 1 itself now points at stderr,
    # so whatever a library prints can never break the protocol.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            op = msg.get("op")
            if op == "launch":
                reply = {"ok": True, "pid": launch(msg["argv"], log)}
            elif op == "tree":
                start = time.monotonic()
                nodes = dump(msg["pid"])
                reply = {"ok": True, "nodes": nodes, "seconds": round(time.monotonic() - start, 3)}
            elif op == "action":
                do_action(msg["pid"], msg["path"], msg["action"])
                reply = {"ok": True}
            elif op == "alive":
                proc = _launched.get(msg["pid"])
                reply = {"ok": True, "alive": proc is not None and proc.poll() is None}
            elif op == "quit":
                out.write(json.dumps({"ok": True}) + "\n")
                out.flush()
                break
            else:
                reply = {"ok": False, "error": "unknown op %r" % (op,)}
        except Exception as exc:  # every failure goes back to the caller as a value
            reply = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for proc in _launched.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in _launched.values():
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
