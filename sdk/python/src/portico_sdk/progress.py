"""Progress of the run, shown on the run page while it goes."""

from __future__ import annotations

from dataclasses import dataclass

from .failures import Denied


def report(percent: int | None = None, label: str | None = None) -> None:
    """Reports how far the run is (0-100, clamped) and what it is doing; leave either out to
    keep the previous value: `progress.report(40, "Creating repository")`."""
    from wit_world.imports import progress as wit

    if percent is not None:
        percent = max(0, min(100, int(percent)))
    wit.report(percent, label)


def add_link(title: str, url: str) -> None:
    """Adds a link to the run page now (a pull request, a pipeline), before the run ends."""
    from wit_world.imports import portico_action_types as types
    from wit_world.imports import progress as wit

    wit.add_link(types.Link(title=title, url=url))


@dataclass
class HandOff:
    """Where an external system reports on the run it was handed."""

    #: The run's API address: PATCH it with {status, statusLabel, summary, link}, POST log lines
    #: to `<url>/logs`.
    url: str
    #: A bearer token good for this run only. Send it to the external system, never log it.
    token: str


def hand_off() -> HandOff:
    """Hands the run to an external system (a CI pipeline). Once `run` returns, the run stays in
    progress until that system reports a final status, or the grant's deadline passes. Needs the
    action's `capabilities.handOff` grant; without it, raises `Denied`."""
    from componentize_py_types import Err
    from wit_world.imports import progress as wit

    try:
        report = wit.hand_off()
    except Err as e:
        raise Denied(str(e.value)) from None
    return HandOff(url=report.url, token=report.token)
