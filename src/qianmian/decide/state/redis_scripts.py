"""The Lua scripts of :class:`~qianmian.decide.state.redis.RedisDecisionState`.

Each runs atomically in Redis, so no other command interleaves with a reservation, a
release or an outcome. Numbers are compared as Lua doubles (exact for integers below 2**53:
counter units and microsecond times stay below it); values are written back from the strings
passed in, never re-formatted by Lua (whose ``tostring`` keeps only 14 digits).
"""

from __future__ import annotations

__all__ = ["CONFIRM", "RECORD_OUTCOME", "RELEASE", "RELEASE_EXPIRED", "RESERVE", "SET_PREFERENCES"]

# Take a pending reservation's amounts back; `release_due` releases those whose time is up.
_RELEASE_FUNCTIONS = """
local function release(rkey)
  local amounts = redis.call('HGETALL', rkey)
  for i = 1, #amounts, 2 do
    -- a counter Redis has already forgotten (its ttl passed) is not brought back negative
    if redis.call('EXISTS', amounts[i]) == 1 then
      redis.call('DECRBY', amounts[i], amounts[i + 1])
    end
  end
  redis.call('DEL', rkey)
end

local function release_due(pending, prefix, now, limit)
  if limit <= 0 then return 0 end
  local due = redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', pending, id)
    release(prefix .. id)
  end
  return #due
end
"""

# KEYS: pending zset, id sequence, then every attempt's counters in order.
# ARGV: reservation key prefix, now, expiry, how many timed-out to release first, number of
# attempts n, n counter counts, then (units, limit, ttl) per counter.
# Returns {attempt (1-based, 0: none), reservation id or false, {blocked counter positions}}.
RESERVE = (
    _RELEASE_FUNCTIONS
    + """
local pending, prefix = KEYS[1], ARGV[1]
release_due(pending, prefix, ARGV[2], tonumber(ARGV[4]))
local n = tonumber(ARGV[5])
local k, a = 3, 6 + n
local blocked = {}
for i = 1, n do
  local size = tonumber(ARGV[5 + i])
  local adding, over = {}, nil
  for j = 0, size - 1 do
    local key = KEYS[k + j]
    local total = (adding[key] or 0) + tonumber(ARGV[a + 3 * j])
    adding[key] = total
    if tonumber(redis.call('GET', key) or '0') + total > tonumber(ARGV[a + 3 * j + 1]) then
      over = k + j - 2
      break
    end
  end
  if over == nil then
    local id = redis.call('INCR', KEYS[2])
    local rkey = prefix .. id
    for j = 0, size - 1 do
      local key, units, ttl = KEYS[k + j], ARGV[a + 3 * j], ARGV[a + 3 * j + 2]
      redis.call('INCRBY', key, units)
      if ttl ~= '0' then redis.call('EXPIRE', key, ttl) end
      redis.call('HINCRBY', rkey, key, units)
    end
    redis.call('ZADD', pending, ARGV[3], id)
    return {i, id, blocked}
  end
  blocked[#blocked + 1] = over
  k, a = k + size, a + 3 * size
end
return {0, false, blocked}
"""
)

# KEYS: pending zset. ARGV: reservation key prefix, id. A confirmed reservation keeps its
# amounts; leaving the zset is what makes confirm, release and expiry exclusive.
CONFIRM = """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('DEL', ARGV[1] .. ARGV[2])
  return 1
end
return 0
"""

RELEASE = (
    _RELEASE_FUNCTIONS
    + """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  release(ARGV[1] .. ARGV[2])
  return 1
end
return 0
"""
)

# KEYS: pending zset. ARGV: reservation key prefix, now, limit.
RELEASE_EXPIRED = (
    _RELEASE_FUNCTIONS
    + """
return release_due(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))
"""
)

# KEYS: the customer's hash. ARGV: marketing opt-out and personalisation opt-out ('' keeps,
# '0'/'1' sets), then (channel, '0'/'1') pairs. False if the customer was never loaded.
SET_PREFERENCES = """
local h = KEYS[1]
local current = redis.call('HGET', h, 'k')
if not current then return false end
if #ARGV > 2 then
  local on = {}
  for ch in string.gmatch(current, '[^,]+') do on[ch] = true end
  for i = 3, #ARGV, 2 do on[ARGV[i]] = (ARGV[i + 1] == '1') or nil end
  local names = {}
  for ch in pairs(on) do names[#names + 1] = ch end
  table.sort(names)
  redis.call('HSET', h, 'k', table.concat(names, ','))
end
if ARGV[1] ~= '' then redis.call('HSET', h, 'm', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', h, 'p', ARGV[2]) end
return redis.call('HGETALL', h)
"""

# KEYS: the customer's hash. ARGV: outcome, offer, ts, ignore_count, ts - window, until
# (ts + hide or complaint days), window; times in microseconds since 1970. Mirrors
# MemoryDecisionState.record_outcome line for line; returns the hash after the change.
RECORD_OUTCOME = """
local h, offer, ts = KEYS[1], ARGV[2], tonumber(ARGV[3])
local horizon, until_ = tonumber(ARGV[5]), ARGV[6]
local fields = redis.call('HGETALL', h)
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  local kind = string.sub(f, 1, 2)
  if kind == 'x:' and tonumber(v) <= ts then
    redis.call('HDEL', h, f)
  elseif kind == 'i:' and f ~= 'i:' .. offer and tonumber(string.match(v, '(%S+)$')) < horizon then
    redis.call('HDEL', h, f)
  end
end
local function raise_to(field)
  local before = redis.call('HGET', h, field)
  if not before or tonumber(before) < tonumber(until_) then redis.call('HSET', h, field, until_) end
end
if ARGV[1] == 'ignored' then
  local times = {}
  for t in string.gmatch(redis.call('HGET', h, 'i:' .. offer) or '', '%S+') do
    times[#times + 1] = t
  end
  times[#times + 1] = ARGV[3]
  table.sort(times, function(x, y) return tonumber(x) < tonumber(y) end)
  local keep = tonumber(ARGV[4])
  while #times > keep do table.remove(times, 1) end
  redis.call('HSET', h, 'i:' .. offer, table.concat(times, ' '))
  if #times == keep and tonumber(times[#times]) - tonumber(times[1]) <= tonumber(ARGV[7]) then
    raise_to('x:' .. offer)
  end
else
  raise_to('s')
end
return redis.call('HGETALL', h)
"""
