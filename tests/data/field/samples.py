"""Field files written here to their formats' specifications, and the reader with test defaults.

Places are in 牡丹江市西安区 (the demo city), times in May 2024. The JPEG carries what a
phone writes: camera make and model, serial numbers, owner, software, a maker note, a
thumbnail, XMP and IPTC blocks, a comment and a second image after the first one's end.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from typing import Any

import piexif  # type: ignore[import-untyped]
from PIL import Image

from data.field import ParsedUpload, read_field_file
from layers.profile import RuleProfile, load_profile

PROFILE: RuleProfile = load_profile()
NOW = datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
# 牡丹江市 and around: the jurisdiction used where a test needs one.
JURISDICTION = (129.3, 44.3, 129.9, 44.8)
LAMP = (129.6021, 44.5853)  # lon, lat (WGS-84)

# Strings that must never reach a stored photo.
PERSONAL = (
    b"SecretPhone",
    b"XPhone 15 Pro",
    b"SN-123456789",
    b"LENS-SN-987",
    b"Zhang San",
    b"CamSoft 9.9",
    b"MAKERNOTE-PRIVATE",
    b"IMAGE-UNIQUE-ID",
    b"xmp-creator-zhang",
    b"iptc-byline-zhang",
    b"jpeg-comment-private",
    b"SECOND-IMAGE-PRIVATE",
)


def read(raw: bytes, name: str | None = None, crs: str | None = None, **kw: Any) -> ParsedUpload:
    """read_field_file with the default profile and NOW."""
    return read_field_file(raw, name, crs, PROFILE, kw.pop("now", NOW), **kw)


# ---------------------------------------------------------------- GPX


GPX11_GARMIN = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<gpx xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxx="http://www.garmin.com/xmlschemas/GpxExtensions/v3"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     creator="eTrex 32x" version="1.1"
     xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">
  <metadata><name>巡查 2024-05-01</name><time>2024-05-01T09:00:00Z</time></metadata>
  <wpt lat="44.5853000" lon="129.6021000">
    <ele>231.5</ele>
    <time>2024-05-01T08:30:00Z</time>
    <magvar>9.5</magvar>
    <name>路灯不亮 001</name>
    <cmt>灯杆 L-0042</cmt>
    <desc>夜间巡查发现不亮</desc>
    <src>GPSMAP 66sr</src>
    <link href="http://example.invalid/p/1"><text>photo</text></link>
    <sym>Flag, Blue</sym>
    <type>lamp_unlit</type>
    <fix>3d</fix>
    <sat>9</sat>
    <hdop>1.2</hdop>
    <vdop>1.8</vdop>
    <pdop>2.1</pdop>
    <extensions>
      <gpxx:WaypointExtension>
        <gpxx:Proximity>15</gpxx:Proximity>
        <gpxx:DisplayMode>SymbolAndName</gpxx:DisplayMode>
        <gpxx:Categories><gpxx:Category>巡查</gpxx:Category><gpxx:Category>路灯</gpxx:Category></gpxx:Categories>
      </gpxx:WaypointExtension>
    </extensions>
  </wpt>
  <wpt lat="44.5860" lon="129.6030">
    <time>2024-05-01T08:35:00Z</time>
    <name>垃圾箱</name>
    <sym>Waypoint</sym>
  </wpt>
  <rte>
    <name>计划路线</name>
    <rtept lat="44.5850" lon="129.6000"><name>起点</name></rtept>
    <rtept lat="44.5870" lon="129.6050"><name>终点</name></rtept>
  </rte>
  <trk>
    <name>晚间巡查</name>
    <type>patrol</type>
    <trkseg>
      <trkpt lat="44.5850" lon="129.6000"><ele>230.0</ele><time>2024-05-01T08:00:00Z</time>
        <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>95</gpxtpx:hr><gpxtpx:cad>52</gpxtpx:cad><gpxtpx:atemp>18.5</gpxtpx:atemp></gpxtpx:TrackPointExtension></extensions>
      </trkpt>
      <trkpt lat="44.5855" lon="129.6010"><ele>230.4</ele><time>2024-05-01T08:01:00Z</time>
        <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>101</gpxtpx:hr><gpxtpx:cad>55</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions>
      </trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="44.5870" lon="129.6040"><time>2024-05-01T08:10:00Z</time></trkpt>
      <trkpt lat="44.5875" lon="129.6050"><time>2024-05-01T08:11:00Z</time></trkpt>
      <trkpt lat="44.5880" lon="129.6060"><time>2024-05-01T08:12:00Z</time></trkpt>
    </trkseg>
  </trk>
</gpx>
"""

# GPX 1.0 puts hdop/course/speed directly in the point and has no extensions.
GPX10 = """<?xml version="1.0"?>
<gpx version="1.0" creator="GPSBabel - http://www.gpsbabel.org"
     xmlns="http://www.topografix.com/GPX/1/0">
  <time>2024-05-01T10:00:00Z</time>
  <wpt lat="44.585300" lon="129.602100">
    <ele>231.0</ele>
    <time>2024-05-01T08:30:00Z</time>
    <name>SIGN01</name>
    <desc>标识缺失</desc>
    <url>http://example.invalid/s</url>
    <urlname>sign</urlname>
    <sym>Flag</sym>
    <type>signage_missing</type>
    <sat>7</sat>
    <hdop>2.0</hdop>
    <course>87.5</course>
    <speed>0.3</speed>
  </wpt>
  <trk>
    <name>TRACK 1</name>
    <number>1</number>
    <trkseg>
      <trkpt lat="44.5850" lon="129.6000"><ele>230</ele><time>2024-05-01T08:00:00Z</time>
        <course>45</course><speed>1.2</speed></trkpt>
      <trkpt lat="44.5860" lon="129.6010"><ele>231</ele><time>2024-05-01T08:00:30Z</time>
        <course>46</course><speed>1.3</speed></trkpt>
    </trkseg>
  </trk>
</gpx>
"""

# Apple Health's workout route export: one trk, hAcc/vAcc/speed/course extensions.
GPX_APPLE = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Apple Health Export" xmlns="http://www.topografix.com/GPX/1/1"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">
<metadata><time>2024-05-01T08:40:00Z</time></metadata>
<trk><name>Route 2024-05-01 4:30pm</name><trkseg>
<trkpt lon="129.600100" lat="44.585000"><ele>230.1</ele><time>2024-05-01T08:30:00Z</time>
<extensions><speed>1.21</speed><course>88.2</course><hAcc>4.7</hAcc><vAcc>3.1</vAcc></extensions>
</trkpt>
<trkpt lon="129.600200" lat="44.585100"><ele>230.2</ele><time>2024-05-01T08:30:01Z</time>
<extensions><speed>1.25</speed><course>88.9</course><hAcc>3.9</hAcc><vAcc>3.0</vAcc></extensions>
</trkpt>
</trkseg></trk>
</gpx>
"""


def gpx_waypoints(
    points: list[tuple[float, float]], *, extra: str = "", time: str | None = None
) -> bytes:
    """A GPX 1.1 file of bare waypoints at (lon, lat), optional extra child XML."""
    when = f"<time>{time}</time>" if time else ""
    body = "".join(
        f'<wpt lat="{lat}" lon="{lon}">{when}{extra}<name>P{i}</name></wpt>\n'
        for i, (lon, lat) in enumerate(points, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"{body}</gpx>\n"
    ).encode()


def gpx_raw_waypoint(lat: str, lon: str, children: str = "") -> bytes:
    """One waypoint with attribute and child text exactly as given."""
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="t" '
        'xmlns="http://www.topografix.com/GPX/1/1">'
        f'<wpt lat="{lat}" lon="{lon}">{children}</wpt></gpx>'
    ).encode()


def big_gpx(n: int) -> bytes:
    """n waypoints with the fields a GPS unit writes, spread over the jurisdiction."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="bench" '
        'xmlns="http://www.topografix.com/GPX/1/1">\n'
    ]
    for i in range(n):
        lon = 129.45 + (i % 1000) * 0.0003
        lat = 44.45 + (i // 1000) * 0.002
        parts.append(
            f'<wpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>{230 + i % 17}.5</ele>'
            f"<time>2024-05-01T{8 + i // 36000 % 10:02d}:{i // 600 % 60:02d}:{i % 60:02d}Z</time>"
            f"<name>P{i}</name><type>lamp_unlit</type><hdop>1.{i % 10}</hdop><sat>{5 + i % 8}</sat>"
            "</wpt>\n"
        )
    parts.append("</gpx>\n")
    return "".join(parts).encode()


# ---------------------------------------------------------------- KML / KMZ

KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document>
  <name>巡查记录</name>
  <Schema id="obs" name="obs"><SimpleField name="accuracy" type="float"/></Schema>
  <Folder>
    <name>路灯</name>
    <Placemark>
      <name>路灯不亮</name>
      <description><![CDATA[<b>灯杆</b> L-0042]]></description>
      <TimeStamp><when>2024-05-01T16:30:00+08:00</when></TimeStamp>
      <styleUrl>#lamp</styleUrl>
      <ExtendedData>
        <Data name="类型"><value>lamp_unlit</value></Data>
        <Data name="设备"><value>Mate 60</value></Data>
        <SchemaData schemaUrl="#obs"><SimpleData name="accuracy">4.5</SimpleData></SchemaData>
      </ExtendedData>
      <Point><coordinates>129.6021,44.5853,231.5</coordinates></Point>
    </Placemark>
  </Folder>
  <Placemark>
    <name>两个垃圾箱</name>
    <MultiGeometry>
      <Point><coordinates>129.6030,44.5860</coordinates></Point>
      <Point><coordinates> 129.6031,44.5861,0 </coordinates></Point>
    </MultiGeometry>
  </Placemark>
  <Placemark>
    <name>巡查线</name>
    <LineString><tessellate>1</tessellate>
      <coordinates>
        129.6000,44.5850,0 129.6010,44.5855,0
        129.6020,44.5860,0
      </coordinates>
    </LineString>
  </Placemark>
  <Placemark>
    <name>轨迹</name>
    <gx:Track>
      <altitudeMode>clampToGround</altitudeMode>
      <when>2024-05-01T08:00:00Z</when>
      <when>2024-05-01T08:00:05Z</when>
      <when>2024-05-01T08:00:10Z</when>
      <gx:coord>129.6000 44.5850 230</gx:coord>
      <gx:coord>129.6001 44.5851 230.5</gx:coord>
      <gx:coord>129.6002 44.5852 231</gx:coord>
      <ExtendedData>
        <SchemaData schemaUrl="#hr">
          <gx:SimpleArrayData name="heartrate">
            <gx:value>90</gx:value><gx:value>92</gx:value><gx:value>95</gx:value>
          </gx:SimpleArrayData>
        </SchemaData>
      </ExtendedData>
    </gx:Track>
  </Placemark>
  <Placemark>
    <name>违建范围</name>
    <Polygon><outerBoundaryIs><LinearRing><coordinates>
      129.60,44.58 129.61,44.58 129.61,44.59 129.60,44.58
    </coordinates></LinearRing></outerBoundaryIs></Polygon>
  </Placemark>
  <GroundOverlay><name>底图</name></GroundOverlay>
</Document>
</kml>
"""


def kmz(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP archive of the given entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


# ---------------------------------------------------------------- NMEA


def nmea(body: str, *, corrupt: bool = False) -> str:
    """'$' + body + '*' + checksum, computed here independently of the reader."""
    value = reduce(xor, (ord(c) for c in body), 0)
    if corrupt:
        value ^= 0x01
    return f"${body}*{value:02X}"


def nmea_log() -> bytes:
    """A BeiDou/GPS receiver log near the lamp: GN, GP, BD and GB talkers, one bad checksum.

    Line 1 is GNRMC, line 2 GNGGA (fix 1, with GNGSA after it on line 3), line 4 GPGSV
    (ignored), lines 5-6 the second fix from BD talkers, line 7 a GBGGA with a corrupted
    checksum, line 8 its GBRMC, lines 9-10 an epoch without a fix, line 11 a GGA-only epoch.
    """
    lines = [
        nmea("GNRMC,083000.00,A,4435.1180,N,12936.1260,E,0.52,87.3,010524,,,A"),
        nmea("GNGGA,083000.00,4435.1180,N,12936.1260,E,1,12,0.8,231.5,M,-8.2,M,,"),
        nmea("GNGSA,A,3,01,02,03,04,05,06,,,,,,,1.5,0.8,1.3"),
        nmea("GPGSV,3,1,11,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45"),
        nmea("BDRMC,083001.00,A,4435.1190,N,12936.1280,E,0.50,87.0,010524,,,A"),
        nmea("BDGGA,083001.00,4435.1190,N,12936.1280,E,1,10,0.9,231.6,M,-8.2,M,,"),
        nmea("GBGGA,083002.00,4435.1200,N,12936.1300,E,1,10,0.9,231.7,M,-8.2,M,,", corrupt=True),
        nmea("GBRMC,083002.00,A,4435.1200,N,12936.1300,E,0.50,87.0,010524,,,A"),
        nmea("GNRMC,083003.00,V,,,,,,,010524,,,N"),
        nmea("GNGGA,083003.00,,,,,0,00,99.9,,,,,,"),
        nmea("GPGGA,083004.00,4435.1220,N,12936.1340,E,2,08,1.4,231.9,M,-8.2,M,1.0,0000"),
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


# ---------------------------------------------------------------- JPEG


def _rational(value: float, denominator: int = 10000) -> tuple[int, int]:
    return round(value * denominator), denominator


def _dms(value: float) -> tuple[tuple[int, int], ...]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return ((degrees, 1), (minutes, 1), _rational(seconds))


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def photo_image() -> Image.Image:
    """A 96 x 64 picture with structure, so lossless copying can be checked pixel by pixel."""
    image = Image.new("RGB", (96, 64))
    image.putdata(
        [((x * 7) % 256, (y * 11) % 256, ((x + y) * 5) % 256) for y in range(64) for x in range(96)]
    )
    return image


def jpeg(
    lon: float = LAMP[0],
    lat: float = LAMP[1],
    *,
    gps: bool = True,
    gps_time: bool = True,
    offset: str | None = "+08:00",
    extras: bool = True,
) -> bytes:
    """A phone photo: EXIF with GPS and everything personal, plus XMP, IPTC, COM, trailer."""
    thumb = io.BytesIO()
    Image.new("RGB", (16, 12), (0, 0, 255)).save(thumb, "JPEG")
    zeroth = {
        piexif.ImageIFD.Make: b"SecretPhone",
        piexif.ImageIFD.Model: b"XPhone 15 Pro",
        piexif.ImageIFD.Software: b"CamSoft 9.9",
        piexif.ImageIFD.Artist: b"Zhang San",
        piexif.ImageIFD.Copyright: b"Zhang San 2024",
        piexif.ImageIFD.Orientation: 6,
        piexif.ImageIFD.DateTime: b"2024:05:01 16:30:00",
    }
    exif_ifd = {
        piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 16:30:00",
        piexif.ExifIFD.DateTimeDigitized: b"2024:05:01 16:30:00",
        piexif.ExifIFD.BodySerialNumber: b"SN-123456789",
        piexif.ExifIFD.LensSerialNumber: b"LENS-SN-987",
        piexif.ExifIFD.CameraOwnerName: b"Zhang San",
        piexif.ExifIFD.LensModel: b"XPhone 15 Pro back camera",
        piexif.ExifIFD.MakerNote: b"MAKERNOTE-PRIVATE" * 4,
        piexif.ExifIFD.ImageUniqueID: b"IMAGE-UNIQUE-ID",
        piexif.ExifIFD.UserComment: b"ASCII\x00\x00\x00Zhang San was here",
    }
    if offset:
        exif_ifd[piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    gps_ifd: dict[int, Any] = {}
    if gps:
        gps_ifd = {
            piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
            piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: _dms(abs(lat)),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: _dms(abs(lon)),
            piexif.GPSIFD.GPSAltitudeRef: 0,
            piexif.GPSIFD.GPSAltitude: (2315, 10),
            piexif.GPSIFD.GPSImgDirectionRef: b"T",
            piexif.GPSIFD.GPSImgDirection: (12345, 100),
            piexif.GPSIFD.GPSHPositioningError: (65, 10),
        }
        if gps_time:
            gps_ifd[piexif.GPSIFD.GPSTimeStamp] = ((8, 1), (30, 1), (15, 1))
            gps_ifd[piexif.GPSIFD.GPSDateStamp] = b"2024:05:01"
    block = piexif.dump(
        {"0th": zeroth, "Exif": exif_ifd, "GPS": gps_ifd, "1st": {}, "thumbnail": thumb.getvalue()}
    )
    out = io.BytesIO()
    photo_image().save(out, "JPEG", exif=block, quality=92)
    data = out.getvalue()
    if not extras:
        return data
    xmp = _segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><dc:creator>xmp-creator-zhang</dc:creator></x:xmpmeta>",
    )
    iptc = _segment(
        0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x14iptc-byline-zhang\x00\x00\x00"
    )
    comment = _segment(0xFE, b"jpeg-comment-private")
    second = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(second, "JPEG")
    trailer = (
        second.getvalue()[:2] + _segment(0xFE, b"SECOND-IMAGE-PRIVATE") + second.getvalue()[2:]
    )
    return data[:2] + xmp + iptc + comment + data[2:] + trailer
