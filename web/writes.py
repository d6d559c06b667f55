"""An operator's setpoint write, decided and carried out on the server.

The faceplate's road: confirmation_step() ("Write…") checks the write and holds it on the server
(web.pending_writes) under a nonce, the page gets only the nonce and the question; confirm_pending()
("Confirm") takes the held write back (single use, same user and session) and checks EVERYTHING
again against the live value now (role, the tag's write role, the user's areas, limits, step,
quality, the reason), then sends it; a critical tag's write is held once more for a second
person's approval (web.write_approval). The API's road is execute_write(): the same checks and
the same send, in one call. Every attempt and its result goes to the audit trail, refused ones
too; a write the device never confirmed is recorded as failed ("timed out: …", "no answer: …").
Tags come from the tag directory: a discovered tag is writable only if its definition says so
(the source checks again).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from redis.exceptions import RedisError

from domain.config_model import Tag
from domain.quality import Quality, quality_from_code
from domain.tag_value import ScalarValue
from domain.write_rules import WriteRefused, check_reason, check_write, parse_entry
from tag_store.write_requests import WriteRequest, WriteStatus, submit_write, wait_for_outcome
from web.audit import AuditEvent, append_audit
from web.auth import RequestIdentity
from web.pending_writes import NO_SUCH_PENDING_WRITE, PendingWrite, Stage, hold_write, take_write
from web.permissions import require_tag_permission
from web.roles import Action, PermissionDenied, Role, may, require
from web.runtime import WebRuntime
from web.sessions import Session
from web.tag_directory import TagDirectory
from web.tag_display import format_with_unit

# How much longer than the source's own write timeout we wait for its answer.
ANSWER_MARGIN_S = 2.0
NEEDS_APPROVAL_TEXT = "needs a second person's approval on the faceplate"


class WriteState(StrEnum):
    REFUSED = "REFUSED"      # not sent: role, permission, rules or input
    DONE = "DONE"            # written and CONFIRMED by readback
    REJECTED = "FAILED (refused by the device)"  # the device or data source said no, with its reason
    TIMED_OUT = "TIMED OUT (write failed)"  # sent, readback never confirmed it
    NO_ANSWER = "NO ANSWER"  # nobody answered in time (is the data source running?)
    FAILED = "FAILED"        # could not be sent (Redis unavailable)
    NEEDS_APPROVAL = "NEEDS APPROVAL"  # a critical tag: not sent until a second person approves


# How each outcome is recorded in the audit trail: a write the device never confirmed is a failure.
AUDIT_RESULT = {
    WriteState.DONE: "done", WriteState.REJECTED: "rejected", WriteState.TIMED_OUT: "failed",
    WriteState.NO_ANSWER: "failed", WriteState.FAILED: "failed", WriteState.REFUSED: "refused",
    WriteState.NEEDS_APPROVAL: "refused",
}
AUDIT_REASON_PREFIX = {WriteState.TIMED_OUT: "timed out: ", WriteState.NO_ANSWER: "no answer: "}


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
    readback: ScalarValue = None
    # A refusal for who is asking (role, the tag's write role, areas), not for the value.
    denied: bool = False
    # A refused approver: the critical write still waits for its approval under the same nonce.
    still_held: bool = False

    @property
    def text(self) -> str:
        return f"{self.state.value}: {self.message}" if self.message else self.state.value


def current_value(runtime: WebRuntime, tag_name: object) -> ScalarValue:
    encoded = runtime.live_cache.values.get(tag_name) if isinstance(tag_name, str) else None
    return encoded.get("v") if encoded else None


def current_quality(runtime: WebRuntime, tag_name: object) -> Quality | None:
    """The live value's quality; None when there is no value (or no readable code)."""
    encoded = runtime.live_cache.values.get(tag_name) if isinstance(tag_name, str) else None
    try:
        return quality_from_code(int(encoded["q"]), encoded.get("qn")) if encoded else None
    except (KeyError, TypeError, ValueError):
        return None


def prepare_write(tags: TagDirectory, identity: RequestIdentity | None, tag_name: object, entry: object,
                  current: ScalarValue, quality: Quality | None = None) -> PreparedWrite:
    """Raise PermissionDenied or WriteRefused unless the write may go to confirmation.

    Checks the role, the tag's write role and the user's areas, then the value (type, limits,
    step). quality: the current value's; a Bad value that still carries a number cannot judge a step."""
    session = identity.session if identity else None
    require(session.role if session else None, Action.WRITE_SETPOINT)
    tag = _known_tag(tags, tag_name)
    require_tag_permission(session, Action.WRITE_SETPOINT, tag)
    value = parse_entry(tag, entry)
    check_write(tag, value, current, quality)
    old_text = format_with_unit(tag, current) or "(no value)"
    return PreparedWrite(tag.name, value, current, f"{tag.name}: {old_text} -> {format_with_unit(tag, value)}")


def why_not_write(tag: Tag, session: Session | None) -> str:
    """Why this session may not write the tag, in one sentence for the faceplate; "" when it may.

    Only what the page shows: the server checks again at every step (prepare_write)."""
    role = session.role if session else None
    if not may(role, Action.WRITE_SETPOINT):
        return "Changing this value needs the operator role."
    assert session is not None and role is not None
    if not role.at_least(Role(tag.write_role)):
        return f"Only {tag.write_role} or higher may write this tag; your role is {role.value}."
    if session.areas and tag.area not in session.areas:
        return f"This tag is in area '{tag.area}'; your account is limited to areas: {', '.join(session.areas)}."
    return ""


def _known_tag(tags: TagDirectory, tag_name: object) -> Tag:
    tag = tags.tag(tag_name) if isinstance(tag_name, str) else None
    if tag is None:
        raise WriteRefused(f"there is no tag '{str(tag_name)[:128]}'")
    return tag


def _text(value: object) -> str:
    return "" if value is None else str(value)[:128]


async def audit_write(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object, old: object,
                      new: object, result: str, reason: str = "", comment: str = "") -> None:
    await append_audit(runtime.redis, AuditEvent(
        user=identity.session.user if identity else "", action="write", result=result, tag=_text(tag_name),
        old=_text(old), new=_text(new), reason=reason, source_ip=identity.source_ip if identity else "",
        comment=comment,
    ))


async def _audit_quietly(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object, old: object,
                         new: object, result: str, reason: str = "", comment: str = "") -> None:
    try:
        await audit_write(runtime, identity, tag_name, old, new, result, reason, comment)
    except (RedisError, OSError):
        pass


async def refuse_and_audit(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object,
                           entry: object, reason: str, *, denied: bool = False, comment: object = "",
                           state: WriteState = WriteState.REFUSED) -> WriteResult:
    comment = comment.strip()[:500] if isinstance(comment, str) else ""
    await _audit_quietly(runtime, identity, tag_name, current_value(runtime, tag_name), entry, "refused", reason,
                         comment)
    return WriteResult(state, reason, denied=denied)


@dataclass(frozen=True, slots=True)
class CheckedWrite:
    """A write that passed every check just now: what is sent, and the reason that goes with it."""

    tag: Tag
    prepared: PreparedWrite
    reason: str


async def recheck(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object, entry: object,
                  reason: object) -> CheckedWrite | WriteResult:
    """Everything checked against the live value now; a refusal is audited and returned."""
    try:
        prepared = prepare_write(runtime.tags, identity, tag_name, entry, current_value(runtime, tag_name),
                                 current_quality(runtime, tag_name))
        tag = _known_tag(runtime.tags, prepared.tag)  # a discovered tag may have gone meanwhile
        clean_reason = check_reason(tag, reason)
    except PermissionDenied as denied:
        return await refuse_and_audit(runtime, identity, tag_name, entry, str(denied), denied=True, comment=reason)
    except WriteRefused as refusal:
        return await refuse_and_audit(runtime, identity, tag_name, entry, str(refusal), comment=reason)
    return CheckedWrite(tag, prepared, clean_reason)


async def send_write(runtime: WebRuntime, identity: RequestIdentity, checked: CheckedWrite,
                     approved_by: str = "") -> WriteResult:
    """Send a checked write to its data source and wait for the verified answer; audited before and after."""
    tag, prepared = checked.tag, checked.prepared
    timeout_s = runtime.config.sources[tag.source].write_timeout_s
    request = WriteRequest.new(tag.name, prepared.value, identity.session.user, int(time.time() * 1000), timeout_s,
                               reason=checked.reason, approved_by=approved_by)
    approval = f"approved by {approved_by}" if approved_by else ""
    try:
        await audit_write(runtime, identity, tag.name, prepared.old, prepared.value, "requested", approval,
                          checked.reason)
        await submit_write(runtime.redis, tag.source, request)
        outcome = await wait_for_outcome(runtime.redis, request.request_id, timeout_s + ANSWER_MARGIN_S)
    except (RedisError, OSError) as exc:
        result = WriteResult(WriteState.FAILED, f"the data server (Redis) is unavailable: {exc}")
    else:
        result = _result_of(outcome, tag)
    said = "; ".join(p for p in (AUDIT_REASON_PREFIX.get(result.state, "") + result.message
                                 if result.state is not WriteState.DONE else "", approval) if p)
    await _audit_quietly(runtime, identity, tag.name, prepared.old, prepared.value, AUDIT_RESULT[result.state],
                         said, checked.reason)
    return result


def _result_of(outcome, tag: Tag) -> WriteResult:
    if outcome is None:
        return WriteResult(WriteState.NO_ANSWER, "no answer from the data source (is it running?)")
    if outcome.status is WriteStatus.DONE:
        return WriteResult(WriteState.DONE, f"{tag.name} = {format_with_unit(tag, outcome.readback)}"
                                            " (CONFIRMED by readback)", outcome.readback)
    if outcome.status is WriteStatus.REJECTED:
        return WriteResult(WriteState.REJECTED, outcome.reason or outcome.device_status or "no reason given",
                           outcome.readback)
    if outcome.status is WriteStatus.TIMED_OUT:
        return WriteResult(WriteState.TIMED_OUT, outcome.reason or "the readback did not confirm the value in time",
                           outcome.readback)
    return WriteResult(WriteState.NO_ANSWER, f"unexpected answer '{outcome.status}'")


def approval_needed(tag: Tag) -> str:
    return f"{tag.name} is critical: it {NEEDS_APPROVAL_TEXT}"


async def execute_write(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object,
                        entry: object, reason: object = "") -> WriteResult:
    """Check, send, wait for the verified answer; audited at each step (the API's road).

    A critical tag is not written this way: it needs a second person on the faceplate."""
    checked = await recheck(runtime, identity, tag_name, entry, reason)
    if isinstance(checked, WriteResult):
        return checked
    if checked.tag.critical:
        return await refuse_and_audit(runtime, identity, checked.tag.name, checked.prepared.value,
                                      approval_needed(checked.tag), comment=checked.reason,
                                      state=WriteState.NEEDS_APPROVAL)
    assert identity is not None
    return await send_write(runtime, identity, checked)


# ---- the faceplate's road: Write… -> (held) -> Confirm [-> approval] -------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmationStep:
    """What the setpoint entry shows after "Write…": a question to confirm, or a refusal."""

    nonce: str | None  # the held write's nonce: all the page keeps until Confirm
    question: str
    status: WriteResult | None
    old: ScalarValue = None
    new: ScalarValue = None


async def confirmation_step(runtime: WebRuntime, identity: RequestIdentity | None, tag_name: object,
                            entry: object) -> ConfirmationStep:
    current = current_value(runtime, tag_name)
    try:
        prepared = prepare_write(runtime.tags, identity, tag_name, entry, current,
                                 current_quality(runtime, tag_name))
    except PermissionDenied as denied:
        return ConfirmationStep(None, "", await refuse_and_audit(runtime, identity, tag_name, entry, str(denied),
                                                                 denied=True))
    except WriteRefused as refusal:
        return ConfirmationStep(None, "", await refuse_and_audit(runtime, identity, tag_name, entry, str(refusal)))
    assert identity is not None
    session = identity.session
    try:
        nonce = await hold_write(runtime.redis, PendingWrite(
            session.user, session.created_ms, prepared.tag, prepared.value, prepared.old, int(time.time() * 1000)))
    except (RedisError, OSError) as exc:
        return ConfirmationStep(None, "", WriteResult(WriteState.FAILED,
                                                      f"the data server (Redis) is unavailable: {exc}"))
    return ConfirmationStep(nonce, prepared.summary, None, prepared.old, prepared.value)


@dataclass(frozen=True, slots=True)
class ConfirmOutcome:
    result: WriteResult
    approval_nonce: str | None = None  # a critical tag's write, held for the second person


async def confirm_pending(runtime: WebRuntime, identity: RequestIdentity | None, nonce: object,
                          reason: object = "") -> ConfirmOutcome:
    """Confirm: take the held write (single use), check everything again now, send it
    (or, for a critical tag, hold it for a second person's approval)."""
    session = identity.session if identity else None
    try:
        require(session.role if session else None, Action.WRITE_SETPOINT)
        pending = await take_write(runtime.redis, nonce, session, Stage.CONFIRM)
    except PermissionDenied as denied:
        return ConfirmOutcome(await refuse_and_audit(runtime, identity, "", "", str(denied), denied=True))
    except (RedisError, OSError) as exc:
        return ConfirmOutcome(WriteResult(WriteState.FAILED, f"the data server (Redis) is unavailable: {exc}"))
    if pending is None:
        return ConfirmOutcome(await refuse_and_audit(runtime, identity, "", "", NO_SUCH_PENDING_WRITE))
    checked = await recheck(runtime, identity, pending.tag, pending.value, reason)
    if isinstance(checked, WriteResult):
        return ConfirmOutcome(checked)
    assert identity is not None
    if not checked.tag.critical:
        return ConfirmOutcome(await send_write(runtime, identity, checked))
    try:
        approval_nonce = await hold_write(runtime.redis, PendingWrite(
            session.user, session.created_ms, checked.tag.name, checked.prepared.value, checked.prepared.old,
            int(time.time() * 1000), Stage.APPROVAL, checked.reason))
    except (RedisError, OSError) as exc:
        return ConfirmOutcome(WriteResult(WriteState.FAILED, f"the data server (Redis) is unavailable: {exc}"))
    return ConfirmOutcome(WriteResult(WriteState.NEEDS_APPROVAL,
                                      f"{checked.prepared.summary} is not sent yet: a second person (operator or"
                                      " higher, not you) approves it with their name and password"),
                          approval_nonce)
