"""The node router's changes of state, as Lua scripts Redis runs atomically.

Each one reads and writes the keys of ``spaces.router`` (its docstring
lists them) in one step: a space's owner only changes by compare-and-set
here. The owner values are a node id, ``recovering:{id}``, ``done:{id}``
and ``swept`` (``spaces.router.RECOVERING``, ``DONE``, ``SWEPT``).
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: lease, record, nodes. ARGV: instance, ttl_ms, info, node_id, load, may_replace
_HEARTBEAT = (
    _NOW
    + """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and cur ~= ARGV[6] then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'info', ARGV[3], 'load', ARGV[5], 'heartbeat_at', tostring(now), 'state', 'alive')
redis.call('SADD', KEYS[3], ARGV[4])
return false
"""
)

# KEYS: lease, record, nodes, spaces. ARGV: instance, node_id
_DEREGISTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('SCARD', KEYS[4]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
else
  redis.call('HSET', KEYS[2], 'state', 'stopped')
end
return 1
"""

# KEYS: owner, spaces, placed. ARGV: node_id, space_id
_PLACE = (
    _NOW
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[3], now, ARGV[2])
  return false
end
return redis.call('GET', KEYS[1])
"""
)

# KEYS: owner, old spaces, old placed, new spaces, new placed. ARGV: old, new, space_id, placed(0/1)
_MOVE = (
    _NOW
    + """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] and not (cur == false and ARGV[1] == '') then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
if ARGV[1] ~= '' then
  redis.call('SREM', KEYS[2], ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[3])
  if ARGV[4] == '1' then redis.call('ZADD', KEYS[5], now, ARGV[3]) end
end
return 1
"""
)

# KEYS: owner, spaces, placed. ARGV: node_id, space_id, prefix
_OPEN = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return {'own', ARGV[1]}
end
if cur == 'swept' or string.sub(cur, 1, 5) == 'done:' or string.sub(cur, 1, 11) == 'recovering:' then
  return {'ended', cur}
end
if redis.call('EXISTS', ARGV[3] .. ':node:' .. cur .. ':lease') == 1 then return {'moved', cur} end
return {'dead', cur}
"""

# KEYS: owner. ARGV: node_id
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and cur ~= 'recovering:' .. ARGV[1] and cur ~= 'done:' .. ARGV[1] then return cur end
redis.call('SET', KEYS[1], 'recovering:' .. ARGV[1])
return false
"""

# KEYS: owner, spaces, placed. ARGV: node_id, space_id, ttl
_RELEASE = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or cur == 'recovering:' .. ARGV[1] or cur == 'done:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'done:' .. ARGV[1], 'EX', ARGV[3])
end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# KEYS: owner, spaces, placed. ARGV: dead node_id, space_id
_SWEEP_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or cur == 'recovering:' .. ARGV[1] or cur == 'swept' then
  redis.call('SET', KEYS[1], 'swept')
  return 1
end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 0
"""

# KEYS: lease, record, nodes, spaces, placed. ARGV: node_id
_FORGET = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('SCARD', KEYS[4]) > 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[5])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


#: By the name ``NodeRouter`` runs them under.
SCRIPTS = {
    "heartbeat": _HEARTBEAT,
    "deregister": _DEREGISTER,
    "place": _PLACE,
    "move": _MOVE,
    "open": _OPEN,
    "claim": _CLAIM,
    "release": _RELEASE,
    "sweep_claim": _SWEEP_CLAIM,
    "forget": _FORGET,
}
