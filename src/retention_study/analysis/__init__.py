"""The analysis: block models, head-to-head, verdict, segments, reasons, claims, and the typed Results."""
