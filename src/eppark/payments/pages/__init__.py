"""The drivers' pages: what a phone shows behind the robots' QR codes, and the lot's pay page.

- ``qr``: the four QR flows a robot's ``/q/<token>`` leads to (``eppark.stays.qr_pages``
  checks the token and hands the visit over): unplated entry (a ticket, the gate
  opens), unplated exit, temp quick-pay, monthly renewal;
- ``lot``: ``/lot/<code>/``, pay inside the lot (场内预付) by plate, then leave within
  the exit grace;
- ``result``: ``/pay/<signed order token>/``, where the provider's cashier returns
  the phone: 支付成功, still waiting, or not paid;
- ``common``: amounts (``¥5.00``), times, starting a payment (``eppark.payments.checkout``).

The forms (what a simulated driver posts; every POST carries Django's CSRF token):

- ``/q/<token>`` unplated entry: ``phone`` → 302 back to the same URL, which shows the ticket;
- ``/q/<token>`` unplated exit: ``step=find&phone=…`` → the fee page; ``step=pay&phone=…``
  → 302 to the cashier; ``step=leave&phone=…`` (nothing due) → the gate opens;
- ``/q/<token>`` temp quick-pay: ``step=pay`` / ``step=leave``;
- ``/q/<token>`` renewal: ``step=pay&months=N`` (one of the lot's renewal options);
- ``/lot/<code>/``: ``step=find&plate=…`` → the fee page; ``step=pay&plate=…``.

The cashier (the sandbox's, ``/sandbox/cashier/…``) returns the phone to
``/pay/<token>/``.

Mobile-first, Chinese by default (gettext, context ``driver``), one small
stylesheet of our own (``static/payments/driver.css``), no CDN. Bad input gets a
clear page and changes nothing.
"""
