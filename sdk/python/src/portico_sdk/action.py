"""`Action`, the class a backend subclasses, and `export`, which makes it the component's `run`."""

from __future__ import annotations

import sys
import traceback
from typing import Any, ClassVar

from .failures import Failure, for_exception
from .types import Outcome, Request


class Action:
    """An action's backend: subclass it, override `run`, and export it with
    `WitWorld = portico_sdk.export(MyAction)`.

    Set `Inputs` to a dataclass to get `request.inputs` as an instance of it (see
    `portico_sdk.convert`); leave it None to get the inputs as a dict.
    """

    Inputs: ClassVar[type | None] = None

    def run(self, request: Request) -> Outcome | str | None:
        """Runs the action once. Return an `Outcome` (a str is taken as its summary, None as an
        empty one); raise `InvalidInput`, `Failed` or `Denied` to fail the run with that
        message. Any other exception fails it too, as `failed`, with its traceback logged."""
        raise NotImplementedError("override Action.run")


def export(action: type[Action] | Action) -> type:
    """The class componentize-py calls, to assign to `WitWorld` in the app module:
    `WitWorld = portico_sdk.export(MyAction)`.

    It runs while componentize-py pre-initialises the component at build time, so it also
    imports the bindings and sets up line-buffered output then, not in every run.
    """
    _preload()
    instance = action() if isinstance(action, type) else action

    class WitWorld:
        """The contract's world export: `run(request) -> result<run-outcome, run-failure>`."""

        def run(self, request: Any) -> Any:
            return handle(instance, request)

    WitWorld.__qualname__ = f"WitWorld({type(instance).__name__})"
    return WitWorld


def handle(action: Action, wit_request: Any) -> Any:
    """One run: the request converted, `action.run` called, and its result or exception turned
    into the contract's `run-outcome` or `run-failure` (raised as componentize-py's `Err`)."""
    from componentize_py_types import Err

    try:
        request = Request._from_wit(wit_request, type(action).Inputs)
        return _outcome(action.run(request))._to_wit()
    except BaseException as error:  # noqa: BLE001 - every exception ends the run as a failure
        failure = for_exception(error)
        if failure is not error:
            _log_traceback(error)
        raise Err(_wit_failure(failure)) from None
    finally:
        _flush()


def _outcome(result: Any) -> Outcome:
    if result is None:
        return Outcome()
    if isinstance(result, str):
        return Outcome(summary=result)
    if isinstance(result, Outcome):
        return result
    raise TypeError(f"Action.run returned {type(result).__name__}, not an Outcome")


def _wit_failure(failure: Failure) -> Any:
    from wit_world.imports import portico_action_types as wit

    case = {
        "invalid-input": wit.RunFailure_InvalidInput,
        "denied": wit.RunFailure_Denied,
    }.get(failure.kind, wit.RunFailure_Failed)
    return case(failure.message)


def _log_traceback(error: BaseException) -> None:
    """Logs a plugin's uncaught exception at `error` level, as Python prints it."""
    from . import log

    text = "".join(traceback.format_exception(error)).rstrip()
    try:
        log.error(text)
    except Exception:  # noqa: BLE001 - never hide the failure behind a logging problem
        print(text, file=sys.stderr)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed stream has nothing left to write
            pass


def _preload() -> None:
    """Imports the bindings and makes print() write whole lines as they come, so that at build
    time they are part of the pre-initialised snapshot. A no-op outside a component."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    try:
        import componentize_py_types  # noqa: F401
        from wit_world.imports import (  # noqa: F401
            catalog,
            log,
            outgoing_handler,
            poll,
            portico_action_types,
            progress,
            streams,
            wasi_http_types,
        )
    except ImportError:
        pass
