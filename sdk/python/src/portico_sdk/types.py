"""The SDK's side of the contract's types: plain dataclasses with the JSON already parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .convert import convert
from .failures import Failed, InvalidInput

#: The contract's `operation` enum, spelled as in Port's `trigger.operation`.
OPERATIONS = ("CREATE", "DAY-2", "DELETE")


@dataclass
class Entity:
    """A catalog entity. `Entity("service", "payments")` is a new one with nothing set."""

    blueprint: str
    identifier: str
    title: str | None = None
    team: list[str] = field(default_factory=list)
    #: Validated against the blueprint's schema when written.
    properties: dict[str, Any] = field(default_factory=dict)
    #: Relation name to an identifier or a list of identifiers.
    relations: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As Portico's API and the Rust SDK serialise it."""
        return {
            "identifier": self.identifier,
            "blueprint": self.blueprint,
            "title": self.title,
            "team": list(self.team),
            "properties": self.properties,
            "relations": self.relations,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        """From `{blueprint, identifier, title?, team?, properties?, relations?}`."""
        return convert(cls, data, "entity")

    @classmethod
    def _from_wit(cls, e: Any) -> Entity:
        return cls(
            blueprint=e.blueprint,
            identifier=e.identifier,
            title=e.title,
            team=list(e.team),
            properties=_object(e.properties),
            relations=_object(e.relations),
        )

    def _to_wit(self) -> Any:
        from wit_world.imports import portico_action_types as wit

        return wit.Entity(
            identifier=self.identifier,
            blueprint=self.blueprint,
            title=self.title,
            team=list(self.team),
            properties=json.dumps(self.properties or {}),
            relations=json.dumps(self.relations or {}),
        )


@dataclass
class User:
    """The user who triggered the run."""

    identifier: str
    email: str | None = None
    roles: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)


@dataclass
class Request:
    """One run's request. `inputs` is an instance of the action's `Inputs` dataclass, or the
    inputs' JSON object as a dict when the action sets none (secrets in clear: never log them)."""

    run_id: str
    action: str
    #: "CREATE", "DAY-2" or "DELETE".
    operation: str
    inputs: Any
    #: The entity a DAY-2 or DELETE run acts on.
    entity: Entity | None
    triggered_by: User
    #: The static `config` object from the action's invocation method ({} when none).
    config: dict[str, Any]

    def require_entity(self) -> Entity:
        """The entity the run acts on, or an invalid-input failure saying it is missing."""
        if self.entity is None:
            raise InvalidInput("this action must run on an entity")
        return self.entity

    def config_as(self, cls: type) -> Any:
        """The config as the dataclass `cls`; a mismatch fails the run (the operator's mistake,
        not the user's, so `failed`, naming the field)."""
        return convert(cls, self.config, "invocationMethod.config", Failed)

    @classmethod
    def _from_wit(cls, r: Any, inputs_type: type | None) -> Request:
        try:
            inputs = json.loads(r.inputs) if r.inputs else {}
        except ValueError as e:
            raise InvalidInput(f"inputs are not valid JSON: {e}") from None
        if inputs_type is not None:
            inputs = convert(inputs_type, inputs)
        try:
            config = json.loads(r.config) if r.config else {}
        except ValueError:
            config = {}
        user = r.triggered_by
        return cls(
            run_id=r.run_id,
            action=r.action,
            operation=OPERATIONS[r.operation.value],
            inputs=inputs,
            entity=Entity._from_wit(r.entity) if r.entity is not None else None,
            triggered_by=User(user.identifier, user.email, list(user.roles), list(user.teams)),
            config=config if isinstance(config, dict) else {},
        )


@dataclass
class Link:
    """A link shown on the run page."""

    title: str
    url: str


@dataclass
class Outcome:
    """How a successful run ended: `Outcome("Bucket created", output={...})`."""

    #: One line shown as the run's summary.
    summary: str | None = None
    #: Shown on the run page, after any added with `progress.add_link`.
    links: list[Link] = field(default_factory=list)
    #: Any JSON-serialisable value, kept with the run.
    output: Any = None

    def with_link(self, title: str, url: str) -> Outcome:
        """Adds a link; returns the outcome, for chaining."""
        self.links.append(Link(title, url))
        return self

    def _to_wit(self) -> Any:
        from wit_world.imports import portico_action_types as wit

        return wit.RunOutcome(
            summary=self.summary,
            links=[wit.Link(title=l.title, url=l.url) for l in self.links],
            output=None if self.output is None else json.dumps(self.output),
        )


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
