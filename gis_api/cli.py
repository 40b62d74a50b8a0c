"""`civic-gis`: the command line (typer).  Command names are a contract."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
from data.importer import Mode, import_file, prepare_rows, write_rows
from data.problems import ImportReport, InvalidImport
from data.sources import read_source
from gis_api import cluster
from gis_api.database import database_url, make_engine
from gis_api.settings import Settings
from layers import migrate
from layers.catalog import CATALOG, UnknownLayer
from layers.checks.framework import CheckError
from layers.profile import InvalidProfile, load_profile
from layers.school_zones import sync_zone_distances

app = typer.Typer(help="civic-gis: 文明城市创建 GIS 巡查服务", no_args_is_help=True)
db_app = typer.Typer(
    help="The project-managed PostgreSQL cluster and migrations.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
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
        report = import_file(
            engine,
            file,
            spec,
            crs,
            chosen,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    _print_reports([report])


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
) -> None:
    """Run campaign checks: verdicts, figures and evidence."""
    from layers.checks import RULES
    from layers.checks.reports import run_check

    profile = load_profile(Settings().profile)
    rule_ids = [rule] if rule else list(RULES)
    with _migrated_engine() as engine, engine.connect() as conn:
        reports = [run_check(conn, profile, r, scope) for r in rule_ids]
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
        table.add_row(
            r["rule"], r["name"]["zh"], r["scope"], verdict, str(len(r["evidence"]["features"]))
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
