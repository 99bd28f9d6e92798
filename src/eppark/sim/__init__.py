"""Simulators of the devices EP Park talks to (licence-plate cameras…)."""
