#!lua
-- Appends one chunk of one producer's batch to a shard stream, exactly once.
--
-- KEYS[1] stream   {prefix}:{shard}; entry 0-{position} has one field e: "{ts} {dedup-id}\n{payload}"
-- KEYS[2] meta     {prefix}:{shard}:meta  hash: seq (last position), tms/tns (last timestamp)
-- KEYS[3] mark     {prefix}:{shard}:mark:{producer}:{epoch}:{run}  last producer sequence written
-- KEYS[4] shards   {prefix}:shards  set of shard ids that have a stream
-- ARGV[1] shard id          ARGV[2] dedup-id prefix "{producer}:{epoch}:{run}:{shard}:"
-- ARGV[3] first producer sequence of the batch
-- ARGV[4] first producer sequence of this chunk
-- ARGV[5] timestamp of the chunk's first event, whole milliseconds
-- ARGV[6] the rest of that timestamp, nanoseconds (0..999999)
-- ARGV[7] floor: a position this producer already saw assigned (never assign at or below it)
-- ARGV[8] MAXLEN ~ bound (0 = unbounded)   ARGV[9] mark lifetime in seconds
-- ARGV[10..] per event: its field e as the producer stamped it
-- Returns {written, last position, trimmed}, or an error before anything was written.
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
  if last[1] then n = tonumber(string.match(last[1][1], '^0%-(%d+)$')) or 0 end
end
local floor = tonumber(ARGV[7])
if n < floor then n = floor end

-- Timestamps strictly increase per stream even with several producers: max(own, last + 1).
-- Usually the producer's own stamps stand and its fields are stored as sent; only when another
-- producer (or a clock step) got ahead are their stamps rewritten from the adjusted base.
local tms = tonumber(ARGV[5])
local tns = tonumber(ARGV[6]) + skip
tms = tms + math.floor(tns / 1000000)
tns = tns % 1000000
local lms, lns = tonumber(m[2] or '0'), tonumber(m[3] or '-1')
local restamp = lms > tms or (lms == tms and lns >= tns)
if restamp then
  tms, tns = lms, lns + 1
  if tns >= 1000000 then tms, tns = tms + 1, tns - 1000000 end
end

local maxlen = tonumber(ARGV[8])
local before = 0
if maxlen > 0 then before = redis.call('XLEN', stream) end
local prefix = ARGV[2]
local function field_of(k, i)
  local sent = ARGV[9 + i]
  if not restamp then return sent end
  local ns = tns + k
  local payload_at = string.find(sent, '\n', 1, true) or (#sent + 1)
  return string.format('%d%06d %s%d', tms + math.floor(ns / 1000000), ns % 1000000, prefix, first + i - 1)
    .. string.sub(sent, payload_at)
end

-- The first entry takes its position explicitly (`n` may be ahead of the stream's last id:
-- after a data loss, or by the floor); every later one is `0-*`, the next sequence of
-- millisecond 0, which is the next position, with no id to format. Only that first XADD can
-- fail (a key of the wrong type, a foreign id above ours); it runs protected, and when it
-- fails nothing has been written. Past it the stream exists with our id on top, and an OOM
-- refusal happens only before the script starts (it declares no allow-oom flag).
local args = {'XADD', stream}
if maxlen > 0 then args = {'XADD', stream, 'MAXLEN', '~', maxlen} end
local h = #args
args[h + 1] = string.format('0-%d', n + 1)
args[h + 2] = 'e'
args[h + 3] = field_of(0, skip + 1)
local r = redis.pcall(unpack(args))
if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
-- The rest, with the arguments spelled out: no table and no `unpack` per event, and each field
-- as sent unless restamped (this loop is where the script's per-event cost is).
if restamp then
  args[h + 1] = '0-*'
  for i = skip + 2, count do
    args[h + 3] = field_of(i - skip - 1, i)
    redis.call(unpack(args))
  end
elseif maxlen > 0 then
  for i = skip + 2, count do
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '0-*', 'e', ARGV[9 + i])
  end
else
  for i = skip + 2, count do
    redis.call('XADD', stream, '0-*', 'e', ARGV[9 + i])
  end
end
local written = count - skip
n = n + written

local pns = tns + written - 1
local pms = tms + math.floor(pns / 1000000)
pns = pns % 1000000
redis.call('HSET', meta, 'seq', string.format('%d', n), 'tms', string.format('%d', pms), 'tns', string.format('%d', pns))
redis.call('SET', mark, string.format('%d', first + skip + written - 1), 'EX', ARGV[9])
local trimmed = 0
if maxlen > 0 then trimmed = before + written - redis.call('XLEN', stream) end
return {written, n, trimmed}
