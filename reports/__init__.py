"""Reports: the weekly claim-by-claim evidence report (HTML and Markdown)."""
