-- Reads what one batch of the rate-limit projection needs from one partition, in one round trip.
-- KEYS[1]  the partition's meta hash; every key read shares its hash tag.
-- ARGV[1]  key prefix "<ns>{rl.p<N>}:"
-- ARGV[2..] five lists, each "n, n items": pairs (token buckets), pair fields, output ids (undo
--          records), "scope|user" (counted deliveries), the undo log buckets of the ids; then
--          throughput minutes: "k" and k groups "key suffix, m, m fields"
-- Returns {hw, st, buckets, fields, undo, deliveries, minutes}: values aligned with the lists
-- (false when absent); undo is, per indexed hour oldest first, {the hour's hash values of the ids,
-- the elements of the hour's logs of the buckets} (undolog.go resolves them); deliveries is one list of dlx
-- members per "scope|user"; minutes are the fields' values in group order.
local pfx = ARGV[1]
local i = 2
local function list()
  local n, t = tonumber(ARGV[i]), {}
  for j = 1, n do t[j] = ARGV[i + j] end
  i = i + n + 1
  return t
end
local pairs_, fields, ids, users, logs = list(), list(), list(), list(), list()
local CHUNK = 4000

-- hmget reads names from key in chunks into out (only values present overwrite).
local function hmget(key, names, out)
  for a = 1, #names, CHUNK do
    local b = math.min(a + CHUNK - 1, #names)
    local vs = redis.call('HMGET', key, unpack(names, a, b))
    for j = a, b do
      local v = vs[j - a + 1]
      if v then out[j] = v end
    end
  end
end

local function blank(n)
  local t = {}
  for j = 1, n do t[j] = false end
  return t
end

-- across reads names from every time-bucketed key listed in the index, oldest first, so the
-- newest value wins.
local function across(idx, prefix, names)
  local out = blank(#names)
  if #names == 0 then return out end
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', pfx .. idx, '-inf', '+inf')) do
    hmget(pfx .. prefix .. h, names, out)
  end
  return out
end

local meta = redis.call('HMGET', KEYS[1], 'hw', 'st')
local buckets = across('pbk', 'pb:', pairs_)
local vals = blank(#fields)
if #fields > 0 then hmget(pfx .. 'pr', fields, vals) end
local undo = {}
if #ids > 0 then
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', pfx .. 'fxk', '-inf', '+inf')) do
    local key = pfx .. 'fx:' .. h
    local old = blank(#ids)
    hmget(key, ids, old)
    local ls = {}
    for j, b in ipairs(logs) do ls[j] = redis.call('LRANGE', key .. ':' .. b, 0, -1) end
    undo[#undo + 1] = {old, ls}
  end
end
local dl = {}
if #users > 0 then
  local days = redis.call('ZRANGEBYSCORE', pfx .. 'dlxk', '-inf', '+inf')
  for j, su in ipairs(users) do
    local ms = {}
    for _, d in ipairs(days) do
      for _, m in ipairs(redis.call('ZRANGEBYLEX', pfx .. 'dlx:' .. d, '[' .. su .. '|', '(' .. su .. '|\255')) do
        ms[#ms + 1] = m
      end
    end
    dl[j] = ms
  end
end
local secs = {}
for _ = 1, tonumber(ARGV[i] or '0') do
  local key, m = pfx .. ARGV[i + 1], tonumber(ARGV[i + 2])
  local names = {}
  for j = 1, m do names[j] = ARGV[i + 2 + j] end
  local base = #secs
  local vs = blank(m)
  hmget(key, names, vs)
  for j = 1, m do secs[base + j] = vs[j] end
  i = i + 2 + m
end
return {meta[1], meta[2], buckets, vals, undo, dl, secs}
