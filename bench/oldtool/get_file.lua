-- The old tool's content handler (content_by_lua_file), as the old tool worked: the location's regex hands over
-- the URL's four parts; the checks run in the old order (signature by plain comparison, date format, expiry in
-- the server's local time, the file), each failure a 404 with one line of text; the file is read whole in Lua
-- and written out with ngx.print.
local lib = require "lib"

local signature = ngx.var.signature
local customer_id = ngx.var.customer_id
local expire_date = ngx.var.expire_date
local path_n_file = ngx.var.path_n_file

local function refuse(text)
    ngx.status = 404
    ngx.header["Content-Type"] = "text/plain"
    ngx.say(text)
    return ngx.exit(404)
end

if lib.signature(customer_id, expire_date, path_n_file) ~= signature then
    return refuse("Invalid signature")
end

local year, month, day, hour, min = expire_date:match("^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d)$")
if not year then
    return refuse("Invalid expire date format")
end
local expires = os.time({ year = year, month = month, day = day, hour = hour, min = min, sec = 0 })
if os.time() >= expires then
    return refuse("Link expired")
end

local file = io.open(lib.base_dir .. path_n_file, "rb")
if not file then
    return refuse("File NOT found.")
end
local data = file:read("*a")
file:close()

ngx.header["Content-Type"] = "application/octet-stream"
ngx.header["Content-Length"] = #data
ngx.print(data)
