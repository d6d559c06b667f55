"""An operator's setpoint write, decided and carried out on the server.

prepare_write() is the check before the confirmation dialog; execute_write()
checks everything again (a browser can send anything), sends the request to
the data source through Redis, and waits for its verified answer. Every attempt
and its result goes to the audit trail. Tags come from the tag directory: a
discovered tag is writable only if its definition says so (the source checks again).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from redis.exceptions import RedisError

from domain.config_model import Tag
from domain.quality import Quality, quality_from_code
from domain.tag_value import ScalarValue
from domain.write_rules import WriteRefused, check_write, parse_entry
from tag_store.write_requests import WriteRequest, WriteStatus, submit_write, wait_for_outcome
from web.audit import AuditEvent, append_audit
from web.auth import RequestIdentity
from web.roles import Action, PermissionDenied, require
from web.runtime import WebRuntime
from web.tag_directory import TagDirectory
from web.tag_display import format_with_unit

# How much longer than the source's own write timeout we wait for its answer.
ANSWER_MARGIN_S = 2.0


class WriteState(StrEnum):
    REFUSED = "REFUSED"      # not sent: role, rules or input
    DONE = "DONE"            # written and confirmed by readback
    REJECTED = "REJECTED"    # the device or data source said no
    TIMED_OUT = "TIMED OUT"  # sent, readback never confirmed it
    NO_ANSWER = "NO ANSWER"  # nobody answered in time (is the data source running?)
    FAILED = "FAILED"        # could not be sent (Redis unavailable)


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    tag: str
    value: ScalarValue
    old: ScalarValue
    summary: str  # "R201.temperature_setpoint: 60.0 degC -> 65.0 degC"


@dataclass(frozen=True, slots=True)
class WriteResult:
    state: WriteState
    message: str

    @property
    def text(self) -> str:
        return f"{self.state.value}: {self.message}" if self.message else self.state.value


def current_value(runtime: WebRuntime, tag_name: str) -> ScalarValue:
    encoded = runtime.live_cache.values.get(tag_name)
    return encoded.get("v") if encoded else None


def current_quality(runtime: WebRuntime, tag_name: object) -> Quality | None:
    """The live value's quality; None when there is no value (or no readable code)."""
    encoded = runtime.live_cache.values.get(tag_name) if isinstance(tag_name, str) else None
    try:
        return quality_from_code(int(encoded["q"]), encoded.get("qn")) if encoded else None
    except (KeyError, TypeError, ValueError):
        return None


def prepare_write(tags: TagDirectory, identity: RequestIdentity | None, tag_name: str, entry: object,
                  current: ScalarValue, quality: Quality | None = None) -> PreparedWrite:
    """Raise PermissionDenied or WriteRefused unless the write may go to confirmation.

    quality: the current value's; a Bad value that still carries a number cannot judge a step."""
    require(identity.session.role if identity else None, Action.WRITE_SETPOINT)
    tag = _known_tag(tags, tag_name)
    value = parse_entry(tag, entry)
    check_write(tag, value, current, quality)
    old_text = format_with_unit(tag, current) or "(no value)"
    return PreparedWrite(tag.name, value, current, f"{tag.name}: {old_text} -> {format_with_unit(tag, value)}")


def _known_tag(tags: TagDirectory, tag_name: object) -> Tag:
    tag = tags.tag(tag_name) if isinstance(tag_name, str) else None
    if tag is None:
        raise WriteRefused(f"there is no tag '{tag_name}'")
    return tag


async def audit_write(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object, old: object,
                      new: object, result: str, reason: str = "") -> None:
    await append_audit(runtime.redis, AuditEvent(
        user=identity.session.user if identity else "", action="write", result=result, tag=str(tag_name)[:128],
        old="" if old is None else str(old), new="" if new is None else str(new)[:128], reason=reason,
        source_ip=identity.source_ip if identity else "",
    ))


async def refuse_and_audit(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object,
                           entry: object, reason: str) -> WriteResult:
    old = current_value(runtime, tag_name) if isinstance(tag_name, str) else None
    try:
        await audit_write(runtime, identity, tag_name, old, entry, "refused", reason)
    except RedisError:
        pass
    return WriteResult(WriteState.REFUSED, reason)


async def execute_write(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object,
                        entry: object) -> WriteResult:
    """Re-check, send, wait for the verified answer; audited at each step."""
    current = current_value(runtime, tag_name) if isinstance(tag_name, str) else None
    try:
        prepared = prepare_write(runtime.tags, identity, tag_name, entry, current,
                                 current_quality(runtime, tag_name))
    except (PermissionDenied, WriteRefused) as refusal:
        return await refuse_and_audit(runtime, identity, tag_name, entry, str(refusal))
    assert identity is not None
    tag = runtime.tags.tag(prepared.tag)
    timeout_s = runtime.config.sources[tag.source].write_timeout_s
    request = WriteRequest.new(tag.name, prepared.value, identity.session.user, int(time.time() * 1000), timeout_s)
    try:
        await audit_write(runtime, identity, tag.name, prepared.old, prepared.value, "requested")
        await submit_write(runtime.redis, tag.source, request)
        outcome = await wait_for_outcome(runtime.redis, request.request_id, timeout_s + ANSWER_MARGIN_S)
    except (RedisError, OSError) as exc:
        return WriteResult(WriteState.FAILED, f"the data server (Redis) is unavailable: {exc}")
    result = _result_of(outcome, tag, prepared)
    try:
        await audit_write(runtime, identity, tag.name, prepared.old, prepared.value,
                          result.state.name.lower(), result.message)
    except RedisError:
        pass
    return result


def _result_of(outcome, tag: Tag, prepared: PreparedWrite) -> WriteResult:
    if outcome is None:
        return WriteResult(WriteState.NO_ANSWER, "no answer from the data source (is it running?)")
    if outcome.status is WriteStatus.DONE:
        return WriteResult(WriteState.DONE, f"{tag.name} = {format_with_unit(tag, outcome.readback)} (read back)")
    if outcome.status is WriteStatus.REJECTED:
        return WriteResult(WriteState.REJECTED, outcome.reason or outcome.device_status or "refused by the device")
    if outcome.status is WriteStatus.TIMED_OUT:
        return WriteResult(WriteState.TIMED_OUT, outcome.reason or "the readback did not confirm the value in time")
    return WriteResult(WriteState.NO_ANSWER, f"unexpected answer '{outcome.status}'")


@dataclass(frozen=True, slots=True)
class ConfirmationStep:
    """What the setpoint entry shows after "Write…": a question to confirm, or a refusal."""

    pending: dict | None  # {"tag", "value"} kept in the page until Confirm
    question: str
    status: WriteResult | None


async def confirmation_step(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object,
                            entry: object) -> ConfirmationStep:
    current = current_value(runtime, tag_name) if isinstance(tag_name, str) else None
    try:
        prepared = prepare_write(runtime.tags, identity, tag_name, entry, current,
                                 current_quality(runtime, tag_name))
    except (PermissionDenied, WriteRefused) as refusal:
        return ConfirmationStep(None, "", await refuse_and_audit(runtime, identity, tag_name, entry, str(refusal)))
    return ConfirmationStep({"tag": prepared.tag, "value": prepared.value}, prepared.summary, None)
