-- The old download tool's shared settings and its signature, as the old tool had them (docs/benchmarks.md,
-- "the old tool"). The benchmark sets `base_dir` from nginx's init_by_lua_block; `secret` stays the old tool's example
-- secret, which bench/_downloads_links.py signs the row's links with.
local sha1 = require "sha1"

local lib = {
    secret = "This is just a long string to set a seed",
    base_url = "http://downloads.local/",
    base_dir = "/tmp/downloads/",
}

-- base64 of the HMAC-SHA1's 40 hex characters, made URL-safe, its first 12 characters.
function lib.signature(customer_id, expire_date, path_n_file)
    local hex = sha1.hmac(lib.secret, customer_id .. expire_date .. path_n_file)
    local b64 = ngx.encode_base64(hex):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "," })
    return b64:sub(1, 12)
end

return lib
