"""openFDA drug/event extractor (issue 3). See docs/extractor.md.

Modules (import what you need; nothing is imported here so the test server stays light):
- query:      drug_search, receivedate_window, received_before, load_drug_config
- client:     DrugEventClient, ApiResponse, LiveClient, OfflineClient, make_client, RetryPolicy
- extract:    extract_window, extract_history, extract_background_counts
- engine:     Engine (in-memory openFDA query engine), load_bulk_file
- limiter:    SharedRateLimiter, DailyQuotaExceeded
- testserver: OpenFDATestServer, FaultPlan (`python -m extractors.openfda.testserver`)
- synthetic:  synthetic_reports (cheap generated reports for paging tests and the benchmark)
"""
