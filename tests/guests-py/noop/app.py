"""The smallest plugin, for benchmarks: no logs, an outcome with the summary "noop"."""

from portico_sdk import Action, Outcome, export


class Noop(Action):
    """Does nothing."""

    def run(self, request):
        return Outcome(summary="noop")


WitWorld = export(Noop)
