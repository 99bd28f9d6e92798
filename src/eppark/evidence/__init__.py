"""Evidence files (gate photos, plate-read images, abnormal-open evidence) made visible.

Files live in Django's default storage and are never served by path. They are
reached by the record they belong to:

- staff of the record's lot: ``/evidence/<kind>/<id>/<field>/`` (``views.staff_file``),
  checked against the user's lots (``accounts.scoping``) and view permission;
- robots and drivers' phones: a signed, expiring link ``/evidence/s/<token>/``
  under ``EPPARK_PUBLIC_URL`` (``links``), minted by the server when it sends one.

A package of its own (no models, not an installed app) because evidence belongs
to stays, devices and the console alike; ``admin`` holds the back office's
thumbnail helper.
"""
