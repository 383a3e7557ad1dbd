"""Signal statistics engine: disproportionality measures for drug x event pairs.

Modules:
    contingency -- 2x2 tables, expected counts, report counting (openEBGM ``processRaw``).
    measures    -- PRR, ROR, Yates chi-square, IC variants and ``score_table``.
    ebgm        -- MGPS two-gamma prior fit and EBGM / EB05 / EB95 posterior scores.
    rules       -- configurable signal rules (Evans, EMA, WHO-UMC, FDA) and flags.
    trend       -- cumulative-by-quarter scores and first signal quarter per rule.
    cli         -- ``pv signals`` command.

Conventions for zero cells are documented in docs/signals.md. Nothing is re-exported here:
import from the modules (the package also works as a namespace package).
"""
