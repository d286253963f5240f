-- Runs inside the MULTI/EXEC that applies one batch of the rate-limit projection to one
-- partition (store.go: the batch's variadic writes come before it, the new high-water mark after
-- it; the WATCH of the meta hash guards the mark): the trims.
-- KEYS[1]  the partition's meta hash ("<ns>{rl.p<N>}:meta"); every key touched shares its hash tag.
-- ARGV[1]  key prefix "<ns>{rl.p<N>}:"
-- ARGV[2..7] trim cutoffs: usage window (deliveries, counters), undo records, throughput seconds,
--          buckets, pair fields, hits
-- ARGV[8]  trim budget: the most index entries trimmed per index in this call
-- Returns 1.
local meta = KEYS[1]
local pfx = ARGV[1]

local budget = tonumber(ARGV[8])
local CHUNK = 4000
local UNDO_BUCKETS = 256 -- undoBuckets (undolog.go)

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

-- Whole time-bucketed keys whose last moment is past their window: counted deliveries (days),
-- undo records, throughput seconds and token buckets (hours).
local function dropKeys(idx, cutoff, key)
  trim(idx, cutoff, function(ms)
    local ks = {}
    for j, m in ipairs(ms) do ks[j] = key(m) end
    redis.call('UNLINK', unpack(ks))
  end)
end
local cUsage = ARGV[2]
dropKeys('dlxk', cUsage, function(d) return pfx .. 'dlx:' .. d end)
-- An hour of undo records: its hash (written before the logs) and its logs (undolog.go).
trim('fxk', ARGV[3], function(ms)
  for _, h in ipairs(ms) do
    local ks = {pfx .. 'fx:' .. h}
    for b = 0, UNDO_BUCKETS - 1 do ks[b + 2] = pfx .. 'fx:' .. h .. ':' .. b end
    redis.call('UNLINK', unpack(ks))
  end
end)
dropKeys('tpk', ARGV[4], function(m)
  local at = string.find(m, '|', 1, true)
  return pfx .. 'tp:' .. string.sub(m, 1, at - 1) .. ':' .. string.sub(m, at + 1)
end)
dropKeys('pbk', ARGV[5], function(h) return pfx .. 'pb:' .. h end)

-- Counters: users whose latest counted delivery left the usage window, at a whole minute of
-- stream time (so the result depends on stream time only, never on batch boundaries).
local lc = math.floor(tonumber(cUsage) / 60) * 60
local last = tonumber(redis.call('HGET', meta, 'lc') or '-99999999999')
if lc > last then
  for _, sc in ipairs(redis.call('ZRANGE', pfx .. 'limk', 0, -1)) do
    redis.call('ZREMRANGEBYSCORE', pfx .. 'lim:' .. sc, '-inf', lc)
  end
  redis.call('ZREMRANGEBYSCORE', pfx .. 'limk', '-inf', lc)
  redis.call('HSET', meta, 'lc', lc)
end

-- Pair fields whose value has expired. expiry is fieldExpiry (apply.go) on the values the store
-- writes: a window "opened expires entry" expires at the later of expires and a day after entry,
-- any other value "opened expires ..." at expires, a value of neither shape at 0.
local DAY = 86400
local function expiry(f, v)
  if string.sub(f, -2) == '|w' then
    local _, e, en = string.match(v, '^([+-]?%d+) ([+-]?%d+) ([+-]?%d+) ?$')
    if e then return math.max(tonumber(e), tonumber(en) + DAY) end
  end
  local _, e = string.match(v, '^([+-]?%d+) ([+-]?%d+)$')
  if not e then _, e = string.match(v, '^([+-]?%d+) ([+-]?%d+) ') end
  return tonumber(e) or 0
end
local cPairs = tonumber(ARGV[6])
local function dropExpired(fields)
  local vs = redis.call('HMGET', pfx .. 'pr', unpack(fields))
  local gone = {}
  for i, f in ipairs(fields) do
    if vs[i] and expiry(f, vs[i]) <= cPairs then gone[#gone + 1] = f end
  end
  if #gone > 0 then redis.call('HDEL', pfx .. 'pr', unpack(gone)) end
end
-- The fields listed under each hour past (prt:<hour>, by the expiry they were set with), then
-- those of the index written before the lists (prt): a field set again since may expire later.
local function trimPairHours()
  local left = budget
  while left > 0 do
    local hs = redis.call('ZRANGEBYSCORE', pfx .. 'prtk', '-inf', cPairs, 'LIMIT', 0, 64)
    if #hs == 0 then return end
    for _, h in ipairs(hs) do
      while true do
        if left <= 0 then return end
        local fs = redis.call('LPOP', pfx .. 'prt:' .. h, math.min(CHUNK, left))
        if not fs then break end
        dropExpired(fs)
        left = left - #fs
      end
      redis.call('ZREM', pfx .. 'prtk', h)
    end
  end
end
trimPairHours()
trim('prt', ARGV[6], dropExpired)
trim('hitt', ARGV[7], function(ms)
  for _, m in ipairs(ms) do
    local at = string.find(m, '|', 1, true)
    redis.call('ZREM', pfx .. 'hit:' .. string.sub(m, 1, at - 1), string.sub(m, at + 1))
  end
end)

return 1
