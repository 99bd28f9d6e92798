"""Provisioning: lots, gates, robots, cameras, passes and staff from one YAML or JSON file."""
