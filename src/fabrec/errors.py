"""Exceptions that mean "the user gave something wrong" (the CLI prints them as one line)."""


class FabrecError(Exception):
    """A user-facing problem: bad path, bad file, bad option value. Message is one line."""


class NonFiniteLoss(FabrecError):
    """A loss became NaN or Inf; raised before any weight changed."""
