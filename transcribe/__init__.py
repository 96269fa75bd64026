"""Pure audio-to-text: from a speaker's track to words on the room clock.

Modules, one concept each:

- ``audio``: decoding any file ffmpeg reads, placing pieces on the room clock.
- ``model``: loading Whisper (the bundled tiny.en by default), never downloading.
- ``vad``: where someone speaks (silero VAD), memory-flat on long tracks.
- ``transcribe``: words of one track, with hallucination guards.
- ``context``: a second pass over the utterances Whisper was unsure of, with
  the room's preceding text as prompt (context across speakers).
- ``loops``: repeated-phrase loops.
- ``levels``: per-frame loudness of a track, for bleed detection.
- ``bleed``: words a microphone picked up from another speaker.
- ``assemble``: every track's words merged into speaker turns.
- ``captions``: WebVTT/SRT cues from word timings.

Nothing here knows about the queue, the blob store or the catalog.
"""
