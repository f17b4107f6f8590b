"""The Lua scripts of the Redis store: each one a multi-key write that Redis runs atomically.

Every key a script touches is passed in ``KEYS`` (never built inside the script), so that a script
stays valid on Redis Cluster when its keys share a hash tag (see ``gateway.store.keys``).
"""

from __future__ import annotations

# KEYS: user, name index, users set. ARGV: id, json. Returns 1, or 0 when the id or name exists.
ADD_USER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: user, old name index, new name index. ARGV: id, expected json, new json.
# Returns 'ok', 'missing', 'conflict' (name taken) or 'retry' (the record changed meanwhile).
UPDATE_USER = """
local current = redis.call('GET', KEYS[1])
if not current then return 'missing' end
if current ~= ARGV[2] then return 'retry' end
if KEYS[2] ~= KEYS[3] then
  if not redis.call('SET', KEYS[3], ARGV[1], 'NX') then return 'conflict' end
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[1], ARGV[3])
return 'ok'
"""

# KEYS: factor, user's factor set[, credential index]. ARGV: id, json. Returns 1, or 0 on a duplicate.
ADD_FACTOR = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if KEYS[3] and not redis.call('SET', KEYS[3], ARGV[1], 'NX') then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: factor, user's factor set[, credential index]. ARGV: id. Returns 1 if removed.
REMOVE_FACTOR = """
local removed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return removed
"""

# KEYS: counter. ARGV: ttl ms. A new counter is created at 0 with its TTL, then incremented.
INCR = """
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"""

# KEYS: counter. ARGV: value, ttl ms. Returns 1 when raised (absent counts as -inf).
RAISE_FLOOR = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: seq counter, stream. ARGV: event json. Returns the new sequence number.
APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], string.format('%d-0', seq), 'event', ARGV[1])
return seq
"""

# KEYS: record. ARGV: expected value, new value. Replaces the value, keeping its TTL, only if it
# still holds the expected one. Returns 1 when replaced, 0 when the caller must read again.
COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""
