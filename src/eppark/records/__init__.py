"""Records people rely on: who changed what, why, and how they read in the back office.

Not a Django app: plain modules used by the stays, orders and console apps.
"""
