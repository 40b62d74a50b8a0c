"""What an import found wrong, and what it did: shared by CLI and HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PROBLEMS = 200
"""Problems listed in one error; the rest are counted, not listed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record (row is 1-based; None: the whole file)."""

    reason: str
    row: int | None = None
    field: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        if self.field:
            where += f", field {self.field!r}"
        shown = f" (value {self.value!r})" if self.value is not None else ""
        return f"{where}: {self.reason}{shown}"


class InvalidImport(ValueError):
    """A file that cannot be imported; nothing was written."""

    def __init__(self, source: str, problems: list[Problem], more: int = 0) -> None:
        self.source = source
        self.problems = problems
        self.more = more
        lines = "\n".join(f"  {p}" for p in problems)
        tail = f"\n  ... and {more} more" if more else ""
        super().__init__(f"{source}: refused, nothing written:\n{lines}{tail}")


@dataclass
class ProblemList:
    """Collects problems up to MAX_PROBLEMS, counting the rest."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    more: int = 0

    def add(
        self, reason: str, row: int | None = None, field: str | None = None, value: object = None
    ) -> None:
        """Record a problem."""
        if len(self.problems) >= MAX_PROBLEMS:
            self.more += 1
            return
        shown = None if value is None else str(value)[:80]
        self.problems.append(Problem(reason, row, field, shown))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        """Refuse the file if anything was found."""
        if self.problems:
            raise InvalidImport(self.source, self.problems, self.more)


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote."""

    layer: str
    source: str
    crs: str
    rows: int
    inserted: int
    updated: int
    generated_codes: int = 0
    repaired: tuple[Problem, ...] = ()
