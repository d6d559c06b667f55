"""Operator actions on alarms, sent to the engine through Redis and answered per request.

The web app never changes alarm state itself: it checks the user's role, then
asks the engine (the single writer) and waits for the answer.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from tag_store import keys
from tag_store.action_results import wait_for_answer


# What an operator (or engineer) can ask of an alarm; web/roles.py says who may ask what.
ACTIONS = ("acknowledge", "reset", "shelve", "unshelve", "remove_from_service", "return_to_service")


@dataclass(frozen=True, slots=True)
class AlarmCommand:
    request_id: str
    action: str  # one of ACTIONS
    alarm_id: str
    user: str
    comment: str | None = None
    # shelve only: how long, or until the condition clears (one-shot)
    duration_s: float | None = None
    one_shot: bool = False


# A refusal's kind, where a caller answers it differently (the API: 404, 504); other refusals have none.
UNKNOWN_ALARM = "unknown_alarm"
NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    request_id: str
    accepted: bool
    reason: str = ""
    refused_as: str = ""  # "", UNKNOWN_ALARM or NO_ANSWER


def unknown_alarm(command: AlarmCommand) -> CommandOutcome:
    return CommandOutcome(command.request_id, False, f"unknown alarm {command.alarm_id}", UNKNOWN_ALARM)


async def submit_command(redis: aioredis.Redis, action: str, alarm_id: str, user: str, comment: str | None,
                         duration_s: float | None = None, one_shot: bool = False) -> str:
    command = AlarmCommand(uuid.uuid4().hex, action, alarm_id, user, comment, duration_s, one_shot)
    await redis.xadd(keys.ALARM_COMMANDS, {"c": json.dumps(asdict(command))}, maxlen=100_000, approximate=True)
    return command.request_id


async def wait_for_command_outcome(redis: aioredis.Redis, request_id: str, timeout_s: float) -> CommandOutcome:
    data = await wait_for_answer(redis, request_id, timeout_s)
    if data is None:
        return CommandOutcome(request_id, False, "the alarm engine did not answer (is it running?)", NO_ANSWER)
    # Only the fields this version knows: an engine newer than this web may answer with more.
    return CommandOutcome(**{name: data[name] for name in CommandOutcome.__dataclass_fields__ if name in data})


async def request_action(
    redis: aioredis.Redis, action: str, alarm_id: str, user: str, comment: str | None = None, *,
    duration_s: float | None = None, one_shot: bool = False, timeout_s: float = 5.0,
) -> CommandOutcome:
    """Ask the engine to act on one alarm and wait for its answer (refusals carry the reason)."""
    request_id = await submit_command(redis, action, alarm_id, user, comment, duration_s, one_shot)
    return await wait_for_command_outcome(redis, request_id, timeout_s)


async def request_acknowledge(
    redis: aioredis.Redis, alarm_id: str, user: str, comment: str | None = None, timeout_s: float = 5.0
) -> CommandOutcome:
    return await request_action(redis, "acknowledge", alarm_id, user, comment, timeout_s=timeout_s)


def parse_command(fields: dict | None) -> AlarmCommand | None:
    raw = (fields or {}).get(b"c") or (fields or {}).get("c")
    try:
        return AlarmCommand(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def queue_outcome(pipe, outcome: CommandOutcome) -> None:
    key = keys.action_result(outcome.request_id)
    pipe.rpush(key, json.dumps(asdict(outcome)))
    pipe.expire(key, keys.ACTION_RESULT_TTL_S)
