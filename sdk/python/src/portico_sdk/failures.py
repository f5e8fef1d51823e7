"""How a run fails: raise one of these out of `Action.run` and the user sees its message.

The three kinds are the contract's `run-failure` cases. Errors the SDK raises itself
(`catalog.Denied`, `http.Denied`, `http.HttpError`, ...) are subclasses, so letting them
propagate out of `run` fails the run with the right kind; catch them to do something else.
"""

from __future__ import annotations


class Failure(Exception):
    """A run failure of some kind; `message` is shown to the user as is (never put a secret in it)."""

    #: The contract's failure case: "invalid-input", "failed" or "denied".
    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def display(self) -> str:
        """The text as Portico shows the failure: `invalid input: M`, `M` or `denied: M`."""
        prefix = {"invalid-input": "invalid input: ", "denied": "denied: "}.get(self.kind, "")
        return prefix + self.message


class InvalidInput(Failure):
    """The inputs are well-formed but unusable (a name already taken, a bad combination)."""

    kind = "invalid-input"


class Failed(Failure):
    """The work failed (an upstream API answered 500, a pull request could not be opened)."""

    kind = "failed"


class Denied(Failure):
    """Something the backend needed was refused (a grant missing, a permission upstream)."""

    kind = "denied"


def for_exception(error: BaseException) -> Failure:
    """The failure an exception escaping `run` becomes: a `Failure` stays itself; anything else
    is a bug in the plugin and fails the run as `failed` with "<ExceptionType>: <message>"."""
    if isinstance(error, Failure):
        return error
    text = str(error)
    name = type(error).__name__
    return Failed(f"{name}: {text}" if text else name)
