"""XML from strangers: refuse entity bombs and external entities, then parse fast.

Two parsers, each for what it is good at. defusedxml reads the prolog - the only place a
DTD, and so an entity declaration, can appear - and refuses any DOCTYPE: entity
declarations (billion laughs, quadratic blow-up), external entities (XXE: local files,
network) and external DTDs alike. It is pure Python, far too slow for a 100,000-point GPX
(~8 s), so once the root element has started lxml parses the whole document, itself
configured not to expand entities, load DTDs or touch the network, as a second defence.
"""

from __future__ import annotations

import codecs
import io
import re
import xml.etree.ElementTree as StdET
from typing import Final

import defusedxml
import defusedxml.ElementTree as DefusedET
from lxml import etree

from data.field.model import InvalidUpload

# Encodings expat decodes itself; anything else (GBK from older Chinese software) is
# transcoded to UTF-8 for the prolog check only: lxml reads it through iconv.
_EXPAT_NATIVE: Final = {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1"}
_ENCODING_DECL: Final = re.compile(
    rb"^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']"
)
_PROLOG_SCAN: Final = 1 << 20
_SUPERSETS: Final = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "euc-cn": "gb18030"}


def _for_expat(raw: bytes, source: str) -> bytes:
    match = _ENCODING_DECL.match(raw[:512])
    if match is None:
        return raw
    declared = match.group(2).decode("ascii").lower()
    if declared in _EXPAT_NATIVE or declared in ("us-ascii", "ascii"):
        return raw
    name = _SUPERSETS.get(declared, declared)
    try:
        codecs.lookup(name)
        # Only the prolog matters here: the first MiB is plenty, and a character cut at
        # the end is replaced, not fatal.
        text = raw[:_PROLOG_SCAN].decode(name, errors="replace")
    except LookupError as exc:
        raise InvalidUpload(source, f"XML declares an unknown encoding {declared!r}") from exc
    text = re.sub(r"encoding\s*=\s*[\"'][^\"']*[\"']", 'encoding="UTF-8"', text, count=1)
    return text.encode("utf-8")


_EXTERNAL_ENTITY: Final = re.compile(rb"<!ENTITY\s+(?:%\s*)?\S+\s+(?:SYSTEM|PUBLIC)\b")


def _doctype_refusal(exc: defusedxml.DTDForbidden, data: bytes) -> str:
    """Why a DOCTYPE is refused, named after what it carries."""
    head = data[:_PROLOG_SCAN]
    if _EXTERNAL_ENTITY.search(head):
        return (
            "XML declares an external entity (<!ENTITY ... SYSTEM/PUBLIC>): refused, it would "
            "read local files or the network (XXE)"
        )
    if b"<!ENTITY" in head:
        return (
            "XML declares entities (<!ENTITY>): refused, nested entities are how "
            "entity-expansion ('billion laughs') bombs work; GPX and KML need none"
        )
    if exc.sysid or exc.pubid:
        return f"XML refers to an external DTD ({exc.sysid or exc.pubid}): refused"
    return "XML has a document type declaration (<!DOCTYPE>): refused; GPX and KML need none"


def root_tag(raw: bytes, source: str) -> str:
    """The root element's tag ('{namespace}local'), after refusing any DOCTYPE.

    GPX and KML never need a DTD, and a DTD is where entity bombs, external entities and
    external DTD fetches live, so any <!DOCTYPE> is refused. Also raises InvalidUpload for
    XML that is not well-formed before (or within the first chunk after) the root start tag.
    """
    data = _for_expat(raw, source)
    try:
        events = DefusedET.iterparse(io.BytesIO(data), events=("start",), forbid_dtd=True)
        _, element = next(events)
    except defusedxml.DTDForbidden as exc:
        raise InvalidUpload(source, _doctype_refusal(exc, data)) from exc
    except defusedxml.DefusedXmlException as exc:
        raise InvalidUpload(source, f"XML refused: {exc}") from exc
    except StdET.ParseError as exc:
        raise InvalidUpload(source, f"not well-formed XML: {exc}") from exc
    except StopIteration as exc:
        raise InvalidUpload(source, "XML without a root element") from exc
    return str(element.tag)


def local_name(tag: str) -> str:
    """'{ns}wpt' -> 'wpt'."""
    return tag.rpartition("}")[2]


def parse(raw: bytes, source: str) -> etree._Element:
    """The root element of a whole document, safely (see the module docstring)."""
    root_tag(raw, source)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        line = f" at line {exc.lineno}, column {exc.offset}" if exc.lineno else ""
        raise InvalidUpload(
            source, f"not well-formed XML{line} (truncated or corrupt file?): {exc.msg}"
        ) from exc
