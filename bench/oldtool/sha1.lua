-- SHA-1 and HMAC-SHA1 in plain Lua 5.1 arithmetic, the way the old download tool computed its signatures.
--
-- Written for the benchmark (bench/downloads.py, the "old tool" row) to cost what the old tool's sha1.lua cost:
-- that module, as published in 2015, had no bit library: a 32-bit word is a Lua number, and AND, OR and XOR
-- are done a byte at a time through 65,536-entry tables built when the module loads, rotations by
-- multiplication and division. This file does the same with its own code (it is not that module); do not
-- swap in LuaJIT's `bit` library here, or the row would measure a faster tool than the one being replaced.
--
--   local sha1 = require "sha1"
--   sha1.hmac(key, message)  -- 40 lowercase hex characters

local floor = math.floor
local char, byte, rep, format = string.char, string.byte, string.rep, string.format

local TWO32 = 4294967296

-- AND, OR and XOR of two bytes a and b, at index a * 256 + b.
local AND8, OR8, XOR8 = {}, {}, {}
for a = 0, 255 do
    for b = 0, 255 do
        local x, y, weight = a, b, 1
        local r_and, r_or, r_xor = 0, 0, 0
        for _ = 1, 8 do
            local xb, yb = x % 2, y % 2
            if xb + yb == 2 then r_and = r_and + weight end
            if xb + yb >= 1 then r_or = r_or + weight end
            if xb + yb == 1 then r_xor = r_xor + weight end
            x, y, weight = (x - xb) / 2, (y - yb) / 2, weight * 2
        end
        local index = a * 256 + b
        AND8[index], OR8[index], XOR8[index] = r_and, r_or, r_xor
    end
end

-- The four bytes of a 32-bit word, most significant first.
local function bytes_of(word)
    local b4 = word % 256
    word = (word - b4) / 256
    local b3 = word % 256
    word = (word - b3) / 256
    local b2 = word % 256
    return (word - b2) / 256, b2, b3, b4
end

local function bytewise(table8)
    return function(x, y)
        local x1, x2, x3, x4 = bytes_of(x)
        local y1, y2, y3, y4 = bytes_of(y)
        return ((table8[x1 * 256 + y1] * 256 + table8[x2 * 256 + y2]) * 256 + table8[x3 * 256 + y3]) * 256
            + table8[x4 * 256 + y4]
    end
end

local band, bor, bxor = bytewise(AND8), bytewise(OR8), bytewise(XOR8)

local function bnot(x)
    return TWO32 - 1 - x
end

-- Rotate a 32-bit word left by n bits: its top n bits move to the bottom.
local function rotl(x, n)
    local cut = 2 ^ (32 - n)
    local top = floor(x / cut)
    return (x - top * cut) * 2 ^ n + top
end

local function word_bytes(word)
    return char(bytes_of(word))
end

-- The 20-byte digest of a message.
local function digest(message)
    local length = #message
    local bits = length * 8
    message = message .. "\128" .. rep("\0", (55 - length) % 64)
        .. word_bytes(floor(bits / TWO32)) .. word_bytes(bits % TWO32)
    local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
    local w = {}
    for block = 1, #message, 64 do
        for i = 0, 15 do
            local b1, b2, b3, b4 = byte(message, block + i * 4, block + i * 4 + 3)
            w[i] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
        end
        for i = 16, 79 do
            w[i] = rotl(bxor(bxor(w[i - 3], w[i - 8]), bxor(w[i - 14], w[i - 16])), 1)
        end
        local a, b, c, d, e = h0, h1, h2, h3, h4
        for i = 0, 79 do
            local f, k
            if i < 20 then
                f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
            elseif i < 40 then
                f, k = bxor(bxor(b, c), d), 0x6ED9EBA1
            elseif i < 60 then
                f, k = bor(bor(band(b, c), band(b, d)), band(c, d)), 0x8F1BBCDC
            else
                f, k = bxor(bxor(b, c), d), 0xCA62C1D6
            end
            a, b, c, d, e = (rotl(a, 5) + f + e + w[i] + k) % TWO32, a, rotl(b, 30), c, d
        end
        h0, h1, h2 = (h0 + a) % TWO32, (h1 + b) % TWO32, (h2 + c) % TWO32
        h3, h4 = (h3 + d) % TWO32, (h4 + e) % TWO32
    end
    return word_bytes(h0) .. word_bytes(h1) .. word_bytes(h2) .. word_bytes(h3) .. word_bytes(h4)
end

local function to_hex(data)
    return (data:gsub(".", function(c)
        return format("%02x", byte(c))
    end))
end

-- Each byte XOR 0x36 (inner pad) and XOR 0x5c (outer pad), as whole characters.
local INNER, OUTER = {}, {}
for i = 0, 255 do
    INNER[char(i)] = char(XOR8[i * 256 + 0x36])
    OUTER[char(i)] = char(XOR8[i * 256 + 0x5c])
end

local function hmac(key, message)
    if #key > 64 then
        key = digest(key)
    end
    key = key .. rep("\0", 64 - #key)
    local inner = digest(key:gsub(".", INNER) .. message)
    return to_hex(digest(key:gsub(".", OUTER) .. inner))
end

return {
    hex = function(message)
        return to_hex(digest(message))
    end,
    hmac = hmac,
}
