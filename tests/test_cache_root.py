"""Files derived from installed models, kept in the cache folder (`derived_file`)."""

from __future__ import annotations

import threading
from pathlib import Path

from avgen._cache_root import cache_root, derived_file


def test_writers_at_once_leave_one_whole_file_and_no_temporaries() -> None:
    both_writing = threading.Barrier(2)
    made: list[Path | None] = []

    def write(target: Path) -> None:
        with target.open("wb") as out:
            out.write(b"a" * 50_000)
            both_writing.wait(timeout=300)  # each is half-way when the other starts
            out.write(b"b" * 50_000)

    def derive() -> None:
        made.append(derived_file("models", "m.bin", ["m", 1], write))

    threads = [threading.Thread(target=derive) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made[0] is not None and made[0] == made[1]
    assert made[0].read_bytes() == b"a" * 50_000 + b"b" * 50_000
    assert [p.name for p in (cache_root() / "models").iterdir()] == [made[0].name]
    assert made[0].name.startswith("m-") and made[0].name.endswith(".bin")


def test_an_existing_file_is_used_and_another_key_makes_another() -> None:
    calls: list[str] = []

    def write(target: Path) -> None:
        calls.append(target.name)
        target.write_text("made")

    first = derived_file("models", "m.bin", ["m", 1], write)
    assert derived_file("models", "m.bin", ["m", 1], write) == first
    other = derived_file("models", "m.bin", ["m", 2], write)
    assert len(calls) == 2 and other != first and other is not None and other.is_file()


def test_a_failed_derivation_or_an_unwritable_cache_keeps_nothing() -> None:
    def broken(target: Path) -> None:
        target.write_text("half")
        raise ValueError("cannot derive")

    assert derived_file("models", "m.bin", ["m"], broken) is None
    assert list((cache_root() / "models").iterdir()) == []
    cache_root().mkdir(parents=True, exist_ok=True)
    (cache_root() / "blocked").write_text("a file where a folder would be")
    assert derived_file("blocked", "m.bin", ["m"], lambda t: t.write_text("x")) is None
    assert (cache_root() / "blocked").read_text() == "a file where a folder would be"


def test_a_derived_folder_made_by_two_at_once_is_the_first_ones_and_nothing_else_is_left(
        ) -> None:
    both_writing = threading.Barrier(2)
    made: list[Path | None] = []

    def write(target: Path) -> None:
        target.mkdir()
        (target / "a.txt").write_text(threading.current_thread().name)
        both_writing.wait(timeout=300)  # each has its folder half made when the other starts
        (target / "b.txt").write_text("b")

    def derive() -> None:
        made.append(derived_file("fonts", "folder", ["f", 1], write))

    threads = [threading.Thread(target=derive, name=f"writer {n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made[0] is not None and made[0] == made[1] and made[0].is_dir()
    assert sorted(p.name for p in made[0].iterdir()) == ["a.txt", "b.txt"]
    assert (made[0] / "a.txt").read_text() in ("writer 0", "writer 1")
    assert [p.name for p in (cache_root() / "fonts").iterdir()] == [made[0].name]
    assert derived_file("fonts", "folder", ["f", 1], write) == made[0]  # kept: not made again
