"""Interpreter settings an upload changes while it runs are shared and then put back."""

from __future__ import annotations

from data.shared_setting import SharedSetting


def test_overlapping_holders_apply_once_and_the_last_one_restores() -> None:
    value = ["default"]
    calls: list[str] = []

    def apply() -> str:
        calls.append("apply")
        previous, value[0] = value[0], "changed"
        return previous

    def restore(previous: str) -> None:
        calls.append("restore")
        value[0] = previous

    setting = SharedSetting(apply, restore)
    with setting:
        with setting:
            assert value == ["changed"]
        assert value == ["changed"]  # the outer holder still needs it
    assert value == ["default"] and calls == ["apply", "restore"]
    with setting:  # usable again
        assert value == ["changed"]
    assert value == ["default"]


def test_a_holder_that_fails_still_restores() -> None:
    value = [1]

    def apply() -> int:
        previous, value[0] = value[0], 2
        return previous

    def restore(previous: int) -> None:
        value[0] = previous

    setting = SharedSetting(apply, restore)
    try:
        with setting:
            assert value == [2]
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert value == [1]
