"""openFDA's bulk drug/event downloads as a source of the canonical staged tables.

    manifest = read_manifest("https://api.fda.gov/download.json")   # or a local copy
    for partition in manifest.select(["2004Q1"]):
        stage_partition(partition, data_dir, drug_config=cfg)         # download, stream, normalize, stage
    for record in iter_records("drug-event-0001-of-0003.json.zip"):  # bounded memory, any file size
        ...

Records go through normalization.openfda.normalize_openfda_reports, as on the API path.
"""

from extractors.openfda_bulk.manifest import Manifest, ManifestError, Partition, parse_manifest, read_manifest
from extractors.openfda_bulk.stage import plan_partitions, stage_bulk_file, stage_partition, stage_planned
from extractors.openfda_bulk.stream import BulkFile, BulkFormatError, JsonArrayStream, iter_records

__all__ = [
    "BulkFile",
    "BulkFormatError",
    "JsonArrayStream",
    "Manifest",
    "ManifestError",
    "Partition",
    "iter_records",
    "parse_manifest",
    "plan_partitions",
    "read_manifest",
    "stage_bulk_file",
    "stage_partition",
    "stage_planned",
]
