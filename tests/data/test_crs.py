"""User stories for data.crs: Chinese map coordinates in, WGS-84 out, to the millimetre.

A surveyor uploads points copied from AMap (GCJ-02), Baidu (BD-09), a GPS (WGS-84) or a
CGCS2000 Gauss-Kruger cadastral file; the service must put them where they really are.
The obfuscation formulas are not in PROJ, so the first stories pin them to the input/output
pairs other well-known implementations publish; the inverse ones show the iterated inverses
are exact where the usual one-step inverse is metres off.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Geod, Transformer
from pyproj.database import query_crs_info
from pyproj.enums import PJType

from data.crs import (
    BD09,
    CHINA_LAT,
    CHINA_LON,
    GCJ02,
    WGS84,
    SourceCrs,
    UnknownCrs,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gauss_kruger_epsg,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    parse_crs,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

Array = NDArray[np.float64]
Coords = tuple[Array, Array]
Conversion = Callable[[ArrayLike, ArrayLike], Coords]
LonLat = tuple[float, float]

GEOD = Geod(ellps="WGS84")

ALL_CONVERSIONS: list[Conversion] = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]
CONVERSION_IDS = [f.__name__ for f in ALL_CONVERSIONS]


def metres(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> Array:
    """Geodesic distance on the WGS-84 ellipsoid between two sets of points."""
    _, _, dist = GEOD.inv(
        np.asarray(lon1, dtype=np.float64),
        np.asarray(lat1, dtype=np.float64),
        np.asarray(lon2, dtype=np.float64),
        np.asarray(lat2, dtype=np.float64),
    )
    return np.abs(np.asarray(dist, dtype=np.float64))


def as_pair(coords: Coords) -> LonLat:
    return float(coords[0]), float(coords[1])


def assert_lonlat_close(got: Coords, expected: LonLat, tol_deg: float) -> None:
    lon, lat = as_pair(got)
    assert abs(lon - expected[0]) <= tol_deg, f"lon {lon!r} != {expected[0]!r} ± {tol_deg}"
    assert abs(lat - expected[1]) <= tol_deg, f"lat {lat!r} != {expected[1]!r} ± {tol_deg}"


def china_points(n: int = 10_000, seed: int = 20240601) -> Coords:
    """Random WGS-84 points over mainland China, well inside the encoders' box."""
    rng = np.random.default_rng(seed)
    return rng.uniform(73.5, 135.0, n), rng.uniform(18.0, 53.5, n)


# ---------------------------------------------------------------------------------------
# 1. Published reference vectors
# ---------------------------------------------------------------------------------------

# WGS-84 -> GCJ-02 pairs as (lon, lat). Tolerance: one unit of the last published digit
# for truncated/rounded values; 1e-9 deg (0.1 mm) where the source prints a full double.
WGS_TO_GCJ = [
    # googollee/eviltransform, python/test.py (TESTS; same vectors in go/transform_test.go
    # and javascript/test.js), stored there as (wgsLat, wgsLng, gcjLat, gcjLng).
    pytest.param(
        (121.5272106, 31.1774276),
        (121.531541859215, 31.17530398364597),
        1e-9,
        id="eviltransform-shanghai",
    ),
    pytest.param(
        (113.912316, 22.543847),
        (113.9171764808363, 22.540796131694766),
        1e-9,
        id="eviltransform-shenzhen",
    ),
    pytest.param(
        (116.377817, 39.911954),
        (116.38404722455657, 39.91334545536069),
        1e-9,
        id="eviltransform-beijing",
    ),
    # wandergis/coordtransform, README.md and test/app.js ("wgs84togcj02" result).
    pytest.param(
        (116.404, 39.915),
        (116.41024449916938, 39.91640428150164),
        1e-9,
        id="coordtransform-tiananmen",
    ),
    # hujiulong/gcoord, test/unit/crs/WGS84.spec.ts ("WGS84 to GCJ02"), 8 decimals.
    pytest.param((123.0, 45.0), (123.00607541, 45.00197815), 1e-8, id="gcoord-123-45"),
]

# GCJ-02 -> BD-09 pairs as (lon, lat).
GCJ_TO_BD = [
    # wandergis/coordtransform, README.md and test/app.js ("gcj02tobd09" result).
    pytest.param(
        (116.404, 39.915),
        (116.41036949371029, 39.92133699351021),
        1e-9,
        id="coordtransform-tiananmen",
    ),
    # hujiulong/gcoord, test/unit/crs/GCJ02.spec.ts ("GCJ02 to BD09"), 8 decimals.
    pytest.param((123.0, 45.0), (123.00636499, 45.00636899), 1e-8, id="gcoord-123-45"),
    # hujiulong/gcoord, test/fixtures/china-cities.json: both sides rounded to 7 decimals,
    # so input and output rounding allow 1e-7.
    pytest.param((114.022306, 33.0115324), (114.0287781, 33.0176697), 1e-7, id="gcoord-zhumadian"),
    pytest.param((92.0512438, 31.4762063), (92.0576832, 31.4824421), 1e-7, id="gcoord-nagqu"),
    pytest.param((98.4943595, 39.7328234), (98.5008441, 39.7388949), 1e-7, id="gcoord-jiuquan"),
    pytest.param((123.4314787, 41.8057023), (123.438095, 41.8114013), 1e-7, id="gcoord-shenyang"),
    # Alibaba Cloud address purification API, "TransferCoord" documented response
    # (help.aliyun.com/zh/address-purification/addrpapi/developer-reference/
    # coordinate-system-conversion): exact input, BD09 rounded to 6 decimals.
    pytest.param((120.026268, 30.279164), (120.032768, 30.285238), 5e-7, id="aliyun-transfercoord"),
    # caijun/geoChina, R/cst.R roxygen example of gcj2bd ("Beijing railway station",
    # marked "# correct"): both sides rounded to 5 decimals.
    pytest.param((116.42703, 39.90245), (116.43351, 39.90851), 1e-5, id="geochina-beijing-station"),
]


@pytest.mark.parametrize(("wgs", "gcj", "tol"), WGS_TO_GCJ)
def test_gps_points_land_where_other_libraries_put_them_on_amap(
    wgs: LonLat, gcj: LonLat, tol: float
) -> None:
    assert_lonlat_close(wgs84_to_gcj02(*wgs), gcj, tol)


@pytest.mark.parametrize(("gcj", "bd", "tol"), GCJ_TO_BD)
def test_amap_points_land_where_other_libraries_put_them_on_baidu(
    gcj: LonLat, bd: LonLat, tol: float
) -> None:
    assert_lonlat_close(gcj02_to_bd09(*gcj), bd, tol)


def test_gps_to_baidu_matches_gcoord() -> None:
    # hujiulong/gcoord, test/unit/crs/WGS84.spec.ts ("WGS84 to BD09"), 7 decimals.
    assert_lonlat_close(wgs84_to_bd09(123.0, 45.0), (123.0124491, 45.0083293), 1e-7)


@pytest.mark.parametrize(
    ("wgs", "gcj"),
    [p.values[:2] for p in WGS_TO_GCJ if p.values[2] == 1e-9],
    ids=[str(p.id) for p in WGS_TO_GCJ if p.values[2] == 1e-9],
)
def test_published_amap_points_decode_back_to_the_published_gps_points(
    wgs: LonLat, gcj: LonLat
) -> None:
    # Full-precision vectors: the exact inverse must find the GPS point they came from.
    assert_lonlat_close(gcj02_to_wgs84(*gcj), wgs, 1e-9)


def test_one_step_inverses_reproduce_coordtransform_and_the_iterated_ones_improve_on_them() -> None:
    # wandergis/coordtransform, README.md / test/app.js: its gcj02towgs84 and bd09togcj02
    # are the classic one-step inverses, evaluated at (116.404, 39.915).
    one_step_wgs = (116.39775550083061, 39.91359571849836)
    one_step_gcj = (116.39762729119315, 39.90865673957631)
    assert_lonlat_close(gcj02_to_wgs84(116.404, 39.915, max_iter=0), one_step_wgs, 1e-9)
    assert_lonlat_close(bd09_to_gcj02(116.404, 39.915, max_iter=0), one_step_gcj, 1e-9)

    # Their one-step answers do not encode back to the input: centimetres off ...
    assert metres(*wgs84_to_gcj02(*one_step_wgs), 116.404, 39.915) > 0.03
    assert metres(*gcj02_to_bd09(*one_step_gcj), 116.404, 39.915) > 0.03
    # ... while the iterated inverses do, to 0.1 mm.
    assert_lonlat_close(wgs84_to_gcj02(*gcj02_to_wgs84(116.404, 39.915)), (116.404, 39.915), 1e-9)
    assert_lonlat_close(gcj02_to_bd09(*bd09_to_gcj02(116.404, 39.915)), (116.404, 39.915), 1e-9)


def test_gcoord_inverses_agree_within_their_own_precision() -> None:
    # hujiulong/gcoord, test/unit/crs/GCJ02.spec.ts: GCJ02 -> WGS84 of (123, 45); gcoord
    # iterates until the forward residual is below 1e-6 degrees (src/crs/GCJ02.ts).
    assert_lonlat_close(gcj02_to_wgs84(123.0, 45.0), (122.99395597, 44.99804071), 1e-6)
    # hujiulong/gcoord, test/unit/crs/BD09.spec.ts: BD09 -> GCJ02 of (123, 45) is the
    # one-step inverse (src/crs/BD09.ts), given to 8 decimals.
    published = (122.99363304, 44.9936543)
    assert_lonlat_close(bd09_to_gcj02(123.0, 45.0, max_iter=0), published, 1e-8)
    # The iterated inverse encodes back to (123, 45); the published one-step value does not.
    assert_lonlat_close(gcj02_to_bd09(*bd09_to_gcj02(123.0, 45.0)), (123.0, 45.0), 1e-9)
    assert metres(*gcj02_to_bd09(*published), 123.0, 45.0) > 0.05


def test_beijing_railway_station_lands_where_baidu_and_amap_show_it() -> None:
    # caijun/geoChina, R/cst.R roxygen examples of conv() ("latitude/longitude coordinates
    # of Beijing railway station"; the examples convert it both locally and with api = TRUE,
    # i.e. through Baidu's own geoconv service, and bd2wgs notes "verifying by google earth"):
    # WGS-84 (39.90105, 116.42079), GCJ-02 (39.90245, 116.42703), BD-09 (39.90851, 116.43351).
    # Every value is rounded to 5 decimals (input and output each up to 0.7 m), so allow
    # 1.5 m: a swapped axis, a missing step or the wrong ellipsoid is hundreds of metres.
    wgs = (116.42079, 39.90105)
    assert metres(*wgs84_to_gcj02(*wgs), 116.42703, 39.90245) < 1.5
    assert metres(*wgs84_to_bd09(*wgs), 116.43351, 39.90851) < 1.5
    assert metres(*bd09_to_wgs84(116.43351, 39.90851), *wgs) < 1.5


def test_gcoord_city_fixture_gps_to_amap_within_gcoords_precision() -> None:
    # hujiulong/gcoord, test/fixtures/china-cities.json (WGS84 and GCJ02 of city centres);
    # gcoord's own test/unit/transform.spec.ts checks this direction to 4 decimals
    # (toBeCloseTo(..., 4): 5e-5 degrees). The fixture's GCJ02 column sits a steady ~0.6 m
    # from the public formula (an online service's output), while its GCJ02 -> BD09 pairs
    # match to 7 decimals (see GCJ_TO_BD above).
    cities = {
        "zhumadian": ((114.0164322, 33.0133556), (114.022306, 33.0115324)),
        "nagqu": ((92.0499619, 31.4784436), (92.0512438, 31.4762063)),
        "jiuquan": ((98.4937175, 39.7319946), (98.4943595, 39.7328234)),
        "shenyang": ((123.4253306, 41.8032629), (123.4314787, 41.8057023)),
    }
    for name, (wgs, gcj) in cities.items():
        lon, lat = as_pair(wgs84_to_gcj02(*wgs))
        assert abs(lon - gcj[0]) < 5e-5, name
        assert abs(lat - gcj[1]) < 5e-5, name


# ---------------------------------------------------------------------------------------
# 2. Round trips across China
# ---------------------------------------------------------------------------------------


def test_amap_round_trip_returns_every_gps_point_to_the_millimetre() -> None:
    lon, lat = china_points()
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.max(np.abs(back_lon - lon)) < 1e-8
    assert np.max(np.abs(back_lat - lat)) < 1e-8
    assert np.max(metres(lon, lat, back_lon, back_lat)) < 0.01


def test_baidu_round_trip_returns_every_gps_point_to_the_millimetre() -> None:
    lon, lat = china_points()
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert np.max(np.abs(back_lon - lon)) < 1e-8
    assert np.max(np.abs(back_lat - lat)) < 1e-8
    assert np.max(metres(lon, lat, back_lon, back_lat)) < 0.01


def test_baidu_to_amap_round_trip_returns_every_point_to_the_millimetre() -> None:
    lon, lat = china_points()
    back_lon, back_lat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert np.max(np.abs(back_lon - lon)) < 1e-8
    assert np.max(np.abs(back_lat - lat)) < 1e-8


def test_one_step_amap_decoding_is_metres_off_so_the_iteration_matters() -> None:
    lon, lat = china_points()
    gcj = wgs84_to_gcj02(lon, lat)
    errors = {
        steps: float(np.max(metres(lon, lat, *gcj02_to_wgs84(*gcj, max_iter=steps))))
        for steps in (0, 1, 2, 10)
    }
    # The usual one-step inverse: metres off (the module documents "up to ~5 m").
    assert 1.0 < errors[0] < 10.0
    # Each fixed-point step shrinks the worst error more than 50-fold.
    assert errors[1] < errors[0] / 50
    assert errors[2] < errors[1] / 50
    assert errors[10] < 0.01


def test_one_step_baidu_decoding_is_off_by_more_than_a_centimetre() -> None:
    lon, lat = china_points()
    bd = gcj02_to_bd09(lon, lat)
    one_step = float(np.max(metres(lon, lat, *bd09_to_gcj02(*bd, max_iter=0))))
    iterated = float(np.max(metres(lon, lat, *bd09_to_gcj02(*bd))))
    assert 0.05 < one_step < 1.0  # documented as "up to ~0.2 m"
    assert iterated < 0.001
    wgs_one_step = float(
        np.max(metres(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat), max_iter=0)))
    )
    assert wgs_one_step > 1.0


def test_a_point_converts_the_same_alone_or_in_a_large_batch() -> None:
    # 20,000 points span two internal chunks; each point must stop iterating on its own.
    lon, lat = china_points(20_000, seed=7)
    lon[5] = -0.1276  # London, outside China, in the first chunk
    lat[5] = 51.5072
    batch = {
        "gcj": wgs84_to_gcj02(lon, lat),
        "wgs": gcj02_to_wgs84(lon, lat),
        "bd": bd09_to_wgs84(lon, lat),
    }
    single = {"gcj": wgs84_to_gcj02, "wgs": gcj02_to_wgs84, "bd": bd09_to_wgs84}
    for i in (0, 5, 16_383, 16_384, 19_999):
        for name, convert in single.items():
            one_lon, one_lat = convert(lon[i], lat[i])
            assert float(one_lon) == batch[name][0][i], (name, i)
            assert float(one_lat) == batch[name][1][i], (name, i)


def test_gps_to_baidu_is_gps_to_amap_then_amap_to_baidu() -> None:
    lon, lat = china_points(1000)
    direct = wgs84_to_bd09(lon, lat)
    chained = gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    np.testing.assert_array_equal(direct[0], chained[0])
    np.testing.assert_array_equal(direct[1], chained[1])


# ---------------------------------------------------------------------------------------
# 3. Points outside China, and NaN
# ---------------------------------------------------------------------------------------

FOREIGN = {
    "london": (-0.1276, 51.5072),
    "tokyo": (139.6917, 35.6895),
    "new-york": (-74.006, 40.7128),
    "sydney": (151.2093, -33.8688),
    "moscow": (37.6173, 55.7558),
    "cape-town": (18.4241, -33.9249),
}


@pytest.mark.parametrize("convert", ALL_CONVERSIONS, ids=CONVERSION_IDS)
def test_foreign_points_pass_through_unchanged(convert: Conversion) -> None:
    lon = np.array([p[0] for p in FOREIGN.values()])
    lat = np.array([p[1] for p in FOREIGN.values()])
    assert out_of_china(lon, lat).all()
    out_lon, out_lat = convert(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)


@pytest.mark.parametrize("convert", ALL_CONVERSIONS, ids=CONVERSION_IDS)
def test_mixed_batches_shift_only_the_chinese_points(convert: Conversion) -> None:
    lon = np.array([-0.1276, 116.404, 139.6917, 121.4737])
    lat = np.array([51.5072, 39.915, 35.6895, 31.2304])
    out_lon, out_lat = convert(lon, lat)
    moved = metres(lon, lat, out_lon, out_lat)
    assert moved[0] == 0.0
    assert moved[2] == 0.0
    assert (moved[[1, 3]] > 100.0).all()  # every obfuscation moves Chinese points ~0.1-1 km
    assert (moved[[1, 3]] < 2000.0).all()


def test_the_china_box_edges_are_inclusive_like_eviltransform_and_gcoord() -> None:
    # googollee/eviltransform python/eviltransform/__init__.py outOfChina and hujiulong/gcoord
    # src/crs/GCJ02.ts isInChinaBbox: 72.004 <= lon <= 137.8347, 0.8293 <= lat <= 55.8271.
    assert (CHINA_LON, CHINA_LAT) == ((72.004, 137.8347), (0.8293, 55.8271))
    inside = [(72.004, 30.0), (137.8347, 30.0), (100.0, 0.8293), (100.0, 55.8271)]
    outside = [(72.0039, 30.0), (137.8348, 30.0), (100.0, 0.8292), (100.0, 55.8272)]
    for lon, lat in inside:
        assert not out_of_china(lon, lat), (lon, lat)
        assert as_pair(wgs84_to_gcj02(lon, lat)) != (lon, lat)
    for lon, lat in outside:
        assert out_of_china(lon, lat), (lon, lat)
        assert as_pair(wgs84_to_gcj02(lon, lat)) == (lon, lat)


@pytest.mark.parametrize("convert", ALL_CONVERSIONS, ids=CONVERSION_IDS)
def test_missing_coordinates_stay_missing_without_warnings(convert: Conversion) -> None:
    lon = np.array([np.nan, 116.404, np.nan, np.inf, 116.404])
    lat = np.array([39.915, np.nan, np.nan, 39.915, 39.915])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_lon, out_lat = convert(lon, lat)
    assert out_of_china(lon[:4], lat[:4]).all()
    # A point with a missing coordinate is left exactly as it came ...
    np.testing.assert_array_equal(out_lon[:4], lon[:4])
    np.testing.assert_array_equal(out_lat[:4], lat[:4])
    # ... and does not spoil the good point converted with it.
    good = convert(116.404, 39.915)
    assert (out_lon[4], out_lat[4]) == as_pair(good)


# ---------------------------------------------------------------------------------------
# 4. Shapes, dtypes and inputs left alone
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("convert", ALL_CONVERSIONS, ids=CONVERSION_IDS)
def test_scalars_give_zero_dimensional_float_arrays(convert: Conversion) -> None:
    lon, lat = convert(116.404, 39.915)
    for value in (lon, lat):
        assert isinstance(value, np.ndarray)
        assert value.shape == ()
        assert value.dtype == np.float64
    assert isinstance(float(lon), float)


@pytest.mark.parametrize("convert", ALL_CONVERSIONS, ids=CONVERSION_IDS)
def test_lists_and_arrays_broadcast_like_numpy(convert: Conversion) -> None:
    lons = [116.404, 121.4737, 113.2644]
    lon, lat = convert(lons, 31.0)
    assert lon.shape == lat.shape == (3,)
    for i, one in enumerate(lons):
        assert (lon[i], lat[i]) == as_pair(convert(one, 31.0))

    grid_lon, grid_lat = convert(np.array(lons), np.array([[22.5], [31.0]]))
    assert grid_lon.shape == grid_lat.shape == (2, 3)
    np.testing.assert_array_equal(grid_lon[1], lon)
    np.testing.assert_array_equal(grid_lat[1], lat)

    ints_lon, ints_lat = convert([116, 121], [39, 31])
    assert ints_lon.dtype == ints_lat.dtype == np.float64
    assert (float(ints_lon[0]), float(ints_lat[0])) == as_pair(convert(116.0, 39.0))

    empty_lon, empty_lat = convert([], [])
    assert empty_lon.shape == empty_lat.shape == (0,)

    with pytest.raises(ValueError, match="broadcast"):
        convert([116.0, 117.0], [39.0, 40.0, 41.0])


@pytest.mark.parametrize("convert", ALL_CONVERSIONS, ids=CONVERSION_IDS)
def test_input_arrays_are_neither_modified_nor_shared(convert: Conversion) -> None:
    lon = np.array([116.404, -0.1276, 121.4737])  # one point abroad, returned "unchanged"
    lat = np.array([39.915, 51.5072, 31.2304])
    lon_before, lat_before = lon.copy(), lat.copy()
    out_lon, out_lat = convert(lon, lat)
    np.testing.assert_array_equal(lon, lon_before)
    np.testing.assert_array_equal(lat, lat_before)
    assert not np.shares_memory(out_lon, lon)
    assert not np.shares_memory(out_lat, lat)

    lon.setflags(write=False)
    lat.setflags(write=False)
    again = convert(lon, lat)  # read-only inputs (e.g. from a GeoDataFrame) are fine
    np.testing.assert_array_equal(again[0], out_lon)
    assert again[0].flags.writeable


# ---------------------------------------------------------------------------------------
# 5. parse_crs and SourceCrs
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "WGS84",
        "wgs-84",
        " WGS 84 ",
        "EPSG:4326",
        "epsg:4326",
        "4326",
        "CRS84",
        "OGC:CRS84",
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "urn:ogc:def:crs:EPSG::4326",
    ],
)
def test_every_spelling_of_wgs84_is_wgs84(text: str) -> None:
    assert parse_crs(text) == WGS84


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GCJ-02", GCJ02),
        ("gcj02", GCJ02),
        ("GCJ_02", GCJ02),
        ("BD-09", BD09),
        ("bd09", BD09),
        ("bd09ll", BD09),
        ("BD09LL", BD09),
    ],
)
def test_amap_and_baidu_names_are_recognised(text: str, expected: SourceCrs) -> None:
    assert parse_crs(text) == expected


@pytest.mark.parametrize("text", ["CGCS2000", "cgcs 2000", "4490", "EPSG:4490"])
def test_cgcs2000_names_give_epsg_4490(text: str) -> None:
    assert parse_crs(text) == SourceCrs(
        "EPSG:4490", is_geographic=True, kind="proj", definition="EPSG:4490"
    )


@pytest.mark.parametrize("text", ["EPSG:4552", "4552", CRS.from_epsg(4552).to_wkt()])
def test_a_gauss_kruger_code_or_its_prj_wkt_gives_that_epsg_code(text: str) -> None:
    assert parse_crs(text) == SourceCrs(
        "EPSG:4552", is_geographic=False, kind="proj", definition="EPSG:4552"
    )


@pytest.mark.parametrize(
    "text",
    [
        "EPSG:999999",  # no such code
        "nonsense",
        "",
        "   ",
        "EPSG:4978",  # WGS 84 geocentric: x, y, z in metres
        "EPSG:5773",  # EGM96 height: vertical only
    ],
)
def test_unusable_crs_texts_are_refused_naming_the_input(text: str) -> None:
    with pytest.raises(UnknownCrs) as info:
        parse_crs(text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError


def test_gauss_kruger_metres_convert_like_pyproj_and_round_trip() -> None:
    source = parse_crs("EPSG:4552")  # CGCS2000 / 3-degree Gauss-Kruger CM 129E
    rng = np.random.default_rng(4552)
    lon = rng.uniform(127.6, 130.4, 500)  # Yanbian and eastern Heilongjiang
    lat = rng.uniform(41.5, 48.0, 500)
    to_gk = Transformer.from_crs("EPSG:4326", "EPSG:4552", always_xy=True)
    to_wgs = Transformer.from_crs("EPSG:4552", "EPSG:4326", always_xy=True)

    east, north = source.from_wgs84(lon, lat)
    ref_east, ref_north = to_gk.transform(lon, lat)
    np.testing.assert_allclose(east, ref_east, rtol=0, atol=1e-6)  # metres: 1 micrometre
    np.testing.assert_allclose(north, ref_north, rtol=0, atol=1e-6)
    # x is the easting (around the 500 km false easting), y the northing: not swapped.
    assert (np.abs(east - 500_000) < 300_000).all()
    assert (north > 4_500_000).all()

    back_lon, back_lat = source.to_wgs84(east, north)
    ref_lon, ref_lat = to_wgs.transform(east, north)
    np.testing.assert_allclose(back_lon, ref_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back_lat, ref_lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back_lon, lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, rtol=0, atol=1e-9)

    # On the central meridian the easting is exactly the false easting.
    cm_east, _ = source.from_wgs84(129.0, 45.0)
    assert abs(float(cm_east) - 500_000.0) < 1e-6


def test_projected_conversions_broadcast_and_return_new_arrays() -> None:
    source = parse_crs("EPSG:4552")
    lon = np.array([[129.0, 129.5], [128.5, 129.2]])
    east, north = source.from_wgs84(lon, 45.0)
    assert east.shape == north.shape == (2, 2)
    assert not np.shares_memory(east, lon)
    back_lon, back_lat = source.to_wgs84(east, north)
    np.testing.assert_allclose(back_lon, lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back_lat, 45.0, rtol=0, atol=1e-9)
    scalar = source.to_wgs84(500_000.0, 4_983_000.0)
    assert scalar[0].shape == scalar[1].shape == ()
    assert float(scalar[0]) == pytest.approx(129.0, abs=1e-9)  # on the central meridian


def test_wgs84_to_wgs84_keeps_lon_lat_order_and_values() -> None:
    for source in (WGS84, parse_crs("EPSG:4326"), parse_crs("CRS84")):
        lon, lat = source.to_wgs84([116.404, 121.4737], [39.915, 31.2304])
        np.testing.assert_array_equal(lon, [116.404, 121.4737])
        np.testing.assert_array_equal(lat, [39.915, 31.2304])
        out = source.from_wgs84(116.404, 39.915)
        assert as_pair(out) == (116.404, 39.915)
        given = np.array([116.404])
        assert not np.shares_memory(source.to_wgs84(given, 39.915)[0], given)


def test_cgcs2000_degrees_stay_in_lon_lat_order_within_a_metre_of_wgs84() -> None:
    lon, lat = parse_crs("CGCS2000").to_wgs84([116.404, 87.6168], [39.915, 43.8256])
    assert (metres(lon, lat, [116.404, 87.6168], [39.915, 43.8256]) < 1.0).all()


def test_amap_and_baidu_source_crs_use_the_exact_conversions() -> None:
    lon, lat = china_points(100)
    for source, to_wgs, from_wgs in (
        (GCJ02, gcj02_to_wgs84, wgs84_to_gcj02),
        (BD09, bd09_to_wgs84, wgs84_to_bd09),
    ):
        assert source.is_geographic
        np.testing.assert_array_equal(source.to_wgs84(lon, lat)[0], to_wgs(lon, lat)[0])
        np.testing.assert_array_equal(source.to_wgs84(lon, lat)[1], to_wgs(lon, lat)[1])
        np.testing.assert_array_equal(source.from_wgs84(lon, lat)[0], from_wgs(lon, lat)[0])
        np.testing.assert_array_equal(source.from_wgs84(lon, lat)[1], from_wgs(lon, lat)[1])
        back = source.to_wgs84(*source.from_wgs84(lon, lat))
        assert np.max(metres(lon, lat, *back)) < 0.01


# ---------------------------------------------------------------------------------------
# 6. gauss_kruger_epsg against the EPSG registry
# ---------------------------------------------------------------------------------------


@cache
def registry_zones() -> dict[int, float]:
    """EPSG code -> central meridian of every CGCS2000 3-degree GK CRS without zone prefix.

    Read from the EPSG database shipped with PROJ, not from data.crs's own numbering.
    """
    zones: dict[int, float] = {}
    for info in query_crs_info(auth_name="EPSG", pj_types=PJType.PROJECTED_CRS):
        if info.deprecated or not info.name.startswith("CGCS2000 / 3-degree Gauss-Kruger CM "):
            continue
        code = int(info.code)
        crs = CRS.from_epsg(code)
        assert crs.geodetic_crs is not None
        assert crs.geodetic_crs.to_epsg() == 4490, crs.name  # CGCS2000 datum
        op = crs.coordinate_operation
        assert op is not None
        params = {p.code: p.value for p in op.params}
        assert op.method_code == "9807", crs.name  # Transverse Mercator
        assert float(params["8806"]) == 500_000.0, crs.name  # false easting: no zone prefix
        zones[code] = float(params["8802"])  # longitude of natural origin
    return zones


def test_registry_has_one_zone_every_three_degrees_from_75_to_135() -> None:
    zones = registry_zones()
    assert sorted(zones.values()) == [float(cm) for cm in range(75, 136, 3)]


def test_each_central_meridian_maps_to_its_registry_code() -> None:
    for code, cm in registry_zones().items():
        assert gauss_kruger_epsg(cm) == code, cm
        assert gauss_kruger_epsg(cm - 1.49) == code, cm
        assert gauss_kruger_epsg(cm + 1.49) == code, cm


def test_every_longitude_gets_the_zone_with_the_nearest_central_meridian() -> None:
    zones = registry_zones()
    for lon in np.arange(73.5, 136.5 + 1e-9, 0.05):
        cm = zones[gauss_kruger_epsg(float(lon))]
        assert abs(float(lon) - cm) <= 1.5 + 1e-9, lon


@pytest.mark.parametrize(
    ("lon", "code"),
    [
        (129.6, 4552),  # Yanbian: CM 129E
        (116.4, 4548),  # Beijing: CM 117E
        (87.6, 4538),  # Urumqi: CM 87E
        (73.5, 4534),  # western edge of zone CM 75E
        (136.5, 4554),  # eastern edge of zone CM 135E
        (115.5, 4548),  # zone boundary: n = floor((L + 1.5) / 3), so CM 117E
    ],
)
def test_gauss_kruger_zone_for_known_places(lon: float, code: int) -> None:
    assert gauss_kruger_epsg(lon) == code
    assert abs(registry_zones()[code] - lon) <= 1.5


@pytest.mark.parametrize("lon", [70.0, 73.49, 136.51, 140.0, -116.4, math.nan, math.inf])
def test_longitudes_outside_china_zones_are_refused(lon: float) -> None:
    with pytest.raises(ValueError, match=r"73\.5-136\.5E"):
        gauss_kruger_epsg(lon)
