"""`civic-gis`: the command line (typer).  Command names are a contract."""

from __future__ import annotations

import getpass
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from data.crs import UnknownCrs
from data.exporter import SUFFIX, ExportFormat, export_layer
from data.importer import Mode, prepare_rows, write_rows
from data.problems import ImportReport, InvalidImport
from data.sources import read_source
from gis_api import cluster
from gis_api.auth import ROLES, audit_source
from gis_api.auth import users as user_store
from gis_api.auth.audit import AuditEntry, changes_since
from gis_api.database import database_url, make_engine
from gis_api.settings import Settings
from layers import migrate
from layers.catalog import CATALOG, UnknownLayer
from layers.checks.framework import DEFAULT_EVIDENCE_LIMIT, CheckError
from layers.profile import InvalidProfile, load_profile
from layers.school_zones import sync_zone_distances

app = typer.Typer(help="civic-gis: 文明城市创建 GIS 巡查服务", no_args_is_help=True)
db_app = typer.Typer(
    help="The project-managed PostgreSQL cluster and migrations.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
user_app = typer.Typer(
    help="Users, roles and API tokens (whoever can reach the database is the admin).",
    no_args_is_help=True,
)
app.add_typer(user_app, name="user")
out = Console()
err = Console(stderr=True)


@contextmanager
def _engine(start_cluster: bool = True) -> Iterator[Engine]:
    engine = make_engine(database_url(Settings(), start_cluster=start_cluster))
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _migrated_engine() -> Iterator[Engine]:
    """An engine on a database at the head migration; a clear error otherwise."""
    with _engine() as engine:
        if not migrate.is_at_head(engine):
            current = migrate.current_revision(engine) or "none"
            raise _fail(
                f"the database is at migration {current}, not "
                f"{migrate.head_revision(engine)}: run `civic-gis db migrate` first"
            )
        yield engine


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


@db_app.command("up")
def db_up() -> None:
    """Start the project's cluster (initdb on first use) and create the database."""
    settings = Settings()
    if settings.database_url:
        raise _fail("CIVIC_GIS_DATABASE_URL is set: the project cluster is not used")
    url = cluster.ensure_running(settings.cluster())
    out.print(f"cluster running: {url.split('@')[-1]}")


@db_app.command("down")
def db_down() -> None:
    """Stop the project's cluster."""
    stopped = cluster.stop(Settings().cluster())
    out.print("cluster stopped" if stopped else "cluster was not running")


@db_app.command("status")
def db_status() -> None:
    """Cluster state and migration revision."""
    settings = Settings()
    if not settings.database_url:
        state = cluster.status(settings.cluster())
        out.print(
            f"cluster: {'running' if state.running else 'stopped'} "
            f"(data {state.data_dir}, port {state.port})"
        )
        if not state.running:
            return
    with _engine(start_cluster=False) as engine:
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    out.print(f"migration: {current or 'none'} (head {head})")


@db_app.command("migrate")
def db_migrate(
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision")] = False,
) -> None:
    """Apply (or with --down, revert) alembic migrations."""
    with _engine() as engine:
        if down:
            migrate.downgrade(engine, revision)
        else:
            migrate.upgrade(engine, revision)
            if migrate.is_at_head(engine):
                sync_zone_distances(engine, load_profile(Settings().profile))
        out.print(f"migration: {migrate.current_revision(engine) or 'none'}")


def _has_data(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM grids)")).scalar())


@app.command()
def demo(
    scale: Annotated[Literal["small", "city", "large"], typer.Option()] = "small",
    seed: Annotated[int, typer.Option()] = 0,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Skip if data exists")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Delete all layer data first")] = False,
) -> None:
    """Generate the demo city and load it through the import path (files, then import)."""
    from data.demo import generate_city, write_city_files

    with _engine() as engine:
        migrate.upgrade(engine)
        sync_zone_distances(engine, load_profile(Settings().profile))
        if _has_data(engine) and not replace:
            if if_empty:
                out.print("demo: database already holds data, kept as it is")
                return
            raise _fail("the database already holds data: use --replace or --if-empty")
        err.print(f"generating demo city (scale {scale}, seed {seed}) ...")
        city = generate_city(scale=scale, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            files = write_city_files(city, Path(tmp))
            reports = _load_files(engine, files, replace)
    _print_reports(reports)


def _load_files(engine: Engine, files: dict[str, Path], replace: bool) -> list[ImportReport]:
    """Import every layer file in one transaction: the demo loads whole or not at all."""
    reports = []
    with engine.begin() as conn, _progress() as bar:
        audit_source(conn, "cli:demo")
        if replace:
            tables = ", ".join(f'"{spec.table}"' for spec in CATALOG)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for spec in CATALOG:
            path = files[spec.id]
            task = bar.add_task(f"{spec.zh} {spec.id}", total=None)
            rows = prepare_rows(read_source(path, spec.id), spec, None, path.name)
            reports.append(
                write_rows(
                    conn,
                    rows,
                    "insert",
                    partial(_advance, bar, task),
                )
            )
    return reports


def _advance(bar: Progress, task: TaskID, done: int, total: int) -> None:
    bar.update(task, completed=done, total=total)


def _print_reports(reports: list[ImportReport]) -> None:
    table = Table("layer", "source", "crs", "rows", "inserted", "updated", "repaired")
    for r in reports:
        table.add_row(
            r.layer,
            r.source,
            r.crs,
            str(r.rows),
            str(r.inserted),
            str(r.updated),
            str(len(r.repaired)),
        )
    out.print(table)
    for r in reports:
        for problem in r.repaired:
            err.print(f"[yellow]warning:[/yellow] {r.source}: {problem}", highlight=False)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    layer: Annotated[str, typer.Option(help=f"One of: {', '.join(CATALOG.ids())}")],
    crs: Annotated[
        str | None,
        typer.Option(
            help="Declared CRS: EPSG:4326 (default), EPSG:4490, GCJ-02, BD-09, EPSG:45xx ..."
        ),
    ] = None,
    mode: Annotated[
        Literal["insert", "upsert"],
        typer.Option(help="insert refuses existing codes; upsert updates them"),
    ] = "insert",
) -> None:
    """Import a GeoJSON, GeoPackage, zipped Shapefile or CSV file into a layer."""
    spec = CATALOG.get(layer)
    chosen: Mode = mode
    with _migrated_engine() as engine, _progress() as bar:
        task = bar.add_task(f"importing {file.name}", total=None)
        rows = prepare_rows(read_source(file, spec.id), spec, crs, str(file))
        with engine.begin() as conn:
            audit_source(conn, f"cli:import {file.name}")
            report = write_rows(
                conn,
                rows,
                chosen,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    _print_reports([report])


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    crs: Annotated[
        str | None, typer.Option(help="EPSG:4326 (default), GCJ-02, BD-09, EPSG:4490")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Kind of points without one, e.g. lamp_unlit")
    ] = None,
    layer: Annotated[str | None, typer.Option(help="Layer a bare kind (unlit) refers to")] = None,
    note: Annotated[str | None, typer.Option()] = None,
    user: Annotated[
        str | None, typer.Option(help="Upload as this user (grid rights apply)")
    ] = None,
    partial_: Annotated[bool, typer.Option("--partial", help="Store the valid points")] = False,
) -> None:
    """Upload a field file (GPX, KML/KMZ, GeoJSON, CSV, NMEA, JPEG) as POST /uploads does."""
    from gis_api.problems import ApiProblem
    from gis_api.uploads import run_upload
    from layers.field_store import UploadMeta, sha256_hex

    settings = Settings()
    profile = load_profile(settings.profile)
    raw = file.read_bytes()
    with _migrated_engine() as engine, _progress() as bar:
        task = bar.add_task(f"uploading {file.name}", total=3)
        principal = None
        if user is not None:
            with engine.connect() as conn:
                found = conn.execute(
                    text("SELECT id FROM users WHERE name = :n AND NOT disabled"), {"n": user}
                ).scalar_one_or_none()
                principal = None if found is None else user_store.principal_by_id(conn, found)
            if principal is None:
                raise _fail(f"no enabled user called {user!r}")
        meta = UploadMeta(
            sha256=sha256_hex(raw),
            size=len(raw),
            filename=file.name,
            declared_crs=crs,
            kind=kind,
            layer=layer,
            note=note,
            uploader_id=None if principal is None else principal.user_id,
            uploader_name=None if principal is None else principal.name,
            source="cli",
        )
        try:
            outcome = run_upload(
                engine,
                raw,
                meta,
                principal,
                profile,
                partial=partial_,
                audit=f"cli:upload {file.name}",
                progress=lambda step: bar.update(
                    task, advance=1, description=f"{step} {file.name}"
                ),
            )
        except ApiProblem as exc:
            for item in exc.extra.get("refused", exc.extra.get("problems", []))[:50]:
                err.print(f"  row {item.get('row')}: {item.get('reason')}", highlight=False)
            raise _fail(f"{exc.detail} ({exc.status})") from exc
    report = outcome.report
    if outcome.replayed:
        err.print(f"already uploaded as upload {report['id']}: nothing new written")
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2))


@app.command()
def export(
    layer: Annotated[str, typer.Option(help=f"One of: {', '.join(CATALOG.ids())}")],
    format: Annotated[Literal["geojson", "gpkg", "csv", "shp"], typer.Option()] = "geojson",
    out_path: Annotated[Path | None, typer.Option("--out", help="Output file")] = None,
) -> None:
    """Export a layer to GeoJSON, GeoPackage, CSV or zipped Shapefile."""
    spec = CATALOG.get(layer)
    fmt: ExportFormat = format
    target = out_path or Path(f"{spec.id}{SUFFIX[fmt]}")
    with _migrated_engine() as engine, _progress() as bar:
        bar.add_task(f"exporting {spec.id}", total=None)
        count = export_layer(engine, spec, fmt, target)
    out.print(f"{count} features of {spec.id} written to {target}")


@app.command()
def check(
    rule: Annotated[str | None, typer.Argument(help="Rule id; all rules when omitted")] = None,
    scope: Annotated[
        str, typer.Option(help="all | grid:CODE | community:CODE | street:CODE")
    ] = "all",
    format: Annotated[Literal["table", "json", "geojson"], typer.Option()] = "table",
    evidence_limit: Annotated[
        int, typer.Option(min=0, help="failing items drawn per rule (0: figures only)")
    ] = DEFAULT_EVIDENCE_LIMIT,
    evidence_offset: Annotated[int, typer.Option(min=0, help="failing items to skip")] = 0,
) -> None:
    """Run campaign checks: verdicts, figures and one page of evidence per rule."""
    from layers.checks import RULES
    from layers.checks.framework import Page
    from layers.checks.reports import run_checks

    settings = Settings()
    profile = load_profile(settings.profile)
    rule_ids = [rule] if rule else list(RULES)
    page = Page(evidence_limit, evidence_offset)
    with _migrated_engine() as engine:
        reports = run_checks(engine, profile, rule_ids, scope, page, settings.check_workers)
    if format == "json":
        sys.stdout.write(json.dumps(reports, ensure_ascii=False, indent=1) + "\n")
        return
    if format == "geojson":
        features = [
            {**f, "properties": {"rule": r["rule"], **f["properties"]}}
            for r in reports
            for f in r["evidence"]["features"]
        ]
        collection = {"type": "FeatureCollection", "features": features}
        sys.stdout.write(json.dumps(collection, ensure_ascii=False) + "\n")
        return
    table = Table("rule", "名称", "scope", "verdict", "evidence")
    for r in reports:
        verdict = {True: "[green]pass 通过[/green]", False: "[red]fail 未通过[/red]"}.get(
            r["passed"], "n/a"
        )
        evidence = r["evidence"]
        shown = f"{evidence['numberReturned']} / {evidence['numberMatched']}"
        table.add_row(r["rule"], r["name"]["zh"], r["scope"], verdict, shown)
    out.print(table)


@app.command("print-grid")
def print_grid(
    code: Annotated[str, typer.Argument(help="15-digit code of the grid (or community)")],
    out_path: Annotated[Path, typer.Option("--out", help="PDF file to write")] = Path("grid.pdf"),
    lang: Annotated[Literal["zh", "en"], typer.Option(help="zh (default) or en")] = "zh",
) -> None:
    """一格一图: the grid's A4 sheet (map, legend, register, open problems) as PDF."""
    from gis_api.app import create_app
    from map_ui.printing import PrintError, print_grid_pdf

    settings = Settings()
    with _migrated_engine():
        pass
    try:
        # Served on a loopback port for the seconds chromium needs, to no one else:
        # reads are opened for that private server only.
        private = settings.model_copy(update={"auth_public_reads": True})
        print_grid_pdf(
            create_app(private), code, out_path, lang=lang, chromium=settings.chromium_path
        )
    except PrintError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"grid {code}: {out_path}")


def _password_from_stdin() -> str:
    """One line of standard input; typed without echo when it is a terminal."""
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Login name, unique")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}")],
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="Grid code an inspector may change (repeat for more)"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a web-login password from stdin")
    ] = False,
) -> None:
    """Create a user; print its API token (shown this once, stored only hashed)."""
    password = _password_from_stdin() if password_stdin else None
    with _migrated_engine() as engine:
        try:
            with engine.begin() as conn:
                token = user_store.add_user(conn, name, role, grid or (), password)
        except user_store.UserError as exc:
            raise _fail(str(exc)) from exc
    err.print(f"user {name} ({role}) created; its token (shown once):", highlight=False)
    sys.stdout.write(token + "\n")


@user_app.command("list")
def user_list() -> None:
    """Every user: role, grids, state, whether a password and a token are set."""
    with _migrated_engine() as engine, engine.connect() as conn:
        users = user_store.list_users(conn)
    table = Table("name", "role", "grids", "state", "password", "token issued", "created")
    for u in users:
        table.add_row(
            u.name,
            u.role,
            " ".join(u.grid_codes),
            "disabled" if u.disabled else "active",
            "yes" if u.has_password else "no",
            u.token_issued_at.isoformat(timespec="seconds") if u.token_issued_at else "-",
            u.created_at.isoformat(timespec="seconds"),
        )
    out.print(table)


def _change_user(name: str, action: str) -> str | None:
    with _migrated_engine() as engine:
        try:
            with engine.begin() as conn:
                if action == "rotate":
                    return user_store.rotate_token(conn, name)
                if action == "password":
                    user_store.set_password(conn, name, _password_from_stdin())
                else:
                    user_store.set_disabled(conn, name, action == "disable")
        except user_store.UserError as exc:
            raise _fail(str(exc)) from exc
    return None


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument()]) -> None:
    """Refuse the user's tokens and logins from now on (the audit trail keeps the name)."""
    _change_user(name, "disable")
    out.print(f"user {name} disabled")


@user_app.command("enable")
def user_enable(name: Annotated[str, typer.Argument()]) -> None:
    """Accept a disabled user again."""
    _change_user(name, "enable")
    out.print(f"user {name} enabled")


@user_app.command("rotate-token")
def user_rotate_token(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke the user's API token and print a new one (the old one fails at once)."""
    token = _change_user(name, "rotate")
    err.print(f"new token for {name} (shown once):", highlight=False)
    sys.stdout.write(f"{token}\n")


@user_app.command("set-password")
def user_set_password(name: Annotated[str, typer.Argument()]) -> None:
    """Set the user's web-login password, read from stdin."""
    _change_user(name, "password")
    out.print(f"password of {name} set")


def _changed_keys(entry: AuditEntry) -> str:
    before, after = entry.old or {}, entry.new or {}
    if entry.action != "update":
        return ""
    keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    return ", ".join(k for k in keys if k not in ("version", "updated_at"))


@app.command()
def audit(
    since: Annotated[
        str, typer.Option(help="ISO date or time, e.g. 2026-11-01 or 2026-11-01T08:00+08:00")
    ],
    layer: Annotated[str | None, typer.Option(help="Only this layer")] = None,
    format: Annotated[Literal["table", "json"], typer.Option()] = "table",
) -> None:
    """The audit trail since a moment: who changed what, when, through what (json: old/new)."""
    if layer is not None:
        CATALOG.get(layer)
    try:
        moment = datetime.fromisoformat(since)
    except ValueError as exc:
        raise _fail(f"--since {since!r} is not an ISO 8601 date or time") from exc
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is this machine's local time
    with _migrated_engine() as engine, engine.connect() as conn:
        entries = changes_since(conn, moment, layer)
    if format == "json":
        for entry in entries:
            sys.stdout.write(entry.model_dump_json() + "\n")
        return
    table = Table("at", "actor", "source", "layer", "id", "action", "changed")
    for e in entries:
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            e.actor or "-",
            e.source,
            e.layer,
            "" if e.row_id is None else str(e.row_id),
            e.action,
            _changed_keys(e),
        )
    out.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the HTTP service (uvicorn)."""
    import uvicorn

    from gis_api.app import create_app

    settings = Settings()
    if not settings.database_url:
        cluster.ensure_running(settings.cluster())
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


def main() -> None:
    """Entry point: domain errors become one clear line and exit code 2."""
    try:
        app()
    except InvalidImport as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except (UnknownLayer, UnknownCrs, InvalidProfile, CheckError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except cluster.ClusterError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except OperationalError as exc:
        err.print(f"[red]error:[/red] cannot reach the database: {exc.orig}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
