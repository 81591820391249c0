"""The offline script writer: Markdown or plain text in, plain speakable scenes out.

`clean_narration` turns a block of Markdown into the words to be read aloud (no markup, no
stage directions, no speaker labels), `split_sentences` cuts clean text into sentences,
`split_script` turns a whole script into titled parts of bounded length, and
`LocalScriptWriter` wraps it all as the default `avgen.agents.ScriptWriter`.

What is not read aloud, besides Markdown (the only rules; every other word is kept):

1. **A speaker label**: at the start of a line, one to three words before a colon that is
   followed by a space or the end of the line, the words being either

   - a role from a short list, in any case, with an optional number: ``Narrator``,
     ``Host``, ``Co-host``, ``Guest``, ``Speaker``, ``Presenter``, ``Announcer``,
     ``Interviewer``, ``Interviewee``, ``Moderator``, ``Reporter``, ``Voiceover``
     (``Voice-over``, ``VO``, ``V.O.``, ``V/O``): ``Host:``, ``speaker 2:``; or
   - a name in capitals: every word upper-case letters (with ``.``, ``'``, ``-``) or a
     number, at least two letters in all: ``NARRATOR:``, ``HOST 2:``, ``DR. SMITH:``,
     ``O'BRIEN:`` — unless one of its words is a common heading word (``NOTE``, ``TIP``,
     ``WARNING``, ``STEP``, ``UPDATE``, ``FACT``, … see ``_CALLOUTS``).

   A parenthesis may sit between the name and the colon (``NARRATOR (V.O.):``), and one
   right after the label goes too (``JOHN: (laughing) Yes!``). Anything else before a
   colon is kept: ``Warning: hot``, ``Note:``, ``Tip:``, ``Step 1:``, ``Fun Fact:``,
   ``Mary Jane:`` (a capitalised name is not told apart from a heading, so it stays),
   single letters (``Q:``/``A:``, answer options ``A: 12, B: 14``), and colons not
   followed by a space (``10:30``, ``3:1``, ``https://…``). A word in capitals that is
   not a speaker (``DNA: the molecule``) is kept by escaping its colon: ``DNA\\:``.
2. **A direction in square brackets**: any ``[…]`` that is not a Markdown link or image
   (``[Music]``, ``[music fades]``, ``[SFX: door]``). Square brackets are for directions
   in a script; to say bracketed words aloud, use parentheses.
3. **A direction in parentheses**: a ``(…)`` that is the whole line (``(Cut to the
   beach.)`` alone), comes right after a speaker label, is emphasised (``*(whispers)*``),
   or holds at most four words of which the first is a direction word (``pause``,
   ``beat``, ``music``, ``sfx``, ``laughs``, ``sighs``, ``whispers``, ``softly``,
   ``applause``, ``silence``, ``cut``, ``fade``, … see ``_DIRECTIONS``), anywhere:
   ``(pause)``, ``(beat)``, ``(laughs)``, ``(music fades)``; or, in any language, ends a
   line right after a sentence with one or two words and no ``. ! ?`` inside (``مرحبا!
   (توقف)``). Every other parenthesis is part of the text and is read: ``the cell (a tiny
   room) holds``, ``(Optional) Add salt.``, ``It works. (Mostly.)``.
"""

from __future__ import annotations

__docformat__ = "google"

import html
import re
from collections.abc import Callable
from typing import ClassVar

import attrs

from avgen._models import Scene, Script, VideoRequest, search_terms
from avgen._validate import number, number_validator
from avgen.agents._keywords import extract_terms
from avgen.errors import UsageError

__all__ = ["LocalScriptWriter"]

MIN_MAX_CHARS = 40
"""Smallest ``max_chars`` accepted by `split_script` and `LocalScriptWriter`."""

_EMPTY_SCRIPT = "contains nothing to narrate once markdown and stage directions are removed"
_TOPIC_ONLY = (
    "the local script writer narrates a script and cannot write one from a topic. Give "
    "the words to narrate with `--script FILE` (a text or Markdown file; `--script -` "
    "reads standard input), or VideoRequest(script=...) in Python; or use agents that "
    "write a script from a topic: the google agents (with GEMINI_API_KEY or "
    "GOOGLE_API_KEY set, `avgen make \"TOPIC\"` uses them), or an installed plugin's "
    "(`--agents NAME`, VideoGenerator(\"NAME\"))"
)

# Private-use characters: placeholders for protected text and a "something was removed" mark.
_OPEN, _CLOSE, _MARK, _TERMS = "\ue000", "\ue001", "\ue002", "\ue003"
_SENTINELS = re.compile("[\ue000-\ue003]")
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_SEARCH = re.compile(r"<!--[ \t]*search[ \t]*:(.*?)-->", re.S | re.I)
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^[ \t]{0,3}=+[ \t]*$")
_RULE = re.compile(r"^[ \t]{0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*)$"
                   r"|^[ \t]*(?=[^\n]*\|)(?=[^\n]*-)[|:\- \t]+$")  # rules, setext, table rules
_REFDEF = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}(?=[ \t]|$)(.*)$")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?")
_BULLET = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])(?:[ \t]+|$)")

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+)>")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_URL = r"\((?:[^()\n]|\([^()\n]*\))*\)"
_IMAGE = re.compile(r"!\[[^\]]*\](?:" + _URL + r"|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\[\]]*)\](?:" + _URL + r"|\[[^\]]*\])")
_EMPHASISED_PAREN = re.compile(r"(\*{1,3}|_{1,3})[ \t]*\([^()]*\)[ \t]*\1")
_BRACKETED = re.compile(r"\[[^\[\]]*\]")
_STAR_EMPHASIS = re.compile(r"(\*{1,3})(?!\s)((?:(?!\n\n).)+?)(?<!\s)\1", re.S)
_UNDERSCORE_EMPHASIS = re.compile(r"(?<!\w)(_{1,3})(?!\s)((?:(?!\n\n).)+?)(?<!\s)\1(?!\w)", re.S)
_STRAY = re.compile(r"\*{2,}|_{2,}|~{2,}|`+|[\[\]|]")
_BEFORE_PUNCT = re.compile(  # tried where a run of blanks and marks begins, never backtracked
    f"(?<![ \\t{_MARK}])[ \\t]*+{_MARK}(?:[ \\t]*+{_MARK})*+[ \\t]*+(?=[,.;:!?…])")
_LABEL = re.compile(
    r"^(?P<name>[^\s:()]+(?:[ \t]+[^\s:()]+){0,2})"
    r"(?:[ \t]*\([^()\n]*\))?[ \t]*:(?=\s|$)"
)
_ROLE = re.compile(
    r"(?:narrator|host|co-?host|guest|speaker|presenter|announcer|interviewer|interviewee"
    r"|moderator|reporter|voice[- ]?over|vo|v\.o\.|v/o)(?:[ \t]*\d{1,3})?"
)
_CAPS_WORD = re.compile(r"[^\W\d_](?:[\w.'’-]*[\w.])?|\d{1,3}")
_CALLOUTS = frozenset({
    "note", "notes", "nb", "n.b.", "ps", "p.s.", "tip", "tips", "hint", "warning", "caution",
    "danger", "important", "attention", "notice", "info", "update", "edit", "step", "example",
    "summary", "remember", "reminder", "fact", "faq", "question", "answer", "todo", "alert",
    "breaking", "news", "source", "credit", "credits", "disclaimer", "spoiler", "key", "bonus",
    "result", "goal", "rule", "lesson", "part", "chapter", "section", "day", "phase", "level",
    "ok", "yes", "no",
})
_PAREN = re.compile(r"\(([^()\n]*)\)")
_DIRECTIONS = frozenset({
    "pause", "pauses", "pausing", "beat", "music", "sfx", "laughs", "laughing", "laughter",
    "chuckles", "chuckling", "sighs", "sighing", "whispers", "whispering", "softly", "quietly",
    "applause", "silence", "coughs", "gasps", "cut", "fade", "fades", "fading", "transition",
    "b-roll", "v.o.", "o.s.", "smiles", "smiling",
})
_MAX_DIRECTION_WORDS = 4
_TRAILING_DIRECTION = re.compile(  # (?<!\S): tried where a word begins, not in every one
    r"(?P<end>(?<!\S)\S*[.!?…。！？])[ \t]*"
    r"\([ \t]*[^\s().!?…。！？]+(?:[ \t]+[^\s().!?…。！？]+)?[ \t]*\)[ \t]*$", re.M)

_ENDINGS = ".!?…。！？"
_CANDIDATE = re.compile(r"[.!?…。！？]+[\"'”’»)\]}]*(?=\s|$)")
_NEVER_SPLIT = frozenset({"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "jr.", "sr.",
                          "mt.", "e.g.", "i.e.", "u.s."})
_SPLIT_BEFORE_CAPITAL = frozenset({"etc.", "a.m.", "p.m."})
_ACRONYM = re.compile(r"(?:[a-z]\.){2,}")
_CLAUSE_END = re.compile(r"(?<=[,;，；、。！？])")


def _leading_paren(text: str) -> int:
    """Index just past the ``)`` matching a leading ``(``, or -1."""
    depth = 0
    for position, char in enumerate(text if text.startswith("(") else ""):
        depth += (char == "(") - (char == ")")
        if not depth:
            return position + 1
    return -1


def _strip_fences(text: str) -> str:
    """Replace fenced code blocks (an unclosed fence runs to the end) with blank lines."""
    kept: list[str] = []
    fence = ""
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence:  # inside a block: only a bare fence as long, of the same character, ends it
            closing = match and match.group(1).startswith(fence) and not line.strip(" \t`~")
            fence = "" if closing else fence
        elif match:
            fence = match.group(1)
        kept.append("" if fence or match else line)
    return "\n".join(kept)


def _heading(line: str) -> str | None:
    """The text of an ATX heading line (``## Title ##`` → ``Title``), or None."""
    match = _HEADING.match(line)
    if match is None:
        return None
    return re.sub(r"(?:^|[ \t])#+[ \t]*$", "", match.group(1)).strip()


def _block_line(line: str) -> str:
    """Strip a line's block markup: quotes, bullets, heading markers; drop rules."""
    previous = None
    while previous != line:
        previous = line
        line = _QUOTE.sub("", line, count=1)
        if _RULE.match(line) or _REFDEF.match(line):
            return ""
        line = _BULLET.sub("", line, count=1)
    heading = _heading(line)
    return line if heading is None else heading


def _inline(text: str, protect: Callable[[str], str]) -> str:
    """Remove inline markup and bracketed directions; protected spans become placeholders."""
    text = _ESCAPE.sub(lambda m: protect(m.group(1)), text)
    text = _CODE.sub(lambda m: protect(m.group(2).strip()), text)
    text = _AUTOLINK.sub(lambda m: protect(m.group(1)), text)
    text = html.unescape(_TAG.sub(_MARK, text))
    text = _IMAGE.sub(_MARK, text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASISED_PAREN.sub(_MARK, text)
    previous = None
    while previous != text:
        previous = text
        text = _BRACKETED.sub(_MARK, text)
        text = _STAR_EMPHASIS.sub(r"\2", text)
        text = _UNDERSCORE_EMPHASIS.sub(r"\2", text)
    text = _STRAY.sub(_MARK, text)
    text = _PAREN.sub(_direction, text)
    text = _TRAILING_DIRECTION.sub(_trailing_direction, text)
    text = re.sub(r"\([ \t]*\)", _MARK, text)
    return _BEFORE_PUNCT.sub("", text).replace(_MARK, " ")


def _is_label(name: str) -> bool:
    """Whether the words before a line's colon name a speaker (see the module's rules)."""
    if _ROLE.fullmatch(name.lower()):
        return True
    words = name.split()
    return (all(_CAPS_WORD.fullmatch(word) for word in words)
            and words[0][0].isalpha()
            and all(word.isupper() or word.isdigit() for word in words)
            and sum(char.isalpha() for char in name) >= 2
            and not any(word.lower() in _CALLOUTS for word in words))


def _direction(match: re.Match[str]) -> str:
    """A parenthesis of at most four words opening with a direction word becomes a mark."""
    words = match.group(1).split()
    first = words[0].lower().rstrip(".,;:!?…") if words else ""
    if len(words) <= _MAX_DIRECTION_WORDS and (first in _DIRECTIONS
                                               or first + "." in _DIRECTIONS):
        return _MARK
    return match.group()


def _trailing_direction(match: re.Match[str]) -> str:
    """A short parenthesis ending a line after a sentence (not after "e.g.") goes."""
    end = match.group("end")
    word = end.lstrip("\"'“‘«([{").lower()
    if end.endswith(".") and (word in _NEVER_SPLIT or word in _SPLIT_BEFORE_CAPITAL
                              or _ACRONYM.fullmatch(word) or len(word) == 2):
        return match.group()
    return end + _MARK


def _narrative_line(line: str, speakers: bool) -> str:
    """Drop a speaker label (and a parenthesis right after it) and a whole-line parenthesis."""
    line = line.strip()
    if speakers:
        match = _LABEL.match(line)
        if match and _is_label(match.group("name")):
            line = line[match.end():].strip()
            end = _leading_paren(line)
            if end > 0:
                line = line[end:].strip()
    end = _leading_paren(line)
    if end > 0 and not line[end:].strip(" " + _ENDINGS):
        return ""
    return line


_PLAIN_BREAKER = re.compile(r"[\ue000-\ue003<>`~*_\[\]()\\&#=:|+]|(?:^|\r)[ \t]*[-\d]", re.M)
"""A character some markup rule acts on (a tag, a link, emphasis, a direction, an entity,
a heading, a label's colon), or a line opening as a bullet or rule may: text without one
is only its words (`_clean`)."""


def _clean(text: str, *, speakers: bool = True) -> str:
    """The words of ``text`` to be read aloud (see `clean_narration`)."""
    if _PLAIN_BREAKER.search(text) is None:  # no rule below would change a word
        return " ".join(text.split())
    return _clean_marked(text, speakers=speakers)


def _clean_marked(text: str, *, speakers: bool = True) -> str:
    """`_clean` for text that may hold markup: every rule, in order."""
    saved: list[str] = []

    def protect(span: str) -> str:
        saved.append(span)
        return f"{_OPEN}{len(saved) - 1}{_CLOSE}"

    text = _SENTINELS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _COMMENT.sub("", _strip_fences(text))
    text = "\n".join(_block_line(line) for line in text.split("\n"))
    text = _inline(text, protect)
    lines = (_narrative_line(line, speakers) for line in text.split("\n"))
    text = " ".join(lines)
    text = _PLACEHOLDER.sub(lambda m: saved[int(m.group(1))], text)
    return " ".join(text.split())


def clean_narration(text: str) -> str:
    """Turn a block of Markdown or plain text into the plain words to be read aloud.

    Removes Markdown (headings and links keep their text, inline code its content; rules,
    images, code fences, HTML tags and comments go), stage directions (``[Music]``,
    ``(pause)``, ``*(whispers)*``, a line wholly in parentheses) and speaker labels starting
    a line (``NARRATOR:``, ``Host:``, ``V.O.:``), by the rules in this module's
    description; every other word is kept: ``Warning: hot``, ``Step 1:``, ``10:30``,
    "The sun (a star) is hot.".

    Args:
        text: Markdown or plain text.

    Returns:
        The narration on one line with single spaces; empty if nothing is left to say.
    """
    return _clean(text)


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    """Whether a terminal-punctuation candidate really ends a sentence."""
    if match.group() != ".":
        return True
    start = text.rfind(" ", 0, match.start()) + 1
    original = text[start:match.end()].lstrip("\"'“‘«([{")
    word = original.lower()
    following = text[match.end() + 1:match.end() + 2]
    if word in _NEVER_SPLIT:
        return False
    if word == "no.":
        return not following.isdigit()
    if word in _SPLIT_BEFORE_CAPITAL:
        return following.isupper()
    if len(original) == 2 and original[0].isupper():
        return False
    return not _ACRONYM.fullmatch(word)


def split_sentences(text: str) -> list[str]:
    """Split clean text into sentences.

    A sentence ends at ``. ! ? … 。 ！ ？`` (with any closing quotes or brackets) followed
    by whitespace or the end; not after abbreviations (Mr., Dr., e.g., U.S., …), single
    initials ("J. R. R. Tolkien") or inside numbers (3.14). "etc.", "a.m." and "p.m." end
    one only before a capital letter, "No." only when no number follows.

    Args:
        text: Clean narration.

    Returns:
        The sentences; joined with single spaces they give back ``text`` with its whitespace
        normalised.
    """
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if _is_boundary(text, match):
            sentences.append(text[start:match.end()])
            start = match.end() + 1
    if start < len(text):
        sentences.append(text[start:])
    return sentences


@attrs.frozen
class ScriptPart:
    """A stretch of narration with the heading it falls under."""

    title: str
    """The nearest preceding Markdown heading, cleaned; ``""`` when there is none."""
    narration: str
    """Plain text to be read aloud."""
    search_terms: tuple[str, ...] | None = None
    """The search terms the script gives the part (``<!-- search: ... -->``), if any."""


def _units(sentence: str, max_chars: int) -> list[tuple[str, str]]:
    """A sentence as (separator, text) units: whole, or cut into clauses when it is too long."""
    if len(sentence) <= max_chars:
        return [(" ", sentence)]
    pieces = [piece for piece in _CLAUSE_END.split(sentence) if piece.strip()]
    if len(pieces) < 2 or any(len(piece.strip()) > max_chars for piece in pieces):
        return [(" ", sentence)]
    return [(" " if i == 0 or piece[0].isspace() else "", piece.strip())
            for i, piece in enumerate(pieces)]


def _chunks(narration: str, max_chars: int) -> list[str]:
    """Pack a paragraph's sentences (or clauses) greedily into chunks of ≤ max_chars."""
    if len(narration) <= max_chars:
        return [narration]
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(narration):
        for separator, unit in _units(sentence, max_chars):
            candidate = current + separator + unit if current else unit
            if len(candidate) <= max_chars or not current:
                current = candidate
            else:
                chunks.append(current)
                current = unit
    if current:
        chunks.append(current)
    return chunks


def _terms(given: str) -> tuple[str, ...]:
    """The terms of a ``<!-- search: a, b, c -->`` comment (commas or semicolons)."""
    terms = [t.strip() for t in re.split(r"[,;]", given)]
    field = f"script: <!-- search:{given.rstrip()} -->"
    if not any(terms):
        raise UsageError(field, "lists no search terms: write them after 'search:', "
                         "separated by commas, most specific first "
                         "(<!-- search: coral reef, tropical fish, ocean -->)")
    return search_terms([t for t in terms if t] if all(terms[:-1]) else terms, field)


def _parse(text: str, max_chars: int) -> tuple[list[ScriptPart], list[str]]:
    """The parts of a script and its cleaned headings, in order."""
    number("max_chars", max_chars, integer=True, low=MIN_MAX_CHARS)
    text = _SENTINELS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _SEARCH.sub(lambda m: f"\n{_TERMS}{' '.join(m.group(1).split())}\n",
                       _strip_fences(text))
    text = _COMMENT.sub("", text)
    parts: list[ScriptPart] = []
    headings: list[str] = []
    title = ""
    terms: tuple[str, ...] | None = None
    paragraph: list[str] = []

    def flush() -> None:
        narration = _clean("\n".join(paragraph))
        paragraph.clear()
        if narration:
            parts.extend(ScriptPart(title, chunk, terms)
                         for chunk in _chunks(narration, max_chars))

    for line in text.split("\n"):
        if line.startswith(_TERMS):
            flush()
            terms = _terms(line[1:])
            continue
        heading = _heading(line)
        if _SETEXT.match(line) and len(paragraph) == 1:
            heading = paragraph.pop()
        if heading is not None:
            flush()
            title = _clean(heading, speakers=False)
            headings.append(title)
            terms = None
        elif not line.strip() or _RULE.match(line):
            flush()
        else:
            paragraph.append(line)
    flush()
    return parts, [heading for heading in headings if heading]


def split_script(text: str, *, max_chars: int = 320) -> list[ScriptPart]:
    """Split a Markdown or plain-text script into titled parts of clean narration.

    Paragraphs (ended by blank lines, headings, rules or code blocks) become parts; one
    longer than ``max_chars`` once cleaned is cut into parts of whole sentences packed
    greedily, a longer sentence being cut at commas and semicolons when every piece then
    fits, else kept whole. Headings are not narrated: they title the parts after them.
    Paragraphs with nothing to say (only directions, markup or code) are dropped.

    Args:
        text: The script.
        max_chars: Longest narration of a part, in characters; at least 40.

    Returns:
        The parts in order; empty when nothing is left to narrate.

    Raises:
        UsageError: ``max_chars`` is below 40.
    """
    return _parse(text, max_chars)[0]


def _first_words(text: str, count: int = 6, limit: int = 48) -> str:
    """The first ``count`` words of ``text``, with ``…`` when there is more."""
    words = text.split()
    excerpt = " ".join(words[:count])
    truncated = len(words) > count
    if len(excerpt) > limit:
        excerpt, truncated = excerpt[:limit], True
    return excerpt.rstrip(" ,;:.!?…-—") + "…" if truncated else excerpt


def author_scenes(text: str, writer: object, title: str) -> tuple[str, list[tuple[str, str]]]:
    """A translated script you wrote, split as ``writer`` splits scripts (by its
    ``max_chars``, else 320): its title (its first heading, else ``title``) and each
    scene's ``(title, narration)`` (a scene's title is its heading, else its first words).
    """
    max_chars = getattr(writer, "max_chars", 320)
    parts, headings = _parse(text, max_chars if isinstance(max_chars, int) else 320)
    return (headings[0] if headings else title,
            [(part.title or _first_words(part.narration), part.narration) for part in parts])


@attrs.frozen
class LocalScriptWriter:
    """The default, offline script writer.

    Every paragraph of the script (cut to at most ``max_chars`` characters) becomes a
    scene whose title is its heading, or its first words when the script has no headings;
    the topic, when given too, titles a script without headings. A scene's search terms
    (`avgen.Scene.search_terms`) are those of a ``<!-- search: coral reef, tropical fish,
    ocean -->`` comment above it (up to the next heading or such comment), else extracted
    offline from its heading and narration; an empty comment, or a term with no letter or
    digit or of more than three words, is refused by `check`. It writes no words of its
    own: a request with only a topic is refused by `check`, before any work, saying which
    agents write a script from a topic. A ``max_chars`` below 40 raises
    `avgen.errors.UsageError`.
    """

    name: ClassVar[str] = "local"
    """Shown in the manifest and events."""
    max_chars: int = attrs.field(default=320, validator=number_validator(
        integer=True, low=MIN_MAX_CHARS))
    """Longest narration of a scene, in characters (sentences longer than it stay whole)."""

    def _parts(self, request: VideoRequest) -> tuple[list[ScriptPart], list[str]]:
        """The script's parts and headings; raises without a script, or if it is empty."""
        if not (request.script or "").strip():
            raise UsageError("script", _TOPIC_ONLY)
        parts, headings = _parse(request.script or "", self.max_chars)
        if not parts:
            raise UsageError("script", _EMPTY_SCRIPT)
        return parts, headings

    def check(self, request: VideoRequest) -> None:
        """Validate a request up front, before any agent does any work.

        Raises:
            UsageError: There is no script (a topic alone), or it has
                nothing to narrate once Markdown and stage directions are removed.
        """
        self._parts(request)

    def scene_count(self, request: VideoRequest) -> int:
        """How many scenes `write` makes of ``request``'s script (known before any work,
        so a translation whose scenes do not line up is refused up front).

        Raises:
            UsageError: As `check`.
        """
        return len(self._parts(request)[0])

    async def write(self, request: VideoRequest) -> Script:
        """Turn the script into scenes, one per part.

        Raises:
            UsageError: As `check`.
        """
        given_title = (request.title or "").strip()
        topic = _clean(request.topic or "", speakers=False)
        parts, headings = self._parts(request)
        scenes = [Scene(index=i, narration=part.narration, visual=part.narration,
                        title=part.title or _first_words(part.narration),
                        search_terms=part.search_terms or extract_terms(
                            part.title, part.narration, request.language) or None)
                  for i, part in enumerate(parts)]
        title = (given_title or (headings[0] if headings else "") or topic
                 or _first_words(parts[0].narration))
        return Script(title, scenes)
