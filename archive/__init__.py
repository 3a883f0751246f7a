"""Policy Archive: fetch website policies, extract their text, record every change in git."""

__version__ = "0.1.0"
