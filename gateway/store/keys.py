"""Every Redis key the gateway uses, built in one place from a deployment prefix (default ``rcg``).

Layout (``<p>`` is the prefix from ``StoreSettings.redis_prefix``)::

    <p>:{dir}:user:<user_id>          string  User JSON                       durable
    <p>:{dir}:users                   set     every user id                   durable
    <p>:{dir}:user_by_name:<name>     string  user id (SET NX: unique names)  durable
    <p>:{dir}:factor:<factor_id>      string  Factor JSON                     durable
    <p>:{dir}:factors_of:<user_id>    set     factor ids of a user            durable
    <p>:{dir}:factor_by_cred:<cred>   string  factor id (SET NX: unique)      durable
    <p>:{audit}:stream                stream  AuditEvent JSON, entry id <seq>-0  durable
    <p>:{audit}:seq                   string  last audit sequence number      durable
    <p>:login:<login_id>              string  LoginSession JSON               TTL
    <p>:user_logins:<user_id>         set     login ids of a user             TTL (longest login)
    <p>:challenge:<challenge_id>      string  challenge payload bytes         TTL
    <p>:counter:<name>                string  integer                         TTL
    <p>:link:<link_id>                string  Link JSON                       TTL
    <p>:{sess:<session_id>}:links     set     link ids of a session           TTL (longest link)

Hash tags: Redis Cluster hashes only the text inside the first ``{…}`` of a key, so keys that
one atomic command (Lua script, MULTI/EXEC) touches together share a tag. The identity
directory lives under ``{dir}`` and the audit log under ``{audit}``. Every per-session key is
``<p>:{sess:<session_id>}:<what>`` (the links index today, more when sessions move to Redis), so
that all of one session's keys land in one slot. Keys without a tag are only ever touched one at a
time, or in an order that is safe without atomicity (an index is written before its record).

Durable keys carry no TTL; every other key is written with one (``SET … PX``, ``PEXPIRE``).
"""

from __future__ import annotations

from gateway.core.ids import ChallengeId, FactorId, LinkId, LoginSessionId, SessionId, UserId

DEFAULT_PREFIX = "rcg"
_DIRECTORY = "{dir}"
_AUDIT = "{audit}"


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if usable: non-empty, no braces (a hash tag), no trailing ``:``."""
    if not prefix or "{" in prefix or "}" in prefix or prefix.endswith(":"):
        raise ValueError(f"redis key prefix {prefix!r}: must be non-empty, without braces or trailing ':'")
    return prefix


def user(prefix: str, user_id: UserId) -> str:
    return f"{prefix}:{_DIRECTORY}:user:{user_id}"


def users(prefix: str) -> str:
    return f"{prefix}:{_DIRECTORY}:users"


def user_by_name(prefix: str, name: str) -> str:
    return f"{prefix}:{_DIRECTORY}:user_by_name:{name}"


def factor(prefix: str, factor_id: FactorId) -> str:
    return f"{prefix}:{_DIRECTORY}:factor:{factor_id}"


def factors_of_user(prefix: str, user_id: UserId) -> str:
    return f"{prefix}:{_DIRECTORY}:factors_of:{user_id}"


def factor_by_credential(prefix: str, credential_id: str) -> str:
    return f"{prefix}:{_DIRECTORY}:factor_by_cred:{credential_id}"


def audit_stream(prefix: str) -> str:
    return f"{prefix}:{_AUDIT}:stream"


def audit_seq(prefix: str) -> str:
    return f"{prefix}:{_AUDIT}:seq"


def login(prefix: str, login_id: LoginSessionId) -> str:
    return f"{prefix}:login:{login_id}"


def logins_of_user(prefix: str, user_id: UserId) -> str:
    return f"{prefix}:user_logins:{user_id}"


def challenge(prefix: str, challenge_id: ChallengeId) -> str:
    return f"{prefix}:challenge:{challenge_id}"


def counter(prefix: str, name: str) -> str:
    return f"{prefix}:counter:{name}"


def link(prefix: str, link_id: LinkId) -> str:
    return f"{prefix}:link:{link_id}"


def links_of_session(prefix: str, session_id: SessionId) -> str:
    return f"{prefix}:{{sess:{session_id}}}:links"
