"""Send-time optimization: per-contact Thompson sampling over local-time slots.

Each contact has a Beta posterior per local-time slot (12 two-hour slots by default,
optionally apart for weekdays and weekends), from the account's fitted prior plus the
contact's last year of sends and responses. A send-time decision picks, inside the
campaign's delivery window and the recipient's sending hours, the slot with the highest
posterior draw, and a second within it. Measurement keeps a randomized control group
per launch and estimates lift in ways that survive weekday effects.

Imports only the standard library (including `zoneinfo`) and numpy.
"""
