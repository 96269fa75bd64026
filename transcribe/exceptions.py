"""Errors of the transcription package.

TranscribeError
 ├── AudioError     a file that is empty, not audio, or that decodes to nothing
 └── ModelError     a Whisper model that cannot be found or loaded locally

Library errors (PyAV, CTranslate2) are converted here with ``raise ... from``.
Neither is ``retryable``: the same input fails the same way again.
"""

from __future__ import annotations


class TranscribeError(Exception):
    """Base of every error this package raises on purpose."""

    retryable = False


class AudioError(TranscribeError):
    """Audio that cannot be used; the message names the file."""


class ModelError(TranscribeError):
    """A model that is not available on this machine."""
