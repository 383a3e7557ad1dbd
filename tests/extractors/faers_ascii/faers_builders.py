"""Build small FAERS quarterly zips in FDA's own shape ('$', CRLF, upper-case headers) for golden tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

DEMO = [
    "primaryid",
    "caseid",
    "caseversion",
    "i_f_code",
    "event_dt",
    "mfr_dt",
    "init_fda_dt",
    "fda_dt",
    "rept_cod",
    "auth_num",
    "mfr_num",
    "mfr_sndr",
    "lit_ref",
    "age",
    "age_cod",
    "age_grp",
    "sex",
    "e_sub",
    "wt",
    "wt_cod",
    "rept_dt",
    "to_mfr",
    "occp_cod",
    "reporter_country",
    "occr_country",
]
DRUG = [
    "primaryid",
    "caseid",
    "drug_seq",
    "role_cod",
    "drugname",
    "prod_ai",
    "val_vbm",
    "route",
    "dose_vbm",
    "cum_dose_chr",
    "cum_dose_unit",
    "dechal",
    "rechal",
    "lot_num",
    "exp_dt",
    "nda_num",
    "dose_amt",
    "dose_unit",
    "dose_form",
    "dose_freq",
]
REAC = ["primaryid", "caseid", "pt", "drug_rec_act"]
OUTC = ["primaryid", "caseid", "outc_cod"]
RPSR = ["primaryid", "caseid", "rpsr_cod"]
THER = ["primaryid", "caseid", "dsg_drug_seq", "start_dt", "end_dt", "dur", "dur_cod"]
INDI = ["primaryid", "caseid", "indi_drug_seq", "indi_pt"]
HEADERS = {"DEMO": DEMO, "DRUG": DRUG, "REAC": REAC, "OUTC": OUTC, "RPSR": RPSR, "THER": THER, "INDI": INDI}


def demo(primaryid: int, caseversion: int, *, caseid: int | None = None, **values: str) -> dict[str, str]:
    """A DEMO row; caseid defaults to primaryid without its last digit, as FDA builds primaryid."""
    row = {
        "primaryid": str(primaryid),
        "caseid": str(caseid if caseid is not None else primaryid // 10),
        "caseversion": str(caseversion),
        "i_f_code": "I" if caseversion == 1 else "F",
        "event_dt": "20170301",
        "init_fda_dt": "20170310",
        "fda_dt": "20170410",
        "rept_cod": "EXP",
        "age": "19",
        "age_cod": "YR",
        "sex": "F",
        "wt": "60",
        "wt_cod": "KG",
        "rept_dt": "20170410",
        "occr_country": "US",
    }
    row.update(values)
    return row


def drug(primaryid: int, seq: int, name: str, role: str = "PS", **values: str) -> dict[str, str]:
    row = {"primaryid": str(primaryid), "caseid": str(primaryid // 10), "drug_seq": str(seq), "role_cod": role,
           "drugname": name, "prod_ai": values.pop("prod_ai", "")}  # fmt: skip
    row.update(values)
    return row


def reac(primaryid: int, pt: str) -> dict[str, str]:
    return {"primaryid": str(primaryid), "caseid": str(primaryid // 10), "pt": pt}


def ther(
    primaryid: int, seq: int, start: str = "", end: str = "", dur: str = "", dur_cod: str = ""
) -> dict[str, str]:
    return {"primaryid": str(primaryid), "caseid": str(primaryid // 10), "dsg_drug_seq": str(seq), "start_dt": start,
            "end_dt": end, "dur": dur, "dur_cod": dur_cod}  # fmt: skip


def outc(primaryid: int, code: str = "OT") -> dict[str, str]:
    return {"primaryid": str(primaryid), "caseid": str(primaryid // 10), "outc_cod": code}


def line(table: str, row: dict[str, str]) -> str:
    return "$".join(row.get(col, "") for col in HEADERS[table])


def table_text(table: str, rows: list[dict[str, str] | str], *, trailing: bool = False) -> str:
    """Upper-case header and CRLF as FDA publishes; a str row is written verbatim (malformed lines)."""
    end = "$" if trailing else ""
    lines = ["$".join(col.upper() for col in HEADERS[table]) + end]
    lines += [r if isinstance(r, str) else line(table, r) + end for r in rows]
    return "\r\n".join(lines) + "\r\n"


def write_quarter(
    path: Path,
    quarter: str,
    tables: dict[str, list[dict[str, str] | str]],
    *,
    deleted: list[int] | None = None,
    encoding: str = "latin-1",
) -> Path:
    """Write faers_ascii_<quarter>.zip with ascii/<TABLE><yyQn>.txt members (missing tables: header only)."""
    yy_q = quarter[2:4] + quarter[4:].upper()  # '2017Q2' -> '17Q2'
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in HEADERS:
            archive.writestr(
                f"ascii/{table}{yy_q}.txt", table_text(table, tables.get(table, [])).encode(encoding)
            )
        if deleted is not None:
            archive.writestr(f"Deleted/DELETE{yy_q}.txt", "\r\n".join(str(c) for c in deleted) + "\r\n")
    return path
