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
// command below can fail on its arguments; once the first write succeeds
// Redis also lets the rest run even under maxmemory (a script that has
// written is never stopped half-way by OOM).
//
//	KEYS[1] meta hash, KEYS[2] ids zset, KEYS[3] timers zset,
//	KEYS[4 .. 3+nd] state keys to delete, then np state keys to put.
//	ARGV[1] epoch, ARGV[2] offset, ARGV[3] meta ('' deletes it),
//	ARGV[4] nd, ARGV[5] np, ARGV[6] nids, ARGV[7] ID TTL in ms (0: forever),
//	ARGV[8] nclear, ARGV[9] nset, then
//	np pairs (value, TTL ms or 0), nids IDs, nclear timer keys,
//	nset pairs (timer key, due).
const commitSrc = `
local cur = redis.call('HGET', KEYS[1], 'epoch')
if not cur or cur ~= ARGV[1] then
  return {0, tonumber(cur or '0')}
end
local nd, np, ni = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local idttl, nc, ns = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local a = 10
for k = 4, 3 + nd do
  redis.call('DEL', KEYS[k])
end
for k = 4 + nd, 3 + nd + np do
  local ttl = tonumber(ARGV[a + 1])
  if ttl > 0 then
    redis.call('SET', KEYS[k], ARGV[a], 'PX', ttl)
  else
    redis.call('SET', KEYS[k], ARGV[a])
  end
  a = a + 2
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ni > 0 then
  local exp = '+inf'
  if idttl > 0 then exp = string.format('%.0f', now + idttl) end
  for j = 1, ni do
    redis.call('ZADD', KEYS[2], exp, ARGV[a])
    a = a + 1
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
for j = 1, nc do
  redis.call('ZREM', KEYS[3], ARGV[a])
  a = a + 1
end
for j = 1, ns do
  redis.call('ZADD', KEYS[3], ARGV[a + 1], ARGV[a])
  a = a + 2
end
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'offset', ARGV[2])
  redis.call('HDEL', KEYS[1], 'meta')
else
  redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'meta', ARGV[3])
end
return {1}
`

// seenSrc returns, for each ID in ARGV, 1 if it is recorded and not
// expired at the server's time, else 0.
//
//	KEYS[1] ids zset
const seenSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for j = 1, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[j])
  if s and tonumber(s) > now then out[j] = 1 else out[j] = 0 end
end
return out
`
