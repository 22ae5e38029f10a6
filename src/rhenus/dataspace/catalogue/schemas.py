"""Wire formats of the catalogue's own API (``/api/v1/datasets``); the DSP catalog binding's
JSON-LD is built in :mod:`.dsp`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The EU Publications Office data themes (http://publications.europa.eu/resource/authority/data-theme).
EU_THEMES = {
    "AGRI": "Agriculture, fisheries, forestry and food",
    "ECON": "Economy and finance",
    "EDUC": "Education, culture and sport",
    "ENER": "Energy",
    "ENVI": "Environment",
    "GOVE": "Government and public sector",
    "HEAL": "Health",
    "INTR": "International issues",
    "JUST": "Justice, legal system and public safety",
    "OP_DATPRO": "Provisional data",
    "REGI": "Regions and cities",
    "SOCI": "Population and society",
    "TECH": "Science and technology",
    "TRAN": "Transport",
}


class AccessPolicy(BaseModel):
    """Who may see a dataset in the catalogue (its offers then say who may *use* it)."""

    eu_only: bool = Field(False, description="Only participants headquartered in the EU.")
    countries: list[str] | None = Field(None, description="Only these ISO 3166-1 countries.")
    participants: list[str] | None = Field(None, description="Only these participant DIDs.")


class DatasetIn(BaseModel):
    kind: Literal["file", "service"] = "file"
    title: dict[str, str] = Field(description="By language: fr, de, en.", min_length=1)
    description: dict[str, str] = Field(default_factory=dict)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    theme: str = Field(description="EU data theme code, e.g. GOVE, HEAL, TRAN.")
    license: str = Field(min_length=3, max_length=500)
    publisher: str = Field(min_length=1, max_length=255)
    spatial: str = Field(default="", max_length=255)
    temporal_start: str = Field(default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    temporal_end: str = Field(default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    media_type: str = Field(default="", max_length=128)
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://", max_length=2000)
    access: AccessPolicy = Field(default_factory=AccessPolicy)

    @field_validator("title", "description")
    @classmethod
    def _languages(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"fr", "de", "en"}
        if unknown:
            raise ValueError(f"languages must be fr, de or en, not {sorted(unknown)}")
        return value

    @field_validator("theme")
    @classmethod
    def _theme(cls, value: str) -> str:
        if value not in EU_THEMES:
            raise ValueError(f"not an EU data theme code; one of {sorted(EU_THEMES)}")
        return value


class OfferIn(BaseModel):
    """An ODRL policy (JSON-LD object) offered for the dataset; stored faithfully."""

    policy: dict[str, Any]


class OfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    policy: dict[str, Any]


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    title: dict[str, str]
    description: dict[str, str]
    keywords: list[str]
    theme: str
    license: str
    publisher: str
    media_type: str
    byte_size: int | None
    sha256: str | None
    access: dict[str, Any]
    version: int
    status: str
    updated_at: datetime


# -- search ---------------------------------------------------------------------------------
FACETS = ("publisher", "country", "theme", "license", "format")


class SearchQuery(BaseModel):
    q: str = Field("", max_length=500, description="Words to find, in any of fr, de, en.")
    publisher: list[str] = Field(default_factory=list)
    country: list[str] = Field(default_factory=list)
    theme: list[str] = Field(default_factory=list)
    license: list[str] = Field(default_factory=list)
    format: list[str] = Field(default_factory=list)
    origin: list[str] = Field(default_factory=list, description="Publishing participant DIDs.")
    sort: Literal["relevance", "date"] = "relevance"
    page: int = Field(1, ge=1, le=10_000)
    per_page: int = Field(20, ge=1, le=100)


class FacetValue(BaseModel):
    value: str
    count: int


class Hit(BaseModel):
    origin: str
    dataset_id: str
    title: dict[str, str]
    description: dict[str, str]
    keywords: list[str]
    publisher: str
    country: str
    theme: str
    license: str
    format: str
    modified: datetime
    fetched_at: datetime
    offers: int


class SearchResult(BaseModel):
    total: int
    page: int
    per_page: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
