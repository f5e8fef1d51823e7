"""Unit tests of the SDK's plain-Python parts, on CPython without wasm: `python3 -m unittest`
from sdk/python. The generated bindings the SDK calls are replaced by small fakes below."""

from __future__ import annotations

import enum
import json
import sys
import types
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import portico_sdk  # noqa: E402
from portico_sdk import Action, Denied, Failed, InvalidInput, Outcome, catalog, convert, http  # noqa: E402
from portico_sdk.action import handle  # noqa: E402
from portico_sdk.failures import for_exception  # noqa: E402


# --- fakes of componentize-py's runtime types and the generated `wit_world` bindings ---------
@dataclass(frozen=True)
class Err(Exception):
    value: Any


@dataclass
class WitEntity:
    identifier: str
    blueprint: str
    title: Optional[str]
    team: list
    properties: str
    relations: str


@dataclass
class WitUser:
    identifier: str
    email: Optional[str]
    roles: list
    teams: list


class Operation(enum.Enum):
    CREATE = 0
    DAY_TWO = 1
    DELETE = 2


@dataclass
class RunRequest:
    run_id: str
    action: str
    operation: Operation
    inputs: str
    entity: Optional[WitEntity]
    triggered_by: WitUser
    config: str


@dataclass
class WitLink:
    title: str
    url: str


@dataclass
class RunOutcome:
    summary: Optional[str]
    links: list
    output: Optional[str]


@dataclass
class RunFailure_InvalidInput:
    value: str


@dataclass
class RunFailure_Failed:
    value: str


@dataclass
class RunFailure_Denied:
    value: str


class Level(enum.Enum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


LOGGED: list[tuple[str, str]] = []


def _install_fakes() -> None:
    runtime = types.ModuleType("componentize_py_types")
    runtime.Err = Err
    world = types.ModuleType("wit_world")
    imports = types.ModuleType("wit_world.imports")
    action_types = types.ModuleType("wit_world.imports.portico_action_types")
    for name, value in dict(
        Entity=WitEntity, RunOutcome=RunOutcome, Link=WitLink,
        RunFailure_InvalidInput=RunFailure_InvalidInput, RunFailure_Failed=RunFailure_Failed,
        RunFailure_Denied=RunFailure_Denied,
    ).items():
        setattr(action_types, name, value)
    log = types.ModuleType("wit_world.imports.log")
    log.Level = Level
    log.emit = lambda level, message: LOGGED.append((level.name, message))
    imports.portico_action_types = action_types
    imports.log = log
    world.imports = imports
    sys.modules.update({
        "componentize_py_types": runtime,
        "wit_world": world,
        "wit_world.imports": imports,
        "wit_world.imports.portico_action_types": action_types,
        "wit_world.imports.log": log,
    })


_install_fakes()


def request(inputs: Any, config: Any = None, entity: WitEntity | None = None) -> RunRequest:
    return RunRequest(
        run_id="r_1", action="act", operation=Operation.DAY_TWO, inputs=json.dumps(inputs),
        entity=entity, triggered_by=WitUser("ada", None, ["member"], ["platform"]),
        config=json.dumps(config if config is not None else {}),
    )


# --- the tests ------------------------------------------------------------------------------
@dataclass
class Nested:
    region: str


@dataclass
class Inputs:
    service_name: str
    replicas: int
    ratio: float = 1.0
    dry_run: bool = False
    tags: list[str] = field(default_factory=list)
    note: Optional[str] = None
    env: Literal["dev", "prod"] = "dev"
    where: Optional[Nested] = None


class ConvertTest(unittest.TestCase):
    def test_camel_case_keys_map_to_fields_and_unknown_keys_are_ignored(self):
        got = convert(Inputs, {"serviceName": "pay", "replicas": 3, "dryRun": True, "ratio": 2,
                               "where": {"region": "eu"}, "other": 1})
        self.assertEqual(got, Inputs("pay", 3, 2.0, True, [], None, "dev", Nested("eu")))
        self.assertIsInstance(got.ratio, float)

    def test_snake_case_keys_work_too(self):
        self.assertEqual(convert(Inputs, {"service_name": "a", "replicas": 1.0}).replicas, 1)

    def test_missing_and_mistyped_fields_are_named(self):
        cases = [
            ({"replicas": 1}, "inputs.serviceName: missing"),
            ({"serviceName": 1, "replicas": 1}, "inputs.serviceName: expected a string, got a number"),
            ({"serviceName": "a", "replicas": True}, "inputs.replicas: expected an integer, got a boolean"),
            ({"serviceName": "a", "replicas": 1.5}, "inputs.replicas: expected an integer, got a number"),
            ({"serviceName": "a", "replicas": 1, "tags": ["x", 2]}, "inputs.tags[1]: expected a string, got a number"),
            ({"serviceName": "a", "replicas": 1, "env": "qa"}, "inputs.env: must be one of 'dev', 'prod', not 'qa'"),
            ({"serviceName": "a", "replicas": 1, "where": {}}, "inputs.where.region: missing"),
        ]
        for data, message in cases:
            with self.subTest(data=data), self.assertRaises(InvalidInput) as raised:
                convert(Inputs, data)
            self.assertEqual(str(raised.exception), message)

    def test_config_mismatch_is_failed(self):
        @dataclass
        class Config:
            webhook_url: str

        req = portico_sdk.Request._from_wit(request({}, {"webhookUrl": 3}), None)
        with self.assertRaises(Failed) as raised:
            req.config_as(Config)
        self.assertEqual(str(raised.exception), "invocationMethod.config.webhookUrl: expected a string, got a number")
        self.assertNotIsInstance(raised.exception, InvalidInput)


class FailureTest(unittest.TestCase):
    def test_display_is_as_the_rust_sdk_prints_it(self):
        self.assertEqual(InvalidInput("bad").display(), "invalid input: bad")
        self.assertEqual(Failed("boom").display(), "boom")
        self.assertEqual(Denied("no").display(), "denied: no")

    def test_sdk_errors_keep_their_kind(self):
        self.assertEqual(catalog.Denied("service not granted").kind, "denied")
        self.assertIsInstance(catalog.Denied("x"), Denied)
        self.assertEqual(catalog.Invalid("bad").display(), "invalid catalog request: bad")
        self.assertEqual(catalog.NotFound().display(), "entity not found")
        self.assertEqual(http.Denied("x").kind, "denied")
        self.assertIsInstance(http.Denied("x"), http.HttpError)
        self.assertEqual(http.HttpError("x").kind, "failed")

    def test_other_exceptions_are_failed_with_their_type(self):
        self.assertEqual(for_exception(KeyError("url")).display(), "KeyError: 'url'")
        self.assertEqual(for_exception(RuntimeError()).display(), "RuntimeError")


class HandleTest(unittest.TestCase):
    def run_action(self, action: Action, req: RunRequest) -> Any:
        try:
            return handle(action, req)
        except Err as e:
            return e.value

    def test_typed_inputs_and_outcome(self):
        seen = {}

        class Typed(Action):
            Inputs = Inputs

            def run(self, request):
                seen["request"] = request
                return Outcome("done", output={"n": request.inputs.replicas}).with_link("PR", "https://x")

        entity = WitEntity("pay", "service", None, ["t"], '{"language":"go"}', "{}")
        got = self.run_action(Typed(), request({"serviceName": "pay", "replicas": 2}, entity=entity))
        self.assertEqual(got, RunOutcome("done", [WitLink("PR", "https://x")], '{"n": 2}'))
        req = seen["request"]
        self.assertEqual(req.operation, "DAY-2")
        self.assertEqual(req.entity.properties, {"language": "go"})
        self.assertEqual(req.triggered_by.teams, ["platform"])

    def test_untyped_inputs_are_a_dict_and_a_string_is_a_summary(self):
        class Untyped(Action):
            def run(self, request):
                return f"hi {request.inputs['name']} {request.config['x']}"

        got = self.run_action(Untyped(), request({"name": "ada"}, {"x": 1}))
        self.assertEqual(got, RunOutcome("hi ada 1", [], None))

    def test_bad_inputs_fail_as_invalid_input(self):
        class Typed(Action):
            Inputs = Inputs

            def run(self, request):
                raise AssertionError("not reached")

        got = self.run_action(Typed(), request({"replicas": 2}))
        self.assertEqual(got, RunFailure_InvalidInput("inputs.serviceName: missing"))

    def test_failures_map_to_their_kinds(self):
        for raised, expected in [
            (InvalidInput("taken"), RunFailure_InvalidInput("taken")),
            (Failed("boom"), RunFailure_Failed("boom")),
            (catalog.Denied("service: not granted"), RunFailure_Denied("service: not granted")),
            (catalog.Conflict("related"), RunFailure_Failed("catalog conflict: related")),
            (http.Denied("to x"), RunFailure_Denied("to x")),
        ]:
            class Failing(Action):
                def run(self, request, raised=raised):
                    raise raised

            with self.subTest(raised=raised):
                self.assertEqual(self.run_action(Failing(), request({})), expected)

    def test_a_bug_fails_as_failed_with_its_traceback_logged(self):
        class Buggy(Action):
            def run(self, request):
                return {}["missing"]

        LOGGED.clear()
        got = self.run_action(Buggy(), request({}))
        self.assertEqual(got, RunFailure_Failed("KeyError: 'missing'"))
        ((level, text),) = LOGGED
        self.assertEqual(level, "ERROR")
        self.assertIn("Traceback (most recent call last):", text)
        self.assertIn("KeyError: 'missing'", text)


if __name__ == "__main__":
    unittest.main()
