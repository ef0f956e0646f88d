package redis

// The Lua scripts. Each runs atomically on the server (no other command
// interleaves) and touches only the keys passed in KEYS, which all share
// one partition's hash tag, so Redis Cluster routes each call to the one
// node that owns the slot.
//
// Expiries use the server's clock (redis.call('TIME')), never the worker's:
// workers with skewed clocks agree on what has expired.
//
// Numbers that go back to Redis as scores are formatted with '%.0f' so that
// millisecond timestamps are never rounded by Lua's default number format.

// acquireSrc bumps the epoch and returns {epoch, offset|nil, meta|nil}.
//
//	KEYS[1] meta hash
const acquireSrc = `
local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local r = redis.call('HMGET', KEYS[1], 'offset', 'meta')
return {e, r[1], r[2]}
`

// commitSrc applies one statedb.Commit if its epoch is current.
// It returns {1} on success and {0, current epoch} when fenced, having
// written nothing. Every argument is validated by the client, so no write
// command below can fail on its arguments. Memory: Redis refuses a
// script's first write of a "denyoom" command when used_memory is over
// maxmemory, and never stops a script that has written; the first write
// here is HSET (denyoom), so a full Redis refuses the whole commit and a
// commit that started runs to its end.
//
//	KEYS[1] meta hash, KEYS[2] ids zset, KEYS[3] timers zset,
//	KEYS[4 .. 3+nd] state keys to delete, then np state keys to put.
//	ARGV[1] epoch, ARGV[2] offset, ARGV[3] meta ('' deletes it),
//	ARGV[4] nd, ARGV[5] np, ARGV[6] nids, ARGV[7] ID TTL in ms (0: forever),
//	ARGV[8] nclear, ARGV[9] nset, ARGV[10] '1' when puts carry TTLs
//	and '0' when none does, then
//	np pairs (value, TTL ms or 0), or np values when no put has a TTL,
//	nids IDs, nclear timer keys, nset pairs (timer key, due).
//
// Without TTLs (aggregates without retention, the default) the puts are
// values alone, written by MSETs of 256 keys: one argument and one
// tonumber per put fewer, 7% of the server's CPU per put (BenchmarkLayout:
// 1.23 -> 1.14 µs).
const commitSrc = `
local cur = redis.call('HGET', KEYS[1], 'epoch')
if not cur or cur ~= ARGV[1] then
  return {0, tonumber(cur or '0')}
end
-- The first write is HSET, which Redis refuses when memory is full: the
-- commit then fails before writing anything. (After any first write Redis
-- lets a script run to its end, whatever the memory.)
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'offset', ARGV[2])
  redis.call('HDEL', KEYS[1], 'meta')
else
  redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'meta', ARGV[3])
end
local nd, np, ni = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local idttl, nc, ns = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local CHUNK = 256
local a = 11
local k = 4
while k <= 3 + nd do
  local last = math.min(k + CHUNK - 1, 3 + nd)
  redis.call('DEL', unpack(KEYS, k, last))
  k = last + 1
end
local batch, nb = {}, 0
if ARGV[10] == '0' then
  -- No TTLs: values alone, MSET in order (a key put twice ends with its
  -- last value).
  for k = 4 + nd, 3 + nd + np do
    batch[nb + 1] = KEYS[k]
    batch[nb + 2] = ARGV[a]
    nb = nb + 2
    a = a + 1
    if nb >= 2 * CHUNK then
      redis.call('MSET', unpack(batch, 1, nb))
      nb = 0
    end
  end
  np = 0
end
-- Puts without TTL go out in MSET batches, in order: a put with a TTL
-- first flushes the batch, so a key put twice ends with its last value.
for k = 4 + nd, 3 + nd + np do
  local ttl = tonumber(ARGV[a + 1])
  if ttl > 0 then
    if nb > 0 then
      redis.call('MSET', unpack(batch, 1, nb))
      nb = 0
    end
    redis.call('SET', KEYS[k], ARGV[a], 'PX', ttl)
  else
    batch[nb + 1] = KEYS[k]
    batch[nb + 2] = ARGV[a]
    nb = nb + 2
    if nb >= 2 * CHUNK then
      redis.call('MSET', unpack(batch, 1, nb))
      nb = 0
    end
  end
  a = a + 2
end
if nb > 0 then
  redis.call('MSET', unpack(batch, 1, nb))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ni > 0 then
  local exp = '+inf'
  if idttl > 0 then exp = string.format('%.0f', now + idttl) end
  local z, nz = {}, 0
  for j = 1, ni do
    z[nz + 1] = exp
    z[nz + 2] = ARGV[a]
    nz = nz + 2
    a = a + 1
    if nz >= 2 * CHUNK or j == ni then
      redis.call('ZADD', KEYS[2], unpack(z, 1, nz))
      nz = 0
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
while nc > 0 do
  local n = math.min(nc, CHUNK)
  redis.call('ZREM', KEYS[3], unpack(ARGV, a, a + n - 1))
  a = a + n
  nc = nc - n
end
if ns > 0 then
  local z, nz = {}, 0
  for j = 1, ns do
    z[nz + 1] = ARGV[a + 1]
    z[nz + 2] = ARGV[a]
    nz = nz + 2
    a = a + 2
    if nz >= 2 * CHUNK or j == ns then
      redis.call('ZADD', KEYS[3], unpack(z, 1, nz))
      nz = 0
    end
  end
end
return {1}
`

// seenSrc returns, for each ID in ARGV, 1 if it is recorded and not
// expired at the server's time, else 0, reading scores with ZMSCORE (Redis
// 6.2 or later) 256 IDs at a time.
//
//	KEYS[1] ids zset
const seenSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local j = 1
while j <= #ARGV do
  local last = math.min(j + 255, #ARGV)
  local sc = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, j, last))
  for i = j, last do
    local s = sc[i - j + 1]
    if s and tonumber(s) > now then out[i] = 1 else out[i] = 0 end
  end
  j = last + 1
end
return out
`

// dueSrc returns the timers under a prefix with score <= until, earliest
// first, as {key, score, key, score, ...}: it pages through the sorted set
// by score, chunk entries at a time, and keeps the members that begin with
// the prefix, until it has limit of them or the range ends. Its cost is
// the number of timers due by until (of every prefix) it reads: for the
// runtime, whose operators fire their due timers every batch, that is at
// most the timers that fell due in the current batch.
//
//	KEYS[1] timers zset
//	ARGV[1] prefix, ARGV[2] until, ARGV[3] limit, ARGV[4] chunk
const dueSrc = `
local prefix, limit, chunk = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local n, out, off = #prefix, {}, 0
while true do
  local zs = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', off, chunk, 'WITHSCORES')
  for i = 1, #zs, 2 do
    if string.sub(zs[i], 1, n) == prefix then
      out[#out + 1] = zs[i]
      out[#out + 1] = zs[i + 1]
      if #out >= 2 * limit then return out end
    end
  end
  if #zs < 2 * chunk then return out end
  off = off + chunk
end
`
