"""Errors of the transcription package.

TranscribeError
 ├── AudioError     a file that is empty, not audio, or that decodes to nothing
 ├── ModelError     a Whisper model that cannot be found or loaded locally
 └── DecodeFailed   a decode that fails Whisper's thresholds, with fallback off

Library errors (PyAV, CTranslate2) are converted here with ``raise ... from``.
None is ``retryable``: the same input fails the same way again.
"""

from __future__ import annotations


class TranscribeError(Exception):
    """Base of every error this package raises on purpose."""

    retryable = False


class AudioError(TranscribeError):
    """Audio that cannot be used; the message names the file."""


class ModelError(TranscribeError):
    """A model that is not available on this machine."""


class DecodeFailed(TranscribeError):
    """A decode failed Whisper's thresholds and ``TranscribeOptions.fallback`` is off.

    The caller has a cheaper way to the words than five more temperatures
    (a live final hearing the room first: its utterance heard alone).
    """
