"""One typed settings object, read from the environment, with defaults that run offline."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SAMPLE = PROJECT_ROOT / "sample" / "data" / "drug-event-0001-of-0001.json.zip"
DEFAULT_CLAIMS_FILE = PROJECT_ROOT / "claims" / "claims.yaml"
DEFAULT_DRUGS_FILE = PROJECT_ROOT / "pv" / "drugs.yaml"

SOURCES = ("sample", "openfda")


@dataclass(frozen=True)
class Settings:
    """Everything a pipeline run needs to know, resolved once per task."""

    data_dir: Path = PROJECT_ROOT / "var"
    source: str = "sample"
    sample_path: Path = BUNDLED_SAMPLE
    drug: str = "isotretinoin"
    drugs_file: Path = DEFAULT_DRUGS_FILE
    claims_file: Path = DEFAULT_CLAIMS_FILE
    openfda_base_url: str = "https://api.fda.gov"
    openfda_api_key: str | None = field(default=None, repr=False)
    rate_limit_per_minute: int = 240
    daily_quota: int | None = None
    refresh: bool = False
    # How long openFDA's meta.last_updated, once asked, is trusted without asking again. openFDA
    # changes it quarterly; within this window reruns and backfills of fetched data send no request.
    data_version_ttl_hours: float = 24.0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"PV_SOURCE must be one of {SOURCES}, got {self.source!r}")

    @property
    def is_live(self) -> bool:
        return self.source == "openfda"

    def with_overrides(self, **changes: object) -> Settings:
        clean = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **clean)


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build Settings from PV_* / OPENFDA_* environment variables."""
    env = dict(os.environ) if env is None else env
    quota = env.get("PV_DAILY_QUOTA")
    return Settings(
        data_dir=Path(env["PV_DATA_DIR"]).expanduser().resolve() if env.get("PV_DATA_DIR") else PROJECT_ROOT / "var",
        source=env.get("PV_SOURCE", "sample"),
        sample_path=Path(env["PV_SAMPLE_PATH"]).expanduser().resolve() if env.get("PV_SAMPLE_PATH") else BUNDLED_SAMPLE,
        drug=env.get("PV_DRUG", "isotretinoin"),
        drugs_file=Path(env["PV_DRUGS_FILE"]) if env.get("PV_DRUGS_FILE") else DEFAULT_DRUGS_FILE,
        claims_file=Path(env["PV_CLAIMS_FILE"]) if env.get("PV_CLAIMS_FILE") else DEFAULT_CLAIMS_FILE,
        openfda_base_url=env.get("OPENFDA_BASE_URL", "https://api.fda.gov").rstrip("/"),
        openfda_api_key=env.get("OPENFDA_API_KEY") or None,
        rate_limit_per_minute=int(env.get("PV_RATE_LIMIT_PER_MINUTE", "240")),
        daily_quota=int(quota) if quota else None,
        refresh=env.get("PV_REFRESH", "").lower() in {"1", "true", "yes"},
        data_version_ttl_hours=float(env.get("PV_DATA_VERSION_TTL_HOURS", "24")),
    )
