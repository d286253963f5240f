-- Reads one partition's part of an admission decision in one call.
-- KEYS[1] the scope's counter, KEYS[2] the number's throughput hash for the hour; for the pair's
-- own partition also KEYS[3..n-1] the hourly bucket hashes and KEYS[n] the pair-state hash.
-- ARGV[1] user, ARGV[2] window start (exclusive), ARGV[3] the second; for the pair's partition
-- ARGV[4] the pair and ARGV[5..] the pair-state fields.
-- Returns {count, user's latest or false, messages in the second or false, buckets..., fields...}.
local out = {
  redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf'),
  redis.call('ZSCORE', KEYS[1], ARGV[1]) or false,
  redis.call('HGET', KEYS[2], ARGV[3]) or false,
}
if #KEYS > 2 then
  for k = 3, #KEYS - 1 do
    out[#out + 1] = redis.call('HGET', KEYS[k], ARGV[4]) or false
  end
  local fs = {}
  for j = 5, #ARGV do fs[#fs + 1] = ARGV[j] end
  for _, v in ipairs(redis.call('HMGET', KEYS[#KEYS], unpack(fs))) do
    out[#out + 1] = v or false
  end
end
return out
