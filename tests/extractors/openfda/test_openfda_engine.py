"""The in-memory engine answers as api.fda.gov does (status, literal messages, paging, counts)."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qsl, urlsplit

import pytest

from extractors.openfda.engine import Engine, load_bulk_file, parse_query

LU = "2026-01-02"


@pytest.fixture
def engine(real_reports):
    return Engine(real_reports, LU)


def body(response):
    return json.loads(response.body)


def ids(response):
    return [r["safetyreportid"] for r in body(response)["results"]]


def next_query(response) -> dict[str, str]:
    link = response.headers["Link"]
    assert link.endswith('>; rel="next"') and link.startswith("<https://api.fda.gov/drug/event.json?")
    return dict(parse_qsl(urlsplit(link[1 : link.index(">")]).query))


def ambrisentan_ids(reports) -> set[str]:
    return {
        r["safetyreportid"]
        for r in reports
        if any("AMBRISENTAN" in (d.get("openfda") or {}).get("generic_name", []) for d in r["patient"]["drug"])
    }


def test_exact_nested_match_through_lists(engine, real_reports):
    response = engine.handle({"search": 'patient.drug.openfda.generic_name.exact:"AMBRISENTAN"', "limit": "100"})
    assert response.status == 200
    assert set(ids(response)) == ambrisentan_ids(real_reports)
    assert body(response)["meta"]["results"] == {"skip": 0, "limit": 100, "total": 61}
    assert body(response)["meta"]["last_updated"] == LU


def test_exact_is_whole_value_and_case_sensitive_non_exact_is_tokenised(engine):
    exact_lower = engine.handle({"search": 'patient.drug.openfda.generic_name.exact:"ambrisentan"'})
    assert exact_lower.status == 404
    token = engine.handle({"search": "patient.drug.openfda.generic_name:ambrisentan", "limit": "0"})
    assert body(token)["meta"]["results"]["total"] == 61
    # "ASPIRIN 81 MG" holds the token 81 but no whole value "81"
    assert engine.handle({"search": 'patient.drug.openfda.generic_name.exact:"81"'}).status == 404
    token81 = engine.handle({"search": "patient.drug.openfda.generic_name:81", "limit": "0"})
    assert body(token81)["meta"]["results"]["total"] == 3
    phrase = engine.handle({"search": 'patient.drug.openfda.generic_name:"aspirin 81"', "limit": "0"})
    assert body(phrase)["meta"]["results"]["total"] == 3
    assert engine.handle({"search": 'patient.drug.openfda.generic_name:"81 aspirin"'}).status == 404


def test_phrase_reaction_and_or_space_plus(engine, real_reports):
    def with_pt(pt):
        return {r["safetyreportid"] for r in real_reports if any(x["reactionmeddrapt"] == pt for x in r["patient"]["reaction"])}

    a, b = "Dyspnoea", "Headache"
    for search in (
        f'patient.reaction.reactionmeddrapt.exact:"{a}" OR patient.reaction.reactionmeddrapt.exact:"{b}"',
        f'patient.reaction.reactionmeddrapt.exact:"{a}" patient.reaction.reactionmeddrapt.exact:"{b}"',
        f'patient.reaction.reactionmeddrapt.exact:"{a}"+patient.reaction.reactionmeddrapt.exact:"{b}"',
    ):
        response = engine.handle({"search": search, "limit": "100"})
        assert set(ids(response)) == with_pt(a) | with_pt(b), search
    both = engine.handle({"search": f'patient.reaction.reactionmeddrapt.exact:"{a}" AND patient.reaction.reactionmeddrapt.exact:"{b}"', "limit": "100"})
    expected = with_pt(a) & with_pt(b)
    assert (set(ids(both)) if both.status == 200 else set()) == expected


def test_range_with_plus_to_exists_not_and_parentheses(engine, real_reports):
    march = {r["safetyreportid"] for r in real_reports if "20140301" <= r["receivedate"] <= "20140310"}
    for search in ("receivedate:[20140301 TO 20140310]", "receivedate:[20140301+TO+20140310]", "receivedate:[2014-03-01 TO 2014-03-10]"):
        assert set(ids(engine.handle({"search": search, "limit": "100"}))) == march
    no_openfda = {r["safetyreportid"] for r in real_reports if not any(d.get("openfda") for d in r["patient"]["drug"])}
    response = engine.handle({"search": "NOT _exists_:patient.drug.openfda.generic_name", "limit": "100"})
    assert set(ids(response)) == no_openfda
    combo = engine.handle({"search": '(receivedate:[20140301 TO 20140310] AND NOT patient.drug.openfda.generic_name.exact:"AMBRISENTAN")', "limit": "100"})
    assert set(ids(combo)) == march - ambrisentan_ids(real_reports)


def test_default_order_skip_and_link_header(engine, real_reports):
    everything = sorted(r["safetyreportid"] for r in real_reports)
    first = engine.handle({"limit": "30", "skip": "10"})
    assert ids(first) == everything[10:40]
    assert next_query(first) == {"limit": "30", "skip": "40"}
    last = engine.handle({"limit": "30", "skip": "90"})
    assert ids(last) == everything[90:] and "Link" not in last.headers


def test_search_after_chain_covers_every_report_once(engine, real_reports):
    params = {"search": "receivedate:[20000101 TO 20991231]", "limit": "7"}
    seen: list[str] = []
    while True:
        response = engine.handle(params)
        if response.status == 404:
            break
        seen += ids(response)
        if "Link" not in response.headers:
            break
        params = next_query(response)
        assert params["search_after"].startswith("0=")
    assert seen == sorted(r["safetyreportid"] for r in real_reports)


def test_search_after_cursor_encoding_is_qs_style(engine, real_reports):
    response = engine.handle({"limit": "2", "sort": "receivedate:asc"})
    link = response.headers["Link"]
    # qs.stringify(sortValues, {delimiter: ';'}) then URL-encoded: 0=<millis>;1=<uid>
    assert "search_after=0%3D" in link and "%3B1%3D" in link
    cursor = next_query(response)["search_after"]
    millis, uid = (p.split("=", 1)[1] for p in cursor.split(";"))
    assert int(millis) % 86_400_000 == 0
    assert uid == ids(response)[-1]


def test_full_last_page_still_links_and_target_is_404(real_reports):
    engine = Engine(real_reports[:20], LU)
    page = engine.handle({"limit": "10"})
    page2 = engine.handle(next_query(page))
    assert len(ids(page2)) == 10 and "Link" in page2.headers  # total (20) != len(hits) (10)
    page3 = engine.handle(next_query(page2))
    assert page3.status == 404 and body(page3) == {"error": {"code": "NOT_FOUND", "message": "No matches found!"}}


def test_limit_zero_and_not_found(engine):
    zero = engine.handle({"search": "receivedate:20080707", "limit": "0"})
    assert zero.status == 200 and body(zero)["results"] == [] and body(zero)["meta"]["results"]["total"] == 1
    missing = engine.handle({"search": "receivedate:19990101", "limit": "0"})
    assert missing.status == 404 and body(missing)["error"]["message"] == "No matches found!"
    nothing = engine.handle({"search": "receivedate:19990101", "count": "receivedate"})
    assert nothing.status == 404 and body(nothing)["error"]["message"] == "Nothing to count"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"api_key": "x"}, "Invalid parameter: api_key"),
        ({"limit": "ten"}, "Invalid limit parameter value."),
        ({"limit": "-1"}, "Invalid limit parameter value."),
        ({"skip": "x"}, "Invalid skip parameter value."),
        ({"skip": "25001"}, "Skip value must 25000 or less."),
        ({"limit": "1001"}, "Limit cannot exceed 1000 results for search requests. Use the skip or search_after param to get additional results."),
        ({"count": "receivedate", "limit": "1001"}, "Limit cannot exceed 1000 results for count requests."),
        ({"count": "receivedate", "skip": "5"}, "Should not use skip param when using count."),
        ({"search_after": "0=1", "skip": "5"}, "The skip parameter is not supported when using search_after."),
        ({"search": "a:b*"}, "Search not supported: a:b*"),
        ({"search": 'x:"a&b"'}, "Search not supported: x:&quot;a&amp;b&quot;"),
        ({"sort": "patient.patientsex:asc"}, "Sorting allowed by non-analyzed fields only: patient.patientsex"),
    ],
)
def test_bad_requests_carry_the_servers_literal_message(engine, params, message):
    response = engine.handle(params)
    assert response.status == 400
    assert body(response) == {"error": {"code": "BAD_REQUEST", "message": message}}
    assert response.body.startswith(b'{\n  "error": {\n    "code": "BAD_REQUEST"')


def test_malformed_query_is_a_server_error_like_elasticsearch(engine):
    response = engine.handle({"search": "receivedate:[2014 TO"})
    assert response.status == 500
    assert body(response)["error"]["code"] == "SERVER_ERROR"
    assert body(response)["error"]["message"] == "Check your request and try again"


def test_count_exact_is_document_counts_desc_cut_to_limit(engine, real_reports):
    expected = Counter()
    for r in real_reports:
        expected.update({x["reactionmeddrapt"] for x in r["patient"]["reaction"]})
    ranked = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
    response = engine.handle({"count": "patient.reaction.reactionmeddrapt.exact", "limit": "5"})
    assert body(response)["results"] == [{"term": t, "count": c} for t, c in ranked[:5]]
    assert "results" not in body(response)["meta"]
    default = engine.handle({"count": "patient.reaction.reactionmeddrapt.exact"})
    assert len(body(default)["results"]) == min(100, len(expected))


def test_count_date_field_gives_daily_time_buckets(engine, real_reports):
    response = engine.handle({"count": "receivedate"})
    days = Counter(r["receivedate"] for r in real_reports)
    assert body(response)["results"] == [{"time": d, "count": days[d]} for d in sorted(days)]


def test_count_restricted_by_search(engine, real_reports):
    response = engine.handle({"search": 'patient.drug.openfda.generic_name.exact:"AMBRISENTAN"', "count": "patient.drug.openfda.generic_name.exact", "limit": "1"})
    assert body(response)["results"] == [{"term": "AMBRISENTAN", "count": 61}]


def test_parser_precedence_and_groups():
    tree = parse_query('a:1 b:2 AND c:(x y) NOT d:"p q"')
    assert type(tree).__name__ == "Or"
    assert parse_query("_missing_:x") == parse_query("NOT _exists_:x")


def test_load_bulk_zip_reads_meta(real_bulk):
    meta, reports = load_bulk_file(real_bulk)
    assert meta["last_updated"] == "2026-01-02" and len(reports) == 100
