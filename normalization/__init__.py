"""Normalization: source records -> the canonical staged tables (reports, drugs, reactions)."""
