"""Service settings, from the environment (prefix CIVIC_GIS_) or a .env file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis_api.cluster import ClusterConfig


class Settings(BaseSettings):
    """Where the database is, where the project keeps its state, how to serve."""

    model_config = SettingsConfigDict(env_prefix="CIVIC_GIS_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="An existing PostGIS (postgresql+psycopg://...); unset: the project's cluster.",
    )
    state_dir: Path = Field(default=Path("var"), description="Project cluster data and logs.")
    pg_port: int = Field(default=54329, ge=1024, le=65535)
    pg_bin_dir: Path | None = None
    profile: Path | None = Field(default=None, description="City rule profile over the defaults.")
    city_gk_epsg: int = Field(
        default=4552,
        description="The city's CGCS2000 Gauss-Kruger CRS (EPSG:4552 = CM 129E, Mudanjiang).",
    )
    map_basemap_url: str | None = Field(
        default=None,
        description="XYZ tile URL template ({z}/{x}/{y}) of the city's own basemap; unset: none.",
    )
    map_basemap_crs: Literal["WGS84", "GCJ02"] = Field(
        default="WGS84",
        description="The basemap's coordinates: GCJ02 (AMap, Tencent) shifts overlays for display.",
    )
    chromium_path: Path = Field(
        default=Path("/usr/bin/chromium"),
        description="Debian's chromium, driven by playwright for `print-grid` (PDF).",
    )
    check_workers: int = Field(
        # One per core, up to 4: each rule of a run keeps one backend busy.
        default_factory=lambda: max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        le=16,
        description="Connections a multi-rule check run or a scorecard uses side by side.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # --- access (issue 7): closed unless configured open --------------------------------
    auth_public_reads: bool = Field(
        default=False,
        description="Anyone may read layers, tiles, checks and maps; writes always need a user.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Key signing login JWTs; unset: generated once into STATE_DIR/jwt_secret.",
    )
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_attempts_per_minute: int = Field(
        default=5, ge=1, description="Per user name and client address, per process."
    )
    cors_origins: list[str] = Field(
        default=[], description='Origins allowed by CORS, e.g. ["https://gis.example.cn"].'
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )

    def cluster(self) -> ClusterConfig:
        """The project-managed cluster these settings describe."""
        return ClusterConfig(
            state_dir=self.state_dir.resolve(), port=self.pg_port, bin_dir=self.pg_bin_dir
        )
