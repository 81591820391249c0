"""Batch requests from JSONL and CSV files (`avgen._rows`): good files read back as the
requests they describe, and every bad row is a `UsageError` naming its file, line and field
before anything runs."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avgen import (
    CAPTION_STYLES,
    PRESETS,
    TRANSITION_STYLES,
    CaptionStyle,
    Character,
    Preset,
    Soundtrack,
    Transition,
    VideoRequest,
    VisualStyle,
)
from avgen._rows import MAX_PROBLEMS, read_requests, requests_from_rows
from avgen.errors import UsageError


def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode(encoding))
    return path


def refused(path: Path) -> UsageError:
    with pytest.raises(UsageError) as caught:
        read_requests(path)
    return caught.value


@pytest.fixture
def music(tmp_path: Path) -> Path:
    return write(tmp_path / "song.mp3", "not really music")


# --- good files ---------------------------------------------------------------------------

def test_a_csv_file_reads_as_the_requests_it_describes(tmp_path: Path, music: Path) -> None:
    path = write(tmp_path / "requests.csv", (
        " topic ,script,preset,duration,captions,soundtrack.music,soundtrack.loudness,"
        "transition.style,transition.seconds,caption_style.font_size,caption_style.bold,fit,"
        "voice,title,language\r\n"
        "Tides,,shorts,30,yes,song.mp3,-16,fade,1,0.05,FALSE,blur,joe,The tides,en\r\n"
        "\r\n"  # a blank line is skipped
        ',"# Water\n\nRain falls.\n\nRivers run.",Draft,,0,,,,,,,,,,\r\n'
        ",,,,,,,,,,,,,,\r\n"  # a row of empty cells is skipped
        "Moon,  ,YouTube, 12.5 ,No,,,,,,1,,,,he\r\n"
    ), encoding="utf-8-sig")  # with a byte-order mark, as spreadsheets save it

    assert read_requests(path) == [
        VideoRequest(topic="Tides", preset="shorts", duration=30, captions=True,
                     soundtrack=Soundtrack(music=music, loudness=-16),
                     transition=Transition("fade", 1.0),
                     caption_style=CaptionStyle(font_size=0.05, bold=False), fit="blur",
                     voice="joe", title="The tides", language="en"),
        VideoRequest(script="# Water\n\nRain falls.\n\nRivers run.", preset="draft",
                     captions=False),
        VideoRequest(topic="Moon", preset="youtube", duration=12.5, captions=False,
                     caption_style=CaptionStyle(bold=True), language="he"),
    ]


def test_a_caption_style_may_be_named(tmp_path: Path) -> None:
    path = write(tmp_path / "requests.csv", "topic,caption_style\nTides,pop\nMoon, Karaoke \n")
    assert [r.caption_style for r in read_requests(path)] == [
        CAPTION_STYLES["pop"], CAPTION_STYLES["karaoke"]]
    jsonl = write(tmp_path / "requests.jsonl", '{"topic": "Tides", "caption_style": "neon"}\n')
    with pytest.raises(UsageError) as caught:
        read_requests(jsonl)
    assert "line 1: caption_style" in str(caught.value) and "lower-third" in str(caught.value)


def test_a_csv_cell_of_a_nested_field_may_hold_a_json_object(tmp_path: Path,
                                                              music: Path) -> None:
    path = write(tmp_path / "requests.csv", 'topic,soundtrack,transition,preset\n'
                 'Tides,"{""music"": ""song.mp3"", ""duck"": false}",'
                 '"{""style"": ""wipeleft"", ""seconds"": 0.25}",'
                 '"{""name"": ""tall"", ""width"": 720, ""height"": 1280}"\n')
    assert read_requests(path) == [VideoRequest(
        topic="Tides", soundtrack=Soundtrack(music=music, duck=False),
        transition=Transition("wipeleft", 0.25), preset=Preset("tall", 720, 1280))]


def test_a_jsonl_file_reads_as_the_requests_it_describes(tmp_path: Path, music: Path) -> None:
    full = VideoRequest(topic="Full", preset="tiktok", duration=45,
                        soundtrack=Soundtrack(music=music), caption_style=CaptionStyle(margin=0.1))
    lines = [
        json.dumps({"topic": "Tides", "preset": "shorts", "duration": 30, "captions": False,
                    "transition": "fade", "soundtrack": {"music": "song.mp3"}}),
        "",
        "   ",  # blank lines are skipped
        json.dumps({"script": "Rain falls.", "soundtrack.loudness": -20,
                    "caption_style.max_lines": 3, "transition.style": "dissolve",
                    "voice": None, "preset": {"name": "tall", "width": 720, "height": 1280}}),
        json.dumps(full.to_dict()),  # the form `to_dict` writes, preset in full
        json.dumps(full.to_dict(root=tmp_path)),  # its music relative to the file's folder
        json.dumps({"topic": "Tides", "preset": "shorts", "duration": 30, "captions": False,
                    "transition": "fade", "soundtrack": {"music": "song.mp3"}}),  # a duplicate
    ]
    path = write(tmp_path / "requests.jsonl", "\r\n".join(lines) + "\n")
    tides = VideoRequest(topic="Tides", preset="shorts", duration=30, captions=False,
                         transition="fade", soundtrack=Soundtrack(music=music))
    assert read_requests(path) == [
        tides,
        VideoRequest(script="Rain falls.", soundtrack=Soundtrack(loudness=-20),
                     caption_style=CaptionStyle(max_lines=3), transition="dissolve",
                     preset=Preset("tall", 720, 1280)),
        full, full, tides,
    ]
    write(tmp_path / "same.ndjson", path.read_text())
    assert read_requests(tmp_path / "same.ndjson") == read_requests(path)


def test_relative_music_is_found_beside_the_requests_file_not_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = tmp_path / "batch"
    beside = write(batch / "sounds" / "song.mp3", "music")
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "sounds" / "only-here.mp3", "music")
    monkeypatch.chdir(elsewhere)
    csv_file = write(batch / "requests.csv", "topic,soundtrack.music\nTides,sounds/song.mp3\n")
    jsonl = write(batch / "requests.jsonl",
                  json.dumps({"topic": "Tides", "soundtrack.music": "sounds/song.mp3"}) + "\n")
    for path in (csv_file, jsonl):
        [request] = read_requests(path)
        assert request.soundtrack.music == beside
        assert request.soundtrack.music.is_absolute()
    # a file that is only in the working directory is not found
    missing = write(batch / "missing.csv", "topic,soundtrack.music\nTides,sounds/only-here.mp3\n")
    error = refused(missing)
    assert error.field == f"{missing} line 2: soundtrack.music"
    assert str(batch / "sounds" / "only-here.mp3") in error.problem
    # `base` chooses another folder
    [request] = read_requests(missing, base=elsewhere)
    assert request.soundtrack.music == elsewhere / "sounds" / "only-here.mp3"


def test_a_path_given_relative_to_the_working_directory_names_the_file_as_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "batch" / "requests.csv", "topic,duration\nTides,soon\n")
    monkeypatch.chdir(tmp_path)
    error = refused(Path("batch/requests.csv"))
    assert error.field == "batch/requests.csv line 2: duration"


# --- bad files ----------------------------------------------------------------------------

CSV_ERRORS = [
    # (content, line and field, words of the problem)
    ("topic,durration\nTides,30\n", "line 1: durration", "did you mean duration?"),
    ("topic,music\nTides,a.mp3\n", "line 1: music", "did you mean soundtrack.music?"),
    ("topic,soundtrack.musik\nTides,a.mp3\n", "line 1: soundtrack.musik",
     "soundtrack has music, music_volume"),
    ("topic,fit.mode\nTides,blur\n", "line 1: fit.mode", "fit has no parts"),
    ("topic,Topic\nTides,x\n", "line 1: Topic", "unknown column"),
    ("topic,duration,topic\nTides,30,Moon\n", "line 1: topic", "appears twice"),
    ("topic,preset\nTides,tv\n", "line 2: preset", "unknown preset 'tv'; choose one of"),
    ("topic,duration\nTides,thirty\n", "line 2: duration", "must be a number such as 30"),
    ("topic,duration\nTides,nan\n", "line 2: duration", "must be a number such as 30"),
    ("topic,duration\nTides,0\n", "line 2: duration", "from 1 to 3600"),
    ("topic,captions\nTides,maybe\n", "line 2: captions", "true or false (or yes/no, 1/0)"),
    ("topic,caption_style.bold\nTides,2\n", "line 2: caption_style.bold", "true or false"),
    ("topic,caption_style.max_lines\nTides,2.5\n", "line 2: caption_style.max_lines",
     "whole number"),
    ("topic,caption_style.max_lines\nTides,9\n", "line 2: caption_style.max_lines",
     "from 1 to 3"),
    ("topic,transition.style\nTides,spin\n", "line 2: transition.style",
     "unknown transition 'spin'"),
    ("topic,transition\nTides,spin\n", "line 2: transition", "unknown transition 'spin'"),
    ("topic,fit\nTides,stretch\n", "line 2: fit", "'cover' or 'blur'"),
    ("topic,preset\n,shorts\n", "line 2: script", "give a script or a topic"),
    ("topic,script,preset\n  ,\t,shorts\n", "line 2: script", "give a script or a topic"),
    ("topic,soundtrack.music\nTides,nope.mp3\n", "line 2: soundtrack.music",
     "no such music file"),
    ("topic,transition,transition.seconds\nTides,fade,1\n", "line 2: transition",
     "given whole and by parts (transition.seconds)"),
    ("topic,soundtrack\nTides,loud\n", "line 2: soundtrack",
     'such as {"music": "song.mp3"}, or given by parts'),
    ('topic,soundtrack\nTides,"{music: 1}"\n', "line 2: soundtrack", "not a valid JSON object"),
    ('topic,soundtrack\nTides,"{""volume"": 1}"\n', "line 2: soundtrack.volume",
     "unknown field"),
    ("topic,preset.name\nTides,tall\n", "line 2: preset",
     "needs name, width, height when given by its fields; missing width, height"),
    ("topic,preset.width\nTides,721\n", "line 2: preset", "missing name, height"),
    ("topic,\nTides,oops\n", "line 2: column 2", "has a value but no name"),
    ("topic,duration\nTides,30,extra\n", "line 2: column 3", "no name in the header"),
    ('topic,duration\n"two\nlines",30\n"Moon",soon\n', "line 4: duration", "a number"),
    ('\n\ntopic,duration\nTides,soon\n', "line 4: duration", "a number"),
    ('topic\n"Tides\n', "line 2", "is not valid CSV: unexpected end of data"),
    ('topic\n"Tides"x\n', "line 2", "is not valid CSV"),
    ('script\n"' + "word " * 30_000 + '"\n', "line 2", "field larger than field limit"),
]


@pytest.mark.parametrize(("content", "place", "words"), CSV_ERRORS,
                         ids=[case[1] + " " + case[2][:20] for case in CSV_ERRORS])
def test_a_bad_csv_row_names_its_line_and_field(tmp_path: Path, content: str, place: str,
                                                words: str) -> None:
    path = write(tmp_path / "requests.csv", content)
    error = refused(path)
    assert error.field == f"{path} {place}"
    assert words in error.problem
    assert str(error).startswith(f"{path} {place}: ")
    assert len(str(error).splitlines()) == 1  # one problem, said once


JSONL_ERRORS = [
    ('{"topic": "Tides"}\n{"topic": "Moon", "duration": 30,}\n', "line 2",
     "is not valid JSON: Expecting property name"),
    ('\n\n{"topic": "Tides"\n', "line 3", "is not valid JSON"),
    ('["Tides"]\n', "line 1", "must be a JSON object of request fields, not an array"),
    ('"Tides"\n', "line 1", "not a string"),
    ('{"topic": "Tides", "durration": 30}\n', "line 1: durration",
     "unknown field (did you mean duration?)"),
    ('{"topic": "Tides", "duration": "30"}\n', "line 1: duration",
     "must be a finite number or None, not '30'"),
    ('{"topic": "Tides", "duration": true}\n', "line 1: duration", "not True"),
    ('{"topic": "Tides", "duration": 9999}\n', "line 1: duration", "from 1 to 3600"),
    ('{"topic": "Tides", "captions": "yes"}\n', "line 1: captions",
     "must be True or False, not 'yes'"),
    ('{"topic": "Tides", "preset": "tv"}\n', "line 1: preset", "unknown preset 'tv'"),
    ('{"topic": "Tides", "preset": 5}\n', "line 1: preset", "must be a name or an object"),
    ('{"topic": "Tides", "preset": {"name": "x", "width": 721, "height": 1280}}\n',
     "line 1: preset.width", "even int"),
    ('{"topic": "Tides", "topic": "Moon"}\n', "line 1: topic", "given twice"),
    ('{"topic": "Tides", "soundtrack": "loud"}\n', "line 1: soundtrack", "not str 'loud'"),
    ('{"topic": "Tides", "soundtrack": {"music": 3}}\n', "line 1: soundtrack.music",
     "must be a file path"),
    ('{"topic": "Tides", "caption_style": {"font_size": "big"}}\n',
     "line 1: caption_style.font_size", "must be a finite number"),
    ('{"topic": "Tides", "caption_style.bold": "yes"}\n', "line 1: caption_style.bold",
     "must be True or False"),
    ('{"topic": "Tides", "title": 12}\n', "line 1: title", "must be a string or None"),
    ('{"topic": null}\n', "line 1: script", "give a script or a topic"),
    ('{"topic": "Tides", "language": 5}\n', "line 1: language", "must be a string"),
    ('{"topic": "Tides", "soundtrack": {"music": null}, "soundtrack.duck": false}\n',
     "line 1: soundtrack", "given whole and by parts"),
    ("[" * 100_000 + "\n", "line 1", "is nested too deeply"),
]


@pytest.mark.parametrize(("content", "place", "words"), JSONL_ERRORS,
                         ids=[case[1] + " " + case[2][:20] for case in JSONL_ERRORS])
def test_a_bad_jsonl_row_names_its_line_and_field(tmp_path: Path, content: str, place: str,
                                                  words: str) -> None:
    path = write(tmp_path / "requests.jsonl", content)
    error = refused(path)
    assert error.field == f"{path} {place}"
    assert words in error.problem
    assert len(str(error).splitlines()) == 1


@pytest.mark.parametrize(("name", "content", "words"), [
    ("requests.csv", "", "is empty; its first line must name the fields"),
    ("requests.csv", "\r\n , \r\n", "is empty"),
    ("requests.csv", "topic,duration\n", "has a header (line 1) but no rows"),
    ("requests.csv", "topic,duration\n,\n\n", "but no rows"),
    ("requests.jsonl", "", "has no requests"),
    ("requests.ndjson", "\n  \n\n", "has no requests"),
    ("requests.txt", "topic\nTides\n", "give a file ending in one of .jsonl, .ndjson, .csv"),
    ("requests.json", '[{"topic": "Tides"}]', "cannot read requests from a .json file"),
    ("requests", "topic\nTides\n", "from a file without a suffix"),
])
def test_a_file_without_rows_or_of_another_kind_is_refused(tmp_path: Path, name: str,
                                                           content: str, words: str) -> None:
    path = write(tmp_path / name, content)
    error = refused(path)
    assert error.field == str(path)
    assert words in error.problem


def test_a_missing_file_or_one_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path / "nowhere.csv")
    assert error.field == str(tmp_path / "nowhere.csv")
    assert "cannot read" in error.problem
    path = tmp_path / "latin1.csv"
    path.write_bytes("topic\nTides\nCaf\xe9\n".encode("latin-1"))
    error = refused(path)
    assert error.field == f"{path} line 3"
    assert "is not UTF-8 text (byte 0xe9)" in error.problem


def test_a_suffix_in_capitals_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "REQUESTS.CSV", "topic\nTides\n")
    assert read_requests(path) == [VideoRequest(topic="Tides")]


def test_every_bad_row_is_listed_in_one_error_up_to_a_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "requests.csv", "topic,duration,captions\n"
                 "Tides,soon,maybe\n"  # line 2: two problems
                 "Moon,30,yes\n"  # line 3: good
                 ",,\n"  # skipped
                 ",30,\n")  # line 5: neither topic nor script
    error = refused(path)
    assert error.field == f"{path} line 2: duration"
    assert str(error).splitlines() == [
        f"{path} line 2: duration: must be a number such as 30 or 2.5, not 'soon'",
        f"{path} line 2: captions: must be true or false (or yes/no, 1/0), not 'maybe'",
        f"{path} line 5: script: give a script or a topic: both are empty or whitespace only",
    ]

    many = write(tmp_path / "many.jsonl", "".join(
        json.dumps({"topic": f"T{i}", "duration": -i}) + "\n" for i in range(25)))
    lines = str(refused(many)).splitlines()
    assert len(lines) == MAX_PROBLEMS + 1
    assert [line.split(":")[0] for line in lines[:MAX_PROBLEMS]] == [
        f"{many} line {i}" for i in range(1, MAX_PROBLEMS + 1)]
    assert lines[-1] == f"… and {25 - MAX_PROBLEMS} more problems"


def test_duplicate_rows_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "requests.csv", "topic,preset\nTides,shorts\nTides,shorts\n")
    assert read_requests(path) == [VideoRequest(topic="Tides", preset="shorts")] * 2


# --- rows given in Python -----------------------------------------------------------------

def test_python_rows_follow_the_jsonl_rules_and_requests_pass_through(music: Path,
                                                                      tmp_path: Path) -> None:
    ready = VideoRequest(script="Ready.")
    rows: list[Any] = [
        {"topic": "Tides", "preset": PRESETS["shorts"], "duration": 30.0,
         "soundtrack.music": Path("song.mp3"), "transition": Transition("fade")},
        ready,
        {"topic": "Moon", "soundtrack": Soundtrack(), "caption_style": {"max_lines": 1}},
    ]
    requests = requests_from_rows(rows, base=tmp_path)
    assert requests == [
        VideoRequest(topic="Tides", preset="shorts", duration=30, transition="fade",
                     soundtrack=Soundtrack(music=music)),
        ready,
        VideoRequest(topic="Moon", caption_style=CaptionStyle(max_lines=1)),
    ]
    assert requests[1] is ready


@pytest.mark.parametrize(("rows", "field", "words"), [
    ([{"topic": "Tides"}, {"topic": "Moon"}, {"topic": "Sun", "duration": "30"}],
     "batch[2]: duration", "must be a finite number or None, not '30'"),
    ([VideoRequest(topic="Tides"), ["Moon"]], "batch[1]", "must be a mapping of request fields"),
    ([{"topic": "Tides", 3: "x"}], "batch[0]: 3", "field names must be strings"),
    ([{"topic": "Tides", "soundtrack": {"music": "nope.mp3"}}], "batch[0]: soundtrack.music",
     "no such music file"),
    ([], "batch", "has no rows"),
    (iter(()), "batch", "has no rows"),
    ({"topic": "Tides"}, "batch", "must be a list of rows, not one dict"),
    ("Tides", "batch", "must be a list of rows, not one str"),
])
def test_bad_python_rows_name_their_index_and_field(rows: Any, field: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        requests_from_rows(rows, source="batch")
    assert caught.value.field == field
    assert words in caught.value.problem


# --- the round trip -----------------------------------------------------------------------

WORDS = st.text(st.characters(categories=("L", "Nd", "Zs", "P")), min_size=1,
                max_size=30).filter(str.strip)
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
               max_size=30).filter(str.strip)
SCRIPT = st.text(st.one_of(st.characters(blacklist_categories=("Cc", "Cs")), st.just("\n")),
                 min_size=1, max_size=60).filter(str.strip)
FLAG_SPELLINGS = st.sampled_from([("true", "false"), ("Yes", "NO"), ("1", "0"),
                                  ("TRUE", "False")])


@st.composite
def video_requests(draw: st.DrawFn, music: Path) -> VideoRequest:
    topic = draw(st.none() | TEXT)
    script = draw(SCRIPT if topic is None else st.none() | SCRIPT)
    return VideoRequest(
        topic=topic, script=script, preset=draw(st.sampled_from(sorted(PRESETS))),
        duration=draw(st.none() | st.integers(1, 3600) | st.floats(1, 3600)),
        captions=draw(st.booleans()), fit=draw(st.sampled_from(["cover", "blur"])),
        voice=draw(st.none() | st.sampled_from(["joe", "amy"])), title=draw(st.none() | TEXT),
        language=draw(st.sampled_from(["en", "he", "pt-BR"])),
        transition=Transition(draw(st.sampled_from(TRANSITION_STYLES)),
                              draw(st.floats(0.04, 3.0))),
        soundtrack=Soundtrack(music=draw(st.none() | st.just(music)),
                              loudness=draw(st.floats(-36, -8)), duck=draw(st.booleans())),
        caption_style=CaptionStyle(font_size=draw(st.floats(0.01, 0.29)),
                                   max_lines=draw(st.integers(1, 3)),
                                   margin=draw(st.none() | st.floats(0, 0.49))),
        style=draw(st.none() | st.builds(VisualStyle, medium=WORDS, palette=st.just("")
                                         | WORDS, light=st.just("") | WORDS)),
        characters=draw(st.lists(st.builds(
            Character, name=st.sampled_from(["Ada", "Ben O'Neil", "Zoë", "Kofi 2"]),
            appearance=WORDS, wardrobe=st.just("") | WORDS,
            reference=st.none() | st.just(music)), max_size=2, unique_by=lambda c: c.name)))


def csv_row(request: VideoRequest, root: Path, spelling: tuple[str, str]) -> dict[str, str]:
    """A request as a CSV row by the documented rule: a preset by name, nested fields as
    dotted columns, an empty cell for None, flags spelled as given."""
    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return spelling[0] if value else spelling[1]
        return repr(value) if isinstance(value, float) else str(value)

    row: dict[str, str] = {}
    for name, value in request.to_dict(root=root).items():
        if name == "preset":
            row[name] = value["name"]
        elif isinstance(value, dict):
            row.update({f"{name}.{sub}": cell(item) for sub, item in value.items()})
        elif isinstance(value, list | tuple):
            row[name] = json.dumps(list(value)) if value else ""
        else:
            row[name] = cell(value)
    return row


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name).resolve()
        write(path / "song.mp3", "music")
        yield path


@given(data=st.data(), spelling=FLAG_SPELLINGS, encoding=st.sampled_from(["utf-8",
                                                                         "utf-8-sig"]))
def test_requests_written_as_jsonl_or_csv_read_back_equal(
        folder: Path, data: st.DataObject, spelling: tuple[str, str], encoding: str) -> None:
    requests = data.draw(st.lists(video_requests(folder / "song.mp3"), min_size=1,
                                  max_size=4))
    jsonl = folder / "requests.jsonl"
    jsonl.write_text("".join(json.dumps(r.to_dict(root=folder)) + "\n" for r in requests),
                     encoding=encoding)
    assert read_requests(jsonl) == requests

    table = folder / "requests.csv"
    with table.open("w", encoding=encoding, newline="") as out:
        rows = [csv_row(r, folder, spelling) for r in requests]
        columns = list(dict.fromkeys(name for row in rows for name in row))
        writer = csv.DictWriter(out, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    assert read_requests(table) == requests

    assert requests_from_rows([r.to_dict(root=folder) for r in requests],
                              base=folder) == requests
