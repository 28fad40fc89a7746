#!lua
-- Appends one chunk of one producer's batch to a shard stream, exactly once.
--
-- KEYS[1] stream   {prefix}:{shard}; entries {position}-0 with fields p (payload), m (ts dedup-id)
-- KEYS[2] meta     {prefix}:{shard}:meta  hash: seq (last position), tms/tns (last timestamp)
-- KEYS[3] mark     {prefix}:{shard}:mark:{producer}:{epoch}  last producer sequence written
-- KEYS[4] shards   {prefix}:shards  set of shard ids that have a stream
-- ARGV[1] shard id          ARGV[2] dedup-id prefix "{producer}:{epoch}:{shard}:"
-- ARGV[3] first producer sequence of the batch
-- ARGV[4] first producer sequence of this chunk
-- ARGV[5] timestamp of the chunk's first event, whole milliseconds
-- ARGV[6] the rest of that timestamp, nanoseconds (0..999999)
-- ARGV[7] floor: a position this producer already saw assigned (never assign at or below it)
-- ARGV[8] MAXLEN ~ bound (0 = unbounded)   ARGV[9] mark lifetime in seconds
-- ARGV[10..] payloads
-- Returns {written, last position, trimmed} or an error after recording what it wrote.
--
-- Numbers: positions and producer sequences stay far below 2^53, so Lua doubles hold them
-- exactly; nanosecond timestamps do not, so they travel as (ms, ns) pairs.
local stream, meta, mark, shards = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local count = #ARGV - 9
local batch_first = tonumber(ARGV[3])
local first = tonumber(ARGV[4])
local written_to = tonumber(redis.call('GET', mark) or '-1')

-- A later chunk of a batch may only run once the chunk before it is in: otherwise a retry
-- would skip the earlier chunk's events as "already written" (a pipeline never reorders, so
-- this only trips if an old attempt's chunk is still in flight on a dead connection).
if first > batch_first and written_to < first - 1 then
  return redis.error_reply('PRGAP chunk from producer sequence ' .. ARGV[4] .. ' arrived before the chunk before it')
end

local skip = 0
if written_to >= first then skip = written_to - first + 1 end
if skip >= count then
  return {0, tonumber(redis.call('HGET', meta, 'seq') or '0'), 0}
end

redis.call('SADD', shards, ARGV[1])
local m = redis.call('HMGET', meta, 'seq', 'tms', 'tns')
local n = tonumber(m[1] or '0')
if not m[1] then
  -- First write, or the meta hash was lost: never go below the stream's own last entry.
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if last[1] then n = tonumber(string.match(last[1][1], '^(%d+)-')) or 0 end
end
local floor = tonumber(ARGV[7])
if n < floor then n = floor end

-- Timestamps strictly increase per stream even with several producers: max(own, last + 1).
local tms = tonumber(ARGV[5])
local tns = tonumber(ARGV[6]) + skip
tms = tms + math.floor(tns / 1000000)
tns = tns % 1000000
local lms, lns = tonumber(m[2] or '0'), tonumber(m[3] or '-1')
if lms > tms or (lms == tms and lns >= tns) then
  tms, tns = lms, lns + 1
  if tns >= 1000000 then tms, tns = tms + 1, tns - 1000000 end
end

local maxlen = tonumber(ARGV[8])
local before = 0
if maxlen > 0 then before = redis.call('XLEN', stream) end
local prefix = ARGV[2]
local written, err = 0, nil
for i = skip + 1, count do
  local id = string.format('%d-0', n + 1)
  -- m = "{timestamp ns} {dedup id}": one field for both keeps the entry (and every read of
  -- it) small; the payload stays alone in `p` for any other reader of the stream.
  local meta_field = string.format('%d%06d %s%d', tms, tns, prefix, first + i - 1)
  local r
  if maxlen > 0 then
    r = redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, id, 'p', ARGV[9 + i], 'm', meta_field)
  else
    r = redis.pcall('XADD', stream, id, 'p', ARGV[9 + i], 'm', meta_field)
  end
  if type(r) == 'table' and r.err then
    err = r.err
    break
  end
  n = n + 1
  written = written + 1
  tns = tns + 1
  if tns == 1000000 then tms, tns = tms + 1, 0 end
end

local trimmed = 0
if written > 0 then
  local pms, pns = tms, tns - 1
  if pns < 0 then pms, pns = pms - 1, 999999 end
  redis.call('HSET', meta, 'seq', string.format('%d', n), 'tms', string.format('%d', pms), 'tns', string.format('%d', pns))
  redis.call('SET', mark, string.format('%d', first + skip + written - 1), 'EX', ARGV[9])
  if maxlen > 0 then trimmed = before + written - redis.call('XLEN', stream) end
end
if err then return redis.error_reply(err) end
return {written, n, trimmed}
