-- cache_app.lua - Lua (WSAPI) app for the integration tests: same protocol
-- as cache_app.pl: /OP?k=KEY&v=VALUE&c=CACHE -> "R:<result>" or "UNDEF".
local ops = {
  ["/set"] = function(q) return uwsgi.cache_set(q.k, q.v, 0, q.c) end,
  ["/get"] = function(q) return uwsgi.cache_get(q.k, q.c) end,
  ["/exists"] = function(q) return uwsgi.cache_exists(q.k, q.c) end,
  ["/del"] = function(q) return uwsgi.cache_del(q.k, q.c) end,
  ["/clear"] = function(q) return uwsgi.cache_clear(q.c) end,
}

function run(wsapi_env)
  local q = {}
  for k, v in string.gmatch(wsapi_env.QUERY_STRING or "", "([^&=]+)=([^&]*)") do q[k] = v end
  local op = ops[wsapi_env.PATH_INFO]
  local r = nil
  if op then r = op(q) end
  local out = "UNDEF"
  if r ~= nil then out = "R:" .. tostring(r) end
  local function body() coroutine.yield(out) end
  return 200, { ["Content-Type"] = "text/plain" }, coroutine.wrap(body)
end

return run
