"""Drug entries -> active substance, and which rows are the watched drug.

`medicinalproduct` is free text (brands, misspellings, foreign names, strengths). The target drug must be
found under all of them or its reports are missed, so matching tries, in order: openFDA's harmonized
`openfda.generic_name`, the reported `activesubstance.activesubstancename`, then FDA's list of real
product-name variants. Whatever matches nothing is kept and labelled `unmapped`, never dropped, and
`unmapped_products` lists it for the run report so the variant list can grow.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

VARIANTS_FILE = Path(__file__).resolve().parent / "data" / "isotretinoin_medicinalproduct_variants.csv"

# Transient columns the flattener may pass in; dropped from the result.
GENERIC_NAME_COLUMN = "openfda_generic_name"  # openfda.generic_name values joined by "|"
ACTIVE_SUBSTANCE_COLUMN = "activesubstancename"
TRANSIENT_COLUMNS = (GENERIC_NAME_COLUMN, ACTIVE_SUBSTANCE_COLUMN)

MATCHES = ("openfda_generic_name", "activesubstance", "product_variant", "unmapped")

_PARENS = re.compile(r"\([^)]*\)")
_STRENGTH = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:MG|MCG|UG|G|ML|%)\b")
_NOISE_WORDS = re.compile(r"\b(?:CAPSULES?|CAPS?|TABLETS?|TABS?|SOFT|ORAL|GENERIC|UNKNOWN|USP|NOS)\b")
_NON_ALNUM = re.compile(r"[^A-Z0-9]+")
_SPACES = re.compile(r"\s+")
_SEP = "\x1f"


def product_key(name: str) -> str:
    """Exact-match key: upper case, single spaces."""
    return _SPACES.sub(" ", name.upper()).strip()


def product_stem(name: str) -> str:
    """Name without parenthesised text, strengths and dosage-form words: 'ACCUTANE 40 MG CAPSULES' -> 'ACCUTANE'."""
    text = _PARENS.sub(" ", name.upper())
    text = _STRENGTH.sub(" ", text)
    text = _NOISE_WORDS.sub(" ", text)
    return _NON_ALNUM.sub(" ", text).strip()


@lru_cache(maxsize=4)
def load_variants(path: Path = VARIANTS_FILE) -> dict[str, str]:
    """medicinalproduct key -> active substance, from FDA's observed variants file."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return {
            product_key(row["medicinalproduct"]): product_key(row["activesubstancename"])
            for row in csv.DictReader(handle)
            if row.get("medicinalproduct") and row.get("activesubstancename")
        }


def _drug_names(drug_config: Mapping[str, Any]) -> tuple[str, set[str], dict[str, str]]:
    target = product_key(str(drug_config["active_substance"]))
    generic = {product_key(str(n)) for n in drug_config.get("generic_names", [])} | {target}
    variants = dict(load_variants())
    for name in [*drug_config.get("product_names", []), *generic]:
        variants[product_key(str(name))] = target
    stems = {product_stem(k): v for k, v in variants.items() if product_stem(k)}
    for key, value in stems.items():
        variants.setdefault(key, value)
    return target, generic, variants


def _map_generic(joined: str, target: str, generic: set[str]) -> str | None:
    """Pick one substance from openfda.generic_name, which lists every matched label's generic name.

    'IBUPROFEN|IBUPROFEN 200 MG|IBUPFROFEN' -> 'IBUPROFEN': the name matching the reported product, else
    the most frequent name once strengths and dosage forms are stripped (ties: the shortest).
    """
    names_part, _, product = joined.partition(_SEP)
    names = [product_key(n) for n in names_part.split("|") if n.strip()]
    if not names:
        return None
    stems = [product_stem(n) or n for n in names]
    if any(n in generic or s in generic for n, s in zip(names, stems, strict=True)):
        return target
    product_stem_ = product_stem(product) if product else ""
    if product_stem_ in stems:
        return product_stem_
    counts = {s: stems.count(s) for s in stems}
    return min(counts, key=lambda s: (-counts[s], len(s), s))


def normalize_drugs(drugs: pd.DataFrame, drug_config: Mapping[str, Any]) -> pd.DataFrame:
    """Fill active_substance, substance_match and is_target_drug; drop the transient name columns.

    Works per distinct name, so a million drug rows cost a few thousand lookups.
    """
    target, generic, variants = _drug_names(drug_config)
    out = drugs.copy()
    n = len(out)
    substance = np.full(n, None, dtype=object)
    match = np.full(n, "unmapped", dtype=object)
    pending = np.ones(n, dtype=bool)

    def fill(values: pd.Series | None, label: str, mapper) -> None:
        if values is None:
            return
        values = values.astype("string")
        usable = pending & values.notna().to_numpy() & (values.str.strip() != "").fillna(False).to_numpy()
        if not usable.any():
            return
        codes, uniques = pd.factorize(values[usable])
        mapped = np.array([mapper(str(u)) for u in uniques] + [None], dtype=object)
        result = mapped[codes]
        hit = np.array([r is not None for r in result], dtype=bool)
        idx = np.flatnonzero(usable)[hit]
        substance[idx] = result[hit]
        match[idx] = label
        pending[idx] = False

    product = out["medicinalproduct"].astype("string") if "medicinalproduct" in out.columns else None
    if GENERIC_NAME_COLUMN in out.columns:
        generic_names = out[GENERIC_NAME_COLUMN].astype("string")
        with_product = generic_names + _SEP + (product.fillna("") if product is not None else "")
        fill(with_product.mask(generic_names.isna()), "openfda_generic_name",
             lambda v: _map_generic(v, target, generic))  # fmt: skip
    fill(
        out[ACTIVE_SUBSTANCE_COLUMN] if ACTIVE_SUBSTANCE_COLUMN in out.columns else None,
        "activesubstance",
        lambda v: target if product_key(v) in generic else (product_key(v) or None),
    )
    fill(product, "product_variant", lambda v: variants.get(product_key(v)) or variants.get(product_stem(v)))

    out["active_substance"] = pd.array(substance, dtype="string")
    out["substance_match"] = pd.array(match, dtype="string")
    out["is_target_drug"] = pd.array(substance == target, dtype="boolean")
    return out.drop(columns=[c for c in TRANSIENT_COLUMNS if c in out.columns])


def unmapped_products(drugs: pd.DataFrame) -> pd.DataFrame:
    """Product names that matched no substance, with row counts, most frequent first."""
    names = drugs.loc[drugs["substance_match"] == "unmapped", "medicinalproduct"].astype("string")
    counts = names.fillna("<missing>").value_counts(sort=True)
    frame = pd.DataFrame({"product": counts.index.astype("string"), "count": counts.to_numpy(dtype="int64")})
    return frame.sort_values(["count", "product"], ascending=[False, True], ignore_index=True)
