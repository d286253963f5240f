-- Applies one batch of the rate-limit projection to one partition, atomically.
-- KEYS[1]  the partition's meta hash ("<ns>{rl.p<N>}:meta"); every key touched shares its hash tag.
-- ARGV[1]  key prefix "<ns>{rl.p<N>}:"
-- ARGV[2]  the high-water cause the batch was computed against ("" when none)
-- ARGV[3]  the new high-water cause "offset:index"
-- ARGV[4]  the new stream time
-- ARGV[5..10] trim cutoffs: deliveries, undo records, throughput seconds, buckets, pair fields, hits
-- ARGV[11] trim budget: the most index entries trimmed per index in this call
-- ARGV[12..] groups "op, key suffix, n, n args", op one of ZS ZG ZR HS HD HI
-- Returns {1} when applied, {0, current high-water} when another writer moved it (recompute).
local meta = KEYS[1]
local pfx = ARGV[1]
local cur = redis.call('HGET', meta, 'hw') or ''
if cur ~= ARGV[2] then
  return {0, cur}
end

local i, n = 12, #ARGV
while i <= n do
  local op, key, cnt = ARGV[i], pfx .. ARGV[i + 1], tonumber(ARGV[i + 2])
  local a, b = i + 3, i + 2 + cnt
  if op == 'ZS' then
    redis.call('ZADD', key, unpack(ARGV, a, b))
  elseif op == 'ZG' then
    redis.call('ZADD', key, 'GT', unpack(ARGV, a, b))
  elseif op == 'ZR' then
    redis.call('ZREM', key, unpack(ARGV, a, b))
  elseif op == 'HS' then
    redis.call('HSET', key, unpack(ARGV, a, b))
  elseif op == 'HD' then
    redis.call('HDEL', key, unpack(ARGV, a, b))
  elseif op == 'HI' then
    for j = a, b, 2 do
      if redis.call('HINCRBY', key, ARGV[j], ARGV[j + 1]) <= 0 then
        redis.call('HDEL', key, ARGV[j])
      end
    end
  else
    return redis.error_reply('ratelimit: unknown op ' .. tostring(op))
  end
  i = b + 1
end

local budget = tonumber(ARGV[11])
local CHUNK = 4000

-- trim removes the members of index idx scored at or below cutoff, calling each(members) on each
-- chunk before removing them from the index, until budget entries are gone.
local function trim(idx, cutoff, each)
  local left = budget
  while left > 0 do
    local ms = redis.call('ZRANGEBYSCORE', pfx .. idx, '-inf', cutoff, 'LIMIT', 0, math.min(CHUNK, left))
    if #ms == 0 then return end
    each(ms)
    redis.call('ZREM', pfx .. idx, unpack(ms))
    left = left - #ms
    if #ms < CHUNK then return end
  end
end

local function split(s)
  local out, from = {}, 1
  while true do
    local at = string.find(s, '|', from, true)
    if not at then
      out[#out + 1] = string.sub(s, from)
      return out
    end
    out[#out + 1] = string.sub(s, from, at - 1)
    from = at + 1
  end
end

-- Counted deliveries older than the usage window: drop them, and drop their user from the scope's
-- counter when that delivery was the user's latest.
local cDlx = ARGV[5]
trim('dlxt', cDlx, function(ms)
  redis.call('ZREM', pfx .. 'dlx', unpack(ms))
  for _, m in ipairs(ms) do
    local p = split(m)
    local lim = pfx .. 'lim:' .. p[1]
    local sc = redis.call('ZSCORE', lim, p[2])
    if sc and tonumber(sc) <= tonumber(cDlx) then
      redis.call('ZREM', lim, p[2])
    end
  end
end)
trim('fxt', ARGV[6], function(ms) redis.call('HDEL', pfx .. 'fx', unpack(ms)) end)
trim('tpt', ARGV[7], function(ms)
  for _, m in ipairs(ms) do
    local p = split(m)
    redis.call('HDEL', pfx .. 'tp:' .. p[1], p[2])
  end
end)
trim('pbt', ARGV[8], function(ms) redis.call('HDEL', pfx .. 'pb', unpack(ms)) end)
trim('prt', ARGV[9], function(ms) redis.call('HDEL', pfx .. 'pr', unpack(ms)) end)
trim('hitt', ARGV[10], function(ms)
  for _, m in ipairs(ms) do
    local at = string.find(m, '|', 1, true)
    redis.call('ZREM', pfx .. 'hit:' .. string.sub(m, 1, at - 1), string.sub(m, at + 1))
  end
end)

local st = redis.call('HGET', meta, 'st')
if not st or tonumber(st) < tonumber(ARGV[4]) then st = ARGV[4] end
redis.call('HSET', meta, 'hw', ARGV[3], 'st', st)
return {1}
