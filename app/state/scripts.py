"""The Lua scripts that make each change to a job one atomic step.

A status change and the counters behind limits and queue positions (the tenant's queued and
running sets, the lane's queued and running sets) move together in one script: a crash or a
broker error can never leave one done without the other. Keys are built here from the prefix
(ARGV[1]) the same way ``app.core.keys`` builds them.
"""

from __future__ import annotations

# Shared helpers, prepended to the scripts that use them.
# score(key, now): a queued job's order in its lane, lowest first: its queue time plus the
# handicap of its estimated cost (short jobs first; ``Job.queue_score`` is the same formula).
# place(p, id, tenant, lane, status, now): make the job's counter memberships match its status.
# A job that stays queued keeps its place (its score follows from its record) and its time in the
# queue (the lane's `since` set, for the oldest queued job's age): both survive a repair.
_PLACE = """
local function score(key, now)
  local raw = redis.call('HMGET', key, 'queued_at', 'created_at', 'queue_handicap_s')
  return (tonumber(raw[1]) or tonumber(raw[2]) or now) + (tonumber(raw[3]) or 0)
end
local function place(p, id, tenant, lane, status, now)
  local t, l = p .. ':tenant:' .. tenant, p .. ':lane:' .. lane
  local since = redis.call('ZSCORE', l .. ':since', id)
  redis.call('SREM', t .. ':queued', id)
  redis.call('SREM', t .. ':running', id)
  redis.call('ZREM', l .. ':queued', id)
  redis.call('ZREM', l .. ':since', id)
  redis.call('SREM', l .. ':running', id)
  if status == 'queued' then
    redis.call('SADD', t .. ':queued', id)
    redis.call('ZADD', l .. ':queued', score(p .. ':job:' .. id, now), id)
    redis.call('ZADD', l .. ':since', since or now, id)
  elseif status == 'started' then
    redis.call('SADD', t .. ':running', id)
    redis.call('SADD', l .. ':running', id)
  end
end
"""

# Move a job to status ARGV[3] when its status is one of ARGV[2] (a JSON list), set the fields
# ARGV[8..] (name, JSON value pairs), and move its counters with it. A ``lane`` among the fields
# moves the job to that lane's counters (a two-step job going on to its next step's lane).
# ARGV: prefix, allowed, to, now, retention_s, running_limit ('' for none), worker ('' for
# none: the worker the job must be on, for a requeue), fields...
# Returns the status found (JSON-decoded) when the change was made; '!<status>' when refused;
# '#<n>' when the tenant already runs n jobs (the limit); nil when the job does not exist.
MOVE = (
    _PLACE
    + """
local p, to, now = ARGV[1], ARGV[3], tonumber(ARGV[4])
local key = KEYS[1]
local cur = redis.call('HGET', key, 'status')
if not cur then return nil end
cur = cjson.decode(cur)
local allowed = false
for _, s in ipairs(cjson.decode(ARGV[2])) do if s == cur then allowed = true end end
if not allowed then return '!' .. cur end
if ARGV[7] ~= '' and redis.call('HGET', key, 'worker') ~= cjson.encode(ARGV[7]) then return '!' .. cur end
local id = cjson.decode(redis.call('HGET', key, 'id'))
local tenant = cjson.decode(redis.call('HGET', key, 'tenant'))
local lane = cjson.decode(redis.call('HGET', key, 'lane'))
if to == 'started' and ARGV[6] ~= '' then
  local running = p .. ':tenant:' .. tenant .. ':running'
  local n = redis.call('SCARD', running)
  if redis.call('SISMEMBER', running, id) == 0 and n >= tonumber(ARGV[6]) then return '#' .. n end
end
redis.call('HSET', key, 'status', cjson.encode(to))
if #ARGV >= 8 then redis.call('HSET', key, unpack(ARGV, 8)) end
local moved_to = cjson.decode(redis.call('HGET', key, 'lane'))
if moved_to ~= lane then
  redis.call('ZREM', p .. ':lane:' .. lane .. ':queued', id)
  redis.call('ZREM', p .. ':lane:' .. lane .. ':since', id)
  redis.call('SREM', p .. ':lane:' .. lane .. ':running', id)
  lane = moved_to
end
redis.call('HINCRBY', key, 'version', 1)
if to == 'started' then redis.call('HINCRBY', key, 'attempts', 1) end
place(p, id, tenant, lane, to, now)
-- A finished fit registered as a model version keeps its record and timeline past the retention
-- (predicts by name@alias read it): never given a TTL, so no reader sees it finished with one.
local register = redis.call('HGET', key, 'register')
local kept = to == 'finished' and register and register ~= 'null'
if to ~= 'queued' and to ~= 'started' and not kept then
  local retention = tonumber(ARGV[5])
  redis.call('EXPIRE', key, retention)
  redis.call('EXPIRE', key .. ':events', retention)
  redis.call('EXPIRE', key .. ':events_total', retention)
  -- its webhook's notification goes to the outbox in this same step (app/state/outbox.py)
  local hook = redis.call('HMGET', key, 'webhook_url', 'webhook_secret')
  local was_active = cur == 'queued' or cur == 'started'
  if was_active and hook[1] and hook[1] ~= 'null' and hook[2] and hook[2] ~= 'null' then
    local delivery = 'whd_' .. id
    redis.call('HSET', p .. ':outbox:entry:' .. delivery, 'job', id, 'tenant', tenant, 'attempts', 0)
    redis.call('EXPIRE', p .. ':outbox:entry:' .. delivery, retention)
    redis.call('ZADD', p .. ':outbox:due', now, delivery)
  end
end
return cjson.encode(cur)
"""
)

# Pick the job a worker of lane ARGV[2] runs next and start it, in one step: the first of the
# lane's queued set (lowest score: short jobs first, aged) that is not waiting out a retry's
# back-off and whose tenant runs fewer than its limit. A Dramatiq message is only a slot token:
# whichever job it was sent for, the worker runs the one picked here, so the queue position a
# job shows (its rank in the set) is the order jobs really start in.
# A worker reserved for small work (max_cells) passes over costlier jobs, leaving them to others.
# ARGV: prefix, lane, worker, now, running_limit ('' for none), max_scan, the waiting message for
# jobs held back by their tenant's limit, max_cells ('' for any), then fields (name, JSON value
# pairs) set on the picked job. Returns {picked id or '', how many were held back, ids newly told
# they wait, the earliest retry time among them or '', how many were left to other workers}.
PICK = (
    _PLACE
    + """
local p, lane, worker, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local limit, max_scan, waiting = tonumber(ARGV[5]), tonumber(ARGV[6]), cjson.encode(ARGV[7])
local max_cells = tonumber(ARGV[8])
local ids = redis.call('ZRANGE', p .. ':lane:' .. lane .. ':queued', 0, max_scan - 1)
local busy, held, noted, retry_at, passed = {}, 0, {}, nil, 0
if #ids == max_scan then held = 1 end  -- more wait beyond the scan: keep the token
for _, id in ipairs(ids) do
  local key = p .. ':job:' .. id
  local raw = redis.call('HMGET', key, 'status', 'tenant', 'not_before', 'message', 'cost_cells')
  if raw[1] == '"queued"' and max_cells and (tonumber(raw[5]) or math.huge) > max_cells then
    passed = passed + 1
  elseif raw[1] == '"queued"' then
    local tenant, not_before = cjson.decode(raw[2]), tonumber(raw[3])
    if limit and busy[tenant] == nil then
      busy[tenant] = redis.call('SCARD', p .. ':tenant:' .. tenant .. ':running') >= limit
    end
    if not_before and not_before > now then
      held = held + 1
      if not retry_at or not_before < retry_at then retry_at = not_before end
    elseif limit and busy[tenant] then
      held = held + 1
      if raw[4] ~= waiting then
        redis.call('HSET', key, 'message', waiting)
        table.insert(noted, id)
      end
    else
      redis.call('HSET', key, 'status', '"started"', 'worker', cjson.encode(worker), 'not_before', 'null')
      if #ARGV >= 9 then redis.call('HSET', key, unpack(ARGV, 9)) end
      redis.call('HINCRBY', key, 'version', 1)
      redis.call('HINCRBY', key, 'attempts', 1)
      place(p, id, tenant, lane, 'started', now)
      return {id, held, noted, '', passed}
    end
  end
end
return {'', held, noted, retry_at and tostring(retry_at) or '', passed}
"""
)

# Repair the counters of job ARGV[2] (the reaper): an id whose job is gone or ended leaves every
# set; a started job whose worker's last heartbeat is older than ARGV[4] (or absent) goes back
# to queued, its running slot freed, at its old place in the queue (it had waited already; the
# worker that ran the reaper sends it a slot token). ARGV: prefix, id, tenant ('' when unknown),
# stale_before, now, lanes (JSON list), message, terminal statuses (JSON list). Returns
# 'released', 'requeued' or 'ok'.
REPAIR = (
    _PLACE
    + """
local p, id, now = ARGV[1], ARGV[2], tonumber(ARGV[5])
local key = p .. ':job:' .. id
local raw = redis.call('HMGET', key, 'status', 'tenant', 'lane', 'worker')
local ended = not raw[1]
for _, s in ipairs(cjson.decode(ARGV[8])) do if raw[1] == cjson.encode(s) then ended = true end end
if ended then
  for _, lane in ipairs(cjson.decode(ARGV[6])) do
    redis.call('ZREM', p .. ':lane:' .. lane .. ':queued', id)
    redis.call('ZREM', p .. ':lane:' .. lane .. ':since', id)
    redis.call('SREM', p .. ':lane:' .. lane .. ':running', id)
  end
  local tenant = raw[2] and cjson.decode(raw[2]) or ARGV[3]
  if tenant ~= '' then
    redis.call('SREM', p .. ':tenant:' .. tenant .. ':queued', id)
    redis.call('SREM', p .. ':tenant:' .. tenant .. ':running', id)
  end
  return 'released'
end
local status, tenant, lane = cjson.decode(raw[1]), cjson.decode(raw[2]), cjson.decode(raw[3])
if status == 'started' then
  local seen = false
  if raw[4] and raw[4] ~= 'null' then
    seen = redis.call('ZSCORE', p .. ':lane:' .. lane .. ':workers', cjson.decode(raw[4]))
  end
  if not seen or tonumber(seen) < tonumber(ARGV[4]) then
    redis.call('HSET', key, 'status', '"queued"', 'phase', '"queued"', 'worker', 'null',
      'message', cjson.encode(ARGV[7]))
    redis.call('HINCRBY', key, 'version', 1)
    place(p, id, tenant, lane, 'queued', now)
    return 'requeued'
  end
end
place(p, id, tenant, lane, status, now)
return 'ok'
"""
)

# A job and, when it is queued, why it waits, in one round trip (the route clients poll).
# KEYS[1] the job; ARGV: key prefix, tenant, "now - worker alive window".
JOB_VIEW = """
local raw = redis.call('HGETALL', KEYS[1])
if #raw == 0 then return {raw} end
local job = {}
for i = 1, #raw, 2 do job[raw[i]] = raw[i + 1] end
if job['status'] ~= '"queued"' or job['tenant'] ~= cjson.encode(ARGV[2]) then return {raw} end
local lane = ARGV[1] .. ':lane:' .. cjson.decode(job['lane'])
local id = cjson.decode(job['id'])
local rank = redis.call('ZRANK', lane .. ':queued', id) or -1
-- The lane's load for the expected start (app/usecases/expected_start.py): each job ahead (at
-- most ARGV[4], in pick order) and each running one (sorted), with its estimate and start.
local ahead, running = {}, redis.call('SMEMBERS', lane .. ':running')
if rank > 0 then ahead = redis.call('ZRANGE', lane .. ':queued', 0, math.min(rank, tonumber(ARGV[4])) - 1) end
table.sort(running)
local load = {}
for _, other in ipairs(ahead) do
  load[#load + 1] = redis.call('HMGET', ARGV[1] .. ':job:' .. other, 'estimate', 'started_at')
end
for _, other in ipairs(running) do
  load[#load + 1] = redis.call('HMGET', ARGV[1] .. ':job:' .. other, 'estimate', 'started_at')
end
return {raw, {
  rank,
  redis.call('ZCARD', lane .. ':queued'),
  #running,
  redis.call('ZCOUNT', lane .. ':workers', ARGV[3], '+inf'),
  redis.call('SCARD', ARGV[1] .. ':tenant:' .. ARGV[2] .. ':running'),
  #ahead,
}, load}
"""

FORGET_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Reserve a queued slot for a tenant: SADD only when the set is below ARGV[1].
ADMIT = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
return 1
"""

SCRIPTS = {"move": MOVE, "pick": PICK, "repair": REPAIR, "job_view": JOB_VIEW, "forget_if": FORGET_IF, "admit": ADMIT}
