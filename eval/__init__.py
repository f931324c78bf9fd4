"""Retrieval evaluation: Q&A sets, IR metrics, side-by-side reports."""
