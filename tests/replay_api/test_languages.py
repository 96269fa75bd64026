"""Pages in the reader's language; spaces' languages at the API edge."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spaces import keys
from spaces.models import Space, SpaceState, SpeakerLanguage, Transcript
from tests.support.replay import Recording, publish


def _french(app: FastAPI, recording: Recording) -> Space:
    source = recording.transcript
    turns = tuple(replace(t, language="fr") for t in source.turns)
    space = publish(
        app.state.catalog,
        app.state.blobs,
        recording,
        title="Soirée cartes",
        transcript=Transcript("x", source.duration, source.speakers, turns),
        created_at=1_700_000_000.0,
    )
    languages = {"alice": SpeakerLanguage("fr", "detected", 0.62), "bob": SpeakerLanguage("fr", "set", 1.0, False)}
    app.state.catalog.put_space(replace(space, language="auto", languages=languages))
    blobs_transcript = Transcript(
        space.space_id, source.duration, source.speakers, turns, language="auto", languages=languages
    )
    app.state.blobs.put(
        keys.transcript(space.space_id),
        json.dumps(blobs_transcript.to_dict()).encode(),
        content_type="application/json",
    )
    return space


def test_the_replay_page_speaks_french_to_a_french_reader(
    local_client: TestClient, local_app: FastAPI, recording: Recording
) -> None:
    space = _french(local_app, recording)
    page = local_client.get(f"/spaces/{space.space_id}/replay", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
    assert page.status_code == 200
    body = page.text
    assert '<html lang="fr">' in body
    assert "Animé par" in body and "Intervenants" in body and "Transcription" in body and "Hosted by" not in body
    # Dates and durations for the locale: 14 nov. 2023, 22 h 13 UTC; 20 s.
    assert "14 nov. 2023, 22 h 13 UTC" in body
    # The captions and each turn declare the language they are in.
    assert 'srclang="fr"' in body and '<div class="turn spk-0" lang="fr"' in body
    # bob's track was French for a model that does not speak it: said plainly.
    assert "Le modèle de transcription ne parle pas français : les mots de bob sont sa meilleure tentative" in body
    # The switch, on every page, keeps where the reader is.
    assert f'href="http://testserver/spaces/{space.space_id}/replay?lang=en" hreflang="en"' in body
    english = local_client.get(f"/spaces/{space.space_id}/replay", headers={"Accept-Language": "en-GB"}).text
    assert '<html lang="en">' in english and "Hosted by" in english and "14 Nov 2023, 22:13 UTC" in english


def test_the_switch_overrides_accept_language_and_sticks(local_client: TestClient) -> None:
    home = local_client.get("/?lang=fr", headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in home.text and "Enregistré, transcrit et consultable." in home.text
    assert "Espaces passés" in home.text and "Lancer un espace" in home.text and "Past spaces" not in home.text
    # The host picks the space's language when starting it (home.js posts it).
    assert '<select name="language"' in home.text and '<option value="fr" lang="fr">français</option>' in home.text
    assert "lang=fr" in home.headers["set-cookie"]
    # A cache must not hand this page to a reader of another language.
    assert home.headers["vary"] == "Accept-Language, Cookie"
    assert "vary" not in local_client.get("/spaces").headers
    again = local_client.get("/", headers={"Accept-Language": "en"})  # the cookie, kept by the client
    assert '<html lang="fr">' in again.text
    local_client.cookies.clear()
    assert '<html lang="en">' in local_client.get("/", headers={"Accept-Language": "de, en;q=0.5"}).text


def test_space_detail_shows_its_language_and_each_speakers(
    local_client: TestClient, local_app: FastAPI, recording: Recording
) -> None:
    space = _french(local_app, recording)
    body = local_client.get(f"/spaces/{space.space_id}").json()
    assert body["language"] == "auto"
    speakers = {s["name"]: s for s in body["speakers"]}
    assert (speakers["alice"]["language"], speakers["alice"]["language_source"]) == ("fr", "detected")
    assert speakers["alice"]["model_speaks_language"] is True and speakers["alice"]["note"] is None
    assert speakers["bob"]["model_speaks_language"] is False
    assert "does not speak French (fr)" in speakers["bob"]["note"]
    transcript = local_client.get(f"/spaces/{space.space_id}/transcript").json()
    assert transcript["languages"] == {"alice": "fr", "bob": "fr"}
    assert {t["language"] for t in transcript["turns"]} == {"fr"}


def test_a_space_opened_with_a_language_keeps_it_and_an_unknown_one_is_refused(local_client: TestClient) -> None:
    refused = local_client.post("/spaces", json={"title": "x", "language": "klingon"})
    assert refused.status_code == 422
    assert "unknown language 'klingon'" in refused.text and "auto, af, am" in refused.text
    created = local_client.post("/spaces", json={"title": "Stammtisch", "language": "DE"})
    assert created.status_code == 201 and created.json()["language"] == "de"
    assert local_client.get(f"/spaces/{created.json()['space_id']}").json()["language"] == "de"


FRENCH_BROWSER = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}


def test_the_processing_page_speaks_french(local_client: TestClient, local_app: FastAPI) -> None:
    local_app.state.catalog.put_space(Space("wip", "Au four", "h", 1_700_000_000.0, state=SpaceState.PROCESSING))
    local_app.state.catalog.set_progress("wip", "transcribe:alice", 0.4)
    page = local_client.get("/spaces/wip/replay", headers=FRENCH_BROWSER).text
    assert '<html lang="fr">' in page and "Préparation de la réécoute…" in page and "Transcription de alice" in page
    assert "Animé par" in page and "14 nov. 2023, 22 h 13 UTC" in page and "Preparing" not in page
    assert 'href="http://testserver/spaces/wip/replay?lang=en" hreflang="en"' in page
    local_app.state.catalog.put_space(Space("soon", "Bientôt", "h", 1.0, state=SpaceState.CREATED))
    page = local_client.get("/spaces/soon/replay", headers=FRENCH_BROWSER).text
    assert "Cet espace n&#39;a pas encore commencé" in page and ">Rejoindre en direct</a>" in page


def test_error_pages_speak_french(local_client: TestClient, local_published: Space) -> None:
    page = local_client.get("/no/such/page", headers=FRENCH_BROWSER)
    assert page.status_code == 404 and '<html lang="fr">' in page.text
    assert "<h1>Page introuvable</h1>" in page.text and "Il n&#39;y a rien à cette adresse." in page.text
    assert "Retour à tous les espaces" in page.text and "?lang=en" in page.text
    page = local_client.get(f"/spaces/{local_published.space_id}/replay?t=-5", headers=FRENCH_BROWSER)
    assert page.status_code == 422 and "<h1>Requête incorrecte</h1>" in page.text
    assert "Ce lien a une valeur incorrecte pour « t » : ce doit être au moins 0." in page.text
    # The JSON API keeps its developer's English whatever the reader's language.
    api = local_client.get("/spaces/nosuchspace/transcript", headers={"Accept-Language": "fr"})
    assert api.json()["error"]["message"] == "no space 'nosuchspace'"


def test_the_live_pages_speak_french(local_client: TestClient, local_app: FastAPI) -> None:
    local_app.state.catalog.put_space(Space("onair", "En direct", "hote", 1_700_000_000.0, state=SpaceState.LIVE))
    page = local_client.get("/spaces/onair/live", headers=FRENCH_BROWSER).text
    assert '<html lang="fr">' in page and "Animé par hote" in page and "enregistré automatiquement" in page
    assert ">Écouter</button>" in page and "Lever la main" in page and "Commandes de l&#39;animateur" in page
    assert "Hosted by" not in page and "Raise hand" not in page.split('id="strings"')[0]
    assert 'href="http://testserver/spaces/onair/live?lang=en" hreflang="en"' in page
    # The scripts' strings, in French, in the block i18n.js reads (escaped so it cannot close its tag).
    block = re.search(r'<script type="application/json" id="strings">(.*?)</script>', page, re.S)
    assert block is not None
    strings = json.loads(block.group(1))
    assert strings["Raise hand"] == "Lever la main" and strings["{count} listeners"] == "{count} auditeurs"
    assert strings["Listening over HLS"] == "Écoute en HLS" and "<" not in block.group(1)
    listing = local_client.get("/live", headers=FRENCH_BROWSER).text
    assert "1 en direct" in listing and "Animé par hote · depuis le 14 nov. 2023, 22 h 13 UTC" in listing
    english = local_client.get("/spaces/onair/live", headers={"Accept-Language": "en"}).text
    assert (
        ">Listen</button>" in english
        and json.loads(
            re.search(r'id="strings">(.*?)</script>', english, re.S).group(1)  # type: ignore[union-attr]
        )["Raise hand"]
        == "Raise hand"
    )
