"""The streaming parser yields exactly the records json.load would, with memory bounded by the chunk."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from conftest import SAMPLE, write_bulk

from extractors.openfda_bulk.stream import BulkFile, BulkFormatError, JsonArrayStream, iter_records


def test_bundled_bulk_sample_streams_identically():
    bulk = BulkFile(SAMPLE)
    streamed = list(bulk)
    with zipfile.ZipFile(SAMPLE) as archive:
        document = json.loads(archive.read(archive.namelist()[0]))
    assert streamed == document["results"]
    assert bulk.records_read == 24_000
    assert bulk.meta == document["meta"] and bulk.last_updated == "2026-10-28"


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 7, 64, 4096])
def test_chunk_boundaries_anywhere(real_records, chunk_chars):
    document = {"meta": {"last_updated": "2026-01-02", "n": [1, 2.5e3]}, "results": real_records[:5] + [
        {"n": 12345.678, "e": -1e-5, "t": True, "z": None, "s": "a \" $ \\u00e9 \\n"}]}  # fmt: skip
    text = json.dumps(document, indent=2)
    stream = JsonArrayStream(io.StringIO(text), chunk_chars=chunk_chars)
    assert list(stream) == document["results"]
    assert stream.members == {"meta": document["meta"]}


def test_meta_after_results_and_bare_arrays():
    stream = JsonArrayStream(io.StringIO('{"results": [{"a": 1}], "meta": {"last_updated": "x"}}'))
    assert list(stream) == [{"a": 1}] and stream.members["meta"] == {"last_updated": "x"}
    assert list(JsonArrayStream(io.StringIO(" [ ] "))) == []
    assert list(JsonArrayStream(io.StringIO('{"meta": {}, "results": []}'))) == []
    assert list(JsonArrayStream(io.StringIO("[1, 2.5, 3e2]"), chunk_chars=2)) == [1, 2.5, 300.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"meta": {}}', "no 'results' array"),
        ('{"results": [{"a": 1},', "invalid or truncated JSON"),
        ('{"results": [{"a": 1} {"b": 2}]}', "expected ',' or ']'"),
        ('{"results": [{"a": 1}]', "expected ',' or '}'"),
        ("", "expected '{'"),
    ],
)
def test_malformed_documents_fail_with_position(text, message):
    with pytest.raises(BulkFormatError, match=message):
        list(JsonArrayStream(io.StringIO(text), name="x.json"))


def test_memory_is_bounded_by_chunk_not_file():
    """A 4 MB document read in 16 KB chunks never buffers more than a chunk plus one record."""
    record = json.dumps({"safetyreportid": "1", "patient": {"reaction": [{"reactionmeddrapt": "X" * 200}]}})
    text = '{"meta": {}, "results": [' + ",".join([record] * 15_000) + "]}"
    assert len(text) > 4_000_000

    class Watched(io.StringIO):
        largest = 0

    source = Watched(text)
    stream = JsonArrayStream(source, chunk_chars=16_384)
    count = 0
    for _ in stream:
        count += 1
        Watched.largest = max(Watched.largest, len(stream._buf))
    assert count == 15_000
    assert Watched.largest < 16_384 + 2 * len(record)


def test_zip_with_several_json_members_is_refused(tmp_path):
    path = tmp_path / "drug-event-0001-of-0001.json.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.json", "[]")
        archive.writestr("b.json", "[]")
    with pytest.raises(BulkFormatError, match="expected one .json member"):
        list(iter_records(path))


def test_plain_json_file_and_zip(tmp_path, real_records):
    plain = tmp_path / "part.json"
    plain.write_text(json.dumps({"results": real_records}))
    assert list(iter_records(plain)) == real_records
    zipped = write_bulk(tmp_path / "drug-event-0001-of-0001.json.zip", real_records)
    assert list(iter_records(zipped, chunk_chars=1000)) == real_records
