"""The one exception that ends a turn early on purpose."""


class TurnStopped(Exception):
    """The turn ends early; the message says why (it becomes TurnEnd's error reason)."""
