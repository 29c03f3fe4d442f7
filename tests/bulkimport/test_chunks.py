"""A CSV chunk's rows (``bulkimport.chunks``): what csv.reader reads, on the fast path too,
and the cyclic GC paused only while rows are built."""

from __future__ import annotations

import csv
import gc
import io
import random

import pytest

from shared_gov.bulkimport.chunks import no_cyclic_gc, read_rows


def _reference(text: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text, newline="")) if r]


@pytest.mark.parametrize("seed", range(5))
def test_a_chunk_of_text_reads_as_csv_reader_reads_it(seed: int) -> None:
    """Plain lines (the fast path), quoted cells, line breaks inside quotes, \\r, blank
    lines, NUL and over-long lines (csv.reader's own path): the same rows."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    cells = ["a", "", "  ", "ｶﾅ", "x y", "1,2", '"q"', '"a\nb"', "\0", "長" * 20]
    for _ in range(300):
        lines = [
            ",".join(rng.choice(cells) for _ in range(rng.randrange(1, 5)))
            for _ in range(rng.randrange(0, 8))
        ]
        text = rng.choice(["\n", "\r\n", "\n\n"]).join(lines)
        try:
            expected = _reference(text)
        except csv.Error:  # NUL in a quoted cell and the like: not a file we read
            continue
        assert read_rows(text) == expected, text


def test_a_line_longer_than_a_cell_may_be_is_left_to_csv_reader() -> None:
    limit = csv.field_size_limit()
    with pytest.raises(csv.Error):  # the fast path would have split it silently
        read_rows("a," + "x" * (limit + 1))


def test_a_chunk_of_rows_is_taken_as_it_is() -> None:
    rows = [["a", "b"], ["c"]]
    assert read_rows(rows) is rows


def test_the_cyclic_gc_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with no_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with no_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), no_cyclic_gc():
        raise RuntimeError
    assert gc.isenabled()
