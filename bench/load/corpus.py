"""What the spaces are made of: imported two-speaker spaces, the speakers' loops, search queries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.load.stack import Stack, settings_of

RATE = 48000


def recorded_spaces(work: Path, count: int, *, minutes: float, first_seed: int) -> list[dict[str, Path]]:
    """Two-speaker conversations (espeak-ng, cached) as track files to import."""
    from bench.pipeline import conversation
    from tests.speech import VOICES, build_space

    out = []
    for i in range(count):
        into = work / f"space-{first_seed + i}"
        into.mkdir(parents=True, exist_ok=True)
        space = build_space(conversation(minutes, seed=first_seed + i), {"alice": VOICES[0], "bob": VOICES[1]},
                            duration=minutes * 60, out_dir=into)  # fmt: skip
        out.append(dict(space))
    return out


def import_spaces(stack: Stack, spaces: list[dict[str, Path]], title: str) -> list[str]:
    from spaces.blobstore import open_blob_store
    from spaces.catalog import open_catalog
    from spaces.importer import TrackFile, import_space

    settings = settings_of(stack)
    catalog = open_catalog(settings)
    try:
        return [
            import_space(
                open_blob_store(settings), catalog, [TrackFile(s, p) for s, p in tracks.items()], title=f"{title} {i}"
            ).space_id  # fmt: skip
            for i, tracks in enumerate(spaces)
        ]
    finally:
        catalog.close()


def speaker_audio(work: Path) -> tuple[Path, Path]:
    """The host's and the guest's loop: every sentence once, taking turns, ~40 s."""
    import numpy as np

    from tests.speech import SENTENCES
    from tests.support.sfu import VOICE_A, VOICE_B, speech48k

    host: list[Any] = []
    guest: list[Any] = []
    pause = np.zeros(int(0.7 * RATE), np.int16)
    for i, sentence in enumerate(SENTENCES):
        said = speech48k(sentence, VOICE_A if i % 2 == 0 else VOICE_B)
        quiet = np.zeros(len(said), np.int16)
        host += [said if i % 2 == 0 else quiet, pause]
        guest += [quiet if i % 2 == 0 else said, pause]
    paths = (work / "host.npy", work / "guest.npy")
    np.save(paths[0], np.concatenate(host))
    np.save(paths[1], np.concatenate(guest))
    return paths


def search_queries() -> list[str]:
    """Two content words said together in the seeded conversations."""
    from tests.speech import SENTENCES

    out = []
    for sentence in SENTENCES:
        words = [w for w in re.findall(r"[a-z]+", sentence.lower()) if len(w) > 4]
        out += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return out
