"""A programmable plugin for the capability tests, the Python port of tests/guests/probe: runs
the `steps` in its inputs and returns what each one gave, as `{"results": [{"ok": value} |
{"error": "<failure text>"}]}`. With `"failOnError": true` the first error fails the run (a
denial as `denied`); otherwise every error is reported in the output.

Steps as in the Rust probe: `{"http": {method, url, headers, body}}`, `{"get": {blueprint,
identifier}}`, `{"upsert": <entity>}`, `{"delete": {blueprint, identifier}}`, `{"search":
<query>}`, `{"writeFile": {path, content}}`, `{"readFile": path}`, `{"listDir": path}`,
`{"progress": {percent, label}}`, `{"link": {title, url}}`, `{"log": text}`, `{"env": null}`,
`{"print": text}`, `{"sleepMs": n}`, `{"handOffTo": url}`, `{"echo": value}`, `{"summary":
text}`, `{"fail": text}`, `{"logLines": {count, text}}`, `{"repeat": {text, times}}`.

And the ones the Rust tests have separate guests for: `{"allocate": MiB}` (allocates that much
and keeps it until the run ends), `{"spin": null}` (loops forever), `{"raise": text}` (an
ordinary uncaught exception: a plugin's bug), `{"invalid": text}` (fails as invalid-input) and
`{"deny": text}` (fails as denied).

In the steps, `{{NAME}}` stands for the string input `NAME` (e.g. a secret input); when
`steps` is absent, the action's `config.steps` are run (for automations, whose inputs are the
event).
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from portico_sdk import (
    Action,
    Denied,
    Entity,
    Failed,
    Failure,
    InvalidInput,
    Outcome,
    catalog,
    convert,
    export,
    http,
    log,
    progress,
)


@dataclass
class HttpStep:
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class Ref:
    blueprint: str
    identifier: str


@dataclass
class WriteFile:
    path: str
    content: str


@dataclass
class ProgressStep:
    percent: int
    label: str


@dataclass
class LinkStep:
    title: str
    url: str


@dataclass
class LogLines:
    count: int
    text: str = ""


@dataclass
class Repeat:
    text: str
    times: int


#: Step name -> the type of its argument (checked before any step runs, as serde does).
STEPS: dict[str, Any] = {
    "http": HttpStep, "get": Ref, "upsert": Entity, "delete": Ref, "search": Any,
    "writeFile": WriteFile, "readFile": str, "listDir": str, "progress": ProgressStep,
    "link": LinkStep, "log": str, "print": str, "env": Any, "sleepMs": int, "handOffTo": str,
    "echo": Any, "summary": str, "fail": str, "logLines": LogLines, "repeat": Repeat,
    "allocate": int, "spin": Any, "raise": str, "invalid": str, "deny": str,
}

#: What `allocate` keeps alive until the run ends.
KEPT: list[bytearray] = []


def parse_steps(inputs: dict[str, Any], steps: Any) -> list[tuple[str, Any]]:
    """The steps with `{{NAME}}` replaced by the string inputs, each checked."""
    text = json.dumps(steps)
    for name, value in inputs.items():
        if name not in ("steps", "failOnError") and isinstance(value, str):
            text = text.replace("{{" + name + "}}", json.dumps(value)[1:-1])
    try:
        steps = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"steps: {e}") from None
    if not isinstance(steps, list):
        raise InvalidInput("steps: expected an array")
    parsed = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or len(step) != 1:
            raise InvalidInput(f"steps[{i}]: expected an object with one key, the step's name")
        ((name, arg),) = step.items()
        if name not in STEPS:
            raise InvalidInput(f"steps[{i}]: unknown step `{name}`")
        parsed.append((name, convert(STEPS[name], arg, f"steps[{i}].{name}")))
    return parsed


def io_failure(e: OSError) -> Failure:
    """A refused or missing path is a denial (the sandbox has no such folder), as in the Rust probe."""
    if isinstance(e, (PermissionError, FileNotFoundError)):
        return Denied(str(e))
    return Failed(str(e))


def run_step(name: str, arg: Any) -> Any:
    if name == "http":
        res = http.request(arg.method, arg.url, headers=arg.headers, body=arg.body)
        return {"status": res.status, "headers": res.headers, "body": res.text()}
    if name == "get":
        found = catalog.get(arg.blueprint, arg.identifier)
        return None if found is None else found.to_dict()
    if name == "upsert":
        return catalog.upsert(arg).to_dict()
    if name == "delete":
        return catalog.delete(arg.blueprint, arg.identifier)
    if name == "search":
        return [e.to_dict() for e in catalog.search(arg)]
    if name == "writeFile":
        try:
            with open(arg.path, "w") as f:
                f.write(arg.content)
        except OSError as e:
            raise io_failure(e) from None
        return arg.path
    if name == "readFile":
        try:
            with open(arg) as f:
                return f.read()
        except OSError as e:
            raise io_failure(e) from None
    if name == "listDir":
        try:
            return os.listdir(arg)
        except OSError as e:
            raise io_failure(e) from None
    if name == "progress":
        progress.report(arg.percent, arg.label)
    elif name == "link":
        progress.add_link(arg.title, arg.url)
    elif name == "log":
        log.info(arg)
    elif name == "print":
        print(arg)
    elif name == "env":
        return {"vars": dict(os.environ), "args": sys.argv}
    elif name == "handOffTo":
        report = progress.hand_off()
        res = http.post(arg, json={"url": report.url, "token": report.token})
        return {"status": res.status}
    elif name == "echo":
        return arg
    elif name == "fail":
        raise Failed(arg)
    elif name == "invalid":
        raise InvalidInput(arg)
    elif name == "deny":
        raise Denied(arg)
    elif name == "logLines":
        for _ in range(arg.count):
            log.info(arg.text)
    elif name == "repeat":
        return arg.text * arg.times
    elif name == "sleepMs":
        time.sleep(arg / 1000)
    elif name == "allocate":
        block = bytearray(arg * 1024 * 1024)
        block[::4096] = b"\x01" * len(range(0, len(block), 4096))
        KEPT.append(block)
    elif name == "spin":
        while True:
            pass
    elif name == "raise":
        raise RuntimeError(arg)
    return None


class Probe(Action):
    """Runs the steps; see the module's docstring."""

    def run(self, request):
        inputs = request.inputs
        steps = inputs.get("steps")
        if steps is None:
            steps = request.config.get("steps", [])
        fail_on_error = inputs.get("failOnError") is True
        summary = "probed"
        results = []
        for name, arg in parse_steps(inputs, steps):
            if name == "summary":
                summary = arg
                continue
            try:
                results.append({"ok": run_step(name, arg)})
            except Failure as failure:
                if fail_on_error:
                    raise
                results.append({"error": failure.display()})
        return Outcome(summary=summary, output={"results": results})


WitWorld = export(Probe)
