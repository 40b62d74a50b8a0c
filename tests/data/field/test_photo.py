"""JPEG photos: EXIF GPS in, a copy without personal metadata out."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from fractions import Fraction

import piexif  # type: ignore[import-untyped]
import pytest
from PIL import Image

from data.field import InvalidUpload
from tests.data.field.samples import LAMP, PERSONAL, jpeg, photo_image, read


def exact(ifd: dict[int, object]) -> dict[int, object]:
    """An IFD with rationals as Fractions, so 70800/10000 equals 177/25."""

    def value(v: object) -> object:
        if isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) for i in v):
            return Fraction(v[0], v[1])
        if isinstance(v, tuple):
            return tuple(value(i) for i in v)
        return v

    return {k: value(v) for k, v in ifd.items()}


def test_position_altitude_time_direction_and_accuracy_come_from_exif() -> None:
    up = read(jpeg(), "IMG_0042.JPG")
    assert up.format == "jpeg"
    (point,) = up.points
    assert (point.lon, point.lat) == pytest.approx(LAMP, abs=1e-8)  # DMS rationals
    assert point.row == 1
    assert point.elevation_m == pytest.approx(231.5)
    assert point.observed_at == datetime(2024, 5, 1, 8, 30, 15, tzinfo=UTC)  # GPS date+time
    assert point.accuracy_m == pytest.approx(6.5)  # GPSHPositioningError
    assert point.properties["direction_deg"] == pytest.approx(123.45)
    assert point.properties["direction_ref"] == "T"
    assert (point.properties["width"], point.properties["height"]) == (96, 64)
    assert point.device is None  # make and model are personal: not kept anywhere
    assert point.photo is not None


def test_without_gps_time_the_original_time_and_its_offset_are_used() -> None:
    (point,) = read(jpeg(gps_time=False), "a.jpg").points
    assert point.observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)  # 16:30 at +08:00


def test_without_any_offset_the_camera_clock_is_read_as_china_time() -> None:
    up = read(jpeg(gps_time=False, offset=None), "a.jpg")
    assert up.points[0].observed_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert any("OffsetTimeOriginal" in w.reason for w in up.warnings)


def test_the_stored_copy_has_no_personal_metadata() -> None:
    original = jpeg()
    for secret in PERSONAL:
        assert secret in original, secret  # the sample really carries them
    cleaned = read(original, "a.jpg").points[0].photo
    assert cleaned is not None
    for secret in PERSONAL:
        assert secret not in cleaned, secret
    assert cleaned.count(b"\xff\xd8\xff") == 1  # no thumbnail, no second image
    exif = piexif.load(cleaned)
    assert set(exif["0th"]) <= {
        piexif.ImageIFD.Orientation,
        piexif.ImageIFD.DateTime,
        piexif.ImageIFD.ExifTag,
        piexif.ImageIFD.GPSTag,
    }
    assert exif["0th"][piexif.ImageIFD.Orientation] == 6
    assert set(exif["Exif"]) == {
        piexif.ExifIFD.DateTimeOriginal,
        piexif.ExifIFD.DateTimeDigitized,
        piexif.ExifIFD.OffsetTimeOriginal,
    }
    assert exif["1st"] == {} and exif["thumbnail"] is None
    # Position and time kept exactly (Pillow writes rationals in lowest terms).
    assert exact(exif["GPS"]) == exact(piexif.load(original)["GPS"])


def test_the_stored_copy_has_the_same_pixels() -> None:
    original = jpeg()
    cleaned = read(original, "a.jpg").points[0].photo
    assert cleaned is not None
    before = Image.open(io.BytesIO(original))
    after = Image.open(io.BytesIO(cleaned))
    assert after.format == "JPEG" and after.size == before.size == photo_image().size
    assert after.tobytes() == before.tobytes()  # not re-encoded


def test_a_photo_without_gps_is_refused() -> None:
    with pytest.raises(InvalidUpload, match="no EXIF GPS position"):
        read(jpeg(gps=False), "a.jpg")
    plain = io.BytesIO()
    photo_image().save(plain, "JPEG")
    with pytest.raises(InvalidUpload, match="no EXIF GPS position"):
        read(plain.getvalue(), "b.jpg")


def test_a_truncated_photo_is_refused() -> None:
    raw = jpeg(extras=False)
    with pytest.raises(InvalidUpload, match="JPEG"):
        read(raw[: len(raw) // 2], "a.jpg")


def test_a_photo_outside_china_is_refused_by_row() -> None:
    up = read(jpeg(lon=2.2945, lat=48.8584), "paris.jpg")
    assert up.points == []
    assert "outside China" in up.refused[0].reason and up.refused[0].row == 1


def test_a_multi_picture_jpeg_keeps_only_the_first_picture() -> None:
    # Phones write MPF (CIPA DC-007): previews and depth or gain maps after the main image.
    base = Image.open(io.BytesIO(jpeg(extras=False)))
    preview = Image.new("RGB", (24, 16), (200, 0, 0))
    out = io.BytesIO()
    base.save(out, "MPO", save_all=True, append_images=[preview], exif=base.info["exif"])
    raw = out.getvalue()
    assert Image.open(io.BytesIO(raw)).format == "MPO" and raw.count(b"\xff\xd8\xff") >= 3
    (point,) = read(raw, "IMG_0001.JPG").points
    assert point.photo is not None
    assert point.photo.count(b"\xff\xd8\xff") == 1 and b"MPF\x00" not in point.photo
    cleaned = Image.open(io.BytesIO(point.photo))
    assert cleaned.format == "JPEG" and cleaned.size == base.size
