"""Files that must be refused whole, with a message naming the problem."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from data.field import InvalidUpload, detect_format
from data.problems import InvalidImport
from tests.data.field.samples import GPX11_GARMIN, KML, gpx_waypoints, jpeg, kmz, nmea_log, read

LOL = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY lol0 "lol">' + LOL + "]>\n"
    '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
    '<wpt lat="44.5853" lon="129.6021"><name>&lol9;</name></wpt></gpx>'
).encode()
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&xxe;</name>'
    b"<Point><coordinates>129.6021,44.5853</coordinates></Point></Placemark></kml>"
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE gpx SYSTEM "http://127.0.0.1:9/gpx.dtd">'
    b'<gpx version="1.1" creator="t"><wpt lat="44.5853" lon="129.6021"/></gpx>'
)
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x">%remote;]>'
    b'<gpx version="1.1" creator="t"><wpt lat="44.5853" lon="129.6021"/></gpx>'
)


def refused(raw: bytes, name: str | None, **kw: Any) -> InvalidUpload:
    with pytest.raises(InvalidUpload) as caught:
        read(raw, name, **kw)
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, InvalidImport)
    assert error.problems and str(error).startswith(name or "upload")
    return error


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (BILLION_LAUGHS, "entit"),
        (XXE, "entit"),
        (EXTERNAL_DTD, "DTD"),
        (PARAMETER_ENTITY, "entit"),
    ],
    ids=["billion-laughs", "xxe-file", "external-dtd", "parameter-entity"],
)
def test_xml_entity_tricks_are_refused_before_parsing(raw: bytes, words: str) -> None:
    error = refused(raw, "evil.gpx")
    assert words in error.reason, error.reason


def test_truncated_and_malformed_xml_are_refused() -> None:
    text = GPX11_GARMIN.encode()
    error = refused(text[: len(text) * 2 // 3], "cut.gpx")
    assert "not well-formed XML" in error.reason and "line" in error.reason
    error = refused(b'<gpx version="1.1"><wpt lat="1" lon="2"></gpx>', "bad.gpx")
    assert "not well-formed XML" in error.reason
    assert "neither GPX" in refused(b"<html><body>login</body></html>", "x.gpx").reason


def test_kmz_zip_bomb_is_refused_by_ratio_and_by_size() -> None:
    zeros = b"\0" * (4 << 20)  # 4 MiB of zeros deflate ~1000-fold
    error = refused(kmz({"doc.kml": KML.encode(), "files/pad.bin": zeros}), "bomb.kmz")
    assert "zip bomb" in error.reason and "expands" in error.reason
    error = refused(kmz({"doc.kml": KML.encode() + b" " * 4096}), "big.kmz", max_bytes=4096)
    assert "over the 4,096-byte limit" in error.reason


def test_kmz_declaring_a_false_size_cannot_expand_past_the_cap() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.writestr("doc.kml", KML.encode())
    data = bytearray(archive.getvalue())
    # Shrink the uncompressed size the central directory declares: the read cap must hold.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    error = refused(bytes(data), "lying.kmz")
    assert "KMZ" in error.reason


@pytest.mark.parametrize(
    "name",
    ["../../etc/cron.d/evil.kml", "/etc/evil.kml", "C:/Windows/evil.kml", "files/../../x.png"],
)
def test_kmz_path_tricks_are_refused(name: str) -> None:
    error = refused(kmz({"doc.kml": KML.encode(), name: b"x"}), "trick.kmz")
    assert "path trick" in error.reason and name in error.reason


def test_kmz_symlink_entry_is_refused() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("doc.kml", KML.encode())
        link = zipfile.ZipInfo("files/link")
        link.external_attr = 0o120777 << 16
        out.writestr(link, "/etc/passwd")
    assert "symbolic link" in refused(archive.getvalue(), "link.kmz").reason


def test_files_over_the_size_limit_are_refused_before_reading() -> None:
    error = refused(gpx_waypoints([(129.6, 44.58)] * 50), "big.gpx", max_bytes=1000)
    assert "over the upload limit of 1,000 bytes" in error.reason


@pytest.mark.parametrize(("raw", "words"), [(b"", "empty file"), (b"  \r\n\t", "only whitespace")])
def test_empty_files_are_refused(raw: bytes, words: str) -> None:
    assert words in refused(raw, "x.gpx").reason


def test_unknown_binary_and_other_images_are_refused() -> None:
    assert "unknown format" in refused(bytes(range(256)) * 4, "x.dat").reason
    assert "PNG images are not read" in refused(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "x.png").reason
    heic = b"\0\0\0\x18ftypheic" + b"\0" * 64
    assert "HEIC images are not read" in refused(heic, "IMG_1.HEIC").reason


def test_a_non_image_called_jpg_is_refused() -> None:
    assert (
        "named .jpg but not a JPEG image (it is text)" in refused(b"lon,lat\n1,2\n", "a.jpg").reason
    )
    binary = refused(bytes(range(128, 256)) * 8, "photo.JPEG")
    assert "named .jpeg but not a JPEG image" in binary.reason


def test_a_gpx_with_nothing_in_it_is_refused() -> None:
    raw = b'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><metadata/></gpx>'
    assert "holds no points, routes or tracks" in refused(raw, "empty.gpx").reason


def test_content_decides_not_the_name() -> None:
    gpx = GPX11_GARMIN.encode()
    assert detect_format(gpx, "points.csv") == "gpx"
    assert read(gpx, "points.csv").format == "gpx"
    assert read(gpx, None).format == "gpx"
    assert detect_format(KML.encode(), "export.xml") == "kml"
    assert detect_format(kmz({"doc.kml": KML.encode()}), "export.zip") == "kmz"
    assert detect_format(nmea_log(), "gps.txt") == "nmea"
    assert detect_format(b'{"type":"Point","coordinates":[129.6,44.58]}', "p.txt") == "geojson"
    assert detect_format(b"lon,lat\n129.6,44.58\n", "track.gpx") == "csv"
    assert detect_format(jpeg(), "photo.png") == "jpeg"
    assert detect_format(gpx, "photo.jpg") == "gpx"  # an XML file named .jpg is still GPX
    assert detect_format("\ufeff".encode() + gpx, "bom.gpx") == "gpx"
    utf16 = gpx.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert detect_format(utf16, "utf16.gpx") == "gpx"
    assert len(read(utf16, "utf16.gpx").points) == 2
