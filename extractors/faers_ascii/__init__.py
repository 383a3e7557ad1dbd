"""FDA's quarterly FAERS/AERS ASCII files as a source of the canonical staged tables.

    quarter = read_quarter("faers_ascii_2017q2.zip")           # 7 tables, quarantine, line accounting
    result = deduplicate([q1, q2, ...], deleted_caseids=...)    # latest caseversion per caseid
    batch = normalize_faers(result, drug_config=cfg)            # reports, drugs, reactions (+ extras)
    ingest([q1, q2], data_dir)                                  # all of the above, staged per quarter
    write_background_counts(staged_dirs, "counts.csv")         # drug x PT counts for EBGM's prior

See docs/sources.md for the conventions (dates, time to onset, doses, deduplication).
"""

from extractors.faers_ascii.background import (
    background_counts,
    background_counts_from_staged,
    write_background_counts,
)
from extractors.faers_ascii.dedup import DEDUP_STEPS, DedupResult, deduplicate
from extractors.faers_ascii.normalize import FaersBatch, normalize_faers
from extractors.faers_ascii.reader import FaersFormatError, RawQuarter, TableLoad, read_quarter, read_table
from extractors.faers_ascii.stage import extract_quarter, ingest, stage_quarters

__all__ = [
    "DEDUP_STEPS",
    "DedupResult",
    "FaersBatch",
    "FaersFormatError",
    "RawQuarter",
    "TableLoad",
    "background_counts",
    "background_counts_from_staged",
    "deduplicate",
    "extract_quarter",
    "ingest",
    "normalize_faers",
    "read_quarter",
    "read_table",
    "stage_quarters",
    "write_background_counts",
]
