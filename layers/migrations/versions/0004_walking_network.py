"""Walking network: pgRouting and the walking-distance function of the school-zone rule

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

The Guangdong method (粤文旅规〔2023〕1号) measures the walk from any entrance
of a venue to any entrance of a school. `civic_gis_walking_paths` answers it
for one venue: the shortest walks from its origins to a set of targets, each
being a straight geodesic leg to the nearest point of the road network, the
road centre lines, and a leg from the network to the target.

Why no maintained edge table: a walk of at most `max_m` never leaves the disc
of radius `max_m` round its origin (a geodesic is never longer than a walk),
so only the roads inside a box round all the points, widened by `max_m`,
matter; and a target whose nearest road lies outside that box is more than
`max_m` from every road, so snapping it to a road inside cannot bring it within
the limit. The function clips those roads to the box and nodes them at their
intersections (ST_Node) on every call, so the network is never stale, needs no
trigger on `roads`, sees uncommitted edits of its own transaction and costs
nothing on writes.

Costs are geodesic lengths (geography) of the pieces of road actually walked:
every road piece carrying a snapped point is cut there, so Dijkstra
(pgr_dijkstra, undirected: pedestrians ignore one-way rules) runs on exact
partial lengths and each route is drawn from the same pieces. Nearest points
are found in the local CGCS2000 Gauss-Kruger zone (conformal: the foot of the
perpendicular is right, unlike in degrees).

pgRouting is Debian's `postgresql-15-pgrouting`; creating it needs the
superuser the project cluster runs as.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Point vertices are numbered above every network vertex (dense ranks of piece ends).
FUNCTIONS = r"""
CREATE FUNCTION civic_gis_walking_paths(
    origins geometry[], targets geometry[], max_m double precision,
    snap_m double precision DEFAULT 0.5)
RETURNS TABLE (origin_no integer, target_no integer, distance_m double precision,
               origin_leg_m double precision, network_m double precision,
               target_leg_m double precision, path geometry)
LANGUAGE plpgsql VOLATILE
-- Planned once per session, not on every call (one call per venue). Without the
-- arguments the estimated costs look huge, and JIT compiling them took 5 s of a 10 ms call.
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $fn$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH pts AS MATERIALIZED (
    SELECT 'o'::text AS side, u.n::integer AS no, 1000000000000 + u.n AS vid, u.g AS geom
    FROM unnest(origins) WITH ORDINALITY AS u(g, n)
    UNION ALL
    SELECT 't', u.n::integer, 1000000000000 + cardinality(origins) + u.n, u.g
    FROM unnest(targets) WITH ORDINALITY AS u(g, n)
),
-- The box round every point, at least max_m wider on each side (degrees of latitude are
-- over 110 km, of longitude over 111 km x cos(latitude)); and the Gauss-Kruger zone of
-- its centre.
frame AS MATERIALIZED (
    SELECT ST_Expand(b.box,
                     max_m / (111000 * cos(radians(least(89.0, b.lat + max_m / 110000)))),
                     max_m / 110000) AS box,
           4534 + (round((ST_XMin(b.box) + ST_XMax(b.box)) / 6)::integer * 3 - 75) / 3 AS gk
    FROM (SELECT ST_Extent(geom) AS box, max(abs(ST_Y(geom))) AS lat FROM pts) b
),
-- The roads inside the frame, clipped to it.
local_roads AS MATERIALIZED (
    SELECT r.geom, ST_ClipByBox2D(r.geom, f.box) AS part
    FROM roads r, frame f
    WHERE r.geom && f.box
),
-- A road ending within snap_m of another (an undershoot, or a T junction whose end lies a
-- rounding error off the other line) is joined to it: the other road gets a vertex there.
road_ends AS MATERIALIZED (
    SELECT ST_Collect(e.pt) AS g
    FROM local_roads r
    CROSS JOIN LATERAL (VALUES (ST_StartPoint(r.geom)), (ST_EndPoint(r.geom))) AS e(pt)
),
pieces AS MATERIALIZED (
    SELECT row_number() OVER () AS id, d.geom, ST_Transform(d.geom, f.gk) AS plane
    FROM (SELECT ST_Node(ST_Collect(ST_Snap(r.part, e.g, snap_m / 111320.0))) AS g
          FROM local_roads r, road_ends e
          WHERE NOT ST_IsEmpty(r.part)) n
    CROSS JOIN LATERAL ST_Dump(n.g) AS d
    CROSS JOIN frame f
),
ends AS (
    SELECT e.id AS piece, v.k, dense_rank() OVER (ORDER BY ST_X(v.pt), ST_Y(v.pt)) AS vid
    FROM pieces e
    CROSS JOIN LATERAL (VALUES (0, ST_StartPoint(e.geom)), (2, ST_EndPoint(e.geom))) AS v(k, pt)
),
located AS (
    SELECT p.side, p.no, p.vid, p.geom, e.id AS piece, e.geom AS piece_geom,
           ST_LineLocatePoint(e.geom, ST_Transform(ST_ClosestPoint(e.plane, p.plane), 4326))
               AS frac
    FROM (SELECT pts.*, ST_Transform(pts.geom, f.gk) AS plane FROM pts, frame f) p
    CROSS JOIN LATERAL (
        SELECT e.id, e.geom, e.plane FROM pieces e
        ORDER BY ST_Distance(e.plane, p.plane), e.id LIMIT 1) e
),
snaps AS MATERIALIZED (
    SELECT l.side, l.no, l.vid, l.geom, l.piece, l.frac, s.snap,
           ST_Distance(l.geom::geography, s.snap::geography) AS leg_m
    FROM located l
    CROSS JOIN LATERAL (SELECT ST_LineInterpolatePoint(l.piece_geom, l.frac) AS snap) s
),
cuts AS (
    SELECT piece, k / 2.0::float8 AS frac, k AS rank, vid FROM ends
    UNION ALL
    SELECT piece, frac, 1, vid FROM snaps
),
sub_edges AS MATERIALIZED (
    SELECT row_number() OVER () AS id, q.source, q.target, q.geom,
           ST_Length(q.geom::geography) AS cost
    FROM (
        SELECT c.vid AS source, lead(c.vid) OVER w AS target,
               ST_LineSubstring(e.geom, c.frac, lead(c.frac) OVER w) AS geom
        FROM cuts c JOIN pieces e ON e.id = c.piece
        WINDOW w AS (PARTITION BY c.piece ORDER BY c.frac, c.rank, c.vid)
    ) q
    WHERE q.target IS NOT NULL
),
graph AS (
    SELECT 'SELECT * FROM (VALUES '
           || string_agg(format('(%s::bigint, %s::bigint, %s::bigint, %s::float8)',
                                id, source, target, cost), ', ')
           || ') AS e(id, source, target, cost)' AS edges_sql
    FROM sub_edges
),
routes AS MATERIALIZED (
    SELECT d.start_vid, d.end_vid, d.path_seq, d.node, d.edge, d.agg_cost
    FROM graph
    CROSS JOIN LATERAL pgr_dijkstra(
        graph.edges_sql,
        NULLIF(ARRAY(SELECT vid FROM snaps WHERE side = 'o'), '{}'),
        NULLIF(ARRAY(SELECT vid FROM snaps WHERE side = 't'), '{}'),
        directed => false) AS d
),
totals AS (
    SELECT start_vid, end_vid, max(agg_cost) AS network_m
    FROM routes WHERE edge = -1 GROUP BY start_vid, end_vid
)
SELECT o.no, t.no, o.leg_m + tt.network_m + t.leg_m, o.leg_m, tt.network_m, t.leg_m,
       ST_RemoveRepeatedPoints(
           ST_MakeLine(ARRAY[o.geom, o.snap] || walked.pieces || ARRAY[t.snap, t.geom]), 1e-10)
FROM totals tt
JOIN snaps o ON o.side = 'o' AND o.vid = tt.start_vid
JOIN snaps t ON t.side = 't' AND t.vid = tt.end_vid
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(
               CASE WHEN r.node = se.source THEN se.geom ELSE ST_Reverse(se.geom) END
               ORDER BY r.path_seq), '{}') AS pieces
    FROM routes r JOIN sub_edges se ON se.id = r.edge
    WHERE r.start_vid = tt.start_vid AND r.end_vid = tt.end_vid
) walked
WHERE o.leg_m + tt.network_m + t.leg_m <= max_m
ORDER BY 1, 2;
END
$fn$;

COMMENT ON FUNCTION civic_gis_walking_paths(
    geometry[], geometry[], double precision, double precision) IS
'步行距离 / shortest walks (m, geodesic) from each origin to each target via the road '
'centre lines, with straight legs to the nearest road point; pairs over max_m are omitted';
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS civic_gis_walking_paths(
    geometry[], geometry[], double precision, double precision);
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute(DROP_FUNCTIONS)
    op.execute("DROP EXTENSION IF EXISTS pgrouting")
