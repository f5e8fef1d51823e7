"""The software catalog, limited to the blueprints the action grants
(`capabilities.catalog.read` / `write`).

    svc = Entity("service", "payments", properties={"language": "python"})
    stored = catalog.upsert(svc)
    pythons = catalog.search({"combinator": "and", "rules": [
        {"property": "language", "operator": "=", "value": "python"}]})

Errors are exceptions. Left to escape `run`, `Denied` fails the run as `denied` (naming the
blueprint and the grant); `NotFound`, `Invalid` and `Conflict` as `failed`, as in the Rust SDK.
An `Invalid` caused by what the user typed is better caught and raised again as `InvalidInput`.
"""

from __future__ import annotations

import json
from typing import Any

from . import failures
from .types import Entity


class CatalogError(failures.Failure):
    """A catalog call was refused."""

    kind = "failed"


class NotFound(CatalogError):
    """No such entity (only `delete` raises it; `get` returns None)."""

    def __init__(self, message: str = "entity not found") -> None:
        super().__init__(message)


class Denied(CatalogError, failures.Denied):
    """The action's grant does not cover this blueprint; the message says which grant to add."""

    kind = "denied"


class Invalid(CatalogError):
    """The entity or query is malformed or fails the blueprint's schema; the message says where."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid catalog request: {detail}")
        self.detail = detail


class Conflict(CatalogError):
    """The write conflicts with the catalog's state (e.g. another entity relates to it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"catalog conflict: {detail}")
        self.detail = detail


def _call(function: Any, *args: Any) -> Any:
    """Calls a catalog import, turning its `error` into one of the exceptions above."""
    from componentize_py_types import Err
    from wit_world.imports import catalog as wit

    try:
        return function(*args)
    except Err as e:
        error = e.value
        if isinstance(error, wit.Error_NotFound):
            raise NotFound() from None
        if isinstance(error, wit.Error_Denied):
            raise Denied(error.value) from None
        if isinstance(error, wit.Error_Invalid):
            raise Invalid(error.value) from None
        raise Conflict(error.value) from None


def get(blueprint: str, identifier: str) -> Entity | None:
    """One entity, or None when it does not exist."""
    from wit_world.imports import catalog as wit

    found = _call(wit.get, blueprint, identifier)
    return None if found is None else Entity._from_wit(found)


def upsert(entity: Entity) -> Entity:
    """Creates or replaces an entity (properties, relations, title, team); returns it as stored."""
    from wit_world.imports import catalog as wit

    return Entity._from_wit(_call(wit.upsert, entity._to_wit()))


def delete(blueprint: str, identifier: str) -> bool:
    """Deletes an entity; False when it did not exist."""
    from wit_world.imports import catalog as wit

    return bool(_call(wit.delete, blueprint, identifier))


def search(query: dict[str, Any]) -> list[Entity]:
    """Searches with a Port-style query (`{combinator, rules}`), within the readable blueprints."""
    from wit_world.imports import catalog as wit

    return [Entity._from_wit(e) for e in _call(wit.search, json.dumps(query))]
