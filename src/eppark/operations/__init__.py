"""Running EP Park: ``eppark serve`` and ``eppark demo``."""
