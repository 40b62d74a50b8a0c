"""Type stub of the compiled GPX point loop (data/field/_gpx_points.pyx)."""

from collections.abc import Callable

from lxml import etree

from data.field.draft import Draft

Other = Callable[[Draft, etree._Element, str], None]

def points(
    parent: etree._Element,
    local_name: str,
    row: int,
    label: str,
    device: str | None,
    draft_class: type[Draft],
    other: Other,
) -> list[Draft]: ...

class Features:
    def __init__(
        self, root: etree._Element, device: str | None, draft_class: type[Draft], other: Other
    ) -> None: ...
    def batch(self, size: int) -> list[Draft | tuple[int, etree._Element]]: ...
