"""Search per language, on both catalog backends: stems of the turn's language, accents folded."""

from __future__ import annotations

import time

from spaces.catalog import Catalog, TurnRow
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sqlite import SqliteCatalog
from spaces.models import Space, SpaceState, Turn, Word


def _turn(speaker: str, text: str, language: str, at: float = 0.0) -> Turn:
    words = tuple(Word(at + i, at + i + 0.5, w, speaker) for i, w in enumerate(text.split()))
    return Turn(speaker, words, language=language)


def _space(catalog: Catalog, space_id: str, turns: list[Turn], language: str = "auto") -> None:
    catalog.put_space(
        Space(space_id, f"title {space_id}", "host", time.time(), state=SpaceState.READY, language=language)
    )
    catalog.replace_turns(space_id, turns)


def test_a_french_query_finds_french_turns_with_and_without_accents_and_stemmed(catalog: Catalog) -> None:
    _space(catalog, "fr1", [_turn("amélie", "Nous avons écouté des chansons françaises hier soir.", "fr")], "fr")
    _space(catalog, "en1", [_turn("bob", "We listened to French songs last night.", "en")], "en")
    for query in ("écouter", "ecouter", "écoute", "chanson française", '"chansons francaises"'):
        hits = catalog.search(query, limit=10)
        assert [(h.space_id, h.language) for h in hits] == [("fr1", "fr")], query
    hit = catalog.search("ecouter chanson", limit=10)[0]
    # The snippet is the turn as said, accents and all, with the matched words marked.
    assert "<mark>écouté</mark>" in hit.snippet and "<mark>chansons</mark>" in hit.snippet
    assert "françaises" in hit.snippet
    # English turns are stemmed as English: "listening" finds "listened".
    assert [h.space_id for h in catalog.search("listening songs", limit=10)] == ["en1"]


def test_german_and_spanish_turns_are_stemmed_in_their_language(catalog: Catalog) -> None:
    _space(catalog, "de1", [_turn("jonas", "Wir hörten gestern die schönsten Lieder.", "de")])
    _space(catalog, "es1", [_turn("lucía", "Escuchamos canciones españolas durante horas.", "es")])
    assert [h.space_id for h in catalog.search("schöne lied", limit=10)] == ["de1"]
    assert [h.space_id for h in catalog.search("schone", limit=10)] == ["de1"]
    assert [h.space_id for h in catalog.search("cancion espanola", limit=10)] == ["es1"]


def test_turns_from_before_languages_are_searched_as_english(catalog: Catalog) -> None:
    catalog.bulk_insert(
        [Space("old1", "old", "host", time.time(), state=SpaceState.READY)],
        [TurnRow("old1", 0, "ann", 0.0, 1.0, "The harbour seals were playing")],
    )
    assert [h.space_id for h in catalog.search("seal play", limit=10)] == ["old1"]


def test_a_space_keeps_its_language_and_speakers_languages(catalog: Catalog) -> None:
    from spaces.models import SpeakerLanguage

    languages = {"amélie": SpeakerLanguage("fr", "detected", 0.41), "bob": SpeakerLanguage("en", "detected", 0.97)}
    catalog.put_space(Space("mix1", "mixed", "host", time.time(), language="auto", languages=languages))
    space = catalog.get_space("mix1")
    assert space.language == "auto" and space.languages == languages


def _another(catalog: Catalog) -> Catalog:
    """A second catalog on the same database, as another process (a worker beside the API) opens it."""
    if isinstance(catalog, PostgresCatalog):
        return PostgresCatalog(catalog.url, max_size=1)
    assert isinstance(catalog, SqliteCatalog)
    return SqliteCatalog(catalog.path)


def test_a_language_another_process_writes_is_searched_at_once(catalog: Catalog) -> None:
    """Each search reads the languages turns are in (PostgreSQL: in the prepared statement it opens with)."""
    _space(catalog, "en1", [_turn("bob", "We listened to songs last night.", "en")], "en")
    for _ in range(3):  # the search's statements prepared on its connection
        assert [h.space_id for h in catalog.search("listening", limit=10)] == ["en1"]
    assert catalog.search("ecouter", limit=10) == []
    writer = _another(catalog)
    try:
        _space(writer, "fr1", [_turn("amélie", "Nous avons écouté des chansons hier soir.", "fr")], "fr")
    finally:
        writer.close()
    assert [(h.space_id, h.language) for h in catalog.search("ecouter", limit=10)] == [("fr1", "fr")]
    assert [h.space_id for h in catalog.search("chanson", limit=10, speaker="Amélie")] == ["fr1"]
    assert [h.space_id for h in catalog.search("ecoute", limit=10, space_id="fr1")] == ["fr1"]
