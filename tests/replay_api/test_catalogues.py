"""Every string the pages show is in every catalogue: a third language is one more file."""

from __future__ import annotations

import ast
import json
import re
import shutil
import string
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jinja2 import nodes

from replay_api import i18n, messages, templating
from replay_api.i18n import DEFAULT, locales
from replay_api.templating import STATIC_DIR, TEMPLATE_DIR, script_keys, templates
from spaces.languages import NAMES


def _template_keys() -> set[str]:
    """The literal first argument of every ``_(...)`` call in the templates."""
    found: set[str] = set()
    for path in TEMPLATE_DIR.glob("*.html"):
        tree = templates.env.parse(path.read_text(encoding="utf-8"))
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name == "_" and call.args:
                first = call.args[0]
                # A non-literal is a language's name (``_python_keys`` has those).
                if isinstance(first, nodes.Const):
                    found.add(first.value)
    return found


def _python_keys() -> set[str]:
    """What Python hands to a page's gettext: stages, states, error titles and sentences, language names."""
    found = set(templating._STAGES.values()) | set(templating._STATES.values()) | {"a speaker"}
    found |= set(messages.TITLES.values()) | set(messages.PLAIN.values()) | {"Error"}
    found |= {messages.UNKNOWN_PAGE, messages.UNKNOWN_PAGE_TITLE} | set(messages._WHERE.values()) | {"The request"}
    source = ast.parse((STATIC_DIR.parent / "messages.py").read_text(encoding="utf-8"))
    for call in ast.walk(source):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "tr" and call.args:
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found | set(NAMES.values())


def _script_keys() -> set[str]:
    return {key for path in STATIC_DIR.glob("*.js") for key in script_keys(path.name)}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_key_finders_see_the_pages() -> None:
    assert "Hosted by" in _template_keys() and "Preparing the replay…" in _template_keys()
    assert "Raise hand" in _script_keys() and "Listening over HLS" in _script_keys()
    assert "it should be a number" in _python_keys()


def test_every_key_is_in_every_catalogue_with_the_same_placeholders() -> None:
    keys = _template_keys() | _python_keys() | _script_keys()
    others = [locale for code, locale in locales().items() if code != DEFAULT]
    assert others, "no catalogue besides English"
    for locale in others:
        missing = sorted(keys - set(locale.strings))
        assert not missing, f"{locale.code}.json lacks {missing}"
        wrong = [k for k in keys if _fields(k) != _fields(locale.strings[k])]
        assert not wrong, f"{locale.code}.json changes the placeholders of {wrong}"


def test_scripts_show_no_text_outside_the_catalogue() -> None:
    # A user-facing sentence in a script is a string literal starting with a capital and holding a space;
    # each must be a tr() key (class names, URLs and protocol words do not match).
    sentence = re.compile(r'(?<!tr\()["`]([A-Z][a-z]+ [A-Za-z][^"`]*)["`]')
    for path in STATIC_DIR.glob("*.js"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith(("//", "*", "/*")):
                continue
            loose = [s for s in sentence.findall(line) if s not in script_keys(path.name)]
            assert not loose, f"{path.name}: {loose} is not translated"


def test_a_third_language_is_one_file(
    local_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(i18n.LOCALE_DIR / "fr.json", tmp_path / "fr.json")
    german = {"_meta": {"name": "Deutsch", "date_format": "{day}. {month} {year}, {hour:02d}:{minute:02d} UTC"}}
    (tmp_path / "de.json").write_text(json.dumps({**german, "Live now": "Jetzt live", "Raise hand": "Hand heben"}))
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.locales.cache_clear()
    try:
        page = local_client.get("/live", headers={"Accept-Language": "de-AT,de;q=0.9"}).text
        assert '<html lang="de">' in page and "<h1>Jetzt live</h1>" in page
        assert 'hreflang="de" lang="de" aria-current="true">Deutsch</a>' in page and 'hreflang="fr"' in page
    finally:
        i18n.locales.cache_clear()
