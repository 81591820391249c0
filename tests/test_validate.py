"""The one validation helper set (`avgen._validate`): what it accepts is returned unchanged,
what it refuses raises `UsageError` naming the field and stating what is allowed; and every
argument that used to be checked by hand still refuses a bool, naming itself."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen._validate import flag, instance, number, number_validator, text
from avgen.errors import UsageError

NUMBERS = st.one_of(st.integers(), st.just(10**400), st.floats())  # floats: nan and inf too
ANYTHING = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=3),
                     st.lists(st.integers(), max_size=2), st.just(complex(1, 0)))
BOUNDS = st.one_of(st.none(), st.integers(-100, 100),
                   st.floats(-100, 100, allow_nan=False, allow_infinity=False))


def _accepted(value: Any, *, integer: bool, low: float | None, high: float | None,
              low_inclusive: bool, optional: bool, finite: bool) -> bool:
    """An independent statement of what `number` accepts."""
    if value is None:
        return optional
    if type(value) is bool or not isinstance(value, int | float):
        return False
    if integer and not isinstance(value, int):
        return False
    if value != value or (finite and value in (math.inf, -math.inf)):
        return False
    if low is not None and (value < low or (value == low and not low_inclusive)):
        return False
    return high is None or value <= high


@settings(deadline=None)
@given(value=ANYTHING, integer=st.booleans(), low=BOUNDS, high=BOUNDS,
       low_inclusive=st.booleans(), optional=st.booleans(), finite=st.booleans())
def test_number_returns_what_it_accepts_and_names_the_field_otherwise(
        value: Any, integer: bool, low: float | None, high: float | None,
        low_inclusive: bool, optional: bool, finite: bool) -> None:
    options = {"integer": integer, "low": low, "high": high, "low_inclusive": low_inclusive,
               "optional": optional, "finite": finite}
    if _accepted(value, **options):
        assert number("some_field", value, **options) is value
    else:
        with pytest.raises(UsageError) as caught:
            number("some_field", value, **options)
        assert caught.value.field == "some_field"
        assert caught.value.problem.startswith("must be ")
        assert caught.value.problem.endswith(f", not {value!r}")


@settings(deadline=None)
@given(value=st.one_of(st.integers(1, 10**9), st.floats(1, 1e300)))
def test_a_number_in_range_comes_back_unchanged(value: float) -> None:
    assert number("n", value, low=1) is value
    assert number("n", value, low=0, low_inclusive=False, optional=True) is value


@settings(deadline=None)
@given(value=st.booleans(), low=st.one_of(st.none(), st.just(0)), optional=st.booleans())
def test_a_bool_is_never_a_number(value: bool, low: int | None, optional: bool) -> None:
    for integer in (False, True):
        with pytest.raises(UsageError, match="flag_like"):
            number("flag_like", value, integer=integer, low=low, optional=optional)


@settings(deadline=None)
@given(finite=st.booleans(), optional=st.booleans())
def test_nan_is_always_refused(finite: bool, optional: bool) -> None:
    with pytest.raises(UsageError) as caught:
        number("ratio", math.nan, finite=finite, optional=optional)
    assert caught.value.field == "ratio" and caught.value.problem.endswith("not nan")


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinity_is_refused_unless_it_means_something(value: float) -> None:
    with pytest.raises(UsageError, match="finite"):
        number("timeout", value)
    assert number("maxsize", value, finite=False) is value


@settings(deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != int(v)))
def test_integer_refuses_a_float(value: float) -> None:
    with pytest.raises(UsageError, match="must be an int"):
        number("attempts", value, integer=True)


@settings(deadline=None)
@given(value=st.one_of(st.text(), st.none(), st.lists(st.integers()), st.binary()))
def test_what_is_not_a_number_is_refused(value: Any) -> None:
    with pytest.raises(UsageError) as caught:
        number("size", value)
    assert caught.value.field == "size"


@pytest.mark.parametrize(("options", "value", "message"), [
    ({"integer": True, "low": 1}, 0, "attempts: must be an int >= 1, not 0"),
    ({"integer": True, "low": 1, "high": 10}, 11, "attempts: must be an int from 1 to 10, not 11"),
    ({"low": 0, "low_inclusive": False, "optional": True}, math.nan,
     "attempts: must be a finite number > 0 or None, not nan"),
    ({"low": 0, "low_inclusive": False, "high": 100}, 0,
     "attempts: must be a finite number > 0 and <= 100, not 0"),
    ({"high": 2.5}, 3, "attempts: must be a finite number <= 2.5, not 3"),
    ({"low": 1, "finite": False}, True, "attempts: must be a number >= 1, not True"),
    ({}, "5", "attempts: must be a finite number, not '5'"),
    ({"low": 0, "high": 0.5, "high_inclusive": False}, 0.5,
     "attempts: must be a finite number from 0 to below 0.5, not 0.5"),
    ({"low": 0, "low_inclusive": False, "high": 0.3, "high_inclusive": False}, 0.3,
     "attempts: must be a finite number > 0 and < 0.3, not 0.3"),
    ({"low": 1, "integer": True, "unit": "pixels"}, 0,
     "attempts: must be an int >= 1 (pixels), not 0"),
])
def test_one_message_format_states_what_is_allowed(options: dict[str, Any], value: Any,
                                                   message: str) -> None:
    with pytest.raises(UsageError) as caught:
        number("attempts", value, **options)
    assert str(caught.value) == message


@settings(deadline=None)
@given(value=ANYTHING)
def test_flag_takes_only_a_bool(value: Any) -> None:
    if isinstance(value, bool):
        assert flag("audio", value) is value
    else:
        with pytest.raises(UsageError) as caught:
            flag("audio", value)
        assert str(caught.value) == f"audio: must be True or False, not {value!r}"


@attrs.frozen
class _Settings:
    attempts: int = attrs.field(default=3, validator=number_validator(integer=True, low=1))
    _wait: float = attrs.field(default=0.5, validator=number_validator(low=0), alias="wait")
    width: int = attrs.field(default=64, validator=number_validator(
        integer=True, field="preset.width"))


@settings(deadline=None)
@given(value=ANYTHING)
def test_the_attrs_validator_names_the_attribute(value: Any) -> None:
    accepted = _accepted(value, integer=True, low=1, high=None, low_inclusive=True,
                         optional=False, finite=True)
    if accepted:
        assert _Settings(attempts=value).attempts is value
    else:
        with pytest.raises(UsageError) as caught:
            _Settings(attempts=value)
        assert caught.value.field == "attempts"


def test_the_attrs_validator_uses_the_init_name_or_the_one_given() -> None:
    with pytest.raises(UsageError) as caught:
        _Settings(wait=-1)
    assert caught.value.field == "wait"
    with pytest.raises(UsageError) as caught:
        _Settings(width=True)
    assert caught.value.field == "preset.width"
    with pytest.raises(UsageError) as caught:
        attrs.evolve(_Settings(), attempts=0)
    assert caught.value.field == "attempts"


# -- every argument that was checked by hand -----------------------------------------------


def _google(kind: str) -> Callable[..., Any]:
    from avgen.agents.google import GeminiNarrator, GeminiScriptWriter, GoogleConnection
    from avgen.agents.google._clips import VeoClips

    def make(**options: Any) -> Any:
        env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": "AIzaFAKE-key-0123456789"}
        connection = GoogleConnection.from_env(env, base_url="http://127.0.0.1:9")
        try:
            agent = {"veo": VeoClips, "tts": GeminiNarrator, "script": GeminiScriptWriter}[kind]
            return agent(connection, **options)
        finally:
            connection.close()
    make.__name__ = f"_{kind}"
    return make


def _preset(**options: Any) -> Any:
    from avgen._models import Preset
    return Preset(**{"name": "p", "width": 640, "height": 360, **options})


def _local_script(**options: Any) -> Any:
    from avgen.agents.local._script import LocalScriptWriter
    return LocalScriptWriter(**options)


def _parse(max_chars: Any) -> Any:
    from avgen.agents.local._script import split_script
    return split_script("One sentence.", max_chars=max_chars)


def _budget(budget: Any) -> Any:
    from avgen._validate import check_budget
    return check_budget(budget)


def _cached(**options: Any) -> Any:
    from avgen.resilience import cached
    return cached(**options)


def _monitor(**options: Any) -> Any:
    from avgen.resilience import Monitor
    return Monitor(**options)


def _retry_policy(**options: Any) -> Any:
    from avgen.resilience._retry import RetryPolicy
    return RetryPolicy(**options)


def _set_testing(attempts: Any) -> Any:
    from avgen.resilience import set_testing
    return set_testing(True, attempts=attempts)


def _circuit(**options: Any) -> Any:
    from avgen.resilience import CircuitSettings
    return CircuitSettings(**options)


def _piper(**options: Any) -> Any:
    from avgen.agents.local import PiperNarrator
    return PiperNarrator(**options)


def _transition(**options: Any) -> Any:
    from avgen import Transition
    return Transition("fade", **options)


def _soundtrack(**options: Any) -> Any:
    from avgen import Soundtrack
    return Soundtrack(**options)


def _request(**options: Any) -> Any:
    from avgen import VideoRequest
    return VideoRequest(script="Hello.", **options)


def _caption_style(**options: Any) -> Any:
    from avgen import CaptionStyle
    return CaptionStyle(**options)


def _disk_store(**options: Any) -> Any:
    from avgen.resilience import DiskStore
    return DiskStore("/nonexistent/avgen-store", **options)


def _connection(**options: Any) -> Any:
    from avgen.agents.google import GoogleConnection
    return GoogleConnection.from_env({"GOOGLE_API_KEY": "AIzaFAKE-key-0123456789"}, **options)


def _wrap(**options: Any) -> Any:
    from avgen.media._lines import wrap_words
    return wrap_words("Some words to wrap.", **options)


def _ass(**options: Any) -> Any:
    from avgen import CaptionStyle
    from avgen.media._captions import to_ass
    sizes: dict[str, Any] = {"width": 640, "height": 360, "margin": 0.1, "side_margin": 0.05}
    return to_ass([], style=CaptionStyle(), **{**sizes, **options})


PREFIXED = {_preset: "preset.", _transition: "transition.", _soundtrack: "soundtrack.",
            _caption_style: "caption_style."}

SITES: list[tuple[Callable[..., Any], str]] = [
    (_google("veo"), "poll_interval"), (_google("veo"), "poll_max_interval"),
    (_google("veo"), "deadline"), (_google("veo"), "max_concurrency"),
    (_google("tts"), "max_chars"), (_google("script"), "attempts"),
    (_google("script"), "temperature"),
    (_preset, "width"), (_preset, "height"),
    (_local_script, "max_chars"), (_parse, "max_chars"), (_budget, "budget"),
    (_cached, "maxsize"), (_cached, "ttl"), (_monitor, "interval"), (_monitor, "max_samples"),
    (_retry_policy, "attempts"), (_retry_policy, "timeout"), (_retry_policy, "wait_initial"),
    (_retry_policy, "wait_max"), (_retry_policy, "wait_jitter"),
    (_retry_policy, "wait_exp_base"), (_set_testing, "attempts"),
    (_circuit, "window_size"), (_circuit, "minimum_calls"),
    (_circuit, "failure_rate_threshold"), (_circuit, "slow_call_rate_threshold"),
    (_circuit, "slow_call_duration"), (_circuit, "wait_open"), (_circuit, "half_open_calls"),
    (_circuit, "max_half_open_wait"), (_circuit, "timeout"),
    (_preset, "fps"), (_preset, "crf"), (_piper, "sentence_pause"), (_piper, "length_scale"),
    (_transition, "seconds"), (_soundtrack, "music_volume"), (_soundtrack, "fade_seconds"),
    (_soundtrack, "loudness"), (_request, "duration"),
    (_preset, "caption_margin"), (_preset, "caption_side_margin"),
    (_caption_style, "font_size"), (_caption_style, "outline"), (_caption_style, "margin"),
    (_caption_style, "max_chars_per_line"), (_caption_style, "max_lines"),
    (_caption_style, "words_per_cue"), (_disk_store, "max_bytes"), (_disk_store, "ttl"),
    (_connection, "timeout"), (_wrap, "max_chars"), (_ass, "width"), (_ass, "height"),
    (_ass, "margin"), (_ass, "side_margin"),
]


@pytest.mark.parametrize(("make", "field"), SITES,
                         ids=[f"{make.__name__}-{field}" for make, field in SITES])
@pytest.mark.parametrize("bad", [True, math.nan, "5"])
def test_every_checked_argument_refuses_a_bool_nan_and_text(make: Callable[..., Any],
                                                           field: str, bad: Any) -> None:
    with pytest.raises(UsageError) as caught:
        make(**{field: bad})
    assert caught.value.field == PREFIXED.get(make, "") + field
    assert caught.value.problem.endswith(f", not {bad!r}")


def test_a_preset_side_must_also_be_even() -> None:
    with pytest.raises(UsageError) as caught:
        _preset(width=65)
    assert str(caught.value) == "preset.width: must be an even int from 64 to 4096, not 65"
    with pytest.raises(UsageError) as caught:
        _preset(height=4098)
    assert str(caught.value) == "preset.height: must be an int from 64 to 4096, not 4098"


@pytest.mark.parametrize(("value", "optional", "message"), [
    ("  ", False, "key: must be a non-empty text, not '  '"),
    ("", True, "key: must be a non-empty text, not ''"),
    (3, True, "key: must be a string or None, not int 3"),
])
def test_a_text_that_must_say_something(value: Any, optional: bool, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        text("key", value, optional=optional, blank=False)
    assert str(caught.value) == message
    assert text("key", " k ", blank=False) == " k "
    assert text("key", None, optional=True, blank=False) is None


def test_an_instance_of_a_kind_or_none() -> None:
    assert instance("store", {}, dict) == {}
    assert instance("store", None, dict, optional=True) is None
    with pytest.raises(UsageError) as caught:
        instance("store", None, dict)
    assert str(caught.value) == "store: must be a dict, not NoneType None"
    with pytest.raises(UsageError) as caught:
        instance("store", [], (int, float), optional=True)
    assert str(caught.value) == "store: must be an int or float or None, not list []"
