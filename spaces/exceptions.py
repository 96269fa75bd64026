"""Errors of the core, converted from library errors at the boundary.

SpacesError
 ├── ConfigError          bad settings; fatal at start-up
 │    └── NodeIdTaken          another live SFU node has this node id
 ├── NotFound             an unknown space, track or blob
 ├── InvalidInput         user input we refuse (bad audio file, bad query...)
 ├── Busy                 too much at once: try again after ``retry_after`` seconds
 ├── StorageError         blob store or catalog failure (``retryable``)
 │    ├── RouterUnavailable    the SFU registry (Redis) cannot be reached
 │    └── NoNode               no live SFU node for a space (none running, or its node is down)
 └── TokenError           missing, forged, expired or other-space token
"""

from __future__ import annotations


class SpacesError(Exception):
    """Base of every error the core raises on purpose."""

    retryable = False


class ConfigError(SpacesError):
    pass


class NotFound(SpacesError):
    pass


class InvalidInput(SpacesError):
    pass


class Busy(SpacesError):
    """Refused for now (a rate limit, no free slot); the same request may succeed later."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(SpacesError):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class TokenError(SpacesError):
    pass


class NodeIdTaken(ConfigError):
    pass


class RouterUnavailable(StorageError):
    pass


class NoNode(StorageError):
    pass
