"""Presenting a run: plain words, numbers as text and figures, read from the Results only."""
