"""Search: ranking, phrases, speaker filter, pages; one suite over both catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spaces.catalog import Catalog, SpaceFilter
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sqlite import SqliteCatalog
from spaces.models import Space, SpaceState, Turn, Visibility, Word

#: (space id, title, state, [(speaker, start, text)]) - words get 0.3 s each.
CORPUS: list[tuple[str, str, SpaceState, list[tuple[str, float, str]]]] = [
    (
        "cards",
        "Card night",
        SpaceState.READY,
        [
            ("alice", 1.0, "Welcome everyone to the card table tonight."),
            ("bob", 5.0, "Thanks Alice, I brought the ten of clubs."),
            ("alice", 9.0, "Lovely. Let us talk about the queen of hearts."),
            ("bob", 14.0, "The river card decided everything in the final round."),
        ],
    ),
    (
        "rivers",
        "River walks",
        SpaceState.READY,
        [
            ("carol", 2.0, "River river river: the river is all I talk about."),
            ("dave", 8.0, "We walked down to the river after lunch and it was cold."),
            ("carol", 15.5, "Ten clubs joined the walk, and the clubs brought ten dogs."),
        ],
    ),
    (
        "pending",
        "Not processed yet",
        SpaceState.PROCESSING,
        [("erin", 1.0, "The river and the ten of clubs are in here too.")],
    ),
]


def seed(catalog: Catalog) -> None:
    for i, (space_id, title, state, lines) in enumerate(CORPUS):
        turns = [
            Turn(
                speaker,
                tuple(Word(start + k * 0.3, start + k * 0.3 + 0.25, w, speaker) for k, w in enumerate(text.split())),
            )
            for speaker, start, text in lines
        ]
        speakers = tuple(dict.fromkeys(s for s, _, _ in lines))
        catalog.put_space(Space(space_id, title, speakers[0], 1_700_000_000.0 + i, state=state, speakers=speakers))
        catalog.replace_turns(space_id, turns)


def found(catalog: Catalog, query: str, **kwargs: object) -> list[tuple[str, str, float]]:
    hits = catalog.search(query, limit=kwargs.pop("limit", 20), **kwargs)  # type: ignore[arg-type]
    return [(h.space_id, h.speaker, h.start) for h in hits]


def test_ranked_hits(catalog: Catalog) -> None:
    seed(catalog)
    hits = catalog.search("river", limit=10)
    # The turn that says "river" five times ranks first in BM25 and in ts_rank.
    assert [(h.space_id, h.speaker, h.start) for h in hits][0] == ("rivers", "carol", 2.0)
    assert {(h.space_id, h.start) for h in hits} == {("rivers", 2.0), ("rivers", 8.0), ("cards", 14.0)}
    assert hits[0].rank >= hits[1].rank >= hits[2].rank
    assert all("<mark>" in h.snippet.lower() for h in hits)
    assert hits[0].space_title == "River walks"


def test_words_are_stemmed_and_all_must_match(catalog: Catalog) -> None:
    seed(catalog)
    assert found(catalog, "walking") == found(catalog, "walks")
    assert {s for s, _, _ in found(catalog, "walk")} == {"rivers"}
    assert found(catalog, "queen hearts") == [("cards", "alice", 9.0)]
    assert found(catalog, "queen river") == []


def test_phrases(catalog: Catalog) -> None:
    seed(catalog)
    assert found(catalog, '"ten of clubs"') == [("cards", "bob", 5.0)]
    # Both words, not the phrase: matches both turns.
    assert {s for s, _, _ in found(catalog, "ten clubs")} == {"cards", "rivers"}
    assert found(catalog, '"clubs ten"') == []
    # A phrase plus a word.
    assert found(catalog, '"final round" river') == [("cards", "bob", 14.0)]


def test_stop_words_alone_find_nothing_on_either_backend(catalog: Catalog) -> None:
    seed(catalog)
    assert found(catalog, "the") == []
    assert found(catalog, "the queen") == found(catalog, "queen")


def test_speaker_filter_and_space_filter(catalog: Catalog) -> None:
    seed(catalog)
    assert {sp for _, sp, _ in found(catalog, "river", speaker="dave")} == {"dave"}
    assert found(catalog, "river", speaker="nobody") == []
    assert {s for s, _, _ in found(catalog, "river", space_id="cards")} == {"cards"}


def test_only_ready_spaces(catalog: Catalog) -> None:
    seed(catalog)
    assert "pending" not in {s for s, _, _ in found(catalog, "river")}


def test_speaker_filter_ignores_case(catalog: Catalog) -> None:
    seed(catalog)
    catalog.put_space(Space("elise", "Accents", "Élise", 1.0, state=SpaceState.READY, speakers=("Élise",)))
    catalog.replace_turns("elise", [Turn("Élise", (Word(1.0, 1.5, "harbour", "Élise"),))])
    daves = [("rivers", "dave", 8.0)]
    assert found(catalog, "river", speaker="dave") == daves
    assert found(catalog, "river", speaker="Dave") == daves
    assert found(catalog, "river", speaker="DAVE") == daves
    assert found(catalog, "harbour", speaker="élise") == [("elise", "Élise", 1.0)]
    # Listings filtered by speaker too.
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(speaker="Carol"), limit=5)] == ["rivers"]
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(speaker="ÉLISE"), limit=5)] == ["elise"]


def test_last_word_matches_as_a_prefix(catalog: Catalog) -> None:
    """As the replay page's search within a space does: the last word may be half typed."""
    seed(catalog)
    assert found(catalog, "queen hea") == [("cards", "alice", 9.0)]
    assert found(catalog, "riv") == found(catalog, "river")
    assert {s for s, _, _ in found(catalog, "lun")} == {"rivers"}  # lunch
    # Only the last word, and not inside quotes: the others are whole words.
    assert found(catalog, "hea queen") == []
    assert found(catalog, '"queen of hea"') == []
    assert found(catalog, 'hea "queen"') == []
    # Too short a prefix matches whole (a scan of the vocabulary otherwise).
    assert found(catalog, "queen ta") == []  # talk
    # In listings' text filter too.
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(text="dog"), limit=5)] == ["rivers"]


def test_a_space_being_reprocessed_stays_searchable(catalog: Catalog) -> None:
    """As its replay stays served (``replay_api.deps.servable``): an earlier run's outputs are complete."""
    seed(catalog)
    queen = [("cards", "alice", 9.0)]
    catalog.set_state("cards", SpaceState.PROCESSING)
    assert found(catalog, "queen") == queen
    catalog.set_state("cards", SpaceState.FAILED, error="mix failed")
    assert found(catalog, "queen") == queen
    # A first run is not searchable until it is ready, whatever its turns.
    assert "pending" not in {s for s, _, _ in found(catalog, "river")}
    catalog.set_state("pending", SpaceState.FAILED)
    assert "pending" not in {s for s, _, _ in found(catalog, "river")}
    catalog.set_state("pending", SpaceState.READY)
    assert "pending" in {s for s, _, _ in found(catalog, "river")}


def test_pages(catalog: Catalog) -> None:
    seed(catalog)
    everything = found(catalog, "river", limit=10)
    pages = [found(catalog, "river", limit=1, offset=i) for i in range(len(everything) + 1)]
    assert [hit for page in pages for hit in page] == everything
    assert pages[-1] == []


@pytest.mark.parametrize(
    "query",
    [
        'clubs" NEAR( * (',
        "(((",
        "AND OR NOT",
        "*",
        '"',
        "ten -clubs",
        "col:umn",
        "^river",
        "river*",
        "'; DROP TABLE turns; --",
    ],
)
def test_query_syntax_never_fails(catalog: Catalog, query: str) -> None:
    seed(catalog)
    catalog.search(query, limit=5)


def test_both_backends_return_the_same_hits(tmp_path: Path, pg_url: str) -> None:
    sqlite = SqliteCatalog(tmp_path / "same.db")
    postgres = PostgresCatalog(pg_url)
    try:
        for cat in (sqlite, postgres):
            cat.create_schema()
            seed(cat)
        for query in ["river", "clubs", "ten clubs", '"ten of clubs"', "walked", "queen", "the card",
                      '"final round"', "cold lunch", "hearts", "dogs ten", "ten clu", "queen hea",
                      "walki", "brou", "dece"]:  # fmt: skip
            # The same hits; their order is each backend's ranking (BM25, ts_rank),
            # which agree where one turn clearly matches best.
            assert sorted(found(sqlite, query)) == sorted(found(postgres, query)), query
            assert sorted(found(sqlite, query, speaker="carol")) == sorted(found(postgres, query, speaker="carol"))
        for query in ["river", '"ten of clubs"', "hearts", "clubs"]:
            assert found(sqlite, query)[0] == found(postgres, query)[0], query
    finally:
        sqlite.close()
        postgres.close()


# --- through the HTTP API -----------------------------------------------------


def test_api_hits_with_deep_links(client: TestClient, app: FastAPI) -> None:
    seed(app.state.catalog)
    body = client.get("/search", params={"q": '"ten of clubs"'}).json()
    assert body["query"] == '"ten of clubs"'
    [hit] = body["hits"]
    assert hit["space_id"] == "cards" and hit["speaker"] == "bob" and hit["start"] == 5.0
    assert hit["space_title"] == "Card night"
    assert hit["link"] == "/spaces/cards/replay?t=5.00"
    assert "<mark>" in hit["snippet"] and "clubs" in hit["snippet"]
    assert body["next_offset"] is None


def test_api_pagination_and_filters(client: TestClient, app: FastAPI) -> None:
    seed(app.state.catalog)
    first = client.get("/search", params={"q": "river", "limit": 2}).json()
    assert len(first["hits"]) == 2 and first["next_offset"] == 2
    rest = client.get("/search", params={"q": "river", "limit": 2, "offset": 2}).json()
    assert len(rest["hits"]) == 1 and rest["next_offset"] is None
    assert {h["speaker"] for h in client.get("/search", params={"q": "river", "speaker": "dave"}).json()["hits"]} == {
        "dave"
    }
    assert {h["space_id"] for h in client.get("/search", params={"q": "river", "space": "cards"}).json()["hits"]} == {
        "cards"
    }


def test_api_snippets_are_escaped(client: TestClient, app: FastAPI) -> None:
    catalog = app.state.catalog
    catalog.put_space(
        Space("xss", "<b>Title</b>", "mallory", 1.0, state=SpaceState.READY, visibility=Visibility.PUBLIC)
    )
    said = ["<script>alert(1)</script>", "payload", "a<b", "&", "<img", "src=x", "onerror=alert(1)>"]
    words = tuple(Word(i, i + 0.5, t, "mallory") for i, t in enumerate(said))
    catalog.replace_turns("xss", [Turn("mallory", words)])
    [hit] = client.get("/search", params={"q": "payload"}).json()["hits"]
    # Whatever part of the turn a backend picks, the only markup is our <mark>.
    assert "<" not in hit["snippet"].replace("<mark>", "").replace("</mark>", "")
    assert "<mark>payload</mark>" in hit["snippet"]
    assert hit["space_title"] == "<b>Title</b>"  # JSON is data; the pages escape it


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x" * 10_000},
        {"q": ""},
        {"q": "river", "limit": 0},
        {"q": "river", "limit": 1000},
        {"q": "river", "offset": -1},
        {"q": "river", "offset": 10_000_000},
        {"q": "river", "space": "../etc"},
        {"q": "river", "speaker": "s" * 1000},
        {},
    ],
)
def test_api_bad_input(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["status"] == 422


def test_api_long_but_allowed_query(client: TestClient, app: FastAPI) -> None:
    seed(app.state.catalog)
    response = client.get("/search", params={"q": " ".join(["river"] * 80)})
    assert response.status_code == 200
