"""Coverage-guided fuzzing of Shingan's parsers of untrusted input (see fuzz/targets.py)."""
