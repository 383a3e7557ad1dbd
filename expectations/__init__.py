"""Great Expectations suites (JSON) and the runner that applies them to each stage's tables."""
