/*
 * GCJ-02 ("Mars" coordinates of AMap and Tencent basemaps) for display only.
 *
 * The data stay in WGS-84; when the city's basemap is in GCJ-02 the overlays are shifted
 * into GCJ-02 as they are drawn, so they line up with the basemap. This is the published
 * formula (Krasovsky 1940 ellipsoid), the same as data/crs.py, whose tests pin it against
 * published vectors; tests/map_ui/test_gcj02.py checks this port against that module.
 *
 * Vector tiles: the map places each tile's canvas at the offset of its centre (civic_map.js)
 * and moves the vertices by the rest; the offset (in pixels at the tile's zoom) is computed
 * exactly on a 5 x 5 lattice over the tile and interpolated bilinearly in between. It
 * changes by < 1 % of the distance, so the interpolation error stays far below a pixel
 * (measured in tests/map_ui/test_gcj02.py), while a tile costs 25 evaluations instead of one
 * per vertex.
 *
 * Works in the browser (window.CivicGcj) and in node (module.exports) for the tests.
 */
(function (root) {
  'use strict';

  var A = 6378245.0;
  var EE = 0.00669342162296594323;
  var TOLERANCE_DEG = 1e-9;
  var MAX_ITER = 10;

  function outOfChina(lon, lat) {
    return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  }

  function delta(lon, lat) {
    var x = lon - 105.0;
    var y = lat - 35.0;
    var pi = Math.PI;
    var dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dLat += (20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0 / 3.0;
    dLat += (20.0 * Math.sin(y * pi) + 40.0 * Math.sin(y / 3.0 * pi)) * 2.0 / 3.0;
    dLat += (160.0 * Math.sin(y / 12.0 * pi) + 320.0 * Math.sin(y * pi / 30.0)) * 2.0 / 3.0;
    var dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dLon += (20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0 / 3.0;
    dLon += (20.0 * Math.sin(x * pi) + 40.0 * Math.sin(x / 3.0 * pi)) * 2.0 / 3.0;
    dLon += (150.0 * Math.sin(x / 12.0 * pi) + 300.0 * Math.sin(x / 30.0 * pi)) * 2.0 / 3.0;
    var radLat = lat / 180.0 * pi;
    var magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat);
    var sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * pi);
    dLon = (dLon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * pi);
    return [dLon, dLat];
  }

  /** WGS-84 [lon, lat] to GCJ-02; points outside China are returned unchanged. */
  function wgs84ToGcj02(lon, lat) {
    if (outOfChina(lon, lat)) { return [lon, lat]; }
    var d = delta(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  /** GCJ-02 to WGS-84 by fixed-point iteration (the one-step inverse is metres off). */
  function gcj02ToWgs84(lon, lat) {
    if (outOfChina(lon, lat)) { return [lon, lat]; }
    var d = delta(lon, lat);
    var x = lon - d[0];
    var y = lat - d[1];
    for (var i = 0; i < MAX_ITER; i++) {
      var f = wgs84ToGcj02(x, y);
      var ex = lon - f[0];
      var ey = lat - f[1];
      x += ex;
      y += ey;
      if (Math.abs(ex) < TOLERANCE_DEG && Math.abs(ey) < TOLERANCE_DEG) { break; }
    }
    return [x, y];
  }

  // Leaflet's pixel frame: the world is 256 * 2^z pixels wide at zoom z, whatever the size
  // of the tiles laid over it (a 512-px tile at zoom z covers 512 of these pixels).
  var WORLD_PX = 256;

  /** Spherical Mercator pixel coordinates of [lon, lat] at zoom z (Leaflet's frame). */
  function lonLatToPixel(lon, lat, z) {
    var scale = WORLD_PX * Math.pow(2, z);
    var s = Math.sin(lat * Math.PI / 180);
    var x = (lon / 360 + 0.5) * scale;
    var y = (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * scale;
    return [x, y];
  }

  function pixelToLonLat(px, py, z) {
    var scale = WORLD_PX * Math.pow(2, z);
    var lon = (px / scale - 0.5) * 360;
    var n = Math.PI * (1 - 2 * py / scale);
    var lat = Math.atan(Math.sinh(n)) * 180 / Math.PI;
    return [lon, lat];
  }

  /** Exact GCJ-02 offset in pixels of the point at pixel (px, py) of zoom z. */
  function pixelOffset(px, py, z) {
    var ll = pixelToLonLat(px, py, z);
    var g = wgs84ToGcj02(ll[0], ll[1]);
    var p = lonLatToPixel(g[0], g[1], z);
    return [p[0] - px, p[1] - py];
  }

  /**
   * The offset field of tile (z, x, y) of tileSize pixels: a function of the position inside the tile as
   * fractions (fx, fy in 0..1 from the top-left) giving [dx, dy] in pixels. The exact offset
   * is sampled on a (cells + 1)^2 lattice and interpolated bilinearly inside each cell.
   */
  function tileOffsetField(z, x, y, tileSize, cells) {
    var n = cells || 4;
    var step = tileSize / n;
    var lattice = [];
    for (var j = 0; j <= n; j++) {
      var row = [];
      for (var i = 0; i <= n; i++) {
        row.push(pixelOffset(x * tileSize + i * step, y * tileSize + j * step, z));
      }
      lattice.push(row);
    }
    return function (fx, fy) {
      var gx = fx * n;
      var gy = fy * n;
      var i = Math.max(0, Math.min(n - 1, Math.floor(gx)));
      var j = Math.max(0, Math.min(n - 1, Math.floor(gy)));
      var u = gx - i;
      var v = gy - j;
      var a = lattice[j][i];
      var b = lattice[j][i + 1];
      var c = lattice[j + 1][i];
      var d = lattice[j + 1][i + 1];
      return [
        (a[0] * (1 - u) + b[0] * u) * (1 - v) + (c[0] * (1 - u) + d[0] * u) * v,
        (a[1] * (1 - u) + b[1] * u) * (1 - v) + (c[1] * (1 - u) + d[1] * u) * v
      ];
    };
  }

  /**
   * Shift every vertex of a decoded vector tile (VectorGrid: layers[name].features[i].geometry,
   * rings of {x, y} in tile extent units) into GCJ-02, in place, less `base` pixels (the part
   * of the shift already applied by moving the whole tile; [0, 0] when none is).
   */
  function shiftVectorTile(tile, coords, tileSize, base) {
    var field = tileOffsetField(coords.z, coords.x, coords.y, tileSize);
    var bx = base ? base[0] : 0;
    var by = base ? base[1] : 0;
    for (var name in tile.layers) {
      var layer = tile.layers[name];
      var extent = layer.extent || 4096;
      var perPixel = extent / tileSize;
      var features = layer.features || [];
      for (var i = 0; i < features.length; i++) {
        var rings = features[i].geometry;
        for (var r = 0; r < rings.length; r++) {
          var ring = rings[r];
          for (var k = 0; k < ring.length; k++) {
            var d = field(ring[k].x / extent, ring[k].y / extent);
            ring[k].x += (d[0] - bx) * perPixel;
            ring[k].y += (d[1] - by) * perPixel;
          }
        }
      }
    }
    return tile;
  }

  var api = {
    outOfChina: outOfChina,
    wgs84ToGcj02: wgs84ToGcj02,
    gcj02ToWgs84: gcj02ToWgs84,
    lonLatToPixel: lonLatToPixel,
    pixelToLonLat: pixelToLonLat,
    pixelOffset: pixelOffset,
    tileOffsetField: tileOffsetField,
    shiftVectorTile: shiftVectorTile
  };
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.CivicGcj = api;
  }
}(typeof self !== 'undefined' ? self : this));
