/*
 * civic-gis map: catalog layers from the vector tiles, check evidence, per-grid choropleth,
 * search by code, click-to-inspect popups, uploads, and the print view of one grid.
 *
 * The page (map_ui/page.py, rendered by folium) sets window.CIVIC_MAP_CONFIG: layer
 * styles and labels derived from layers/catalog.py, URLs, the initial view and the UI
 * text. Nothing here names a layer, a colour or a label of its own.
 *
 * Why things are done this way:
 * - Large layers are drawn from the OGC API vector tiles (thinned below z14 by the
 *   server); nothing layer-sized is ever inlined or fetched whole.
 * - Picking asks the features API for what lies under the click (a few pixels of bbox)
 *   instead of hit-testing tiles: tiles carry only drawing attributes, the API has all of
 *   them, and Leaflet.VectorGrid 1.3.0's canvas click handling is broken on Leaflet >= 1.8
 *   (L.DomEvent.fakeStop was removed), so tiles are drawn non-interactive.
 * - With a GCJ-02 basemap (config.gcj) every overlay is shifted for display only: GeoJSON
 *   through coordsToLatLng, vector tiles vertex by vertex with CivicGcj.shiftVectorTile;
 *   clicks and searches convert back to WGS-84 before asking the API.
 */
(function (global) {
  'use strict';

  var L = global.L;
  var Gcj = global.CivicGcj;
  var RANK = { POINT: 0, LINESTRING: 1, MULTIPOLYGON: 2 };
  var Z_INDEX = { MULTIPOLYGON: 200, LINESTRING: 300, POINT: 400 };
  var PICK_TOLERANCE_PX = 6;
  var LABEL_MIN_ZOOM = 16;
  var EVIDENCE_COLOR = '#d50000';
  var RAMP = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];

  var C = {
    config: null,
    map: null,
    control: null,
    layers: {},
    groups: {},
    checks: {},
    uploads: null,
    timings: { firstLoad: {} },
    ready: false
  };
  global.civicMap = C;

  // --- small helpers ---------------------------------------------------------------

  function t(key) {
    var text = C.config.text[key];
    return text === undefined ? key : text;
  }

  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, name) {
      return values[name] === undefined ? m : encodeURIComponent(values[name]);
    });
  }

  function withLang(url) {
    if (C.config.lang === 'zh') { return url; }
    return url + (url.indexOf('?') < 0 ? '?' : '&') + 'lang=' + C.config.lang;
  }

  // The API reads `Authorization: Bearer <token>` only (never cookies): a token kept for the
  // tab's session is sent with every data request, tiles included.
  var TOKEN_KEY = 'civic-gis-token';

  function authHeaders() {
    var token = null;
    try { token = global.sessionStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  // A 401 means the session ended (the login JWT lives 15 minutes by default) or reads are
  // not public: back to the login page, which returns here afterwards.
  function toLogin(reason) {
    var here = global.location.pathname + global.location.search;
    var url = C.config.urls.login + '?next=' + encodeURIComponent(here) + '&reason=' + reason;
    if (C.config.lang !== 'zh') { url += '&lang=' + C.config.lang; }
    global.location.assign(url);
  }
  C.toLogin = toLogin;

  function fetchJSON(url, options) {
    options = L.extend({}, options || {});
    options.headers = L.extend({}, authHeaders(), options.headers || {});
    return fetch(url, options).then(function (response) {
      return response.text().then(function (body) {
        var data = null;
        try { data = body ? JSON.parse(body) : null; } catch (e) { data = { detail: body }; }
        if (response.status === 401 && !options.quiet) { toLogin('expired'); }
        if (!response.ok) {
          var err = new Error((data && data.detail) || response.statusText);
          err.status = response.status;
          err.body = data;
          throw err;
        }
        return data;
      });
    });
  }

  function layerConfig(id) {
    for (var i = 0; i < C.config.layers.length; i++) {
      if (C.config.layers[i].id === id) { return C.config.layers[i]; }
    }
    return null;
  }

  function notify(message) {
    var box = document.getElementById('civic-notice');
    if (!box) { return; }
    box.textContent = message;
    box.style.display = message ? 'block' : 'none';
  }

  // --- coordinates: data are WGS-84, the display may be GCJ-02 -------------------------

  function toDisplay(lat, lng) {
    if (!C.config.gcj) { return L.latLng(lat, lng); }
    var g = Gcj.wgs84ToGcj02(lng, lat);
    return L.latLng(g[1], g[0]);
  }

  function toData(latlng) {
    if (!C.config.gcj) { return latlng; }
    var w = Gcj.gcj02ToWgs84(latlng.lng, latlng.lat);
    return L.latLng(w[1], w[0]);
  }

  function coordsToLatLng(coords) { return toDisplay(coords[1], coords[0]); }

  function displayBounds(box) {
    return L.latLngBounds(toDisplay(box[1], box[0]), toDisplay(box[3], box[2]));
  }

  function geojson(data, options) {
    return L.geoJSON(data, L.extend({ coordsToLatLng: coordsToLatLng }, options || {}));
  }

  // --- styles: from the catalog, via the page config ---------------------------------

  function styleFunction(cfg) {
    return function (props) {
      var value = cfg.field ? props[cfg.field] : null;
      var color = (value !== null && cfg.colors[value]) || cfg.default_color;
      var s = L.extend({}, cfg.symbol, (value !== null && cfg.value_symbols[value]) || {});
      if (cfg.geometry === 'POINT') {
        s.fillColor = color;
        if (props.count > 1) {
          // A thinned cell (below z14) stands for `count` features: grow with the count.
          s.radius = Math.min(14, s.radius + Math.log(props.count) / Math.LN2);
        }
      } else {
        s.color = color;
        s.fillColor = color;
      }
      return s;
    };
  }

  // VectorGrid tiles drawn 512 px wide: the tile of map zoom z is the 256-px pyramid's tile
  // z-1 (same x, y), so a view needs a quarter of the requests; the server's simplification
  // and thinning are sized for that (layers/tiles.py).
  //
  // GCJ-02 display: the shift (hundreds of metres, thousands of pixels at street zoom) is far
  // larger than a tile, so vertices cannot simply be moved inside their tile's canvas. Each
  // data tile's canvas is placed at its GCJ-02 position instead (the offset at its centre,
  // in whole pixels), the residual (< 1 % of a tile: the offset varies slowly) moves the
  // vertices, and the tiles fetched for a view are those whose shifted positions cover it.
  var TILE_SIZE = 512;
  var ZOOM_OFFSET = -1;

  function tileCentreOffset(coords) {
    var c = (TILE_SIZE / 2);
    var off = Gcj.pixelOffset(coords.x * TILE_SIZE + c, coords.y * TILE_SIZE + c, coords.z);
    return L.point(Math.round(off[0]), Math.round(off[1]));
  }

  var ShiftedProtobuf = L.VectorGrid.Protobuf.extend({
    _getVectorTilePromise: function (coords) {
      var asked = { x: coords.x, y: coords.y, z: coords.z + ZOOM_OFFSET };
      var promise = L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, asked);
      if (!C.config.gcj) { return promise; }
      var base = tileCentreOffset(coords);
      return promise.then(function (tile) {
        return Gcj.shiftVectorTile(tile, coords, TILE_SIZE, [base.x, base.y]);
      });
    },
    _getTilePos: function (coords) {
      var pos = L.VectorGrid.Protobuf.prototype._getTilePos.call(this, coords);
      return C.config.gcj ? pos.add(tileCentreOffset(coords)) : pos;
    },
    _getTiledPixelBounds: function (center) {
      var bounds = L.VectorGrid.Protobuf.prototype._getTiledPixelBounds.call(this, center);
      if (!C.config.gcj) { return bounds; }
      // The data under the view lie where the view is before the shift.
      var mid = bounds.getCenter();
      var off = Gcj.pixelOffset(mid.x, mid.y, this._tileZoom);
      var back = L.point(off[0], off[1]);
      return L.bounds(bounds.min.subtract(back), bounds.max.subtract(back));
    }
  });

  function tileOptions(extra) {
    return L.extend({
      rendererFactory: L.canvas.tile,
      interactive: false,
      tileSize: TILE_SIZE,
      minZoom: 1,
      maxNativeZoom: 23,
      maxZoom: 24,
      updateWhenZooming: false,
      keepBuffer: 1,
      fetchOptions: { headers: authHeaders() }
    }, extra);
  }

  function tileUrl(id) {
    return C.config.urls.tiles.replace('{layer}', id);
  }

  // Point layers at city zoom: one symbol per grid cell from /map/overview/{layer} (one
  // request, cached a minute by the server) instead of tiles that would aggregate hundreds
  // of thousands of points each (map_ui/overview.py says why); tiles from
  // config.overview_below_zoom on. The group is what the layer control switches.
  var overviewRenderer = null;

  function overviewRadius(zoom) { return zoom <= 10 ? 3 : 5; }

  function overviewPopup(cfg, props) {
    var field = cfg.field ? cfg.fields[cfg.field] : null;
    var value = field ? formatValue(field, props[cfg.field]) : null;
    var rows = '<tr><th>' + esc(t('grid')) + '</th><td>' + esc(props.grid_code || '—') + '</td></tr>' +
      '<tr><th>' + esc(t('count')) + '</th><td>' + esc(props.count) + '</td></tr>' +
      (value ? '<tr><th>' + esc(field.label) + '</th><td>' + esc(value) + '</td></tr>' : '');
    var link = props.grid_code ? '<p class="civic-links"><a href="' +
      esc(withLang(fill(C.config.urls.grid_map, { code: props.grid_code }))) + '">' +
      esc(t('grid_map')) + '</a> · ' + esc(t('zoom_in')) + '</p>' : '';
    return '<div class="civic-popup"><h4>' + esc(cfg.name) + '</h4><table>' + rows + '</table>' + link + '</div>';
  }

  function overviewLayer(cfg, data, zoom) {
    var style = styleFunction(cfg);
    overviewRenderer = overviewRenderer || L.canvas({ padding: 0.3 });
    return geojson(data, {
      pointToLayer: function (f, latlng) {
        var s = L.extend(style({}), { radius: overviewRadius(zoom), renderer: overviewRenderer });
        s.fillColor = style(f.properties).fillColor;
        return L.circleMarker(latlng, s);
      },
      onEachFeature: function (f, l) {
        l.bindPopup(overviewPopup(cfg, f.properties || {}), { maxWidth: 320 });
        l.on('click', function (e) { L.DomEvent.stopPropagation(e); });
      }
    });
  }

  var LevelOfDetail = L.Layer.extend({
    initialize: function (cfg, tiles) {
      this.cfg = cfg;
      this.tiles = tiles;
      this.overview = null;
      this._pending = null;
      tiles.on('load', function () { this.fire('load'); }, this);
    },
    onAdd: function (map) {
      map.on('zoomend', this._swap, this);
      this._swap();
    },
    onRemove: function (map) {
      map.off('zoomend', this._swap, this);
      if (map.hasLayer(this.tiles)) { map.removeLayer(this.tiles); }
      if (this.overview && map.hasLayer(this.overview)) { map.removeLayer(this.overview); }
    },
    usesOverview: function () {
      return this._map.getZoom() < C.config.overview_below_zoom;
    },
    isLoading: function () {
      return this.usesOverview() ? !this.overview : !!this.tiles._loading;
    },
    _swap: function () {
      var map = this._map;
      if (!map) { return; }
      if (this.usesOverview()) {
        if (map.hasLayer(this.tiles)) { map.removeLayer(this.tiles); }
        this._showOverview();
      } else {
        if (this.overview && map.hasLayer(this.overview)) { map.removeLayer(this.overview); }
        if (!map.hasLayer(this.tiles)) { map.addLayer(this.tiles); }
      }
    },
    _showOverview: function () {
      var self = this;
      var zoom = this._map.getZoom();
      if (this.overview) {
        this.overview.eachLayer(function (l) { l.setRadius(overviewRadius(zoom)); });
        this._map.addLayer(this.overview);
        return;
      }
      if (this._pending) { return; }
      var url = fill(C.config.urls.overview, { layer: this.cfg.id });
      this._pending = fetchJSON(url).then(function (data) {
        self.overview = overviewLayer(self.cfg, data, zoom);
        if (self._map && self.usesOverview()) { self._map.addLayer(self.overview); }
        L.Util.requestAnimFrame(function () { self.fire('load'); });
      }).catch(function (err) {
        self._pending = null;
        notify(self.cfg.name + ': ' + err.message);
      });
    }
  });

  /** The layer of a catalog layer the page shows and the layer control switches. */
  C.tileLayer = function (id) {
    var cfg = layerConfig(id);
    var styles = {};
    styles[id] = styleFunction(cfg);
    var tiles = new ShiftedProtobuf(tileUrl(id), tileOptions({
      vectorTileLayerStyles: styles,
      zIndex: Z_INDEX[cfg.geometry]
    }));
    tiles.civicId = id;
    C.layers[id] = tiles;
    var shown = tiles;
    if (!C.config.print && C.config.overview_layers.indexOf(id) >= 0) {
      shown = new LevelOfDetail(cfg, tiles);
    }
    shown.on('load', function () {
      if (C.timings.firstLoad[id] === undefined) {
        C.timings.firstLoad[id] = performance.now();
      }
    });
    C.groups[id] = shown;
    return shown;
  };

  // --- popups --------------------------------------------------------------------------

  // One popup for the whole map: a new one replaces the old instead of stacking on it.
  var popup = null;

  function showPopup(latlng, html) {
    popup = popup || L.popup({ maxWidth: 380 });
    popup.setLatLng(latlng).setContent(html).openOn(C.map);
    return popup;
  }

  function formatValue(field, value) {
    if (value === null || value === undefined || value === '') { return null; }
    if (field && field.choices && field.choices[value] !== undefined) { return field.choices[value]; }
    if (value === true) { return t('yes'); }
    if (value === false) { return t('no'); }
    if (field && field.kind === 'datetime' && typeof value === 'string') {
      // Stored in UTC; shown in Beijing time, as the inspectors read their watches.
      var when = new Date(value);
      if (!isNaN(when.getTime())) {
        return when.toLocaleString(C.config.lang === 'zh' ? 'zh-CN' : 'en-GB',
          { timeZone: 'Asia/Shanghai', hour12: false });
      }
    }
    if (typeof value === 'number' && !Number.isInteger(value)) {
      return String(Math.round(value * 100) / 100);
    }
    return String(value);
  }

  function propertyRows(fields, props) {
    var rows = [];
    var seen = {};
    Object.keys(fields).concat(Object.keys(props)).forEach(function (name) {
      if (seen[name] || !(name in props)) { return; }
      seen[name] = true;
      var field = fields[name];
      var value = formatValue(field, props[name]);
      if (value === null) { return; }
      var label = field ? field.label : name;
      rows.push('<tr><th>' + esc(label) + '</th><td>' + esc(value) + '</td></tr>');
    });
    return rows.join('');
  }

  function featurePopup(cfg, feature) {
    var props = feature.properties || {};
    var item = fill(C.config.urls.item, { layer: cfg.id, id: feature.id });
    var links = [
      '<a href="' + esc(item) + '" target="_blank">' + esc(t('api_item')) + '</a>',
      '<a href="' + esc(withLang(item + '?f=html')) + '" target="_blank">' + esc(t('item_page')) + '</a>',
      '<a href="' + esc(item + '/history') + '" target="_blank">' + esc(t('history')) + '</a>'
    ];
    if (cfg.id === 'grids') {
      links.push('<a href="' + esc(withLang(fill(C.config.urls.grid_map, { code: props.code }))) +
        '">' + esc(t('grid_map')) + '</a>');
      links.push('<a href="' + esc(withLang(fill(C.config.urls.print, { code: props.code }))) +
        '" target="_blank">' + esc(t('print')) + '</a>');
    }
    return '<div class="civic-popup"><h4>' + esc(cfg.name) + ' ' + esc(props.code || '') +
      '</h4><table>' + propertyRows(cfg.fields, props) + '</table><p class="civic-links">' +
      links.join(' · ') + '</p></div>';
  }

  // --- picking: what lies under a click, asked from the features API ------------------

  function visibleTileLayers() {
    return C.config.layers.filter(function (cfg) {
      var layer = C.layers[cfg.id];
      return layer && C.map.hasLayer(layer);
    });
  }

  function pixelDistance(feature, point) {
    var g = feature.geometry;
    if (!g || g.type !== 'Point') { return 0; }
    var p = C.map.latLngToContainerPoint(coordsToLatLng(g.coordinates));
    return p.distanceTo(point);
  }

  function boxArea(feature) {
    var b = L.geoJSON(feature).getBounds();
    return (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth());
  }

  function queryBox(point) {
    var tol = PICK_TOLERANCE_PX;
    var a = toData(C.map.containerPointToLatLng(point.add([-tol, tol])));
    var b = toData(C.map.containerPointToLatLng(point.add([tol, -tol])));
    return [a.lng, a.lat, b.lng, b.lat].map(function (v) { return v.toFixed(8); }).join(',');
  }

  function pickAt(latlng, point) {
    var bbox = queryBox(point);
    var byRank = {};
    visibleTileLayers().forEach(function (cfg) {
      (byRank[RANK[cfg.geometry]] = byRank[RANK[cfg.geometry]] || []).push(cfg);
    });
    var ranks = Object.keys(byRank).sort();
    function tryRank(i) {
      if (i >= ranks.length) { return Promise.resolve(null); }
      var group = byRank[ranks[i]];
      return Promise.all(group.map(function (cfg) {
        var url = fill(C.config.urls.items, { layer: cfg.id }) + '?limit=50&bbox=' + bbox;
        return fetchJSON(url).then(function (body) {
          return body.features.map(function (f) { return { cfg: cfg, feature: f }; });
        }).catch(function () { return []; });
      })).then(function (lists) {
        var hits = [].concat.apply([], lists);
        if (!hits.length) { return tryRank(i + 1); }
        hits.sort(function (x, y) {
          if (x.cfg.geometry === 'MULTIPOLYGON') { return boxArea(x.feature) - boxArea(y.feature); }
          return pixelDistance(x.feature, point) - pixelDistance(y.feature, point);
        });
        return hits[0];
      });
    }
    return tryRank(0).then(function (hit) {
      if (!hit) { return null; }
      var g = hit.feature.geometry;
      var where = g && g.type === 'Point' ? coordsToLatLng(g.coordinates) : latlng;
      showPopup(where, featurePopup(hit.cfg, hit.feature));
      return hit;
    });
  }
  C.pickAt = pickAt;

  // --- check evidence overlays -----------------------------------------------------------

  function evidenceLabel(props) {
    var metres = props.distance_m !== undefined ? props.distance_m :
      props.gap_m !== undefined ? props.gap_m : props.length_m;
    if (metres === undefined || metres === null) { return null; }
    return Number(metres).toFixed(2) + ' ' + t('metres');
  }

  function evidencePopup(rule, feature) {
    var props = L.extend({}, feature.properties || {});
    var reason = props.reason;
    delete props.reason;
    var rows = Object.keys(props).map(function (k) {
      var v = props[k];
      if (v === null || typeof v === 'object') { return ''; }
      return '<tr><th>' + esc(k) + '</th><td>' + esc(v) + '</td></tr>';
    }).join('');
    return '<div class="civic-popup civic-evidence"><h4>' + esc(t('check')) + ': ' +
      esc(rule.name[C.config.lang] || rule.id) + '</h4>' +
      (reason ? '<p class="civic-reason">' + esc(reason) + '</p>' : '') +
      '<table>' + rows + '</table></div>';
  }

  function drawEvidence(rule, features, group) {
    var many = features.length > 2000;
    var layer = geojson({ type: 'FeatureCollection', features: features }, {
      renderer: many ? L.canvas() : undefined,
      style: function (f) {
        var kind = f.geometry && f.geometry.type;
        if (kind === 'LineString' || kind === 'MultiLineString') {
          return { color: EVIDENCE_COLOR, weight: 4, opacity: 0.95 };
        }
        return { color: EVIDENCE_COLOR, weight: 2.5, fillColor: '#ff1744', fillOpacity: 0.25, dashArray: '5 3' };
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 9, color: EVIDENCE_COLOR, weight: 3, fill: false });
      },
      onEachFeature: function (f, l) {
        l.bindPopup(evidencePopup(rule, f), { maxWidth: 380 });
        l.on('click', function (e) { L.DomEvent.stopPropagation(e); });
        var kind = f.geometry && f.geometry.type;
        var label = evidenceLabel(f.properties || {});
        if (label && (kind === 'LineString' || kind === 'MultiLineString')) {
          l.bindTooltip(label, { permanent: true, direction: 'center', className: 'civic-distance' });
        }
      }
    });
    group.addLayer(layer);
    return layer;
  }

  function loadEvidence(rule, group) {
    if (group.civicState) { return group.civicState; }
    var url = fill(C.config.urls.check, { rule: rule.id }) + '?scope=' + encodeURIComponent(C.config.scope);
    notify(t('loading') + ' ' + (rule.name[C.config.lang] || rule.id));
    group.civicState = fetchJSON(url).then(function (report) {
      var features = (report.evidence && report.evidence.features) || [];
      drawEvidence(rule, features, group);
      notify('');
      group.fire('evidenceload', { count: features.length });
      return features.length;
    }).catch(function (err) {
      group.civicState = null;
      notify(t('check_failed') + ' ' + rule.id + ': ' + err.message);
      return 0;
    });
    return group.civicState;
  }

  function addCheckOverlays() {
    return fetchJSON(C.config.urls.checks).then(function (body) {
      var rules = (body && body.checks) || [];
      C.rules = rules;
      rules.forEach(function (rule) {
        var group = L.featureGroup();
        group.on('add', function () { loadEvidence(rule, group); });
        C.checks[rule.id] = group;
        C.control.addOverlay(group, '<span class="civic-check-name">' + esc(t('check')) + ': ' +
          esc(rule.name[C.config.lang] || rule.id) + '</span>');
      });
      fillChoroplethRules(rules);
      return rules;
    }).catch(function (err) {
      notify(t('checks_unavailable') + ': ' + err.message);
      return [];
    });
  }

  // --- per-grid choropleth of a rule's figure ------------------------------------------

  var scorecards = null;
  var choropleth = null;

  function rampColor(x) {
    var pos = Math.max(0, Math.min(1, x)) * (RAMP.length - 1);
    var i = Math.min(RAMP.length - 2, Math.floor(pos));
    var f = pos - i;
    function ch(hex, k) { return parseInt(hex.substr(1 + 2 * k, 2), 16); }
    var out = '#';
    for (var k = 0; k < 3; k++) {
      var v = Math.round(ch(RAMP[i], k) + (ch(RAMP[i + 1], k) - ch(RAMP[i], k)) * f);
      out += (v < 16 ? '0' : '') + v.toString(16);
    }
    return out;
  }

  function formatFigure(v, percent) {
    if (v === null || v === undefined) { return t('no_data'); }
    return percent ? (v * 100).toFixed(1) + '%' : String(Math.round(v * 100) / 100);
  }

  function choroplethLegend(rule, min, max, percent) {
    var box = document.getElementById('civic-choropleth-legend');
    if (!box) { return; }
    if (!rule) { box.innerHTML = ''; return; }
    var stops = RAMP.map(function (c, i) { return c + ' ' + (100 * i / (RAMP.length - 1)) + '%'; });
    box.innerHTML = '<div class="civic-legend-title">' + esc(t('choropleth')) + ': ' +
      esc(rule.name[C.config.lang] || rule.id) + '</div>' +
      '<div class="civic-ramp" style="background: linear-gradient(to right, ' + stops.join(', ') + ')"></div>' +
      '<div class="civic-ramp-labels"><span>' + esc(formatFigure(min, percent)) + '</span><span>' +
      esc(formatFigure(max, percent)) + '</span></div>' +
      '<div class="civic-legend-row"><i class="civic-swatch" style="background:#bdbdbd"></i>' + esc(t('no_data')) + '</div>' +
      '<div class="civic-legend-row"><i class="civic-swatch civic-outline" style="border-color:#c62828"></i>' + esc(t('failed_unit')) + '</div>';
  }

  function showChoropleth(ruleId) {
    if (choropleth) { C.map.removeLayer(choropleth); choropleth = null; }
    var rule = (C.rules || []).filter(function (r) { return r.id === ruleId; })[0];
    if (!rule) { choroplethLegend(null); return Promise.resolve(null); }
    var load = scorecards || (scorecards = fetchJSON(C.config.urls.scorecards).catch(function (err) {
      scorecards = null;
      throw err;
    }));
    notify(t('loading') + ' ' + t('choropleth'));
    return load.then(function (sc) {
      var cells = {};
      var figures = [];
      sc.units.forEach(function (u) {
        var cell = u.rules && u.rules[ruleId];
        if (!cell) { return; }
        cells[u.code] = cell;
        if (typeof cell.figure === 'number') { figures.push(cell.figure); }
      });
      var min = figures.length ? Math.min.apply(null, figures) : null;
      var max = figures.length ? Math.max.apply(null, figures) : null;
      var percent = figures.length > 0 && figures.every(function (v) { return v >= 0 && v <= 1; });
      var styles = {
        grids: function (p) {
          if (p.level !== 'grid') { return []; }
          var cell = cells[p.code];
          var figure = cell && typeof cell.figure === 'number' ? cell.figure : null;
          var x = figure === null ? null : (max > min ? (figure - min) / (max - min) : 1);
          return {
            fill: true,
            fillColor: x === null ? '#bdbdbd' : rampColor(x),
            fillOpacity: 0.6,
            color: cell && cell.passed === false ? '#c62828' : '#ffffff',
            weight: cell && cell.passed === false ? 2.5 : 0.8
          };
        }
      };
      choropleth = new ShiftedProtobuf(tileUrl('grids'), tileOptions({
        vectorTileLayerStyles: styles,
        zIndex: 150
      })).addTo(C.map);
      C.choropleth = { rule: ruleId, cells: cells, min: min, max: max, layer: choropleth };
      choroplethLegend(rule, min, max, percent);
      notify('');
      return C.choropleth;
    }).catch(function (err) {
      notify(t('choropleth') + ': ' + err.message);
      return null;
    });
  }
  C.showChoropleth = showChoropleth;

  function fillChoroplethRules(rules) {
    var select = document.getElementById('civic-choropleth-rule');
    if (!select) { return; }
    rules.forEach(function (rule) {
      var option = document.createElement('option');
      option.value = rule.id;
      option.textContent = rule.name[C.config.lang] || rule.id;
      select.appendChild(option);
    });
  }

  // --- grid labels: code and officer, loaded by bbox when zoomed in ----------------------

  var labels = null;
  var labelRequest = 0;

  function refreshGridLabels() {
    if (!labels || !C.map.hasLayer(labels)) { return; }
    if (C.map.getZoom() < LABEL_MIN_ZOOM) { labels.clearLayers(); return; }
    var b = C.map.getBounds();
    var sw = toData(b.getSouthWest());
    var ne = toData(b.getNorthEast());
    var bbox = [sw.lng, sw.lat, ne.lng, ne.lat].map(function (v) { return v.toFixed(7); }).join(',');
    var url = fill(C.config.urls.items, { layer: 'grids' }) +
      '?level=grid&limit=1000&properties=code,name,officer&bbox=' + bbox;
    var request = ++labelRequest;
    fetchJSON(url).then(function (body) {
      if (request !== labelRequest) { return; }
      labels.clearLayers();
      body.features.forEach(function (f) {
        // The label sits in the grid's north-west corner, where it hides no asset.
        var corner = geojson(f).getBounds().getNorthWest();
        var p = f.properties;
        var html = '<b>' + esc(p.code) + '</b>' +
          (p.officer ? '<br>' + esc(t('officer')) + ' ' + esc(p.officer) : '');
        L.marker(corner, {
          icon: L.divIcon({ className: 'civic-grid-label', html: html, iconSize: null }),
          interactive: false,
          keyboard: false
        }).addTo(labels);
      });
    }).catch(function () { /* labels are a convenience: the grid outlines are drawn anyway */ });
  }

  // --- search by code ----------------------------------------------------------------

  function zoomToFeature(cfg, feature) {
    var g = feature.geometry;
    if (g && g.type === 'Point') {
      var ll = coordsToLatLng(g.coordinates);
      C.map.setView(ll, Math.max(C.map.getZoom(), 18));
      showPopup(ll, featurePopup(cfg, feature));
    } else {
      var bounds = geojson(feature).getBounds();
      C.map.fitBounds(bounds, { maxZoom: 19 });
      showPopup(bounds.getCenter(), featurePopup(cfg, feature));
    }
  }

  function searchCode(code) {
    code = (code || '').trim();
    var out = document.getElementById('civic-search-result');
    if (!code) { return Promise.resolve(null); }
    out.textContent = t('searching');
    var ids = C.config.search_layers;
    return Promise.all(ids.map(function (id) {
      var url = fill(C.config.urls.items, { layer: id }) + '?limit=1&code=' + encodeURIComponent(code);
      return fetchJSON(url).then(function (body) { return body.features[0] || null; })
        .catch(function () { return null; });
    })).then(function (found) {
      for (var i = 0; i < found.length; i++) {
        if (found[i]) {
          var cfg = layerConfig(ids[i]);
          out.textContent = cfg.name + ' ' + code;
          zoomToFeature(cfg, found[i]);
          return { layer: ids[i], feature: found[i] };
        }
      }
      out.textContent = t('not_found') + ' ' + code;
      return null;
    });
  }
  C.searchCode = searchCode;

  // --- uploads (POST /uploads: multipart `file` + `crs`) ----------------------------------

  function collectFeatures(report) {
    // Every GeoJSON FeatureCollection, or array of Features, at the top level of the report
    // (or the report itself when it is one).
    var out = [];
    function take(value) {
      if (!value || typeof value !== 'object') { return; }
      if (value.type === 'FeatureCollection' && Array.isArray(value.features)) {
        out = out.concat(value.features);
      } else if (Array.isArray(value) && value.length && value[0] && value[0].type === 'Feature') {
        out = out.concat(value);
      }
    }
    take(report);
    if (report && typeof report === 'object' && report.type !== 'FeatureCollection') {
      Object.keys(report).forEach(function (k) { take(report[k]); });
    }
    return out.filter(function (f) { return f && f.geometry; });
  }

  function assetsOf(report) {
    // The assets the upload matched or created (report.matched / report.created: layer, id).
    var refs = [];
    ['matched', 'created'].forEach(function (key) {
      ((report && report[key]) || []).forEach(function (r) {
        if (r && r.layer && r.id !== undefined && r.id !== null) { refs.push(r); }
      });
    });
    return Promise.all(refs.map(function (r) {
      return fetchJSON(fill(C.config.urls.item, { layer: r.layer, id: r.id }))
        .then(function (f) { f.properties = L.extend({ upload: r }, f.properties); return f; })
        .catch(function () { return null; });
    })).then(function (found) { return found.filter(Boolean); });
  }

  function filePoints(text, name) {
    // The points of the file the user sent (GPX, KML, GeoJSON), for display after the
    // server accepted it: the report lists counts, matches and refusals, not coordinates.
    var out = [];
    function point(lon, lat, props) {
      if (isFinite(lon) && isFinite(lat)) {
        out.push({ type: 'Feature', geometry: { type: 'Point', coordinates: [lon, lat] }, properties: props });
      }
    }
    var lower = (name || '').toLowerCase();
    if (/\.(geo)?json$/.test(lower)) {
      var doc = JSON.parse(text);
      var features = doc.type === 'FeatureCollection' ? doc.features : doc.type === 'Feature' ? [doc] : [];
      features.forEach(function (f) {
        if (f.geometry && f.geometry.type === 'Point') {
          point(f.geometry.coordinates[0], f.geometry.coordinates[1], f.properties || {});
        }
      });
      return out;
    }
    var xml = new DOMParser().parseFromString(text, 'application/xml');
    Array.prototype.forEach.call(xml.getElementsByTagName('wpt'), function (w) {
      var nameEl = w.getElementsByTagName('name')[0];
      point(parseFloat(w.getAttribute('lon')), parseFloat(w.getAttribute('lat')),
        { name: nameEl ? nameEl.textContent : '' });
    });
    Array.prototype.forEach.call(xml.getElementsByTagName('Placemark'), function (pm) {
      var pt = pm.getElementsByTagName('Point')[0];
      var coords = pt && pt.getElementsByTagName('coordinates')[0];
      if (!coords) { return; }
      var parts = coords.textContent.trim().split(',');
      var nameEl = pm.getElementsByTagName('name')[0];
      point(parseFloat(parts[0]), parseFloat(parts[1]), { name: nameEl ? nameEl.textContent : '' });
    });
    return out;
  }

  function toWgs84(features, crs) {
    // Only what the browser can convert exactly: WGS-84/CGCS2000 as they are, GCJ-02 back.
    var key = (crs || '').toUpperCase().replace(/[^A-Z0-9]/g, '');
    if (key === 'EPSG4326' || key === 'EPSG4490' || key === 'WGS84' || key === '') { return features; }
    if (key === 'GCJ02') {
      return features.map(function (f) {
        var c = f.geometry.coordinates;
        var w = Gcj.gcj02ToWgs84(c[0], c[1]);
        return { type: 'Feature', geometry: { type: 'Point', coordinates: w }, properties: f.properties };
      });
    }
    return [];
  }

  function drawUploaded(features) {
    if (!features.length) { return null; }
    var layer = geojson({ type: 'FeatureCollection', features: features }, {
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {
          radius: 7, color: '#004d40', weight: 2, fillColor: '#1de9b6', fillOpacity: 0.9
        });
      },
      style: function () { return { color: '#00bfa5', weight: 3 }; },
      onEachFeature: function (f, l) {
        l.bindPopup('<div class="civic-popup"><h4>' + esc(t('uploaded')) + '</h4><table>' +
          propertyRows({}, f.properties || {}) + '</table></div>');
        l.on('click', function (e) { L.DomEvent.stopPropagation(e); });
      }
    });
    C.uploads.addLayer(layer);
    if (!C.map.hasLayer(C.uploads)) { C.uploads.addTo(C.map); }
    C.map.fitBounds(layer.getBounds(), { maxZoom: 18 });
    return layer;
  }

  function submitUpload(form) {
    var status = form.querySelector('.civic-upload-status');
    var pre = form.querySelector('.civic-upload-report');
    var data = new FormData(form);
    var file = data.get('file');
    if (!file || !file.name) {
      status.textContent = t('choose_file');
      return Promise.resolve(null);
    }
    status.textContent = t('uploading');
    var request = { method: 'POST', body: data, headers: authHeaders() };
    return fetch(C.config.urls.uploads, request).then(function (response) {
      return response.text().then(function (body) {
        var report;
        try { report = JSON.parse(body); } catch (e) { report = { detail: body }; }
        pre.textContent = JSON.stringify(report, null, 1);
        if (response.status === 401) {
          // Writes need a signed-in user: log in, then come back to the map.
          toLogin('required');
          return { status: response.status, report: report, features: [] };
        }
        if (response.status === 404 || response.status === 405) {
          status.textContent = t('upload_unavailable') + ' (HTTP ' + response.status + ')';
          return { status: response.status, report: report, features: [] };
        }
        if (!response.ok) {
          status.textContent = t('upload_refused') + ' (HTTP ' + response.status + ')' +
            (report && report.detail ? ': ' + report.detail : '');
          return { status: response.status, report: report, features: [] };
        }
        var fromReport = collectFeatures(report);
        var sent = fromReport.length ? Promise.resolve(fromReport) : file.text().then(function (text) {
          try { return toWgs84(filePoints(text, file.name), data.get('crs')); } catch (e) { return []; }
        });
        return Promise.all([sent, assetsOf(report)]).then(function (parts) {
          var points = parts[0];
          drawUploaded(points.concat(parts[1]));
          status.textContent = t('upload_done') + ' · ' + points.length + ' ' + t('points_on_map') +
            (parts[1].length ? ' · ' + parts[1].length + ' ' + t('assets_matched') : '');
          return { status: response.status, report: report, features: points, assets: parts[1] };
        });
      });
    }).catch(function (err) {
      status.textContent = t('upload_refused') + ': ' + err.message;
      return null;
    });
  }
  C.submitUpload = submitUpload;

  // --- controls ------------------------------------------------------------------------

  function panelControl(elementId, position) {
    var element = document.getElementById(elementId);
    if (!element) { return null; }
    var Panel = L.Control.extend({
      onAdd: function () {
        element.style.display = '';
        L.DomEvent.disableClickPropagation(element);
        L.DomEvent.disableScrollPropagation(element);
        return element;
      },
      onRemove: function () {}
    });
    return new Panel({ position: position }).addTo(C.map);
  }

  function northArrow() {
    var Arrow = L.Control.extend({
      onAdd: function () {
        var div = L.DomUtil.create('div', 'civic-north');
        div.innerHTML = '<svg viewBox="0 0 40 56" width="30" height="42" aria-label="N">' +
          '<polygon points="20,4 32,44 20,36 8,44" fill="#212121"/>' +
          '<polygon points="20,4 20,36 8,44" fill="#ffffff" stroke="#212121" stroke-width="1.5"/>' +
          '<text x="20" y="55" text-anchor="middle" font-size="12" font-weight="bold">' +
          esc(t('north')) + '</text></svg>';
        return div;
      }
    });
    return new Arrow({ position: 'topright' }).addTo(C.map);
  }

  function wireSearch() {
    var form = document.getElementById('civic-search');
    if (!form) { return; }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      searchCode(form.querySelector('input').value);
    });
  }

  function wireUpload() {
    var form = document.getElementById('civic-upload');
    if (!form) { return; }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      submitUpload(form);
    });
    var toggle = document.getElementById('civic-upload-toggle');
    if (toggle) {
      toggle.addEventListener('click', function () {
        form.style.display = form.style.display === 'none' ? '' : 'none';
      });
    }
  }

  function wireChoropleth() {
    var select = document.getElementById('civic-choropleth-rule');
    if (!select) { return; }
    select.addEventListener('change', function () { showChoropleth(select.value); });
  }

  // --- who is signed in: name and role, log out (or a log-in link when reads are public) ---

  function showUser() {
    var box = document.getElementById('civic-user');
    if (!box) { return Promise.resolve(null); }
    return fetchJSON(C.config.urls.me, { quiet: true }).then(function (me) {
      C.user = me;
      box.innerHTML = esc(me.name) + ' · ' + esc(t('role_' + me.role)) +
        ' · <a href="#" id="civic-logout">' + esc(t('logout')) + '</a>';
      document.getElementById('civic-logout').addEventListener('click', function (e) {
        e.preventDefault();
        logout();
      });
      return me;
    }).catch(function () {
      C.user = null;
      box.innerHTML = '<a href="#" id="civic-login">' + esc(t('login')) + '</a>';
      document.getElementById('civic-login').addEventListener('click', function (e) {
        e.preventDefault();
        toLogin('required');
      });
      return null;
    });
  }

  function logout() {
    try { global.sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
    // Leave only once the response has been read to its end: a page left while the
    // browser still finishes the request reports it aborted (seen under load).
    return fetch(C.config.urls.logout, { method: 'POST', credentials: 'same-origin' })
      .then(function (response) { return response.text(); })
      .catch(function () { return null; })
      .then(function () { toLogin('logout'); });
  }
  C.logout = logout;

  // --- the initial view, and readiness for tests, benchmarks and printing ----------------

  function initialView() {
    var view = C.config.view;
    if (view.grid && view.grid.geometry) {
      var outline = geojson(view.grid.geometry, {
        style: function () { return { color: '#1a237e', weight: 4, fill: false, interactive: false }; },
        interactive: false
      });
      outline.addTo(C.map);
      C.gridOutline = outline;
      C.map.fitBounds(outline.getBounds(), { padding: [12, 12], maxZoom: 20, animate: false });
    } else if (view.bounds) {
      C.map.fitBounds(displayBounds(view.bounds), { padding: [8, 8], animate: false });
    }
  }

  function whenLoaded(layer) {
    return new Promise(function (resolve) { layer.once('load', function () { resolve(); }); });
  }

  function markReady(waitFor) {
    Promise.all(waitFor).then(function () {
      C.ready = true;
      C.timings.ready = performance.now();
      global.civicMapReady = true;
      document.documentElement.setAttribute('data-map-ready', '1');
    });
  }

  function printEvidence() {
    (C.config.evidence || []).forEach(function (entry) {
      drawEvidence(entry, entry.features, L.featureGroup().addTo(C.map));
    });
  }

  /** Called once by the page after folium has built the map and the layer control. */
  C.init = function (map, control) {
    C.map = map;
    C.control = control;
    L.control.scale({ imperial: false, maxWidth: 160, position: 'bottomleft' }).addTo(map);
    initialView();
    // Points first (lamps, bins: what inspectors look for), lines and areas once the points
    // have drawn: a browser opens six connections to a host, and tiles queue behind them.
    var waitFor = [];
    var first = [];
    var later = [];
    C.config.layers.forEach(function (cfg) {
      var layer = C.groups[cfg.id];
      if (layer && (cfg.visible || C.config.print)) {
        (cfg.geometry === 'POINT' ? first : later).push(layer);
      }
    });
    var pointsDrawn = Promise.all(first.map(function (layer) {
      var loaded = whenLoaded(layer);
      layer.addTo(map);
      return loaded;
    }));
    waitFor.push(pointsDrawn);
    // ...but never wait on them for long: a failed point layer must not hide the others.
    var go = Promise.race([pointsDrawn, new Promise(function (resolve) { setTimeout(resolve, 3000); })]);
    later.forEach(function (layer) {
      var loaded = go.then(function () {
        var done = whenLoaded(layer);
        layer.addTo(map);
        return done;
      });
      waitFor.push(loaded);
    });
    if (C.config.print) {
      northArrow();
      printEvidence();
      markReady(waitFor);
      return C;
    }
    labels = L.layerGroup().addTo(map);
    control.addOverlay(labels, t('grid_labels'));
    map.on('moveend overlayadd', refreshGridLabels);
    refreshGridLabels();
    C.uploads = L.featureGroup();
    control.addOverlay(C.uploads, t('uploaded'));
    panelControl('civic-tools', 'topleft');
    panelControl('civic-legend', 'bottomleft');
    wireSearch();
    wireUpload();
    wireChoropleth();
    showUser();
    map.on('click', function (e) { pickAt(e.latlng, e.containerPoint); });
    waitFor.push(addCheckOverlays());
    markReady(waitFor);
    return C;
  };

  C.configure = function (config) { C.config = config; };
}(window));
