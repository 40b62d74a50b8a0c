"""Service settings, from the environment (prefix CIVIC_GIS_) or a .env file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    def cluster(self) -> ClusterConfig:
        """The project-managed cluster these settings describe."""
        return ClusterConfig(
            state_dir=self.state_dir.resolve(), port=self.pg_port, bin_dir=self.pg_bin_dir
        )
