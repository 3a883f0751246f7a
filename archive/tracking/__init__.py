"""Tracking: the pipeline (fetch → extract → record), its scheduler and runner, imports
and re-extraction, and the read model of what is tracked."""
