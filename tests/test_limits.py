"""Limits on what a request may hold, and bad input refused before any work or paid call:
texts longer than their limit, a paragraph without punctuation (narrated in pieces, in
bounded memory), budgets too small to pay for anything, a folder that is not a path, a
field a request does not have."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from fake_gemini import FakeGemini
from hypothesis import given
from hypothesis import strategies as st
from media import decode

from avgen import VideoGenerator, VideoRequest
from avgen.agents import AssetCache
from avgen.agents.google import GoogleConnection, google_agents
from avgen.agents.local import PiperNarrator
from avgen.agents.local._narrator import MAX_PIECE_CHARS, spoken_pieces
from avgen.errors import BudgetExceeded, UsageError
from avgen.resilience import set_testing

KEY = "AIzaFAKE-limits-key-0123456789abcdef"
BEES = "# Bees\n\nBees dance. They tell the hive where flowers are.\n"


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(polls_until_done=2) as server, set_testing():
        yield server


def google(fake: FakeGemini, tmp_path: Path, budget: float | None = None) -> VideoGenerator:
    connection = GoogleConnection.from_env({"GEMINI_API_KEY": KEY}, base_url=fake.base_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # developer mode: stills, not clips
        agents = google_agents(connection, cache=AssetCache(tmp_path / "cache"),
                               poll_interval=0.01)
    return VideoGenerator(agents, output_dir=tmp_path / "out", budget=budget)


def cli_env(tmp_path: Path, fake: FakeGemini) -> dict[str, str]:
    return {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.base_url,
            "AVGEN_CACHE_DIR": str(tmp_path / "cache")}


def avgen(*args: str, env: dict[str, str] | None = None, cwd: Path,
          address_space: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run([sys.executable, "-m", "avgen", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False,
                          preexec_fn=limit)


# -- request size -------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), [
    ("script", 200_000), ("topic", 5_000), ("title", 500), ("voice", 4_096),
    ("language", 35)])
def test_a_text_longer_than_its_limit_is_refused_naming_field_and_limit(
        field: str, limit: int) -> None:
    fields = {"topic": "bees", field: "a" * limit}
    assert getattr(VideoRequest(**fields), field) == "a" * limit  # the limit itself is fine
    fields[field] = "a" * (limit + 1)
    with pytest.raises(UsageError, match=rf"^{field}: has {limit + 1:,} characters; the "
                                         rf"limit is {limit:,}$"):
        VideoRequest(**fields)


def test_a_looks_and_cast_size_are_limited() -> None:
    with pytest.raises(UsageError, match=r"^style: has 2,001 characters; the limit is 2,000"):
        VideoRequest(topic="bees", style="w" * 2001)
    with pytest.raises(UsageError, match=r"^characters\[0\]: Ada is described in"):
        VideoRequest(topic="bees", characters=[{"name": "Ada", "appearance": "x" * 2000}])
    with pytest.raises(UsageError, match=r"^characters: has 21 characters; the limit is 20"):
        VideoRequest(topic="bees", characters=[
            {"name": f"Person {n}", "appearance": "tall"} for n in range(21)])


def test_a_2_mb_script_is_refused_before_any_paid_request(fake: FakeGemini,
                                                          tmp_path: Path) -> None:
    script = "# Long\n\n" + "word " * 400_000  # 2 MB
    with pytest.raises(UsageError, match=r"^script: has 2,000,008 characters; the limit is "
                                         r"200,000$"):
        google(fake, tmp_path).generate_sync(script=script)
    big = tmp_path / "big.md"
    big.write_text(script)
    made = avgen("make", "--script", str(big), "--out", str(tmp_path / "out"), cwd=tmp_path,
                 env=cli_env(tmp_path, fake))
    assert made.returncode == 2, made.stderr
    assert f"script: {str(big)!r} has more than 200,000 characters, the limit" in made.stderr
    assert fake.requests == [] and not (tmp_path / "out").exists()


def test_the_command_refuses_a_script_over_the_limit_from_a_file_or_standard_input(
        tmp_path: Path) -> None:
    stdin = subprocess.run([sys.executable, "-m", "avgen", "make", "--script", "-"],
                           input="word " * 50_000, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, check=False)
    assert stdin.returncode == 2
    assert "script: '-' has more than 200,000 characters, the limit" in stdin.stderr
    wide = tmp_path / "wide.md"
    wide.write_text("é" * 200_000, encoding="utf-8")  # 400 000 bytes, 200 000 characters
    within = avgen("make", "--script", str(wide), "--estimate", cwd=tmp_path)
    assert within.returncode == 0, within.stderr
    wide.write_text("é" * 200_001, encoding="utf-8")
    over = avgen("make", "--script", str(wide), "--estimate", cwd=tmp_path)
    assert over.returncode == 2 and "more than 200,000 characters" in over.stderr


# -- a paragraph without punctuation ------------------------------------------------------


@given(st.lists(st.text(alphabet="abcdefghij,;—", min_size=1, max_size=260), min_size=1,
                max_size=60))
def test_spoken_pieces_are_short_and_keep_every_word_in_order(words: list[str]) -> None:
    sentence = " ".join(words)
    pieces = spoken_pieces(sentence, limit=MAX_PIECE_CHARS)
    assert all(0 < len(piece) <= MAX_PIECE_CHARS for piece in pieces)
    assert all(piece == piece.strip() for piece in pieces)
    assert "".join(pieces).replace(" ", "") == sentence.replace(" ", "")
    if all(len(word) <= MAX_PIECE_CHARS for word in words):  # cut only between words
        assert " ".join(pieces) == sentence
        assert sum(len(piece.split()) for piece in pieces) == len(words)


def test_a_long_sentence_is_cut_after_a_clause_mark_in_the_second_half() -> None:
    first = "one two three four five six seven eight nine ten eleven twelve,"
    sentence = f"{first} thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
    assert spoken_pieces(sentence, limit=len(first) + 10) == [
        first, "thirteen fourteen fifteen sixteen seventeen eighteen nineteen"]
    assert spoken_pieces("short, as it is", limit=40) == ["short, as it is"]


def test_a_paragraph_without_punctuation_is_timed_word_by_word_on_one_clock(
        tmp_path: Path) -> None:
    words = [("river", "stone", "meadow", "seven", "lantern")[n % 5] for n in range(120)]
    text = " ".join(words)
    assert len(text) > 3 * MAX_PIECE_CHARS
    audio = asyncio.run(PiperNarrator().speak(text, tmp_path / "long.wav"))
    assert [segment.text for segment in audio.segments] == [text]  # still one sentence
    assert [word.text for word in audio.words] == words and not audio.words_estimated
    for before, after in zip(audio.words, audio.words[1:], strict=False):
        assert before.start <= before.end <= after.start + 1e-6  # in order, no overlap
        assert after.start - before.end < 1.0  # no gap where a piece ends
    assert audio.words[-1].end <= audio.duration + 1e-6
    assert decode(audio.path)["audio_duration"] == pytest.approx(audio.duration, abs=0.05)


@pytest.mark.slow
def test_a_paragraph_without_punctuation_is_made_in_bounded_memory(tmp_path: Path) -> None:
    script = tmp_path / "long.md"
    script.write_text("# L\n\n" + "word " * 300 + "\n")
    # 300 words spoken at once need more than 2 GiB; in pieces, far less
    made = avgen("make", "--agents", "local", "--script", str(script), "--preset", "draft",
                 "--out", str(tmp_path / "out"), "-q", cwd=tmp_path, address_space=2 << 30)
    assert made.returncode == 0, made.stderr[-2000:]
    video = decode(Path(made.stdout.strip().splitlines()[-1]))
    assert video["errors"] == "" and video["audio_duration"] > 45  # 300 words


# -- budgets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [0, 0.0, -0.5])
def test_a_budget_of_nothing_is_refused_up_front(budget: float, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^budget: must be a finite number > 0 or None"):
        VideoGenerator(budget=budget, output_dir=tmp_path)
    generator = VideoGenerator(output_dir=tmp_path)
    with pytest.raises(UsageError, match=r"^budget: must be a finite number > 0"):
        generator.generate_many_sync([{"script": "Hi."}], budget=budget)
    made = avgen("make", "--script", "-", "--budget", str(budget), cwd=tmp_path)
    assert made.returncode == 2 and "budget: must be a finite number > 0" in made.stderr


def test_a_budget_below_the_first_call_is_refused_before_any_request(
        fake: FakeGemini, tmp_path: Path) -> None:
    generator = google(fake, tmp_path, budget=0.0001)
    with pytest.raises(BudgetExceeded, match=r"nothing was started: the script writer's "
                                             r"cheapest call .* over its budget of \$0\.0001"
                       ) as refused:
        generator.generate_sync(script=BEES)
    assert refused.value.budget == 0.0001 and refused.value.price > 0.0001
    assert fake.requests == [] and not (tmp_path / "out").exists()  # no session either
    with pytest.raises(BudgetExceeded, match=r"would bring the batch to .* \$0\.0001"):
        google(fake, tmp_path).generate_many_sync([{"script": BEES}], budget=0.0001)
    assert fake.requests == []
    script = tmp_path / "bees.md"
    script.write_text(BEES)
    made = avgen("make", "--script", str(script), "--budget", "0.0001", "--out",
                 str(tmp_path / "o"), cwd=tmp_path, env=cli_env(tmp_path, fake))
    assert made.returncode == 1 and "budget of $0.0001" in made.stderr
    assert "Traceback" not in made.stderr and fake.requests == []
    enough = google(fake, tmp_path, budget=5).generate_sync(script=BEES, preset="draft")
    assert enough.path.is_file()  # a budget that covers the calls is not refused


# -- other bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "problem"), [
    (7, "must be a folder's path (a str or a Path), not int 7"),
    ("out\x00put", "must not contain a NUL character"),
    (b"out", "must be a folder's path (a str or a Path), not bytes"),
    ("", "must be a folder's path, not ''")])
def test_an_output_folder_that_is_not_a_path_is_named(folder: Any, problem: str,
                                                      tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=rf"^output_dir: {re.escape(problem)}"):
        VideoGenerator(output_dir=folder)
    generator = VideoGenerator(output_dir=tmp_path)
    with pytest.raises(UsageError, match=rf"^output_dir: {re.escape(problem)}"):
        generator.generate_many_sync([{"script": "Hi."}], output_dir=folder)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_request_field_names_the_fields_there_are(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"VideoRequest has no field 'scirpt' \(did you mean "
                                        r"'script'\?\); its fields are topic, script, preset"):
        VideoRequest(scirpt="Hi.")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"no field 'colour'; its fields are .*caption_style"):
        VideoGenerator(output_dir=tmp_path).generate_sync(script="Hi.", colour="red")
    with pytest.raises(TypeError, match="no field 'topc'"):
        attrs.evolve(VideoRequest(topic="bees"), topc="wasps")
    assert list(tmp_path.iterdir()) == []
