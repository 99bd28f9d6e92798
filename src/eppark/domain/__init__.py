"""The pure domain: gate decisions, tariffs, plates.

Nothing here imports Django or does I/O, and nothing reads the clock: time is
always an argument. The CLI (``eppark decide|fee|plates``), the gate loop and
a robot's offline fallback all call the same functions.
"""
