"""Announces a deployment of a service to a chat channel, through a Slack-compatible incoming
webhook (`POST {"text": ...}`; Slack, Mattermost, Rocket.Chat, Discord's `/slack` endpoint).

A DAY-2 action on a `service` entity: it reads the service (language, repository, owning team,
whose title it looks up in the catalog) and posts one message naming the version, who deployed
it and the user's note. The webhook's URL is the action's `config.webhookUrl`; its origin must be
granted in `capabilities.http`, which is also where a bearer token goes, if the endpoint wants
one, so that the plugin never sees it.
"""

from dataclasses import dataclass

from portico_sdk import Action, Failed, Outcome, catalog, export, http, log, progress


@dataclass
class Inputs:
    """What the user types when running the action."""

    version: str
    note: str = ""


@dataclass
class Config:
    """The operator's `invocationMethod.config`."""

    webhook_url: str
    #: Where the channel can be read, shown as a link on the run page.
    channel_url: str = ""


class Announce(Action):
    """Posts the announcement and links the run to the channel."""

    Inputs = Inputs

    def run(self, request):
        config = request.config_as(Config)
        service = request.require_entity()
        name = service.title or service.identifier
        version = request.inputs.version.strip()

        progress.report(20, "Reading the service")
        details = []
        if language := service.properties.get("language"):
            details.append(language)
        owner = service.relations.get("owner")
        if isinstance(owner, str):
            team = catalog.get("team", owner)  # needs capabilities.catalog.read: ["team"]
            details.append(f"owned by {team.title or team.identifier if team else owner}")

        who = request.triggered_by.email or request.triggered_by.identifier
        text = f":rocket: *{name}* `{version}` deployed by {who}"
        if details:
            text += f" ({', '.join(details)})"
        if request.inputs.note.strip():
            text += f"\n> {request.inputs.note.strip()}"
        if repository := service.properties.get("repository"):
            text += f"\n<{repository}|Repository>"

        progress.report(60, "Posting the announcement")
        response = http.post(config.webhook_url, json={"text": text})
        if not response.ok:
            raise Failed(f"the webhook answered {response.status}: {response.text()[:200]}")
        log.info(f"announced {service.identifier} {version} ({response.status})")

        outcome = Outcome(
            summary=f"Announced {name} {version}",
            output={"text": text, "status": response.status},
        )
        if config.channel_url:
            outcome.with_link("Announcement channel", config.channel_url)
        return outcome


WitWorld = export(Announce)
