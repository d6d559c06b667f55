"""The alarm engine: the one authoritative place where alarms are decided.

It follows tag changes from Redis, evaluates each configured alarm with
domain.alarms, and is the only writer of alarm state (sl:alarms).
Operator actions arrive as commands on a stream and are answered per request.
"""
