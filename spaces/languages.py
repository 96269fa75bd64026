"""Languages a space can be held in, and how each is searched.

A space's language is ``auto`` (each speaker's detected from their speech)
or one of Whisper's language codes. Search analyses text per language:
PostgreSQL with its text search configuration for the language (``simple``
where it has none); SQLite with the Snowball stemmer of the language, on
accent-folded words, since FTS5 itself only stems English (``porter``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from spaces.exceptions import InvalidInput
from spaces.models import Turn

AUTO = "auto"

#: Whisper's language codes (faster-whisper's tokenizer), in its order.
CODES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
    "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy",
    "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi",
    "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru",
    "sa", "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)  # fmt: skip

#: Languages PostgreSQL has a text search configuration (stemmer, stop words) for.
_POSTGRES = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish", "nl": "dutch",
    "en": "english", "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "no": "norwegian", "nn": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip

#: Snowball stemmers (the ``snowballstemmer`` package) for SQLite.
_SNOWBALL = {
    **{code: name for code, name in _POSTGRES.items() if name not in ("english",)},
    "en": "porter",  # what FTS5's own porter tokenizer did before: English ranking unchanged
    "cs": "czech", "et": "estonian", "fa": "persian", "pl": "polish", "ga": "irish",
}  # fmt: skip

#: English names of the languages people meet most (others show their code).
NAMES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "ru": "Russian", "ar": "Arabic",
    "hi": "Hindi", "tr": "Turkish", "pl": "Polish", "sv": "Swedish", "uk": "Ukrainian", "hu": "Hungarian",
}  # fmt: skip

_WORD = re.compile(r"\w+", re.UNICODE)


def accepted() -> str:
    """The accepted values, for error messages."""
    return ", ".join((AUTO, *CODES))


def language_name(code: str) -> str:
    return NAMES.get(code, code)


def language_note(speaker: str, language: str) -> str:
    """What status, the API and the replay page say when the model does not speak a speaker's language."""
    return (
        f"The transcription model does not speak {language_name(language)} ({language}): "
        f"{speaker}'s transcript is its best try in English. Set WHISPER_MODEL to a multilingual model "
        "(base) and reprocess the space."
    )


def check_language(value: str | None) -> str:
    """A space's language as given by a host: ``auto`` or a Whisper code.

    Raises:
        InvalidInput: Naming the accepted codes.
    """
    code = (value or AUTO).strip().lower()
    if code != AUTO and code not in CODES:
        raise InvalidInput(f"unknown language {value!r}; accepted: {accepted()}")
    return code


def postgres_config(language: str) -> str:
    """PostgreSQL's text search configuration for a language (``simple``: no stemming).

    Turns from before languages were recorded (``""``) were English.
    """
    return _POSTGRES.get(language or "en", "simple")


def postgres_configs() -> list[str]:
    """Every configuration :func:`postgres_config` may return."""
    return sorted({*_POSTGRES.values(), "simple"})


def fold(text: str) -> str:
    """Lower case without accents: ``Écouté`` is ``ecoute`` (what SQLite's unicode61 does)."""
    if text.isascii():
        return text.lower()  # nothing to decompose: the common case, made cheap
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.cache
def _stemmer(language: str) -> Any:
    import snowballstemmer

    name = _SNOWBALL.get(language)
    return snowballstemmer.stemmer(name) if name else None


def stems(text: str, language: str) -> str:
    """The words of ``text`` as SQLite indexes them: folded, then stemmed in their language.

    Folding first, as PostgreSQL's ``unaccent`` before its stemmer does, so
    both backends agree and a query typed without accents is analysed
    exactly like one with them. A language with no stemmer is only folded.
    """
    lang = language or "en"
    return " ".join(_stem(word, lang) for word in _WORD.findall(fold(text)))


@functools.lru_cache(maxsize=1 << 17)
def _stem(word: str, language: str) -> str:
    """One folded word's stem. Cached: speech repeats its words (Zipf), and
    Snowball in Python costs tens of microseconds a word, which every search
    snippet and every indexed turn would pay again for the same words."""
    stemmer = _stemmer(language)
    return str(stemmer.stemWord(word)) if stemmer is not None else word


def main_language(turns: Sequence[Turn]) -> str:
    """The language most words of a space are in ("" if none is known)."""
    counts: dict[str, int] = {}
    for t in turns:
        if t.language:
            counts[t.language] = counts.get(t.language, 0) + len(t.words)
    return max(sorted(counts), key=lambda lang: counts[lang]) if counts else ""
