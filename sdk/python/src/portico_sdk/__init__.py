"""Write Portico action backends in Python.

A backend is a WebAssembly component built with componentize-py from an app module that
subclasses `Action` and exports it:

    from portico_sdk import Action, Outcome, export, log

    class Hello(Action):
        def run(self, request):
            log.info(f"hello, {request.inputs['name']}")
            return Outcome(f"greeted {request.inputs['name']}")

    WitWorld = export(Hello)

Everything a backend can reach goes through this package, and each call is checked against
the action's grant: `catalog` (granted blueprints), `http` (granted origins, credentials added
by the host), `progress` and `log` (always allowed).
"""

from . import catalog, http, log, progress
from .action import Action, export
from .convert import convert
from .failures import Denied, Failed, Failure, InvalidInput
from .types import Entity, Link, Outcome, Request, User

#: The plugin contract this SDK is built for; a host that does not offer it refuses the plugin.
CONTRACT = "portico:action@0.2.0"

__version__ = "0.1.0"

__all__ = [
    "CONTRACT",
    "Action",
    "Denied",
    "Entity",
    "Failed",
    "Failure",
    "InvalidInput",
    "Link",
    "Outcome",
    "Request",
    "User",
    "catalog",
    "convert",
    "export",
    "http",
    "log",
    "progress",
]
