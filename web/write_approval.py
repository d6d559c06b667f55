"""Two-person rule for critical tags: a second user approves a confirmed write with their password.

After the requester's Confirm, a critical tag's write is held (web.pending_writes, stage APPROVAL)
and nothing is sent. approve_write() takes it (atomically: one approval at a time) and sends it
only when the approver
  - is someone other than the requester,
  - gives their own password, checked through the login's lock-out (web.login.verify_throttled),
  - is operator or higher and may write this tag (its write role, their areas),
and the write still passes every check against the live value now. A refused approver (a typo in
the password, the wrong person) puts the write back for the time it had left, so the right person
can approve it without the requester starting again; each try counts towards that name's login
lock-out. A write that no longer passes its checks ends there. The audit trail gets a
"write_approval" entry (refused, with the reason) or a "write_approved" entry under the
approver's name, then the write's "requested" and outcome entries saying "approved by <approver>".
A password is never recorded.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from web.audit import AuditEvent, append_audit
from web.auth import RequestIdentity
from web.login import UNKNOWN_NAME, is_known_name, verify_throttled
from web.pending_writes import NO_SUCH_PENDING_WRITE, PendingWrite, Stage, put_back, take_write_with_time_left
from web.permissions import require_tag_permission
from web.roles import Action, PermissionDenied, Role
from web.runtime import WebRuntime
from web.sessions import Session
from web.writes import WriteResult, WriteState, recheck, refuse_and_audit, send_write

MAX_NAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 1024


async def _audit(runtime: WebRuntime, event: AuditEvent) -> None:
    try:
        await append_audit(runtime.redis, event)
    except (RedisError, OSError):
        pass


@dataclass(frozen=True, slots=True)
class HeldWrite:
    nonce: str
    pending: PendingWrite
    # time.monotonic() at which it would have expired: checking the approver (argon2, the lock-out
    # delay) takes time, which comes off what is left.
    expires_at_s: float

    def left_now_ms(self) -> int:
        return int((self.expires_at_s - time.monotonic()) * 1000)


async def _refuse(runtime: WebRuntime, identity: RequestIdentity, held: HeldWrite, approver: str,
                  reason: str, *, denied: bool = False, detail: str = "") -> WriteResult:
    """A refused approver: audited (the name as given only if it is an account), nothing sent, and
    the write waits again for the time it had left."""
    pending = held.pending
    try:
        shown = approver if await is_known_name(runtime.redis, approver) else UNKNOWN_NAME
    except (RedisError, OSError):
        shown = UNKNOWN_NAME
    await _audit(runtime, AuditEvent(
        user=identity.session.user, action="write_approval", result="refused", tag=pending.tag,
        old="" if pending.old is None else str(pending.old), new=str(pending.value)[:128],
        reason=f"approver {shown}: {detail or reason}", source_ip=identity.source_ip, comment=pending.reason))
    left_ms = held.left_now_ms()
    try:
        waiting = await put_back(runtime.redis, held.nonce, pending, left_ms)
    except (RedisError, OSError):
        waiting = False
    if waiting:
        return WriteResult(WriteState.REFUSED, f"{reason}; nothing was sent: the write still waits for an "
                                               f"approver ({math.ceil(left_ms / 1000)} s left)", denied=denied,
                           still_held=True)
    return WriteResult(WriteState.REFUSED, f"{reason}; nothing was sent (start again with Write…)", denied=denied)


async def approve_write(runtime: WebRuntime, identity: RequestIdentity | None, nonce: object,
                        approver_name: object, approver_password: object) -> WriteResult:
    """The second person's approval of a held critical write: checked, then the write is sent once."""
    session = identity.session if identity else None
    try:
        taken = await take_write_with_time_left(runtime.redis, nonce, session, Stage.APPROVAL)
    except (RedisError, OSError) as exc:
        return WriteResult(WriteState.FAILED, f"the data server (Redis) is unavailable: {exc}")
    if taken is None:
        return await refuse_and_audit(runtime, identity, "", "", NO_SUCH_PENDING_WRITE)
    assert identity is not None and session is not None and isinstance(nonce, str)
    pending, left_ms = taken
    held = HeldWrite(nonce, pending, time.monotonic() + left_ms / 1000)
    name = approver_name.strip()[:MAX_NAME_LENGTH] if isinstance(approver_name, str) else ""
    password = approver_password if isinstance(approver_password, str) else ""
    if not name or not password:
        return await _refuse(runtime, identity, held, name, "the approver's name and password are both needed")
    if name == session.user:
        return await _refuse(runtime, identity, held, name, f"the approver must be someone other than {name}",
                             denied=True)
    if len(password) > MAX_PASSWORD_LENGTH:
        return await _refuse(runtime, identity, held, name, "wrong user name or password")
    try:
        verified = await verify_throttled(runtime.redis, name, password)
    except (RedisError, OSError) as exc:
        return WriteResult(WriteState.FAILED, f"the data server (Redis) is unavailable: {exc}")
    approver = verified.user
    if approver is None:
        return await _refuse(runtime, identity, held, name,
                             f"the approver was not verified: {verified.message.rstrip('.')}", detail=verified.reason)
    tag = runtime.tags.tag(pending.tag)
    approver_session = Session(approver.name, approver.role, "", 0, approver.areas)
    try:
        if not approver.role.at_least(Role.OPERATOR):
            raise PermissionDenied(f"{approver.name} is {approver.role.value}: an approver must be operator or higher")
        require_tag_permission(approver_session, Action.WRITE_SETPOINT, tag)
    except PermissionDenied as denied:
        return await _refuse(runtime, identity, held, approver.name, f"{approver.name} may not approve: {denied}",
                             denied=True)
    checked = await recheck(runtime, identity, pending.tag, pending.value, pending.reason)
    if isinstance(checked, WriteResult):
        return checked
    await _audit(runtime, AuditEvent(
        user=approver.name, action="write_approved", result="ok", tag=pending.tag,
        old="" if checked.prepared.old is None else str(checked.prepared.old), new=str(checked.prepared.value),
        reason=f"approved the write requested by {session.user}", source_ip=identity.source_ip,
        comment=checked.reason))
    return await send_write(runtime, identity, checked, approved_by=approver.name)
