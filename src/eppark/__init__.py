"""EP Park: the cloud brain behind unattended parking-lot robots (EP君)."""

__version__ = "0.1.0"
