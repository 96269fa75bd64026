"""Scoring recognized text against the truth, as the issues define it."""

from __future__ import annotations

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_normalize = EnglishTextNormalizer()


def normalized_wer(reference: str, hypothesis: str) -> float:
    """Word error rate after Whisper's English normalizer (numbers, spelling, punctuation)."""
    ref, hyp = _normalize(reference), _normalize(hypothesis)
    if not ref.strip():
        return 0.0 if not hyp.strip() else 1.0
    return float(jiwer.wer(ref, hyp))


def multilingual_wer(reference: str, hypothesis: str) -> float:
    """Word error rate after Whisper's basic (any-language) normalizer: case, punctuation, accents kept."""
    from whisper_normalizer.basic import BasicTextNormalizer

    norm = BasicTextNormalizer()
    ref, hyp = norm(reference), norm(hypothesis)
    if not ref.split():
        return 0.0 if not hyp.split() else 1.0
    return float(jiwer.wer(ref, hyp))
