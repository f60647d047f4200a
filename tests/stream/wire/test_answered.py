"""The answered-through record round-trips exactly and refuses anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.wire.answered import Answered, dumps, loads
from stream.wire.envelope import Outgoing

outgoing = st.builds(
    Outgoing, st.text(min_size=1, max_size=40), st.binary(max_size=40), st.binary(max_size=400)
)


@given(
    st.integers(-1, 2**62),
    st.integers(-1, 2**62),
    st.lists(outgoing, max_size=5).map(tuple),
)
def test_a_record_round_trips(first: int, through: int, answers: tuple[Outgoing, ...]) -> None:
    value = Answered(first, through, answers)
    assert loads(dumps(value)) == value


def test_holds_covers_the_last_batch_only() -> None:
    record = Answered(10, 12)
    assert [o for o in range(8, 15) if record.holds(o)] == [10, 11, 12]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x02" + dumps(Answered(1, 2))[1:],
        dumps(Answered(1, 2)) + b"x",
        dumps(Answered(1, 2, (Outgoing("t", b"k", b"value"),)))[:-2],
    ],
)
def test_anything_else_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        loads(raw)
