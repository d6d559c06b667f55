"""Alarms to ISA-18.2 / IEC 62682, as pure functions: no I/O, no clock, no Redis.

- records: the states (A-G, LU, LA), one alarm's record, one journal transition.
- conditions: when is each alarm type's condition true (limits, deviation, rate of change,
  discrete, bad quality) and design suppression.
- state_model: the transitions T1-T15 and the operator actions that drive them.
- journal: what one journal entry holds and how it is searched.
- performance: alarm-system figures over a period (EEMUA 191 / ISA-18.2).
"""
