"""Word timings from Piper's phoneme alignments.

Piper (≥ 1.5, with the ``onnx`` package: ``piper-tts[alignment]``) reports, for each
chunk of audio it makes, every phoneme with the number of audio samples it lasts. Spoken
words are the runs of phonemes between the space phoneme; a word's time is the running sum
of the samples before its first phoneme and after its last. The text's words are matched to
the spoken ones by how many spoken words each becomes on its own — ``1999`` is three
("nineteen hundred / ninety / nine"), ``$5`` two, ``Dr.`` one, ``—`` none — so numbers and
abbreviations keep their place. When the counts do not add up (a word spoken differently
in context), the sentence's words are spread over its audio by length instead, and the
result says they are estimated.
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Callable, Iterable, Sequence

from avgen._models import Segment, spread_words

__all__: list[str] = []

_SILENT = frozenset({"^", "$", "_"})
"""Piper's start, end and padding phonemes: no sound of a word."""
_PUNCTUATION = frozenset(".,;:!?¡¿—…\"«»“”'()-")
_SPACE = " "


def spoken_words(alignments: Iterable[tuple[str, int]]) -> list[tuple[int, int]]:
    """Each spoken word's (first sample, end sample) from ``(phoneme, samples)`` pairs."""
    words: list[tuple[int, int]] = []
    position = 0
    start: int | None = None
    end = 0
    for phoneme, samples in alignments:
        if phoneme == _SPACE or phoneme in _SILENT:
            if start is not None:
                words.append((start, end))
                start = None
        elif phoneme not in _PUNCTUATION:
            if start is None:
                start = position
            end = position + samples
        position += samples
    if start is not None:
        words.append((start, end))
    return words


def spoken_count(phonemes: Sequence[Sequence[str]]) -> int:
    """How many spoken words a phonemized text is (Piper's ``phonemize`` output)."""
    count = 0
    for sentence in phonemes:
        inside = False
        for phoneme in sentence:
            if phoneme == _SPACE or phoneme in _SILENT:
                inside = False
            elif phoneme not in _PUNCTUATION and not inside:
                inside, count = True, count + 1
    return count


def word_segments(text: str, alignments: Sequence[tuple[str, int]], rate: int, offset: float,
                  count_of: Callable[[str], int]) -> tuple[list[Segment], bool]:
    """The words of ``text`` (split on white space) timed from its ``alignments``.

    Args:
        text: What was spoken.
        alignments: Every ``(phoneme, samples)`` of its audio, in order.
        rate: The audio's sample rate.
        offset: Where its audio starts in the file, in seconds.
        count_of: How many spoken words a word of the text becomes.

    Returns:
        The words with their times, and whether they are estimated (spread by length
        because the spoken words did not match the text's).
    """
    words = text.split()
    spoken = spoken_words(alignments)
    total = sum(samples for _, samples in alignments)
    if not words:
        return [], False
    counts = [count_of(word) for word in words]
    if spoken and sum(counts) == len(spoken):
        segments, cursor = [], 0
        for word, count in zip(words, counts, strict=True):
            if count == 0:  # a dash or a symbol spoken as nothing: at the current point
                at = spoken[cursor][0] if cursor < len(spoken) else spoken[-1][1]
                segments.append(Segment(word, offset + at / rate, offset + at / rate))
                continue
            first, last = spoken[cursor], spoken[cursor + count - 1]
            cursor += count
            segments.append(Segment(word, offset + first[0] / rate, offset + last[1] / rate))
        return segments, False
    return spread_words(words, offset, offset + total / rate), True
