"""gexbot: a paper-trading daemon for index-options regimes."""

__version__ = "0.1.0"
