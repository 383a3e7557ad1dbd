from __future__ import annotations

import pandas as pd

from normalization.drugs import load_variants, normalize_drugs, product_stem, unmapped_products


def frame(**columns: list) -> pd.DataFrame:
    return pd.DataFrame({k: pd.array(v, dtype="string") for k, v in columns.items()})


def test_variant_file_is_the_fda_list_of_42_strings() -> None:
    variants = load_variants()
    assert len(variants) == 42
    assert variants["ISOTRETINOIN (ISOTRETINOIN) UNKNOWN"] == "ISOTRETINOIN"
    assert set(variants.values()) == {"ISOTRETINOIN"}


def test_product_stem_drops_strengths_forms_and_parentheses() -> None:
    assert product_stem("Accutane 40 mg capsules") == "ACCUTANE"
    assert product_stem("ISOTRETINOIN (UNKNOWN)") == "ISOTRETINOIN"
    assert product_stem("Zenatane 10MG") == "ZENATANE"


def test_normalize_drugs_prefers_openfda_then_activesubstance_then_variants(drug_config) -> None:
    drugs = frame(
        medicinalproduct=["Claravis", "ISOTRETINION", "ROACUTAN", "ACCUTANE 40 MG CAPSULES", "LIPITOR", "FOO", None],
        openfda_generic_name=["ISOTRETINOIN", None, None, None, "ATORVASTATIN CALCIUM|ATORVASTATIN CALCIUM 10 MG",
                              None, None],
        activesubstancename=[None, "Isotretinoin", None, None, None, None, None],
    )  # fmt: skip
    out = normalize_drugs(drugs, drug_config)
    assert list(out.columns) == ["medicinalproduct", "active_substance", "substance_match", "is_target_drug"]
    assert out["active_substance"].tolist() == [
        "ISOTRETINOIN", "ISOTRETINOIN", "ISOTRETINOIN", "ISOTRETINOIN", "ATORVASTATIN CALCIUM", pd.NA, pd.NA,
    ]  # fmt: skip
    assert out["substance_match"].tolist() == [
        "openfda_generic_name", "activesubstance", "product_variant", "product_variant", "openfda_generic_name",
        "unmapped", "unmapped",
    ]  # fmt: skip
    assert out["is_target_drug"].tolist() == [True, True, True, True, False, False, False]


def test_unmapped_products_counts_names_for_the_report(drug_config) -> None:
    out = normalize_drugs(frame(medicinalproduct=["FOO", "BAR", "FOO", "ACCUTANE", None]), drug_config)
    assert unmapped_products(out).to_dict("records") == [
        {"product": "FOO", "count": 2},
        {"product": "<missing>", "count": 1},
        {"product": "BAR", "count": 1},
    ]
